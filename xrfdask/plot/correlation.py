"""xrf_proc's correlation matrix of element maps (Xims ``plot_correl``, spec 8.6).

Entry (i, j) of the Y x Y grid has row variable i (y axis) and column variable j (x axis):
above the diagonal the scatter with its least-squares line, the 95 % confidence band of the
mean and ``R² = 0.xxx``; on the diagonal the 10-bin histogram rescaled into the variable's range;
below it the Gaussian KDE's √density contours with ``r = 0.xx`` and significance stars
(Pearson). Large maps are drawn from a seeded random sample of pixels (20,000 by default), read
lazily: only those pixels of the maps are computed. Unlike the original, pixels with NaN are
left out, a constant variable gets no fit, R² or KDE (instead of dividing by zero), and the KDE
is evaluated by binning the points on a fine grid and convolving with the Gaussian kernel of
``scipy.stats.gaussian_kde`` (same Scott bandwidth), so a 20,000-pixel sample draws in a second.

The numbers printed are :func:`correlation_stats` of :func:`correlation_sample`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.plot.overview import save_png, select_maps

__all__ = ["correlation", "correlation_sample", "correlation_stats", "stars"]

_GRID = 50  # KDE grid points per axis (spec 8.6)
_FINE = 4  # the points are binned on a grid this much finer before the convolution


def correlation_sample(
    result: xr.Dataset | xr.DataArray,
    *,
    variable: str | None = None,
    lines: Sequence[str] | None = None,
    detector: Any = None,
    sample: int | None = 20000,
    seed: int = 0,
) -> xr.DataArray:
    """The (pixel, line) values the correlation plot is drawn from.

    ``sample`` pixels (all when None or when the map has fewer) drawn without replacement by
    ``numpy.random.default_rng(seed)``, in raster order; pixels with a NaN in any line are then
    left out. Only those pixels are computed. ``y`` and ``x`` coordinates on ``pixel`` say
    which pixels they are. ``detector``: a label or position, or ``"sum"``; default the first.
    """
    maps = select_maps(result, variable, detector, lines, all_detectors=False).isel(detector=0)
    ny, nx = maps.sizes["y"], maps.sizes["x"]
    total = ny * nx
    if sample is not None and sample < 1:
        raise ValueError(f"sample={sample!r}: expected a positive number of pixels or None")
    if sample is None or sample >= total:
        flat = np.arange(total)
    else:
        flat = np.sort(np.random.default_rng(seed).choice(total, size=int(sample), replace=False))
    iy, ix = np.divmod(flat, nx)
    picked = maps.isel(y=xr.DataArray(iy, dims="pixel"), x=xr.DataArray(ix, dims="pixel"))
    picked = picked.transpose("pixel", "line").compute()  # eager-ok: the sampled pixels only
    keep = np.isfinite(np.asarray(picked.values)).all(axis=1)  # eager-ok: computed
    return picked.isel(pixel=np.flatnonzero(keep))


def stars(p: float) -> str:
    """``***`` if p <= 0.001, ``**`` if p <= 0.01, ``*`` if p <= 0.05, else nothing."""
    return "***" if p <= 0.001 else "**" if p <= 0.01 else "*" if p <= 0.05 else ""


def correlation_stats(values: xr.DataArray | np.ndarray, names: Sequence[str] | None = None):
    """R² of the least-squares line and Pearson r and p of every pair of lines.

    Parameters
    ----------
    values : (pixel, line) DataArray or array
        :func:`correlation_sample`'s result, or any such table.
    names : list of str, optional
        Line names of an array (a DataArray's ``line`` coordinate otherwise).

    Returns
    -------
    xarray.Dataset
        ``r2``, ``slope``, ``intercept`` (row, column): the fit of row variable i against
        column variable j, R² = Σ(ŷ - ȳ)² / Σ(y - ȳ)² (spec 8.6); ``r``, ``p`` (row, column):
        ``scipy.stats.pearsonr``. NaN where a variable is constant. Coordinates ``row`` and
        ``column`` hold the line names.
    """
    from scipy import stats

    table = np.asarray(values, dtype=np.float64)
    if names is None:
        names = [str(v) for v in values["line"].values]  # eager-ok: labels
    nvar = table.shape[1]
    out = {k: np.full((nvar, nvar), np.nan) for k in ("r2", "slope", "intercept", "r", "p")}
    for i in range(nvar):
        for j in range(nvar):
            x, y = table[:, j], table[:, i]
            if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
                continue
            a, b = np.polyfit(x, y, 1)
            fitted = a * x + b
            out["slope"][i, j], out["intercept"][i, j] = a, b
            out["r2"][i, j] = np.sum((fitted - y.mean()) ** 2) / np.sum((y - y.mean()) ** 2)
            r, p = stats.pearsonr(x, y)
            out["r"][i, j], out["p"][i, j] = r, p
    dims = ("row", "column")
    return xr.Dataset(
        {k: (dims, v) for k, v in out.items()},
        coords={"row": list(names), "column": list(names)},
        attrs={"n_pixels": int(table.shape[0])},
    )


def _kde_grid(x: np.ndarray, y: np.ndarray, n: int = _GRID):
    """Gaussian KDE of (x, y) on an n x n grid spanning each range ± 5 %: (xg, yg, density
    (y, x)), or None for a singular covariance. Scott's bandwidth as ``gaussian_kde``; the points
    are binned on a grid ``_FINE`` times finer and convolved with the kernel (FFT)."""
    from scipy.signal import fftconvolve

    npts = x.size
    cov = np.cov(x, y) * npts ** (-2.0 / 6.0)  # gaussian_kde: data covariance x scott_factor²
    det = np.linalg.det(cov)
    if not np.isfinite(det) or det <= 1e-12 * cov[0, 0] * cov[1, 1]:
        return None
    grids = []
    for v in (x, y):
        lo, hi = float(v.min()), float(v.max())
        pad = 0.05 * (hi - lo)
        grids.append(np.linspace(lo - pad, hi + pad, (n - 1) * _FINE + 1))
    xf, yf = grids
    dx, dy = xf[1] - xf[0], yf[1] - yf[0]
    nf = xf.size
    ix = np.clip(np.rint((x - xf[0]) / dx).astype(np.int64), 0, nf - 1)
    iy = np.clip(np.rint((y - yf[0]) / dy).astype(np.int64), 0, nf - 1)
    hist = np.bincount(iy * nf + ix, minlength=nf * nf).reshape(nf, nf).astype(np.float64)
    inv = np.linalg.inv(cov)
    kx = np.arange(-(nf - 1), nf) * dx
    ky = np.arange(-(nf - 1), nf) * dy
    q = inv[0, 0] * kx[None, :] ** 2 + 2 * inv[0, 1] * kx[None, :] * ky[:, None]
    q += inv[1, 1] * ky[:, None] ** 2
    kernel = np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(det))
    density = fftconvolve(hist, kernel, mode="same") / npts
    return xf[::_FINE], yf[::_FINE], np.clip(density[::_FINE, ::_FINE], 0, None)


def correlation(
    result: xr.Dataset | xr.DataArray,
    path: str | os.PathLike | None = None,
    *,
    variable: str | None = None,
    lines: Sequence[str] | None = None,
    detector: Any = None,
    sample: int | None = 20000,
    seed: int = 0,
    dpi: int = 150,
):
    """Draw xrf_proc's correlation matrix of a result's element maps (spec 8.6).

    Parameters
    ----------
    result : Dataset or DataArray
        A fit, normalise or quantify result, or (y, x[, detector], line) maps.
    path : str or path-like, optional
        The PNG to write (10 x 10 inches: ``10 dpi`` pixels square).
    variable : str, optional
        Default the result's main variable (as :func:`~xrfdask.plot.overview`).
    lines : list of str, optional
        The variables, in order; default every line.
    detector : label, int or "sum", optional
        Default the first detector (xrf_proc's channel00).
    sample : int or None, default 20000
        Pixels drawn at random (seeded); None: every pixel.
    seed : int, default 0
    dpi : int, default 150

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``fig.axes[i * Y + j]`` is entry (i, j). The printed numbers are Text artists with
        ``gid`` ``"r2"`` (above the diagonal) and ``"r"`` (below); they are
        :func:`correlation_stats` of :func:`correlation_sample` with the same arguments.
    """
    values = correlation_sample(
        result, variable=variable, lines=lines, detector=detector, sample=sample, seed=seed
    )
    table = np.asarray(values.values, dtype=np.float64)  # eager-ok: the computed sample
    names = [str(v) for v in values["line"].values]  # eager-ok: labels
    fig = _figure(table, names, correlation_stats(table, names))
    if path is not None:
        save_png(fig, os.fspath(path), dpi)
    return fig


def _figure(table: np.ndarray, names: list[str], st: xr.Dataset):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from scipy import stats

    nvar = len(names)
    npts = table.shape[0]
    num = {k: np.asarray(st[k]) for k in st.data_vars}  # the stats table (numpy already)
    fig = Figure(figsize=(10, 10))
    axes = fig.subplots(nvar, nvar, squeeze=False)
    ranges = []
    for v in range(nvar):
        col = table[:, v]
        lo, hi = (float(col.min()), float(col.max())) if npts else (0.0, 1.0)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        ranges.append((lo - pad, hi + pad))
    for i in range(nvar):
        for j in range(nvar):
            ax = axes[i, j]
            x, y = table[:, j], table[:, i]
            if npts and j > i:
                ax.plot(x, y, ".", alpha=0.5, markersize=2, linestyle="none")
                a, b = num["slope"][i, j], num["intercept"][i, j]
                if np.isfinite(a) and npts > 2:
                    xs = np.linspace(x.min(), x.max(), 100)
                    ys = a * xs + b
                    ax.plot(xs, ys, "k--", lw=1, alpha=0.5)
                    resid = y - (a * x + b)
                    s = np.sqrt(np.sum(resid**2) / (npts - 2))
                    half = (
                        stats.t.ppf(0.975, npts - 2)
                        * s
                        * np.sqrt(1 / npts + (xs - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
                    )
                    ax.fill_between(xs, ys - half, ys + half, color="grey", alpha=0.8, lw=0)
                    text = f"R² = {num['r2'][i, j]:.3f}"
                    ax.annotate(text, (0.05, 0.85), xycoords="axes fraction", fontsize=8,
                                color="grey", gid="r2")  # fmt: skip
            elif npts and j == i:
                counts, edges = np.histogram(x, bins=10)
                lo, hi = float(x.min()), float(x.max())
                span = counts.max() - counts.min()
                scaled = lo + (counts - counts.min()) / (span if span else 1) * (hi - lo)
                ax.fill_between(edges, lo, np.r_[scaled, scaled[-1]], step="post",
                                color="tab:blue", alpha=0.5)  # fmt: skip
            elif npts and j < i:
                kde = _kde_grid(x, y) if np.isfinite(num["r"][i, j]) else None
                if kde is not None:
                    xg, yg, density = kde
                    ax.contour(xg, yg, np.sqrt(density), levels=5, cmap="Blues")
                r, p = num["r"][i, j], num["p"][i, j]
                if np.isfinite(r):
                    ax.annotate(f"r = {r:.2f}{stars(p)}", (0.05, 0.85), xycoords="axes fraction",
                                fontsize=8, color="grey", gid="r")  # fmt: skip
            ax.set_xlim(ranges[j])
            ax.set_ylim(ranges[i])
            if i == nvar - 1:
                ax.set_xlabel(names[j], fontsize=12)
                ax.xaxis.set_major_locator(MaxNLocator(3))
                ax.tick_params(axis="x", labelsize=7)
            else:
                ax.set_xticks([])
            if j == 0:
                ax.set_ylabel(names[i], fontsize=12)
                ax.yaxis.set_major_locator(MaxNLocator(3))
                ax.tick_params(axis="y", labelsize=7)
            else:
                ax.set_yticks([])
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.98, wspace=0.05, hspace=0.05)
    return fig
