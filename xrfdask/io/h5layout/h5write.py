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

import dask
import dask.array as da
import h5py
import numpy as np

from xrfdask.chunks import h5_storage_chunk, split
from xrfdask.io.atomic import atomic_output
from xrfdask.io.h5layout.fast import STORAGE_ATTR
from xrfdask.io.h5layout.stores import open_h5_file
from xrfdask.io.h5layout.tree import Layout, Node
from xrfdask.runtime import iter_computed

__all__ = ["write_h5", "encode_chunks"]

GZIP_LEVEL = 4  # the layout's compression (spec xrf_proc.md 1.4)


def write_h5(layout: Layout, path: str, *, overwrite: bool = False) -> str:
    """Write ``layout`` to ``path`` (see module docstring for the safety rules)."""
    path = os.fspath(path)
    if layout.group == "raw" or not os.path.exists(path):
        if os.path.exists(path) and overwrite:
            _not_locked(path)  # replacing it under a writer would lose that writer's data
        with atomic_output(path, overwrite=overwrite) as tmp:
            with h5py.File(tmp, "w") as f:
                _write_nodes(f, layout)
        return path
    _replace_group(layout, path, overwrite)
    return path


def _not_locked(path: str) -> None:
    """Raise FileLockedError if another program has the HDF5 file open for writing."""
    from xrfdask.errors import FormatError

    try:
        with open_h5_file(path, "r"):
            pass
    except FormatError:
        pass  # not an HDF5 file: nothing can be writing it as one


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
    streamed = [
        n
        for n in layout.nodes
        if n.reduce is None and isinstance(n.value, da.Array) and "y" in n.dims
    ]
    reduced = [n for n in layout.nodes if n.reduce is not None]
    eager = [n for n in layout.nodes if n not in streamed and n not in reduced]
    lazy_small = [n for n in eager if isinstance(n.value, da.Array)]
    if lazy_small:
        for node, value in zip(
            lazy_small, dask.compute(*[n.value for n in lazy_small]), strict=True
        ):
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
        options = (
            {"compression": "gzip", "compression_opts": GZIP_LEVEL}
            if node.compress and data.size
            else {}
        )
        dset = f.create_dataset(node.path, data=data, **options)
    dset.attrs.update(node.attrs)


def encode_chunks(
    block: np.ndarray, offsets: tuple[int, ...], chunk: tuple[int, ...], level: int
) -> list[tuple[tuple[int, ...], bytes]]:
    """Compress the HDF5 chunks of one block, as HDF5's gzip filter would store them.

    Parameters
    ----------
    block : array
        Part of the dataset starting at ``offsets`` (each a multiple of the chunk shape).
    offsets : tuple of int
        Position of ``block[0, 0, ...]`` in the dataset.
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
    ranges = [
        [(start, min(start + c, n)) for start in range(0, n, c)]
        for n, c in zip(block.shape, chunk, strict=True)
    ]
    for index in np.ndindex(*[len(r) for r in ranges]):
        bounds = [ranges[a][i] for a, i in enumerate(index)]
        piece = block[tuple(slice(a, b) for a, b in bounds)]
        if piece.shape != tuple(chunk):
            padded = np.zeros(chunk, dtype=block.dtype)
            padded[tuple(slice(0, s) for s in piece.shape)] = piece
            piece = padded
        offset = tuple(o + a for o, (a, _) in zip(offsets, bounds, strict=True))
        out.append((offset, zlib.compress(np.ascontiguousarray(piece).tobytes(), level)))
    return out


def _partial(block: np.ndarray, op: str) -> np.ndarray:
    """Partial sum or maximum over the pixels of a (y, x, channel) block of spectra."""
    if op == "sum":
        dtype = np.float64 if np.issubdtype(block.dtype, np.floating) else np.int64
        return block.sum(axis=(0, 1), dtype=dtype)
    return block.max(axis=(0, 1)).astype(np.float64)


def _grid(nodes: list[Node]) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Uniform bands of rows (so HDF5 chunks of maps align with every band) and, when the
    spectra come in x-blocks (rows over the chunk budget), uniform x-blocks."""
    lead = max(nodes, key=lambda n: n.value.nbytes)
    y_axis = lead.dims.index("y")
    ny = lead.value.shape[y_axis]
    y_chunks = split(ny, max(lead.value.chunks[y_axis]))
    x_chunks = None
    if lead.dims[:2] == ("y", "x") and len(lead.value.chunks[1]) > 1:
        x_chunks = split(lead.value.shape[1], max(lead.value.chunks[1]))
    return y_chunks, x_chunks


