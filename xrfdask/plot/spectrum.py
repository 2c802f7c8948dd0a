"""A raw map's spectrum on an energy axis, with the fitted lines marked (Xims ``Xplot``, plotims
``gplot``; spec 8.7 and 11).

``kind`` picks the spectrum: the sum over the map (one dask reduction, or the sum the file
stores: the sum the fit used), the per-channel maximum, one pixel's, or a region's sum. With a
fit result from :func:`xrfdask.fit`, the sum spectrum is drawn with its fit: the model and the
continuum of PyMca's full fit of that spectrum with the fit's own configuration, which is the fit
whose areas the result holds in ``sum_area`` (``fit/channelXX/sum/int``) and ``sum_background``.
A fit result holds no per-pixel model curves (only areas), so for a pixel, a region or the
maximum spectrum only the lines are marked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xrfdask.plot.overview import save_png

__all__ = ["spectrum", "line_markers", "model_curves"]

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:olive", "tab:cyan")  # fmt: skip


def _detector(labels: list[Any], detector: Any) -> tuple[str, Any]:
    """("sum", None) or ("one", position) for a detector label, a position or "sum"."""
    if isinstance(detector, str) and detector == "sum" and "sum" not in labels:
        return "sum", None
    for k, v in enumerate(labels):
        try:
            if v == detector:
                return "one", k
        except (TypeError, ValueError):
            continue
    if isinstance(detector, int | np.integer) and -len(labels) <= detector < len(labels):
        return "one", int(detector) % len(labels)
    raise ValueError(f"detector={detector!r}: the map has detectors {labels} (or 'sum')")


def _counts(spectra: xr.DataArray, kind, which: tuple[str, Any]) -> np.ndarray:
    """The (channel,) spectrum of ``kind`` for the chosen detector(s), computed."""
    from xrfdask.io import fastpaths

    mode, k = which

    def pick(per_detector: np.ndarray) -> np.ndarray:
        return per_detector.sum(axis=0) if mode == "sum" else per_detector[k]

    if isinstance(kind, str) and kind == "sum":
        data = spectra.data
        stored = fastpaths.stored_sum_spectrum(data)
        if stored is not None:
            return pick(np.asarray(stored[0], dtype=np.float64))
        fast = fastpaths.sum_spectrum(data)
        total = fast if fast is not None else spectra.sum(("y", "x"), dtype=np.float64).data
        if hasattr(total, "compute"):
            total = total.compute()  # eager-ok: the (detector, channel) sum spectra
        return pick(np.asarray(total, dtype=np.float64))
    if isinstance(kind, str) and kind == "max":
        chosen = spectra.sum("detector") if mode == "sum" else spectra.isel(detector=k)
        return np.asarray(chosen.max(("y", "x")).values, dtype=np.float64)  # eager-ok: (channel,)
    if isinstance(kind, Mapping):
        unknown = set(kind) - {"y", "x"}
        if unknown:
            raise ValueError(f"kind: a region is a dict of 'y'/'x' slices, not {sorted(unknown)}")
        region = spectra.isel(dict(kind)).sum(("y", "x"), dtype=np.float64)
        if region.sizes.get("channel", 0) == 0:
            raise ValueError(f"kind={kind!r}: an empty region")
        return pick(np.asarray(region.values))  # eager-ok: a region's (detector, channel) sum
    if isinstance(kind, tuple | list) and len(kind) == 2:
        iy, ix = (int(v) for v in kind)
        one = spectra.isel(y=iy, x=ix)
        return pick(np.asarray(one.values, dtype=np.float64))  # eager-ok: one pixel's spectra
    raise ValueError(
        f"kind={kind!r}: expected 'sum', 'max', a pixel (y, x) or a region {{'y': slice, ...}}"
    )


def _config(fit: xr.Dataset, label: Any) -> dict | None:
    """The fit's PyMca configuration of detector ``label`` (None when it has none)."""
    from xrfdask.fit.config import config_from_text

    text = None
    if "config" in fit and "detector" in fit["config"].dims:
        labels = list(fit["detector"].values)  # eager-ok: labels
        if label in labels:
            text = fit["config"].values[labels.index(label)]  # eager-ok: a string per detector
    elif "config" in fit:
        text = fit["config"].values.item()  # eager-ok: a string
    if text is None:
        text = fit.attrs.get("config")
    if isinstance(text, bytes):
        text = text.decode()
    return config_from_text(str(text)) if text else None


