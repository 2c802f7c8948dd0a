"""Check a PyMca fit configuration against the spectra and a fit method, before any computation.

What PyMca itself cannot fit, and options a method does not support, raise a
:class:`~xrfdask.errors.ConfigError` naming the key (``"fit.xmin"``, ``"peaks.Xx"``) and, for a
method's limits, the method that supports the option. What PyMca tolerates although it is
questionable (a group the excitation cannot excite, a group with no line in the fit range, a fit
range beyond the spectra...) is fitted as PyMca fits it, with an
:class:`~xrfdask.errors.XrfdaskWarning` naming the key and what PyMca does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xraylib

from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.fit.config.text import load_config
from xrfdask.fit.engines import METHODS
from xrfdask.physics import (
    SHELLS,
    SUBSHELLS,
    edge_energy,
    element_symbol,
    fwhm,
    group_lines,
    pymca_shells,
    radiative_group_lines,
)

__all__ = ["validate_config", "METHODS"]


_FIT_INTS = ("xmin", "xmax", "snipwidth", "stripfilterwidth", "stripwidth", "stripiterations",
             "linpolorder", "exppolorder", "maxiter")  # fmt: skip
_FIT_FLAGS = ("use_limit", "stripflag", "escapeflag", "sumflag", "scatterflag", "linearfitflag",
              "stripanchorsflag", "strategyflag")  # fmt: skip
_DETECTOR_NUMBERS = ("zero", "gain", "noise", "fano", "sum", "deltazero", "deltagain",
                     "deltanoise", "deltafano", "deltasum")  # fmt: skip
#: Hypermet tail and step parameters of ``[peakshape]`` (each with ``delta<name>`` and
#: ``fixed<name>``).
_PEAKSHAPE = ("st_arearatio", "st_sloperatio", "lt_arearatio", "lt_sloperatio",
              "step_heightratio", "eta_factor")  # fmt: skip
_MIN_ENERGY_KEV = 0.1  # the softest excitation a fluorescence fit can use
_DETECTOR_FLAGS = ("fixedzero", "fixedgain", "fixednoise", "fixedfano", "fixedsum")


def _fail(key: str, message: str) -> None:
    raise ConfigError(f"{key}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_int(key: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not _is_number(value) or float(value) != int(value):
        _fail(key, f"expected an integer, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        _fail(key, f"expected an integer >= {minimum}, got {out}")
    return out


def _as_float(
    key: str, value: Any, *, minimum: float | None = None, positive: bool = False
) -> float:
    if not _is_number(value):
        _fail(key, f"expected a number, got {value!r}")
    out = float(value)
    if positive and out <= 0:
        _fail(key, f"expected a positive number, got {out:g}")
    if minimum is not None and out < minimum:
        _fail(key, f"expected a number >= {minimum:g}, got {out:g}")
    return out


def _as_flag(key: str, value: Any, allowed: Sequence[int] = (0, 1)) -> int:
    if isinstance(value, bool):
        value = int(value)
    if not _is_number(value) or float(value) != int(value) or int(value) not in allowed:
        choices = "/".join(str(a) for a in allowed)
        _fail(key, f"expected {choices}, got {value!r}")
    return int(value)


def _section(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    section = cfg.get(name)
    if not isinstance(section, dict):
        _fail(name, f"expected a configuration section, got {section!r}")
    return section


def _warn(key: str, message: str) -> None:
    # Attributed to this module, so the test suite's filter (error:::xrfdask.*) catches any
    # warning a test does not expect.
    warnings.warn(f"{key}: {message}", XrfdaskWarning, stacklevel=2)


def _lenient_int(key: str, value: Any, *, minimum: int) -> int:
    """An integer setting PyMca truncates (``int(width)``): a fraction warns and is truncated."""
    if isinstance(value, bool) or not _is_number(value):
        _fail(key, f"expected an integer, got {value!r}")
    out = int(value)
    if float(value) != out:
        _warn(key, f"expected an integer, got {value!r}; PyMca truncates it to {out}")
    if out < minimum:
        _fail(key, f"expected an integer >= {minimum}, got {out}")
    return out


def _lenient_flag(key: str, value: Any, allowed: Sequence[int] = (0, 1)) -> int:
    """A flag PyMca only tests for truth: any other value warns and counts as on or off."""
    if isinstance(value, bool):
        return int(value)
    if _is_number(value) and float(value) == int(value) and int(value) in allowed:
        return int(value)
    if isinstance(value, list | dict) or value is None:
        _fail(key, f"expected {'/'.join(str(a) for a in allowed)}, got {value!r}")
    out = int(bool(value))
    _warn(
        key, f"expected {'/'.join(str(a) for a in allowed)}, got {value!r}; PyMca takes it as {out}"
    )
    return out


def _check_fit(fit: dict[str, Any], method: str) -> None:
    for key in ("xmin", "xmax"):
        if key not in fit:
            _fail(f"fit.{key}", "missing")
        value = fit[key]
        if isinstance(value, bool) or not _is_number(value):
            _fail(f"fit.{key}", f"expected a channel number, got {value!r}")
        if float(value) != int(value):  # PyMca fits the channels x with xmin <= x <= xmax
            channel = math.ceil(value) if key == "xmin" else math.floor(value)
            _warn(
                f"fit.{key}",
                f"{value!r} is not a channel number; PyMca fits from/to channel {channel}",
            )
            value = channel
        fit[key] = int(value)
    for key in ("snipwidth",):  # PyMca's SNIP truncates its width; <= 0 means no SNIP pass
        if key in fit:
            fit[key] = _lenient_int(f"fit.{key}", fit[key], minimum=-(2**31))
            if fit[key] < 1 and fit.get("stripflag"):
                _warn(
                    "fit.snipwidth",
                    f"{fit[key]}: PyMca runs no SNIP pass, so the background is the smoothed "
                    "spectrum itself and every area comes out near 0",
                )
    for key in _FIT_INTS:
        if key in fit and key not in ("xmin", "xmax", "snipwidth"):
            minimum = 1 if key in ("stripfilterwidth", "stripwidth") else 0
            fit[key] = _as_int(f"fit.{key}", fit[key], minimum=minimum)
    for key in _FIT_FLAGS:
        if key in fit:
            fit[key] = _lenient_flag(f"fit.{key}", fit[key])
    fit["use_limit"] = 1  # xmin/xmax are always honoured (as FastXRFLinearFit does)
    fit["stripalgorithm"] = _as_flag("fit.stripalgorithm", fit.get("stripalgorithm", 0))
    fit["fitweight"] = _lenient_flag("fit.fitweight", fit.get("fitweight", 0), (0, 1, 2))
    hypermet = fit.get("hypermetflag", 1)
    if isinstance(hypermet, bool) or not _is_number(hypermet) or hypermet != int(hypermet):
        _fail("fit.hypermetflag", f"expected bit flags 0-15, got {hypermet!r}")
    fit["hypermetflag"] = int(hypermet)
    if not 0 <= hypermet <= 15:
        fit["hypermetflag"] = int(hypermet) & 15  # what PyMca uses; 1e20 overflows its C long
        _warn(
            "fit.hypermetflag",
            f"{int(hypermet)} is not 0-15; PyMca uses its four lowest bits "
            f"({int(hypermet) & 15}: 1 Gaussian, 2 short tail, 4 long tail, 8 step)",
        )
    fit["continuum"] = _as_flag("fit.continuum", fit.get("continuum", 0), tuple(range(6)))
    if fit["continuum"] == 5 and method in ("linear", "pymca"):
        _fail(
            "fit.continuum",
            f"method {method!r} cannot fit the exponential polynomial continuum (5) (PyMca: "
            "'Linear fit is incompatible with current implementation of the Exponential "
            "Polynomial background'); method 'full' fits it",
        )
    if fit.get("fitfunction") is not None:
        fit["fitfunction"] = _as_flag("fit.fitfunction", fit["fitfunction"])
    for key in ("deltachi", "deltaonepeak", "stripconstant"):
        if key in fit:
            fit[key] = _as_float(f"fit.{key}", fit[key], minimum=0.0)
    if fit.get("stripanchorsflag"):
        anchors = fit.get("stripanchorslist", [])
        anchors = anchors if isinstance(anchors, list) else [anchors]
        fit["stripanchorslist"] = [_as_int("fit.stripanchorslist", a, minimum=0) for a in anchors]


def _no_energy(fit: dict[str, Any], why: str) -> list[tuple[float, float]]:
    _warn(
        "fit.energy",
        f"{why}; PyMca fits every group with the line ratios of its radiative rates and fits no "
        "scatter peak",
    )
    return []


def _check_energies(cfg: dict[str, Any]) -> list[tuple[float, float]]:
    """Normalise fit.energy & co. to lists; return the enabled (energy, weight) pairs.

    Empty when PyMca has no excitation energy to use (``energy = None``, none enabled).
    """
    fit = cfg["fit"]
    energy = fit.get("energy")
    if energy is None or energy == "" or isinstance(energy, str):
        return _no_energy(fit, f"no excitation energy (energy = {energy!r})")
    if not isinstance(energy, list):
        # A scalar energy: PyMca discards the companion lists and uses one line of weight 1.
        energy = [energy]
        fit["energyweight"], fit["energyflag"], fit["energyscatter"] = [1.0], [1], [1]
    n = len(energy)
    companions = {}
    for key, default in (("energyweight", 1.0), ("energyflag", 1), ("energyscatter", 1)):
        values = fit.get(key, [default] * n)
        values = values if isinstance(values, list) else [values]
        if len(values) < n:
            _fail(f"fit.{key}", f"{len(values)} values for {n} excitation energies")
        companions[key] = values
    energies, weights, flags, scatters = [], [], [], []
    enabled = []
    for i, e in enumerate(energy):
        flag = _lenient_flag(f"fit.energyflag[{i}]", companions["energyflag"][i])
        scatter = _lenient_flag(f"fit.energyscatter[{i}]", companions["energyscatter"][i])
        weight = companions["energyweight"][i]
        if e is not None:
            e = _as_float(f"fit.energy[{i}]", e, positive=True)
            if e < _MIN_ENERGY_KEV:  # PyMca's cross sections overflow (1e-300 keV: exp(inf))
                _fail(f"fit.energy[{i}]", f"{e:g} keV is not an X-ray energy (>= 0.1 keV)")
            weight = _as_float(f"fit.energyweight[{i}]", weight, minimum=0.0)
            if flag:
                enabled.append((e, weight))
        energies.append(e)
        weights.append(weight)
        flags.append(flag)
        scatters.append(scatter)
    fit["energy"], fit["energyweight"] = energies, weights
    fit["energyflag"], fit["energyscatter"] = flags, scatters
    if all(e is None for e in energies):  # PyMca fails on a list of None (IndexError)
        _fail("fit.energy", f"no positive excitation energy (energy = {energy!r})")
    if not enabled:
        shown = ", ".join(str(e) for e in energy[:4]) + (", ..." if n > 4 else "")
        return _no_energy(fit, f"no excitation energy enabled (energy = {shown}, energyflag 0)")
    if sum(w for _, w in enabled) <= 0:
        if len(enabled) > 1:
            _fail("fit.energyweight", "the enabled excitation energies all have weight 0")
        _warn("fit.energyweight", "weight 0 for the only excitation energy; PyMca ignores it")
        enabled = [(enabled[0][0], 1.0)]
    return enabled


def _check_detector(det: dict[str, Any], escape: bool) -> None:
    for key in _DETECTOR_NUMBERS:
        if key in det or key in ("zero", "gain", "noise", "fano"):
            det[key] = _as_float(f"detector.{key}", det.get(key))
    if det["gain"] <= 0:
        _fail("detector.gain", f"expected a positive gain (keV per channel), got {det['gain']:g}")
    if not 0 <= det["fano"] <= 10:  # 1e308 overflows PyMca's peak widths
        _fail("detector.fano", f"expected a Fano factor in 0-10 (Si 0.114), got {det['fano']:g}")
    if abs(det["noise"]) > 10:
        _fail("detector.noise", f"expected a noise within -10 to 10 keV, got {det['noise']:g}")
    if det["noise"] < 0:
        _warn(
            "detector.noise",
            f"negative noise {det['noise']:g}; PyMca's resolution uses noise², so it fits as "
            f"{-det['noise']:g}",
        )
    for key in _DETECTOR_FLAGS:
        if key in det:
            det[key] = _lenient_flag(f"detector.{key}", det[key])
    if escape and element_symbol(det.get("detele")) is None:
        detele = det.get("detele")
        _fail("detector.detele", f"expected the detector's element symbol, got {detele!r}")


def _check_peakshape(cfg: dict[str, Any]) -> None:
    shape = _section(cfg, "peakshape") if "peakshape" in cfg else {}
    for name in _PEAKSHAPE:
        for key in (name, f"delta{name}"):
            if key in shape:
                shape[key] = _as_float(f"peakshape.{key}", shape[key])
        if f"fixed{name}" in shape:
            shape[f"fixed{name}"] = _lenient_flag(f"peakshape.fixed{name}", shape[f"fixed{name}"])


def _check_material(cfg: dict[str, Any], key: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or name.strip() == "-":
        _fail(key, f"enabled without a material (got {name!r})")
    if name in cfg.get("materials", {}):
        return
    from PyMca5.PyMcaPhysics.xrf import Elements

    if name in Elements.Material.keys():
        return
    try:
        xraylib.CompoundParser(name)
    except ValueError:
        _fail(key, f"{name!r} is neither a chemical formula nor a material in [materials]")


def _check_attenuators(cfg: dict[str, Any], n_energies: int) -> None:
    attenuators = _section(cfg, "attenuators")
    for name, entry in attenuators.items():
        key = f"attenuators.{name}"
        if not isinstance(entry, list) or len(entry) < 4:
            _fail(key, f"expected [use, material, density, thickness, ...], got {entry!r}")
        entry[0] = _as_flag(key, entry[0])
        is_matrix = name.upper() == "MATRIX"
        if is_matrix and len(entry) >= 6:
            entry[4] = _as_float(f"{key} (incident angle)", entry[4])
            entry[5] = _as_float(f"{key} (outgoing angle)", entry[5])
            if len(entry) >= 8:
                entry[6] = _as_flag(f"{key} (scattering angle flag)", entry[6])
                entry[7] = _as_float(f"{key} (scattering angle)", entry[7])
        if not entry[0]:
            continue
        entry[2] = _as_float(f"{key} (density)", entry[2], minimum=0.0)
        entry[3] = _as_float(f"{key} (thickness)", entry[3], minimum=0.0)
        if is_matrix:
            if len(entry) < 6:
                _fail(
                    key,
                    "expected [use, material, density, thickness, alpha_in, alpha_out], "
                    f"got {entry!r}",
                )
            for angle, what in ((entry[4], "incident angle"), (entry[5], "outgoing angle")):
                if not 0.0 < angle < 180.0:  # PyMca divides by their sines
                    _fail(f"{key} ({what})", f"expected degrees within (0, 180), got {angle:g}")
            if str(entry[1]).upper() == "MULTILAYER":
                layers = cfg.get("multilayer") or {}
                entries = layers.values()  # eager-ok: dict
                used = [v for v in entries if isinstance(v, list) and v and v[0]]
                if not used:
                    _fail(key, "MULTILAYER matrix without any layer in use in [multilayer]")
                continue
        elif len(entry) > 4:
            funny = _as_float(f"{key} (funny factor)", entry[4], minimum=0.0)
            if funny > 1.0:
                _fail(key, f"the open fraction (funny factor) must be within 0-1, got {funny:g}")
        _check_material(cfg, key, entry[1])
    if n_energies > 1:
        matrix = attenuators.get("Matrix")
        if not (isinstance(matrix, list) and matrix and matrix[0]):
            _fail(
                "attenuators.Matrix",
                f"{n_energies} excitation energies need a sample matrix in use (PyMca: "
                "'Multiple energies require a matrix definition'); set Matrix = 1, <formula>, ...",
            )


def _check_peaks(
    cfg: dict[str, Any],
    excitation: list[tuple[float, float]],
    energy_range: tuple[float, float],
    scatter: bool,
) -> None:
    """Normalise ``[peaks]``; warn about groups PyMca fits oddly or leaves out."""
    peaks = cfg.get("peaks")
    if not isinstance(peaks, dict):
        _fail("peaks", f"expected a section of element = shells, got {peaks!r}")
    emax = max((e for e, _ in excitation), default=None)
    exc = tuple(excitation)
    lo, hi = energy_range
    normalized: dict[str, Any] = {}
    in_range = 0
    for name, value in peaks.items():
        sym = element_symbol(name)
        if sym is None:
            _fail(f"peaks.{name}", f"{name!r} is not an element symbol")
        key = f"peaks.{sym}"
        if sym in normalized:  # PyMca would fit two parameters of the same name
            _fail(key, "element given twice")
        shells = value if isinstance(value, list) else [value]
        if not shells or not all(isinstance(s, str) and s.strip() for s in shells):
            _fail(key, f"expected shells such as 'K' or ['L', 'M'], got {value!r}")
        shells = [s.strip() for s in shells]
        z = xraylib.SymbolToAtomicNumber(sym)
        offered = pymca_shells(sym)
        for shell in shells:
            if shell not in SHELLS:
                _fail(key, f"unknown shell {shell!r}: expected one of {', '.join(SHELLS)}")
            if shell not in offered:
                have = ", ".join(offered) or "none"
                _fail(key, f"PyMca has no {shell} lines for {sym} (it offers {have})")
            if shells.count(shell) > 1:  # PyMca would fit two parameters of the same name
                _fail(key, f"shell {shell!r} given twice")
            overlap = [s for s in SUBSHELLS.get(shell, ()) if s in shells]
            if overlap:
                _warn(
                    key,
                    f"{shell!r} and {overlap[0]!r} overlap; PyMca fits both groups, the same "
                    "lines twice, and how it shares their counts between them is arbitrary",
                )
            edge = edge_energy(z, shell)
            lines = group_lines(z, shell, exc) if emax is not None and edge < emax else ()
            if not lines:
                lines = radiative_group_lines(z, shell)
                if emax is not None:
                    _warn(
                        key,
                        f"{sym} {shell} cannot be excited: its edge {edge:.3f} keV is above the "
                        f"highest excitation energy {emax:.3f} keV; PyMca fits it with the line "
                        f"ratios of its radiative rates and reports a '{sym} {shell}' area",
                    )
            if lines and not any(lo <= e <= hi for e, _ in lines):
                found = ", ".join(f"{e:.2f}" for e, _ in sorted(lines)[:4])
                _warn(
                    key,
                    f"no {sym} {shell} line ({found} keV) within the fit range "
                    f"{lo:.2f}-{hi:.2f} keV; PyMca leaves the group out (no '{sym} {shell}' area)",
                )
            else:
                in_range += 1
        normalized[sym] = shells[0] if len(shells) == 1 else shells
    if not in_range:
        if not scatter:
            _fail(
                "peaks",
                "nothing to fit: no element line and no scatter peak within the fit range "
                "(PyMca: 'No free parameters to be fitted')",
            )
        if not peaks:
            _warn("peaks", "no element to fit (the [peaks] section is empty); PyMca fits only "
                  "the scatter peaks")  # fmt: skip
    cfg["peaks"] = normalized


def validate_config(config: Any, *, nchan: int, method: str) -> dict[str, Any]:
    """Check a configuration for spectra of ``nchan`` channels and a fit method, up front.

    Only the configuration and ``nchan`` are looked at, so every error surfaces before any
    computation on the map.

    Parameters
    ----------
    config : dict, ConfigDict, str or path-like
        A configuration (completed with PyMca's defaults by :func:`load_config` first).
    nchan : int
        Number of channels of the spectra.
    method : {"linear", "pymca", "full"}
        ``"linear"`` (xrfdask's engine) and ``"pymca"`` (``FastXRFLinearFit``) need a SNIP
        background (or none) and no fit strategy; ``fitweight`` 2 (individual pixel weights)
        is for ``"pymca"`` and ``"full"`` only.

    Returns
    -------
    dict
        The normalised configuration: ``fit.use_limit`` 1, integers cast (``100.0`` -> 100),
        flags 0/1, ``fit.energy``/``energyweight``/``energyflag``/``energyscatter`` as lists of
        equal length, element symbols capitalised (``"FE"`` -> ``"Fe"``), one shell as a string
        and several as a list.

    Raises
    ------
    ConfigError
        Naming the key (``"fit.xmin"``, ``"peaks.Xx"``, ``"fit.stripalgorithm"``...), for what
        PyMca cannot fit: a wrong type, an unknown element or shell, an empty fit range, a
        negative or zero excitation energy, several excitation energies without a matrix,
        nothing to fit; and for an option the method does not support (the message names the
        method that does).

    Warns
    -----
    XrfdaskWarning
        Naming the key and what PyMca does, for what PyMca fits although it is questionable: a
        group the excitation cannot excite (fitted with its radiative-rate line ratios), a group
        with no line in the fit range (left out), a fit range beyond the spectra (cut to them),
        no excitation energy, overlapping groups, a fractional channel or SNIP width, a flag
        other than 0/1 (taken as on), an empty ``[peaks]`` section with scatter peaks to fit.
    """
    if method not in METHODS:
        raise ConfigError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(nchan, bool) or not isinstance(nchan, int | np.integer) or nchan < 2:
        raise ConfigError(f"nchan: expected the number of channels (>= 2), got {nchan!r}")
    nchan = int(nchan)
    cfg = load_config(config)
    fit = _section(cfg, "fit")
    det = _section(cfg, "detector")
    _check_fit(fit, method)

    # Fit range: channels of the spectra, inclusive as PyMca's setData uses them. PyMca fits
    # whatever channels of the spectra lie in the range, so a range beyond them is cut to them.
    xmin, xmax = fit["xmin"], fit["xmax"]
    if xmin < 0:
        _warn("fit.xmin", f"negative channel {xmin}; PyMca fits from channel 0")
        xmin = fit["xmin"] = 0
    if xmax >= nchan:
        _warn(
            "fit.xmax",
            f"channel {xmax} is beyond the spectra's last channel {nchan - 1} (the spectra have "
            f"{nchan} channels, shorter than the configured range {xmin}-{xmax}); PyMca fits up "
            "to the last channel",
        )
        xmax = fit["xmax"] = nchan - 1
    if xmin >= xmax:
        _fail("fit.xmin", f"xmin {xmin} is not below xmax {xmax} (PyMca: 'No free parameters')")

    if method in ("linear", "pymca"):
        if fit.get("stripflag") and fit["stripalgorithm"] != 1:
            _fail(
                "fit.stripalgorithm",
                f"method {method!r} needs the SNIP background (stripalgorithm = 1) when "
                f"stripflag = 1, got {fit['stripalgorithm']} (PyMca's fast fit: 'Please use the "
                "faster SNIP background'); method 'full' fits the strip background",
            )
        if fit.get("strategyflag"):
            _fail(
                "fit.strategyflag",
                f"fit strategies are not supported by method {method!r} (PyMca: 'Strategies "
                "are incompatible with fast fit'); method 'full' runs them",
            )
    if method == "linear" and fit["fitweight"] == 2:
        _fail(
            "fit.fitweight",
            "individual pixel weights (2) are supported by methods 'pymca' and 'full' only",
        )

    _check_detector(det, bool(fit.get("escapeflag")))
    _check_peakshape(cfg)
    excitation = _check_energies(cfg)
    _check_attenuators(cfg, len(excitation))
    # A group is useful only if one of its lines lies in the fit range (with room for its width).
    zero, gain = det["zero"], det["gain"]
    e_lo, e_hi = zero + gain * xmin, zero + gain * xmax
    margin = 2 * fwhm(e_hi, det["noise"], det["fano"])
    scatter = bool(fit.get("scatterflag")) and any(
        s and e is not None and f and e_lo - margin <= e <= e_hi + margin
        for e, f, s in zip(fit["energy"], fit["energyflag"], fit["energyscatter"], strict=True)
    ) if excitation else False  # fmt: skip
    _check_peaks(cfg, excitation, (e_lo - margin, e_hi + margin), scatter)
    return cfg
