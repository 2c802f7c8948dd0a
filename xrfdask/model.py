"""The data model shared by every reader and writer: variable names, dimensions and attributes.

A raw map is an ``xr.Dataset`` with ``spectra`` (y, x, detector, channel) and per-pixel
variables; results share ``y``, ``x`` (and ``detector``) and add a ``line`` dimension. Readers
attach the attributes below so the same map read from any source compares identical.
"""

from __future__ import annotations

from typing import Any

from xrfdask.errors import FormatError

__all__ = [
    "RAW_DIMS",
    "PIXEL_DIMS",
    "MAP_DIMS",
    "ELEMENT_VARIABLES",
    "ELEMENT_GROUPS",
    "VARIABLE_ATTRS",
    "with_attrs",
    "line_union",
    "check_not_empty",
]

RAW_DIMS = ("y", "x", "detector", "channel")
PIXEL_DIMS = ("y", "x", "detector")
MAP_DIMS = ("y", "x")
#: The element-map variable of each kind of result, most processed first: quantify, normalise,
#: fit, div_by_cnc. Drawing, exporting and classifying a result use the first one it has.
ELEMENT_VARIABLES = ("concentration", "normalised", "peak_area", "relative_difference")
#: The layout groups holding element maps, most processed first.
ELEMENT_GROUPS = ("quant", "norm", "fit")

VARIABLE_ATTRS: dict[str, dict[str, Any]] = {
    "spectra": {"long_name": "counts per channel", "units": "counts"},
    "deadtime": {"long_name": "detector deadtime", "units": "percent"},
    "present": {"long_name": "pixel record present in the file"},
    "icr": {"long_name": "input count rate"},
    "ocr": {"long_name": "output count rate"},
    "I0": {"long_name": "incident flux monitor"},
    "I1": {"long_name": "transmitted flux monitor"},
    "acquisition_time": {"long_name": "acquisition time per pixel", "units": "s"},
    "sumspec": {"long_name": "sum of all pixel spectra", "units": "counts"},
    "maxspec": {"long_name": "per-channel maximum over pixels", "units": "counts"},
    "peak_area": {"long_name": "fitted peak area", "units": "counts"},
    "peak_area_error": {
        "long_name": "standard deviation of the fitted peak area",
        "units": "counts",
    },
    "sum_area": {"long_name": "peak area in the sum spectrum", "units": "counts"},
    "sum_background": {
        "long_name": "background under the peaks (3 sigma) in the sum spectrum",
        "units": "counts",
    },
}


def with_attrs(name: str, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The standard attributes of variable ``name``, updated with ``attrs``."""
    out = dict(VARIABLE_ATTRS.get(name, {}))
    out.update(attrs or {})
    return out


def line_union(lists: list[list[str]]) -> list[str]:
    """The ``line`` coordinate shared by several detectors: every name once, first-seen order."""
    out: list[str] = []
    for names in lists:
        out.extend(n for n in names if n not in out)
    return out


def check_not_empty(ds: Any, what: str) -> None:
    """Raise :class:`~xrfdask.errors.FormatError` when a dimension of the map has length 0.

    An empty selection (``ds.isel(y=slice(0, 0))``) has nothing to write or fit; saying so beats
    an error from deep inside the writer or a file no reader accepts.
    """
    empty = [d for d in ("y", "x", "detector", "channel") if d in ds.dims and ds.sizes[d] == 0]
    if empty:
        raise FormatError(
            f"{what}: the map is empty ({', '.join(f'{d}=0' for d in empty)}); nothing to do"
        )