def model_curves(config: dict, counts: np.ndarray) -> dict[str, np.ndarray]:
    """PyMca's full fit of one spectrum with ``config``: ``channel``, ``model``, ``continuum``
    over the fit range, and ``areas`` {line: fitted area} (as :func:`xrfdask.fit` fits the sum
    spectrum; the same configured ``McaTheory``, under the same lock)."""
    from xrfdask.fit.pymcalib import fit_with_config, line_label

    result = fit_with_config(config, counts)
    return {
        "channel": np.asarray(result["xdata"], dtype=np.int64),
        "model": np.asarray(result["yfit"], dtype=np.float64),
        "continuum": np.asarray(result["continuum"], dtype=np.float64),
        "areas": {line_label(g): float(result[g]["fitarea"]) for g in result["groups"]},
    }


def line_markers(line: str, config: dict | None = None) -> list[tuple[float, float]]:
    """(energy keV, relative intensity) of the lines of a PyMca group (``"Fe K"``: Kα1, Kα2,
    Kβ1, ... from xraylib's radiative rates; the strongest first); ``Rayl`` / ``Compt`` (and
    ``Rayl001``...) from the configuration's excitation energies and scattering angle. Empty
    when unknown."""
    import xraylib

    from xrfdask.physics import element_symbol, radiative_group_lines

    name = str(line)
    for prefix in ("Rayl", "Compt"):
        if name.startswith(prefix):
            if config is None:
                return []
            index = int(name[len(prefix) :] or 0)
            energies = list(config.get("fit", {}).get("energy") or [])
            if index >= len(energies) or energies[index] in (None, "None"):
                return []
            e = float(energies[index])
            if prefix == "Compt":
                matrix = config.get("attenuators", {}).get("Matrix") or []
                angle = 90.0
                if len(matrix) >= 8 and matrix[6]:
                    angle = float(matrix[7])
                elif len(matrix) >= 6:
                    angle = float(matrix[4]) + float(matrix[5])
                e = e / (1 + e / 511.0 * (1 - np.cos(np.radians(angle))))
            return [(e, 1.0)]
    parts = name.split()
    symbol = element_symbol(parts[0]) if len(parts) == 2 else None
    if symbol is None:
        return []
    try:
        found = radiative_group_lines(xraylib.SymbolToAtomicNumber(symbol), parts[1])
    except (KeyError, ValueError):
        return []
    return sorted(found, key=lambda t: -t[1])


