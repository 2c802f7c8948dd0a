"""Element maps and class spectra for other programs: TIFF images and CSV tables.

* :func:`to_tiff`: one single-page TIFF per line (and per detector), for ImageJ/Fiji, QGIS, ...
* :func:`to_csv`: xrf_proc's ``Xmod.XProcH5toCSV`` table (spec ``xrf_proc.md`` section 11):
  semicolon separated, ``FileID;RowID;<lines by Z>;Compt;Rayl``, one row per pixel.
* :func:`class_spectra_to_csv`: a classification's class spectra (or class means of element maps).
* :func:`open_result`: a result group of a file, with the raw map's motors and energy axis.

The maps are computed band of rows by band of rows (all lines of a band in one task, so a lazy
fit is computed once, not once per line) and streamed into the files; every file is written
under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError
from xrfdask.io.atomic import atomic_output
from xrfdask.model import ELEMENT_GROUPS, ELEMENT_VARIABLES

__all__ = ["MAIN_VARIABLES", "class_spectra_to_csv", "open_result", "to_csv", "to_tiff"]

#: The variable exported when none is named: the first of these the result has (quantify,
#: normalise, fit, div_by_cnc; a classification's labels).
MAIN_VARIABLES = (*ELEMENT_VARIABLES, "labels")
#: xrf_proc's scatter columns, after the element lines (``XProcH5toCSV``).
SCATTER = ("Compt", "Rayl")
#: Variables :func:`xrfdask.to_h5` writes dead-time corrected (``fit/``): exported the same way.
_DEADTIME_CORRECTED = ("peak_area", "peak_area_error", "sum_area", "sum_background")
_MAP_DIMS = ("y", "x", "detector", "line")
_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb "
    "Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm "
    "Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()
_Z = {symbol: z for z, symbol in enumerate(_SYMBOLS, start=1)}


# --- TIFF ---------------------------------------------------------------------------------------


def to_tiff(
    result: xr.Dataset | xr.DataArray,
    folder: str | os.PathLike,
    *,
    variable: str | None = None,
    detector: Any = None,
    lines: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Write element maps as single-page TIFF images, one per line and detector.

    Each file is a (y, x) image: row 0 is the first ``y`` of the result (as xrf_proc stores
    ``ims``), float32 for floating-point maps (NaN where a pixel is masked), the variable's own
    integer type for integer maps (a classification's ``labels``). Its description tag holds the
    variable, line, detector and units as JSON. Files are named
    ``<variable>[_<detector>][_<line>].tif``: the detector's layout name (``channel00``,
    ``sum``) when the result has several detectors, the line with every character other than
    letters, digits, ``.``, ``+`` and ``-`` replaced by ``_`` (``normalised_channel01_Fe_K.tif``).

    A fit in memory is written dead-time corrected, as :func:`xrfdask.to_h5` writes ``fit/``.

    Parameters
    ----------
    result : xarray.Dataset or xarray.DataArray
        A fit, normalise, quantify, div_by_cnc or classify result (or one of its variables).
    folder : str or path-like
        Created if missing.
    variable : str, optional
        Default: the first of :data:`MAIN_VARIABLES` the result has.
    detector : optional
        One detector (its label or layout name, e.g. ``0`` or ``"channel00"``); default all.
    lines : sequence of str, optional
        Lines to write, in this order; default all.
    overwrite : bool, default False
        Replace existing files; otherwise :class:`FileExistsError` before anything is written.

    Returns
    -------
    list of str
        The paths written, detector by detector, line by line.

    Raises
    ------
    ConfigError
        No such variable, detector or line, or a variable that is not a (y, x) map per line.
    FileExistsError
        An output exists and ``overwrite`` is False.
    """
    import tifffile

    who = "to_tiff"
    ds, name = _variable_of(result, variable, who)
    var = ds[name]
    _check_dims(var, name, who, need=("y", "x"))
    all_detectors = _labels(var, "detector")
    detectors = all_detectors if detector is None else [_detector(var, detector, who)]
    line_labels = _lines(var, lines, who)
    cube = _cube(var, detectors, line_labels)  # (y, x, detector, line)
    ny, nx = cube.shape[:2]
    dtype = np.dtype(np.float32) if var.dtype.kind in "fc" else var.dtype
    if dtype.kind == "b":
        dtype = np.dtype(np.uint8)

    folder = os.fspath(folder)
    names = []
    for det in detectors:
        for line in line_labels:
            parts = [name]
            if len(all_detectors) > 1:
                parts.append(_channel(det))
            if line is not None:
                parts.append(_safe(line))
            names.append("_".join(parts) + ".tif")
    if len(set(names)) != len(names):
        raise ConfigError(f"{who}: line names {line_labels} give the same file name twice")
    paths = [os.path.join(folder, n) for n in names]
    if not overwrite:
        existing = [p for p in paths if os.path.exists(p)]
        if existing:
            raise FileExistsError(
                f"{existing[0]}: exists ({len(existing)} of the {len(paths)} files); "
                "pass overwrite=True to replace them"
            )
    os.makedirs(folder, exist_ok=True)
    units = str(var.attrs.get("units", var.attrs.get("Unit", "")))
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_output(p, overwrite=overwrite)) for p in paths]
        images = []
        for tmp, (det, line) in zip(
            tmps, ((d, ln) for d in detectors for ln in line_labels), strict=True
        ):
            meta = {"variable": name, "line": "" if line is None else str(line),
                    "detector": "" if det is None else str(det), "units": units}  # fmt: skip
            images.append(
                tifffile.memmap(
                    tmp, shape=(ny, nx), dtype=dtype, metadata=meta, photometric="minisblack"
                )  # fmt: skip
            )
        try:
            nl = len(line_labels)
            for y0, block in _bands(cube.data):
                rows = slice(y0, y0 + block.shape[0])
                for k, image in enumerate(images):
                    image[rows] = block[:, :, k // nl, k % nl]
            for image in images:
                image.flush()
        finally:
            image = images = None  # unmap the files before they are renamed
    return paths


# --- CSV: xrf_proc's XProcH5toCSV ---------------------------------------------------------------


def to_csv(
    result: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    variable: str | None = None,
    detector: Any = None,
    file_id: str | None = None,
    motors: xr.Dataset | None = None,
    overwrite: bool = False,
) -> str:
    """Write one detector's element maps as xrf_proc's ``XProcH5toCSV`` table, one row a pixel.

    The layout is xrf_proc's (``Xmod.XProcH5toCSV``)::

        FileID;RowID;Ca K;Fe K;Zn K;Sr K;Pb L;Pb M;Compt;Rayl
        map.h5;0.0125_0.0125;1523.7;88412.5;...

    * separator ``;``, header ``FileID;RowID;<lines>``, lines ordered by the atomic number of
      their element (the first word of the name; lines of one element keep the result's
      order), then ``Compt`` and ``Rayl`` where present;
    * one row per pixel, row by row (``x`` fastest), as xrf_proc flattens ``ims``;
    * ``RowID`` is ``<mot1>_<mot2>``, the pixel's motor positions (``mot1`` alone when it holds
      sample names, as handheld files do): ``mot1``/``mot2`` of ``motors`` or of the result,
      else the ``x`` and ``y`` coordinates (what :func:`xrfdask.to_h5` writes as ``mot1`` and
      ``mot2`` for a map without motors);
    * numbers as NumPy prints them, in the variable's own precision (float32 for a fit's areas,
      float64 for normalised intensities and concentrations), the shortest text that reads back
      to the same value, ``.`` as the decimal mark; a masked pixel is ``nan``;
    * a variable without ``y``/``x`` (``sum_area``: xrf_proc's ``…/sum/int`` input) gives one
      row whose ``RowID`` is its layout path (``fit/channel00/sum/int``).

    Where xrfdask differs: names that are not an element's line nor ``Compt``/``Rayl`` (further
    scatter peaks, ``Compt001``) come last in the result's order (xrf_proc fails on them); the
    header has no trailing ``;`` when there are no scatter lines (xrf_proc writes one there,
    an empty column its rows lack); ``FileID`` is never cut short (xrf_proc truncates it to the
    width of the first ``RowID``). A fit in memory is written dead-time corrected, as
    :func:`xrfdask.to_h5` writes ``fit/``. Written in bands of rows: memory stays bounded.

    Parameters
    ----------
    result : xarray.Dataset or xarray.DataArray
        A fit, normalise, quantify or div_by_cnc result (or one of its variables).
    path : str or path-like
    variable : str, optional
        Default: the first of :data:`MAIN_VARIABLES` the result has.
    detector : optional
        The detector (label or layout name). Default: the only one, else ``"sum"`` if the result
        has it; otherwise it must be given (xrf_proc exports one ``channelXX`` at a time).
    file_id : str, optional
        The ``FileID`` column (xrf_proc: the HDF5 file's path as passed). Default: the source
        file of the result (``attrs["source_path"]`` or ``encoding["source"]``), else the CSV's
        own name without its extension.
    motors : xarray.Dataset, optional
        A Dataset with ``mot1`` (and ``mot2``) on (y, x), such as the raw map, for ``RowID``.
    overwrite : bool, default False

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ConfigError
        No such variable or detector, several detectors and none chosen, a variable without
        a ``line`` dimension, or motors of another shape.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    who = "to_csv"
    path = os.fspath(path)
    ds, name = _variable_of(result, variable, who)
    var = ds[name]
    _check_dims(var, name, who, need=("line",))
    if ("y" in var.dims) != ("x" in var.dims):
        raise ConfigError(f"{who}: '{name}' has dims {var.dims}: both 'y' and 'x' or neither")
    det = _one_detector(var, detector, who)
    names = [str(v) for v in _labels(var, "line")]
    order = line_order(names)
    header = ";".join(["FileID", "RowID", *(names[i] for i in order)])
    if file_id is None:
        source = ds.attrs.get("source_path") or ds.encoding.get("source")
        file_id = str(source) if source else Path(path).stem
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    cube = _cube(var, [det], _labels(var, "line"))
    if "y" not in var.dims:
        values = np.asarray(cube.values).reshape(1, -1)[:, order]  # eager-ok: one row of sums
        row_id = _layout_path(ds, name, det)
        with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w") as f:
            f.write(header + "\n")
            f.write(_rows(file_id, np.array([row_id]), values) + "\n")
        return path
    ny, nx = cube.shape[:2]
    mot1, mot2 = _motors(ds, motors, ny, nx, who)
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        f.write(header + "\n")
        present = [m for m in (mot1, mot2) if m is not None]
        for _, block, *motor_rows in _bands(cube.data, *present):
            row_ids = _row_ids(*motor_rows)
            values = block.reshape(-1, block.shape[-1])[:, order]
            f.write(_rows(file_id, row_ids, values) + "\n")
    return path


def line_order(names: Sequence[str]) -> list[int]:
    """Column order of :func:`to_csv`: element lines by Z, then Compt, Rayl, then the others.

    Parameters
    ----------
    names : sequence of str
        Line names (``"Fe K"``, ``"Pb L3"``, ``"Compt"``...).

    Returns
    -------
    list of int
        Indices into ``names``.
    """
    elements = sorted(
        (_Z[n.split()[0]], i) for i, n in enumerate(names) if n.split() and n.split()[0] in _Z
    )
    order = [i for _, i in elements]
    order += [names.index(s) for s in SCATTER if s in names]
    order += [i for i in range(len(names)) if i not in order]
    return order


# --- class spectra ------------------------------------------------------------------------------


def class_spectra_to_csv(
    cls: xr.Dataset,
    path: str | os.PathLike,
    *,
    mean: bool = True,
    detector: Any = None,
    energy: Any = None,
    overwrite: bool = False,
) -> str:
    """Write a classification's class spectra (or class element values) as a CSV table.

    Comma separated, numbers as NumPy prints them (shortest exact text; ``nan`` for the mean of
    an empty class). A classification of spectra gives one row per channel::

        channel,energy_keV,class_0,class_1,...

    (``energy_keV`` when there is an ``energy`` coordinate or ``energy`` is given). A
    classification of element maps gives one row per class, its lines as columns in
    :func:`to_csv`'s order::

        class,n_pixels,Ca K,Fe K,...,Compt,Rayl

    Parameters
    ----------
    cls : xarray.Dataset
        :func:`xrfdask.classify`'s result, or a ``kmeans`` group read back.
    path : str or path-like
    mean : bool, default True
        Mean per pixel of the class (``class_mean_spectra``/``class_means``; from the sums and
        ``class_size`` when only those are stored); False: the sums (``class_spectra``,
        ``class_sums``).
    detector : optional
        For a result read back with one class table per detector; default the only one.
    energy : array-like, optional
        keV per channel, for class spectra without an ``energy`` coordinate (the raw map's).
    overwrite : bool, default False

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ConfigError
        Not a classification, several detectors and none chosen, or an ``energy`` of another
        length.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    who = "class_spectra_to_csv"
    path = os.fspath(path)
    kinds = (("class_spectra", "class_mean_spectra", "channel"),
             ("class_sums", "class_means", "line"))  # fmt: skip
    found = [k for k in kinds if k[0] in cls or k[1] in cls]
    if not found:
        raise ConfigError(
            f"{who}: no class spectra (class_spectra, class_mean_spectra, class_sums, "
            "class_means) in the input: pass xd.classify's result"
        )
    sums_name, mean_name, axis = found[0]
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    if mean and mean_name in cls:
        table = cls[mean_name]
    elif mean:
        if "class_size" not in cls:
            raise ConfigError(f"{who}: '{sums_name}' without 'class_size': pass mean=False")
        size = cls["class_size"]
        table = (cls[sums_name] / size).where(size > 0)
    else:
        if sums_name not in cls:
            raise ConfigError(f"{who}: no '{sums_name}' in the input: pass mean=True")
        table = cls[sums_name]
    if "detector" in table.dims:
        table = table.sel(detector=_one_detector(table, detector, who))
    table = table.transpose("class", axis).compute()  # eager-ok: classes x channels, small
    classes = [str(c) for c in _labels(table, "class")]
    values = np.asarray(table.values)  # eager-ok: computed above
    if axis == "line":
        names = [str(v) for v in _labels(table, "line")]
        order = line_order(names)
        size = cls["class_size"] if "class_size" in cls else None
        if size is not None and "detector" in size.dims:
            size = size.sel(detector=table["detector"].item())
        columns = [np.array(classes)]
        header = ["class"]
        if size is not None:
            header.append("n_pixels")
            columns.append(np.asarray(size.values).astype(str))  # eager-ok: one per class
        header += [names[i] for i in order]
        body = np.column_stack([*columns, values[:, order].astype(str)])
    else:
        n = values.shape[1]
        channel = table["channel"].values if "channel" in table.coords else np.arange(n)  # eager-ok
        if energy is None and "energy" in table.coords:
            energy = table["energy"].values  # eager-ok: the energy axis
        header = ["channel"]
        columns = [np.asarray(channel).astype(str)]
        if energy is not None:
            energy = np.asarray(energy, dtype=float).reshape(-1)
            if energy.size != n:
                raise ConfigError(f"{who}: energy has {energy.size} values for {n} channels")
            header.append("energy_keV")
            columns.append(energy.astype(str))
        header += [f"class_{c}" for c in classes]
        body = np.column_stack([*columns, values.T.astype(str)])
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        f.write("\n".join(",".join(row) for row in body.tolist()) + "\n")
    return path


# --- files --------------------------------------------------------------------------------------


def open_result(
    path: str | os.PathLike, group: str | None = None, *, chunks: Any = "auto"
) -> xr.Dataset:
    """A result group of a ``.h5``/``.zarr`` file, with the raw map's motors and energy axis.

    Parameters
    ----------
    path : str or path-like
    group : str, optional
        ``"fit"``, ``"norm"``, ``"quant"``, ``"rel_dif"``, ``"kmeans"``...; default the first of
        ``quant``, ``norm``, ``fit`` the file has.
    chunks : optional
        As :func:`xrfdask.open_h5`.

    Returns
    -------
    xarray.Dataset
        Lazy, as :func:`xrfdask.open_h5` reads it; ``mot1``/``mot2`` (y, x) coordinates from the
        file's raw map when the group lacks them and their shape fits, and an ``energy``
        coordinate on ``channel`` for class spectra (``kmeans``) when the raw map has one of the
        same length.

    Raises
    ------
    FormatError
        A group the file does not have (or, without ``group``, none of quant, norm, fit).
    UnsupportedFormatError
        A ``.GeoPIXE`` file (it holds raw maps only) or an unknown extension.
    """
    from xrfdask.errors import FormatError
    from xrfdask.io.convert import UnsupportedFormatError, file_format, open_map
    from xrfdask.io.h5layout.stores import H5Reader, ZarrReader

    path = os.fspath(path)
    kind = file_format(path)
    if kind == "geopixe":
        raise UnsupportedFormatError(f"{path}: a .GeoPIXE file holds a raw map only, no results")
    with (H5Reader if kind == "h5" else ZarrReader)(path) as reader:
        has_raw = reader.has("raw")
        if group is None:
            group = next((g for g in ELEMENT_GROUPS if reader.has(g)), None)
            if group is None:
                raise FormatError(f"{path}: no result group ({', '.join(ELEMENT_GROUPS)})")
    result = open_map(path, group=group, chunks=chunks)
    if not has_raw:
        return result
    raw = open_map(path, group="raw", chunks=chunks)
    extra = {}
    ny, nx = result.sizes.get("y"), result.sizes.get("x")
    for name in ("mot1", "mot2"):
        if name not in result and name in raw and raw[name].shape == (ny, nx):
            extra[name] = (("y", "x"), raw[name].transpose("y", "x").data, raw[name].attrs)
    if "energy" in raw.coords and "channel" in result.dims and "energy" not in result.coords:
        if result.sizes["channel"] == raw.sizes["channel"]:
            extra["energy"] = ("channel", raw["energy"].values, raw["energy"].attrs)  # eager-ok
    return result.assign_coords(extra) if extra else result


# --- helpers ------------------------------------------------------------------------------------


def _variable_of(result, variable: str | None, who: str) -> tuple[xr.Dataset, str]:
    """The Dataset and the name of the variable to export (a fit dead-time corrected)."""
    if isinstance(result, xr.DataArray):
        name = result.name if result.name is not None else "values"
        if variable is not None and variable != name:
            raise ConfigError(f"{who}: variable={variable!r}, but the DataArray is {name!r}")
        ds = result.to_dataset(name=name)
    elif isinstance(result, xr.Dataset):
        ds = result
        name = variable
        if name is None:
            name = next((v for v in MAIN_VARIABLES if v in ds), None)
            if name is None:
                raise ConfigError(
                    f"{who}: none of {', '.join(MAIN_VARIABLES)} in the result (it has "
                    f"{', '.join(map(str, ds.data_vars)) or 'no variables'}); pass variable="
                )
        elif name not in ds:
            raise ConfigError(
                f"{who}: no variable {name!r} in the result; it has "
                f"{', '.join(map(str, ds.data_vars))}"
            )
    else:
        raise ConfigError(f"{who}: expected an xarray Dataset or DataArray, not {type(result)}")
    if name in _DEADTIME_CORRECTED and "deadtime_factor" in ds:
        from xrfdask.deadtime_correction import corrected_fit

        ds = corrected_fit(ds)
    return ds, name


def _check_dims(var: xr.DataArray, name: str, who: str, need: tuple[str, ...]) -> None:
    extra = [d for d in var.dims if d not in _MAP_DIMS]
    missing = [d for d in need if d not in var.dims]
    if extra or missing:
        raise ConfigError(
            f"{who}: '{name}' has dims {var.dims}; expected {' and '.join(need)} among "
            f"{_MAP_DIMS} only"
        )


def _labels(var: xr.DataArray, dim: str) -> list:
    """The labels of ``dim`` (positions without a coordinate; ``[None]`` without the dim)."""
    if dim not in var.dims:
        return [None]
    if dim in var.coords:
        return np.asarray(var[dim].values).tolist()  # eager-ok: labels
    return list(range(var.sizes[dim]))


def _channel(label) -> str:
    from xrfdask.io.h5layout.schema import channel_name

    try:
        return channel_name(label)
    except (TypeError, ValueError):
        return str(label)


def _detector(var: xr.DataArray, detector, who: str):
    """The label of ``detector`` (a label, or its layout name such as ``channel00``)."""
    labels = _labels(var, "detector")
    if labels == [None]:
        raise ConfigError(f"{who}: detector={detector!r}, but the result has no detector dim")
    if detector in labels:
        return detector
    matches = [lab for lab in labels if _channel(lab) == str(detector) or str(lab) == str(detector)]
    if len(matches) == 1:
        return matches[0]
    raise ConfigError(f"{who}: detector {detector!r} not in {labels}")


def _one_detector(var: xr.DataArray, detector, who: str):
    labels = _labels(var, "detector")
    if detector is not None:
        return _detector(var, detector, who)
    if len(labels) == 1:
        return labels[0]
    if "sum" in labels:
        return "sum"
    raise ConfigError(
        f"{who}: the result has detectors {labels}: choose one (detector=, --detector)"
    )


def _lines(var: xr.DataArray, lines, who: str) -> list:
    labels = _labels(var, "line")
    if lines is None:
        return labels
    if isinstance(lines, str):
        lines = [lines]
    if labels == [None]:
        raise ConfigError(f"{who}: lines={list(lines)}, but the variable has no 'line' dim")
    missing = [ln for ln in lines if ln not in labels]
    if missing:
        raise ConfigError(f"{who}: lines {missing} not in {labels}")
    return list(lines)


def _cube(var: xr.DataArray, detectors: list, lines: list) -> xr.DataArray:
    """``var`` as (y, x, detector, line) (or (detector, line) for sums): missing dims length 1."""
    for dim, labels in (("detector", detectors), ("line", lines)):
        if dim not in var.dims:
            var = var.expand_dims(dim)
        elif dim in var.coords:
            var = var.sel({dim: labels})
        else:
            var = var.isel({dim: labels})
    return var.transpose(*[d for d in _MAP_DIMS if d in var.dims])


def _bands(data, *others) -> Iterator[tuple]:
    """(first row, block, *other blocks) for each band of rows, computed a few at a time.

    ``data`` is (y, x, ...); ``others`` are (y, x) arrays cut into the same bands.
    """
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=-1)
    data = data.rechunk({i: -1 for i in range(1, data.ndim)})
    rows = data.chunks[0]
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int).tolist()
    tasks = []
    for y0, n, block in zip(starts, rows, data.to_delayed(optimize_graph=False).ravel(),
                            strict=True):  # fmt: skip
        tasks.append(dask.delayed(_together)(block, *(o[y0 : y0 + n] for o in others)))
    from xrfdask.runtime import iter_computed

    for y0, parts in zip(starts, iter_computed(tasks), strict=True):
        yield (y0, *(np.asarray(p) for p in parts))


