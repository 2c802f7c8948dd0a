"""Fast paths of the layout readers' spectra (see :mod:`xrfdask.io.fastpaths`).

For the (y, x, detector, channel) spectra exactly as :func:`~xrfdask.io.h5layout.open_h5` or
:func:`~xrfdask.io.h5layout.open_zarr` return them:

- ``stored_sum_spectrum``: the ``raw/channelXX/sumspec`` the file holds (xrf_proc's converters
  and xrfdask's writers store them; PyMca and xrf_proc build the fit model from them), so a fit
  reads the spectra once. A stored spectrum is used only if it passes cheap checks
  (:func:`check_sumspec`); otherwise the caller computes the sum.
- ``sum_spectrum`` (HDF5): partial sums straight from the decompressed chunks, without
  assembling the dense blocks.
- ``channel_blocks``: the fit's trimmed (detector, pixel, channel) float blocks, read straight
  into that form; from HDF5 only the chunks covering the fit's channels are decompressed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from xrfdask.io import fastpaths
from xrfdask.io.h5layout.stores import (
    SpectraBlock,
    fill_spectra,
    open_h5_file,
    read_spectra_channels,
    spectra_blocks,
    sum_spectra,
)

__all__ = ["stored_sum_spectrum", "sum_spectrum", "channel_blocks", "check_sumspec", "STORAGE_ATTR"]

#: Attribute of ``sumspec`` in files xrfdask writes: the spectra dataset's stored size in bytes
#: when the sum was written. Anything rewriting the spectra afterwards changes it.
STORAGE_ATTR = "xrfdask_spectra_storage_bytes"

_SAMPLE_PIXELS = 5  # spectra read to check a stored sum spectrum (a few chunks each)


def sumspec_path(dataset: str) -> str:
    """``raw/channel00/sumspec`` for ``raw/channel00/spectra``."""
    return f"{dataset.rpartition('/')[0]}/sumspec"


def stored_sum_spectrum(data: Any) -> tuple[np.ndarray, str] | None:
    """The stored (detector, channel) sum spectra of the reader's spectra array, or None.

    None unless ``data`` is the reader's own spectra, every detector has a ``sumspec`` and each
    passes :func:`check_sumspec`.
    """
    blocks = spectra_blocks(data)
    if blocks is None:
        return None
    first = blocks[0, 0]
    sums, storage = [], []
    try:
        for dataset in first.datasets:
            value, size, recorded = _read_sumspec(first, dataset)
            sums.append(value)
            storage.append((size, recorded))
    except (KeyError, OSError, ValueError, TypeError):
        return None
    if any(value is None for value in sums):
        return None
    if any(recorded is not None and recorded != size for size, recorded in storage):
        return None  # the spectra were rewritten after their sum was stored
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in sums])
    if not check_sumspec(stacked, data, list(blocks.values())):  # eager-ok: dict
        return None
    return stacked, ", ".join(sumspec_path(d) for d in first.datasets)


def _read_sumspec(
    block: SpectraBlock, dataset: str
) -> tuple[np.ndarray | None, int | None, int | None]:
    """(sumspec, the spectra's stored size, the size recorded with the sum) of one detector."""
    path = sumspec_path(dataset)
    if block.kind == "zarr":
        import zarr

        group = zarr.open_group(block.path, mode="r")
        if path not in group:
            return None, None, None
        return np.asarray(group[path][...]), None, None
    with open_h5_file(block.path) as f:
        node = f.get(path)
        if node is None or not hasattr(node, "shape"):
            return None, None, None
        recorded = node.attrs.get(STORAGE_ATTR)
        size = f[dataset].id.get_storage_size() if recorded is not None else None
        return node[()], size, None if recorded is None else int(recorded)


def check_sumspec(sums: np.ndarray, data: da.Array, blocks: list[SpectraBlock]) -> bool:
    """Whether stored (detector, channel) sum spectra can stand for the sum of ``data``.

    Cheap checks only (no pass over the map): one value per channel, finite and non-negative,
    whole numbers for integer spectra, and no channel below the counts of a few sampled pixels
    (corners and centre: a sum of another map, of a crop, or a normalised one fails there).
    """
    ndet, nchan = data.shape[2], data.shape[3]
    if sums.shape != (ndet, nchan) or not np.all(np.isfinite(sums)) or np.any(sums < 0):
        return False
    if np.dtype(data.dtype).kind in "iub" and np.any(sums != np.round(sums)):
        return False
    ny, nx = data.shape[:2]
    if ny * nx == 0:
        return True
    pixels = {(0, 0), (ny - 1, nx - 1), (0, nx - 1), (ny - 1, 0), (ny // 2, nx // 2)}
    for y, x in sorted(pixels)[:_SAMPLE_PIXELS]:
        block = next(b for b in blocks if b.rows[0] <= y < b.rows[1] and b.cols[0] <= x < b.cols[1])
        one = dataclasses.replace(block, rows=(y, y + 1), cols=(x, x + 1))
        out = np.empty((ndet, 1, 1, nchan), dtype=block.dtype)
        fill_spectra(one, list(out))
        if np.any(out[:, 0, 0, :] > sums):
            return False
    return True


def sum_spectrum(data: Any) -> da.Array | None:
    """A lazy (detector, channel) float64 sum, one partial per block straight from the chunks."""
    blocks = spectra_blocks(data)
    if blocks is None or next(iter(blocks.values())).kind != "h5":  # eager-ok: dict
        return None
    name = f"h5-sum-{data.name.removeprefix('h5-read-')}"
    specs = list(blocks.values())  # eager-ok: dict of block descriptions
    dsk = {(name, n, 0, 0): (_partial_sum, block) for n, block in enumerate(specs)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    parts = da.Array(
        graph, name, ((1,) * len(dsk), (data.shape[2],), (data.shape[3],)), dtype=np.float64
    )
    return parts.sum(axis=0, split_every=8)


def _partial_sum(block: SpectraBlock) -> np.ndarray:
    return sum_spectra([block])[None]


def channel_blocks(data: Any, lo: int, hi: int, dtype: Any) -> dict[tuple[int, int], Any] | None:
    """Tasks reading each block of pixels as (detector, pixels, channels lo..hi-1) in ``dtype``."""
    blocks = spectra_blocks(data)
    if blocks is None:
        return None
    return {key: (read_spectra_channels, block, lo, hi, dtype) for key, block in blocks.items()}


for _prefix in ("h5-read-", "zarr-read-"):
    fastpaths.register(
        _prefix,
        stored_sum_spectrum=stored_sum_spectrum,
        sum_spectrum=sum_spectrum,
        channel_blocks=channel_blocks,
    )
