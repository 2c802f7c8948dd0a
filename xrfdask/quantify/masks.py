"""Masks of the pixels to quantify (spec ``xrf_proc.md`` section 6.3).

A mask is a boolean (y, x) map (a DataArray, a numpy or dask array), a k-means cluster id (an int,
or xrf_proc's ``"kmeans/CLR2"`` string: the id is the last path component minus its first three
characters), a list of cluster ids (their union), or a string naming a 2-D dataset of the sample
file (``"masks/roi"``). Cluster labels come from ``labels=`` or the file's ``kmeans/channelXX/ims``
(one map per detector). A mask of the wrong shape, or with values other than 0/1, is an error
(xrf_proc warns and ignores it, or, for non-binary masks, never notices: spec 12.17).
"""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError, FormatError
from xrfdask.io.h5layout.schema import channel_name

__all__ = ["resolve_mask", "cluster_id"]


def cluster_id(text: str) -> int:
    """xrf_proc's cluster id of ``"kmeans/CLR2"``: the last component minus 3 characters."""
    last = text.rstrip("/").split("/")[-1]
    try:
        return int(last[3:])
    except ValueError:
        raise ConfigError(f"mask {text!r}: expected a cluster like 'kmeans/CLR2'") from None


def _is_cluster(value: Any) -> bool:
    return (isinstance(value, int | np.integer) and not isinstance(value, bool)) or (
        isinstance(value, str) and "clr" in value.lower()
    )


def _labels_from_file(file: str, detectors: list) -> xr.DataArray:
    from xrfdask.io.convert import open_map

    try:
        km = open_map(file, group="kmeans")
    except (FormatError, KeyError, OSError) as exc:
        raise ConfigError(f"{file}: no k-means labels (kmeans/channelXX/ims) for the mask") from exc
    labels = km["labels"]
    stored = {channel_name(d): d for d in np.atleast_1d(labels["detector"].values).tolist()}
    picks = []
    for det in detectors:
        if channel_name(det) not in stored:
            raise ConfigError(f"{file}: no kmeans/{channel_name(det)}/ims for the mask")
        picks.append(stored[channel_name(det)])
    return labels.sel(detector=picks).assign_coords(detector=detectors)


def _dataset_from_file(file: str, path: str) -> da.Array:
    from xrfdask.quantify.references import _reader

    with _reader(file) as reader:
        if not reader.has(path) or reader.is_group(path):
            raise ConfigError(f"{file}: mask dataset '{path}' not found")
        return reader.lazy_banded(path, 0)


def _check(values: Any, shape: tuple[int, int], what: str) -> Any:
    if tuple(values.shape[:2]) != tuple(shape) or values.ndim not in (2, 3):
        raise ConfigError(
            f"mask {what} has shape {tuple(values.shape)}, the map is {shape[0]} x {shape[1]}"
        )
    return values


def resolve_mask(
    mask: Any,
    shape: tuple[int, int],
    detectors: list,
    *,
    file: str | os.PathLike | None = None,
    labels: Any = None,
) -> xr.DataArray | None:
    """The mask as a boolean DataArray on (y, x) or (y, x, detector); None for no mask.

    Raises
    ------
    ConfigError
        Wrong shape, values other than 0/1, a cluster id without labels, a dataset not found.
    """
    if mask is None:
        return None
    file = os.fspath(file) if file is not None else None
    ids = mask if isinstance(mask, list | tuple) and all(map(_is_cluster, mask)) else None
    if ids is None and _is_cluster(mask):
        ids = [mask]
    if ids is not None:
        ids = [cluster_id(v) if isinstance(v, str) else int(v) for v in ids]
        if labels is None:
            if file is None:
                raise ConfigError(
                    f"mask {mask!r} is a k-means cluster: pass labels= or the sample file (file=)"
                )
            lab = _labels_from_file(file, detectors)
        elif isinstance(labels, xr.DataArray):
            lab = labels
        else:
            lab = xr.DataArray(np.asarray(labels), dims=("y", "x"))
        _check(lab, shape, "labels")
        return lab.isin(ids).rename("mask")
    what = repr(mask) if isinstance(mask, str) else f"({type(mask).__name__})"
    if isinstance(mask, str):
        if file is None:
            raise ConfigError(f"mask {mask!r} names a dataset: pass the sample file (file=)")
        mask = _dataset_from_file(file, mask)
    if isinstance(mask, xr.DataArray):
        arr = mask
        if arr.ndim != 2 and "detector" not in arr.dims:
            raise ConfigError(f"mask {what} has dims {arr.dims}, expected (y, x)")
        if arr.ndim == 2 and set(arr.dims) != {"y", "x"}:
            arr = arr.rename(dict(zip(arr.dims, ("y", "x"), strict=True)))
        arr = arr.transpose("y", "x", ...)
    else:
        data = mask if isinstance(mask, da.Array) else np.asarray(mask)
        if data.ndim != 2:
            raise ConfigError(f"mask {what} has shape {tuple(data.shape)}, expected 2-D (y, x)")
        arr = xr.DataArray(data, dims=("y", "x"))
    _check(arr, shape, what)
    if arr.dtype != bool:
        if arr.dtype.kind not in "iuf":
            raise ConfigError(f"mask {what}: dtype {arr.dtype} is not boolean")
        if not isinstance(arr.data, da.Array):
            values = np.asarray(arr.values)
            if not np.isin(values, (0, 1)).all():
                raise ConfigError(f"mask {what} holds values other than 0 and 1")
        arr = arr != 0
    return arr.rename("mask")
