"""Scan geometry shared by the beamline converters: points to rows x columns, sorting by motors.

Beamlines record a scan as a list of points; a map is those points reshaped to (rows, columns),
row-major, and optionally sorted so that positions increase along each row and each column. The
permutation is computed from the (small) motor arrays and applied lazily to everything else, so
the spectra stay on disk.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import FormatError

__all__ = ["points_to_map", "sort_map", "axis_positions", "assign_motor_coords"]


def points_to_map(array: Any, shape: tuple[int, int], what: str = "data") -> Any:
    """First rows x columns points of a (points, ...) array as (rows, columns, ...), row-major.

    Dask arrays stay lazy (rechunked to whole rows first so the reshape needs no shuffling).
    """
    rows, cols = shape
    n = rows * cols
    if array.shape[0] < n:
        raise FormatError(
            f"{what}: {array.shape[0]} points, fewer than the {rows} x {cols} = {n} of the scan"
        )
    array = array[:n]
    if isinstance(array, da.Array):
        per_chunk = max(1, max(array.chunks[0]) // cols) * cols
        array = array.rechunk({0: per_chunk})
    return array.reshape((rows, cols) + array.shape[1:])


def _gather(data: Any, src_row: np.ndarray, src_col: np.ndarray) -> Any:
    """``out[i, j] = data[src_row[i, j], src_col[i, j]]`` for (rows, columns, ...) data."""
    rows, cols = src_row.shape
    same_cols = np.all(src_col == src_col[:1])  # one column order for every row
    same_rows = np.all(src_row == src_row[:, :1])  # one row order for every column
    if same_cols and same_rows:
        q, p = src_row[:, 0], src_col[0]
        out = data
        if not np.array_equal(q, np.arange(rows)):
            out = out[q]
        if not np.array_equal(p, np.arange(cols)):
            out = out[:, p]
        return out
    if isinstance(data, da.Array):
        return data.vindex[src_row, src_col]
    return np.asarray(data)[src_row, src_col]


def sort_map(ds: xr.Dataset, within_rows: str, within_columns: str) -> xr.Dataset:
    """Sort each row by ``within_rows`` then each column by ``within_columns`` (both motors).

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map whose ``within_rows`` and ``within_columns`` variables are (y, x) motor
        positions.
    within_rows : str
        Motor that varies along a row (the fast axis): each row is reordered by it.
    within_columns : str
        Motor that varies down a column (the slow axis): each column is then reordered by it.

    Returns
    -------
    xarray.Dataset
        Every (y, x, ...) variable permuted the same way (lazily for dask arrays).
    """
    a = np.asarray(ds[within_rows].transpose("y", "x").values)  # eager-ok: motor positions
    b = np.asarray(ds[within_columns].transpose("y", "x").values)  # eager-ok: motor positions
    rows, cols = a.shape
    col_order = np.argsort(a, axis=1, kind="stable")
    src_col = col_order
    src_row = np.repeat(np.arange(rows)[:, None], cols, axis=1)
    b_sorted = np.take_along_axis(b, col_order, axis=1)
    row_order = np.argsort(b_sorted, axis=0, kind="stable")
    src_col = np.take_along_axis(src_col, row_order, axis=0)
    src_row = np.take_along_axis(src_row, row_order, axis=0)
    if np.array_equal(src_row, np.arange(rows)[:, None].repeat(cols, 1)) and np.array_equal(
        src_col, np.arange(cols)[None, :].repeat(rows, 0)
    ):
        return ds
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if var.dims[:2] == ("y", "x"):
            out[name] = (var.dims, _gather(var.data, src_row, src_col), var.attrs)
        elif "y" in var.dims or "x" in var.dims:
            moved = var.transpose("y", "x", ...)
            out[name] = (moved.dims, _gather(moved.data, src_row, src_col), var.attrs)
    return out


def axis_positions(motor: np.ndarray, axis: int) -> np.ndarray | None:
    """Positions along ``axis`` (0: rows, 1: columns) if the motor moves only along it and
    increases: a regular, sorted grid. None otherwise."""
    n = motor.shape[axis]
    if n < 2 or not np.all(np.isfinite(motor)):  # NaN or inf positions: no grid
        return None
    first = motor[0, :] if axis == 1 else motor[:, 0]
    steps = np.diff(first)
    if not np.all(steps > 0):
        return None
    line = first[None, :] if axis == 1 else first[:, None]
    spread = float(np.abs(motor - line).max())
    if spread == 0:
        return first.astype(float)
    if spread <= 0.05 * float(steps.min()):
        return motor.mean(axis=1 - axis).astype(float)
    return None


def assign_motor_coords(ds: xr.Dataset, motors: tuple[str, ...] = ("mot1", "mot2")) -> xr.Dataset:
    """Set ``y``/``x`` coordinates from motors that form a regular grid, pixel indices otherwise.

    Also records which motor is the fast one (varies along ``x``) in ``attrs["fast_axis"]``.
    """
    coords = {}
    fast = None
    for dim, axis in (("y", 0), ("x", 1)):
        coords[dim] = (dim, np.arange(ds.sizes[dim], dtype=float), {"units": "pixel"})
        for name in motors:
            if name not in ds:
                continue
            values = axis_positions(
                np.asarray(ds[name].transpose("y", "x").values), axis
            )  # eager-ok: motor
            if values is not None:
                attrs = {k: v for k, v in ds[name].attrs.items() if k != "Name"}
                attrs.setdefault("motor", str(ds[name].attrs.get("Name", name)))
                coords[dim] = (dim, values, attrs)
                if dim == "x":
                    fast = name
                break
    out = ds.assign_coords(coords)
    if fast is not None:
        out.attrs["fast_axis"] = f"{fast} ({ds[fast].attrs.get('Name', fast)}) varies along x"
    return out
