"""``xd.fit``: turn a raw map into peak-area maps, lazily, with results independent of chunking.

:func:`fit` validates the configuration, computes the global sum spectrum of each detector
(one dask reduction, or the sum the file stores) and builds the linear model from it with PyMca,
then hands the map to the engine that ``method`` names (:mod:`xrfdask.fit.engines`), which makes
the graph of its blocks: for ``"linear"`` and ``"pymca"``, per band of rows the trimmed spectra
(``geopixe-read-fit`` / ``fit-trim``), background and solve (``fit-linear`` / ``fit-pymca``),
the non-negativity refit decided once for the whole map (``xrf-global-refit``) and the blocks of
areas and uncertainties (``fit-area``, ``fit-area-error``), with the models in one key
(``fit-model``); for ``"full"``, the nonlinear fit of each spectrum (``fit-full``).
Each detector's sum spectrum is also fitted with the full model (``sum_area``,
``sum_background``; ``fit-sum-spectrum``, a task run beside the bands).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.deadtime_correction import deadtime_factors
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.fit import engines
from xrfdask.fit.blas import one_blas_thread
from xrfdask.fit.config import config_to_text, load_config, validate_config
from xrfdask.fit.engines import METHODS
from xrfdask.fit.model import build_model, check_with_pymca
from xrfdask.fit.pymcalib import fit_sum_spectrum
from xrfdask.io import fastpaths
from xrfdask.model import RAW_DIMS, check_not_empty, line_union, with_attrs

__all__ = ["fit", "METHODS"]


def fit(
    ds: xr.Dataset,
    config: Any,
    method: str = "linear",
    *,
    detector: Any = None,
    weight: int | None = None,
    sum_spectrum: str = "auto",
) -> xr.Dataset:
    """Fit the spectra of a raw map: peak areas per pixel, detector and line, lazily.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map (``spectra`` (y, x, detector, channel)), from any reader.
    config : str, path, dict or ConfigDict
        A PyMca ``.cfg`` file, a configuration dictionary, or :func:`xrfdask.make_fit_config`'s
        result. Validated before anything is computed (:class:`~xrfdask.ConfigError`).
    method : {"linear", "pymca", "full"}, default "linear"
        ``"linear"``: xrfdask's engine (compiled background, fixed pseudo-inverse);
        ``"pymca"``: PyMca's ``FastXRFLinearFit`` steps per block, equal to PyMca fitting the whole
        map in memory; ``"full"``: PyMca's per-pixel nonlinear fit (slow: reference materials,
        small maps).
    detector : label, "sum" or None
        None fits every detector; a label fits that one; ``"sum"`` fits the detector-summed
        spectra.
    weight : {None, 0, 1, 2}
        PyMca's weighting: 0 none; 1 average weights from the sum spectrum (one fixed matrix);
        2 individual weights per pixel (``"pymca"`` and ``"full"`` only). None follows
        ``fit.fitweight``: for ``"pymca"`` as PyMca's ``fitMultipleSpectra(weight=None)`` does
        (``fitweight`` 1 means individual weights there), for ``"linear"`` ``fitweight`` 1 means
        the average weights (its only weighting), for ``"full"`` McaTheory's own weighting.
    sum_spectrum : {"auto", "compute"}, default "auto"
        The reference spectrum the model is built from. ``"auto"``: the sum spectra the file
        stores (``raw/channelXX/sumspec``, as xrf_proc and PyMca use them) when ``ds`` is the
        map exactly as read, otherwise the global sum computed over the map (one pass).
        ``"compute"``: always computed. ``attrs["sum_spectrum_source"]`` says which was used.

    Returns
    -------
    xarray.Dataset
        ``peak_area`` and ``peak_area_error`` (y, x, detector, line) in counts, lines named as
        PyMca's groups (``"Fe K"``, ``"Pb L"``, ``"Compt"``, ``"Rayl"``); ``sum_area`` and
        ``sum_background`` (detector, line) from the full fit of each sum spectrum; the map's
        dead-time factors ``deadtime_factor`` (y, x, detector) and ``sum_deadtime_factor``
        (detector) beside them (the areas are raw counts, ``attrs["deadtime_corrected"]`` False;
        :func:`~xrfdask.to_h5` stores them corrected, as xrf_proc's ``fit/``); the PyMca
        configuration text in ``attrs["config"]`` (and per detector in ``config``, which the
        layout stores as ``fit/channelXX/cfg``). Lazy: nothing but the sum spectrum is computed;
        wrap a computation in :func:`xrfdask.progress` to watch it (``"full"`` is slow).

    Raises
    ------
    ConfigError
        Bad configuration, unknown method, or spectra shorter than the configured range.

    Warns
    -----
    XrfdaskWarning
        When ``sum_area`` is computed, for a sum spectrum PyMca's full fit fails on (a singular
        model, e.g. two peaks at one energy): that detector's ``sum_area`` and
        ``sum_background`` are NaN.
    """
    engine = engines.get(method)
    spectra = _spectra(ds, detector)
    check_not_empty(spectra, "fit")
    nchan = spectra.sizes["channel"]
    cfg = validate_config(load_config(config), nchan=nchan, method=engine.config_rules)
    if weight is not None and weight not in (0, 1, 2):
        raise ConfigError(f"weight={weight!r}: expected None, 0, 1 or 2")
    if sum_spectrum not in ("auto", "compute"):
        raise ConfigError(f"sum_spectrum={sum_spectrum!r}: expected 'auto' or 'compute'")
    weight = engine.resolve_weight(cfg, weight)
    check_with_pymca(cfg, weight=weight, npixels=spectra.sizes["y"] * spectra.sizes["x"])
    data = spectra.data
    if not isinstance(data, da.Array):  # an in-memory map: bands of rows over it
        data = da.from_array(data, chunks=(max(1, spectra.sizes["y"] // 4), -1, -1, -1))
    data = data.rechunk({2: -1, 3: -1})  # blocks of pixels: bands of rows, or x-blocks of long rows
    ny, nx, ndet, _ = data.shape
    stored = fastpaths.stored_sum_spectrum(data) if sum_spectrum == "auto" else None
    if stored is not None:  # xrf_proc's and PyMca's reference: the file's raw/channelXX/sumspec
        sums, sum_source = np.asarray(stored[0], dtype=np.float64), f"stored: {stored[1]}"
    else:
        # e.g. straight from the sparse records of a .GeoPIXE file
        fast = fastpaths.sum_spectrum(data)
        total = fast if fast is not None else data.sum(axis=(0, 1), dtype=np.float64)
        sums = np.asarray(total.compute())  # eager-ok: the global sum spectrum
        sum_source = "computed"
    labels = list(spectra["detector"].values)  # eager-ok: labels
    models = [
        build_model(
            cfg, sums[d], npixels=ny * nx, weight=weight, data_dtype=data.dtype, detector=labels[d]
        )
        for d in range(ndet)
    ]
    lines = line_union([m.line_names for m in models])
    token = dask.base.tokenize(data.name, cfg, method, weight)
    # The full fits of the sum spectra run as a task, beside the bands, not before them.
    sum_fits = dask.delayed(_fit_sums, pure=True)(
        cfg, sums, lines, dask_key_name=f"fit-sum-spectrum-{token}"
    )
    sum_fits = da.from_delayed(sum_fits, shape=(ndet, len(lines), 2), dtype=np.float64)
    area, error = engine.graph(data, cfg, models, lines, token)
    result_dtype = engine.result_dtype(models)
    dims = ("y", "x", "detector", "line")
    sum_area, sum_background = sum_fits[..., 0], sum_fits[..., 1]
    text = config_to_text(cfg)
    out = xr.Dataset(
        {
            "peak_area": (dims, area.astype(result_dtype), with_attrs("peak_area")),
            "peak_area_error": (dims, error.astype(result_dtype), with_attrs("peak_area_error")),
            "sum_area": (("detector", "line"), sum_area, with_attrs("sum_area")),
            "sum_background": (("detector", "line"), sum_background, with_attrs("sum_background")),
            "config": (("detector",), np.array([text] * ndet, dtype=object)),
        },
        coords={k: v for k, v in spectra.coords.items() if k in ("y", "x", "detector")}
        | {"line": ("line", lines)},
        attrs={
            "config": text,
            "method": method,
            "weight_policy": int(models[0].weight_policy),
            "fit_range_channels": [int(models[0].xmin), int(models[0].xmax)],
            "sum_spectrum_source": sum_source,
            "ScatROI": False,
            "deadtime_corrected": False,
            "fitted": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    return _with_deadtime_factors(out, ds)


def _with_deadtime_factors(out: xr.Dataset, ds: xr.Dataset) -> xr.Dataset:
    """The map's dead-time factors beside the raw areas, chunked as the areas.

    The areas stay raw counts in memory; the layout writers store them corrected, as xrf_proc's
    ``fit/`` is (:mod:`xrfdask.deadtime_correction`), and :func:`xrfdask.normalise` applies them.
    """
    chunks = dict(zip(out["peak_area"].dims, out["peak_area"].chunks, strict=True))
    labels = list(out["detector"].values)  # eager-ok: labels
    factors = deadtime_factors(ds, labels, chunks={d: chunks[d] for d in ("y", "x")})
    factor = factors["deadtime_factor"].chunk({d: chunks[d] for d in ("y", "x", "detector")})
    out = out.assign(deadtime_factor=factor, sum_deadtime_factor=factors["sum_deadtime_factor"])
    out.attrs["deadtime_source"] = factors.attrs["deadtime_source"]
    return out


@one_blas_thread()  # small fits, run beside the bands' tasks: see xrfdask.fit.blas
def _fit_sums(config: dict, sums: np.ndarray, lines: list[str]) -> np.ndarray:
    """(detector, line, [area, background]) from the full fit of each sum spectrum."""
    out = np.full((sums.shape[0], len(lines), 2), np.nan)
    for d, spectrum in enumerate(sums):
        try:
            fitted = fit_sum_spectrum(config, spectrum)
            if not all(np.isfinite(v[0]) for v in fitted.values()):  # eager-ok: a dict
                raise FloatingPointError("areas that are not finite")
        except Exception as exc:  # noqa: BLE001 - PyMca raises anything (LinAlgError: singular)
            warnings.warn(
                f"detector {d}: PyMca's full fit of the sum spectrum failed "
                f"({type(exc).__name__}: {' '.join(str(exc).split())}); its sum_area and "
                "sum_background are NaN (the pixels' areas are not affected)",
                XrfdaskWarning,
                stacklevel=2,
            )
            continue
        for i, line in enumerate(lines):
            if line in fitted:
                out[d, i] = fitted[line][0], fitted[line][2]
    return out


def _spectra(ds: xr.Dataset, detector: Any) -> xr.DataArray:
    if "spectra" not in ds:
        raise ConfigError("fit: the dataset has no 'spectra' variable (a raw map is needed)")
    spectra = ds["spectra"].transpose(*RAW_DIMS)
    if detector is None:
        return spectra
    if isinstance(detector, str) and detector == "sum":
        summed = spectra.sum(
            "detector",
            dtype=np.uint32 if spectra.dtype.kind == "u" and spectra.dtype.itemsize <= 2 else None,
        )
        return summed.expand_dims(detector=["sum"], axis=2)
    labels = list(spectra["detector"].values)  # eager-ok: labels
    if detector not in labels:
        if isinstance(detector, int) and 0 <= detector < len(labels):
            return spectra.isel(detector=[detector])
        known = [v.item() if hasattr(v, "item") else v for v in labels]
        raise ConfigError(f"detector={detector!r}: the map has detectors {known} (or use 'sum')")
    return spectra.sel(detector=[detector])
