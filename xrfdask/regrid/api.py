"""``regrid``: raw maps and results of snake and time-triggered scans onto the regular grid."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.chunks import bands
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.regrid.command import ScanCommand, parse_scan_command
from xrfdask.regrid.gather import apply_plan
from xrfdask.regrid.grid import Plan, interpolation, snake_positions, time_positions

__all__ = ["regrid"]

MODES = ("snake", "time")
METHODS = ("nearest", "linear")
MOTORS = ("mot1", "mot2")
_TEMP_NAME = "__xrfdask_regrid__"


def regrid(
    obj: xr.Dataset | xr.DataArray,
    mode: str = "snake",
    half_pixel_shift: bool = True,
    method: str = "nearest",
    *,
    motors: xr.Dataset | xr.DataArray | None = None,
    cmd: str | bytes | None = None,
    fast: str | None = None,
) -> xr.Dataset | xr.DataArray:
    """Put a raw map or a result of a snake or time-triggered scan on its regular motor grid.

    Never in place: ``obj`` and ``motors`` are left as they are and a new object is returned,
    lazily (nothing is computed but the grid, from the motor positions).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        A raw map (``spectra``, ``icr``, ``I0``, ``mot1``, ``mot2``... on ``y``, ``x``) or a
        result on (y, x, ...) (``peak_area``, ``normalised``...). Every variable with both ``y``
        and ``x`` is regridded; the others (sum spectra, per-line sums) pass through.
    mode : {"snake", "time"}
        ``"snake"``: position-triggered snake (xrf_proc 4.5); the grid has the map's shape, its
        columns from the mean positions of the fast motor, its rows from those of the slow one.
        ``"time"``: continuous, time-triggered scan (4.6), e.g. a mesh saved as a 1-D list; the
        grid (n2 rows x n1 columns) comes from the mesh command (``cmd``).
    half_pixel_shift : bool, default True
        Correct the positions for the trigger delay: a snake's forward rows move by +step/2 and
        its backward rows by -step/2; a time-triggered scan's positions move halfway to the next.
    method : {"nearest", "linear"}
        ``"nearest"`` gives what xrf_proc's ``griddata(..., method="nearest")`` gives, value for
        value (integers stay integers); ``"linear"``: barycentric interpolation in the Delaunay
        triangulation of the positions, float, NaN outside their convex hull (boolean masks: true
        where every source pixel is).
    motors : xarray.Dataset or xarray.DataArray, optional
        Where ``mot1`` and ``mot2`` (y, x) are (variables or coordinates): the raw map of a
        result, which carries none. When given, its motors are used even where ``obj`` has some.
        Its ``attrs["cmd"]`` serves as the command when ``obj`` has none.
    cmd : str or bytes, optional
        The mesh command (``mode="time"``); default ``obj.attrs["cmd"]``, then ``motors``'.
        See :func:`parse_scan_command`.
    fast : {"mot1", "mot2"}, optional
        The motor moving along the rows (``x``). Default: snake, the motor whose positions vary
        along ``x`` (``mot1`` when that cannot be told); time, the motor named first in the
        command (by its ``Name`` attribute), else ``mot1``.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        On the grid: ``y`` and ``x`` are the slow and fast motors' grid positions (with the
        input coordinates' or the motors' units, and a ``motor`` attribute), ``mot1``/``mot2``
        hold the grid (y, x); attrs ``regridded=True``, ``regrid_mode``, ``regrid_method``,
        ``regrid_half_pixel_shift``, ``regrid_fast_motor``, ``fast_axis`` (and ``regrid_cmd``).
        Bands of rows: the input's own along y (snake), or as many pixels per band as the
        input's (time), planned by :func:`xrfdask.chunks.bands`.

    Raises
    ------
    ConfigError
        No motor positions, motors of another shape than the map, an unknown mode or method, a
        command that is not a mesh (time), a snake of one row.

    Warns
    -----
    XrfdaskWarning
        When ``obj`` is already regridded (``attrs["regridded"]``): it is returned unchanged,
        never shifted a second time.

    Notes
    -----
    The plan (nearest indices or triangle weights) is computed once from the motors and applied
    to every variable, channel and line; each output band reads only the source bands it needs.
    """
    if mode not in MODES:
        raise ConfigError(f"regrid: mode={mode!r}; expected one of {MODES}")
    if method not in METHODS:
        raise ConfigError(f"regrid: method={method!r}; expected one of {METHODS}")
    if fast not in (None, *MOTORS):
        raise ConfigError(f"regrid: fast={fast!r}; expected 'mot1' or 'mot2'")
    if isinstance(obj, xr.DataArray):
        name = obj.name if obj.name is not None else _TEMP_NAME
        out = regrid(
            obj.to_dataset(name=name, promote_attrs=True),
            mode,
            half_pixel_shift,
            method,
            motors=motors,
            cmd=cmd,
            fast=fast,
        )
        if out.attrs.get("regridded") and not obj.attrs.get("regridded"):
            grid = {m: out[m] for m in MOTORS if m in out.data_vars}
            array = out[name].assign_coords(grid)
        else:
            array = out[name]
        array.attrs = dict(out.attrs)
        return array.rename(obj.name)
    if not isinstance(obj, xr.Dataset):
        raise ConfigError(
            f"regrid: expected an xarray Dataset or DataArray, got {type(obj).__name__}"
        )
    if obj.attrs.get("regridded"):
        warnings.warn(
            f"regrid: the data is already regridded (mode {obj.attrs.get('regrid_mode')!r}); "
            "returned unchanged",
            XrfdaskWarning,
            stacklevel=2,
        )
        return obj
    missing = [d for d in ("y", "x") if d not in obj.dims]
    if missing:
        raise ConfigError(f"regrid: the data has no {' or '.join(missing)} dimension")
    shape = (obj.sizes["y"], obj.sizes["x"])
    source = obj if motors is None else motors
    if motors is not None and getattr(motors, "attrs", {}).get("regridded"):
        raise ConfigError(
            "regrid: motors= is already regridded (its mot1/mot2 are the grid); pass the raw map"
        )
    positions = {m: _motor(source, m, shape, motors is not None) for m in MOTORS}

    command = None
    if mode == "time":
        text = cmd if cmd is not None else obj.attrs.get("cmd")
        if text is None and motors is not None:
            text = motors.attrs.get("cmd")
        if text is None:
            raise ConfigError(
                "regrid(mode='time'): no scan command: the data has no attrs['cmd']; pass cmd="
            )
        command = parse_scan_command(text)
    fast = fast or _fast_motor(positions, command)
    slow = "mot2" if fast == "mot1" else "mot1"
    if mode == "snake":
        if shape[0] < 2:
            raise ConfigError(
                "regrid(mode='snake'): the map has one row; a mesh recorded as a 1-D list is "
                "time-triggered: use mode='time'"
            )
        moved, x, y = snake_positions(
            positions[fast].values, positions[slow].values, half_pixel_shift
        )
    else:
        moved, x, y = time_positions(
            positions[fast].values, positions[slow].values, command, half_pixel_shift
        )
    plan = interpolation(moved, positions[slow].values, x, y, method)
    return _regridded(
        obj, plan, positions, fast, _out_chunks(obj, plan), mode, method, half_pixel_shift, command
    )


def _motor(source: Any, name: str, shape: tuple[int, int], given: bool) -> xr.DataArray:
    """``mot1``/``mot2`` (y, x) of ``source`` (variables or coordinates), checked, in memory."""
    where = "motors=" if given else "the data"
    names = set(getattr(source, "variables", {})) | set(getattr(source, "coords", {}))
    if name not in names:
        raise ConfigError(
            f"regrid: no motor positions: {where} has no '{name}' (y, x); pass motors= "
            "(the raw map, or a Dataset holding mot1 and mot2)"
        )
    motor = source[name]
    if set(motor.dims) != {"y", "x"}:
        raise ConfigError(f"regrid: '{name}' of {where} has dims {motor.dims}; expected (y, x)")
    motor = motor.transpose("y", "x")
    if motor.shape != shape:
        raise ConfigError(
            f"regrid: '{name}' of {where} has shape {motor.shape}; the map is {shape} (y, x)"
        )
    if motor.dtype.kind not in "fiu":
        raise ConfigError(f"regrid: '{name}' of {where} holds {motor.dtype}, not positions")
    values = np.asarray(motor.values, dtype=np.float64)  # eager-ok: motor positions (y, x)
    return xr.DataArray(values, dims=("y", "x"), attrs=dict(motor.attrs))


def _fast_motor(positions: dict[str, xr.DataArray], command: ScanCommand | None) -> str:
    """The motor moving along ``x``: named first in the command (time), else varying along x."""
    if command is not None:
        named = {m: str(positions[m].attrs.get("Name", "")) for m in MOTORS}
        if named["mot2"] == command.motor1 and named["mot1"] != command.motor1:
            return "mot2"
        return "mot1"

    def along_x(values: np.ndarray) -> float:
        # the share of a motor's whole range that it covers within a row: about 1 for the
        # fast motor (sorted or snake rows alike), about 0 for the slow one
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            total = np.nanmax(values) - np.nanmin(values)
            rows = np.nanmean(np.nanmax(values, axis=1) - np.nanmin(values, axis=1))
        share = rows / total if np.isfinite(total) and total > 0 else 0.0
        return float(share) if np.isfinite(share) else 0.0

    return (
        "mot2" if along_x(positions["mot2"].values) > along_x(positions["mot1"].values) else "mot1"
    )


def _out_chunks(obj: xr.Dataset, plan: Plan) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Bands of the output, for every variable: those of the input's largest dask variable
    (per pixel) when the grid has the map's shape; else bands of as many pixels as its first
    block holds (:func:`xrfdask.chunks.bands`). None when nothing is lazy."""
    best = None
    for var in obj.variables.values():  # eager-ok: dict
        if {"y", "x"} <= set(var.dims) and isinstance(var.data, da.Array):
            per_pixel = var.dtype.itemsize * int(
                np.prod([n for d, n in var.sizes.items() if d not in ("y", "x")], dtype=np.int64)
            )
            if best is None or per_pixel > best[0]:
                best = (per_pixel, var)
    if best is None:
        return None
    per_pixel, var = best
    chunks = dict(zip(var.dims, var.chunks, strict=True))
    if plan.shape == (var.sizes["y"], var.sizes["x"]):
        return chunks["y"], chunks["x"]
    pixels = chunks["y"][0] * chunks["x"][0]
    planned = bands((*plan.shape, per_pixel), 1, 0, budget=max(1, pixels * per_pixel))
    return planned[0], planned[1]


