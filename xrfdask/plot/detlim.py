"""Detection limits against atomic number: xrf_proc's ``plot_detlim`` (spec section 5.6).

One series per reference material and counting time (``nist613_1s``, ``nist613_1000s``...),
3σ error bars, a log-scaled limit axis, element-line labels on a top axis (stacked where lines
share a Z), and each series' degree-2 trend curve of ln(DL) against Z, which the original
silently drops on current matplotlib. ``bar=True`` draws grouped bars instead. The figure is a
plain :class:`matplotlib.figure.Figure` (no pyplot, no window): saving never races a ``show``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["detection_limits"]

_MARKERS = ("o", "s", "d", "p", "^", "v")
_TICK_SIZE, _TOP_SIZE, _TITLE_SIZE = 20, 8, 22


def _series(dls: Sequence[xr.Dataset], times: Sequence[str], detector) -> list[dict]:
    out = []
    for ds in dls:
        ref = os.path.splitext(str(ds.attrs.get("cnc", "DL")))[0] or "DL"
        one = ds
        if "detector" in ds.dims:
            label = ds["detector"].values[0] if detector is None else detector  # eager-ok: labels
            one = ds.sel(detector=label)
        lines = [str(v) for v in np.asarray(one["line"].values)]  # eager-ok: labels
        if "z" in one.coords:
            z = np.asarray(one["z"].values, dtype=int)  # eager-ok: per line
        else:  # read back from a file: Z from the names (xraylib only then)
            import xraylib

            from xrfdask.physics import line_element

            z = np.array([xraylib.SymbolToAtomicNumber(line_element(n)) for n in lines])
        for t in times:
            name = f"detection_limit_{t}"
            if name not in one:
                raise ValueError(f"no {name!r} in the detection limits of {ref}")
            value = np.asarray(one[name].values, dtype=float)  # eager-ok: per line
            err_name = f"{name}_error"
            err = (
                np.asarray(one[err_name].values, dtype=float)  # eager-ok: per line
                if err_name in one
                else np.zeros_like(value)
            )
            keep = np.isfinite(value) & (value > 0)
            out.append(
                {
                    "label": f"{ref}_{t}",
                    "lines": [n for n, k in zip(lines, keep, strict=True) if k],
                    "z": z[keep],
                    "dl": value[keep],
                    "err": np.nan_to_num(err[keep]),
                    "unit": str(ds.attrs.get("unit", "ppm")),
                }
            )
    return out


def _top_labels(series: list[dict]) -> dict[int, str]:
    """``El-line`` labels per Z; lines sharing a Z stacked in descending order of their mean
    limit over the series (as xrf_proc orders them)."""
    values: dict[str, list[float]] = {}
    zof: dict[str, int] = {}
    for s in series:
        for name, z, dl in zip(s["lines"], s["z"], s["dl"], strict=True):
            label = "-".join(name.split(None, 1))
            values.setdefault(label, []).append(float(dl))
            zof[label] = int(z)
    mean = {n: float(np.mean(v)) for n, v in values.items()}
    out: dict[int, str] = {}
    for z in sorted(set(zof.values())):  # eager-ok: dict
        names = sorted((n for n in zof if zof[n] == z), key=lambda n: -mean[n])
        out[z] = "\n".join(names)
    return out


def _trend(z: np.ndarray, dl: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """DL(Z) = exp(a Z² + b Z + c), least squares on ln(DL); None below 3 distinct Z."""
    if len(np.unique(z)) < 3:
        return None
    coeff = np.polyfit(z.astype(float), np.log(dl), 2)
    zmin, zmax = float(z.min()), float(z.max())
    grid = np.linspace(zmin, zmax, max(int(2 * (zmax - zmin)), 2))
    return grid, np.exp(np.polyval(coeff, grid))


def detection_limits(
    dl: xr.Dataset | Sequence[xr.Dataset],
    path: str | os.PathLike | None = None,
    *,
    detector=None,
    times: Sequence[str] = ("1s", "1000s"),
    bar: bool = False,
    trend: bool = True,
    ytitle: str | None = None,
    dpi: int = 120,
):
    """Plot detection limits against Z (xrf_proc's ``plot_detlim``) and save them as a PNG.

    Parameters
    ----------
    dl : Dataset or list of Datasets
        :func:`xrfdask.detection_limits` results (or ``open_h5(path, group="detlim/<cnc>")``),
        one per reference material; they stay side by side, one series per reference and time.
    path : str or path-like, optional
        The PNG to write (``bbox_inches="tight"``, no padding).
    detector : label, optional
        The detector to draw; default the first.
    times : sequence of str, default ("1s", "1000s")
        Counting times to draw (``detection_limit_<t>`` variables).
    bar : bool, default False
        Grouped bars at categorical positions (one per line, Z order) instead of markers.
    trend : bool, default True
        Draw each series' degree-2 fit of ln(DL) against Z, dashed, in the series' colour, over
        [Z_min, Z_max] (series with fewer than 3 distinct Z get none). Not in bar mode.
    ytitle : str, optional
        Default ``"Detection Limit (<unit>)"``.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` holds the limits (series labelled ``<cnc stem>_<time>``, trend curves
        with ``gid="trend"``); in marker mode its ``child_axes[0]`` is the top axis of line
        labels.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MultipleLocator

    dls = [dl] if isinstance(dl, xr.Dataset) else list(dl)
    if not dls:
        raise ValueError("no detection limits to plot")
    series = _series(dls, times, detector)
    top = _top_labels(series)
    nz = len(top)
    fig = Figure(figsize=(max(6.5, (nz + 1) * 0.65), 5.0))
    ax = fig.add_subplot()
    handles = []
    if bar:
        order = sorted(
            {(int(z), n) for s in series for z, n in zip(s["z"], s["lines"], strict=True)}
        )
        names = [n for _, n in order]
        pos = {n: i for i, n in enumerate(names)}
        width = 0.8 / max(len(series), 1)
        for k, s in enumerate(series):
            x = np.array([pos[n] for n in s["lines"]], dtype=float) - 0.4 + (k + 0.5) * width
            bars = ax.bar(x, s["dl"], width, yerr=3 * s["err"], capsize=3, label=s["label"])
            handles.append(bars)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.replace(" ", "-") for n in names], fontsize=_TOP_SIZE)
    else:
        for k, s in enumerate(series):
            container = ax.errorbar(
                s["z"],
                s["dl"],
                yerr=3 * s["err"],
                fmt=_MARKERS[k % len(_MARKERS)],
                linestyle="none",
                capsize=3,
                label=s["label"],
            )
            handles.append(container[0])  # the markers only: no error bars in the legend
            fitted = _trend(s["z"], s["dl"]) if trend else None
            if fitted is not None:
                ax.plot(
                    *fitted,
                    linestyle="--",
                    color=container[0].get_color(),
                    gid="trend",
                    label=f"_trend {s['label']}",
                )
        ax.xaxis.set_minor_locator(MultipleLocator(1))
        ax.set_xlabel("Atomic Number (Z)", fontsize=_TITLE_SIZE)
        if top:
            sec = ax.secondary_xaxis("top")  # follows the Z axis
            labels = list(top.values())  # eager-ok: dict
            sec.set_xticks(list(top), labels=labels, fontsize=_TOP_SIZE)
    ax.set_yscale("log")
    ax.tick_params(axis="both", which="major", labelsize=_TICK_SIZE)
    unit = series[0]["unit"] if series else "ppm"
    ax.set_ylabel(ytitle or f"Detection Limit ({unit})", fontsize=_TITLE_SIZE)
    ax.legend(handles=handles, labels=[s["label"] for s in series], fontsize=_TITLE_SIZE)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi, bbox_inches="tight", pad_inches=0)
    return fig
