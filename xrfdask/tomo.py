"""Tomographic reconstruction of element maps (xrf_proc's ``tomo_proc``), one task per line.

An XRF tomography scan is a map whose rows are projection angles (the rotation motor, ``mot1``
by default, varies along ``y``) and whose columns are translation positions. The map of each
line is its sinogram; :func:`reconstruct` turns it into a slice ``(ty, tx)`` with filtered
back-projection (or scikit-image's SART), one dask task per (detector, line) and per slice of a
volume, so lines reconstruct in parallel on threads or on cluster workers.

The back-projection is scikit-image's ``iradon`` (same filters, same geometry, same linear
interpolation; the tests check it against ``iradon``) as a compiled kernel that releases the
GIL and takes any rotation centre; ``algorithm="sirt"`` iterates with the same (compiled) projector
and ``algorithm="sart"`` calls ``skimage.transform.iradon_sart``.
scikit-image is an optional extra: ``pip install 'xrfdask[tomo]'``.

Conventions: the centre of rotation is a 0-based column position (pixel centres at integers),
as tomopy reports it and xrf_proc's ``tomo/channelXX/rotation_center`` holds it; a sinogram
whose axis is at column ``c`` gives a slice whose rotation axis is at pixel ``(n // 2, n // 2)``
of the ``n x n`` output, oriented as scikit-image's ``radon`` / ``iradon`` pair (xrf_proc's
tomopy output, which it flips along axis 1, may differ by a flip).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask._jit import jit
from xrfdask.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "FILTERS",
    "Centre",
    "find_centre",
    "reconstruct",
    "sinograms",
    "transmission",
]

#: The reconstruction algorithms of :func:`reconstruct`.
ALGORITHMS = ("fbp", "sirt", "sart")
SIRT_ITERATIONS = 100  # SIRT converges slowly: its default passes (SART's: 10)
#: The filter names of :func:`reconstruct`, scikit-image's and tomopy's spellings (xrf_proc
#: passes ``"shepp"``), with the scikit-image filter each means.
FILTERS = {
    "shepp": "shepp-logan",
    "shepp-logan": "shepp-logan",
    "ramp": "ramp",
    "ramlak": "ramp",
    "cosine": "cosine",
    "hamming": "hamming",
    "hann": "hann",
    "none": None,
}
_VARIABLES = ("normalised", "peak_area", "concentration", "relative_difference")
_MOTORS = ("mot1", "mot2")


def _skimage():
    try:
        import skimage.transform as transform
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "xrfdask.tomo needs scikit-image: pip install 'xrfdask[tomo]' (or scikit-image)"
        ) from None
    return transform


# -- filtered back-projection ---------------------------------------------------------------


def fourier_filter(size: int, name: str | None) -> np.ndarray:
    """The frequency response of a back-projection filter, as scikit-image's ``iradon`` builds
    it: the ramp from its band-limited spatial form (Kak & Slaney, eq. 61), times the window."""
    n = np.concatenate(
        (np.arange(1, size // 2 + 1, 2, dtype=int), np.arange(size // 2 - 1, 0, -2, dtype=int))
    )
    f = np.zeros(size)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * n) ** 2
    response = 2 * np.real(np.fft.fft(f))
    if name == "ramp":
        pass
    elif name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(size)[1:]
        response[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        response *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        response *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        response *= np.fft.fftshift(np.hanning(size))
    elif name is None:
        response[:] = 1
    return response


def _padded(width: int) -> int:
    return max(64, int(2 ** np.ceil(np.log2(2 * width))))


def _filtered(sino: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Each projection (row of ``sino``, angles x positions) filtered along positions."""
    from scipy import fft

    # real(ifft(fft(x) * H)) of a real x only sees H's even part (hann's and hamming's
    # fftshifted windows are not even): that part on the half spectrum, as iradon gives it.
    even = 0.5 * (response + np.roll(response[::-1], 1))
    spectrum = fft.rfft(sino, n=response.size, axis=1)
    return fft.irfft(spectrum * even[: spectrum.shape[1]], n=response.size, axis=1)[
        :, : sino.shape[1]
    ]


@jit(fastmath=True)
def _backproject(filtered, cos, sin, centre, size, square):  # pragma: no cover - compiled
    """Sum over angles of each output pixel's linearly interpolated filtered projection
    (``iradon``'s loop, any centre); ``square``: with squared weights (variances)."""
    out = np.zeros((size, size))
    half = size // 2
    width = filtered.shape[1]
    for a in range(filtered.shape[0]):
        c = cos[a]
        s = sin[a]
        row = filtered[a]
        for i in range(size):
            base = centre - (i - half) * s
            for j in range(size):
                t = base + (j - half) * c
                if t < 0.0 or t > width - 1:
                    continue
                k = int(t)
                if k >= width - 1:
                    k = width - 2
                w = t - k
                if square:
                    out[i, j] += (1.0 - w) * (1.0 - w) * row[k] + w * w * row[k + 1]
                else:
                    out[i, j] += (1.0 - w) * row[k] + w * row[k + 1]
    return out


