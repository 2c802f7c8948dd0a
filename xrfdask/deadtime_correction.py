"""Dead-time correction factors of a raw map, and fit results corrected by them.

xrf_proc corrects the fitted areas for dead time in its fit (spec ``xrf_proc.md`` 3.7), not in
its normalisation: per pixel ``ims * icr / ocr`` and the sum-spectrum areas by the ratio of totals
``sum(icr) / sum(ocr)``. Its scripts and ``norm_xrf_batch`` read ``fit/`` that way, so the
``fit/`` xrfdask writes is corrected the same way; in memory :func:`xrfdask.fit` keeps raw counts
(``attrs["deadtime_corrected"]`` False) with the factors beside them (``deadtime_factor``,
``sum_deadtime_factor``), and :func:`xrfdask.normalise` applies them.

Factors, by what the map records:

- ``icr`` and ``ocr`` (beamline maps): ``icr / ocr`` per pixel, ``sum(icr) / sum(ocr)`` over the
  valid pixels for the sums, exactly xrf_proc's;
- ``deadtime`` in percent (``.GeoPIXE`` records): ``1 / (1 - deadtime / 100)`` per pixel, their mean
  over the valid pixels for the sums;
- neither: 1 (``attrs["deadtime_source"] == "none"``).

A pixel with ``ocr == 0``, ``icr == 0``, a dead time of 100 % or more, or a non-finite value has no
factor: it is invalid (``valid`` False, factor NaN). xrf_proc instead replaces whole rows of ocr
by icr (spec 12.8); here nothing is replaced and the pixel is masked downstream.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["deadtime_factors", "corrected_fit"]


def _per_detector(var: xr.DataArray, labels: list[Any]) -> xr.DataArray:
    """``var`` (y, x, detector) for the fit's detector labels (``"sum"``: summed detectors).

    Each step only where needed: on a cluster every dask layer is a task per block.
    """
    if var.dims != ("y", "x", "detector"):
        var = var.transpose("y", "x", "detector")
    if list(labels) == ["sum"]:
        return var.sum("detector").expand_dims(detector=["sum"], axis=2)
    if [v for v in var["detector"].values] == list(labels):  # eager-ok: labels
        return var
    return var.sel(detector=labels)


def _blockwise(func, out_dtype, *vars: xr.DataArray) -> xr.DataArray:
    """``func`` of the arrays' blocks, one task per block (dask) or one call (numpy)."""
    first = vars[0]
    if isinstance(first.data, da.Array):
        data = da.map_blocks(func, *[v.data for v in vars], dtype=out_dtype)
    else:
        data = func(*[np.asarray(v.data) for v in vars])
    return first.copy(data=data)


def _icr_ocr_factor(icr: np.ndarray, ocr: np.ndarray) -> np.ndarray:
    """icr / ocr where both are positive and finite, NaN elsewhere (one task per block)."""
    ok = (icr > 0) & (ocr > 0) & np.isfinite(icr) & np.isfinite(ocr)
    out = np.full(icr.shape, np.nan)
    np.divide(icr, ocr, out=out, where=ok)
    return out


def _live_factor(dt: np.ndarray) -> np.ndarray:
    """1 / (1 - dt / 100) for a dead time in [0, 100) percent, NaN elsewhere."""
    dt = dt.astype(np.float64)
    ok = np.isfinite(dt) & (dt >= 0) & (dt < 100)
    out = np.full(dt.shape, np.nan)
    np.divide(1.0, 1.0 - dt / 100.0, out=out, where=ok)
    return out


def _blocks(var: xr.DataArray, chunks: dict[str, Any] | None) -> xr.DataArray:
    if chunks and var.chunks is not None:
        return var.chunk({d: chunks[d] for d in var.dims if d in chunks})
    return var


