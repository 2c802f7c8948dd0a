"""The chunking rule of the data model, in one place (design.md section 2).

Maps are cut in **bands of rows** along ``y``, each about ``xrfdask.chunk-size`` bytes
(:func:`xrfdask.options.chunk_budget`); ``detector`` and ``channel`` are one chunk each; ``x`` is
whole unless a row alone is over the budget, and then the band is one row cut along ``x``. A reader
whose file has its own chunking keeps bands in multiples of it (each stored chunk is read by one
task), even where that makes a band larger than the budget. Writers choose their storage chunks
inside those bands (:func:`h5_storage_chunk`, :func:`zarr_storage_chunk`), so every band is written
as whole stored chunks.

The readers (``.GeoPIXE``, the HDF5/zarr layout) and writers call these functions; processing keeps
the bands it is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dask.utils import parse_bytes

from xrfdask.options import chunk_budget

__all__ = [
    "budget_bytes",
    "bands",
    "band_rows",
    "split",
    "bounds",
    "normalize",
    "h5_storage_chunk",
    "zarr_storage_chunk",
]

H5_CHUNK_TARGET = 2**20  # about 1 MiB per HDF5 chunk: cheap random access to single spectra
ZARR_CHUNK_TARGET = 4 * 2**20  # bytes per zarr chunk of a large array


def budget_bytes(budget: int | str | None = None) -> int:
    """Bytes per band: ``budget`` (a number or ``"64MiB"``), else ``xrfdask.chunk-size``."""
    return parse_bytes(budget) if budget else chunk_budget()


def split(n: int, step: int) -> tuple[int, ...]:
    """``n`` in pieces of ``step`` (the last one shorter); ``(0,)`` for an empty axis."""
    if n == 0:
        return (0,)
    return tuple(min(step, n - i) for i in range(0, n, step))


def bounds(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """[start, stop) of each chunk of ``sizes``."""
    edges = np.cumsum((0,) + tuple(sizes))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def bands(
    shape: tuple[int, ...],
    itemsize: int,
    band_axis: int = 0,
    stored: tuple[int, ...] | None = None,
    budget: int | str | None = None,
) -> tuple[tuple[int, ...], ...]:
    """Dask chunks of an array cut in bands of rows along ``band_axis``.

    Parameters
    ----------
    shape : tuple of int
        The array's shape; ``band_axis`` is the map's ``y`` and the next axis its ``x``.
    itemsize : int
        Bytes per element (times the number of detectors read together, if any).
    band_axis : int, default 0
    stored : tuple of int, optional
        The file's own chunk shape: bands (and x-blocks) are multiples of it.
    budget : int or str, optional
        Bytes per band (``xrfdask.chunk-size`` by default).

    Returns
    -------
    tuple of tuples
        Chunks per axis: every axis whole but ``band_axis``, and ``x`` when one row is over budget.
    """
    budget = budget_bytes(budget)
    stored = tuple(stored) if stored else (1,) * len(shape)
    row_bytes = itemsize * int(
        np.prod([n for i, n in enumerate(shape) if i != band_axis], dtype=np.int64)
    )
    chunks = [(n,) for n in shape]
    split_axis = band_axis + 1 if band_axis + 1 < len(shape) else None
    if row_bytes > budget and split_axis is not None:
        rows = 1
        per_col = max(1, row_bytes // max(1, shape[split_axis]))
        chunks[split_axis] = split(
            shape[split_axis], band_rows(per_col, budget, stored[split_axis], shape[split_axis])
        )
    else:
        rows = band_rows(row_bytes, budget, stored[band_axis], shape[band_axis])
    chunks[band_axis] = split(shape[band_axis], rows)
    return tuple(chunks)


def band_rows(row_bytes: int, budget: int, step: int = 1, size: int | None = None) -> int:
    """Rows (or columns) of ``row_bytes`` each in a band of about ``budget`` bytes: at least one,
    and a multiple of the stored ``step`` (at least one step; ``step`` capped at ``size``)."""
    rows = max(1, budget // max(1, row_bytes))
    step = max(1, min(step, size) if size is not None else step)
    return max(step, rows - rows % step)


def normalize(spec: Any, size: int, dim: str) -> tuple[int, ...]:
    """Chunks of one axis from a user's spec: None or -1 (whole), a step, or explicit sizes."""
    if spec is None or spec == -1:
        return (size,)
    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        if spec < 1:
            raise ValueError(f"chunks: {dim}={spec} must be positive")
        step = int(spec)
        return tuple(min(step, size - i) for i in range(0, size, step))
    if isinstance(spec, tuple | list):
        out = tuple(int(c) for c in spec)
        if sum(out) != size or min(out) < 1:
            raise ValueError(f"chunks: {dim} chunks {out} do not add up to the {size} {dim} pixels")
        return out
    raise ValueError(f"chunks: {dim}={spec!r} is not a chunk size")


def _largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of ``n`` not above ``at_most`` (at least 1)."""
    return next((c for c in range(min(n, at_most), 0, -1) if n % c == 0), 1)


def h5_storage_chunk(
    shape: tuple[int, ...],
    itemsize: int,
    y_axis: int,
    band: int,
    x_block: int | None,
    target: int = H5_CHUNK_TARGET,
) -> tuple[int, ...]:
    """HDF5 chunk of an array written band by band.

    Spectra (y, x, channel): one row, split along x to about ``target`` bytes (reading one
    spectrum decompresses little) and dividing the written x-blocks. Per-pixel maps (y, x): one
    band of rows. Stacks (line, y, x): one row of every line.
    """
    chunk = list(shape)
    if len(shape) == 2:
        chunk[y_axis] = max(1, min(band, shape[y_axis]))
        return tuple(chunk)
    chunk[y_axis] = 1
    if x_block is not None:
        per_x = itemsize * int(np.prod(shape[2:], dtype=np.int64))
        cols = max(1, min(shape[1], target // max(1, per_x)))
        chunk[1] = _largest_divisor(x_block, cols) if x_block < shape[1] else cols
    return tuple(max(1, c) for c in chunk)


def zarr_storage_chunk(
    shape: tuple[int, ...],
    itemsize: int,
    y_axis: int,
    band: int,
    x_block: int | None = None,
    target: int = ZARR_CHUNK_TARGET,
) -> tuple[int, ...]:
    """Zarr chunk: rows dividing the band (or columns dividing the x-block), about ``target``."""
    chunks = [max(1, n) for n in shape]
    if x_block is not None:  # one row, split along x
        per_x = itemsize * int(np.prod(shape[2:], dtype=np.int64))
        chunks[y_axis] = 1
        chunks[1] = _largest_divisor(x_block, max(1, min(x_block, target // max(1, per_x))))
        return tuple(chunks)
    row_bytes = itemsize * int(
        np.prod([n for i, n in enumerate(shape) if i != y_axis], dtype=np.int64)
    )
    chunks[y_axis] = _largest_divisor(band, max(1, target // max(1, row_bytes)))
    return tuple(chunks)
