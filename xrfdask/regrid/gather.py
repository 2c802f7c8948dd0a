"""Applying an interpolation plan to an array on (y, x, ...): lazily, band by band.

Each output block is one task that reads only the source blocks holding the pixels it takes
(for a snake, its own band of rows and, where the rows' positions wander, a neighbour) and fills
the block by fancy indexing along the flattened pixel axis: whole spectra (or line vectors) are
copied per pixel, no Python loop runs per pixel, and numpy releases the GIL while it copies.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from xrfdask.chunks import bounds
from xrfdask.regrid.grid import Plan

__all__ = ["apply_plan", "result_dtype"]


def result_dtype(dtype: np.dtype, method: str) -> np.dtype:
    """dtype of a regridded variable: as given for nearest (and for masks), float for linear
    (float32 stays float32, everything else becomes float64)."""
    dtype = np.dtype(dtype)
    if method == "nearest" or dtype == np.bool_:
        return dtype
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


@dataclass(frozen=True, eq=False)
class _BlockPlan:
    """What one output block takes: per vertex, per source block, (positions, offsets)."""

    shape: tuple[int, int]
    parts: tuple[tuple[tuple[int, np.ndarray | None, np.ndarray], ...], ...]
    weights: np.ndarray | None  # (pixels, k) float64, NaN outside the hull


def _kind(dtype: np.dtype, method: str) -> str:
    if method == "nearest":
        return "nearest"
    return "all" if np.dtype(dtype) == np.bool_ else "linear"


def _fill(out: np.ndarray, flats: list[np.ndarray], parts) -> None:
    for k, pos, off in parts:
        if pos is None:
            np.take(flats[k], off, axis=0, out=out)
        else:
            out[pos] = flats[k][off]


def _take(blocks: list[np.ndarray], plan: _BlockPlan, kind: str, dtype: np.dtype) -> np.ndarray:
    """One output block from the source blocks it reads (a task; also the eager path)."""
    rest = blocks[0].shape[2:]
    flats = [b.reshape(b.shape[0] * b.shape[1], *rest) for b in blocks]
    n = plan.shape[0] * plan.shape[1]
    if kind == "nearest":
        out = np.empty((n, *rest), dtype=dtype)
        _fill(out, flats, plan.parts[0])
        return out.reshape(*plan.shape, *rest)
    tmp = np.empty((n, *rest), dtype=blocks[0].dtype)
    expand = (slice(None),) + (None,) * len(rest)
    if kind == "all":  # a mask: true where every vertex is, false outside the hull
        out = np.empty((n, *rest), dtype=bool)
        out[...] = np.isfinite(plan.weights[:, 0])[expand]
        for parts in plan.parts:
            _fill(tmp, flats, parts)
            out &= tmp
        return out.reshape(*plan.shape, *rest)
    out = np.zeros((n, *rest), dtype=np.float64)
    for v, parts in enumerate(plan.parts):
        _fill(tmp, flats, parts)
        out += plan.weights[:, v][expand] * tmp
    return out.astype(dtype, copy=False).reshape(*plan.shape, *rest)


def _block_plans(
    plan: Plan, src_chunks: tuple[tuple[int, ...], tuple[int, ...]], out_chunks
) -> dict[tuple[int, int], tuple[np.ndarray, _BlockPlan]]:
    """Per output block: the source blocks it reads (numbers ``bi * nbj + bj``) and its plan."""
    ncols = sum(src_chunks[1])
    y_edges = np.cumsum((0, *src_chunks[0]))
    x_edges = np.cumsum((0, *src_chunks[1]))
    widths = np.asarray(src_chunks[1], dtype=np.int64)
    rows, cols = np.divmod(plan.index, ncols)
    bi = np.searchsorted(y_edges, rows, side="right") - 1
    bj = np.searchsorted(x_edges, cols, side="right") - 1
    number = bi * len(src_chunks[1]) + bj
    local = (rows - y_edges[bi]) * widths[bj] + (cols - x_edges[bj])
    k = plan.index.shape[-1]
    out: dict[tuple[int, int], tuple[np.ndarray, _BlockPlan]] = {}
    for oi, (y0, y1) in enumerate(bounds(out_chunks[0])):
        for oj, (x0, x1) in enumerate(bounds(out_chunks[1])):
            ids = number[y0:y1, x0:x1].reshape(-1, k)
            offs = local[y0:y1, x0:x1].reshape(-1, k)
            touched = np.unique(ids)
            parts = []
            for v in range(k):
                column = ids[:, v]
                if touched.size == 1:
                    parts.append(((0, None, np.ascontiguousarray(offs[:, v])),))
                    continue
                order = np.argsort(column, kind="stable")
                starts = np.searchsorted(column[order], touched)
                ends = np.searchsorted(column[order], touched, side="right")
                vertex = []
                for t, (a, b) in enumerate(zip(starts, ends, strict=True)):
                    if b > a:
                        pos = order[a:b]
                        vertex.append((t, pos, offs[pos, v]))
                parts.append(tuple(vertex))
            weights = None
            if plan.weights is not None:
                weights = np.ascontiguousarray(plan.weights[y0:y1, x0:x1].reshape(-1, k))
            out[oi, oj] = touched, _BlockPlan((y1 - y0, x1 - x0), tuple(parts), weights)
    return out


def apply_plan(data: Any, plan: Plan, out_chunks: tuple[tuple[int, ...], tuple[int, ...]] | None):
    """``data`` (y, x, ...) on the plan's grid: a dask array for a dask input (chunks
    ``out_chunks`` along y and x, the others as given), a numpy array otherwise."""
    dtype = result_dtype(data.dtype, plan.method)
    kind = _kind(data.dtype, plan.method)
    if not isinstance(data, da.Array):
        data = np.asarray(data)
        shape = plan.shape
        blocks = _block_plans(
            plan, ((data.shape[0],), (data.shape[1],)), ((shape[0],), (shape[1],))
        )
        _, block_plan = blocks[0, 0]
        return _take([data], block_plan, kind, dtype)
    nbj = len(data.chunks[1])
    plans = _block_plans(plan, data.chunks[:2], out_chunks)
    name = "regrid-" + tokenize(data.name, plan.index, plan.weights, out_chunks, kind)
    rest_blocks = list(itertools.product(*(range(len(c)) for c in data.chunks[2:])))
    dsk: dict[tuple, Any] = {}
    for (oi, oj), (touched, block_plan) in plans.items():
        for rk in rest_blocks:
            keys = [(data.name, int(t) // nbj, int(t) % nbj, *rk) for t in touched]
            dsk[(name, oi, oj, *rk)] = (_take, keys, block_plan, kind, dtype)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[data])
    chunks = (tuple(out_chunks[0]), tuple(out_chunks[1]), *data.chunks[2:])
    return da.Array(graph, name, chunks, meta=np.empty((0,) * data.ndim, dtype=dtype))
