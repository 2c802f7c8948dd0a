"""Any supported map by its extension: open it, write it, convert it to another format.

``.GeoPIXE`` (raw maps only), the uniform layout in HDF5 (``.h5``, ``.hdf5``) and in zarr
(``.zarr``). The functions behind ``xrfdask convert`` and the CLI's other file arguments.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

import xarray as xr

from xrfdask.errors import XrfdaskError

__all__ = ["FORMATS", "UnsupportedFormatError", "convert", "file_format", "open_map", "write_map"]

log = logging.getLogger(__name__)

Format = Literal["geopixe", "h5", "zarr"]

#: File extensions (lower case) and the format each one means.
FORMATS: dict[str, Format] = {".geopixe": "geopixe", ".h5": "h5", ".hdf5": "h5", ".zarr": "zarr"}


class UnsupportedFormatError(XrfdaskError, ValueError):
    """A path whose format, or a group its format cannot hold (found before anything is written).

    The caller chose the wrong file or group, rather than a file being damaged: the CLI reports it
    as a usage error (exit status 2).
    """


def file_format(path: str | os.PathLike) -> Format:
    """The format of a path from its extension, case-insensitive.

    Parameters
    ----------
    path : str or path-like
        A file or a zarr store (a trailing ``/`` is allowed). Nothing is opened.

    Returns
    -------
    {'geopixe', 'h5', 'zarr'}

    Raises
    ------
    UnsupportedFormatError
        For any other extension.
    """
    path = os.fspath(path)
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix not in FORMATS:
        raise UnsupportedFormatError(
            f"{path}: unknown format {suffix or '(no extension)'}; use .GeoPIXE, .h5 or .zarr"
        )
    return FORMATS[suffix]


def open_map(
    path: str | os.PathLike, *, group: str | None = None, chunks: Any = "auto"
) -> xr.Dataset:
    """Open a group of a ``.GeoPIXE``, ``.h5`` or ``.zarr`` path lazily, format from the extension.

    Parameters
    ----------
    path : str or path-like
    group : str, optional
        The layout group (``"raw"``, ``"fit"``, ...); default ``"raw"``, the raw map. A
        ``.GeoPIXE`` file holds the raw map only.
    chunks : optional
        Passed to :func:`~xrfdask.open_geopixe`, :func:`~xrfdask.open_h5` or
        :func:`~xrfdask.open_zarr`.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    UnsupportedFormatError
        For an unknown extension, or a group other than ``"raw"`` of a ``.GeoPIXE`` file.
    """
    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.io.h5layout import open_h5, open_zarr

    path = os.fspath(path)
    kind = file_format(path)
    if kind == "geopixe":
        if group not in (None, "raw"):
            raise UnsupportedFormatError(
                f"{path}: a .GeoPIXE file holds a raw map only, not a {group!r} group"
            )
        return open_geopixe(path, chunks=chunks)
    opener = open_h5 if kind == "h5" else open_zarr
    return opener(path, group=group or "raw", chunks=chunks)


def write_map(
    ds: xr.Dataset, target: str | os.PathLike, *, group: str | None = None, overwrite: bool = False
) -> str:
    """Write a raw map or a result to ``target``, format from the extension.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map (with ``spectra``), or a result for ``.h5``/``.zarr``.
    target : str or path-like
    group : str, optional
        The layout group of ``.h5``/``.zarr`` output (see :func:`~xrfdask.to_h5`); ignored for
        ``.GeoPIXE``, which holds raw maps only.
    overwrite : bool, default False
        Replace an existing file (``.GeoPIXE``) or group (``.h5``/``.zarr``).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    UnsupportedFormatError
        For an unknown extension, or a ``.GeoPIXE`` target for a dataset without ``spectra``.
    """
    from xrfdask.io.geopixe.writer import to_geopixe
    from xrfdask.io.h5layout import to_h5, to_zarr

    target = os.fspath(target)
    kind = file_format(target)
    if kind == "geopixe":
        if "spectra" not in ds:
            raise UnsupportedFormatError(
                f"{target}: a .GeoPIXE file holds raw maps, not the '{group}' group"
            )
        return to_geopixe(ds, target, overwrite=overwrite)
    writer = to_h5 if kind == "h5" else to_zarr
    return writer(ds, target, group=group, overwrite=overwrite)


def convert(
    source: str | os.PathLike | xr.Dataset,
    target: str | os.PathLike,
    *,
    group: str | None = None,
    overwrite: bool = False,
    chunks: Any = "auto",
) -> str:
    """Convert a map to ``target``'s format: the function behind ``xrfdask convert``.

    Parameters
    ----------
    source : str, path-like or xarray.Dataset
        A ``.GeoPIXE``, ``.h5`` or ``.zarr`` path (opened with :func:`open_map`), or a Dataset
        (a raw map from :func:`~xrfdask.convert_id15`, for example).
    target : str or path-like
        The output, format from its extension.
    group : str, optional
        The group to copy between ``.h5``/``.zarr`` files; default the raw map.
    overwrite : bool, default False
    chunks : optional
        Dask chunks of the source, when it is a path.

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> from xrfdask.io.convert import convert
    >>> convert("map.GeoPIXE", "map.zarr")                  # doctest: +SKIP
    'map.zarr'
    >>> convert("map.h5", "map.zarr", group="fit")          # doctest: +SKIP
    'map.zarr'
    """
    if isinstance(source, str | os.PathLike):
        log.info("converting %s -> %s", os.fspath(source), os.fspath(target))
        ds = open_map(source, group=group, chunks=chunks)
    else:
        ds = source
    return write_map(ds, target, group=group, overwrite=overwrite)
