"""A sensible PyMca fit configuration for a raw map and a list of elements.

Calibration from the ``energy`` coordinate, excitation from the tube, shells, fit range and SNIP
width from the detector resolution, detector efficiency and geometry from the map's instrument
attributes. Only coordinates and attributes are read, never the spectra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xraylib

from xrfdask.errors import ConfigError
from xrfdask.fit.config.text import _merge, _plain, pymca_defaults
from xrfdask.fit.config.validate import _as_float, _as_int, _is_number, validate_config
from xrfdask.instrument import detector_value, map_value
from xrfdask.physics import SHELLS, edge_energy, element_symbol, fwhm, group_lines, pymca_shells

__all__ = ["make_fit_config"]

# make_fit_config defaults (why: see the docstring and the module tests).
_FIT_START_KEV = 1.0  # below ~1 keV the detector window and discriminator make the data useless
_START_MARGIN_KEV = 0.5  # room below the lowest line for its low-energy side and the background
_END_FWHM = 3.0  # the range ends this many FWHM above the highest Rayleigh peak
_SNIP_FWHM = 1.6  # SNIP width in FWHM at mid-range: 30 channels for 10 eV channels, as PyMca's
# Thin SiO2 matrix (rho*t = 0.265 mg/cm²): PyMca needs a matrix for several excitation energies;
# this thin one barely changes line ratios (a thin-sample approximation).
_THIN_MATRIX = ("Si1O2", 2.65, 1.0e-4)


def _calibration(ds: Any, detector: Mapping[str, Any], label: Any) -> tuple[float, float]:
    """(zero, gain) in keV: from ``detector`` if given, else a line through ``energy``."""
    if "zero" in detector and "gain" in detector:
        return (
            _as_float("detector.zero", detector["zero"]),
            _as_float("detector.gain", detector["gain"], positive=True),
        )
    if "energy" not in ds.coords and "energy" not in getattr(ds, "data_vars", {}):
        raise ConfigError(
            "energy: the map has no 'energy' coordinate; give the calibration as "
            "detector={'zero': ..., 'gain': ...} (keV, keV per channel)"
        )
    energy = ds["energy"]
    if "detector" in energy.dims:  # a per-detector calibration: the chosen detector's
        energy = energy.isel(detector=0) if label is None else energy.sel(detector=label)
    if energy.dims != ("channel",):
        raise ConfigError(f"energy: expected a coordinate on 'channel', got dims {energy.dims}")
    e = np.asarray(energy.values, dtype=float)
    if str(energy.attrs.get("units", "keV")).strip() == "eV":
        e = e / 1000.0
    channel = ds["channel"].values if "channel" in ds.coords else np.arange(e.size)
    channel = np.asarray(channel, dtype=float)
    ok = np.isfinite(e)
    if ok.sum() < 2:
        raise ConfigError("energy: fewer than two finite values: cannot derive the calibration")
    gain, zero = np.polyfit(channel[ok], e[ok], 1)
    if not gain > 0:
        raise ConfigError(f"energy: does not increase with channel (gain {gain:g} keV/channel)")
    # Round off the least-squares noise (8e-16 keV for an exact 0) so the .cfg text stays clean.
    return round(float(zero), 9), float(f"{gain:.12g}")


def _tube_lines(element: Any, kv: float | None) -> list[tuple[float, float]]:
    """Characteristic lines of the tube anode: K (Kα, Kβ) if ``kv`` excites them, else L."""
    sym = element_symbol(element)
    if sym is None:
        raise ConfigError(f"tube_element: {element!r} is not an element symbol")
    z = xraylib.SymbolToAtomicNumber(sym)
    k_edge = xraylib.EdgeEnergy(z, xraylib.K_SHELL)
    if kv is None or kv > k_edge:
        # Kα and Kβ at their rate-weighted mean energies; weights from the radiative rates.
        pairs = [(xraylib.KA_LINE, xraylib.KA_LINE), (xraylib.KB_LINE, xraylib.KB_LINE)]
        lines = [(xraylib.LineEnergy(z, ln), xraylib.RadRate(z, rate)) for ln, rate in pairs]
    else:
        l3_edge = xraylib.EdgeEnergy(z, xraylib.L3_SHELL)
        if kv <= l3_edge:
            raise ConfigError(
                f"tube_kv: {kv:g} kV excites neither the K ({k_edge:.2f} keV) nor the L3 "
                f"({l3_edge:.2f} keV) edge of the {sym} anode; pass excitation_energy"
            )
        # L lines, weighted by their fluorescence cross sections at two thirds of the voltage
        # (a rough stand-in for the bremsstrahlung that excites them).
        e_exc = max(2.0 * kv / 3.0, 1.01 * l3_edge)
        lines = []
        for ln in (xraylib.LA_LINE, xraylib.LB_LINE):
            try:
                cs = xraylib.CS_FluorLine_Kissel_Cascade(z, ln, e_exc)
                lines.append((xraylib.LineEnergy(z, ln), cs))
            except ValueError:
                continue
    lines = [(e, w) for e, w in lines if e > 0 and w > 0 and (kv is None or e < kv)]
    if not lines:
        raise ConfigError(f"tube_element: no characteristic line of {sym} below {kv} kV")
    total = sum(w for _, w in lines)
    return [(e, w / total) for e, w in lines]


def _excitation(ds: Any, excitation_energy: Any) -> list[tuple[float, float]]:
    """Excitation lines (energy keV, weight), strongest first for PyMca's Scatter Peak000."""
    kv = ds.attrs.get("tube_kv")
    kv = float(kv) if _is_number(kv) and kv > 0 else None
    if excitation_energy is None:
        tube = ds.attrs.get("tube_element")
        if not tube:
            raise ConfigError(
                "excitation_energy: the map has no X-ray tube attributes (tube_element); pass "
                "excitation_energy=<keV> (a number, a list, or (energy, weight) pairs)"
            )
        lines = _tube_lines(tube, kv)
    else:
        items = excitation_energy
        if _is_number(items):
            items = [items]
        if isinstance(items, np.ndarray):
            items = items.tolist()
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise ConfigError(
                f"excitation_energy: expected keV as a number or a list, got {excitation_energy!r}"
            )
        lines = []
        for item in items:
            if isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
                e, w = item
            else:
                e, w = item, 1.0
            e = _as_float("excitation_energy", e, positive=True)
            w = _as_float("excitation_energy (weight)", w, positive=True)
            if kv is not None and e > kv:
                raise ConfigError(
                    f"excitation_energy: {e:g} keV is above the tube voltage {kv:g} kV"
                )
            lines.append((e, w))
        total = sum(w for _, w in lines)
        lines = [(e, w / total) for e, w in lines]
    return sorted(lines, key=lambda ew: -ew[1])