def _together(*parts: Any) -> tuple:
    """A band's block and its motors, as one task's result."""
    return parts


def _motors(ds: xr.Dataset, motors, ny: int, nx: int, who: str) -> tuple[Any, Any]:
    """(mot1, mot2) as (y, x) arrays (mot2 None for handheld names); lazy where they are."""
    source = motors if motors is not None else ds
    if "mot1" in source:
        m1 = source["mot1"]
        m2 = source["mot2"] if "mot2" in source else None
        if m1.dims != ("y", "x") and set(m1.dims) == {"y", "x"}:
            m1 = m1.transpose("y", "x")
        if m1.shape != (ny, nx):
            raise ConfigError(f"{who}: mot1 has shape {m1.shape}; the map is {(ny, nx)}")
        text = m1.dtype.kind in "OSU"
        if m2 is not None and not text:
            m2 = m2.transpose("y", "x") if set(m2.dims) == {"y", "x"} else m2
            if m2.shape != (ny, nx):
                raise ConfigError(f"{who}: mot2 has shape {m2.shape}; the map is {(ny, nx)}")
        return _lazy(m1.data), (None if text or m2 is None else _lazy(m2.data))
    if motors is not None:
        raise ConfigError(f"{who}: motors has no 'mot1'")
    x = ds["x"].values if "x" in ds.coords else np.arange(nx, dtype=float)  # eager-ok: axis
    y = ds["y"].values if "y" in ds.coords else np.arange(ny, dtype=float)  # eager-ok: axis
    mot1 = da.broadcast_to(da.from_array(np.asarray(x, dtype=float))[None, :], (ny, nx))
    mot2 = da.broadcast_to(da.from_array(np.asarray(y, dtype=float))[:, None], (ny, nx))
    return mot1, mot2


