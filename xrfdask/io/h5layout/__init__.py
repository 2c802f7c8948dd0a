"""xrf_proc's uniform layout (``raw/``, ``fit/``, ``norm/``, ``quant/``, ...) in HDF5 and zarr.

Maps are read lazily (spectra stay on disk until computed) and written by streaming: HDF5 by one
writer process fed by the workers, zarr in parallel by the workers themselves.
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from xrfdask.deadtime_correction import corrected_fit
from xrfdask.io.h5layout import fast as _fast  # noqa: F401  (registers the readers' fast paths)
from xrfdask.io.h5layout.h5write import write_h5
from xrfdask.io.h5layout.schema import RESULT_GROUPS
from xrfdask.io.h5layout.stores import FileLockedError, H5Reader, ZarrReader
from xrfdask.io.h5layout.tree import group_of, raw_layout, read_raw, read_result, result_layout
from xrfdask.io.h5layout.zarrwrite import write_zarr
from xrfdask.model import check_not_empty

__all__ = ["open_h5", "to_h5", "open_zarr", "to_zarr", "FileLockedError", "GROUPS"]

#: Groups of the layout that xrfdask reads and writes.
GROUPS = ("raw", *RESULT_GROUPS)


def _open(reader, group: str, chunks: Any) -> xr.Dataset:
    with reader:
        if group.strip("/") == "raw":
            return read_raw(reader, chunks=chunks)
        return read_result(reader, group.strip("/"), chunks=chunks)


def open_h5(path: str | os.PathLike, group: str = "raw", *, chunks: Any = "auto") -> xr.Dataset:
    """Open a group of a uniform-layout HDF5 file as a Dataset.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file (xrf_proc's converters' output, or :func:`to_h5`'s).
    group : str, default "raw"
        ``"raw"``: the raw map (``spectra`` (y, x, detector, channel) as stored, ``icr``,
        ``ocr``, ``sumspec``, ``maxspec`` per detector, ``I0``, ``I1``, ``acquisition_time``,
        ``mot1``, ``mot2`` where present). ``"fit"``, ``"norm"``, ``"quant"``, ``"rel_dif"``,
        ``"kmeans"``, ``"PCA"``, ``"tomo"``, ``"detlim/<cnc>"``, ``"elyield/<cnc>"``: stored results
        (``peak_area`` (y, x, detector, line), ``sum_area``, ...; line names decoded).
    chunks : "auto" or a byte size, default "auto"
        Target size of each lazy block. Blocks are whole rows in multiples of the file's own
        chunks, split along ``x`` only when a single row exceeds it. ``"auto"`` uses the
        ``xrfdask.chunk-size`` dask config value (by default 16 MiB on threads, 64 MiB on a
        distributed cluster).

    Returns
    -------
    xarray.Dataset
        Lazy: large arrays are dask arrays whose tasks (``h5-read-…``) open the file by path.
        Gzip chunks (with or without shuffle) are decompressed in the tasks, outside h5py's
        lock, so several threads read one file in parallel; other layouts are read by h5py.
        :func:`xrfdask.fit` takes the stored ``sumspec`` of ``spectra`` as read (after cheap
        checks), so a fit reads the spectra once.

    Raises
    ------
    FormatError
        A missing or misshapen dataset, or detectors that do not match; the message names the
        file and the dataset path.
    FileLockedError
        The file is open for writing in another program.
    """
    return _open(H5Reader(path), group, chunks)


def open_zarr(store: str | os.PathLike, group: str = "raw", *, chunks: Any = "auto") -> xr.Dataset:
    """Open a group of a uniform-layout zarr store (see :func:`open_h5`)."""
    return _open(ZarrReader(store), group, chunks)


def _layout(obj: xr.Dataset | xr.DataArray, group: str | None, target: str):
    ds = obj.to_dataset() if isinstance(obj, xr.DataArray) else obj
    check_not_empty(ds, target)
    group = (group or group_of(ds)).strip("/")
    if group == "raw":
        if "spectra" not in ds:
            raise ValueError("group='raw' needs a raw map (a 'spectra' variable)")
        return raw_layout(ds)
    if "spectra" in ds and "raw" not in group:
        raise ValueError(f"a raw map goes to group 'raw', not {group!r}")
    if group.split("/")[0] == "fit":
        # fit/ holds dead-time-corrected areas, as xrf_proc's scripts and norm read it.
        ds = corrected_fit(ds)
    return result_layout(ds, group)


def to_h5(
    obj: xr.Dataset, path: str | os.PathLike, group: str | None = None, *, overwrite: bool = False
) -> str:
    """Write a raw map or a result Dataset into a uniform-layout HDF5 file.

    Parameters
    ----------
    obj : xarray.Dataset
        A raw map (from any source: ``.GeoPIXE``, converters, :func:`open_h5`) or a result
        (``peak_area`` for ``fit``, ``normalised`` for ``norm``...).
    path : str or path-like
    group : str, optional
        Layout group; by default inferred from the variables.
    overwrite : bool, default False
        A raw map replaces an existing file only with ``overwrite=True``. A result group is added
        to an existing file; replacing an existing group needs ``overwrite=True``. ``raw/`` of an
        existing file is never modified by a result.

    Returns
    -------
    str
        The path written.

    Notes
    -----
    Axis orders, names and compression follow xrf_proc (spectra rows x columns x channels, images
    lines x rows x columns, names as utf-8 bytes, gzip level 4). Spectra are streamed from the
    graph to this process band by band, compressed by the workers; ``sumspec``/``maxspec`` are
    reduced in the same pass. New files appear only when complete (temporary name, then rename).

    Replacing a result group unlinks its old datasets, but HDF5 does not shrink a file (nor, by
    default, remember the freed space once it is closed): ``h5repack in.h5 out.h5`` reclaims it.
    """
    if pair := _pair_groups(obj, group):
        return _write_pair(obj, os.fspath(path), overwrite, write_h5, pair)
    return write_h5(_layout(obj, group, os.fspath(path)), os.fspath(path), overwrite=overwrite)


def to_zarr(
    obj: xr.Dataset, store: str | os.PathLike, group: str | None = None, *, overwrite: bool = False
) -> str:
    """Write a raw map or a result Dataset as the same layout in a zarr store (see :func:`to_h5`).

    Workers write the chunks in parallel; ``xr.open_zarr(store, group="raw/channel00")`` reads any
    group directly and :func:`open_zarr` returns the same Datasets as :func:`open_h5`.
    """
    if pair := _pair_groups(obj, group):
        return _write_pair(obj, os.fspath(store), overwrite, write_zarr, pair)
    return write_zarr(_layout(obj, group, os.fspath(store)), os.fspath(store), overwrite=overwrite)


def _pair_groups(obj, group: str | None) -> tuple[str, str] | None:
    """Results that fill two groups: detection limits (``detlim/<cnc>`` and ``elyield/<cnc>``),
    a PCA-based classification (``kmeans/`` and ``PCA/``)."""
    if group is not None or not isinstance(obj, xr.Dataset):
        return None
    if "detection_limit_1s" in obj and "elemental_yield" in obj:
        return ("detlim", "elyield")
    if "labels" in obj and "scores" in obj:
        return ("kmeans", "PCA")
    return None


def _write_pair(ds: xr.Dataset, path: str, overwrite: bool, write, groups) -> str:
    """Write both groups; existing groups are refused before either is written (without
    ``overwrite``), so a refusal leaves the file as it was."""
    layouts = [_layout(ds, g, path) for g in groups]
    if not overwrite and os.path.exists(path):
        for layout in layouts:
            if _has_group(path, layout.group):
                raise FileExistsError(
                    f"{path}: group '{layout.group}' exists; pass overwrite=True to replace it"
                )
    for layout in layouts:
        write(layout, path, overwrite=overwrite)
    return path


def _has_group(path: str, group: str) -> bool:
    if os.path.isdir(path):
        return os.path.isdir(os.path.join(path, group))
    from xrfdask.io.h5layout.stores import open_h5_file

    with open_h5_file(path, "r") as f:
        return group in f
