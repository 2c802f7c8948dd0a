"""Storage back ends of the layout: the same tree in an HDF5 file or a zarr store.

Readers give :mod:`~xrfdask.io.h5layout.tree` a uniform view (keys, attributes, small arrays read
now, large arrays as lazy dask arrays). HDF5 reads happen in dask tasks (``h5-read-…``) that
open the file by path, read one hyperslab and close it, so nothing unpicklable enters the graph.
The spectra of all detectors are one array, a task per block of pixels (:class:`SpectraBlock`),
which the readers' fast paths (:mod:`~xrfdask.io.h5layout.fast`) recognise. Gzip-compressed
chunks are decompressed in the task, outside h5py's lock (:mod:`~xrfdask.io.h5layout.h5chunks`),
so tasks on several threads read one file in parallel.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import h5py
import numpy as np
import zarr
from dask.highlevelgraph import HighLevelGraph

from xrfdask.chunks import bands
from xrfdask.errors import FormatError, XrfdaskError
from xrfdask.io import fastpaths
from xrfdask.io.h5layout.h5chunks import DirectLayout, direct_layout, read_region, sum_region

__all__ = [
    "FileLockedError",
    "H5Reader",
    "ZarrReader",
    "open_h5_file",
    "decode_text",
    "SpectraBlock",
    "spectra_blocks",
]


class FileLockedError(XrfdaskError, OSError):
    """An HDF5 file is open for writing by another program."""


@contextlib.contextmanager
def open_h5_file(path: str, mode: str = "r") -> Iterator[h5py.File]:
    """``h5py.File`` with one-line errors for missing, locked or damaged files."""
    try:
        f = h5py.File(path, mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        text = str(exc).lower()
        if "unable to lock file" in text:
            raise FileLockedError(
                f"{path}: the file is open for writing by another program (HDF5 file lock); "
                "close it there and try again"
            ) from None
        if isinstance(exc, PermissionError):
            raise
        # A damaged file: a bad signature, superblock, object header, B-tree, heap, checksum...
        raise FormatError(f"{path}: not a readable HDF5 file ({first_line(exc)})") from None
    try:
        yield f
    finally:
        f.close()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_h5(f: h5py.File, path: str, dataset: str, selection: Any = ()) -> Any:
    """``f[dataset][selection]``: a dataset whose stored bytes are damaged (a chunk that does not
    inflate, a bad checksum, an unreadable link) is a one-line FormatError."""
    try:
        return f[dataset][selection]
    except (OSError, KeyError, RuntimeError) as exc:
        raise FormatError(
            f"{path}: dataset '{dataset}' cannot be read ({first_line(exc)})"
        ) from None


def decode_text(value: Any) -> Any:
    """HDF5/zarr strings come back as bytes, numpy bytes or str: make them str."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return (
                [decode_text(v) for v in value.reshape(-1)]
                if value.ndim
                else decode_text(value[()])
            )
        if value.dtype.kind == "U":
            return value.tolist() if value.ndim else str(value[()])
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class H5Block:
    """One hyperslab read by a task: small and picklable.

    ``layout`` (see :mod:`~xrfdask.io.h5layout.h5chunks`) is set when the dataset's chunks can
    be decompressed in the task, outside h5py's lock; None reads through h5py.
    """

    path: str
    dataset: str
    selection: tuple[slice, ...]
    layout: DirectLayout | None = None


def read_h5_block(block: H5Block) -> np.ndarray:
    """Open the file, read one hyperslab, close."""
    if block.layout is not None:
        out = np.empty(tuple(s.stop - s.start for s in block.selection), dtype=block.layout.dtype)
        read_region(block.path, block.dataset, block.selection, block.layout, out)
        return out
    with open_h5_file(block.path) as f:
        return read_h5(f, block.path, block.dataset, block.selection)


@dataclass(frozen=True)
class SpectraBlock:
    """The spectra of a block of pixels, every detector: what one ``h5-read`` task reads.

    ``datasets`` holds one (rows, columns, channels) dataset per detector (``flat``: stored
    without the row axis, a 1-D scan); ``rows`` and ``cols`` are [start, stop) in the map.
    """

    path: str
    kind: str  # "h5" or "zarr"
    datasets: tuple[str, ...]
    layouts: tuple[DirectLayout | None, ...]
    flat: tuple[bool, ...]
    rows: tuple[int, int]
    cols: tuple[int, int]
    nchan: int
    dtype: str
    stamp: Any = None  # zarr: the store's modification time (reopen a rewritten store)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (
            self.rows[1] - self.rows[0],
            self.cols[1] - self.cols[0],
            len(self.datasets),
            self.nchan,
        )

    def selection(self, d: int, lo: int = 0, hi: int | None = None) -> tuple[slice, ...]:
        """Detector ``d``'s selection in its dataset, channels ``lo .. hi-1``."""
        channels = slice(lo, self.nchan if hi is None else hi)
        cols = slice(*self.cols)
        return (cols, channels) if self.flat[d] else (slice(*self.rows), cols, channels)


