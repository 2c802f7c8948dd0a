"""A grid of element maps, one panel per line, each with its colour bar and the line as title."""

from __future__ import annotations

import math
import os

import numpy as np
import xarray as xr

__all__ = ["element_maps"]


def element_maps(
    result: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    variable: str = "peak_area",
    detector: object = "sum",
    lines: list[str] | None = None,
    ncols: int = 4,
    cmap: str = "viridis",
    dpi: int = 120,
) -> str:
    """Save a PNG grid of maps, one panel per line.

    Parameters
    ----------
    result : Dataset or DataArray
        A fit result (``peak_area`` (y, x, detector, line)) or any (y, x[, detector], line) map.
    path : str or path-like
        The PNG file.
    variable : str, default "peak_area"
        Variable of a Dataset to draw.
    detector : label or "sum", default "sum"
        Detector to show; "sum" adds the detectors.
    lines : list of str, optional
        Lines to show, in order; default all.
    ncols : int
        Panels per row.

    Returns
    -------
    str
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    maps = result[variable] if isinstance(result, xr.Dataset) else result
    if "detector" in maps.dims:
        maps = (
            maps.sum("detector", min_count=1) if detector == "sum" else maps.sel(detector=detector)
        )
    if lines is not None:
        maps = maps.sel(line=lines)
    maps = maps.transpose("line", "y", "x").compute()  # eager-ok: the small result maps being drawn
    n = maps.sizes["line"]
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    aspect = maps.sizes["y"] / max(1, maps.sizes["x"])
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows * max(aspect, 0.4) + 0.4), squeeze=False
    )
    extent = None
    if {"x", "y"} <= set(maps.coords) and maps.sizes["x"] > 1 and maps.sizes["y"] > 1:
        x, y = maps["x"].values, maps["y"].values
        extent = (x[0], x[-1], y[-1], y[0])
    for ax, line in zip(axes.ravel(), maps["line"].values, strict=False):
        image = np.asarray(maps.sel(line=line).values, dtype=float)
        shown = ax.imshow(image, cmap=cmap, extent=extent, interpolation="nearest")
        ax.set_title(str(line))
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(
            shown, ax=ax, fraction=0.046, pad=0.04, label=maps.attrs.get("units", "counts")
        )
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return os.fspath(path)
