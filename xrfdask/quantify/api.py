"""``quantify``: normalised intensities -> concentrations (spec ``xrf_proc.md`` section 6).

Per pixel and for the sum spectrum, for each quantified line i (every fitted element line; scatter
lines are not quantified):

    x_i = I_i / normto                      intensity per I0 count (per I0 count x s with TmNorm)
    x_i = x_i / x_norm                      with norm_line (Rayl, Compt): relative to that line
    x_i = x_i * f_i                         with absorb: self-absorption correction
    c_i = x_i / Y_i                         µg/cm²: Y_i the reference yield (counts/I0/(µg/cm²))
    c_i = c_i / (rho d_i)                   µg/g with density rho and thickness d (capped by the
                                            escape depth of the composition at the line's energy)

Errors are absolute standard deviations, propagated in quadrature from the normalised map's own
errors and the yield's (no 0/0 where an area is 0). The unit is in ``attrs["unit"]``.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.io.cnc import read_cnc
from xrfdask.io.h5layout.schema import channel_name
from xrfdask.physics import alpha1_energy, composition_attenuation, line_element
from xrfdask.quantify import absorption
from xrfdask.quantify.masks import resolve_mask
from xrfdask.quantify.references import apply_norm_line, combine, line_yields, load_reference

__all__ = ["quantify", "div_by_cnc", "parse_density", "parse_thickness"]

COMPAT = (None, "xrf_proc")
ESCAPE = math.log(100.0)  # escape depth: 99 % absorbed (spec 5.3)

_DENSITY_UNITS = {"g/cm3": 1.0, "g/cm^3": 1.0, "mg/cm3": 1e-3, "mg/cm^3": 1e-3, "kg/m3": 1e-3}
_LENGTH_UNITS = {"cm": 1.0, "mm": 0.1, "um": 1e-4, "µm": 1e-4, "micron": 1e-4, "nm": 1e-7}


def _quantity(value: Any, units: dict[str, float], what: str, default: str) -> float:
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([^\s]*)\s*", value)
        unit = (m.group(2) if m else "") or default
        if not m or unit.replace("³", "3") not in units:
            raise ConfigError(
                f"{what} {value!r}: expected a number and one of {', '.join(units)} "
                f"(a bare number is {default})"
            )
        number = float(m.group(1)) * units[unit.replace("³", "3")]
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} {value!r} is not a number") from None
    if not number > 0 or not math.isfinite(number):
        raise ConfigError(f"{what} {value!r} must be positive")
    return number


def parse_density(value: Any) -> float:
    """Density in g/cm³: a number (g/cm³, as xrf_proc) or a string with a unit ("2491 mg/cm3")."""
    return _quantity(value, _DENSITY_UNITS, "density", "g/cm3")


def parse_thickness(value: Any) -> float:
    """Thickness in cm: a number (cm, as xrf_proc) or a string with a unit ("960 um", "0.1 mm")."""
    return _quantity(value, _LENGTH_UNITS, "thickness", "cm")


def _open(path: str, group: str) -> xr.Dataset:
    from xrfdask.io.convert import open_map

    return open_map(path, group=group)


def _sample(nrm: Any) -> tuple[xr.Dataset, str | None]:
    if isinstance(nrm, str | os.PathLike):
        path = os.fspath(nrm)
        return _open(path, "norm"), path
    if not isinstance(nrm, xr.Dataset):
        raise ConfigError(f"quantify: nrm is a normalised Dataset or a file, not {type(nrm)}")
    return nrm, None


def _check_sample(nrm: xr.Dataset) -> float:
    if "normalised" not in nrm:
        got = "a fit result" if "peak_area" in nrm else "no 'normalised' variable"
        raise ConfigError(f"quantify needs xd.normalise's result (normalised areas), got {got}")
    missing = [
        v for v in ("normalised_error", "sum_area", "sum_area_error") if v not in nrm.data_vars
    ]
    if missing:
        raise ConfigError(f"quantify: the normalised result has no {', '.join(missing)}")
    if "I0" not in nrm.attrs:
        raise ConfigError("quantify: the normalised result has no attrs['I0'] (normto)")
    return float(nrm.attrs["I0"])


def _tm(value: Any) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() == "true" if isinstance(value, str) else bool(value)


def _yields(
    refs: list, detectors: list, lines: list[str], norm_line: str | None, compat: bool
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Y and relative error (detector, line) of every quantified line, and how each was found."""
    y = np.zeros((len(detectors), len(lines)))
    eps = np.zeros_like(y)
    how = []
    for d, det in enumerate(detectors):
        ch = channel_name(det)
        per_ref = []
        for ref in refs:
            if ch not in ref.yields:
                raise ConfigError(
                    f"reference {ref.name}: no yields for detector {det!r} ({ch}); it has "
                    f"{', '.join(ref.yields) or 'none'}"
                )
            if norm_line is None:
                names, yy, sigma = ref.yields[ch]
                e = np.divide(sigma, yy, out=np.zeros_like(yy), where=yy != 0)
                per_ref.append((names, yy, e))
            else:
                per_ref.append(apply_norm_line(ref, ch, norm_line, n_refs=len(refs), compat=compat))
        names, yy, ee = combine(per_ref, compat=compat)
        y[d], eps[d], h = line_yields(lines, names, yy, ee, compat=compat)
        how.append(h)
    return y, eps, how


