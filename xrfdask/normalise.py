"""``xd.normalise``: dead-time-corrected peak areas per unit of incident flux (xrf_proc's ``norm``).

xrf_proc's ``norm_xrf_batch`` (spec ``xrf_proc.md`` 4.3) divides the dead-time-corrected areas
``I`` of every pixel by its I0 (or by I0 x acquisition time with ``tmnorm``) and multiplies by
``normto`` (``I0norm``, else the map's largest I0), and the sum-spectrum areas ``P`` and
backgrounds ``B`` by the map's total I0 (or total I0 x t)::

    I_norm = I / I0 * normto                    P_norm = P / sum(I0) * normto
    I_norm = I / (I0 t) * normto   (tmnorm)     P_norm = P / sum(I0 t) * normto

with negative areas set to 0 first. Its faults are fixed here (spec 12.6, 12.8, 12.9):

- a pixel with I0 = 0, icr = 0, ocr = 0 or a dead time of 100 % is masked (NaN, ``valid`` False)
  instead of being left un-normalised or having its row's ocr replaced; masked pixels enter neither
  the I0 totals nor ``normto``;
- errors are absolute standard deviations everywhere: the fit's own ``peak_area_error`` when it
  is each pixel's counting error (``errors="fit"``: per-pixel weighted fits), else the counting
  error of the recorded counts, ``f sqrt(I / f)`` (``errors="poisson"``); ``errors="xrf_proc"``
  gives xrf_proc's ``sqrt(I)`` (then ``normalised_error`` is its relative error times the
  value); the sums' ``sqrt(P + 2B)`` and ``sqrt(B)`` as xrf_proc computes them.

The dead-time correction is the fit's (:mod:`xrfdask.deadtime_correction`): a fit in memory
carries raw counts and its factors, a fit read from a file is corrected already.

A lab map (``.GeoPIXE``) has no I0 counter: I0 is the tube charge per pixel, current x dwell (µC),
constant, so the normalised areas are per ``normto`` µC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xrfdask.deadtime_correction import corrected_fit, deadtime_factors
from xrfdask.errors import ConfigError
from xrfdask.instrument import pixel_charge_uc
from xrfdask.model import check_not_empty

__all__ = ["normalise"]

MAP = ("y", "x")


def _map_chunks(fit: xr.Dataset) -> dict[str, Any]:
    data = fit["peak_area"]
    if data.chunks is None:
        return {}
    chunks = dict(zip(data.dims, data.chunks, strict=True))
    return {d: chunks[d] for d in ("y", "x", "detector")}


def _aligned(var: xr.DataArray, chunks: dict[str, Any]) -> xr.DataArray:
    """``var`` chunked as the fit (dask), so the result's blocks are the fit's blocks."""
    if not chunks:
        return var
    return var.chunk({d: chunks[d] for d in var.dims if d in chunks})


def _incident(ds: xr.Dataset, I0: Any) -> tuple[xr.DataArray, str]:
    """The I0 of every pixel (y, x) and where it comes from."""
    shape = (ds.sizes["y"], ds.sizes["x"])
    coords = {"y": ds["y"], "x": ds["x"]}
    if I0 is not None:
        if isinstance(I0, xr.DataArray):
            if set(I0.dims) != set(MAP) or I0.shape != (ds.sizes[I0.dims[0]], ds.sizes[I0.dims[1]]):
                raise ConfigError(f"normalise: I0 must be a (y, x) map of shape {shape}")
            return I0.transpose(*MAP).astype(np.float64), "argument"
        value = np.asarray(I0, dtype=np.float64)
        if value.ndim == 0:
            return xr.DataArray(np.full(shape, float(value)), dims=MAP, coords=coords), "argument"
        if value.shape != shape:
            raise ConfigError(f"normalise: I0 has shape {value.shape}, the map is {shape}")
        return xr.DataArray(value, dims=MAP, coords=coords), "argument"
    if "I0" in ds:
        return ds["I0"].transpose(*MAP).astype(np.float64), "I0 (raw/I0)"
    charge = pixel_charge_uc(ds.attrs)
    if charge is not None:
        grid = np.full(shape, charge)
        return xr.DataArray(grid, dims=MAP, coords=coords), "tube current x dwell (µC)"
    raise ConfigError(
        "normalise: the map has no I0 (raw/I0) and no tube current and dwell time to stand in "
        "for it; pass I0= (a number or a (y, x) map)"
    )


def _time(ds: xr.Dataset) -> xr.DataArray | None:
    """Acquisition time per pixel (s): the map's, else the dwell; None if neither is known."""
    if "acquisition_time" in ds:
        return ds["acquisition_time"].transpose(*MAP).astype(np.float64)
    dwell = ds.attrs.get("dwell_ms")
    if isinstance(dwell, int | float) and dwell > 0:
        grid = np.full((ds.sizes["y"], ds.sizes["x"]), float(dwell) / 1000.0)
        return xr.DataArray(grid, dims=MAP, coords={"y": ds["y"], "x": ds["x"]})
    return None


