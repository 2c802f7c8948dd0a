"""An RGB composite of three element maps (Xims ``plot_rgb``, spec 8.7).

Each colour channel is its map clipped to [lo, hi] and rescaled to [0, 1], the limits given as
fractions of that map's range (as the overview's ``clim``); a legend names the three lines in
red, green and blue. Negative values count as 0 and NaN (masked pixels) is drawn black.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.plot.overview import colour_limits, save_png, select_maps

__all__ = ["rgb", "rgb_image"]

_COLOURS = ("red", "green", "blue")  # legend texts
_CHANNELS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))  # the image's primaries


def _limits(clim) -> list[tuple[float, float] | None]:
    """``clim`` as one (lo, hi) pair per channel."""
    if clim is None:
        return [None, None, None]
    pairs = np.asarray(clim, dtype=float)
    if pairs.shape == (2,):
        return [tuple(pairs)] * 3
    if pairs.shape == (3, 2):
        return [tuple(p) for p in pairs]
    raise ValueError(f"clim={clim!r}: expected (lo, hi) or three (lo, hi) pairs, as fractions")


def rgb_image(
    result: xr.Dataset | xr.DataArray,
    lines: Sequence[str],
    *,
    variable: str | None = None,
    detector: Any = None,
    clim=None,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The (y, x, 3) float image in [0, 1] and each channel's (lo, hi) limits in map units.

    Only the three maps are computed. See :func:`rgb` for the arguments.
    """
    lines = list(lines)
    if len(lines) != 3:
        raise ValueError(f"rgb needs three lines (red, green, blue), got {lines}")
    maps = select_maps(result, variable, detector, lines, all_detectors=False).isel(detector=0)
    cube = np.asarray(maps.compute().values, dtype=np.float64)  # eager-ok: three small maps
    cube = np.where(cube < 0, 0.0, cube)
    image = np.zeros(cube.shape[1:] + (3,))
    limits = []
    for c, (layer, pair) in enumerate(zip(cube, _limits(clim), strict=True)):
        lo, hi, _ = colour_limits(layer, pair)
        limits.append((lo, hi))
        scaled = (layer - lo) / (hi - lo) if hi > lo else np.where(layer > lo, 1.0, 0.0)
        image[..., c] = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)
    return image, limits


def rgb(
    result: xr.Dataset | xr.DataArray,
    lines: Sequence[str],
    path: str | os.PathLike | None = None,
    *,
    variable: str | None = None,
    detector: Any = None,
    clim=None,
    dpi: int = 150,
):
    """Draw three element maps as the red, green and blue channels of one image.

    Parameters
    ----------
    result : Dataset or DataArray
        A fit, normalise or quantify result, or (y, x[, detector], line) maps.
    lines : three str
        The lines shown in red, green and blue.
    path : str or path-like, optional
        The PNG to write (a 6-inch-wide figure: its pixel size is ``figsize x dpi``).
    variable : str, optional
        Default the result's main variable.
    detector : label, int or "sum", optional
        Default the first detector.
    clim : (lo, hi) or three (lo, hi) pairs, optional
        Channel limits as fractions of each map's range (lo = min + lo (max - min), ...), one
        pair for all three channels or one per channel; default each map's full range.
    dpi : int, default 150

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` holds the image (``images[0]``, the (y, x, 3) array in [0, 1]) and a
        legend whose texts are the three lines, coloured red, green and blue.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    image, _ = rgb_image(result, lines, variable=variable, detector=detector, clim=clim)
    ny, nx = image.shape[:2]
    width = 6.0
    image_height = min(max(width * ny / max(nx, 1), 1.5), 12.0)
    height = image_height + 0.5
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.02, 0.05 / height, 0.96, image_height / height))
    ax.imshow(image, interpolation="nearest", aspect="auto" if ny / max(nx, 1) > 2 else "equal")
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [Patch(color=c, label=str(n)) for c, n in zip(_CHANNELS, lines, strict=True)]
    legend = ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3,
                       frameon=False, fontsize=10, handlelength=1.2)  # fmt: skip
    for text, colour in zip(legend.get_texts(), _COLOURS, strict=True):
        text.set_color(colour)
    if path is not None:
        save_png(fig, os.fspath(path), dpi)
    return fig