def _masked_mean(value: xr.DataArray, error: xr.DataArray, where: xr.DataArray):
    """Mean over the pixels ``where`` holds, and its error sqrt(sum sigma^2) / n (dask)."""
    n = where.sum(("y", "x"))
    mean = value.where(where).sum(("y", "x")) / n
    sigma = np.sqrt((error.where(where) ** 2).sum(("y", "x"))) / n
    return mean, sigma


def _compat_masked_sum(
    value: xr.DataArray, error: xr.DataArray, mask: xr.DataArray, raw: xr.Dataset, tmnorm: bool
):
    """xrf_proc's masked sums: sum(I m) / sum(I0 m) (tmnorm: I0 t), error P sqrt(sum eps^2)."""
    if raw is None or "I0" not in raw:
        raise ConfigError("quantify(compat='xrf_proc', mask=...): needs raw= (the map's I0)")
    i0 = raw["I0"].astype(np.float64)
    if tmnorm:
        i0 = i0 * raw["acquisition_time"]
    p = (value * mask).sum(("y", "x")) / (i0 * mask).sum(("y", "x"))
    eps = error / value
    eps_p = np.sqrt((eps.where(mask & eps.notnull(), 0.0) ** 2).sum(("y", "x")))
    return p, p * eps_p


def _absorption(
    absorb: Any,
    nrm: xr.Dataset,
    raw: xr.Dataset,
    lines: list[str],
    valid: xr.DataArray,
    compat: bool,
    calibration: Any,
) -> tuple[xr.Dataset, xr.DataArray, xr.DataArray]:
    """(ratio_exp/ratio_th/rhot variables, f (y, x, detector, line), its mean for the sums)."""
    try:
        elements, matrix = absorb
    except (TypeError, ValueError):
        raise ConfigError("absorb: expected (['Fe', ...], 'matrix.cnc')") from None
    if isinstance(elements, str):
        elements = [elements]
    if raw is None or "spectra" not in raw:
        raise ConfigError("absorb: needs the raw map (raw=, or nrm given as the sample file)")
    if raw.sizes["y"] != nrm.sizes["y"] or raw.sizes["x"] != nrm.sizes["x"]:
        raise ConfigError(
            f"absorb: the raw map is {raw.sizes['y']} x {raw.sizes['x']}, the normalised map "
            f"{nrm.sizes['y']} x {nrm.sizes['x']}"
        )
    detectors = np.atleast_1d(nrm["detector"].values).tolist()
    raw_dets = {channel_name(d): d for d in np.atleast_1d(raw["detector"].values).tolist()}
    missing = [d for d in detectors if channel_name(d) not in raw_dets]
    if missing:
        raise ConfigError(f"absorb: the raw map has no detector {missing[0]!r}")
    raw = raw.sel(detector=[raw_dets[channel_name(d)] for d in detectors])
    raw = raw.assign_coords(detector=nrm["detector"].values)
    consts = absorption.absorbers(list(elements), matrix, lines, compat=compat)
    config = None  # the fit's configuration (its calibration), when nrm carries it as text
    if calibration is None and "config" in nrm.data_vars and "detector" in nrm["config"].dims:
        config = [str(v) for v in nrm["config"].values]  # eager-ok: per-detector cfg text
    elif calibration is None and "[detector]" in str(nrm.attrs.get("config", "")):
        config = str(nrm.attrs["config"])
    calib = absorption.calibrations(raw, detectors, calibration, config)
    centres = np.concatenate([consts.energy_a, consts.energy_b])
    lo, hi, side = absorption.window_bounds(centres, calib, raw.sizes["channel"], compat=compat)
    sums = absorption.window_sums(raw["spectra"], lo, hi, side)
    dt = absorption.deadtime_factor(raw)
    if dt is not None:
        sums = sums * dt
    chunks = nrm["normalised"].chunksizes
    if chunks:
        sums = sums.chunk({"y": chunks["y"], "x": chunks["x"]})
    absorber = xr.DataArray(consts.elements, dims="absorber")
    if compat:  # xrf_proc: RadRate(KL3) / RadRate(KM3)
        th = np.broadcast_to(consts.ratio_th, (len(detectors), len(consts.elements)))
    else:  # what the windows take in of every K line, at the detector's resolution
        layers = absorption.detector_layers(detectors, calibration, config)
        th = absorption.window_ratio_th(consts.elements, lo, hi, side, calib, layers)
    ratio_th = xr.DataArray(
        th,
        dims=("detector", "absorber"),
        coords={"detector": nrm["detector"].values, "absorber": absorber},
    )
    mu_a = xr.DataArray(consts.mu_a, dims="absorber", coords={"absorber": absorber})
    mu_b = xr.DataArray(consts.mu_b, dims="absorber", coords={"absorber": absorber})
    r_exp = absorption.ratios(sums, ratio_th)
    per_absorber = absorption.rhot_per_absorber(r_exp, ratio_th, mu_a, mu_b)
    rho_t = per_absorber.max("absorber")
    mu_lines = xr.DataArray(consts.mu_lines, dims="line", coords={"line": lines})
    f = absorption.correction_factors(rho_t, mu_lines).transpose("y", "x", "detector", "line")
    if compat:
        f_mean = f.mean(("y", "x"))  # xrf_proc: over all pixels (spec 12.17)
    else:
        f_mean = f.where(valid).mean(("y", "x"))
    out = xr.Dataset(
        {
            "ratio_exp": r_exp.assign_attrs(
                long_name="measured K-alpha1/K-beta1 ratio (dead-time-corrected window sums)"
            ),
            "ratio_th": ratio_th.assign_attrs(
                long_name="theoretical K-alpha/K-beta window ratio (xraylib radiative rates)"
            ),
            "rhot": rho_t.assign_attrs(
                long_name="mass thickness of the absorbing layer (max over absorbers)",
                units="g/cm2",
            ),
            "rhot_absorber": per_absorber.transpose("y", "x", "detector", "absorber").assign_attrs(
                long_name="mass thickness from each absorber's ratio", units="g/cm2"
            ),
            "absorption_correction": f.assign_attrs(long_name="self-absorption correction factor"),
        },
        coords={"absorber": absorber},
    )
    return out, f, f_mean