def read_spectra(block: SpectraBlock) -> np.ndarray:
    """The (rows, columns, detector, channel) spectra of one block."""
    out = np.empty(block.shape, dtype=block.dtype)
    fill_spectra(block, [out[:, :, d, :] for d in range(len(block.datasets))])
    return out


def read_spectra_channels(
    block: SpectraBlock, lo: int, hi: int, dtype: Any = np.float32
) -> np.ndarray:
    """Channels ``lo .. hi-1`` of one block as (detector, pixel, channel) in ``dtype``.

    What a fit consumes; only the stored chunks covering those channels are decompressed.
    """
    rows, cols, ndet, _ = block.shape
    out = np.empty((ndet, rows, cols, hi - lo), dtype=dtype)
    fill_spectra(block, list(out), lo, hi)
    return out.reshape(ndet, rows * cols, hi - lo)


def fill_spectra(
    block: SpectraBlock, outs: list[np.ndarray], lo: int = 0, hi: int | None = None
) -> None:
    """Read each detector's channels ``lo .. hi-1`` into its (rows, cols, channels) ``outs[d]``."""
    for d, (dataset, layout) in enumerate(zip(block.datasets, block.layouts, strict=True)):
        sel = block.selection(d, lo, hi)
        out = outs[d][0] if block.flat[d] else outs[d]
        if block.kind == "zarr":
            out[...] = _zarr_array(block.path, dataset, block.stamp)[sel]
        elif layout is not None:
            read_region(block.path, dataset, sel, layout, out)
        else:
            with open_h5_file(block.path) as f:
                out[...] = read_h5(f, block.path, dataset, sel)


def sum_spectra(blocks: list[SpectraBlock]) -> np.ndarray:
    """The (detector, channel) float64 sum of the spectra of ``blocks`` (of one map)."""
    first = blocks[0]
    out = np.zeros((len(first.datasets), first.nchan))
    for block in blocks:
        for d, (dataset, layout) in enumerate(zip(block.datasets, block.layouts, strict=True)):
            sel = block.selection(d)
            if block.kind == "h5" and layout is not None:
                sum_region(block.path, dataset, sel, layout, out[d])
                continue
            if block.kind == "zarr":
                data = _zarr_array(block.path, dataset, block.stamp)[sel]
            else:
                with open_h5_file(block.path) as f:
                    data = read_h5(f, block.path, dataset, sel)
            out[d] += data.sum(axis=tuple(range(data.ndim - 1)), dtype=np.float64)
    return out


@functools.lru_cache(maxsize=64)
def _zarr_array(store: str, path: str, stamp: Any):
    """An opened zarr array (cached per process: opening reads its metadata)."""
    return zarr.open_array(os.path.join(store, path), mode="r")


