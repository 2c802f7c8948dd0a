"""xarray backend entry points: ``engine="geopixe"`` and ``engine="xrfh5"``.

The engines return lazily indexed variables (nothing is read until indexed) and declare the
preferred chunks, so ``xr.open_dataset(path, engine="geopixe", chunks={})`` gives the same bands of
rows as :func:`xrfdask.open_geopixe`. Those functions build the dask graph themselves, with task
names that say what they do (``geopixe-read-…``, ``h5-read-…``); prefer them for large maps.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from xrfdask.io.geopixe.index import GeoPixeIndex, build_index
from xrfdask.io.geopixe.reader import (
    BlockSpec,
    plan_chunks,
    raw_map_attrs,
    raw_map_coords,
    read_block,
)
from xrfdask.model import PIXEL_DIMS, RAW_DIMS, with_attrs

__all__ = ["GeoPixeBackendEntrypoint", "GeoPixeSpectraArray"]


class GeoPixeSpectraArray(BackendArray):
    """Lazily indexed (y, x, detector, channel) spectra of a ``.GeoPIXE`` file.

    An index reads the smallest byte range holding the requested rows and columns (records are in
    raster order) and decodes it. Thread-safe and picklable: it holds no open file, each read
    maps its own byte range.
    """

    def __init__(self, index: GeoPixeIndex):
        self._index = index
        self.shape = (index.nrows, index.xres, index.ndet, index.nchan)
        self.dtype = np.dtype(np.uint16)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._read
        )

    def _read(self, key: tuple) -> np.ndarray:
        y_idx, x_idx = (_as_positions(k, n) for k, n in zip(key[:2], self.shape[:2], strict=True))
        if y_idx.size == 0 or x_idx.size == 0:
            empty = np.zeros((y_idx.size, x_idx.size) + self.shape[2:], np.uint16)
            return _outer(empty, (slice(None), slice(None)) + tuple(key[2:]), empty.shape, 0, 0)
        y0, y1 = int(y_idx.min()), int(y_idx.max()) + 1
        x0, x1 = int(x_idx.min()), int(x_idx.max()) + 1
        spec = BlockSpec.of(self._index, y0, y1, x0, x1)
        return _outer(read_block(spec), key, self.shape, y0, x0)


def _as_positions(key: Any, size: int) -> np.ndarray:
    if isinstance(key, slice):
        return np.arange(size)[key]
    return np.atleast_1d(np.asarray(key, dtype=np.int64)) % size


def _outer(block: np.ndarray, key: tuple, shape: tuple, y0: int, x0: int) -> np.ndarray:
    """Apply an outer-indexing key to a block whose first element is map pixel (y0, x0)."""
    out = block
    shifts = (y0, x0, 0, 0)
    for axis in reversed(range(len(key))):  # right to left, so dropped axes do not shift the rest
        k = key[axis]
        shift = shifts[axis]
        if isinstance(k, slice):
            if shift:
                k = np.arange(shape[axis])[k]  # map positions; shifted below
            else:
                out = out[(slice(None),) * axis + (k,)]
                continue
        elif isinstance(k, int | np.integer):
            out = np.take(out, int(k) - shift, axis=axis)
            continue
        out = np.take(out, np.asarray(k) - shift, axis=axis)
    return out


class GeoPixeBackendEntrypoint(BackendEntrypoint):
    """Open IXRF/CSIRO ``.GeoPIXE`` maps as raw-map Datasets (see :func:`xrfdask.open_geopixe`)."""

    description = "IXRF/CSIRO .GeoPIXE XRF hyperspectral maps (xrfdask)"
    url = "https://github.com/xrfdask/xrfdask"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "cache_index")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            return os.path.splitext(os.fspath(filename_or_obj))[1].lower() == ".geopixe"
        except TypeError:
            return False

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        cache_index: bool = True,
    ) -> xr.Dataset:
        index = build_index(os.fspath(filename_or_obj), cache=cache_index)
        nrows = index.nrows
        y_chunks, _ = plan_chunks(index, "auto")
        preferred = {
            "y": y_chunks[0],
            "x": index.xres,
            "detector": index.ndet,
            "channel": index.nchan,
        }
        spectra = xr.Variable(
            RAW_DIMS,
            indexing.LazilyIndexedArray(GeoPixeSpectraArray(index)),
            attrs=with_attrs("spectra"),
            encoding={"preferred_chunks": preferred},
        )
        small = {k: preferred[k] for k in PIXEL_DIMS}
        data_vars = {
            "spectra": spectra,
            "deadtime": xr.Variable(
                PIXEL_DIMS,
                index.deadtime_map(nrows),
                with_attrs("deadtime"),
                encoding={"preferred_chunks": small},
            ),
            "present": xr.Variable(
                PIXEL_DIMS,
                index.present(nrows),
                with_attrs("present"),
                encoding={"preferred_chunks": small},
            ),
        }
        if drop_variables:
            drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables)
            data_vars = {k: v for k, v in data_vars.items() if k not in drop}
        return xr.Dataset(
            data_vars, coords=raw_map_coords(index, nrows), attrs=raw_map_attrs(index)
        )


class DaskBackendArray(BackendArray):
    """A lazily indexed view of a dask array: an index computes only the blocks it touches.

    Lets an engine reuse the graph a reader already builds (``h5-read`` tasks) without xarray
    wrapping dask arrays, which backends must not return (pydata/xarray#8810).
    """

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._read
        )

    def _read(self, key: tuple) -> np.ndarray:
        out = self.array
        for axis in reversed(range(len(key))):  # one axis at a time: dask indexes one list per call
            k = key[axis]
            if not (isinstance(k, slice) and k == slice(None)):
                out = out[(slice(None),) * axis + (k,)]
        return np.asarray(out.compute(scheduler="synchronous"))


def lazily_indexed(ds: xr.Dataset) -> xr.Dataset:
    """Replace the dask arrays of ``ds`` by lazily indexed ones, their chunks kept as preferred."""
    out = {}
    for name, var in ds.variables.items():
        data = var.data
        if hasattr(data, "dask") and name not in ds.indexes:
            preferred = {d: c[0] for d, c in zip(var.dims, data.chunks, strict=True)}
            out[name] = xr.Variable(
                var.dims, indexing.LazilyIndexedArray(DaskBackendArray(data)), var.attrs,
                encoding={"preferred_chunks": preferred},
            )  # fmt: skip
    return ds.assign(**{k: v for k, v in out.items() if k in ds.data_vars}).assign_coords(
        **{k: v for k, v in out.items() if k in ds.coords}
    )


class XrfH5BackendEntrypoint(BackendEntrypoint):
    """Open a group of xrf_proc's uniform-layout HDF5 files (see :func:`xrfdask.open_h5`)."""

    description = "xrf_proc uniform-layout HDF5 XRF maps and results (xrfdask)"
    url = "https://github.com/xrfdask/xrfdask"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "group")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if os.path.splitext(path)[1].lower() not in (".h5", ".hdf5"):
            return False
        try:
            import h5py

            with h5py.File(path, "r") as f:
                return "raw" in f and any(k.startswith("channel") for k in f["raw"])
        except (OSError, KeyError, TypeError):
            return False

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        group: str = "raw",
    ) -> xr.Dataset:
        from xrfdask.io.h5layout import open_h5

        ds = open_h5(os.fspath(filename_or_obj), group=group or "raw")
        if drop_variables:
            drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables)
            ds = ds.drop_vars([v for v in drop if v in ds.variables])
        return lazily_indexed(ds)