def quantify(
    nrm: xr.Dataset | str | os.PathLike,
    references: Any,
    norm_line: str | None = None,
    absorb: Any = None,
    mask: Any = None,
    density: Any = None,
    thickness: Any = None,
    composition: Any = None,
    compat: str | None = None,
    *,
    raw: xr.Dataset | str | os.PathLike | None = None,
    file: str | os.PathLike | None = None,
    labels: Any = None,
    calibration: Any = None,
) -> xr.Dataset:
    """Concentrations from a normalised map and reference yields (xrf_proc's ``quant_with_ref``).

    Parameters
    ----------
    nrm : xarray.Dataset or path
        :func:`xrfdask.normalise`'s result, or an ``.h5``/``.zarr`` file holding ``norm/`` (then
        its ``raw/`` serves ``absorb`` and its ``kmeans/`` or datasets serve string masks).
    references : path, Dataset or list of them
        Reference files (``.h5``/``.zarr`` with ``elyield/<cnc>/`` and ``norm/``; the first key of
        ``elyield/`` is used, as xrf_proc) or :func:`xrfdask.detection_limits` results. Yields of
        several references are averaged (the error of the mean; ``compat``: sqrt(sum eps²)).
        Lines the references lack are interpolated in Z within their family (K, L, M), in log
        space (``compat``: xrf_proc's linear inter/extrapolation).
    norm_line : str, optional
        Normalise to this fitted line (``"Rayl"``, ``"Compt"``) in the sample and the references:
        c = (I / I_norm) / (Y / S_norm), S_norm the reference's norm-line sum per I0 count
        (``compat="xrf_proc"``: the original's Y x S_norm, both its one- and several-reference
        variants).
    absorb : (list of str, cnc), optional
        Self-absorption correction: absorber elements (their Kα1/Kβ1 ratio) and the matrix
        composition (a ``.cnc`` path or :func:`xrfdask.read_cnc` result). Needs the raw map.
    mask : optional
        Pixels to quantify: a boolean (y, x) map, a k-means cluster id (int or ``"kmeans/CLR2"``,
        labels from ``labels=`` or the file's ``kmeans/``), a list of ids, or the path of a 2-D
        dataset in the sample file. Outside it the maps are NaN (``compat``: 0) and the sums are
        the mean of the masked normalised pixels (``compat``: xrf_proc's sum(I) / sum(I0)).
    density, thickness : float or str, optional
        Both or neither: concentrations in µg/g. Numbers are g/cm³ and cm (xrf_proc's units);
        strings may name their unit (``"2491 mg/cm3"``, ``"960 um"``, the units of .cnc files).
    composition : path or Cnc, optional
        With density and thickness: the thickness of each line is capped at the escape depth
        ln(100) / (rho mu) of this composition at the line's α1 energy (PyMca attenuation).
    compat : {None, "xrf_proc"}
        None: the corrected physics; ``"xrf_proc"``: the original's numbers (spec 12.15-12.17).
    raw : Dataset or path, optional
        The raw map, for ``absorb`` (and for ``compat`` masked sums, its I0).
    file : path, optional
        The sample's file, for masks given as names (default: ``nrm`` when it is a path).
    labels : DataArray, optional
        k-means labels (y, x) for cluster-id masks.
    calibration : (zero, gain), fit configuration, or dict per detector, optional
        Energy calibration of the raw spectra for ``absorb`` (and the detector's noise and Fano
        factor, from a configuration). Default: the fit configuration ``nrm`` carries
        (``nrm["config"]`` per detector, or ``attrs["config"]`` as :func:`xrfdask.normalise`
        copies it), else the raw map's ``energy`` coordinate with PyMca's default resolution.

    Returns
    -------
    xarray.Dataset
        Lazy: ``concentration``, ``concentration_error`` (y, x, detector, line);
        ``sum_concentration``, ``sum_concentration_error`` (detector, line); ``elemental_yield``,
        ``elemental_yield_error`` (detector, line, the yields used); coordinate ``references``
        (the reference names); with ``absorb``: ``ratio_exp`` (y, x, detector, absorber),
        ``ratio_th`` (detector, absorber), ``rhot`` (y, x, detector, g/cm², the maximum over
        the absorbers), ``rhot_absorber`` (y, x, detector, absorber) and
        ``absorption_correction`` (y, x, detector, line). attrs: ``unit`` ("ug/cm2" or
        "ug/g"), the settings.

    Raises
    ------
    ConfigError
        Missing inputs (errors, norm line, references' yields), density without thickness, a
        mask of the wrong shape; the message names what is missing.
    FormatError
        A reference file without ``elyield/``.

    Notes
    -----
    Beyond xrf_proc (``compat="xrf_proc"`` restores each, spec 12.15-12.18): yields relative to a
    norm line are divided by its intensity, not multiplied; several references give the error
    of the mean, not sqrt(sum eps²); interpolated yields are log-linear in Z, never <= 0; a
    pixel whose norm line is 0 is NaN, not inf; masked sums are the mean of the masked
    normalised pixels (normalised once), with sqrt(sum sigma²) / n; maps are NaN outside a mask
    (not 0); the absorption correction of the sums is mean(f) over the valid pixels only; the
    Kα/Kβ windows span +-FWHM at the fit's calibration, less the continuum, against the
    theoretical ratio of those windows; every absorber's ratio and rho t are kept. Errors are
    propagated as absolute deviations (no 0/0 where an area is 0). There is no ``snake``
    option: regrid the raw map and the normalised map first (:func:`xrfdask.regrid`), which
    never shifts twice.
    """
    if compat not in COMPAT:
        raise ConfigError(f"compat={compat!r}: expected None or 'xrf_proc'")
    is_compat = compat == "xrf_proc"
    if (density is None) != (thickness is None):
        given, absent = ("density", "thickness") if thickness is None else ("thickness", "density")
        raise ConfigError(f"quantify: {given} given without {absent}; give both or neither")
    rho = parse_density(density) if density is not None else None
    thick = parse_thickness(thickness) if thickness is not None else None
    if composition is not None and rho is None:
        raise ConfigError("quantify: composition caps the thickness: give density and thickness")
    nrm, path = _sample(nrm)
    normto = _check_sample(nrm)
    file = file if file is not None else path
    if isinstance(raw, str | os.PathLike):
        raw = _open(os.fspath(raw), "raw")
    elif (
        raw is None
        and path is not None
        and (absorb is not None or (is_compat and mask is not None))
    ):
        raw = _open(path, "raw")
    if "detector" not in nrm.dims:
        nrm = nrm.expand_dims(detector=[0])
    all_lines = [str(v) for v in nrm["line"].values]
    lines = [n for n in all_lines if line_element(n) is not None]
    if not lines:
        raise ConfigError(f"quantify: no element lines to quantify among {all_lines}")
    if norm_line is not None and norm_line not in all_lines:
        raise ConfigError(
            f"quantify: norm line {norm_line!r} is not a fitted line ({', '.join(all_lines)})"
        )
    ref_list = references if isinstance(references, list | tuple) else [references]
    if not ref_list:
        raise ConfigError("quantify: give at least one reference")
    refs = [load_reference(r, need_norm=norm_line is not None) for r in ref_list]
    tmnorm = _tm(nrm.attrs.get("TmNorm", nrm.attrs.get("tmnorm")))
    for ref in refs:
        if tmnorm is not None and ref.tmnorm is not None and ref.tmnorm != tmnorm:
            raise ConfigError(
                f"reference {ref.name}: TmNorm={ref.tmnorm} but the sample has TmNorm={tmnorm} "
                "(yields per I0 count and per I0 count x s do not mix)"
            )
    detectors = np.atleast_1d(nrm["detector"].values).tolist()
    y, eps, how = _yields(refs, detectors, lines, norm_line, is_compat)
    coords = {"detector": nrm["detector"].values, "line": lines}
    dims = ("detector", "line")
    yield_ = xr.DataArray(y, dims=dims, coords=coords)
    eps_ = xr.DataArray(eps, dims=dims, coords=coords)
    missing = xr.DataArray(
        np.array([[h == "missing" for h in row] for row in how]), dims=dims, coords=coords
    )

    intensity = nrm["normalised"].transpose("y", "x", "detector", "line")
    error = nrm["normalised_error"].transpose("y", "x", "detector", "line")
    valid = nrm["valid"] if "valid" in nrm else intensity.notnull().all("line")
    valid = valid.transpose("y", "x", "detector")
    x_all, s_all = intensity / normto, error / normto
    p_all = nrm["sum_area"].transpose("detector", "line") / normto
    sp_all = nrm["sum_area_error"].transpose("detector", "line") / normto

    m = resolve_mask(
        mask,
        (nrm.sizes["y"], nrm.sizes["x"]),
        detectors,
        file=file,
        labels=labels,
    )
    if m is not None:
        m = m.assign_coords(y=nrm["y"].values, x=nrm["x"].values)
        if "detector" in m.dims:
            m = m.assign_coords(detector=nrm["detector"].values)

    extra = xr.Dataset()
    f = f_mean = None
    if absorb is not None:
        extra, f, f_mean = _absorption(absorb, nrm, raw, lines, valid, is_compat, calibration)

    def select(a: xr.DataArray, names: list[str] | str) -> xr.DataArray:
        return a.sel(line=names)

    xm, sm = select(x_all, lines), select(s_all, lines)
    if f is not None:
        xm, sm = xm * f, sm * f
    # The sums (detector, line): the sum-spectrum fit, or the masked pixels.
    if m is None:
        p, sp = select(p_all, lines), select(sp_all, lines)
        if f_mean is not None:
            p, sp = p * f_mean, sp * f_mean
    elif is_compat:
        p, sp = _compat_masked_sum(
            select(intensity, lines), select(error, lines), m, raw, bool(tmnorm)
        )
        if f_mean is not None:
            p, sp = p * f_mean, sp * f_mean
    else:
        p, sp = _masked_mean(xm, sm, m & valid)
    if norm_line is not None:
        xn, sn = select(x_all, norm_line), select(s_all, norm_line)
        if m is None:
            pn, spn = select(p_all, norm_line), select(sp_all, norm_line)
        elif is_compat:
            pn, spn = _compat_masked_sum(
                select(intensity, norm_line), select(error, norm_line), m, raw, bool(tmnorm)
            )
        else:
            pn, spn = _masked_mean(xn, sn, m & valid)
        if not is_compat:  # a pixel whose norm line is 0 has no concentration
            xn, pn = xn.where(xn > 0), pn.where(pn > 0)
        xm, sm = _ratio(xm, sm, xn, sn)
        p, sp = _ratio(p, sp, pn, spn)
    # Masked maps: NaN outside (compat: 0, as xrf_proc multiplies by the mask).
    if m is not None:
        if is_compat:
            xm, sm = xm * m, sm * m
        else:
            xm, sm = xm.where(m), sm.where(m)
    c, sc = _by_yield(xm, sm, yield_, eps_, missing, is_compat)
    pc, spc = _by_yield(p, sp, yield_, eps_, missing, is_compat)
    unit, file_unit = "ug/cm2", "ug/cm²"
    attrs: dict[str, Any] = {}
    if rho is not None:
        depth = _depths(lines, rho, thick, composition)
        areal = xr.DataArray(rho * depth, dims="line", coords={"line": lines})
        c, sc, pc, spc = c / areal, sc / areal, pc / areal, spc / areal
        unit = file_unit = "ug/g"
        attrs.update(density=rho, thickness=thick)
        if composition is not None:
            cnc = read_cnc(composition)
            attrs["Composition"] = cnc.path or cnc.name
    var_attrs = {"units": unit, "Unit": file_unit}
    names = [r.name for r in refs]
    out = xr.Dataset(
        {
            "concentration": c.transpose("y", "x", "detector", "line").assign_attrs(
                long_name="concentration", **var_attrs
            ),
            "concentration_error": sc.transpose("y", "x", "detector", "line").assign_attrs(
                long_name="standard deviation of the concentration", **var_attrs
            ),
            "sum_concentration": pc.transpose("detector", "line").assign_attrs(
                long_name="concentration of the sum spectrum", **var_attrs
            ),
            "sum_concentration_error": spc.transpose("detector", "line").assign_attrs(
                long_name="standard deviation of the sum-spectrum concentration", **var_attrs
            ),
            "elemental_yield": yield_.assign_attrs(long_name="reference yield used"),
            "elemental_yield_error": (yield_ * eps_).assign_attrs(
                long_name="standard deviation of the reference yield"
            ),
            **extra.data_vars,
        },
        coords={"references": ("reference", names)},
    )
    interpolated = sorted(
        {n for row in how for n, h in zip(lines, row, strict=True) if h != "reference"}
    )
    out.attrs = {
        "unit": unit,
        "references": names,
        "norm_line": norm_line or "",
        "compat": compat or "",
        "I0": normto,
        "TmNorm": "True" if tmnorm else "False",
        "interpolated_lines": [n for n in interpolated if not missing.sel(line=n).all()],
        "not_quantified": [n for n in lines if bool(missing.sel(line=n).all())],
        "mask": "" if m is None else (mask if isinstance(mask, str | int) else "array"),
        **attrs,
    }
    if absorb is not None:
        out.attrs["absorb"] = [str(e) for e in extra["absorber"].values]
    return out