def _axis_attrs(obj: xr.Dataset, dim: str, motor: str, positions: xr.DataArray) -> dict:
    attrs = {}
    if dim in obj.coords:
        attrs = {k: v for k, v in obj[dim].attrs.items() if not (k == "units" and v == "pixel")}
    for key in ("units", "unit"):
        if key in positions.attrs and "units" not in attrs:
            attrs["units"] = positions.attrs[key]
    attrs["motor"] = str(positions.attrs.get("Name", motor))
    return attrs


def _regridded(
    obj: xr.Dataset,
    plan: Plan,
    positions: dict[str, xr.DataArray],
    fast: str,
    out_chunks,
    mode: str,
    method: str,
    half_pixel_shift: bool,
    command: ScanCommand | None,
) -> xr.Dataset:
    slow = "mot2" if fast == "mot1" else "mot1"
    ny, nx = plan.shape
    grid = {
        fast: np.ascontiguousarray(np.broadcast_to(plan.x[None, :], (ny, nx))),
        slow: np.ascontiguousarray(np.broadcast_to(plan.y[:, None], (ny, nx))),
    }
    coords: dict[str, Any] = {
        "y": ("y", plan.y, _axis_attrs(obj, "y", slow, positions[slow])),
        "x": ("x", plan.x, _axis_attrs(obj, "x", fast, positions[fast])),
    }
    data_vars: dict[str, Any] = {}
    for name, var in obj.variables.items():
        if name in ("y", "x"):
            continue
        is_coord = name in obj.coords
        target = coords if is_coord else data_vars
        if name in MOTORS:
            source = obj[name]
            target[name] = (("y", "x"), grid[name], dict(source.attrs))
            continue
        dims = set(var.dims)
        if {"y", "x"} <= dims:
            order = ("y", "x", *[d for d in var.dims if d not in ("y", "x")])
            moved = var.transpose(*order)
            values = apply_plan(moved.data, plan, out_chunks)
            target[name] = xr.Variable(order, values, dict(var.attrs)).transpose(*var.dims)
        elif dims & {"y", "x"}:
            if is_coord:
                continue  # a coordinate along one axis of the old grid means nothing on the new one
            raise ConfigError(
                f"regrid: variable '{name}' has dims {var.dims}: only one of y and x; "
                "cannot put it on the grid"
            )
        else:
            target[name] = var
    for name in MOTORS:
        if name not in data_vars and name not in coords:
            data_vars[name] = (("y", "x"), grid[name], dict(positions[name].attrs))
    attrs = dict(obj.attrs)
    fast_name = str(positions[fast].attrs.get("Name", fast))
    attrs.update(
        regridded=True,
        regrid_mode=mode,
        regrid_method=method,
        regrid_half_pixel_shift=bool(half_pixel_shift),
        regrid_fast_motor=fast,
        fast_axis=f"{fast} ({fast_name}) varies along x",
    )
    if command is not None:
        attrs["regrid_cmd"] = command.text
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