def _choose_shells(
    symbol: Any, excitation: list[tuple[float, float]], lo: float, hi: float
) -> list[str]:
    """K for light and medium elements; L, plus M when inside the range, for heavy ones."""
    sym = element_symbol(symbol)
    if sym is None:
        raise ConfigError(f"elements: {symbol!r} is not an element symbol")
    z = xraylib.SymbolToAtomicNumber(sym)
    emax = max(e for e, _ in excitation)
    exc = tuple(excitation)
    offered = pymca_shells(sym)

    def usable(shell: str) -> bool:
        if shell not in offered or edge_energy(z, shell) >= emax:
            return False
        lines = group_lines(z, shell, exc)
        if not lines:
            return False
        strongest = max(lines, key=lambda el: el[1])[0]
        return lo <= strongest <= hi

    if usable("K"):
        return ["K"]
    shells = [s for s in ("L", "M") if usable(s)]
    if not shells:
        raise ConfigError(
            f"elements: {sym} has no K, L or M line that {emax:.2f} keV excites within "
            f"{lo:.2f}-{hi:.2f} keV"
        )
    return shells


def _peak_line_energies(peaks: Mapping[str, Any], excitation: list[tuple[float, float]]) -> list:
    """Energies of the significant lines of every group in ``peaks`` (bad entries skipped:
    validation reports them)."""
    exc = tuple(excitation)
    out = []
    for sym, shells in peaks.items():
        for shell in shells if isinstance(shells, list) else [shells]:
            if isinstance(shell, str) and shell.strip() in SHELLS:
                z = xraylib.SymbolToAtomicNumber(sym)
                out.extend(e for e, _ in group_lines(z, shell.strip(), exc))
    return out


