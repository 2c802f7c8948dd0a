"""Reference yields for quantification (spec ``xrf_proc.md`` section 6.1 and 6.4 step 5).

A reference is a file (``.h5``/``.zarr`` holding ``elyield/<cnc>/`` and ``norm/``, as
:func:`xrfdask.detection_limits` or xrf_proc's ``calc_detlim`` write it) or the Dataset
:func:`xrfdask.detection_limits` returns. Everything here is small (detector x line) numpy.

- :func:`load_reference`: one reference -> :class:`Reference` (yields per detector, norm-line sums).
- :func:`apply_norm_line`: the yield relative to a normalising line (Rayl, Compt).
- :func:`combine`: several references -> one yield per line (mean), sorted by Z.
- :func:`line_yields`: the yield of every quantified line, interpolated in Z within its family
  where the references lack it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError, FormatError
from xrfdask.io.h5layout.schema import channel_name
from xrfdask.physics import line_element, line_family

__all__ = ["Reference", "load_reference", "apply_norm_line", "combine", "line_yields"]


@dataclass
class Reference:
    """One reference material's yields, per detector channel name (``"channel00"``).

    ``yields[ch]`` = (line names, Y, absolute sigma_Y); ``norm[ch]`` = {line: (S, B, sigma_S)}: the
    reference's normalised sum-spectrum areas and backgrounds of every fitted line (incl. scatter),
    sigma_S NaN when unknown; ``normto`` the reference's ``norm/I0``; ``i0_raw_total`` the sum of
    its raw I0 (xrf_proc's multi-reference norm-line error), None when unknown.
    """

    name: str
    yields: dict[str, tuple[list[str], np.ndarray, np.ndarray]]
    norm: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    normto: float | None = None
    i0_raw_total: float | None = None
    tmnorm: bool | None = None


def _tmnorm(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _per_channel(da: xr.DataArray, dim: str) -> dict[str, tuple[list[str], np.ndarray]]:
    """(detector, dim) -> {channel name: (labels, values)} (NaN: a line absent for a detector)."""
    out = {}
    da = da.transpose("detector", dim) if "detector" in da.dims else da.expand_dims(detector=[0])
    values = np.asarray(da.values, dtype=float)  # eager-ok: per-line summary
    labels = [str(v) for v in da[dim].values]
    for i, det in enumerate(np.atleast_1d(da["detector"].values).tolist()):
        out[channel_name(det)] = (labels, values[i])
    return out


def _from_dataset(ds: xr.Dataset, name: str | None = None) -> Reference:
    missing = [v for v in ("elemental_yield", "elemental_yield_error") if v not in ds]
    if missing:
        raise ConfigError(
            f"reference {name or ds.attrs.get('cnc', '(Dataset)')}: no {', '.join(missing)}; "
            "expected xd.detection_limits' result or a reference file with elyield/"
        )
    name = name or str(ds.attrs.get("cnc", "reference"))
    y = _per_channel(ds["elemental_yield"], "line")
    e = _per_channel(ds["elemental_yield_error"], "line")
    yields = {}
    for ch, (lines, values) in y.items():
        keep = ~np.isnan(values)
        kept = [n for n, k in zip(lines, keep, strict=True) if k]
        yields[ch] = (kept, values[keep], e[ch][1][keep])
    norm: dict[str, dict[str, tuple[float, float, float]]] = {}
    if "norm_sum_area" in ds:
        s = _per_channel(ds["norm_sum_area"], "norm_line")
        b = (
            _per_channel(ds["norm_sum_background"], "norm_line")
            if "norm_sum_background" in ds
            else None
        )
        se = (
            _per_channel(ds["norm_sum_area_error"], "norm_line")
            if "norm_sum_area_error" in ds
            else None
        )
        all_lines = [str(v) for v in ds["norm_line"].values]
        for ch, (_, values) in s.items():
            bvals = b[ch][1] if b else np.full(len(all_lines), np.nan)
            evals = se[ch][1] if se else np.full(len(all_lines), np.nan)
            norm[ch] = {
                line: (float(values[k]), float(bvals[k]), float(evals[k]))
                for k, line in enumerate(all_lines)
                if not np.isnan(values[k])
            }
    total = ds.attrs.get("I0_total_raw")
    return Reference(
        name,
        yields,
        norm,
        normto=_float(ds.attrs.get("I0")),
        i0_raw_total=_float(total),
        tmnorm=_tmnorm(ds.attrs.get("TmNorm", ds.attrs.get("tmnorm"))),
    )


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) else None  # NaN: unknown


def _reader(path: str):
    from xrfdask.io.convert import file_format
    from xrfdask.io.h5layout.stores import H5Reader, ZarrReader

    kind = file_format(path)
    if kind == "geopixe":
        raise ConfigError(f"{path}: a reference is an .h5 or .zarr file with elyield/ and norm/")
    return (H5Reader if kind == "h5" else ZarrReader)(path)


def _from_file(path: str, need_norm: bool) -> Reference:
    from xrfdask.io.h5layout import open_h5, open_zarr

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such reference file")
    with _reader(path) as reader:
        if not reader.is_group("elyield"):
            raise FormatError(
                f"{path}: no 'elyield/' group: not a reference (run xd.detection_limits on it)"
            )
        keys = [k for k in reader.keys("elyield") if reader.is_group(f"elyield/{k}")]
        if not keys:
            raise FormatError(f"{path}: 'elyield/' holds no reference material group")
        key = keys[0]  # xrf_proc takes the first key of elyield/
        i0_raw = None
        if reader.has("raw/I0"):
            i0_raw = float(np.nansum(np.asarray(reader.read("raw/I0"), dtype=float)))
        has_norm = reader.is_group("norm")
    opener = open_zarr if path.rstrip("/").lower().endswith(".zarr") else open_h5
    el = opener(path, group=f"elyield/{key}")
    ref = _from_dataset(el, name=path)
    ref.i0_raw_total = i0_raw
    if has_norm:
        nrm = opener(path, group="norm")
        ref.normto = _float(nrm.attrs.get("I0"))
        ref.tmnorm = _tmnorm(nrm.attrs.get("TmNorm"))
        s = _per_channel(nrm["sum_area"], "line")
        b = _per_channel(nrm["sum_background"], "line") if "sum_background" in nrm else None
        e = _per_channel(nrm["sum_area_error"], "line") if "sum_area_error" in nrm else None
        lines = [str(v) for v in nrm["line"].values]
        for ch, (_, values) in s.items():
            bvals = b[ch][1] if b else np.full(len(lines), np.nan)
            evals = e[ch][1] if e else np.full(len(lines), np.nan)
            ref.norm[ch] = {
                line: (float(values[k]), float(bvals[k]), float(evals[k]))
                for k, line in enumerate(lines)
                if not np.isnan(values[k])
            }
    elif need_norm:
        raise FormatError(f"{path}: no 'norm/' group, needed for norm_line")
    return ref


def load_reference(ref: Any, *, need_norm: bool = False) -> Reference:
    """A reference file (``.h5``/``.zarr``) or a :func:`~xrfdask.detection_limits` Dataset."""
    if isinstance(ref, Reference):
        return ref
    if isinstance(ref, xr.Dataset):
        return _from_dataset(ref)
    if isinstance(ref, str | os.PathLike):
        return _from_file(os.fspath(ref), need_norm)
    raise ConfigError(
        f"a reference is a file path or xd.detection_limits' Dataset, not {type(ref).__name__}"
    )


def apply_norm_line(
    ref: Reference, channel: str, line: str, *, n_refs: int, compat: bool
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The reference's yields relative to its normalising ``line`` (section 6.1).

    Returns (lines, Y', relative error of Y'). Default (dimensionally correct): S = the norm
    line's normalised sum area per I0 count (``sum/int / norm/I0``), Y' = Y / S, relative error
    sqrt(eps_Y^2 + eps_S^2) with eps_S the stored error of S (Poisson sqrt(P + 2B) / P of the raw
    counts when none is stored). ``compat``: xrf_proc's Y' = Y * S with its two error formulas
    (one reference: S = ``sum/int`` and eps^2 + 1/S; several: S per I0 count and the unsquared
    Poisson term).
    """
    lines, y, sigma = ref.yields[channel]
    eps = np.divide(sigma, y, out=np.zeros_like(y), where=y != 0)
    sums = ref.norm.get(channel, {})
    if line not in sums:
        raise ConfigError(
            f"reference {ref.name}: norm line {line!r} is not among its fitted lines "
            f"({', '.join(sums) or 'no norm/ sums'})"
        )
    s, b, s_err = sums[line]
    s, b = max(s, 0.0), max(b, 0.0) if not math.isnan(b) else 0.0
    if ref.normto is None and not (compat and n_refs == 1):
        raise ConfigError(
            f"reference {ref.name}: no norm/I0 (the value its sums are normalised to)"
        )
    if compat and n_refs == 1:
        with np.errstate(divide="ignore"):
            eps = np.sqrt(eps**2 + 1.0 / s)
        return lines, y * s, eps
    s_n, b_n = s / ref.normto, b / ref.normto
    total = ref.i0_raw_total
    if compat:
        if total is None:
            raise ConfigError(f"reference {ref.name}: no raw/I0, needed for xrf_proc's norm error")
        with np.errstate(divide="ignore", invalid="ignore"):
            eps = np.sqrt(eps**2 + math.sqrt((s_n + 2 * b_n) * total) / (s_n * total))
        return lines, y * s_n, eps
    if not math.isnan(s_err) and s > 0:
        eps_s = s_err / s
    elif total:
        counts, bkg = s_n * total, b_n * total
        eps_s = math.sqrt(counts + 2 * bkg) / counts if counts > 0 else math.inf
    else:
        raise ConfigError(f"reference {ref.name}: no error of the norm line {line!r} sum")
    with np.errstate(divide="ignore"):
        return lines, y / s_n, np.sqrt(eps**2 + eps_s**2)


def _z(line: str) -> int:
    import xraylib

    element = line_element(line)
    return xraylib.SymbolToAtomicNumber(element) if element else 0


def combine(
    per_ref: list[tuple[list[str], np.ndarray, np.ndarray]], *, compat: bool
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Several references' (lines, Y, relative error) -> one per line, sorted by Z.

    Y is the mean over the references holding the line. Its relative error is the error of the
    mean, sqrt(sum sigma_k^2) / n / Y; ``compat``: xrf_proc's sqrt(sum eps_k^2).
    """
    names: list[str] = []
    for lines, _, _ in per_ref:
        names.extend(n for n in lines if n not in names)
    y_out, e_out = np.zeros(len(names)), np.zeros(len(names))
    for i, name in enumerate(names):
        ys, es = [], []
        for lines, y, e in per_ref:
            if name in lines:
                k = lines.index(name)
                ys.append(y[k])
                es.append(e[k])
        ys, es = np.asarray(ys), np.asarray(es)
        y_out[i] = ys.mean()
        if compat:
            e_out[i] = math.sqrt(float(np.sum(es**2)))
        else:
            sigma = math.sqrt(float(np.sum((es * ys) ** 2))) / len(ys)
            e_out[i] = sigma / y_out[i] if y_out[i] != 0 else math.inf
    order = sorted(range(len(names)), key=lambda k: _z(names[k]))  # stable: file order per Z
    return [names[k] for k in order], y_out[order], e_out[order]


def _linear(z: float, z0: float, z1: float, v0: float, v1: float) -> float:
    return v0 + (z - z0) * (v1 - v0) / (z1 - z0)


def line_yields(
    lines: list[str], ref_lines: list[str], y: np.ndarray, eps: np.ndarray, *, compat: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The yield and relative error of every quantified line (section 6.4 step 5).

    A line the references hold takes its yield. Otherwise the references' lines of its family
    (K, L, M) give it: one line, its yield; several, an interpolation in Z (extrapolation outside
    their range). Default: ln Y linear in Z between the two neighbouring atomic numbers (yields of
    one Z averaged in log space, yields <= 0 ignored), so the result is always > 0; the relative
    error linear in Z inside the range and, outside, never below the nearest reference's.
    ``compat``: xrf_proc's linear inter/extrapolation of Y and of the relative error (which can
    give yields <= 0). A line whose family the references lack gets NaN (``compat``: -1 with
    error 0, xrf_proc's "not quantifiable").

    Returns (Y, relative error, how) with how[i] "reference", "interpolated" or "missing".
    """
    out_y, out_e, how = np.zeros(len(lines)), np.zeros(len(lines)), []
    families = [line_family(n) for n in ref_lines]
    for i, line in enumerate(lines):
        if line in ref_lines:
            k = ref_lines.index(line)
            out_y[i], out_e[i] = y[k], eps[k]
            how.append("reference")
            continue
        fam = line_family(line)
        idx = [k for k, f in enumerate(families) if f == fam]
        if not compat:
            idx = [k for k in idx if np.isfinite(y[k]) and y[k] > 0]
        if not idx:
            out_y[i], out_e[i] = (-1.0, 0.0) if compat else (np.nan, np.nan)
            how.append("missing")
            continue
        how.append("interpolated")
        if len(idx) == 1:
            out_y[i], out_e[i] = y[idx[0]], eps[idx[0]]
            continue
        z = _z(line)
        zs = np.array([_z(ref_lines[k]) for k in idx], dtype=float)
        ys, es = y[idx], eps[idx]
        if compat:
            n = len(zs)
            k = int(np.searchsorted(zs, z, side="left"))
            a, b = (0, 1) if k == 0 else (n - 2, n - 1) if k == n else (k - 1, k)
            with np.errstate(divide="ignore", invalid="ignore"):
                out_y[i] = _linear(z, zs[a], zs[b], ys[a], ys[b])
                out_e[i] = _linear(z, zs[a], zs[b], es[a], es[b])
            continue
        uz = np.unique(zs)
        ly = np.array([np.log(ys[zs == u]).mean() for u in uz])
        le = np.array([es[zs == u].mean() for u in uz])
        if len(uz) == 1:
            out_y[i], out_e[i] = math.exp(ly[0]), le[0]
            continue
        n = len(uz)
        k = int(np.searchsorted(uz, z, side="left"))
        a, b = (0, 1) if k == 0 else (n - 2, n - 1) if k == n else (k - 1, k)
        out_y[i] = math.exp(_linear(z, uz[a], uz[b], ly[a], ly[b]))
        e = _linear(z, uz[a], uz[b], le[a], le[b])
        if k == 0:
            e = max(e, le[0])
        elif k == n:
            e = max(e, le[-1])
        out_e[i] = e
    return out_y, out_e, how
