"""The colour map of :func:`xrfdask.colour_map` as an image (ReadoutXFM's ``plots/colours.png``)."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

__all__ = ["colour_image"]


def colour_image(colour: xr.Dataset, path: str | os.PathLike, *, dpi: int = 150) -> str:
    """Draw a colour map's uint8 ``image`` (y, x, band) into a PNG, one map pixel per cell.

    Parameters
    ----------
    colour : xarray.Dataset
        A :func:`xrfdask.colour_map` result (computed here if lazy: the image is small).
    path : str or path-like
        The PNG to write (its folder is made if needed; written under a temporary name, then
        renamed).
    dpi : int, default 150

    Returns
    -------
    str
        ``path``.
    """
    from matplotlib.figure import Figure

    from xrfdask.io.atomic import atomic_output

    image = np.asarray(colour["image"].transpose("y", "x", "band").values)  # eager-ok: small
    ny, nx, _ = image.shape
    fig = Figure(figsize=(6, max(1.5, 6 * ny / max(nx, 1)) + 0.5))
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    elastic = colour.attrs.get("elastic_kev")
    scheme = colour.attrs.get("scheme", "")
    ax.set_title(f"{scheme} colours" + (f" (scatter {elastic:.2f} keV)" if elastic else ""))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return os.fspath(path)
