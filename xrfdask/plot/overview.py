"""xrf_proc's collated overview of element maps (``hdf_overview_images``, spec 8.1 and 8.5).

One panel per line with the line as title, its colour bar titled as xrf_proc titles it
(``Int.`` / ``log. Int.`` / ``sqrt. Int.`` over ``[cts]``) and a scale bar in µm above it; one
figure per detector, saved as ``<stem>[_log][_sqrt]_ch<i>_<group>_overview.png``.

Unlike the original: ``clim`` is applied (fractions of each image's range; xrf_proc silently
ignores it), ``log`` never makes -inf (values <= 0 are shown as the image's smallest positive
value), NaN (masked pixels) stays blank instead of becoming 0, and the scale bar's pixel size
comes from the map's own coordinates unless ``pixel_size`` is given. Only the (y, x, line) maps
drawn are computed, all detectors in one pass; the figure is a plain
:class:`matplotlib.figure.Figure` (no pyplot) laid out in inches, so its PNG has exactly
``figsize x dpi`` pixels.

The helpers here (:func:`main_variable`, :func:`select_maps`, :func:`pixel_size_um`,
:func:`colour_limits`) are shared by the correlation and RGB plots.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.model import ELEMENT_VARIABLES

__all__ = [
    "overview",
    "main_variable",
    "select_maps",
    "pixel_size_um",
    "colour_limits",
    "nice_length",
    "GROUPS",
]

#: The element-map variable of each result and the layout group xrf_proc names its files by.
GROUPS = dict(zip(ELEMENT_VARIABLES, ("quant", "norm", "fit", "rel_dif"), strict=True))
_UM = {"mm": 1e3, "um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "m": 1e6,
       "cm": 1e4}  # fmt: skip

# Spec 8.3-8.5: font sizes of a collated plot (halved), geometry in inches.
_TITLE_SIZE, _SCALE_SIZE, _CB_SIZE = 10, 8, 7
_PAD, _WS_VER, _WS_HOR = 0.05, 0.35, 0.6
_MAX_IMAGES_WIDTH = 24.0  # inches of images per row at most (very wide maps are scaled down)


def main_variable(result: xr.Dataset | xr.DataArray, variable: str | None = None) -> str:
    """The element-map variable to draw: ``variable``, else the result's main one
    (``concentration``, ``normalised``, ``peak_area`` or ``relative_difference``)."""
    if isinstance(result, xr.DataArray):
        return str(result.name or "maps")
    if variable is not None:
        if variable not in result:
            raise ValueError(f"no variable {variable!r} in the result ({', '.join(result)})")
        return variable
    found = next((v for v in ELEMENT_VARIABLES if v in result), None)
    if found is None:
        raise ValueError(
            f"no element maps ({', '.join(ELEMENT_VARIABLES)}) in the result; pass variable="
        )
    return found


def _detector_labels(maps: xr.DataArray) -> list[Any]:
    if "detector" not in maps.coords:
        return list(range(maps.sizes["detector"]))
    return list(maps["detector"].values)  # eager-ok: labels


def select_maps(
    result: xr.Dataset | xr.DataArray,
    variable: str | None = None,
    detector: Any = None,
    lines: Sequence[str] | None = None,
    *,
    all_detectors: bool = True,
) -> xr.DataArray:
    """The lazy (detector, line, y, x) maps to draw.

    ``detector``: None gives every detector (``all_detectors``) or the first; ``"sum"`` the
    detector sum (labelled ``"sum"``); a label, or a position when no label matches.
    ``lines``: names, in the order to draw; default all.
    """
    name = main_variable(result, variable)
    maps = result if isinstance(result, xr.DataArray) else result[name]
    missing = {"y", "x", "line"} - set(maps.dims)
    if missing:
        raise ValueError(f"{name}: expected (y, x[, detector], line) maps, got dims {maps.dims}")
    if "detector" not in maps.dims:
        maps = maps.expand_dims(detector=[0])
    labels = _detector_labels(maps)
    if isinstance(detector, str) and detector == "sum" and "sum" not in labels:
        maps = maps.sum("detector", min_count=1).expand_dims(detector=["sum"])
    elif detector is not None:
        if any(_same(detector, v) for v in labels):
            maps = maps.sel(detector=[next(v for v in labels if _same(detector, v))])
        elif isinstance(detector, int | np.integer) and -len(labels) <= detector < len(labels):
            maps = maps.isel(detector=[int(detector)])
        else:
            raise ValueError(f"detector={detector!r}: the result has detectors {labels}")
    elif not all_detectors:
        maps = maps.isel(detector=[0])
    if lines is not None:
        lines = [str(v) for v in ([lines] if isinstance(lines, str) else lines)]
        known = [str(v) for v in maps["line"].values]  # eager-ok: labels
        unknown = [v for v in lines if v not in known]
        if unknown:
            raise ValueError(f"lines {unknown} are not in the result (it has {known})")
        maps = maps.sel(line=lines)
    return maps.transpose("detector", "line", "y", "x")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is not bool
    except (TypeError, ValueError):
        return False


def channel_tag(maps: xr.DataArray, label: Any) -> str:
    """xrf_proc's ``ch<i>`` of a detector: its position in ``maps`` (``sum`` for the sum)."""
    labels = _detector_labels(maps) if "detector" in maps.dims else [0]
    position = next((k for k, v in enumerate(labels) if _same(label, v)), None)
    return "sum" if position is None else f"ch{position}"


