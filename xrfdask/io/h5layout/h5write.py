"""Write a layout tree into an HDF5 file: one writer process, compression done by the workers.

Large arrays are cut in bands of rows. A ``h5-encode`` task compresses each band's HDF5 chunks
with zlib (exactly what HDF5's gzip filter stores), wherever the graph runs, and the writer only
appends the finished chunks with ``write_direct_chunk``: memory stays bounded by a few bands, and
compression scales with the cluster. ``sumspec``/``maxspec`` come from per-band partial sums and
maxima of the same tasks, so the spectra are read once.

A new file is written under a temporary name and renamed. A result group written into an existing
file is first written to a temporary file, then copied in beside the old group and swapped for it:
``raw/`` is never touched, and a failure leaves the previous content in place.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import zlib
from typing import Any

import dask
import dask.array as da
import h5py
import numpy as np

from xrfdask.io.atomic import atomic_output
from xrfdask.io.h5layout.stores import open_h5_file
from xrfdask.io.h5layout.tree import Layout, Node
from xrfdask.runtime import iter_computed

__all__ = ["write_h5", "encode_chunks"]

GZIP_LEVEL = 4  # the layout's compression (spec xrf_proc.md 1.4)
_CHUNK_TARGET = 2**20  # about 1 MiB per HDF5 chunk: cheap random access to single spectra


def write_h5(layout: Layout, path: str, *, overwrite: bool = False) -> str:
    """Write ``layout`` to ``path`` (see module docstring for the safety rules)."""
    path = os.fspath(path)
    if layout.group == "raw" or not os.path.exists(path):
        with atomic_output(path, overwrite=overwrite) as tmp:
            with h5py.File(tmp, "w") as f:
                _write_nodes(f, layout)
        return path
    _replace_group(layout, path, overwrite)
    return path


def _replace_group(layout: Layout, path: str, overwrite: bool) -> None:
    group = layout.group
    with open_h5_file(path, "r") as f:
        exists = group in f
    if exists and not overwrite:
        raise FileExistsError(f"{path}: group '{group}' exists; pass overwrite=True to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    fd, staging_file = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".h5")
    os.close(fd)
    try:
        with h5py.File(staging_file, "w") as t:
            _write_nodes(t, layout)  # the expensive part, with the target file untouched
        with h5py.File(staging_file, "r") as t, open_h5_file(path, "r+") as f:
            _swap_in(f, t, layout)
    finally:
        os.unlink(staging_file)


def _swap_in(f: h5py.File, t: h5py.File, layout: Layout) -> None:
    group = layout.group
    parent_path, _, name = group.rpartition("/")
    parent = f.require_group(parent_path) if parent_path else f
    tag = uuid.uuid4().hex[:8]
    staged, old = f"{name}.tmp-{tag}", f"{name}.old-{tag}"
    parent.copy(t[group], parent, name=staged)
    moved_old = False
    try:
        if name in parent:
            parent.move(name, old)
            moved_old = True
        parent.move(staged, name)
    except BaseException:
        if staged in parent:
            del parent[staged]
        if moved_old and name not in parent:
            parent.move(old, name)
        raise
    if moved_old:
        del parent[old]
    for gpath, attrs in layout.group_attrs.items():
        if gpath != group and not gpath.startswith(group + "/"):
            f.require_group(gpath).attrs.update(attrs)
    f.flush()


def _write_nodes(f: h5py.File, layout: Layout) -> None:
    for gpath, attrs in layout.group_attrs.items():
        f.require_group(gpath).attrs.update(attrs)
    streamed = [n for n in layout.nodes if n.reduce is None and isinstance(n.value, da.Array) and "y" in n.dims]
    reduced = [n for n in layout.nodes if n.reduce is not None]
    eager = [n for n in layout.nodes if n not in streamed and n not in reduced]
    lazy_small = [n for n in eager if isinstance(n.value, da.Array)]
    if lazy_small:
        for node, value in zip(lazy_small, dask.compute(*[n.value for n in lazy_small]), strict=True):
            node.value = value
    for node in eager:
        _write_small(f, node)
    if streamed:
        _write_streamed(f, streamed, reduced)


def _write_small(f: h5py.File, node: Node) -> None:
    if node.kind == "text":
        dset = f.create_dataset(node.path, data=str(node.value))
    elif node.kind == "names":
        encoded = [str(v).encode("utf-8") for v in node.value]
        data = np.array(encoded) if node.names_fixed else encoded
        if node.names_fixed and not encoded:
            data = np.array([], dtype="S1")
        dset = f.create_dataset(node.path, data=data)
    elif node.kind == "scalar":
        dset = f.create_dataset(node.path, data=node.value)
    else:
        data = np.asarray(node.value)
        options = {"compression": "gzip", "compression_opts": GZIP_LEVEL} if node.compress and data.size else {}
        dset = f.create_dataset(node.path, data=data, **options)
    dset.attrs.update(node.attrs)


def _chunk_shape(shape: tuple[int, ...], itemsize: int, y_axis: int, band_rows: int) -> tuple[int, ...]:
    """HDF5 chunk: one row of a 3-D array (split along x to about 1 MiB), or one band of a map."""
    chunk = list(shape)
    if len(shape) == 2:
        chunk[y_axis] = max(1, min(band_rows, shape[y_axis]))
        return tuple(chunk)
    chunk[y_axis] = 1
    x_axis = y_axis + 1
    row_bytes = itemsize * int(np.prod([n for i, n in enumerate(shape) if i != y_axis], dtype=np.int64))
    if row_bytes > _CHUNK_TARGET and x_axis < len(shape) and shape[x_axis] > 1:
        per_x = row_bytes // shape[x_axis]
        chunk[x_axis] = max(1, _CHUNK_TARGET // max(1, per_x))
    return tuple(max(1, c) for c in chunk)


def encode_chunks(block: np.ndarray, y_axis: int, y0: int, chunk: tuple[int, ...], level: int) -> list[tuple[tuple[int, ...], bytes]]:
    """Compress the HDF5 chunks of one band of rows, as HDF5's gzip filter would store them.

    Parameters
    ----------
    block : array
        The band: rows ``y0 ..`` of the dataset along ``y_axis``, every other axis whole.
    y_axis : int
    y0 : int
        First row of the band in the dataset (a multiple of the chunk's rows).
    chunk : tuple of int
        HDF5 chunk shape.
    level : int
        zlib level.

    Returns
    -------
    list of (chunk offset, compressed bytes)
        Edge chunks are zero-padded to the full chunk shape, as HDF5 expects.
    """
    block = np.ascontiguousarray(block)
    out = []
    ranges = []
    for axis, (n, c) in enumerate(zip(block.shape, chunk, strict=True)):
        ranges.append([(start, min(start + c, n)) for start in range(0, n, c)])
    for index in np.ndindex(*[len(r) for r in ranges]):
        bounds = [ranges[a][i] for a, i in enumerate(index)]
        piece = block[tuple(slice(a, b) for a, b in bounds)]
        if piece.shape != tuple(chunk):
            padded = np.zeros(chunk, dtype=block.dtype)
            padded[tuple(slice(0, s) for s in piece.shape)] = piece
            piece = padded
        offset = tuple(a + (y0 if axis == y_axis else 0) for axis, (a, _) in enumerate(bounds))
        out.append((offset, zlib.compress(np.ascontiguousarray(piece).tobytes(), level)))
    return out


def _partial(block: np.ndarray, op: str) -> np.ndarray:
    """Per-band partial sum or maximum of (y, x, channel) spectra over pixels."""
    if op == "sum":
        dtype = np.float64 if np.issubdtype(block.dtype, np.floating) else np.int64
        return block.sum(axis=(0, 1), dtype=dtype)
    return block.max(axis=(0, 1)).astype(np.float64)


def _write_streamed(f: h5py.File, nodes: list[Node], reduced: list[Node]) -> None:
    """Stream band by band: every large array of the layout, and the per-band partials."""
    lead = max(nodes, key=lambda n: n.value.nbytes)
    y_chunks = lead.value.chunks[lead.dims.index("y")]
    band_rows = y_chunks[0]
    edges = np.cumsum((0,) + y_chunks)
    plans: list[tuple[Node, Any, int, tuple[int, ...] | None]] = []
    for node in nodes:
        y_axis = node.dims.index("y")
        value = node.value.rechunk({i: (y_chunks if i == y_axis else -1) for i in range(node.value.ndim)})
        compress = node.compress and value.size > 0
        chunk = _chunk_shape(value.shape, value.dtype.itemsize, y_axis, band_rows) if compress else None
        options = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "chunks": chunk} if compress else {}
        dset = f.create_dataset(node.path, shape=value.shape, dtype=value.dtype, **options)
        dset.attrs.update(node.attrs)
        plans.append((node, value.to_delayed(optimize_graph=False).reshape(-1), y_axis, chunk))
    sources = {node.path: blocks for node, blocks, _y_axis, _chunk in plans}
    totals: dict[str, np.ndarray | None] = {n.path: None for n in reduced}
    tasks = []
    for i in range(len(y_chunks)):
        items = []
        for node, blocks, y_axis, chunk in plans:
            if chunk is None:
                items.append(blocks[i])
            else:
                key = f"h5-encode-{dask.base.tokenize(blocks[i].key, chunk, y_axis)}"
                items.append(dask.delayed(encode_chunks, pure=True)(blocks[i], y_axis, int(edges[i]), chunk, GZIP_LEVEL, dask_key_name=key))
        for node in reduced:
            op, source = node.reduce
            block = sources[source][i]
            key = f"h5-{op}spec-{dask.base.tokenize(block.key, op)}"
            items.append(dask.delayed(_partial, pure=True)(block, op, dask_key_name=key))
        tasks.append(items)
    for i, results in enumerate(iter_computed(tasks)):
        for (node, _blocks, y_axis, chunk), result in zip(plans, results, strict=False):
            dset = f[node.path]
            if chunk is None:
                selection = [slice(None)] * dset.ndim
                selection[y_axis] = slice(int(edges[i]), int(edges[i + 1]))
                dset[tuple(selection)] = result
            else:
                for offset, payload in result:
                    dset.id.write_direct_chunk(offset, payload)
        for node, partial in zip(reduced, results[len(plans) :], strict=True):
            op = node.reduce[0]
            prev = totals[node.path]
            totals[node.path] = partial if prev is None else (prev + partial if op == "sum" else np.maximum(prev, partial))
    for node in reduced:
        value = totals[node.path]
        if value is None:
            value = np.zeros(node.value.shape, dtype=node.value.dtype)
        node.value = value
        _write_small(f, node)