class H5Reader:
    """Read access to a layout in an HDF5 file (keep it open only while building the Dataset)."""

    kind = "h5"

    def __init__(self, path: str | os.PathLike):
        # Absolute: tasks reopen the file by path, on workers whose working folder may differ.
        self.path = os.path.abspath(os.fspath(path))
        self._stack = contextlib.ExitStack()
        self._f = self._stack.enter_context(open_h5_file(self.path))
        st = os.stat(self.path)
        self._token = (self.path, st.st_mtime_ns, st.st_size, st.st_ino)
        self._nodes: dict[str, Any] = {}  # lookups by path: opening asks for most nodes often

    def close(self) -> None:
        self._stack.close()
        self._nodes.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def has(self, path: str) -> bool:
        return self._get(path) is not None

    def is_group(self, path: str) -> bool:
        return isinstance(self._get(path), h5py.Group)

    def _get(self, path: str) -> Any:
        """The node at ``path``, or None: a dangling or external link on the way is missing
        (h5py raises RuntimeError or KeyError for those instead of answering)."""
        if path not in self._nodes:
            try:
                self._nodes[path] = self._f.get(path)
            except (KeyError, RuntimeError, OSError):
                self._nodes[path] = None
        return self._nodes[path]

    def keys(self, group: str) -> list[str]:
        node = self._f[group] if group else self._f
        try:
            return list(node.keys())
        except (RuntimeError, OSError, KeyError) as exc:  # a damaged link table
            raise FormatError(
                f"{self.path}: the members of '{group}' cannot be listed ({first_line(exc)})"
            ) from None

    def shape(self, path: str) -> tuple[int, ...]:
        return tuple(self._dataset(path).shape)

    def dtype(self, path: str) -> np.dtype:
        return self._dataset(path).dtype

    def stored_chunks(self, path: str) -> tuple[int, ...] | None:
        """The dataset's own HDF5 chunk shape (None if contiguous)."""
        return self._dataset(path).chunks

    def attrs(self, path: str = "/") -> dict[str, Any]:
        try:
            node = self._get(path) if path not in ("", "/") else self._f
            node = self._f[path] if node is None else node  # missing: h5py's own error
            return {k: decode_text(v) for k, v in node.attrs.items()}
        except (OSError, KeyError, RuntimeError) as exc:
            raise FormatError(
                f"{self.path}: attributes of '{path}' cannot be read ({first_line(exc)})"
            ) from None

    def read(self, path: str) -> Any:
        """A small dataset, now: arrays as numpy, strings decoded."""
        self._dataset(path)
        return decode_text(read_h5(self._f, self.path, path))

    def lazy(self, path: str, chunks: tuple[tuple[int, ...], ...]) -> da.Array:
        """A large dataset as a dask array of ``h5-read`` tasks, one hyperslab per chunk."""
        dset = self._dataset(path)
        layout = direct_layout(dset, self._token)
        name = f"h5-read-{dask.base.tokenize(self._token, path, chunks)}"
        edges = [np.cumsum((0,) + c) for c in chunks]
        dsk = {}
        for index in np.ndindex(*[len(c) for c in chunks]):
            selection = tuple(
                slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, index, strict=True)
            )
            dsk[(name, *index)] = (read_h5_block, H5Block(self.path, path, selection, layout))
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
        meta = np.empty((0,) * len(chunks), dtype=dset.dtype)
        return da.Array(graph, name, chunks, meta=meta)

    def lazy_banded(self, path: str, band_axis: int = 0, budget=None) -> da.Array:
        """:meth:`lazy` in bands along ``band_axis`` of about ``budget`` (see xrfdask.chunks)."""
        chunks = bands(
            self.shape(path), self.dtype(path).itemsize, band_axis, self.stored_chunks(path), budget
        )
        return self.lazy(path, chunks)

    def lazy_spectra(
        self, paths: list[str], y_chunks: tuple[int, ...], x_chunks: tuple[int, ...]
    ) -> da.Array:
        """Every detector's spectra as one (y, x, detector, channel) array of ``h5-read`` tasks.

        ``paths`` are (rows, columns, channels) datasets of equal shape, or (columns, channels)
        for a 1-D scan. Each task reads one block of pixels of every detector.
        """
        dsets = [self._dataset(p) for p in paths]
        layouts = tuple(direct_layout(d, self._token) for d in dsets)
        name = f"h5-read-{dask.base.tokenize(self._token, 'spectra', paths, y_chunks, x_chunks)}"
        return _spectra_array(
            name, self.path, "h5", paths, dsets, layouts, y_chunks, x_chunks, None
        )

    def _dataset(self, path: str) -> h5py.Dataset:
        node = self._get(path)
        if not isinstance(node, h5py.Dataset):
            what = "is a group" if node is not None else "is missing"
            raise FormatError(f"{self.path}: dataset '{path}' {what}")
        try:
            _ = node.dtype  # h5py maps the stored type here: a damaged one raises
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            raise FormatError(
                f"{self.path}: dataset '{path}' has a data type numpy cannot hold "
                f"({first_line(exc)})"
            ) from None
        return node


_GROUP_NOT_FOUND = zarr.errors.GroupNotFoundError if hasattr(zarr, "errors") else OSError