def _statistical(fit: xr.Dataset) -> bool:
    """Whether the fit's ``peak_area_error`` is each pixel's counting error.

    Only fits weighted by each spectrum's own counts are: PyMca's nonlinear fit (``"full"``) and
    individual weights (``weight=2``). The linear fits' errors (no weights, or the sum spectrum's)
    are one model error, the same for every pixel, not a pixel's statistics.
    """
    if "peak_area_error" not in fit:
        return False
    return fit.attrs.get("method") == "full" or fit.attrs.get("weight_policy") == 2


def _check_maps(ds: xr.Dataset, fit: xr.Dataset) -> None:
    if "peak_area" not in fit:
        raise ConfigError("normalise: the fit result has no 'peak_area' (pass xd.fit's result)")
    for dim in MAP:
        if dim not in ds.dims or ds.sizes[dim] != fit.sizes.get(dim):
            raise ConfigError(
                f"normalise: the map is {ds.sizes.get('y')} x {ds.sizes.get('x')} pixels, the fit "
                f"{fit.sizes.get('y')} x {fit.sizes.get('x')}: not the same map"
            )


def normalise(
    ds: xr.Dataset,
    fit: xr.Dataset,
    I0norm: float | None = None,
    tmnorm: bool = False,
    *,
    I0: Any = None,
    errors: str = "auto",
    regrid: str | None = None,
    **regrid_options: Any,
) -> xr.Dataset:
    """Normalise fitted peak areas to the incident flux (and time), as xrf_proc's ``norm``.

    Parameters
    ----------
    ds : xarray.Dataset
        The raw map the fit came from: its ``I0`` (or, for a lab map, the tube current and dwell),
        ``acquisition_time``, and the counters that say which pixels are valid (``icr``/``ocr``,
        ``deadtime``).
    fit : xarray.Dataset
        :func:`xrfdask.fit`'s result, or a ``fit`` group read from a file.
    I0norm : float, optional
        The I0 value to normalise to (``normto``); default the largest I0 of the valid pixels.
    tmnorm : bool, default False
        Also divide by the acquisition time (xrf_proc's ``tmnorm``).
    I0 : float or array, optional
        An I0 to use instead of the map's (a number or a (y, x) map).
    errors : {"auto", "fit", "poisson", "xrf_proc"}, default "auto"
        Where the per-pixel errors come from: the fit's ``peak_area_error`` ("fit"; what "auto"
        takes when those are each pixel's counting errors: ``method="full"`` or ``weight=2``),
        counting statistics of the recorded counts, ``f sqrt(I / f)`` for an area ``I`` corrected
        by the dead-time factor ``f`` ("poisson"; "auto" otherwise), or ``sqrt(I)``, xrf_proc's
        ("xrf_proc", which reproduces its ``ims_stddev``; it is ``sqrt(f)`` too small).
    regrid : {"snake", "time"}, optional
        Put the result on the regular motor grid with :func:`xrfdask.regrid` (its options in
        ``regrid_options``); the motors are the raw map's.

    Returns
    -------
    xarray.Dataset
        ``normalised``, ``normalised_error`` (y, x, detector, line; NaN where masked), ``valid``
        (y, x, detector), ``sum_area``, ``sum_background`` and their ``_error`` (detector, line;
        absolute), ``I0_total`` (detector; sum of I0, or of I0 x t, over the valid pixels: the
        divisor of the sums), ``I0_raw_total`` (sum of I0) and ``time_total`` (seconds).
        attrs: ``I0`` (``normto``), ``TmNorm`` ("True" / "False", as xrf_proc writes it),
        ``tmnorm``, ``error_source``, ``I0_source``, ``deadtime_source``. Lazy, in the fit's
        blocks; ``normto`` (a maximum of the small I0 map) is the only value computed now.
        :func:`xrfdask.to_h5` writes it as ``norm/``.

    Raises
    ------
    ConfigError
        No I0 to normalise by, ``tmnorm`` without acquisition times, a fit of another map, or
        ``errors="fit"`` for a fit without errors.
    """
    check_not_empty(ds, "normalise")
    _check_maps(ds, fit)
    if errors not in ("auto", "fit", "poisson", "xrf_proc"):
        raise ConfigError(
            f"normalise: errors={errors!r}; expected 'auto', 'fit', 'poisson' or 'xrf_proc'"
        )
    if errors == "fit" and "peak_area_error" not in fit:
        raise ConfigError("normalise: errors='fit' but the fit result has no 'peak_area_error'")
    source = errors if errors != "auto" else ("fit" if _statistical(fit) else "poisson")
    labels = list(fit["detector"].values)  # eager-ok: labels
    chunks = _map_chunks(fit)
    # Validity from the raw map's counters, whatever the fit's correction state.
    counters = deadtime_factors(ds, labels, chunks={d: chunks[d] for d in MAP} if chunks else None)
    corrected = corrected_fit(fit, ds)
    i0, i0_source = _incident(ds, I0)
    t = _time(ds)
    if tmnorm and t is None:
        raise ConfigError(
            "normalise: tmnorm=True needs acquisition times (raw/acquisition_time or a dwell)"
        )
    valid = counters["valid"] & (i0 > 0) & np.isfinite(i0)
    if tmnorm:
        valid = valid & (t > 0) & np.isfinite(t)
    valid = _aligned(valid.transpose("y", "x", "detector"), chunks)
    denominator = _aligned(i0 * t if tmnorm else i0, chunks)
    if I0norm is None:
        pixel_ok = valid.any("detector")
        normto = float(i0.where(pixel_ok.compute()).max())  # eager-ok: max of the small I0 map
        if not np.isfinite(normto):
            raise ConfigError("normalise: no valid pixel (I0, icr/ocr or deadtime masks them all)")
    else:
        normto = float(I0norm)
        if not np.isfinite(normto) or normto <= 0:
            raise ConfigError(f"normalise: I0norm={I0norm!r} must be a positive number")
    area = corrected["peak_area"].astype(np.float64).clip(min=0)
    if source == "fit":
        sigma = corrected["peak_area_error"].astype(np.float64)
    elif source == "poisson":
        # Counting statistics of the recorded counts, scaled as the area: f sqrt(I / f).
        f = _aligned(counters["deadtime_factor"], chunks)
        sigma = np.sqrt(area * f)
    else:  # xrf_proc's: sqrt of the corrected area
        sigma = np.sqrt(area)
    scale = normto / denominator.where(valid)  # masked first: no 0-division warnings
    normalised = (area * scale).transpose("y", "x", "detector", "line")
    normalised_error = (sigma * scale).transpose("y", "x", "detector", "line")

    # Sums: the corrected sum-spectrum areas per total I0 (or I0 x t) of the valid pixels.
    total = denominator.where(valid).sum(MAP)
    i0_total = _aligned(i0, chunks).where(valid).sum(MAP)
    time_total = (
        _aligned(t, chunks).where(valid).sum(MAP) if t is not None else xr.full_like(total, np.nan)
    )
    p = corrected["sum_area"].astype(np.float64).clip(min=0)
    b = corrected["sum_background"].astype(np.float64).clip(min=0)
    p_norm, b_norm = p / total * normto, b / total * normto
    p_rel = xr.where(p > 0, np.sqrt(p + 2 * b) / p.where(p > 0), 0.0)
    b_rel = xr.where(b > 0, np.sqrt(b) / b.where(b > 0), 0.0)

    out = xr.Dataset(
        {
            "normalised": normalised.assign_attrs(
                long_name="normalised peak area", units=f"counts per {normto:g} I0"
            ),
            "normalised_error": normalised_error.assign_attrs(
                long_name="standard deviation of the normalised peak area", source=source
            ),
            "valid": valid.assign_attrs(long_name="pixel normalised (I0, counters valid)"),
            "sum_area": p_norm.assign_attrs(long_name="normalised sum-spectrum peak area"),
            "sum_background": b_norm.assign_attrs(long_name="normalised sum-spectrum background"),
            "sum_area_error": (p_norm * p_rel).assign_attrs(long_name="standard deviation"),
            "sum_background_error": (b_norm * b_rel).assign_attrs(long_name="standard deviation"),
            "I0_total": total.assign_attrs(
                long_name="sum of I0 x t over valid pixels"
                if tmnorm
                else "sum of I0 over valid pixels"
            ),
            "I0_raw_total": i0_total.assign_attrs(long_name="sum of I0 over valid pixels"),
            "time_total": time_total.assign_attrs(
                long_name="acquisition time of the valid pixels", units="s"
            ),
        },
        attrs={
            "I0": normto,
            "TmNorm": "True" if tmnorm else "False",
            "tmnorm": bool(tmnorm),
            "error_source": source,
            "I0_source": i0_source,
            "deadtime_source": corrected.attrs.get(
                "deadtime_source", counters.attrs["deadtime_source"]
            ),
            **{k: fit.attrs[k] for k in ("config", "method") if k in fit.attrs},
        },
    )
    if regrid is not None:
        from xrfdask.regrid import regrid as to_grid

        out = to_grid(out, mode=regrid, motors=ds, **regrid_options)
    return out
