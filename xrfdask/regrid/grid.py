"""Where the pixels were and where they go: the regular grid and the interpolation plan.

Everything here works on the motor positions only (small (y, x) arrays, numpy): the plan says,
for every pixel of the regular grid, which source pixels it takes and with which weights. It is
computed once and then applied to every variable, channel and line (:mod:`.gather`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrfdask.errors import ConfigError
from xrfdask.regrid.command import ScanCommand

__all__ = ["Plan", "interpolation", "snake_positions", "time_positions"]


@dataclass(frozen=True, eq=False)
class Plan:
    """Which source pixels each grid pixel takes, and how.

    Attributes
    ----------
    x, y : ndarray
        The grid's column positions (fast motor) and row positions (slow motor).
    index : ndarray of int64, shape (ny, nx, k)
        Flat source pixels (``row * ncols + col`` of the input map): k = 1 (nearest) or 3
        (the vertices of the Delaunay triangle holding the grid point, linear).
    weights : ndarray of float64, shape (ny, nx, 3), or None
        Barycentric weights (linear); NaN outside the convex hull of the positions.
    method : str
        ``"nearest"`` or ``"linear"``.
    """

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray
    weights: np.ndarray | None
    method: str

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        return self.y.size, self.x.size

    @property
    def inside(self) -> np.ndarray:
        """(ny, nx) bool: grid pixels with a value (all of them for nearest)."""
        if self.weights is None:
            return np.ones(self.shape, dtype=bool)
        return np.isfinite(self.weights[..., 0])


def _axis(first: float, last: float, n: int) -> np.ndarray:
    """``n`` positions from ``first`` to ``last`` as xrf_proc makes them (``np.mgrid`` with a
    complex step), so that nearest-neighbour ties fall the same way."""
    return np.mgrid[first : last : complex(n)]


def snake_positions(
    fast: np.ndarray, slow: np.ndarray, half_pixel_shift: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifted fast-motor positions and the regular grid of a position-triggered snake (spec 4.5).

    Parameters
    ----------
    fast, slow : ndarray (rows, columns)
        Positions of the motor moving along the rows (``x``) and of the one stepping down the
        columns (``y``). Not modified.
    half_pixel_shift : bool
        Move each row by half its step: +step/2 when its first position is at or below the middle
        of the range of first positions (a forward row), -step/2 otherwise (a backward row).

    Returns
    -------
    positions : ndarray (rows, columns)
        The fast motor's positions after the shift (a new array).
    x, y : ndarray
        The grid: as many columns from the first to the last column mean of ``positions``, and
        as many rows from the first to the last row mean of ``slow``.

    Notes
    -----
    xrf_proc takes the column means as they are, which assumes rows sorted in one direction;
    on rows left in acquisition order (every other one reversed) they all fall near the centre.
    Here rows running against the first row are reversed for the means only: for maps whose
    rows all run one way (sorted ones) the grid is xrf_proc's, value for value.
    """
    positions = np.array(fast, dtype=np.float64, copy=True)
    ncols = positions.shape[1]
    if half_pixel_shift:
        if ncols < 2:
            raise ConfigError(
                "regrid(mode='snake'): the half-pixel shift needs at least 2 columns per row; "
                "pass half_pixel_shift=False"
            )
        first = positions[:, 0].copy()
        middle = np.average((np.nanmax(first), np.nanmin(first)))
        half = np.abs(positions[:, 1] - positions[:, 0]) / 2.0
        forward = first <= middle
        positions[forward] += half[forward, None]
        positions[~forward] -= half[~forward, None]
    direction = np.sign(positions[:, -1] - positions[:, 0])
    moving = direction[np.isfinite(direction) & (direction != 0)]
    against = (direction == -moving[0]) if moving.size else np.zeros(direction.shape, bool)
    oriented = positions
    if against.any():
        oriented = positions.copy()
        oriented[against] = oriented[against, ::-1]
    columns = _mean(oriented, axis=0)
    rows = _mean(np.asarray(slow, dtype=np.float64), axis=1)
    return positions, _axis(columns[0], columns[-1], ncols), _axis(rows[0], rows[-1], rows.size)