def deadtime_factors(
    ds: xr.Dataset, labels: list[Any] | None = None, chunks: dict[str, Any] | None = None
) -> xr.Dataset:
    """Per-pixel and sum-spectrum dead-time factors of a raw map, lazily.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map with ``icr`` and ``ocr``, or ``deadtime`` (percent), or neither.
    labels : list, optional
        Detector labels to return (a fit's ``detector`` coordinate; ``["sum"]`` for a fit of the
        detector-summed spectra). Default: every detector of ``ds``.
    chunks : dict, optional
        Blocks of the factors (``{"y": ..., "x": ...}``, a fit's): the counters are put in those
        blocks first, so each factor block is one task.

    Returns
    -------
    xarray.Dataset
        ``deadtime_factor`` (y, x, detector) float64 (NaN where invalid), ``valid`` (y, x,
        detector) bool, ``sum_deadtime_factor`` (detector) float64; ``attrs["deadtime_source"]``
        is ``"icr/ocr"``, ``"deadtime"`` or ``"none"``.
    """
    if labels is None:
        labels = list(ds["detector"].values)  # eager-ok: labels
    dims = ("y", "x", "detector")
    if "icr" in ds and "ocr" in ds:
        icr = _blocks(_per_detector(ds["icr"], labels), chunks)
        ocr = _blocks(_per_detector(ds["ocr"], labels), chunks)
        factor = _blockwise(_icr_ocr_factor, np.float64, icr, ocr)
        valid = factor.notnull()
        icr, ocr = icr.astype(np.float64), ocr.astype(np.float64)
        total = icr.where(valid).sum(("y", "x")) / ocr.where(valid).sum(("y", "x"))
        source = "icr/ocr"
    elif "deadtime" in ds:
        dt = ds["deadtime"]
        if list(labels) == ["sum"]:
            # Summed detectors: the mean dead time (counts of each detector are not known here).
            dt = dt.transpose(*dims).astype(np.float64).mean("detector")
            dt = dt.expand_dims(detector=["sum"], axis=2)
        else:
            dt = _per_detector(dt, labels)
        factor = _blockwise(_live_factor, np.float64, _blocks(dt, chunks))
        valid = factor.notnull()
        total = factor.mean(("y", "x"))
        source = "deadtime"
    else:
        shape = (ds.sizes["y"], ds.sizes["x"], len(labels))
        coords = {"y": ds["y"], "x": ds["x"], "detector": labels}
        factor = xr.DataArray(np.ones(shape), dims=dims, coords=coords)
        valid = xr.DataArray(np.ones(shape, dtype=bool), dims=dims, coords=coords)
        total = xr.DataArray(np.ones(len(labels)), dims=("detector",), coords={"detector": labels})
        source = "none"
    note = {"deadtime_source": source}
    return xr.Dataset(
        {
            "deadtime_factor": factor.assign_attrs(
                {"long_name": "dead-time correction factor", **note}
            ),
            "valid": valid.assign_attrs({"long_name": "pixel has a dead-time factor"}),
            "sum_deadtime_factor": total.assign_attrs(
                {"long_name": "dead-time factor of the sum spectrum", **note}
            ),
        },
        attrs=note,
    )


def _scale_block(area: np.ndarray, factor: np.ndarray) -> np.ndarray:
    # In the areas' dtype, as the factor is applied to float32 areas in files: area * f.
    return area * factor.astype(area.dtype)[..., None]


def _scaled(var: xr.DataArray, factor: xr.DataArray) -> xr.DataArray:
    """(y, x, detector, line) areas times the (y, x, detector) factor, one task per block."""
    var = var.transpose("y", "x", "detector", "line")
    factor = factor.transpose("y", "x", "detector")
    if isinstance(var.data, da.Array):
        f = factor.data if isinstance(factor.data, da.Array) else da.from_array(factor.values)
        f = f.rechunk(var.data.chunks[:3])
        data = da.blockwise(_scale_block, "yxdl", var.data, "yxdl", f, "yxd", dtype=var.dtype)
    else:
        data = _scale_block(np.asarray(var.values), np.asarray(factor.values))
    return var.copy(data=data)


def corrected_fit(fit: xr.Dataset, ds: xr.Dataset | None = None) -> xr.Dataset:
    """A fit result with dead-time-corrected areas, as xrf_proc's ``fit/`` holds them.

    Parameters
    ----------
    fit : xarray.Dataset
        :func:`xrfdask.fit`'s result. Already corrected (``attrs["deadtime_corrected"]``): returned
        as it is.
    ds : xarray.Dataset, optional
        The raw map, when ``fit`` does not carry its factors (``deadtime_factor``).

    Returns
    -------
    xarray.Dataset
        ``peak_area`` and ``peak_area_error`` times the pixel's factor (NaN where invalid),
        ``sum_area`` and ``sum_background`` times the sum factor, ``attrs["deadtime_corrected"]``
        True and ``attrs["deadtime_source"]``; the factor variables dropped.
    """
    if fit.attrs.get("deadtime_corrected", True) and "deadtime_factor" not in fit:
        return fit
    if fit.attrs.get("deadtime_corrected", False):
        return fit.drop_vars(["deadtime_factor", "sum_deadtime_factor"], errors="ignore")
    if "deadtime_factor" in fit:
        factors = fit[["deadtime_factor", "sum_deadtime_factor"]]
        source = fit["deadtime_factor"].attrs.get("deadtime_source", "unknown")
    elif ds is not None:
        factors = deadtime_factors(ds, list(fit["detector"].values))  # eager-ok: labels
        source = factors.attrs["deadtime_source"]
    else:
        raise ValueError(
            "the fit carries no dead-time factors: pass the raw map (corrected_fit(fit, ds))"
        )
    f = factors["deadtime_factor"]
    if "peak_area" in fit and hasattr(fit["peak_area"].data, "chunks"):
        chunks = dict(zip(fit["peak_area"].dims, fit["peak_area"].chunks, strict=True))
        f = f.chunk({d: chunks[d] for d in f.dims})
    out = fit.drop_vars(["deadtime_factor", "sum_deadtime_factor"], errors="ignore")
    updates = {}
    for name in ("peak_area", "peak_area_error"):
        if name in out:
            updates[name] = _scaled(out[name], f)
    for name in ("sum_area", "sum_background"):
        if name in out:
            updates[name] = (out[name] * factors["sum_deadtime_factor"]).assign_attrs(
                out[name].attrs
            )
    out = out.assign(updates)
    out.attrs = {**fit.attrs, "deadtime_corrected": True, "deadtime_source": source}
    return out
