"""``xd.plot.classes``: a classification's pictures (ReadoutXFM's visuals, spec ``geopixe.md``
6.1 and 5.5): the class map in a category palette, each class's mean spectrum on an energy axis
(log counts), and the embedding coloured by class."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

__all__ = ["category_colours", "classes"]

# seaborn's "deep" (ReadoutXFM's palette up to 10 classes), without importing seaborn
_DEEP = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
         "#ccb974", "#64b5cd")  # fmt: skip


def category_colours(n: int, noise: bool = False) -> np.ndarray:
    """(n, 4) RGBA colours for classes 0..n-1: seaborn "deep" up to 10, else matplotlib's
    tab20 then evenly spaced hues; class 0 grey when it is HDBSCAN's noise."""
    from matplotlib import colormaps
    from matplotlib.colors import hsv_to_rgb, to_rgba

    if n <= len(_DEEP):
        colours = np.array([to_rgba(c) for c in _DEEP[:n]])
    elif n <= 20:
        colours = colormaps["tab20"](np.arange(n))
    else:
        hues = (np.arange(n) * 0.618034) % 1.0  # golden-ratio hues: neighbours differ
        colours = np.c_[hsv_to_rgb(np.c_[hues, np.full(n, 0.65), np.full(n, 0.9)]), np.ones(n)]
    if noise and n:
        colours[0] = (0.5, 0.5, 0.5, 1.0)
    return colours


def classes(cls: xr.Dataset, folder: str | os.PathLike, *, dpi: int = 150) -> list[str]:
    """Draw ``vis_category_map.png``, ``class_spectra.png`` and ``vis_embeddings.png``.

    Parameters
    ----------
    cls : xarray.Dataset
        An :func:`xrfdask.classify` result.
    folder : str or path-like
        Where the PNGs go (created if needed).
    dpi : int, default 150

    Returns
    -------
    list of str
        The paths written.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    cls = cls.compute()  # eager-ok: per-pixel labels and embedding, not spectra
    os.makedirs(folder, exist_ok=True)
    n = int(cls.sizes["class"])
    noise = cls.attrs.get("method") == "hdbscan"
    colours = category_colours(n, noise)
    labels = cls["labels"].values
    written = []

    fig = Figure(figsize=(6, 6 * labels.shape[0] / max(labels.shape[1], 1) + 0.5))
    ax = fig.add_subplot()
    ax.imshow(labels, cmap=ListedColormap(colours), vmin=-0.5, vmax=n - 0.5,
              interpolation="nearest")  # fmt: skip
    ax.set_axis_off()
    ax.set_title(f"{cls.attrs.get('method', '')}: {n} classes")
    written.append(_save(fig, folder, "vis_category_map.png", dpi))

    mean = "class_mean_spectra" if "class_mean_spectra" in cls else "class_means"
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    spectra = cls[mean]
    axis_dim = spectra.dims[1]
    x = cls["energy"].values if "energy" in cls.coords else np.arange(spectra.shape[1])
    for c in range(n):
        values = spectra.values[c]
        label = f"class {c} ({int(cls['class_size'][c])} px)"
        if axis_dim == "channel":
            ax.semilogy(x, np.where(values > 0, values, np.nan), color=colours[c], lw=0.8,
                        label=label)  # fmt: skip
        else:
            ax.plot(np.arange(len(values)), values, "o-", color=colours[c], label=label)
    if axis_dim == "channel":
        ax.set_xlabel("energy (keV)" if "energy" in cls.coords else "channel")
        ax.set_ylabel("mean counts per pixel")
    else:
        ax.set_xticks(np.arange(spectra.shape[1]), [str(v) for v in cls[axis_dim].values],
                      rotation=90)  # fmt: skip
        ax.set_ylabel("class mean")
    ax.legend(fontsize=7, ncols=2)
    written.append(_save(fig, folder, "class_spectra.png", dpi))

    e = cls["embedding"].values.reshape(labels.size, -1)
    if e.shape[1] >= 2:
        fig = Figure(figsize=(6, 6))
        ax = fig.add_subplot()
        alpha = max(2 / np.sqrt(labels.size), 0.002)  # ReadoutXFM's point alpha
        ax.scatter(e[:, 0], e[:, 1], c=colours[labels.reshape(-1)], s=2,
                   alpha=min(1.0, alpha * 20), linewidths=0)  # fmt: skip
        ax.set_xlabel("component 0")
        ax.set_ylabel("component 1")
        written.append(_save(fig, folder, "vis_embeddings.png", dpi))
    return written


def _save(fig, folder, name: str, dpi: int) -> str:
    from xrfdask.io.atomic import atomic_output

    path = os.path.join(folder, name)
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path