def time_positions(
    fast: np.ndarray, slow: np.ndarray, command: ScanCommand, half_pixel_shift: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifted fast-motor positions and the command's grid of a time-triggered scan (spec 4.6).

    Parameters
    ----------
    fast, slow : ndarray (rows, columns)
        Positions of the command's first and second motor, in acquisition order along each row
        (a 1-D scan is one row). Not modified.
    command : ScanCommand
        The mesh: ``n1`` columns from ``start1`` to ``end1``, ``n2`` rows from ``start2`` to
        ``end2``. A relative mesh (``dmesh``, ``cdmesh``) is moved so that its first point is the
        first measured position (after the shift, as xrf_proc does).
    half_pixel_shift : bool
        Move every position but the last of each row halfway towards the next one.

    Returns
    -------
    positions : ndarray (rows, columns)
        The fast motor's positions after the shift (a new array).
    x, y : ndarray
        The grid's column and row positions.
    """
    positions = np.array(fast, dtype=np.float64, copy=True)
    slow = np.asarray(slow, dtype=np.float64)
    if half_pixel_shift and positions.shape[1] > 1:
        positions[:, :-1] = positions[:, :-1] + np.diff(positions, axis=1) / 2.0
    columns, rows = command.axes()
    if command.relative:
        columns = columns - (columns[0] - positions[0, 0])
        rows = rows - (rows[0] - slow[0, 0])
    return (
        positions,
        _axis(columns[0], columns[-1], command.n1),
        _axis(rows[0], rows[-1], command.n2),
    )


def _mean(values: np.ndarray, axis: int) -> np.ndarray:
    # np.average as xrf_proc; the NaN-aware mean only where positions are missing
    if np.isfinite(values).all():
        return np.average(values, axis=axis)
    with np.errstate(all="ignore"):
        out = np.nanmean(values, axis=axis) if np.isfinite(values).any(axis=axis).all() else None
    if out is None:
        raise ConfigError("regrid: a whole row or column of motor positions is NaN")
    return out


def interpolation(
    positions: np.ndarray, slow: np.ndarray, x: np.ndarray, y: np.ndarray, method: str
) -> Plan:
    """The plan taking the pixels at (``positions``, ``slow``) onto the grid ``x`` by ``y``.

    ``"nearest"``: the index of the nearest position, found with the k-d tree scipy's
    ``griddata(points, values, grid, method="nearest")`` builds (``NearestNDInterpolator``), on
    the same points in the same order, so every value and every tie is the same.
    ``"linear"``: barycentric weights in the Delaunay triangulation of the positions (NaN outside
    their convex hull), as ``griddata(..., method="linear")``. Positions that are not finite
    (a motor that did not report) take no part.
    """
    from scipy.interpolate import NearestNDInterpolator
    from scipy.spatial import Delaunay, QhullError

    px = np.asarray(positions, dtype=np.float64).ravel()
    py = np.asarray(slow, dtype=np.float64).ravel()
    finite = np.isfinite(px) & np.isfinite(py)
    source = None
    if not finite.all():
        source = np.flatnonzero(finite)
        px, py = px[finite], py[finite]
    if px.size == 0:
        raise ConfigError("regrid: no finite motor positions")
    gx, gy = np.meshgrid(x, y)
    query = np.column_stack((gx.ravel(), gy.ravel()))
    if method == "nearest":
        tree = NearestNDInterpolator((px, py), np.zeros(px.size)).tree
        _, index = tree.query(query)
        index = np.asarray(index, dtype=np.int64)[:, None]
        weights = None
    else:
        try:
            tri = Delaunay(np.column_stack((px, py)))
        except QhullError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"regrid(method='linear'): the motor positions cannot be triangulated "
                f"(all on one line?): {first}"
            ) from None
        simplex = tri.find_simplex(query)
        inside = simplex >= 0
        simplex = np.where(inside, simplex, 0)
        transform = tri.transform[simplex]
        bary = np.einsum("nij,nj->ni", transform[:, :2, :], query - transform[:, 2, :])
        weights = np.column_stack((bary, 1.0 - bary.sum(axis=1)))
        weights[~inside] = np.nan
        index = tri.simplices[simplex].astype(np.int64)
        weights = weights.reshape(y.size, x.size, 3)
    if source is not None:
        index = source[index]
    return Plan(
        x=np.asarray(x, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        index=index.reshape(y.size, x.size, -1),
        weights=weights,
        method=method,
    )
