"""Write a Dataset as it is to a zarr store (one group), in parallel by chunk, atomically."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import xarray as xr

from xrfdask.io.atomic import atomic_output

__all__ = ["dataset_to_zarr", "zarr_safe_attrs"]


def zarr_safe_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes that survive JSON: nested dicts and lists stay, other objects become strings."""
    return json.loads(json.dumps(attrs, default=_to_jsonable))


def _to_jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def dataset_to_zarr(ds: xr.Dataset, store: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Write a Dataset as it is (one group, xarray conventions) to a zarr store directory.

    For the uniform layout (``raw/channelXX/...``) use :func:`xrfdask.to_zarr`.

    Chunks are written by the dask workers in parallel (zarr chunks follow the dask chunks), into a
    temporary directory that replaces ``store`` only when complete.

    Parameters
    ----------
    ds : xarray.Dataset
    store : str or path-like
        Directory of the store (conventionally ``*.zarr``).
    overwrite : bool, default False
        Replace an existing store.

    Returns
    -------
    str
        The store path.
    """
    store = os.fspath(store)
    out = ds.copy()
    out.attrs = zarr_safe_attrs(ds.attrs)
    for name in out.variables:
        out[name].encoding = {}
        out[name].attrs = zarr_safe_attrs(out[name].attrs)
    with (
        atomic_output(store, overwrite=overwrite, directory=True) as tmp,
        warnings.catch_warnings(),
    ):
        # Consolidated metadata is how xarray opens stores fast; zarr 3 warns it is not in the v3
        # spec yet, but zarr and xarray read it.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        out.to_zarr(tmp, mode="w", consolidated=True)
    return store
