"""Stream a dask array into a ``.npy`` file without holding it in memory."""

from __future__ import annotations

import os

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.io.atomic import atomic_output
from xrfdask.runtime import iter_computed

__all__ = ["to_npy"]


def to_npy(
    array: xr.DataArray | da.Array, path: str | os.PathLike, *, overwrite: bool = False
) -> str:
    """Write an array to ``path`` in NumPy's ``.npy`` format, block by block.

    Blocks are computed a few at a time (see :func:`xrfdask.runtime.iter_computed`) and written at
    their offsets, so memory stays bounded by chunk size. The file appears under its final name
    only when complete; ``numpy.load(path, mmap_mode="r")`` reads it back.

    Parameters
    ----------
    array : xarray.DataArray or dask.array.Array
        C-ordered output; a DataArray is written in its own dimension order.
    path : str or path-like
    overwrite : bool, default False

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    data = array.data if isinstance(array, xr.DataArray) else array
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data))
    # One task per band along the first axis, all other axes whole: each band is contiguous.
    data = data.rechunk({i: -1 for i in range(1, data.ndim)})
    header = {
        "descr": np.lib.format.dtype_to_descr(data.dtype),
        "fortran_order": False,
        "shape": data.shape,
    }
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        expected = f.tell() + data.nbytes
        for block in iter_computed(list(data.to_delayed(optimize_graph=False).ravel())):
            f.write(np.ascontiguousarray(block, dtype=data.dtype).data)
        if f.tell() != expected:
            raise RuntimeError(f"{path}: wrote {f.tell()} bytes, expected {expected}")
    return path