def _matrix_entry(
    matrix: Any, needed: bool, angles: tuple[float, float, float | None]
) -> list[Any]:
    """PyMca's ``attenuators.Matrix`` entry; the scattering angle places the Compton peak."""
    alpha_in, alpha_out, scatter = angles
    angle = [1, scatter] if scatter is not None else [0, alpha_in + alpha_out]
    tail = [alpha_in, alpha_out] + angle
    if matrix is None:
        matrix = _THIN_MATRIX if needed else False
    if matrix is False:
        return [0, "MULTILAYER", 0.0, 0.0] + tail
    if isinstance(matrix, str):
        return [1, matrix, _THIN_MATRIX[1], _THIN_MATRIX[2]] + tail
    if isinstance(matrix, Sequence) and len(matrix) == 3:
        formula, density, thickness = matrix
        return [
            1,
            formula,
            _as_float("matrix (density)", density, positive=True),
            _as_float("matrix (thickness)", thickness, positive=True),
        ] + tail
    if isinstance(matrix, Sequence) and len(matrix) >= 6:
        return list(matrix)  # a full PyMca entry: taken as given, angles included
    raise ConfigError(
        "matrix: expected None, False, a formula, (formula, density g/cm³, thickness cm) or a "
        f"PyMca Matrix entry, got {matrix!r}"
    )


def _detector_attenuators(attrs: Mapping[str, Any], position: int) -> tuple[dict, str | None]:
    """Crystal, dead layer and window of the detector at ``position`` (its efficiency), from the
    map's instrument attributes (:mod:`xrfdask.instrument`)."""
    out: dict[str, list[Any]] = {}
    crystal = element_symbol(detector_value(attrs, "detector_crystal", position))
    if crystal is not None:
        rho = xraylib.ElementDensity(xraylib.SymbolToAtomicNumber(crystal))
        thick_mm = detector_value(attrs, "detector_crystal_thickness_mm", position)
        if thick_mm:
            out["Detector"] = [1, f"{crystal}1", rho, thick_mm / 10.0, 1.0]
        dead_um = detector_value(attrs, "detector_dead_layer_um", position)
        if dead_um:
            out["deadlayer"] = [1, f"{crystal}1", rho, dead_um * 1e-4, 1.0]
    window = element_symbol(detector_value(attrs, "detector_window", position))
    window_um = detector_value(attrs, "detector_window_thickness_um", position)
    if window is not None and window_um:
        rho = xraylib.ElementDensity(xraylib.SymbolToAtomicNumber(window))
        out["window"] = [1, f"{window}1", rho, window_um * 1e-4, 1.0]
    return out, crystal