class ZarrReader:
    """Read access to a layout in a zarr store (any zarr format)."""

    kind = "zarr"

    def __init__(self, store: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(store))
        try:
            self._g = zarr.open_group(self.path, mode="r")
        except (FileNotFoundError, _GROUP_NOT_FOUND):
            if not os.path.exists(self.path):
                raise FileNotFoundError(f"{self.path}: no such zarr store") from None
            raise FormatError(f"{self.path}: not a zarr store") from None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def _node(self, path: str):
        try:
            return self._g[path] if path not in ("", "/") else self._g
        except KeyError:
            return None

    def has(self, path: str) -> bool:
        return self._node(path) is not None

    def is_group(self, path: str) -> bool:
        return isinstance(self._node(path), zarr.Group)

    def keys(self, group: str) -> list[str]:
        node = self._node(group)
        return sorted(node.keys()) if isinstance(node, zarr.Group) else []

    def shape(self, path: str) -> tuple[int, ...]:
        return tuple(self._array(path).shape)

    def dtype(self, path: str) -> np.dtype:
        return self._array(path).dtype

    def stored_chunks(self, path: str) -> tuple[int, ...] | None:
        return tuple(self._array(path).chunks)

    def attrs(self, path: str = "/") -> dict[str, Any]:
        node = self._node(path)
        return {k: v for k, v in dict(node.attrs).items() if k != "_ARRAY_DIMENSIONS"}

    def read(self, path: str) -> Any:
        return decode_text(np.asarray(self._array(path)[...]))

    def lazy(self, path: str, chunks: tuple[tuple[int, ...], ...]) -> da.Array:
        """A large array as a dask array (its own zarr chunks, regrouped to ``chunks``)."""
        self._array(path)
        stamp = _mtime(os.path.join(self.path, path))  # a rewritten store gives new task names
        name = f"zarr-read-{dask.base.tokenize(self.path, path, chunks, stamp)}"
        return da.from_zarr(self.path, component=path, chunks=chunks, name=name)

    def lazy_banded(self, path: str, band_axis: int = 0, budget=None) -> da.Array:
        """:meth:`lazy` in bands along ``band_axis`` of about ``budget`` (see xrfdask.chunks)."""
        chunks = bands(
            self.shape(path), self.dtype(path).itemsize, band_axis, self.stored_chunks(path), budget
        )
        return self.lazy(path, chunks)

    def lazy_spectra(
        self, paths: list[str], y_chunks: tuple[int, ...], x_chunks: tuple[int, ...]
    ) -> da.Array:
        """Every detector's spectra as one (y, x, detector, channel) array of zarr-read tasks."""
        arrays = [self._array(p) for p in paths]
        stamp = tuple(
            _mtime(os.path.join(self.path, p)) for p in paths
        )  # a rewritten store: new names
        token = dask.base.tokenize(self.path, "spectra", paths, y_chunks, x_chunks, stamp)
        name = f"zarr-read-{token}"
        return _spectra_array(
            name, self.path, "zarr", paths, arrays, (None,) * len(paths), y_chunks, x_chunks, stamp
        )

    def _array(self, path: str):
        node = self._node(path)
        if not isinstance(node, zarr.Array):
            what = "is a group" if node is not None else "is missing"
            raise FormatError(f"{self.path}: array '{path}' {what}")
        return node


def _spectra_array(name, path, kind, paths, arrays, layouts, y_chunks, x_chunks, stamp) -> da.Array:
    """The dask array of :class:`SpectraBlock` reads, one task per block of pixels."""
    nchan = int(arrays[0].shape[-1])
    dtype = np.result_type(*[a.dtype for a in arrays])
    flat = tuple(len(a.shape) == 2 for a in arrays)
    y_edges, x_edges = np.cumsum((0,) + tuple(y_chunks)), np.cumsum((0,) + tuple(x_chunks))
    dsk = {}
    for i in range(len(y_chunks)):
        for j in range(len(x_chunks)):
            rows, cols = (
                (int(y_edges[i]), int(y_edges[i + 1])),
                (int(x_edges[j]), int(x_edges[j + 1])),
            )
            block = SpectraBlock(
                path, kind, tuple(paths), layouts, flat, rows, cols, nchan, dtype.str, stamp
            )
            dsk[(name, i, j, 0, 0)] = (read_spectra, block)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks = (tuple(y_chunks), tuple(x_chunks), (len(paths),), (nchan,))
    return da.Array(graph, name, chunks, meta=np.empty((0, 0, 0, 0), dtype=dtype))


def spectra_blocks(data: Any) -> dict[tuple[int, int], SpectraBlock] | None:
    """The :class:`SpectraBlock` of every block of a reader's spectra array, by (row, column) block.

    None unless ``data`` is exactly :meth:`H5Reader.lazy_spectra`'s (or the zarr reader's) array,
    not sliced or transformed.
    """
    return fastpaths.block_arguments(data, ("h5-read-", "zarr-read-"), SpectraBlock)


def _mtime(path: str) -> int:
    for meta in (".zarray", "zarr.json"):
        try:
            return os.stat(os.path.join(path, meta)).st_mtime_ns
        except OSError:
            continue
    return 0


def attrs_json(attrs: dict[str, Any]) -> str:
    """Dataset attributes as one JSON string (what HDF5 attributes cannot hold directly)."""
    return json.dumps(attrs, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
