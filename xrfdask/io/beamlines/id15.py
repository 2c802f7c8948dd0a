"""ESRF ID15 (BLISS HDF5) scans to raw maps, after xrf_proc's ``ConvID15H5`` (spec 9.1).

A scan entry ``<n>.1`` holds ``measurement/<detector>`` (points x channels) with its count rates
and elapsed time, the ion chambers (I0, I1) and the motor positions; ``instrument/machine/current``
(optional) normalises I0/I1 for the ring current. Points are reshaped row-major to ``scan_dim``.

Differences from the original, fixing its pitfalls (spec 12, item 24): ``instrument/machine`` may
be absent; the second detector is read only if present (unless asked for explicitly); a missing I1
is skipped with a warning; the I0 correction looks up each scan's own ``.2`` entry; stitched scans
are concatenated along the axis of the motor that changed; sorting finds the fast motor from the
positions instead of assuming ``mot2``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import FormatError, XrfdaskWarning
from xrfdask.io.beamlines.grid import assign_motor_coords, points_to_map, sort_map
from xrfdask.io.h5layout.stores import H5Reader
from xrfdask.model import MAP_DIMS, PIXEL_DIMS, RAW_DIMS, with_attrs

__all__ = ["convert_id15", "id15_output_path"]

_AUTO = "falconx2_det0"  # the default second detector: used when the file has it


class _Auto(str):
    """Marks the default ``ch1id``: read the second detector only if the scan has it."""


DEFAULT_CH1 = _Auto(_AUTO)


def convert_id15(
    h5id15: str | os.PathLike | list,
    scanid: str | list,
    scan_dim: Any,
    *,
    mot1_name: str = "hry",
    mot2_name: str = "hrz",
    ch0id: str = "falconx_det0",
    ch1id: str | None = DEFAULT_CH1,
    i0id: str = "fpico2",
    i0corid: str | None = None,
    i1id: str | None = "fpico3",
    i1corid: str | None = None,
    icrid: str = "trigger_count_rate",
    ocrid: str = "event_count_rate",
    atol: float | None = None,
    sort: bool = True,
) -> xr.Dataset:
    """Convert ID15 BLISS scans to a raw map (lazy: spectra stay in the source file).

    Parameters
    ----------
    h5id15 : path or list of paths
        The BLISS file, or one file per scan when stitching scans from several files.
    scanid : str or list of str
        Scan entry (``"1.1"``), or several to stitch into one map.
    scan_dim : (rows, columns), one int, or one shape per scan
        Map shape; a single number ``d`` means ``(d, 1)``.
    mot1_name, mot2_name : str
        Motor names (``measurement/<name>``, else ``instrument/positioners/<name>``).
    ch0id, ch1id : str
        MCA datasets of the two detectors; ``ch1id=None`` reads one detector. By default the second
        detector is read only if the scan has it.
    i0id, i1id : str
        Ion chambers; I1 is optional (skipped with a warning if absent).
    i0corid, i1corid : str, optional
        Counters whose mean rescales I0 (I1): ``I0 / mean(I0) * mean(i0cor)``.
    icrid, ocrid : str
        Suffixes of the count-rate datasets (``<ch0id>_<icrid>``).
    atol : float, optional
        Tolerance for motor comparisons (default 1e-4).
    sort : bool, default True
        Sort each row by the fast motor, then each column by the slow one.

    Returns
    -------
    xarray.Dataset
        ``spectra`` (y, x, detector, channel) with detectors ``"channel00"`` (and
        ``"channel01"``), ``icr``, ``ocr``, ``I0``, ``I1``, ``acquisition_time``, ``mot1``,
        ``mot2`` (attribute ``Name``), attrs ``cmd`` (the scan titles) and ``fast_axis``.

    Raises
    ------
    FormatError
        A missing scan or dataset, or data whose lengths do not match the scan; the message
        names the file and the dataset path.
    """
    atol = 1e-4 if atol is None else atol
    scans = [scanid] if isinstance(scanid, str) else list(scanid)
    files = list(h5id15) if isinstance(h5id15, list | tuple) else [h5id15] * len(scans)
    if len(files) != len(scans):
        raise ValueError(
            f"{len(files)} files for {len(scans)} scans: give one file per scan, or one file"
        )
    dims = _scan_dims(scan_dim, len(scans))
    options = dict(
        mot1_name=mot1_name, mot2_name=mot2_name, ch0id=ch0id, ch1id=ch1id, i0id=i0id,
        i0corid=i0corid, i1id=i1id, i1corid=i1corid, icrid=icrid, ocrid=ocrid,
    )  # fmt: skip
    maps = [
        _read_scan(os.fspath(f), str(s), d, **options)
        for f, s, d in zip(files, scans, dims, strict=True)
    ]
    ds = maps[0]
    for other in maps[1:]:
        ds = _stitch(ds, other, atol)
    ds.attrs["cmd"] = " ".join(m.attrs["cmd"] for m in maps)
    ds.attrs["source_path"] = [f"{os.fspath(f)}::{s}" for f, s in zip(files, scans, strict=True)]
    if len(scans) == 1:
        ds.attrs["source_path"] = ds.attrs["source_path"][0]
    if sort:
        fast, slow = _fast_slow(ds)
        ds = sort_map(ds, within_rows=fast, within_columns=slow)
    return assign_motor_coords(ds)


def id15_output_path(h5id15: str | os.PathLike | list, scanid: str | list) -> Path:
    """xrf_proc's output name: ``<file stem>_scan<n>.h5`` (``_scan<first>-<last>`` when stitching,
    ``_scan<first>-<last file stem>_scan<last>`` across files), beside the (first) file."""
    files = [Path(f) for f in (h5id15 if isinstance(h5id15, list | tuple) else [h5id15])]
    scans = [scanid] if isinstance(scanid, str) else list(scanid)
    number = [str(s).split(".")[0] for s in scans]
    stem = files[0].name.split(".")[0]
    if len(scans) == 1:
        name = f"{stem}_scan{number[0]}"
    elif len(files) > 1 and files[-1] != files[0]:
        name = f"{stem}_scan{number[0]}-{files[-1].name.split('.')[0]}_scan{number[-1]}"
    else:
        name = f"{stem}_scan{number[0]}-{number[-1]}"
    return files[0].parent / f"{name}.h5"


def _scan_dims(scan_dim: Any, n: int) -> list[tuple[int, int]]:
    arr = np.atleast_1d(np.asarray(scan_dim, dtype=int))
    if arr.ndim == 1 and arr.size == 1:
        arr = np.array([arr[0], 1])
    if arr.ndim == 1:
        if arr.size != 2:
            raise ValueError(f"scan_dim={scan_dim!r}: expected (rows, columns)")
        return [(int(arr[0]), int(arr[1]))] * n
    if arr.shape != (n, 2):
        raise ValueError(f"scan_dim={scan_dim!r}: expected one (rows, columns) per scan ({n})")
    return [(int(a), int(b)) for a, b in arr]


def _read_scan(path: str, scan: str, shape: tuple[int, int], *, mot1_name, mot2_name, ch0id, ch1id,
               i0id, i0corid, i1id, i1corid, icrid, ocrid) -> xr.Dataset:  # fmt: skip
    with H5Reader(path) as h5:
        if not h5.is_group(scan):
            raise FormatError(f"{path}: scan entry '{scan}' is missing")
        meas = f"{scan}/measurement"
        npts = shape[0] * shape[1]

        def points(p: str, lazy: bool = False):
            if not h5.has(p):
                raise FormatError(f"{path}: dataset '{p}' is missing")
            n = h5.shape(p)[0] if h5.shape(p) else 0
            if n < npts:
                raise FormatError(
                    f"{path}: dataset '{p}' has {n} points, "
                    f"the scan needs {shape[0]} x {shape[1]} = {npts}"
                )
            data = h5.lazy_banded(p, 0) if lazy else np.asarray(h5.read(p), dtype=float)
            return points_to_map(data, shape, f"{path}: '{p}'")

        detectors = [ch0id]
        if ch1id is not None and (not isinstance(ch1id, _Auto) or h5.has(f"{meas}/{ch1id}")):
            detectors.append(ch1id)
        spectra, icr, ocr = [], [], []
        for det in detectors:
            p = f"{meas}/{det}"
            if h5.has(p) and len(h5.shape(p)) != 2:
                raise FormatError(
                    f"{path}: dataset '{p}' has shape {h5.shape(p)}, expected points x channels"
                )
            spectra.append(points(p, lazy=True))
            icr.append(points(f"{meas}/{det}_{icrid}"))
            ocr.append(points(f"{meas}/{det}_{ocrid}"))
        nchan = {s.shape[-1] for s in spectra}
        if len(nchan) > 1:
            raise FormatError(
                f"{path}: detectors {detectors} of scan '{scan}' "
                f"have different channel counts {sorted(nchan)}"
            )
        data_vars: dict[str, Any] = {
            "spectra": (
                RAW_DIMS,
                da.stack(spectra, axis=2).rechunk({2: -1}),
                with_attrs("spectra"),
            ),
            "icr": (PIXEL_DIMS, np.stack(icr, axis=2), with_attrs("icr")),
            "ocr": (PIXEL_DIMS, np.stack(ocr, axis=2), with_attrs("ocr")),
        }
        elapsed = f"{meas}/{ch0id}_elapsed_time"
        if h5.has(elapsed):
            data_vars["acquisition_time"] = (
                MAP_DIMS,
                points(elapsed),
                with_attrs("acquisition_time"),
            )
        current = _ring_current(h5, scan, npts, shape)
        i0 = points(f"{meas}/{i0id}") / current
        i0 = _rescale(h5, path, scan, i0, i0corid)
        data_vars["I0"] = (MAP_DIMS, i0, with_attrs("I0"))
        if i1id is not None:
            if h5.has(f"{meas}/{i1id}"):
                i1 = _rescale(h5, path, scan, points(f"{meas}/{i1id}") / current, i1corid)
                data_vars["I1"] = (MAP_DIMS, i1, with_attrs("I1"))
            else:
                warnings.warn(
                    f"{path}: scan '{scan}' has no I1 ('{meas}/{i1id}'); writing none",
                    XrfdaskWarning,
                    stacklevel=3,
                )
        for var, name in (("mot1", mot1_name), ("mot2", mot2_name)):
            p = f"{meas}/{name}"
            if not h5.has(p):
                p = f"{scan}/instrument/positioners/{name}"
            if not h5.has(p):
                raise FormatError(
                    f"{path}: motor '{name}' is missing (neither '{meas}/{name}' nor '{p}')"
                )
            data_vars[var] = (MAP_DIMS, points(p), {"Name": name})
        title = h5.read(f"{scan}/title") if h5.has(f"{scan}/title") else f"scan {scan}"
    ds = xr.Dataset(
        data_vars,
        coords={
            "detector": [f"channel{i:02d}" for i in range(len(detectors))],
            "channel": np.arange(nchan.pop()),
        },
    )
    ds.attrs.update({"cmd": str(title), "source_format": "ID15"})
    return ds


def _ring_current(h5: H5Reader, scan: str, npts: int, shape) -> Any:
    p = f"{scan}/instrument/machine/current"
    if not h5.has(p):
        return 1.0
    current = np.asarray(h5.read(p), dtype=float)
    if current.ndim == 0 or current.size == 1:
        return float(current.reshape(-1)[0])
    return points_to_map(current, shape, f"{h5.path}: '{p}'")


def _rescale(
    h5: H5Reader, path: str, scan: str, counter: np.ndarray, corid: str | None
) -> np.ndarray:
    """``counter / mean(counter) * mean(correction)`` (xrf_proc's i0cor), per scan."""
    if corid is None:
        return counter
    number = scan.split(".")[0]
    for p in (f"{number}.2/measurement/{corid}", f"{scan}/instrument/{corid}/data"):
        if h5.has(p):
            correction = float(np.mean(np.asarray(h5.read(p), dtype=float)))
            return counter / np.mean(counter) * correction
    raise FormatError(
        f"{path}: correction counter '{corid}' is missing "
        f"(looked in '{number}.2/measurement/' and '{scan}/instrument/')"
    )


def _varies_along_x(motor: np.ndarray) -> bool:
    along_x = np.nanmean(np.abs(np.diff(motor, axis=1))) if motor.shape[1] > 1 else 0.0
    along_y = np.nanmean(np.abs(np.diff(motor, axis=0))) if motor.shape[0] > 1 else 0.0
    return bool(along_x > along_y)


def _fast_slow(ds: xr.Dataset) -> tuple[str, str]:
    """Which motor moves along the rows (fast) and which down the columns (slow)."""
    m1 = np.asarray(ds["mot1"].values)  # eager-ok: motor positions
    return ("mot1", "mot2") if _varies_along_x(m1) else ("mot2", "mot1")


def _stitch(a: xr.Dataset, b: xr.Dataset, atol: float) -> xr.Dataset:
    """Join two scans side by side along the motor that changed between them (spec 9.1, step 6)."""
    changed = [
        m for m in ("mot1", "mot2") if not _same_range(a[m].values, b[m].values, atol)
    ]  # eager-ok: motors
    if not changed:
        raise FormatError("stitching scans: both cover the same motor positions; nothing to join")
    if len(changed) == 2:
        raise FormatError(
            "stitching scans: both motors differ between scans; cannot tell how they join"
        )
    motor = changed[0]
    dim = "x" if _varies_along_x(np.asarray(a[motor].values)) else "y"  # eager-ok: motor
    other = "y" if dim == "x" else "x"
    if a.sizes[other] != b.sizes[other]:
        raise FormatError(
            f"stitching scans along {dim}: {a.sizes[other]} and {b.sizes[other]} pixels across "
            "do not match"
        )
    lo, hi = (
        (a, b) if float(np.nanmin(a[motor].values)) <= float(np.nanmin(b[motor].values)) else (b, a)
    )  # eager-ok: motors
    hi_min = float(np.nanmin(hi[motor].values))  # eager-ok: motor
    positions = np.nanmean(
        np.asarray(lo[motor].transpose("y", "x").values), axis=0 if dim == "x" else 1
    )  # eager-ok: motor
    keep = np.flatnonzero(positions < hi_min - atol)
    if keep.size < lo.sizes[dim]:
        lo = lo.isel({dim: keep})
    out = xr.concat(
        [lo, hi], dim=dim, data_vars="minimal", coords="minimal", compat="override", join="override"
    )
    out.attrs = dict(a.attrs)
    return out


def _same_range(u: np.ndarray, v: np.ndarray, atol: float) -> bool:
    return bool(
        np.isclose(np.nanmin(u), np.nanmin(v), atol=atol)
        and np.isclose(np.nanmax(u), np.nanmax(v), atol=atol)
    )
