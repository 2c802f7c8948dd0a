"""Write a layout tree as a zarr store: the same groups and datasets as the HDF5 file.

Each group is written with xarray (zarr format 2, so every array carries xarray's
``_ARRAY_DIMENSIONS`` and ``xr.open_zarr(store, group="raw/channel00")`` reads it). All groups
are written by one dask computation: chunks are compressed and stored by the workers in parallel,
each task writing its own region, and shared inputs (the spectra of every detector, the sums) are
read once. New stores are built under a temporary name and renamed; a result group added to an
existing store is built aside and swapped in, leaving ``raw/`` untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections import defaultdict

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr

from xrfdask.io.atomic import atomic_output
from xrfdask.io.h5layout.tree import Layout, Node

__all__ = ["write_zarr"]

_CHUNK_TARGET = 4 * 2**20  # bytes per zarr chunk of a large array


def write_zarr(layout: Layout, store: str, *, overwrite: bool = False) -> str:
    """Write ``layout`` into the zarr store directory ``store``."""
    store = os.fspath(store)
    if layout.group == "raw" or not os.path.exists(store):
        with atomic_output(store, overwrite=overwrite, directory=True) as tmp:
            _write_groups(tmp, layout)
            _consolidate(tmp)
        return store
    _replace_group(layout, store, overwrite)
    return store


def _replace_group(layout: Layout, store: str, overwrite: bool) -> None:
    group = layout.group
    target = os.path.join(store, group)
    is_store = any(os.path.exists(os.path.join(store, m)) for m in (".zgroup", "zarr.json"))
    if not os.path.isdir(store) or not is_store:
        raise FileExistsError(f"{store}: exists and is not a zarr store")
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{store}: group '{group}' exists; pass overwrite=True to replace it")
    staging = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(store)), prefix=".tmp-", suffix=".zarr")
    try:
        _write_groups(staging, layout)
        tag = uuid.uuid4().hex[:8]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        old = f"{target}.old-{tag}"
        if os.path.exists(target):
            os.replace(target, old)
        os.replace(os.path.join(staging, group), target)
        _mark_groups(store, group)
        if os.path.exists(old):
            shutil.rmtree(old)
        # Group attributes above the written group (e.g. detlim/ for detlim/<cnc>).
        root = zarr.open_group(store, mode="r+")
        for gpath, attrs in layout.group_attrs.items():
            if gpath != group and not gpath.startswith(group + "/"):
                root.require_group(gpath).attrs.update(attrs)
        _consolidate(store)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _mark_groups(store: str, group: str) -> None:
    """Make every folder on the way to ``group`` a zarr group."""
    parts = group.split("/")
    for i in range(1, len(parts)):
        folder = os.path.join(store, *parts[:i])
        if not os.path.exists(os.path.join(folder, ".zgroup")):
            zarr.open_group(folder, mode="a", zarr_format=2)


def _consolidate(store: str) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(store)


def _write_groups(store: str, layout: Layout) -> None:
    by_group: dict[str, list[Node]] = defaultdict(list)
    for node in layout.nodes:
        by_group[node.path.rpartition("/")[0]].append(node)
    for gpath in layout.group_attrs:
        by_group.setdefault(gpath, [])
    values = {n.path: n.value for n in layout.nodes}
    pending = []
    # Parents first, so each group exists before its children are added.
    for gpath in sorted(by_group, key=lambda g: (g.count("/") if g else -1, g)):
        ds = xr.Dataset(attrs=dict(layout.group_attrs.get(gpath, {})))
        encoding = {}
        for node in by_group[gpath]:
            name = node.path.rpartition("/")[2]
            value = node.value
            if node.reduce is not None:
                op, source = node.reduce
                src = values[source]
                value = src.sum(axis=(0, 1), dtype=node.value.dtype) if op == "sum" else src.max(axis=(0, 1)).astype(np.float64)
            if node.kind in ("text", "names"):
                value = np.array(value if node.kind == "names" else str(value), dtype=str)
            ds[name] = xr.Variable(node.dims, value, attrs=dict(node.attrs))
            if isinstance(value, da.Array) and "y" in node.dims:
                y_axis = node.dims.index("y")
                band = value.chunks[y_axis][0]
                # Uniform bands along y, other axes whole: every band holds whole zarr chunks.
                ds[name] = ds[name].chunk({dim: (band if i == y_axis else -1) for i, dim in enumerate(node.dims)})
                encoding[name] = {"chunks": _zarr_chunks(value.shape, value.dtype.itemsize, y_axis, band)}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            pending.append(
                ds.to_zarr(
                    store, group=gpath or None, mode="a", zarr_format=2, consolidated=False,
                    compute=False, encoding=encoding,
                )
            )  # fmt: skip
    dask.compute(*pending)


def _zarr_chunks(shape: tuple[int, ...], itemsize: int, y_axis: int, band: int) -> tuple[int, ...]:
    """Zarr chunk: a number of rows dividing the dask band, about 4 MiB, other axes whole."""
    row_bytes = itemsize * int(np.prod([n for i, n in enumerate(shape) if i != y_axis], dtype=np.int64))
    rows = next((r for r in range(band, 0, -1) if band % r == 0 and r * row_bytes <= _CHUNK_TARGET), 1)
    return tuple(rows if i == y_axis else max(1, n) for i, n in enumerate(shape))