def pixel_size_um(maps: xr.Dataset | xr.DataArray, dim: str) -> float | None:
    """The pitch (µm) of coordinate ``dim`` from its values and ``units`` (mm for GeoPIXE
    maps); None when the units are not a length (``"pixel"``, a motor without units)."""
    if dim not in maps.coords or maps.sizes.get(dim, 0) < 2:
        return None
    units = str(maps[dim].attrs.get("units", "")).strip()
    factor = _UM.get(units) or _UM.get(units.lower())
    if factor is None:
        return None
    values = np.asarray(maps[dim].values, dtype=float)  # eager-ok: a coordinate
    step = np.nanmedian(np.abs(np.diff(values)))
    return float(step * factor) if np.isfinite(step) and step > 0 else None


def nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``target`` (a scale bar's round length)."""
    if not target > 0:
        raise ValueError(f"scale bar length {target!r}: expected a positive length")
    power = 10.0 ** math.floor(math.log10(target))
    return max(m for m in (1.0, 2.0, 5.0, 10.0) if m * power <= target * (1 + 1e-9)) * power


def colour_limits(
    image: np.ndarray, clim: Sequence[float] | None = None
) -> tuple[float, float, str]:
    """(lo, hi, extend) of an image: its finite range, or with ``clim = (a, b)`` the fractions
    lo = min + a (max - min), hi = min + b (max - min) (spec 8.1.7); ``extend`` says which end
    the limits cut (for the colour bar)."""
    finite = image[np.isfinite(image)]
    mn, mx = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if clim is None:
        return mn, mx, "neither"
    a, b = (float(v) for v in clim)
    if not a < b:
        raise ValueError(f"clim={tuple(clim)!r}: expected (lo, hi) fractions with lo < hi")
    lo, hi = mn + a * (mx - mn), mn + b * (mx - mn)
    cut_lo, cut_hi = lo > mn, hi < mx
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (cut_lo, cut_hi), "neither"
    )
    return lo, hi, extend


def _transform(image: np.ndarray, *, log: bool, sqrt: bool, rotate: int, flip: bool):
    """Negative -> 0, rotation (counter-clockwise quarter turns) and flip, log10 or sqrt."""
    image = np.asarray(image, dtype=np.float64)
    image = np.where(image < 0, 0.0, image)  # NaN stays NaN (masked pixels)
    k = round(rotate / 90) % 4
    if k:
        image = np.rot90(image, k)
    if flip:
        image = image[::-1]
    if log:
        positive = image[image > 0]
        floor = positive.min() if positive.size else 1.0
        image = np.log10(np.where(image > 0, image, floor))  # no -inf: <= 0 shown as the floor
    elif sqrt:
        image = np.sqrt(image)
    return image


def _is_folder(path: str) -> bool:
    return os.path.isdir(path) or path.endswith((os.sep, "/"))


def output_stem(result: xr.Dataset | xr.DataArray, path: str | os.PathLike) -> str:
    """``path`` as a file stem: a folder gets the stem of the result's source file (or
    ``map``); a ``.png`` suffix is dropped."""
    path = os.fspath(path)
    if _is_folder(path):
        source = result.attrs.get("source_path") or result.encoding.get("source") or "map"
        return os.path.join(path, os.path.splitext(os.path.basename(str(source)))[0] or "map")
    return path[:-4] if path.lower().endswith(".png") else path