@jit(fastmath=True)
def _forwardproject(image, cos, sin, centre, width):  # pragma: no cover - compiled
    """The exact adjoint of :func:`_backproject` (unsquared): each pixel's value spread onto
    the two positions its line crosses, with the same linear weights, at every angle."""
    size = image.shape[0]
    out = np.zeros((cos.size, width))
    half = size // 2
    for a in range(cos.size):
        c = cos[a]
        s = sin[a]
        for i in range(size):
            base = centre - (i - half) * s
            for j in range(size):
                t = base + (j - half) * c
                if t < 0.0 or t > width - 1:
                    continue
                k = int(t)
                if k >= width - 1:
                    k = width - 2
                w = t - k
                v = image[i, j]
                out[a, k] += (1.0 - w) * v
                out[a, k + 1] += w * v
    return out


def sirt(
    sino: np.ndarray, angles: np.ndarray, centre: float, iterations: int = SIRT_ITERATIONS
) -> np.ndarray:
    """SIRT of one sinogram about the column ``centre``: ``x += C A^T R (b - A x)``, clipped at 0
    each pass, with ``A`` the linear-interpolation projector of :func:`fbp`'s back-projection,
    ``R`` and ``C`` the inverse row and column sums of ``A`` (compiled, releases the GIL)."""
    b = np.asarray(sino, dtype=np.float64)
    size = b.shape[1]
    theta = np.deg2rad(angles)
    cos, sin, centre = np.cos(theta), np.sin(theta), float(centre)
    rows = _forwardproject(np.ones((size, size)), cos, sin, centre, size)
    cols = _backproject(np.ones_like(b), cos, sin, centre, size, False)
    r = np.divide(1.0, rows, out=np.zeros_like(rows), where=rows > 1e-9)
    c = np.divide(1.0, cols, out=np.zeros_like(cols), where=cols > 1e-9)
    x = np.zeros((size, size))
    for _ in range(iterations):
        residual = r * (b - _forwardproject(x, cos, sin, centre, size))
        x = np.maximum(x + c * _backproject(residual, cos, sin, centre, size, False), 0.0)
    return x


def fbp(
    sino: np.ndarray, angles: np.ndarray, centre: float, filter: str | None = "shepp-logan"
) -> np.ndarray:
    """Filtered back-projection of one sinogram (angles x positions, angles in degrees) about
    the column ``centre``; an ``n x n`` slice, n the number of positions."""
    sino = np.asarray(sino, dtype=np.float64)
    response = fourier_filter(_padded(sino.shape[1]), filter)
    theta = np.deg2rad(angles)
    rec = _backproject(
        np.ascontiguousarray(_filtered(sino, response)),
        np.cos(theta),
        np.sin(theta),
        float(centre),
        sino.shape[1],
        False,
    )
    return rec * (np.pi / (2 * len(angles)))


def fbp_error(
    sigma: np.ndarray, angles: np.ndarray, centre: float, filter: str | None = "shepp-logan"
) -> np.ndarray:
    """The standard deviation of :func:`fbp` of a sinogram whose values have independent errors
    ``sigma``: variances through the squared filter kernel and the squared interpolation weights
    (the correlation the interpolation makes between neighbouring filtered values is neglected)."""
    variance = np.asarray(sigma, dtype=np.float64) ** 2
    size = _padded(variance.shape[1])
    kernel = np.real(np.fft.ifft(fourier_filter(size, filter)))
    response = np.real(np.fft.fft(kernel**2))
    theta = np.deg2rad(angles)
    filtered = np.clip(_filtered(variance, response), 0, None)
    var = _backproject(
        np.ascontiguousarray(filtered),
        np.cos(theta),
        np.sin(theta),
        float(centre),
        variance.shape[1],
        True,
    )
    return np.sqrt(var) * (np.pi / (2 * len(angles)))