def spectrum(
    ds: xr.Dataset,
    path: str | os.PathLike | None = None,
    *,
    kind: str | tuple[int, int] | Mapping[str, slice] = "sum",
    fit: xr.Dataset | None = None,
    detector: Any = None,
    lines: bool | Sequence[str] = True,
    log: bool = True,
    dpi: int = 150,
):
    """Draw a spectrum of a raw map on its energy axis, the lines marked, the fit overlaid.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map (``spectra`` (y, x, detector, channel); ``energy`` on ``channel`` gives the
        axis in keV, else channels).
    path : str or path-like, optional
        The PNG to write (10 x 5 inches: ``10 dpi`` x ``5 dpi`` pixels).
    kind : "sum", "max", (y, x) or {"y": slice, "x": slice}, default "sum"
        The sum over the map (the file's stored ``sumspec`` when ``ds`` is the map as read, else
        one dask reduction: the spectrum :func:`xrfdask.fit` builds its model from), the
        per-channel maximum over the map, one pixel's spectrum (positions), or a region's sum
        (positional slices). Only that is computed.
    fit : xarray.Dataset, optional
        A :func:`xrfdask.fit` result (or ``open_h5(path, group="fit")``). For the sum spectrum,
        its model and continuum are drawn: PyMca's full fit of the sum spectrum with the fit's
        configuration (``config``), whose areas are the result's ``sum_area``. A fit result
        has no per-pixel model curves, so for ``"max"``, a pixel or a region only the lines are
        marked (no model is drawn).
    detector : label, int or "sum", optional
        The detector (a label, or a position); ``"sum"`` adds the detectors. Default the fit's
        first detector, else the map's first.
    lines : bool or list of str, default True
        True: mark the fit's lines (none without ``fit``); a list: mark those PyMca groups
        (``"Fe K"``, ``"Pb L"``, ``"Rayl"``...); False: none. Each group's lines are drawn at
        their energies (``xrfdask.physics``; scatter peaks from the fit's excitation), the
        strongest labelled.
    log : bool, default True
        Logarithmic counts (zero counts not drawn).
    dpi : int, default 150

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]``: the spectrum (``gid="spectrum"``), the model (``gid="model"``) and
        continuum (``gid="continuum"``) when drawn, the line marks (``gid="line:<name>"``)
        and their labels (Text with the group's name).
    """
    from matplotlib.figure import Figure

    if "spectra" not in ds:
        raise ValueError("spectrum: the dataset has no 'spectra' (a raw map is needed)")
    spectra = ds["spectra"].transpose("y", "x", "detector", "channel")
    labels = list(spectra["detector"].values)  # eager-ok: labels
    if detector is None:
        if fit is not None and "detector" in fit.coords:
            detector = fit["detector"].values[0]  # eager-ok: a label
        else:
            detector = labels[0]
    which = _detector(labels, detector)
    label = "sum" if which[0] == "sum" else labels[which[1]]
    counts = _counts(spectra, kind, which)
    if "energy" in spectra.coords:
        axis = np.asarray(spectra["energy"].values, dtype=np.float64)  # eager-ok: the axis
        xlabel = "Energy (keV)"
    else:
        axis, xlabel = np.arange(counts.size, dtype=np.float64), "Channel"

    config = _config(fit, label) if fit is not None else None
    fig = Figure(figsize=(10, 5))
    ax = fig.add_subplot()
    shown = np.where(counts > 0, counts, np.nan) if log else counts
    kind_name = kind if isinstance(kind, str) else ("pixel" if isinstance(kind, tuple | list)
                                                     else "region")  # fmt: skip
    ax.plot(axis, shown, color="black", lw=0.8, label=f"{kind_name} spectrum", gid="spectrum")
    if config is not None and isinstance(kind, str) and kind == "sum":
        curves = model_curves(config, counts)
        x = axis[curves["channel"]]
        ax.plot(x, curves["model"], color="tab:red", lw=1.0, label="fit", gid="model")
        ax.plot(x, curves["continuum"], color="tab:green", lw=1.0, ls="--", label="background",
                gid="continuum")  # fmt: skip
    if lines is True:
        names = [str(v) for v in fit["line"].values] if fit is not None else []  # eager-ok
    elif lines is False or lines is None:
        names = []
    else:
        names = [str(v) for v in ([lines] if isinstance(lines, str) else lines)]
    if log:
        ax.set_yscale("log")
    positive = counts[counts > 0]
    top = float(positive.max()) if positive.size else 1.0
    for n, name in enumerate(names):
        marks = line_markers(name, config)
        if not marks or "energy" not in spectra.coords:
            continue
        colour = _COLOURS[n % len(_COLOURS)]
        for e, rel in marks:
            ax.axvline(e, ymax=0.55 + 0.35 * rel if log else 0.9 * rel, color=colour, lw=0.8,
                       alpha=0.7, gid=f"line:{name}")  # fmt: skip
        ax.text(marks[0][0], top * (3.0 if log else 1.02), name, rotation=90, ha="center",
                va="bottom", fontsize=7, color=colour, clip_on=True)  # fmt: skip
    if log:
        lo = float(positive.min()) if positive.size else 0.1
        ax.set_ylim(max(lo * 0.5, 0.5), top * 30)
    else:
        ax.set_ylim(0, top * 1.25)
    ax.set_xlim(axis[0], axis[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Counts")
    where = f"detector {label}" if which[0] == "one" else "detectors summed"
    ax.set_title(f"{kind_name} spectrum, {where}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    if path is not None:
        save_png(fig, os.fspath(path), dpi)
    return fig