def _ratio(a, sa, b, sb):
    """a / b and its error sqrt((sa/b)^2 + (r sb/b)^2)."""
    r = a / b
    return r, np.sqrt((sa / b) ** 2 + (r * sb / b) ** 2)


def _by_yield(x, sx, y, eps, missing, compat: bool):
    """c = x / Y and sqrt((sx/Y)^2 + (c eps)^2); missing yields: NaN (compat: -1, error 0)."""
    c = x / y
    sc = np.sqrt((sx / y) ** 2 + (c * eps) ** 2)
    if compat:
        c = xr.where(missing, -1.0, c)
        sc = xr.where(missing, 0.0, sc)
    else:
        c, sc = c.where(~missing), sc.where(~missing)
    return c, sc


def _depths(lines: list[str], rho: float, thickness: float, composition: Any) -> np.ndarray:
    """Thickness per line (cm), capped at ln(100) / (rho mu(E_α1)) with a composition."""
    if composition is None:
        return np.full(len(lines), thickness)
    cnc = read_cnc(composition)
    mu = np.array([composition_attenuation(cnc, alpha1_energy(n, "pymca"), "pymca") for n in lines])
    return np.minimum(ESCAPE / (rho * mu), thickness)


def div_by_cnc(q: xr.Dataset | str | os.PathLike, cnc: Any) -> xr.Dataset:
    """Concentrations relative to a reference material's (xrf_proc's ``div_by_cnc``, 6.6).

    Parameters
    ----------
    q : xarray.Dataset or path
        :func:`quantify`'s result (best in µg/g), or a file holding ``quant/``.
    cnc : path or Cnc
        The material's certified composition (ppm).

    Returns
    -------
    xarray.Dataset
        ``relative_difference``, ``relative_difference_error`` (y, x, detector, line),
        ``sum_relative_difference``, ``sum_relative_difference_error`` (detector, line), ``cnc``
        (the basename), for the lines whose element the cnc certifies (with a concentration > 0).
        Errors: the ratio times sqrt(eps_q² + (sigma_c / c)²), once (xrf_proc multiplies once per
        line: spec 12.19).
    """
    import warnings

    if isinstance(q, str | os.PathLike):
        q = _open(os.fspath(q), "quant")
    missing = [
        v
        for v in (
            "concentration",
            "concentration_error",
            "sum_concentration",
            "sum_concentration_error",
        )
        if v not in q
    ]
    if missing:
        raise ConfigError(f"div_by_cnc: the quantification has no {', '.join(missing)}")
    material = read_cnc(cnc)
    unit = q.attrs.get("unit", q["concentration"].attrs.get("units", ""))
    if unit not in ("ug/g", "ppm"):
        warnings.warn(
            f"div_by_cnc: concentrations in {unit or 'an unknown unit'}, not ug/g: the ratio to "
            f"{material.basename}'s ppm is not dimensionless",
            XrfdaskWarning,
            stacklevel=2,
        )
    keep, conc, err = [], [], []
    for line in (str(v) for v in q["line"].values):
        element = line_element(line)
        found = material.concentration(element) if element else None
        if found is None or found[0] <= 0:
            continue
        keep.append(line)
        conc.append(found[0])
        err.append(found[1])
    if not keep:
        raise ConfigError(f"div_by_cnc: {material.basename} certifies none of the quantified lines")
    c = xr.DataArray(np.array(conc), dims="line", coords={"line": keep})
    ec = xr.DataArray(np.array(err) / np.array(conc), dims="line", coords={"line": keep})
    sub = q.sel(line=keep)

    def rel(value, sigma):
        r = value / c
        return r, np.sqrt((sigma / c) ** 2 + (r * ec) ** 2)

    r, sr = rel(sub["concentration"], sub["concentration_error"])
    pr, spr = rel(sub["sum_concentration"], sub["sum_concentration_error"])
    out = xr.Dataset(
        {
            "relative_difference": r.assign_attrs(long_name="concentration / certified"),
            "relative_difference_error": sr.assign_attrs(long_name="standard deviation"),
            "sum_relative_difference": pr.assign_attrs(long_name="sum concentration / certified"),
            "sum_relative_difference_error": spr.assign_attrs(long_name="standard deviation"),
            "cnc": ((), material.basename),
        },
        attrs={"cnc": material.basename, "unit": "1", "quant_unit": unit},
    )
    return out
