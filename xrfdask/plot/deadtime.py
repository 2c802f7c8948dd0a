"""ReadoutXFM's dead-time plots (spec ``geopixe.md`` 4.2), from the map's index and counts.

``deadtime(ds, folder)`` writes, as PNG at 150 dpi:

- ``deadtime_histograms.png``: 100-bin histograms per detector, overlaid (alpha 0.5; red, pink,
  blue, light blue);
- ``deadtime_maps.png``: one magma map per detector;
- ``difference_map.png``: per-pixel counts of detector 0 minus detector 1 (``bwr``, with a
  colour bar), for 2 or more detectors;
- ``deadtime_vs_counts.png``: dead time against each detector's counts (alpha 0.1);
- ``predicted_deadtime_histograms.png``: measured and predicted dead time per detector, when the
  map carries a prediction (:func:`xrfdask.predict_deadtime`: ``deadtime_measured`` beside
  ``deadtime``).

Unlike the original, the maps work on truncated scans (pixels without a record stay blank),
and the plots need no decoded spectra beyond the per-pixel counts (from the sparse records of a
``.GeoPIXE`` file), so they are drawn for an index-only run too. Figures are made without
pyplot (no display, nothing shown before saving).
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

__all__ = ["deadtime"]

_COLOURS = ("red", "pink", "blue", "lightblue")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def deadtime(
    ds: xr.Dataset, folder: str | os.PathLike, *, counts: xr.DataArray | None = None
) -> list[str]:
    """Draw ReadoutXFM's dead-time plots of a map into ``folder``; returns the files written.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map with ``deadtime`` (y, x, detector); with ``deadtime_measured`` too when it
        holds a prediction.
    folder : path
        Where the PNGs go (made if needed).
    counts : DataArray, optional
        (y, x, detector) counts per pixel; default :func:`xrfdask.deadtime.pixel_counts`
        (the sparse records of a ``.GeoPIXE`` map: no dense decode). Without spectra, the plots
        that need counts are skipped.
    """
    from xrfdask.deadtime import pixel_counts

    os.makedirs(folder, exist_ok=True)
    predicted = "deadtime_measured" in ds
    measured = ds["deadtime_measured"] if predicted else ds["deadtime"]
    dt = np.asarray(measured.transpose("y", "x", "detector").values, dtype=float)  # eager-ok: small
    labels = [str(v) for v in ds["detector"].values]  # eager-ok: labels
    if counts is None and "spectra" in ds:
        counts = pixel_counts(ds)
    cts = (
        np.asarray(counts.transpose("y", "x", "detector").values, dtype=float)  # eager-ok: small
        if counts is not None
        else None
    )
    written = []

    def save(fig, name):
        path = os.path.join(os.fspath(folder), name)
        fig.savefig(path, dpi=150, bbox_inches="tight")
        written.append(path)

    fig = _figure(6, 4)
    ax = fig.add_subplot()
    for d, label in enumerate(labels):
        v = dt[..., d][np.isfinite(dt[..., d])]
        ax.hist(v, bins=100, alpha=0.5, color=_COLOURS[d % 4], label=f"detector {label}")
    ax.set_xlabel("dead time (%)")
    ax.set_ylabel("pixels")
    ax.legend()
    save(fig, "deadtime_histograms.png")

    fig = _figure(4 * len(labels), 3.5)
    for d, label in enumerate(labels):
        ax = fig.add_subplot(1, len(labels), d + 1)
        image = ax.imshow(np.ma.masked_invalid(dt[..., d]), cmap="magma")
        ax.set_title(f"dead time, detector {label} (%)")
        fig.colorbar(image, ax=ax)
    save(fig, "deadtime_maps.png")

    if cts is not None:
        if len(labels) >= 2:
            fig = _figure(5, 4)
            ax = fig.add_subplot()
            diff = cts[..., 0] - cts[..., 1]
            limit = np.nanmax(np.abs(diff)) or 1.0
            image = ax.imshow(diff, cmap="bwr", vmin=-limit, vmax=limit)
            ax.set_title(f"counts, detector {labels[0]} - detector {labels[1]}")
            fig.colorbar(image, ax=ax)
            save(fig, "difference_map.png")
        fig = _figure(6, 4)
        ax = fig.add_subplot()
        for d, label in enumerate(labels):
            ax.scatter(dt[..., d].ravel(), cts[..., d].ravel(), s=4, alpha=0.1,
                       color=_COLOURS[d % 4], label=f"detector {label}")  # fmt: skip
        ax.set_xlabel("dead time (%)")
        ax.set_ylabel("counts")
        ax.legend()
        save(fig, "deadtime_vs_counts.png")

    if predicted:
        pred = np.asarray(
            ds["deadtime"].transpose("y", "x", "detector").values, dtype=float
        )  # eager-ok: small
        fig = _figure(4 * len(labels), 3.5)
        for d, label in enumerate(labels):
            ax = fig.add_subplot(1, len(labels), d + 1)
            for values, name, colour in ((dt, "measured", "grey"), (pred, "predicted", "red")):
                v = values[..., d][np.isfinite(values[..., d])]
                ax.hist(v, bins=100, alpha=0.5, color=colour, label=name)
            ax.set_title(f"detector {label}")
            ax.set_xlabel("dead time (%)")
            ax.legend()
        save(fig, "predicted_deadtime_histograms.png")
    return written