def make_fit_config(
    ds: Any,
    elements: Sequence[str] | Mapping[str, str | Sequence[str]] | str,
    *,
    detector: Any = None,
    excitation_energy: float | Sequence[float] | Sequence[tuple[float, float]] | None = None,
    fit_range: tuple[float, float] | None = None,
    snip_width: int | None = None,
    noise: float = 0.1,
    fano: float = 0.114,
    escape: bool = True,
    scatter: bool = True,
    matrix: Any = None,
    **overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """A sensible PyMca configuration for a raw map and a list of elements.

    Only coordinates and attributes of ``ds`` are read (never the spectra), so this is cheap on
    a lazy map.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map (``channel`` dimension, ``energy`` coordinate in keV), with the instrument
        attributes its reader filled (:mod:`xrfdask.instrument`: ``tube_element``, ``tube_kv``,
        the geometry angles, per-detector crystal and window); only those are read.
    elements : sequence of str, or dict
        Element symbols; the shells are chosen: K when the excitation reaches the K edge and a
        K line falls in the fit range, otherwise L, plus M when its lines are in the range (Pb
        under a Mo tube: ``["L", "M"]``). A dict ``{"Pb": "L"}`` gives the shells explicitly.
    detector : label or dict, optional
        A label of the ``detector`` coordinate: its ``detector_*`` attributes give the crystal,
        dead layer and window (detector efficiency, hence line ratios); None takes the first
        detector's. A dict updates the ``[detector]`` section instead (the ``detector``
        keyword cannot be an override): ``{"zero": 0.0, "gain": 0.01}`` supplies the
        calibration of a map without an ``energy`` coordinate.
    excitation_energy : float, list of float, or list of (energy, weight), optional
        Excitation line(s) in keV. Default: the tube anode's Kα and Kβ (xraylib mean energies,
        weights from the radiative rates; L lines when ``tube_kv`` is below the K edge).
        Required for maps without a tube (synchrotron h5 maps).
    fit_range : (float, float), optional
        (start, end) in keV. Default: from ``max(1 keV, lowest line - 0.5 keV)`` to 3 FWHM above
        the highest Rayleigh peak (or the highest line when ``scatter`` is False), within the
        spectrum.
    snip_width : int, optional
        SNIP width in channels. Default: 1.6 FWHM at mid-range (30 for 10 eV channels).
    noise, fano : float
        Detector electronic noise (FWHM, keV) and Fano factor, fixed in the fit.
    escape, scatter : bool
        Fit Si escape peaks (``escapeflag``, ``detele``) and the Rayleigh/Compton peaks.
    matrix : None, False, str, (formula, density, thickness) or list
        Sample matrix. None: a thin SiO2 layer when PyMca needs one (several excitation
        energies), none otherwise. A formula: a thin layer of it (2.65 g/cm³ x 1 µm). A
        3-tuple: that layer (g/cm³, cm). A full PyMca Matrix entry is taken as given.
    **overrides : dict
        Section updates applied last, e.g. ``fit={"snipwidth": 40}``, ``peaks={"Pb": "L"}``.

    Returns
    -------
    dict
        A complete configuration that passes :func:`validate_config` for ``"full"`` and
        configures PyMca (``FastXRFLinearFit().setFitConfiguration``) without error: linear fit,
        no weights, Gaussian peaks, SNIP background (``stripfilterwidth`` 1, no anchors, no
        continuum), fixed zero/gain/noise/fano, no pile-up, no strategy, ``use_limit`` 1.

    Raises
    ------
    ConfigError
        Unknown element, no excitation energy for a map without a tube, no calibration, an
        element with no line in the range, a bad override, or an invalid result.

    Examples
    --------
    >>> from xrfdask.datasets import example_dataset
    >>> cfg = make_fit_config(example_dataset(shape=(2, 2)), ["Fe", "Pb"])
    >>> cfg["peaks"]
    {'Fe': 'K', 'Pb': ['L', 'M']}
    """
    if "channel" not in ds.dims:
        raise ConfigError(
            f"ds: expected a raw map with a 'channel' dimension, got dims {tuple(ds.dims)}"
        )
    nchan = int(ds.sizes["channel"])
    det_update = dict(detector) if isinstance(detector, Mapping) else {}
    det_label = None if isinstance(detector, Mapping) else detector
    labels = list(ds["detector"].values) if "detector" in ds.coords else []
    if det_label is not None and labels and det_label not in labels:
        raise ConfigError(f"detector: {det_label!r} is not a label of the map's detectors")
    for name, value in overrides.items():
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{name}: an override is a dict of keys for section [{name}], got {value!r}"
            )
    noise = _as_float("noise", noise, minimum=0.0)
    fano = _as_float("fano", fano, minimum=0.0)

    zero, gain = _calibration(ds, det_update, det_label)
    excitation = _excitation(ds, excitation_energy)
    attrs = dict(ds.attrs)
    alpha_in = map_value(attrs, "incidence_angle_deg") or 45.0
    alpha_out = map_value(attrs, "takeoff_angle_deg") or 45.0
    scatter_angle = map_value(attrs, "scatter_angle_deg")

    def width(e: float) -> float:
        return fwhm(e, noise, fano)

    e_first, e_last = zero, zero + gain * (nchan - 1)
    kv = ds.attrs.get("tube_kv")
    if fit_range is not None:
        if not (isinstance(fit_range, Sequence) and len(fit_range) == 2):
            raise ConfigError(f"fit_range: expected (start_keV, end_keV), got {fit_range!r}")
        lo = _as_float("fit_range", fit_range[0])
        hi = _as_float("fit_range", fit_range[1])
        if lo >= hi:
            raise ConfigError(f"fit_range: start {lo:g} keV is not below end {hi:g} keV")
    else:
        lo = max(_FIT_START_KEV, e_first)
        e_top = max(e for e, _ in excitation)
        hi = min(e_top + _END_FWHM * width(e_top), e_last)
        if _is_number(kv) and kv > 0:
            hi = min(hi, float(kv))

    # Shells: a dict gives them; otherwise chosen from the excitation and the range.
    if isinstance(elements, str):
        elements = [elements]
    if isinstance(elements, Mapping):
        peaks = {}
        for name, shells in elements.items():
            sym = element_symbol(name)
            if sym is None:
                raise ConfigError(f"peaks.{name}: {name!r} is not an element symbol")
            peaks[sym] = shells
    else:
        if not isinstance(elements, Sequence) or not elements:
            raise ConfigError(
                f"elements: expected a non-empty list of element symbols, got {elements!r}"
            )
        peaks = {}
        for name in elements:
            shells = _choose_shells(name, excitation, lo, hi)
            peaks[element_symbol(name)] = shells[0] if len(shells) == 1 else shells

    line_energies = _peak_line_energies(peaks, excitation)
    if fit_range is None and line_energies:
        if not scatter:  # no scatter peaks to fit: end above the highest element line
            top = max(line_energies)
            hi = min(hi, top + 4 * width(top))
        # Start below the lowest line (not at 1 keV when all lines are far above it).
        low = min(line_energies)
        lo = max(lo, low - max(_START_MARGIN_KEV, 3 * width(low)))
    xmin = max(0, math.ceil((lo - zero) / gain - 1e-9))
    xmax = math.floor((hi - zero) / gain + 1e-9)
    if fit_range is None:
        xmax = min(xmax, nchan - 1)
    elif xmax >= nchan:  # an explicit range beyond the spectrum is a mistake, not a cut
        raise ConfigError(
            f"fit.xmax: fit_range ends at {hi:g} keV, channel {xmax}, beyond the spectra's last "
            f"channel {nchan - 1}"
        )

    if snip_width is None:
        mid = zero + gain * (xmin + xmax) / 2.0
        snip = max(1, round(_SNIP_FWHM * width(mid) / gain))
    else:
        snip = _as_int("snip_width", snip_width, minimum=1)

    # Scatter peaks only for excitation lines whose Rayleigh peak lies in the range.
    e_hi = zero + gain * xmax
    energy_scatter = [int(scatter and e <= e_hi + width(e)) for e, _ in excitation]

    cfg = pymca_defaults()
    cfg["fit"].update(
        energy=[e for e, _ in excitation],
        energyweight=[w for _, w in excitation],
        energyflag=[1] * len(excitation),
        energyscatter=energy_scatter,
        scatterflag=int(scatter and any(energy_scatter)),
        xmin=xmin, xmax=xmax, use_limit=1,
        stripflag=1, stripalgorithm=1, snipwidth=snip, stripfilterwidth=1,
        stripanchorsflag=0, stripanchorslist=[0, 0, 0, 0], continuum=0,
        linearfitflag=1, fitweight=0, hypermetflag=1, fitfunction=0,
        escapeflag=int(bool(escape)), sumflag=0, strategyflag=0,
    )  # fmt: skip
    cfg["detector"].update(
        zero=zero, gain=gain, noise=noise, fano=fano, detele="Si",
        fixedzero=1, fixedgain=1, fixednoise=1, fixedfano=1,
    )  # fmt: skip
    cfg["peaks"] = peaks

    position = labels.index(det_label) if det_label is not None and labels else 0
    absorbers, detele = _detector_attenuators(attrs, position)
    cfg["attenuators"].update(absorbers)
    if detele:
        cfg["detector"]["detele"] = detele
    cfg["attenuators"]["Matrix"] = _matrix_entry(
        matrix, len(excitation) > 1, (alpha_in, alpha_out, scatter_angle)
    )
    cfg["detector"].update(_plain(det_update))
    for name, values in overrides.items():
        if name == "peaks":  # peaks are per element: an override replaces that element's shells
            cfg["peaks"].update(_plain(values))
        else:
            _merge(cfg, {name: values})
    return validate_config(cfg, nchan=nchan, method="full")
