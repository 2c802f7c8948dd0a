"""Dead-time statistics and prediction (ReadoutXFM's ``-a`` statistics and ``-dt``; spec 4).

- :func:`deadtime_stats`: per-detector mean, median, percentiles and histogram of the dead time
  (from the record index alone), and the per-pixel total counts per detector.
- :func:`predict_deadtime`: a map with a predicted ``deadtime`` (the measured one kept as
  ``deadtime_measured``): ReadoutXFM HEAD's cubic in count rate (``"readoutxfm"``, float32 as it
  writes it) or the legacy linear model (``"linear"``).
- :func:`fill_deadtime`: a map whose every record holds one constant dead time (``-dt V``).
- :func:`missing_deadtime`: which detectors have no measured dead time (spec 4.3's rule: every
  record of the detector at 0.0).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError, XrfdaskWarning

__all__ = [
    "READOUTXFM_CUBIC",
    "READOUTXFM_DOMAIN_KCPS",
    "deadtime_stats",
    "fill_deadtime",
    "missing_deadtime",
    "pixel_counts",
    "predict_deadtime",
    "readoutxfm_cubic",
]

#: ReadoutXFM HEAD's coefficients (numpy Polynomial in u, domain [a, b] -> window [-1, 1]).
READOUTXFM_CUBIC = (0.23438781, 0.21464015, 0.05402071, 0.02689396)
READOUTXFM_DOMAIN_KCPS = (4.08008563, 99.727441)
#: The legacy linear model's defaults (config dtcalc_a, dtcalc_c, dtcalc_cutoff).
LINEAR_DEFAULTS = (0.8333, 0.0, 95.0)


def _deadtime(ds: xr.Dataset) -> xr.DataArray:
    if "deadtime" not in ds:
        raise ConfigError("the map has no 'deadtime' variable (a .GeoPIXE map records one)")
    return ds["deadtime"].transpose("y", "x", "detector")


def pixel_counts(ds: xr.Dataset) -> xr.DataArray:
    """(y, x, detector) total counts per spectrum, lazily: from the sparse records of a
    ``.GeoPIXE`` map (no dense decode), else the sum of the dense spectra."""
    from xrfdask.io import fastpaths

    spectra = ds["spectra"].transpose("y", "x", "detector", "channel")
    fast = fastpaths.pixel_totals(spectra.data)
    if fast is not None:
        coords = {k: spectra.coords[k] for k in ("y", "x", "detector")}
        return xr.DataArray(fast, dims=("y", "x", "detector"), coords=coords)
    small = spectra.dtype.kind == "u" and spectra.dtype.itemsize <= 2
    return spectra.sum("channel", dtype=np.uint32 if small else np.float64)


def deadtime_stats(
    ds: xr.Dataset, *, percentiles=(5, 25, 75, 95), bins: int = 100, counts: bool = True
) -> xr.Dataset:
    """Per-detector statistics of a map's dead time (percent), and its count totals.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map with ``deadtime`` (y, x, detector) (a ``.GeoPIXE`` map: read from the record
        index, no spectra decoded).
    percentiles : sequence of float
    bins : int, default 100
        Histogram bins over [0, 100] % (ReadoutXFM draws 100).
    counts : bool, default True
        Also the per-pixel total counts per detector (``counts``, lazy: one pass over the
        spectra when computed).

    Returns
    -------
    xarray.Dataset
        ``mean``, ``median`` (detector), ``percentile`` (detector, quantile), ``histogram``
        (detector, bin) with ``bin_edges``, ``overall_mean`` (all detectors' pixels), ``pixels``
        (detector: pixels with a record), and ``counts`` (y, x, detector; for a ``.GeoPIXE``
        map from the sparse records, no dense decode). The statistics are computed now (the
        dead-time map is small); pixels without a record (NaN) are left out.
    """
    dt = _deadtime(ds)
    values = np.asarray(dt.values, dtype=np.float64)  # eager-ok: (y, x, detector) from the index
    labels = list(dt["detector"].values)  # eager-ok: labels
    flat = values.reshape(-1, values.shape[-1])
    edges = np.linspace(0.0, 100.0, bins + 1)
    mean, median, pct, hist, npix = [], [], [], [], []
    for d in range(flat.shape[1]):
        v = flat[:, d][np.isfinite(flat[:, d])]
        npix.append(v.size)
        mean.append(v.mean() if v.size else np.nan)
        median.append(np.median(v) if v.size else np.nan)
        pct.append(np.percentile(v, percentiles) if v.size else np.full(len(percentiles), np.nan))
        hist.append(np.histogram(np.clip(v, 0, 100), bins=edges)[0])
    every = flat[np.isfinite(flat)]
    out = xr.Dataset(
        {
            "mean": ("detector", np.asarray(mean), {"units": "%"}),
            "median": ("detector", np.asarray(median), {"units": "%"}),
            "percentile": (("detector", "quantile"), np.asarray(pct), {"units": "%"}),
            "histogram": (("detector", "bin"), np.asarray(hist)),
            "bin_edges": ("bin_edge", edges, {"units": "%"}),
            "overall_mean": ((), float(every.mean()) if every.size else np.nan, {"units": "%"}),
            "pixels": ("detector", np.asarray(npix)),
        },
        coords={"detector": labels, "quantile": list(percentiles)},
    )
    if counts and "spectra" in ds:
        out["counts"] = pixel_counts(ds).assign_attrs(
            long_name="total counts per pixel and detector"
        )
    return out


def readoutxfm_cubic(rate_kcps):
    """ReadoutXFM HEAD's predicted dead time (%) at a count rate (counts per ms), in float64.

    ``rate_kcps``: a number, a numpy or dask array or a DataArray (float64).
    """
    if isinstance(rate_kcps, int | float | list | tuple):
        rate_kcps = np.asarray(rate_kcps, dtype=np.float64)
    # numpy's Polynomial(coef, domain, window)(rate), operation for operation (so float32 of it
    # is the original's file bit for bit), on any array type: lazy input stays lazy.
    off, scl = np.polynomial.polyutils.mapparms(READOUTXFM_DOMAIN_KCPS, (-1.0, 1.0))
    u = off + scl * rate_kcps
    c0, c1, c2, c3 = READOUTXFM_CUBIC
    return 100.0 * (c0 + u * (c1 + u * (c2 + u * c3)))


def missing_deadtime(ds: xr.Dataset) -> list:
    """Detectors whose every record has a dead time of exactly 0.0 (spec 4.3: not measured)."""
    dt = np.asarray(_deadtime(ds).values)  # eager-ok: the small dead-time map
    labels = list(ds["detector"].values)  # eager-ok: labels
    flat = dt.reshape(-1, dt.shape[-1])
    out = []
    for d, label in enumerate(labels):
        v = flat[:, d][np.isfinite(flat[:, d])]
        if v.size and (v == 0.0).all():
            out.append(label.item() if hasattr(label, "item") else label)
    return out


def fill_deadtime(ds: xr.Dataset, value: float) -> xr.Dataset:
    """The map with the constant ``value`` (%) as every record's ``deadtime`` (ReadoutXFM's
    ``-dt V``, for detectors whose dead time was not measured); the measured one kept as
    ``deadtime_measured``.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map; pixels without a record (``present`` False) keep NaN.
    value : float
        Dead time in percent, 0 <= value <= 100 (stored as float32, as the records hold it).

    Returns
    -------
    xarray.Dataset
        ``attrs["deadtime_model"]`` is ``"constant"``.
    """
    if not isinstance(value, int | float) or not 0.0 <= value <= 100.0:
        raise ConfigError(f"fill_deadtime: value={value!r}; expected a percentage 0..100")
    shape = tuple(ds.sizes[d] for d in ("y", "x", "detector"))
    filled = xr.DataArray(
        np.full(shape, value, dtype=np.float32),
        dims=("y", "x", "detector"),
        coords={d: ds[d] for d in ("y", "x", "detector")},
        attrs={"units": "%", "long_name": f"dead time set to {value:g} %"},
    )
    if "present" in ds:
        filled = filled.where(ds["present"].transpose("y", "x", "detector"))
    out = ds.copy()
    if "deadtime" in ds:
        out["deadtime_measured"] = ds["deadtime"]
    out["deadtime"] = filled.astype(np.float32)
    out.attrs = {**ds.attrs, "deadtime_model": "constant"}
    return out


def predict_deadtime(
    ds: xr.Dataset,
    model: str = "readoutxfm",
    *,
    time_constant_us: float = 0.5,
    linear=LINEAR_DEFAULTS,
) -> xr.Dataset:
    """The map with a predicted ``deadtime`` (%); the measured one kept as ``deadtime_measured``.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map with ``spectra`` and ``attrs["dwell_ms"]`` (the count rate is a pixel's total
        counts per ms of dwell).
    model : {"readoutxfm", "fit", "linear"}
        ``"readoutxfm"``: ReadoutXFM HEAD's cubic in each detector's count rate (spec 4.3),
        computed in float64 and stored in float32 as the original writes it; values outside
        [0, 100) % are clipped (the original writes them): how many is ``deadtime_clipped``
        (and a warning for a map in memory).
        ``"fit"``: a monotone curve fitted to the map's own measured dead times against count
        rate per detector (robust: binned medians, isotonic), applied to every pixel; detectors
        without measurements take the others' curve; ``deadtime_fit_residual`` (detector) is
        the median absolute residual. Computes the per-pixel count totals now (one pass).
        ``"linear"``: the legacy model ``min(a x (pixel total / dwell) / n_detectors + c, cutoff)``
        on the pixel's total over all detectors, the same for each detector.
    time_constant_us : float, default 0.5
        The detector's shaping time: ``"readoutxfm"`` and ``"linear"`` were calibrated at 0.5 µs
        only (``"fit"`` learns from the map itself).
    linear : (a, c, cutoff)
        The legacy model's parameters (ReadoutXFM's ``dtcalc_a``, ``dtcalc_c``,
        ``dtcalc_cutoff``).

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``deadtime`` predicted (lazy: one pass over the spectra when computed) and
        ``deadtime_measured``; ``attrs["deadtime_model"]``, and for ``"readoutxfm"``
        ``attrs["deadtime_domain_kcps"]`` (the rates the cubic was fitted over).
    """
    if model not in ("readoutxfm", "fit", "linear"):
        raise ConfigError(
            f"predict_deadtime: model={model!r}; expected 'readoutxfm', 'fit' or 'linear'"
        )
    if time_constant_us != 0.5 and model != "fit":
        raise ConfigError(
            f"predict_deadtime: the {model!r} model is calibrated for a 0.5 µs time constant, "
            f"not {time_constant_us} µs"
        )
    dwell = ds.attrs.get("dwell_ms")
    if not isinstance(dwell, int | float) or dwell <= 0:
        raise ConfigError("predict_deadtime: the map has no dwell time (attrs['dwell_ms'])")
    if "spectra" not in ds:
        raise ConfigError("predict_deadtime: the dataset has no 'spectra' (a raw map is needed)")
    counts = pixel_counts(ds).astype(np.float64)
    if model == "readoutxfm":
        raw = readoutxfm_cubic(counts / float(dwell))
        outside = (raw < 0) | (raw >= 100)
        clipped = outside.sum().assign_attrs(
            long_name="pixel-detector values of the cubic outside [0, 100) %, clipped"
        )
        if not hasattr(raw.data, "dask"):  # in memory: say it now (a lazy map says it in
            n_out = int(clipped)  # deadtime_clipped, computed with the map)
            if n_out:
                warnings.warn(
                    f"predict_deadtime: {n_out} pixel-detector values of the readoutxfm cubic "
                    "fall outside [0, 100) % (count rates beyond its fitted domain "
                    f"{READOUTXFM_DOMAIN_KCPS[0]:g}-{READOUTXFM_DOMAIN_KCPS[1]:g} kcps); clipped",
                    XrfdaskWarning,
                    stacklevel=2,
                )
        predicted = raw.clip(0.0, float(np.nextafter(np.float32(100.0), np.float32(0.0))))
    elif model == "fit":
        predicted, residual = _fitted(ds, counts / float(dwell))
    else:
        a, c, cutoff = linear
        total = counts.sum("detector")
        value = np.minimum(a * (total / float(dwell)) / counts.sizes["detector"] + c, cutoff)
        predicted = value.expand_dims(detector=counts["detector"]).transpose("y", "x", "detector")
    predicted = predicted.astype(np.float32).assign_attrs(
        {"units": "%", "long_name": f"dead time predicted ({model})"}
    )
    out = ds.copy()
    if "deadtime" in ds:
        out["deadtime_measured"] = ds["deadtime"]
    out["deadtime"] = predicted
    if model == "readoutxfm":
        out["deadtime_clipped"] = clipped
    out.attrs = {**ds.attrs, "deadtime_model": model}
    if model == "readoutxfm":
        out.attrs["deadtime_domain_kcps"] = list(READOUTXFM_DOMAIN_KCPS)
    if model == "fit":
        out["deadtime_fit_residual"] = residual
    return out


def _fitted(ds: xr.Dataset, rate: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """A monotone curve of measured dead time against count rate, per detector, and its use.

    Robust to outliers: the measured pixels are binned by rate (equal counts per bin), each
    bin's median dead time and median rate are fitted by an increasing isotonic regression, and
    the curve is interpolated linearly between them (held constant beyond). A detector without
    measured values (spec 4.3's rule) takes the curve of the others together. The residual is
    the median absolute difference between measured and predicted, per detector (NaN where
    nothing was measured).
    """
    from sklearn.isotonic import IsotonicRegression

    r = np.asarray(rate.values, dtype=np.float64)  # eager-ok: per-pixel totals (one pass)
    dt = np.asarray(_deadtime(ds).values, dtype=np.float64)  # eager-ok: the dead-time map
    labels = list(rate["detector"].values)  # eager-ok: labels
    missing = set(missing_deadtime(ds))
    measured = np.isfinite(dt) & (dt > 0) & np.isfinite(r)
    for d, label in enumerate(labels):
        if (label.item() if hasattr(label, "item") else label) in missing:
            measured[..., d] = False
    if not measured.any():
        raise ConfigError("predict_deadtime: model='fit' needs measured dead times; none are")

    def curve(x: np.ndarray, y: np.ndarray):
        nbins = int(np.clip(x.size // 20, 2, 50))
        order = np.argsort(x)
        xb = [np.median(part) for part in np.array_split(x[order], nbins)]
        yb = [np.median(part) for part in np.array_split(y[order], nbins)]
        iso = IsotonicRegression(increasing=True).fit(xb, yb)
        return np.asarray(xb), iso.predict(xb)

    pooled = curve(r[measured], dt[measured])
    predicted = np.empty_like(r)
    residual = np.full(len(labels), np.nan)
    for d in range(len(labels)):
        ok = measured[..., d]
        xs, ys = curve(r[..., d][ok], dt[..., d][ok]) if ok.sum() >= 40 else pooled
        predicted[..., d] = np.interp(r[..., d], xs, ys)
        if ok.any():
            residual[d] = np.median(np.abs(predicted[..., d][ok] - dt[..., d][ok]))
    coords = {k: rate.coords[k] for k in ("y", "x", "detector")}
    out = xr.DataArray(predicted, dims=("y", "x", "detector"), coords=coords)
    res = xr.DataArray(
        residual, dims=("detector",), coords={"detector": rate["detector"]},
        attrs={"long_name": "median |measured - predicted| dead time", "units": "%"},
    )  # fmt: skip
    return out, res