def sart(sino: np.ndarray, angles: np.ndarray, centre: float, iterations: int = 10) -> np.ndarray:
    """scikit-image's SART (``iradon_sart``, ``iterations`` passes, non-negative), the sinogram
    shifted so that ``centre`` sits at scikit-image's axis column n // 2."""
    from scipy import ndimage

    transform = _skimage()
    sino = np.asarray(sino, dtype=np.float64)
    n = sino.shape[1]
    shifted = ndimage.shift(sino, (0, n // 2 - centre), order=1, mode="constant")
    radon = np.ascontiguousarray(shifted.T)
    theta = np.asarray(angles, dtype=np.float64)
    image = None
    for _ in range(iterations):
        image = transform.iradon_sart(radon, theta, image=image, clip=(0.0, np.inf))
    return image


# -- the geometry of the scan -----------------------------------------------------------------


@dataclass
class Geometry:
    """Rows kept, angles, and the regridding of each row onto the translation grid."""

    rows: np.ndarray  # indices of the map's rows used
    angles: np.ndarray  # degrees, one per kept row
    left: np.ndarray | None = None  # (rows, positions): left source column, -1 outside the row
    right: np.ndarray | None = None  # (rows, positions): right source column
    weight: np.ndarray | None = None  # (rows, positions): weight of the right column
    positions: int = 0  # translation positions of the sinogram
    step: float = 1.0  # translation step (motor units per pixel)
    notes: dict[str, Any] = field(default_factory=dict)


def _motor(obj, motors, name: str) -> np.ndarray | None:
    for source in (obj, motors):
        if source is None:
            continue
        names = set(getattr(source, "variables", {})) | set(getattr(source, "coords", {}))
        if name in names and set(source[name].dims) == {"y", "x"}:
            values = source[name].transpose("y", "x").values  # eager-ok: motor positions (y, x)
            if values.dtype.kind not in "fiu":
                raise ConfigError(f"tomo: motor '{name}' holds {values.dtype}, not positions")
            return np.asarray(values, dtype=np.float64)
    return None


def geometry(
    obj,
    rotation: str = "mot1",
    *,
    motors=None,
    limit_rotation_range=None,
    translation_shift: float | None = None,
    interp_tr: bool = False,
) -> Geometry:
    """Angles (row means of the rotation motor, degrees) and the translation grid of a scan."""
    if rotation not in _MOTORS:
        raise ConfigError(f"tomo: rotation={rotation!r}; expected 'mot1' or 'mot2'")
    ny, nx = obj.sizes["y"], obj.sizes["x"]
    rot = _motor(obj, motors, rotation)
    if rot is None:
        raise ConfigError(
            f"tomo: no rotation motor '{rotation}' (y, x) in the data; pass motors= (the raw "
            "map, or a Dataset holding mot1 and mot2)"
        )
    if rot.shape != (ny, nx):
        raise ConfigError(f"tomo: '{rotation}' has shape {rot.shape}; the map is {(ny, nx)}")
    if ny < 2:
        raise ConfigError(f"tomo: the map has {ny} row(s); a sinogram needs 2 angles or more")
    angles_all = np.nanmean(rot, axis=1)
    spread_rows = float(np.nanmax(angles_all) - np.nanmin(angles_all))
    spread_cols = float(np.nanmax(np.nanmax(rot, axis=1) - np.nanmin(rot, axis=1)))
    if not spread_rows > 0 or spread_cols > spread_rows:
        other = "mot2" if rotation == "mot1" else "mot1"
        raise ConfigError(
            f"tomo: rotation motor '{rotation}' does not vary along rows (y) (range {spread_rows:g}"
            f" across rows, {spread_cols:g} along a row): rows must be projection angles "
            f"(rotation='{other}'?)"
        )
    rows = np.arange(ny)
    if limit_rotation_range is not None:
        try:
            a, b = (int(v) for v in limit_rotation_range)
        except (TypeError, ValueError):
            raise ConfigError(
                f"tomo: limit_rotation_range={limit_rotation_range!r}; expected (first, stop) rows"
            ) from None
        if not 0 <= a < b <= ny:
            raise ConfigError(
                f"tomo: limit_rotation_range=({a}, {b}) is outside the scan's rows 0..{ny}"
            )
        rows = rows[a:b]
    if rows.size < 2:
        raise ConfigError(f"tomo: {rows.size} angle(s) kept; a sinogram needs 2 or more")
    angles = angles_all[rows]
    if not np.all(np.isfinite(angles)):
        raise ConfigError(f"tomo: rotation motor '{rotation}' has NaN rows")
    geo = Geometry(rows=rows, angles=angles, positions=nx)
    trans = _motor(obj, motors, "mot2" if rotation == "mot1" else "mot1")
    if trans is not None and trans.shape == (ny, nx) and nx > 1:
        step = float(trans[0, 1] - trans[0, 0])
        geo.step = abs(step) or 1.0
    shift = float(translation_shift or 0.0)
    if not shift and not interp_tr:
        return geo
    if trans is None or trans.shape != (ny, nx):
        if interp_tr:
            raise ConfigError("tomo: interp_tr needs the translation motor's positions (y, x)")
        trans = np.broadcast_to(np.arange(nx, dtype=np.float64), (ny, nx))
        step = 1.0
    trans = trans[rows]
    if step == 0:
        raise ConfigError("tomo: the translation motor does not vary along the first row")
    # xrf_proc: row k's positions move by k/(A-1) * shift (pixels here, times the step)
    k = np.arange(rows.size, dtype=np.float64)[:, None]
    positions = trans + k / (rows.size - 1) * shift * step
    if interp_tr:
        lo, hi = np.nanmin(trans), np.nanmax(trans)
        npts = int(np.floor((hi - lo) / abs(step))) + 1
        target = lo + np.arange(npts) * abs(step)
        if step < 0:
            target = target[::-1]
    else:
        target = trans[0]
    geo.left, geo.right, geo.weight = _interp_plan(positions, target)
    geo.positions = target.size
    geo.notes = {"translation_shift": shift, "interp_tr": bool(interp_tr)}
    return geo


def _interp_plan(positions: np.ndarray, target: np.ndarray):
    """Per row, the two source columns and the weight of the right one for linear
    interpolation at each target position (left = -1 outside the row's positions)."""
    rows, n = positions.shape
    left = np.full((rows, target.size), -1, dtype=np.int64)
    right = np.zeros((rows, target.size), dtype=np.int64)
    weight = np.zeros((rows, target.size))
    for r in range(rows):  # one vectorised search per angle (rows, not pixels)
        order = np.argsort(positions[r])
        ps = positions[r][order]
        k = np.clip(np.searchsorted(ps, target, side="right") - 1, 0, n - 2)
        gap = ps[k + 1] - ps[k]
        w = np.clip((target - ps[k]) / np.where(gap > 0, gap, 1.0), 0.0, 1.0)
        inside = (target >= ps[0]) & (target <= ps[-1])
        left[r] = np.where(inside, order[k], -1)
        right[r] = order[k + 1]
        weight[r] = np.where(inside, w, 0.0)
    return left, right, weight


def _regrid_rows(sino: np.ndarray, geo: Geometry, square: bool = False) -> np.ndarray:
    """Rows onto the translation grid; ``square``: variances (squared weights)."""
    inside = geo.left >= 0
    rows = np.arange(sino.shape[0])[:, None]
    a = sino[rows, np.where(inside, geo.left, 0)]
    b = sino[rows, geo.right]
    w = geo.weight
    out = (1 - w) ** 2 * a + w**2 * b if square else (1 - w) * a + w * b
    return np.where(inside, out, 0.0)


# -- sinograms ---------------------------------------------------------------------------------


def _prepare(block: np.ndarray, geo: Geometry, background, square: bool = False) -> np.ndarray:
    """One map (y, x) -> its sinogram: rows kept, NaN and negatives 0 (as tomopy's remove_nan
    and remove_neg), background subtracted, regridded."""
    sino = np.asarray(block, dtype=np.float64)[geo.rows]
    sino = np.where(np.isfinite(sino) & (sino > 0), sino, 0.0)
    if background is not None and not square:
        (r0, r1), (c0, c1) = background
        sino = np.clip(sino - sino[r0:r1, c0:c1].max(), 0, None)
    if geo.left is not None:
        sino = np.sqrt(_regrid_rows(sino**2, geo, True)) if square else _regrid_rows(sino, geo)
    return sino


def _check_background(background, geo: Geometry, nx: int):
    if background is None:
        return None
    try:
        (r0, r1), (c0, c1) = ((int(a), int(b)) for a, b in background)
    except (TypeError, ValueError):
        raise ConfigError(
            f"tomo: background={background!r}; expected ((first_row, stop_row), "
            "(first_column, stop_column))"
        ) from None
    if not (0 <= r0 < r1 <= geo.rows.size and 0 <= c0 < c1 <= nx):
        raise ConfigError(
            f"tomo: background rows {r0}..{r1}, columns {c0}..{c1} are outside the sinogram "
            f"({geo.rows.size} rows, {nx} columns)"
        )
    return (r0, r1), (c0, c1)


def _source(obj) -> tuple[xr.DataArray, xr.DataArray | None, str]:
    """The element maps of a result (or one DataArray) and their errors."""
    if isinstance(obj, xr.DataArray):
        return obj, None, obj.name or "data"
    for name in _VARIABLES:
        if name in obj:
            err = obj.get(f"{name}_error")
            return obj[name], err, name
    raise ConfigError(
        "tomo: no element maps: expected one of "
        + ", ".join(_VARIABLES)
        + " (y, x, detector, line), or pass a DataArray"
    )


def _select_lines(data: xr.DataArray, lines) -> xr.DataArray:
    if lines is None or "line" not in data.dims:
        return data
    wanted = [lines] if isinstance(lines, str) else list(lines)
    known = [str(v) for v in data["line"].values]  # eager-ok: labels
    missing = [w for w in wanted if w not in known]
    if missing:
        raise ConfigError(f"tomo: line(s) {missing} not in the data; it has {known}")
    return data.sel(line=wanted)


def _task_chunks(data: xr.DataArray) -> xr.DataArray:
    """One block per (slice..., detector, line): the whole map of each."""
    extra = [d for d in data.dims if d not in ("y", "x")]
    data = data.transpose(*extra, "y", "x")
    return data.chunk({**{d: 1 for d in extra}, "y": -1, "x": -1})


def sinograms(
    obj,
    rotation: str = "mot1",
    *,
    motors=None,
    lines=None,
    limit_rotation_range=None,
    translation_shift: float | None = None,
    interp_tr: bool = False,
    background=None,
) -> xr.DataArray:
    """The sinograms (..., angle, position) reconstruction uses: lazy, one block per line."""
    data, _, _ = _source(obj)
    data = _select_lines(data, lines)
    geo = geometry(
        obj,
        rotation,
        motors=motors,
        limit_rotation_range=limit_rotation_range,
        translation_shift=translation_shift,
        interp_tr=interp_tr,
    )
    bg = _check_background(background, geo, data.sizes["x"])
    data = _task_chunks(data)
    lead = data.dims[:-2]
    arr = data.data
    out = arr.map_blocks(
        _prepare_block,
        geo,
        bg,
        False,
        chunks=(*arr.chunks[:-2], (geo.rows.size,), (geo.positions,)),
        dtype=np.float64,
    )
    return xr.DataArray(
        out,
        dims=(*lead, "angle", "position"),
        coords={
            **{d: data.coords[d] for d in lead if d in data.coords},
            "angle": ("angle", geo.angles, {"units": "degree"}),
        },
        name="sinogram",
    )


def _prepare_block(block, geo, background, square):
    lead = block.shape[:-2]
    flat = block.reshape(-1, *block.shape[-2:])
    out = np.stack([_prepare(m, geo, background, square) for m in flat])
    return out.reshape(*lead, *out.shape[-2:])


# -- the centre of rotation ------------------------------------------------------------------


@dataclass
class Centre:
    """A centre of rotation found by :func:`find_centre`.

    Attributes
    ----------
    centre : float
        0-based column of the rotation axis in the sinogram (tomopy's convention).
    figure_of_merit : float
        1 - (metric at the centre) / (median metric over the search range): near 0, no clear
        minimum (noise, an object too small or a scan under 180 degrees); a sharp minimum gives
        0.3 and more.
    signal : str
        The line whose sinogram was used.
    method : str
        "vo" (Vo, Atwood and Drakopoulos 2014, Opt. Express 22, 19078: the 0-180 degree
        sinogram and its mirror joined, the energy outside the Fourier double wedge minimised).
    candidates : numpy.ndarray
        The centres tried.
    metric : numpy.ndarray
        Their metric.
    """

    centre: float
    figure_of_merit: float
    signal: str
    method: str = "vo"
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    metric: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def __float__(self) -> float:
        return float(self.centre)


def _wedge_mask(height: int, width: int, radius: float) -> np.ndarray:
    """1 outside the double wedge of the Fourier transform of a sinogram (Vo et al., eq. 3)."""
    du = 1.0 / width
    dv = (height - 1.0) / (height * 2.0 * np.pi)
    yc = int(np.ceil((height - 1) / 2.0))
    xc = int(np.ceil((width - 1) / 2.0))
    num = np.ceil(((np.arange(height) - yc) * dv / radius) / du).astype(int)
    cols = np.arange(width)[None, :]
    mask = (np.abs(cols - xc) <= np.abs(num)[:, None]).astype(np.float64)
    drop = min(20, max(1, int(0.05 * height)))
    mask[max(yc - drop, 0) : yc + drop + 1] = 0.0
    mask[:, max(xc - 1, 0) : xc + 2] = 0.0
    return mask


def _vo_metric(sino: np.ndarray, centres: np.ndarray) -> np.ndarray:
    from scipy import fft, ndimage

    ncol = sino.shape[1]
    flip = sino[:, ::-1]
    comp = sino[::-1]
    mask = _wedge_mask(2 * sino.shape[0], ncol, 0.25 * ncol)
    out = np.empty(centres.size)
    for i, c in enumerate(centres):  # one FFT per candidate centre
        s = 2.0 * (c - (ncol - 1) / 2.0)
        if s == int(s):
            shifted = np.roll(flip, int(s), axis=1)
        else:
            shifted = ndimage.shift(flip, (0, s), order=3, prefilter=True)
        lo, hi = (int(np.ceil(s)), None) if s >= 0 else (None, int(np.floor(s)))
        if s >= 0 and lo:
            shifted[:, :lo] = comp[:, :lo]
        elif s < 0 and hi:
            shifted[:, hi:] = comp[:, hi:]
        mat = np.vstack((sino, shifted))
        out[i] = np.mean(np.abs(fft.fftshift(fft.fft2(mat))) * mask)
    return out


def centre_of(
    sino: np.ndarray, angles: np.ndarray, search: tuple[float, float] | None = None
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Vo's centre of a sinogram (angles x positions): coarse half-pixel search, then 0.05 px."""
    from scipy import ndimage

    ncol = sino.shape[1]
    order = np.argsort(angles)
    angles, sino = angles[order], sino[order]
    span = angles - angles[0]
    step = float(np.median(np.diff(angles))) if angles.size > 1 else 0.0
    half = span < 180.0 - 0.5 * abs(step)
    if span[-1] + abs(step) < 180.0 - 1.5 * abs(step):
        raise ConfigError(
            f"tomo: find_centre needs 180 degrees of rotation; the scan covers {span[-1]:g}: "
            "pass centre="
        )
    sino = ndimage.gaussian_filter(sino[half], (2, 0.7))  # as Vo's denoising
    lo, hi = search if search is not None else (ncol / 4.0, 3 * ncol / 4.0 - 1)
    coarse = np.arange(np.floor(lo * 2) / 2, hi + 0.25, 0.5)
    metric = _vo_metric(sino, coarse)
    best = coarse[int(np.argmin(metric))]
    fine = np.arange(best - 0.5, best + 0.5 + 1e-9, 0.05)
    fine_metric = _vo_metric(sino, fine)
    centre = float(fine[int(np.argmin(fine_metric))])
    merit = float(1.0 - metric.min() / np.median(metric)) if metric.size > 2 else 0.0
    return centre, merit, coarse, metric


def _signal_map(data: xr.DataArray, signal: str | None) -> tuple[xr.DataArray, str]:
    """The (y, x) map of the centre's signal: the line asked for, else the one with the most
    counts; summed over detectors (and over slices: the same axis)."""
    if "line" in data.dims:
        if signal is None:
            totals = data.where(data > 0).sum([d for d in data.dims if d != "line"])
            totals = np.asarray(totals.values)  # eager-ok: one number per line
            signal = str(data["line"].values[int(np.nanargmax(totals))])  # eager-ok: labels
        else:
            known = [str(v) for v in data["line"].values]  # eager-ok: labels
            wanted = signal.replace("-", " ") if signal not in known else signal
            if wanted not in known:
                raise ConfigError(f"tomo: signal {signal!r} is not a line of the data ({known})")
            signal = wanted
        data = data.sel(line=signal)
    other = [d for d in data.dims if d not in ("y", "x")]
    data = data.where(np.isfinite(data) & (data > 0), 0).sum(other)
    return data, signal or str(data.name)


def find_centre(
    obj,
    signal: str | None = None,
    rotation: str = "mot1",
    *,
    motors=None,
    limit_rotation_range=None,
    translation_shift: float | None = None,
    interp_tr: bool = False,
    background=None,
    centre_range: tuple[float, float, float] | None = None,
    output: str | os.PathLike | None = None,
    algorithm: str = "fbp",
    filter: str | None = "shepp",
) -> Centre:
    """The centre of rotation of a tomography scan, from one line's sinogram.

    Parameters
    ----------
    obj : xarray.Dataset or DataArray
        A normalised (or fit) result, or element maps (y, x[, detector][, line]).
    signal : str, optional
        The line ("Sr K"; xrf_proc's "Sr-K" works too); by default the line with the most
        counts, summed over detectors.
    rotation, motors, limit_rotation_range, translation_shift, interp_tr, background
        As :func:`reconstruct`.
    centre_range : (start, stop, step), optional
        Search only there and, with ``output``, write a trial reconstruction for each centre
        (xrf_proc's ``find_cor``): ``<output>/<centre>.tiff`` (float32).

    Returns
    -------
    Centre
        ``centre`` (0-based column) and its ``figure_of_merit``.
    """
    data, _, _ = _source(obj)
    sig, name = _signal_map(data, signal)
    geo = geometry(
        obj,
        rotation,
        motors=motors,
        limit_rotation_range=limit_rotation_range,
        translation_shift=translation_shift,
        interp_tr=interp_tr,
    )
    bg = _check_background(background, geo, data.sizes["x"])
    values = sig.transpose("y", "x").values  # eager-ok: one (y, x) map, the centre's signal
    sino = _prepare(values, geo, bg)
    search = None
    if centre_range is not None:
        start, stop, step = (float(v) for v in centre_range)
        if not (0 <= start < stop <= geo.positions - 1 and step > 0):
            raise ConfigError(
                f"tomo: centre_range=({start:g}, {stop:g}, {step:g}) is outside the sinogram's "
                f"columns 0..{geo.positions - 1}"
            )
        search = (start, stop)
    centre, merit, cands, metric = centre_of(sino, geo.angles, search)
    if centre_range is not None and output is not None:
        import tifffile

        os.makedirs(output, exist_ok=True)
        for c in np.arange(start, stop + step / 2, step):
            rec = _reconstruct_one(sino, geo.angles, c, algorithm, FILTERS[_filter(filter)], 10)
            tifffile.imwrite(os.path.join(output, f"{c:08.3f}.tiff"), rec.astype(np.float32))
    return Centre(centre, merit, name, "vo", cands, metric)


# -- reconstruction -------------------------------------------------------------------------


def _filter(name: str | None) -> str:
    key = "none" if name is None else str(name).lower()
    if key not in FILTERS:
        raise ConfigError(f"tomo: filter={name!r}; expected one of {sorted(FILTERS)}")
    return key


def _reconstruct_one(sino, angles, centre, algorithm, filt, iterations):
    if algorithm == "fbp":
        return fbp(sino, angles, centre, filt)
    if algorithm == "sirt":
        return sirt(sino, angles, centre, iterations)
    return sart(sino, angles, centre, iterations)


def _recon_block(block, geo, background, centre, algorithm, filt, iterations, is_error):
    lead = block.shape[:-2]
    flat = block.reshape(-1, *block.shape[-2:])
    n = geo.positions
    out = np.empty((flat.shape[0], n, n))
    for i, m in enumerate(flat):  # the lines of one block (one, as chunked here)
        sino = _prepare(m, geo, background, square=is_error)
        if is_error and algorithm == "fbp":
            out[i] = fbp_error(sino, geo.angles, centre, filt)
        else:
            out[i] = _reconstruct_one(sino, geo.angles, centre, algorithm, filt, iterations)
    out[~np.isfinite(out)] = 0.0
    return out.reshape(*lead, n, n)


def _lazy_recon(data, geo, bg, centre, algorithm, filt, iterations, is_error) -> da.Array:
    arr = data.data
    n = geo.positions
    return arr.map_blocks(
        _recon_block,
        geo,
        bg,
        centre,
        algorithm,
        filt,
        iterations,
        is_error,
        chunks=(*arr.chunks[:-2], (n,), (n,)),
        dtype=np.float64,
        token=f"tomo-{'error' if is_error else 'recon'}-{algorithm}",
    )


def reconstruct(
    obj,
    rotation: str = "mot1",
    centre: float | None = None,
    algorithm: str = "fbp",
    filter: str | None = "shepp",
    lines=None,
    errors: bool = True,
    *,
    motors=None,
    signal: str | None = None,
    limit_rotation_range=None,
    translation_shift: float | None = None,
    interp_tr: bool = False,
    background=None,
    regrid: str | None = None,
    iterations: int | None = None,
    transmission: bool | None = None,
) -> xr.Dataset:
    """Reconstruct the element maps of an XRF tomography scan, lazily, one task per line.

    Parameters
    ----------
    obj : xarray.Dataset or DataArray
        A normalised result (``normalised``, ``normalised_error``), a fit (``peak_area``), or
        element maps (y, x[, detector][, line][, slice...]); rows (``y``) are projection angles.
        Extra dimensions (a ``slice`` of a stack of 2-D scans) reconstruct slice by slice.
    rotation : {"mot1", "mot2"}
        The motor holding the angles in degrees (varying along rows); the other is translation.
        Taken from ``obj`` or ``motors``.
    centre : float, optional
        Centre of rotation, a 0-based column; by default :func:`find_centre` on ``signal``.
    algorithm : {"fbp", "sirt", "sart"}
        Filtered back-projection (scikit-image's ``iradon``, compiled), SIRT (compiled, the same
        projector; ``iterations`` passes, default 100, non-negative) or scikit-image's SART
        (``iterations`` passes, default 10, non-negative).
    filter : str
        FBP filter: "shepp" (xrf_proc's, Shepp-Logan), "ramp" ("ramlak"), "cosine", "hamming",
        "hann", None.
    lines : str or list of str, optional
        Lines to reconstruct (default all).
    errors : bool
        Also the uncertainty (``tomogram_error``) when ``obj`` has errors: for FBP propagated
        (independent errors through the squared filter and interpolation weights), for SART the
        error maps reconstructed with the same settings (as xrf_proc does).
    motors : xarray.Dataset, optional
        Where ``mot1``/``mot2`` (y, x) (and ``I0``/``I1``) are when ``obj`` lacks them: the raw
        map.
    signal : str, optional
        The line the centre is found on (default: the one with the most counts).
    limit_rotation_range : (first, stop), optional
        Rows (angles) kept, ``first..stop-1`` (xrf_proc's ``limit_rotrange``).
    translation_shift : float, optional
        Drift across the scan, in translation pixels: row k's positions move by
        ``k / (angles - 1) * translation_shift`` pixels, then each row is regridded (linearly)
        onto the first row's positions (xrf_proc's ``transshift``).
    interp_tr : bool
        Regrid each row onto a uniform translation grid (step of the first row).
    background : ((first_row, stop_row), (first_column, stop_column)), optional
        A sample-free region of the sinogram: its maximum is subtracted from each line (and the
        result clipped at 0), which xrf_proc computes and then discards.
    regrid : {"snake", "time"}, optional
        ``xd.regrid(obj, mode=regrid, motors=motors)`` first, for snake or continuous scans.
    transmission : bool, optional
        Also reconstruct the transmission (``I1``/``I0``) with the same centre; by default when
        ``obj`` or ``motors`` has ``I0`` and ``I1``.

    Returns
    -------
    xarray.Dataset
        ``tomogram`` ([slice...,] detector, line, ty, tx), ``tomogram_error`` (with errors),
        ``rotation_center`` (detector) and, for transmission, ``transmission`` (ty, tx) and
        ``transmission_rotation_center``; ``xd.to_h5`` writes it as ``tomo/channelXX/{ims,
        ims_stddev, rotation_center, names}`` and ``tomo/I1/``.
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"tomo: algorithm={algorithm!r}; expected one of {ALGORITHMS}")
    if iterations is None:
        iterations = SIRT_ITERATIONS if algorithm == "sirt" else 10
    filt = FILTERS[_filter(filter)]
    if algorithm == "sart":
        _skimage()
    if regrid is not None:
        from xrfdask.regrid import regrid as _regrid

        obj = _regrid(obj, mode=regrid, motors=motors)
    data, err, name = _source(obj)
    data = _select_lines(data, lines)
    options = dict(
        motors=motors,
        limit_rotation_range=limit_rotation_range,
        translation_shift=translation_shift,
        interp_tr=interp_tr,
    )
    geo = geometry(obj, rotation, **options)
    bg = _check_background(background, geo, data.sizes["x"])
    found = None
    if centre is None:
        found = find_centre(obj, signal, rotation, background=background, **options)
        centre = found.centre
    centre = float(centre)
    if not 0 <= centre <= geo.positions - 1:
        raise ConfigError(
            f"tomo: centre={centre:g} is outside the sinogram's columns 0..{geo.positions - 1}"
        )
    if not (isinstance(iterations, int | np.integer) and iterations >= 1):
        raise ConfigError(f"tomo: iterations={iterations!r}; expected a positive integer")
    chunked = _task_chunks(data)
    lead = chunked.dims[:-2]
    n = geo.positions
    coords: dict[str, Any] = {d: chunked.coords[d] for d in lead if d in chunked.coords}
    coords["ty"] = ("ty", np.arange(n), {"units": "pixel", "pixel_size": geo.step})
    coords["tx"] = ("tx", np.arange(n), {"units": "pixel", "pixel_size": geo.step})
    rec_args = (geo, bg, centre, algorithm, filt, iterations)
    variables: dict[str, Any] = {
        "tomogram": (
            (*lead, "ty", "tx"),
            _lazy_recon(chunked, *rec_args, False),
            {"long_name": f"reconstructed {name}", "source": name},
        )
    }
    if errors and err is not None:
        err = _task_chunks(_select_lines(err, lines)).transpose(*lead, "y", "x")
        variables["tomogram_error"] = (
            (*lead, "ty", "tx"),
            _lazy_recon(err, *rec_args, True),
            {"long_name": f"uncertainty of the reconstructed {name}"},
        )
    detectors = chunked.sizes.get("detector")
    variables["rotation_center"] = (
        ("detector",) if detectors else (),
        np.full(detectors, centre) if detectors else np.float64(centre),
        {"units": "pixel", "convention": "0-based column of the sinogram (tomopy's)"},
    )
    attrs = {
        "algorithm": algorithm,
        "filter": str(filt),
        "rotation": rotation,
        "angles": json.dumps([round(float(a), 6) for a in geo.angles]),
        "source_variable": name,
        **({"iterations": iterations} if algorithm in ("sart", "sirt") else {}),
        **geo.notes,
    }
    if background is not None:
        attrs["background"] = json.dumps(bg)
    if found is not None:
        attrs.update(
            centre_method=found.method,
            centre_signal=found.signal,
            centre_figure_of_merit=found.figure_of_merit,
        )
    ds = xr.Dataset(variables, coords=coords, attrs=attrs)
    if transmission is None:
        transmission = _has_counters(obj) or _has_counters(motors)
    if transmission:
        counters = obj if _has_counters(obj) else motors
        if not _has_counters(counters):
            raise ConfigError("tomo: transmission needs I0 and I1 (y, x) in obj or motors=")
        t = _transmission_map(counters)
        ds["transmission"] = (("ty", "tx"), _lazy_recon(t, *rec_args, False))
        ds["transmission"].attrs = {"long_name": "reconstructed -log(I1/I0), mode-normalised"}
        ds["transmission_rotation_center"] = ((), np.float64(centre), {"units": "pixel"})
    return ds


# -- transmission ---------------------------------------------------------------------------


def _has_counters(obj) -> bool:
    return obj is not None and all(
        k in getattr(obj, "variables", {}) and set(obj[k].dims) == {"y", "x"} for k in ("I0", "I1")
    )


def _absorbance(i1: np.ndarray, i0: np.ndarray) -> np.ndarray:
    """xrf_proc's h5_i1tomo_recon: I0 <= 0 -> median(I0); T = I1/I0 (NaN, negative -> 0),
    clipped at and divided by the mode of its histogram (1000 bins, the bin's left edge); -log,
    NaN and negatives -> 0, inf -> 1."""
    i0 = np.asarray(i0, dtype=np.float64)
    i1 = np.asarray(i1, dtype=np.float64)
    good = np.isfinite(i0) & (i0 > 0)
    i0 = np.where(good, i0, np.median(i0[good]) if good.any() else 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = i1 / i0
    t = np.where(np.isfinite(t) & (t > 0), t, 0.0)
    counts, edges = np.histogram(t, bins=1000)
    mode = edges[int(np.argmax(counts))]
    if mode <= 0:
        mode = float(np.median(t[t > 0])) if (t > 0).any() else 1.0
    t = np.minimum(t, mode) / mode
    with np.errstate(divide="ignore", invalid="ignore"):
        a = -np.log(t)
    a = np.where(np.isinf(a), 1.0, a)
    return np.where(np.isfinite(a) & (a > 0), a, 0.0)


def _transmission_map(counters) -> xr.DataArray:
    i1 = counters["I1"].transpose("y", "x").data
    i0 = counters["I0"].transpose("y", "x").data
    i1 = da.asarray(i1).rechunk(-1)
    i0 = da.asarray(i0).rechunk(-1)
    a = da.map_blocks(_absorbance, i1, i0, dtype=np.float64)
    return xr.DataArray(a, dims=("y", "x"), name="transmission")


def transmission(
    raw,
    centre: float | None = None,
    rotation: str = "mot1",
    *,
    filter: str | None = "shepp",
    limit_rotation_range=None,
    translation_shift: float | None = None,
    interp_tr: bool = False,
) -> xr.Dataset:
    """Transmission tomography from ``I1``/``I0`` of a raw map (xrf_proc's h5_i1tomo_recon):
    the absorbance ``-log(T / mode(T))`` reconstructed by FBP; the centre found on it when not
    given. Returns ``transmission`` (ty, tx) and ``transmission_rotation_center``."""
    if not _has_counters(raw):
        raise ConfigError("tomo: transmission needs I0 and I1 (y, x) in the raw map")
    absorbance = _transmission_map(raw)
    holder = xr.Dataset({"normalised": absorbance}, coords=dict(raw.coords))
    for m in _MOTORS:
        if m in raw.variables:
            holder[m] = raw[m]
    rec = reconstruct(
        holder,
        rotation,
        centre,
        "fbp",
        filter,
        errors=False,
        limit_rotation_range=limit_rotation_range,
        translation_shift=translation_shift,
        interp_tr=interp_tr,
        transmission=False,
    )
    out = xr.Dataset(
        {
            "transmission": rec["tomogram"].assign_attrs(
                long_name="reconstructed -log(I1/I0), mode-normalised"
            ),
            "transmission_rotation_center": ((), float(rec["rotation_center"])),
        },
        attrs=rec.attrs,
    )
    return out