def _write_streamed(f: h5py.File, nodes: list[Node], reduced: list[Node]) -> None:
    """Stream block by block: every large array of the layout, and the spectra's partials.

    Blocks are bands of rows, and x-blocks of them for spectra whose rows are over the budget:
    at most a few blocks are in memory, whatever the map size (also for one-row scans).
    """
    y_chunks, x_chunks = _grid(nodes)
    band = y_chunks[0]
    y_edges = np.cumsum((0,) + y_chunks)
    x_edges = np.cumsum((0,) + x_chunks) if x_chunks else np.array([0])
    nxb = len(x_chunks) if x_chunks else 1
    plans = []  # (node, blocks[i][j] or blocks[i][0], per_xblock, chunk)
    for node in nodes:
        y_axis = node.dims.index("y")
        per_xblock = x_chunks is not None and node.dims[:2] == ("y", "x") and node.value.ndim == 3
        rechunk = {i: -1 for i in range(node.value.ndim)}
        rechunk[y_axis] = y_chunks
        if per_xblock:
            rechunk[1] = x_chunks
        value = node.value.rechunk(rechunk)
        compress = node.compress and value.size > 0
        chunk = (
            h5_storage_chunk(
                value.shape, value.dtype.itemsize, y_axis, band, x_chunks[0] if per_xblock else None
            )
            if compress
            else None
        )
        options = (
            {"compression": "gzip", "compression_opts": GZIP_LEVEL, "chunks": chunk}
            if compress
            else {}
        )
        dset = f.create_dataset(node.path, shape=value.shape, dtype=value.dtype, **options)
        dset.attrs.update(node.attrs)
        blocks = value.to_delayed(optimize_graph=False)
        blocks = (
            blocks.reshape(len(y_chunks), -1)
            if y_axis == 0
            else np.moveaxis(blocks, y_axis, 0).reshape(len(y_chunks), -1)
        )
        plans.append((node, blocks, y_axis, per_xblock, chunk))
    sources = {node.path: (blocks, per_xblock) for node, blocks, _, per_xblock, _ in plans}
    encode = dask.delayed(encode_chunks, pure=True)
    partial = dask.delayed(_partial, pure=True)
    steps, tasks = [], []
    for i in range(len(y_chunks)):
        for j in range(nxb):
            items, where = [], []
            for node, blocks, y_axis, per_xblock, chunk in plans:
                if not per_xblock and j > 0:
                    continue  # maps and stacks: whole rows, written with the first x-block
                block = blocks[i, j if per_xblock else 0]
                offsets = [0] * node.value.ndim
                offsets[y_axis] = int(y_edges[i])
                if per_xblock:
                    offsets[1] = int(x_edges[j])
                if chunk is None:
                    items.append(block)
                else:
                    key = f"h5-encode-{dask.base.tokenize(block.key, chunk)}"
                    items.append(
                        encode(block, tuple(offsets), chunk, GZIP_LEVEL, dask_key_name=key)
                    )
                where.append((node, tuple(offsets), chunk))
            for node in reduced:
                op, source = node.reduce
                blocks, per_xblock = sources[source]
                if not per_xblock and j > 0:
                    continue
                block = blocks[i, j if per_xblock else 0]
                items.append(
                    partial(
                        block, op, dask_key_name=f"h5-{op}spec-{dask.base.tokenize(block.key, op)}"
                    )
                )
                where.append((node, None, None))
            tasks.append(items)
            steps.append(where)
    totals: dict[str, np.ndarray | None] = {n.path: None for n in reduced}
    for where, results in zip(steps, iter_computed(tasks), strict=True):
        for (node, offsets, chunk), result in zip(where, results, strict=True):
            if offsets is None:  # a partial sum or maximum
                op, prev = node.reduce[0], totals[node.path]
                totals[node.path] = (
                    result
                    if prev is None
                    else (prev + result if op == "sum" else np.maximum(prev, result))
                )
            elif chunk is None:
                f[node.path][
                    tuple(slice(o, o + n) for o, n in zip(offsets, result.shape, strict=True))
                ] = result
            else:
                dset = f[node.path]
                for offset, payload in result:
                    dset.id.write_direct_chunk(offset, payload)
    for node in reduced:
        value = totals[node.path]
        node.value = (
            value if value is not None else np.zeros(node.value.shape, dtype=node.value.dtype)
        )
        if node.reduce[0] == "sum" and node.reduce[1] in f:
            # Readers trust this sum only while the spectra keep the stored size they had here.
            node.attrs = {**node.attrs, STORAGE_ATTR: int(f[node.reduce[1]].id.get_storage_size())}
        _write_small(f, node)