def save_png(fig, path: str, dpi: int) -> str:
    """Write ``fig`` as a PNG under a temporary name, then rename it (folder made if needed)."""
    from xrfdask.io.atomic import atomic_output

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def overview(
    result: xr.Dataset | xr.DataArray,
    path: str | os.PathLike | None = None,
    *,
    variable: str | None = None,
    detector: Any = None,
    lines: Sequence[str] | None = None,
    ncols: int = 4,
    pixel_size: float | None = None,
    scale_bar: float | None = None,
    log: bool = False,
    sqrt: bool = False,
    clim: Sequence[float] | None = None,
    rotate: float = 0,
    flip: bool = False,
    cmap: str = "viridis",
    dpi: int = 150,
):
    """xrf_proc's collated overview of element maps, one figure per detector.

    Parameters
    ----------
    result : Dataset or DataArray
        A fit, normalise, quantify or ``div_by_cnc`` result (lazy or not), or (y, x[, detector],
        line) maps. Only the maps drawn are computed (all detectors in one pass).
    path : str or path-like, optional
        A folder (existing, or ending with ``/``) or a file stem. Each detector's figure is
        saved as ``<stem>[_log][_sqrt]_ch<i>_<group>_overview.png`` (xrf_proc's names; ``<i>``
        the detector's position, ``sum`` for the detector sum; ``<group>`` fit, norm, quant or
        rel_dif from the variable). A folder's stem is the result's source file name (attr
        ``source_path``) or ``map``; a ``.png`` suffix of a stem is dropped.
    variable : str, optional
        The variable drawn; default the result's main one (``concentration``, ``normalised``,
        ``peak_area``, ``relative_difference``).
    detector : label, int or "sum", optional
        One detector (a label, else a position) or the detector sum. Default: every detector
        with ``path``, the first without.
    lines : list of str, optional
        Lines to draw, in order; default all.
    ncols : int, default 4
        Panels per row (rows = ceil(lines / ncols)).
    pixel_size : float, optional
        Pixel size in µm (square pixels); default from the ``x`` and ``y`` coordinates and
        their ``units`` (mm, µm, nm, m). Without either, no scale bar is drawn.
    scale_bar : float, optional
        Scale-bar length in µm; default a round length (1, 2 or 5 x 10^k) of about a fifth of
        the map's width.
    log, sqrt : bool
        Draw log10 (values <= 0 shown as the image's smallest positive value) or the square
        root. Not both.
    clim : (float, float), optional
        Per-image colour limits as fractions of each (transformed) image's range:
        lo = min + clim[0] (max - min), hi = min + clim[1] (max - min). Default the full range.
    rotate : float, default 0
        Rotate counter-clockwise by round(rotate / 90) quarter turns.
    flip : bool, default False
        Flip the rows (up/down) after the rotation (xrf_proc's ``fliph``).
    cmap : str, default "viridis"
    dpi : int, default 150
        The PNG's resolution (xrf_proc: 420).

    Returns
    -------
    list of str or matplotlib.figure.Figure
        With ``path``, the files written, one per detector; without, the figure (one
        detector's). Each image panel has the line as title, its image in ``ax.images[0]``
        (colour limits from ``get_clim()``) and, when drawn, the scale bar as a line with
        ``gid="scale_bar"`` in image-pixel x coordinates.
    """
    if log and sqrt:
        raise ValueError("log and sqrt: choose one")
    if ncols < 1:
        raise ValueError(f"ncols={ncols!r}: expected a positive number of columns")
    maps = select_maps(result, variable, detector, lines, all_detectors=path is not None)
    if maps.sizes["line"] == 0:
        raise ValueError("no lines to draw")
    name = main_variable(result, variable)
    k = round(rotate / 90) % 4
    py, px = pixel_size_um(maps, "y"), pixel_size_um(maps, "x")
    horizontal = float(pixel_size) if pixel_size is not None else (py if k % 2 else px)
    if scale_bar is not None and horizontal is None:
        raise ValueError(
            "scale_bar needs the pixel size: the map's x/y coordinates carry no length units; "
            "pass pixel_size= (µm)"
        )
    if horizontal is not None and not horizontal > 0:
        raise ValueError(f"pixel_size={pixel_size!r}: expected a positive size in µm")
    values = maps.compute()  # eager-ok: the small (detector, line, y, x) maps being drawn
    cube = np.asarray(values.values)  # eager-ok: already computed
    line_names = [str(v) for v in values["line"].values]  # eager-ok: labels
    labels = _detector_labels(values)
    figures = []
    for d in range(cube.shape[0]):
        images = [
            _transform(cube[d, i], log=log, sqrt=sqrt, rotate=rotate, flip=flip)
            for i in range(cube.shape[1])
        ]
        fig = _figure(
            images, line_names, ncols=ncols, pixel_um=horizontal, scale_bar=scale_bar,
            title="log. Int." if log else "sqrt. Int." if sqrt else "Int.", clim=clim, cmap=cmap,
            unit=_unit(result, name),
        )  # fmt: skip
        figures.append(fig)
    if path is None:
        return figures[0]
    stem = output_stem(result, path)
    group = GROUPS.get(name, name)
    suffix = ("_log" if log else "") + ("_sqrt" if sqrt else "")
    written = []
    for d, fig in enumerate(figures):
        tag = channel_tag(result[name] if isinstance(result, xr.Dataset) else result, labels[d])
        file = f"{stem}{suffix}_{tag}_{group}_overview.png"
        written.append(save_png(fig, file, dpi))
    return written