def _lazy(data) -> da.Array:
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data))


def _text(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind == "O":
        return np.array([v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values])
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf8")
    return values.astype(str)


def _row_ids(mot1: np.ndarray, mot2: np.ndarray | None = None) -> np.ndarray:
    ids = _text(mot1)
    if mot2 is None:
        return ids
    return np.char.add(np.char.add(ids, "_"), _text(mot2))


def _rows(file_id: str, row_ids: np.ndarray, values: np.ndarray) -> str:
    """Semicolon-joined rows (no final newline): the columns joined in C, not per pixel."""
    text = np.char.add(f"{file_id};", row_ids.astype(str))
    for column in values.astype(str).T:
        text = np.char.add(np.char.add(text, ";"), column)
    return "\n".join(text.tolist())


def _layout_path(ds: xr.Dataset, name: str, detector) -> str:
    """``<group>/<channel>/<dataset>`` of a variable in the uniform layout (the sum RowID)."""
    from xrfdask.io.h5layout.schema import RESULT_GROUPS

    for group, schema in RESULT_GROUPS.items():
        if schema.key_var in ds:
            for field in schema.fields:
                if field.var == name:
                    channel = _channel(detector if detector is not None else 0)
                    return f"{group}/{channel}/{field.path}"
    return name


def _safe(name) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(name)).strip("_") or "line"
