"""Instrument metadata of a raw map: format-neutral attributes that readers fill once.

A reader turns what its format records about the instrument into these ``Dataset.attrs``
(plain numbers, strings and lists: JSON/HDF5-serialisable); the rest of xrfdask (the fit
configuration, later quantification) reads only these, never a format's own header. A missing
attribute means unknown. Units are in the names.

Map attributes (one value):

``tube_element``, ``tube_kv``, ``tube_current_ua``
    X-ray tube anode (element symbol), voltage (kV) and current (µA).
``dwell_ms``
    Dwell time per pixel (ms).
``incidence_angle_deg``, ``takeoff_angle_deg``, ``scatter_angle_deg``
    Beam to sample surface, sample surface to detector, and beam to detector angles (degrees).

Detector attributes (a list, one entry per position along the ``detector`` coordinate; None
where unknown):

``detector_crystal``
    Element symbol of the crystal (``"Si"``).
``detector_crystal_thickness_mm``, ``detector_dead_layer_um``
    Crystal and dead-layer thickness.
``detector_window``, ``detector_window_thickness_um``
    Entrance window material (element symbol or formula, ``"Be"``) and thickness.
``detector_area_mm2``
    Active area.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "MAP_ATTRS",
    "DETECTOR_ATTRS",
    "INSTRUMENT_ATTRS",
    "detector_value",
    "map_value",
    "pixel_charge_uc",
]

MAP_ATTRS: dict[str, str] = {
    "tube_element": "X-ray tube anode element symbol",
    "tube_kv": "X-ray tube voltage (kV)",
    "tube_current_ua": "X-ray tube current (µA)",
    "dwell_ms": "dwell time per pixel (ms)",
    "incidence_angle_deg": "angle between the beam and the sample surface (degrees)",
    "takeoff_angle_deg": "angle between the sample surface and the detector axis (degrees)",
    "scatter_angle_deg": "angle between the beam and the detector axis (degrees)",
}
DETECTOR_ATTRS: dict[str, str] = {
    "detector_crystal": "detector crystal element symbol, per detector",
    "detector_crystal_thickness_mm": "detector crystal thickness (mm), per detector",
    "detector_dead_layer_um": "detector dead layer thickness (µm), per detector",
    "detector_window": "detector window material, per detector",
    "detector_window_thickness_um": "detector window thickness (µm), per detector",
    "detector_area_mm2": "detector active area (mm²), per detector",
}
#: Every instrument attribute a reader may set, with its meaning.
INSTRUMENT_ATTRS: dict[str, str] = {**MAP_ATTRS, **DETECTOR_ATTRS}


def _usable(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    return isinstance(value, str) and bool(value.strip())


def map_value(attrs: dict[str, Any], name: str) -> Any:
    """A map attribute, or None when absent or not a usable value."""
    value = attrs.get(name)
    return value if _usable(value) else None


def detector_value(attrs: dict[str, Any], name: str, position: int) -> Any:
    """The entry of a detector attribute for the detector at ``position``, or None."""
    values = attrs.get(name)
    if not isinstance(values, list | tuple) or not 0 <= position < len(values):
        return None
    value = values[position]
    return value if _usable(value) else None


def pixel_charge_uc(attrs: dict[str, Any]) -> float | None:
    """Tube charge per pixel (µC): current (µA) x dwell (s); None when either is unknown.

    What a lab map (``.GeoPIXE``) is normalised to in place of a beamline's I0 counter.
    """
    current, dwell = map_value(attrs, "tube_current_ua"), map_value(attrs, "dwell_ms")
    if not isinstance(current, int | float) or not isinstance(dwell, int | float):
        return None
    if current <= 0 or dwell <= 0:
        return None
    return float(current) * float(dwell) / 1000.0