def _unit(result, name: str) -> str:
    """The colour bar's unit: xrf_proc's ``cts`` for areas and normalised intensities; a
    quantification's own unit (µg/g, µg/cm²) for concentrations, as the result records it."""
    if name == "concentration" and isinstance(result, xr.Dataset):
        return str(result[name].attrs.get("units") or result.attrs.get("unit") or "cts")
    return "cts"


def _figure(images, names, *, ncols, pixel_um, scale_bar, title, clim, cmap, unit="cts"):
    """The collated figure (spec 8.5 geometry, inches)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    n = len(images)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    m_rows, n_cols = images[0].shape
    h = 6.0 / nrows
    w = h * n_cols / max(m_rows, 1)
    if ncols * w > _MAX_IMAGES_WIDTH:
        h, w = h * _MAX_IMAGES_WIDTH / (ncols * w), _MAX_IMAGES_WIDTH / ncols
    fig_h = nrows * h + (nrows + 1) * (_WS_VER + _PAD)
    fig_w = (_WS_HOR + _PAD) * (ncols + 1) + ncols * w
    fig = Figure(figsize=(fig_w, fig_h))
    length_px = None
    if pixel_um is not None:
        um = scale_bar if scale_bar is not None else nice_length(n_cols * pixel_um / 5)
        length_px = um / pixel_um
        label = f"{um:g} µm"
    ticks = FuncFormatter(lambda v, _: f"{v:.3g}")
    for i, (image, name) in enumerate(zip(images, names, strict=True)):
        r, c = divmod(i, ncols)
        x0 = 0.5 * (_WS_HOR + _PAD) + c * (w + _WS_HOR + _PAD)
        y0 = fig_h - (r + 1) * (_WS_VER + _PAD) - (r + 1) * h
        ax = fig.add_axes((x0 / fig_w, y0 / fig_h, w / fig_w, h / fig_h))
        lo, hi, extend = colour_limits(image, clim)
        shown = ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest",
                          aspect="auto")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=_TITLE_SIZE, pad=14)
        if length_px is not None:
            limits = ax.get_xlim(), ax.get_ylim()
            _scale_bar(fig, ax, length_px, label)
            ax.set_xlim(limits[0])
            ax.set_ylim(limits[1])
        cax = fig.add_axes(((x0 + w + 0.05) / fig_w, y0 / fig_h, 0.1 / fig_w, h / fig_h))
        bar = fig.colorbar(shown, cax=cax, extend=extend, format=ticks)
        bar.ax.tick_params(labelsize=_CB_SIZE)
        bar.ax.set_title(f"{title}\n[{unit}]", fontsize=_CB_SIZE)
    return fig


def _scale_bar(fig, ax, length_px: float, label: str) -> None:
    """A black horizontal bar of ``length_px`` image pixels just above the image's left edge."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy

    where = offset_copy(ax.get_xaxis_transform(), fig=fig, y=3, units="points")
    x0 = -0.5
    ax.add_line(
        Line2D(
            [x0, x0 + length_px],
            [1.0, 1.0],
            color="black",
            linewidth=2,
            transform=where,
            clip_on=False,
            gid="scale_bar",
        )  # fmt: skip
    )
    ax.text(x0 + length_px / 2, 1.0, label, transform=offset_copy(where, fig=fig, y=2,
            units="points"), ha="center", va="bottom", fontsize=_SCALE_SIZE, gid="scale_bar_label",
            clip_on=False)  # fmt: skip
