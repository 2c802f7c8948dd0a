"""ReadoutXFM's classification files (spec ``geopixe.md`` 6.1): ``embeddings/embedding_2d.npy``,
``categories.npy``, ``classavg.npy`` and ``class_averages.csv`` from an :func:`xrfdask.classify`
result."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from xrfdask.io.atomic import atomic_output

__all__ = ["write_readoutxfm_classes"]


def write_readoutxfm_classes(cls: xr.Dataset, folder: str | os.PathLike) -> list[str]:
    """Write ReadoutXFM's four classification files into ``folder`` (created if needed).

    ``embedding_2d.npy`` (pixels, 2) float32 (the first two embedding components, pixels in
    row-major order), ``categories.npy`` (pixels,) labels, ``classavg.npy`` (classes, channels)
    mean spectra (NaN rows for empty classes) and ``class_averages.csv`` the same with a header
    row of labels, ``%.8f``. Returns the paths written.
    """
    cls = cls.compute()  # eager-ok: per-pixel labels and embedding, not spectra
    mean = "class_mean_spectra" if "class_mean_spectra" in cls else "class_means"
    labels = cls["labels"].values.reshape(-1)
    embedding = cls["embedding"].values.reshape(labels.size, -1)[:, :2].astype(np.float32)
    avg = cls[mean].values
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, value in (("embedding_2d.npy", embedding), ("categories.npy", labels),
                        ("classavg.npy", avg)):  # fmt: skip
        path = os.path.join(folder, name)
        with atomic_output(path, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, value)
        written.append(path)
    path = os.path.join(folder, "class_averages.csv")
    header = ",".join(str(c) for c in cls["class"].values)
    with atomic_output(path, overwrite=True) as tmp:
        np.savetxt(tmp, avg, fmt="%.8f", delimiter=",", header=header, comments="")
    written.append(path)
    return written
