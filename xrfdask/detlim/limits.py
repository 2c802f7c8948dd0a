"""Detection limits and elemental yields of a reference material (xrf_proc's ``calc_detlim``).

From the normalised sum-spectrum areas P and backgrounds B of a reference-material map
(:func:`xrfdask.normalise`'s ``sum_area``/``sum_background``) and the material's certified
composition (a ``.cnc`` file), spec ``xrf_proc.md`` section 5:

- the normalisation is undone: P = P_norm · ΣI0 / I0n, B likewise (ΣI0 is ``I0_total``, Σ(I0·t)
  with ``TmNorm``); T = Σt (``time_total``, seconds);
- DL₁ = 3 √(B·T) / P · c (ppm) and DL₁₀₀₀ = DL₁ / √1000;
- the information depth d = min(ln(100) / (ρ μ(E)), thickness / sin(tilt)), μ the composition's
  PyMca mass attenuation at the α1 energy of the line's family; the areal concentration
  c_A = c ρ d (µg/cm²); the elemental yield Y = P_norm / I0n / c_A = P / ΣI0 / c_A, in counts
  per I0 count (with ``TmNorm``: per I0 count x s) per µg/cm².

Errors are 1σ: σ_DL = DL √(ε_P² + (ε_B/2)² + (σ_c/c)²) (ε relative errors of P, B and c;
√B carries half of B's relative error), σ_Y = Y √((σ_c/c)² + ε_P²). ``compat="xrf_proc"``
gives the original's σ_DL with the full ε_B instead of ε_B/2 (spec 12.13); everything else is
the same in both modes.

Beyond the original: areal reference concentrations (the AXO thin film's ``ng/mm^2``) are used
directly (c_A = c · 0.1 µg/cm² per ng/mm², over sin(tilt) as the thickness is), with the detection
limits then in µg/cm²; a reference whose density or thickness is 0 (crm278r.cnc) gets detection
limits but NaN yields and a warning naming the file and the lines, never infinite ones; several
reference materials are kept side by side in one file (``detlim/<cnc>``, ``elyield/<cnc>``).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.io.cnc import Cnc, read_cnc
from xrfdask.physics import alpha1_energy, composition_attenuation, line_element

__all__ = [
    "detection_limits",
    "reference_concentrations",
    "concentration_unit",
    "ReferenceLines",
    "YIELD_UNIT",
]

#: The real unit of the elemental yield (xrf_proc's stored ``Unit`` attr says "(ct/s)/(ug/cm²)").
YIELD_UNIT = "counts/(I0 count)/(ug/cm2)"
YIELD_UNIT_TMNORM = "counts/(I0 count x s)/(ug/cm2)"
_LN100 = math.log(100.0)  # escape depth: 99 % absorbed

# Concentration units of a cnc file, as factors to ppm (mass fractions) or to µg/cm² (areal).
_MASS_UNITS = {"ppm": 1.0, "ug/g": 1.0, "mg/kg": 1.0, "ppb": 1e-3, "ng/g": 1e-3, "%": 1e4}
_AREAL_UNITS = {"ng/mm2": 0.1, "ug/cm2": 1.0, "ng/cm2": 1e-3, "mg/cm2": 1e3, "g/cm2": 1e6}
_SUMS = ("sum_area", "sum_background", "sum_area_error", "sum_background_error")


def concentration_unit(unit: str) -> tuple[str, float]:
    """Classify a cnc concentration unit: ("mass", factor to ppm) or ("areal", to µg/cm²).

    Raises
    ------
    ConfigError
        A unit that is neither a mass fraction nor an areal density.
    """
    key = (
        str(unit)
        .strip()
        .lower()
        .replace("µ", "u")
        .replace("μ", "u")
        .replace("²", "2")
        .replace("^", "")
        .replace(" ", "")
        .replace("wt%", "%")
    )
    if key in _MASS_UNITS:
        return "mass", _MASS_UNITS[key]
    if key in _AREAL_UNITS:
        return "areal", _AREAL_UNITS[key]
    known = ", ".join([*_MASS_UNITS, *_AREAL_UNITS])
    raise ConfigError(f"concentration unit {unit!r} is not one of {known}")


class ReferenceLines:
    """Per-line reference quantities (spec 5.3) of the lines a cnc certifies, in line order.

    Attributes
    ----------
    lines : list of str
        The kept lines (fitted element lines whose element the cnc certifies with c > 0).
    z : (K,) int
    energy : (K,) float, keV, the α1 energy of each line's family (PyMca)
    mu : (K,) float, cm²/g, the composition's attenuation at ``energy`` (PyMca)
    escape_depth, virtual_thickness, depth : (K,) float, cm (d = min of the two)
    conc, conc_error : (K,) float, in ``unit`` (ppm for mass fractions, µg/cm² for areal files)
    areal : (K,) float, µg/cm², c_A (NaN where the cnc cannot give it)
    unit : str, "ppm" or "ug/cm2": the unit of ``conc`` and of the detection limits
    """

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def reference_concentrations(
    lines: list[str], cnc: Cnc | str | os.PathLike, tilt: float = 90.0
) -> ReferenceLines:
    """The concentrations, information depths and areal concentrations of spec 5.3.

    Parameters
    ----------
    lines : list of str
        Line groups of the fit (``"Fe K"``, ``"Pb L"``, ``"Compt"``...).
    cnc : Cnc or path
    tilt : float
        Angle between beam and sample surface, degrees (90: normal incidence).

    Returns
    -------
    ReferenceLines
        Scatter peaks and lines of elements absent from the cnc are left out; several lines of
        one element each get its concentration.

    Warns
    -----
    XrfdaskWarning
        An element the cnc lists with concentration 0 (its lines are left out); a cnc whose
        density or thickness is 0, so c_A is 0 and the yields are undefined (NaN).
    """
    cnc = read_cnc(cnc)
    if not np.isfinite(tilt) or not 0.0 < float(tilt) < 180.0:
        raise ConfigError(f"tilt={tilt!r}: the sample tilt must be between 0 and 180 degrees")
    try:
        kind, factor = concentration_unit(cnc.unit)
    except ConfigError as exc:  # the file's own unit: name the file
        raise ConfigError(f"{cnc.path or cnc.basename}: {exc}") from None
    kept, zs, conc, err, zero = [], [], [], [], []
    for line in lines:
        element = line_element(str(line))
        if element is None:
            continue  # Compt, Rayl...
        found = cnc.concentration(element)
        if found is None:
            continue
        if found[0] <= 0:
            zero.append(str(line))
            continue
        kept.append(str(line))
        zs.append(int(_z(element)))
        conc.append(found[0] * factor)
        err.append(found[1] * factor)
    if zero:
        warnings.warn(
            f"{cnc.basename}: concentration 0 for {', '.join(zero)}: left out of the detection "
            "limits and yields",
            XrfdaskWarning,
            stacklevel=3,
        )
    conc, err = np.asarray(conc, dtype=float), np.asarray(err, dtype=float)
    energy = np.array([alpha1_energy(line, "pymca") for line in kept], dtype=float)
    sin_tilt = math.sin(float(tilt) * math.pi / 180.0)
    rho = cnc.density_g_cm3
    if kind == "mass":
        # Attenuation of the composition: w_i = c_i / 10⁶ in ppm.
        mu = np.array([composition_attenuation(cnc, e, "pymca") * factor for e in energy])
        with np.errstate(divide="ignore"):
            escape = np.where(rho * mu > 0, _LN100 / (rho * mu), np.inf)
        virtual = np.full(len(kept), cnc.thickness / sin_tilt * 1e-4)
        depth = np.where(escape > virtual, virtual, escape)
        areal = conc * rho * depth
        unit = "ppm"
    else:  # areal: the certified µg/cm² of the surface, crossed over 1/sin(tilt) by the beam
        mu = np.full(len(kept), np.nan)
        escape = virtual = depth = np.full(len(kept), np.nan)
        areal = conc / sin_tilt
        unit = "ug/cm2"
    bad = [line for line, a in zip(kept, areal, strict=True) if not (np.isfinite(a) and a > 0)]
    if bad:
        warnings.warn(
            f"{cnc.basename}: density {cnc.density:g} mg/cm3 and thickness {cnc.thickness:g} um "
            f"give no areal concentration for {', '.join(bad)}: elemental yields are NaN "
            "(detection limits are computed); give the density and thickness in the file",
            XrfdaskWarning,
            stacklevel=3,
        )
        areal = np.where(np.isfinite(areal) & (areal > 0), areal, np.nan)
    return ReferenceLines(
        lines=kept,
        z=np.asarray(zs, dtype=np.int64),
        energy=energy,
        mu=mu,
        escape_depth=escape,
        virtual_thickness=virtual,
        depth=depth,
        conc=conc,
        conc_error=err,
        areal=areal,
        unit=unit,
        kind=kind,
        cnc=cnc,
    )


def _z(symbol: str) -> int:
    import xraylib

    return xraylib.SymbolToAtomicNumber(symbol)


def _tmnorm(attrs: dict) -> bool:
    if "tmnorm" in attrs:
        return bool(attrs["tmnorm"])
    value = attrs.get("TmNorm", False)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _ratio(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """a / b, 0 where b is 0 (no division warnings; NaN stays NaN)."""
    return xr.where(b != 0, a / b.where(b != 0), 0.0)


def _totals(nrm: xr.Dataset, raw: xr.Dataset | None, tmnorm: bool):
    """(I0_total, time_total, raw ΣI0 or None) per detector: from ``nrm``, else from ``raw``."""
    stored = "I0_total" in nrm and "time_total" in nrm
    if stored and not tmnorm:
        return nrm["I0_total"], nrm["time_total"], nrm["I0_total"]
    if stored and "I0_raw_total" in nrm:  # xrfdask's normalise records the plain sum of I0 too
        return nrm["I0_total"], nrm["time_total"], nrm["I0_raw_total"]
    if raw is None:
        if stored:
            return nrm["I0_total"], nrm["time_total"], None
        missing = [v for v in ("I0_total", "time_total") if v not in nrm]
        raise ConfigError(
            f"the normalised result lacks {', '.join(missing)} (a norm/ group read from a file "
            "does not store them): pass raw= the map with I0 and acquisition_time"
        )
    for name in ("I0", "acquisition_time"):
        if name not in raw:
            raise ConfigError(
                f"the raw map has no {name!r} (raw/{name}): needed to undo the normalisation"
            )
    i0, t = raw["I0"].astype(np.float64), raw["acquisition_time"].astype(np.float64)
    if "valid" in nrm:  # xrfdask's normalise: masked pixels did not enter the sums
        i0, t = i0.where(nrm["valid"], 0.0), t.where(nrm["valid"], 0.0)
    detectors = nrm["detector"]
    i0_raw = i0.sum(("y", "x")).broadcast_like(detectors)
    if stored:
        return nrm["I0_total"], nrm["time_total"], i0_raw
    i0_sum = (i0 * t).sum(("y", "x")).broadcast_like(detectors) if tmnorm else i0_raw
    return i0_sum, t.sum(("y", "x")).broadcast_like(detectors), i0_raw


def detection_limits(
    nrm: xr.Dataset,
    cnc: Cnc | str | os.PathLike,
    tilt: float = 90.0,
    *,
    raw: xr.Dataset | None = None,
    compat: str | None = None,
) -> xr.Dataset:
    """1 s and 1000 s detection limits and elemental yields of a reference-material map.

    Parameters
    ----------
    nrm : xarray.Dataset
        The normalised reference map (:func:`xrfdask.normalise`, or ``open_h5(path,
        group="norm")``): ``sum_area``, ``sum_background``, ``sum_area_error``,
        ``sum_background_error`` (detector, line), ``I0_total`` and ``time_total`` (detector),
        attrs ``I0`` (the value normalised to) and ``TmNorm``.
    cnc : Cnc or path
        The reference material's certified composition (:func:`xrfdask.read_cnc`).
    tilt : float, default 90
        Angle between the beam and the sample surface (degrees); only the thickness is divided
        by sin(tilt), as xrf_proc does.
    raw : xarray.Dataset, optional
        The raw map (``I0``, ``acquisition_time``), needed when ``nrm`` lacks ``I0_total``/
        ``time_total`` (a ``norm/`` group xrf_proc wrote): ΣI0 (Σ(I0·t) with TmNorm) and Σt are
        then taken over its pixels (the ``valid`` ones where ``nrm`` has that mask), as
        xrf_proc takes them from ``raw/``. With TmNorm it also gives ``I0_total_raw`` (ΣI0).
    compat : {None, "xrf_proc"}
        ``"xrf_proc"``: the original's detection-limit errors, with the full relative error of
        B where √B contributes half of it (spec 12.13). Default: the correct ε_B/2.

    Returns
    -------
    xarray.Dataset
        On (detector, line), ``line`` the fitted element lines whose element the cnc certifies
        (no Compt/Rayl), in the fit's order: ``detection_limit_1s``, ``detection_limit_1s_error``,
        ``detection_limit_1000s``, ``detection_limit_1000s_error`` (ppm, or µg/cm² for an areal
        cnc; 1σ), ``elemental_yield``, ``elemental_yield_error`` (counts per I0 count, per I0
        count x s with TmNorm, per µg/cm²); ``norm_sum_area``, ``norm_sum_background`` (and
        their errors) (detector, norm_line): the reference's normalised sums of every fitted
        line; per line ``z``, ``line_energy`` (coordinates), ``reference_concentration``,
        ``areal_concentration``, ``information_depth``. attrs: ``cnc`` (file basename, the group
        key), ``unit``, ``yield_unit``, ``tilt``, ``I0``, ``TmNorm``, ``I0_total_raw`` (the
        reference's ΣI0; NaN with TmNorm and no ``raw``), ``compat``. ``xd.to_h5(dl, path)``
        writes ``detlim/<cnc>`` and ``elyield/<cnc>``.

    Raises
    ------
    ConfigError
        Missing variables or attrs, an unknown concentration unit, a tilt outside (0, 180).

    Warns
    -----
    XrfdaskWarning
        Elements with concentration 0 in the cnc (left out); a cnc without density or thickness
        (yields NaN).

    Notes
    -----
    Lines with P = 0 get NaN detection limits (xrf_proc: infinite). Variables stay lazy when
    ``nrm``'s sums are dask arrays; only the small totals for the attrs are computed.
    """
    if compat not in (None, "xrf_proc"):
        raise ConfigError(f"compat={compat!r}: expected None or 'xrf_proc'")
    missing = [v for v in _SUMS if v not in nrm]
    if missing:
        raise ConfigError(
            f"the normalised result lacks {', '.join(missing)}: pass xd.normalise's result or "
            "open_h5(path, group='norm')"
        )
    if "I0" not in nrm.attrs:
        raise ConfigError(
            "the normalised result has no attrs['I0'] (norm/I0, the value it was normalised to)"
        )
    cnc = read_cnc(cnc)
    tmnorm = _tmnorm(nrm.attrs)
    i0n = float(np.asarray(nrm.attrs["I0"]))
    if not np.isfinite(i0n) or i0n <= 0:
        raise ConfigError(f"the normalised result's I0 (norm/I0) is {i0n!r}, not a positive value")
    i0_total, time_total, i0_raw = _totals(nrm, raw, tmnorm)
    names = [str(v) for v in np.asarray(nrm["line"].values)]  # eager-ok: labels
    ref = reference_concentrations(names, cnc, tilt)
    sel = nrm[list(_SUMS)].sel(line=ref.lines)
    on_line = {"line": ref.lines}
    c = xr.DataArray(ref.conc, dims="line", coords=on_line)
    rel_c = xr.DataArray(
        np.divide(ref.conc_error, ref.conc, out=np.zeros_like(ref.conc), where=ref.conc > 0),
        dims="line",
        coords=on_line,
    )
    areal = xr.DataArray(ref.areal, dims="line", coords=on_line)

    p_norm, b_norm = sel["sum_area"], sel["sum_background"]
    normfactor = i0n / i0_total
    p = p_norm / normfactor
    b = b_norm / normfactor
    eps_p = _ratio(sel["sum_area_error"], p_norm)
    eps_b = _ratio(sel["sum_background_error"], b_norm)
    good_p = p.where(p > 0)
    dl1 = 3.0 * np.sqrt(b * time_total) / good_p * c
    dl1000 = dl1 / math.sqrt(1000.0)
    eps_b_dl = eps_b if compat == "xrf_proc" else eps_b / 2.0
    rel_dl = np.sqrt(eps_p**2 + eps_b_dl**2 + rel_c**2)
    dl1_err = dl1 * rel_dl
    dl1000_err = rel_dl * dl1000  # σ_DL1 / DL1 · DL1000
    y = p_norm / i0n / areal
    y_err = y * np.sqrt(rel_c**2 + eps_p**2)

    unit = ref.unit
    yunit = YIELD_UNIT_TMNORM if tmnorm else YIELD_UNIT
    dl_attrs = {"units": unit, "long_name": "detection limit (3 sigma of the background)"}
    err_attrs = {"units": unit, "long_name": "1-sigma error"}
    out = xr.Dataset(
        {
            "detection_limit_1s": dl1.assign_attrs(dl_attrs, counting_time_s=1.0),
            "detection_limit_1s_error": dl1_err.assign_attrs(err_attrs),
            "detection_limit_1000s": dl1000.assign_attrs(dl_attrs, counting_time_s=1000.0),
            "detection_limit_1000s_error": dl1000_err.assign_attrs(err_attrs),
            "elemental_yield": y.assign_attrs(units=yunit, long_name="elemental yield"),
            "elemental_yield_error": y_err.assign_attrs(units=yunit, long_name="1-sigma error"),
            "reference_concentration": c.assign_attrs(units=unit),
            "reference_concentration_error": (c * rel_c).assign_attrs(units=unit),
            "areal_concentration": areal.assign_attrs(units="ug/cm2"),
            "information_depth": xr.DataArray(ref.depth, dims="line", coords=on_line).assign_attrs(
                units="cm", long_name="min(escape depth, thickness / sin(tilt))"
            ),
        },
        coords={
            "z": ("line", ref.z),
            "line_energy": ("line", ref.energy, {"units": "keV", "long_name": "alpha-1 energy"}),
        },
    )
    norm = nrm[list(_SUMS)].rename(line="norm_line")
    for name in _SUMS:
        out[f"norm_{name}"] = norm[name].reset_coords(drop=True)
    out = out.transpose("detector", "line", "norm_line", missing_dims="ignore")
    for name, var in out.data_vars.items():
        if "detector" in var.dims:
            out[name] = var.transpose("detector", ...)
    i0_raw_value = float("nan")
    if i0_raw is not None:
        i0_raw_value = float(np.asarray(i0_raw.values).reshape(-1)[0])  # eager-ok: one total
    out.attrs = {
        "cnc": cnc.basename,
        "reference": cnc.name,
        "unit": unit,
        "yield_unit": yunit,
        "tilt": float(tilt),
        "I0": i0n,
        "TmNorm": "True" if tmnorm else "False",
        "I0_total_raw": i0_raw_value,
        "compat": compat or "none",
        "dl_error": (
            "xrf_proc: full relative background error"
            if compat == "xrf_proc"
            else "relative background error / 2 (sqrt(B))"
        ),
    }
    return out
