"""``xd.fit``: turn a raw map into peak-area maps, lazily, with results independent of chunking.

The graph, per detector (task names as on the dashboard):

1. the global sum spectrum (one dask reduction, computed when ``fit`` is called) and the model
   built from it with PyMca (``fit-model``, one key, so each worker receives it once);
2. per band of rows: the spectra trimmed to the fit range, one float (pixels, channels) matrix
   per detector (``geopixe-read-fit``, decoded straight from the records of a ``.GeoPIXE`` file,
   or ``fit-trim`` over any other reader's blocks), then background and solve (``fit-linear`` /
   ``fit-pymca``), returning areas, uncertainties and the pixels with negative areas;
3. the non-negativity refit decided once for the whole map (``xrf-global-refit``) from those
   pixels only, then applied per band as each block of areas and of uncertainties is made
   (``fit-area``, ``fit-area-error``);
   ``method="full"`` fits each spectrum with the nonlinear model instead (``fit-full``).
Each detector's sum spectrum is also fitted with the full model (``sum_area``,
``sum_background``; ``fit-sum-spectrum``, a task run beside the bands).
"""

from __future__ import annotations

import operator
import time
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from threadpoolctl import threadpool_limits

from xrfdask.errors import ConfigError
from xrfdask.fit.config import config_to_text, load_config, validate_config
from xrfdask.fit.model import LinearModel, build_model, check_with_pymca
from xrfdask.fit.refit import Candidates, refit_log, replay
from xrfdask.fit.solvers import config_key, fit_full, fit_sum_spectrum, solve_linear, solve_pymca, trim_band
from xrfdask.io import fastpaths
from xrfdask.model import RAW_DIMS, check_not_empty, line_union, with_attrs

__all__ = ["fit", "METHODS"]

METHODS = ("linear", "pymca", "full")
_SOLVERS = {"linear": solve_linear, "pymca": solve_pymca}


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
        ``sum_background`` (detector, line) from the full fit of each sum spectrum; the PyMca
        configuration text in ``attrs["config"]`` (and per detector in ``config``, which the
        layout stores as ``fit/channelXX/cfg``). Lazy: nothing but the sum spectrum is computed;
        wrap a computation in :func:`xrfdask.progress` to watch it (``"full"`` is slow).

    Raises
    ------
    ConfigError
        Bad configuration, unknown method, or spectra shorter than the configured range.
    """
    if method not in METHODS:
        raise ConfigError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    spectra = _spectra(ds, detector)
    check_not_empty(spectra, "fit")
    nchan = spectra.sizes["channel"]
    cfg = validate_config(load_config(config), nchan=nchan, method=method)
    if weight is not None and weight not in (0, 1, 2):
        raise ConfigError(f"weight={weight!r}: expected None, 0, 1 or 2")
    if sum_spectrum not in ("auto", "compute"):
        raise ConfigError(f"sum_spectrum={sum_spectrum!r}: expected 'auto' or 'compute'")
    if method == "linear":
        if weight == 2:
            raise ConfigError("weight=2: individual pixel weights are supported by methods 'pymca' and 'full', not 'linear'")
        if weight is None:  # fitweight 1: the average weights from the sum spectrum, one fixed matrix
            weight = 1 if cfg["fit"]["fitweight"] else 0
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
        fast = fastpaths.sum_spectrum(data)  # e.g. straight from the sparse records of a .GeoPIXE file
        total = fast if fast is not None else data.sum(axis=(0, 1), dtype=np.float64)
        sums, sum_source = np.asarray(total.compute()), "computed"  # eager-ok: the global sum spectrum
    labels = list(spectra["detector"].values)  # eager-ok: labels
    models = [build_model(cfg, sums[d], npixels=ny * nx, weight=weight, data_dtype=data.dtype, detector=labels[d]) for d in range(ndet)]
    lines = line_union([m.line_names for m in models])
    token = dask.base.tokenize(data.name, cfg, method, weight)
    # The full fits of the sum spectra run as a task, beside the bands, not before them.
    sum_fits = dask.delayed(_fit_sums, pure=True)(cfg, sums, lines, dask_key_name=f"fit-sum-spectrum-{token}")
    sum_fits = da.from_delayed(sum_fits, shape=(ndet, len(lines), 2), dtype=np.float64)
    if method == "full":
        area, error = _full_graph(data, cfg, lines, token)
        result_dtype = np.dtype(np.float64)
    else:
        area, error = _linear_graph(data, models, lines, method, token)
        result_dtype = models[0].result_dtype
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
        coords={k: v for k, v in spectra.coords.items() if k in ("y", "x", "detector")} | {"line": ("line", lines)},
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
    return out


@threadpool_limits.wrap(limits=1, user_api="blas")  # small fits: see build_model
def _fit_sums(config: dict, sums: np.ndarray, lines: list[str]) -> np.ndarray:
    """(detector, line, [area, background]) from the full fit of each sum spectrum."""
    out = np.full((sums.shape[0], len(lines), 2), np.nan)
    for d, spectrum in enumerate(sums):
        fitted = fit_sum_spectrum(config, spectrum)
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
        summed = spectra.sum("detector", dtype=np.uint32 if spectra.dtype.kind == "u" and spectra.dtype.itemsize <= 2 else None)
        return summed.expand_dims(detector=["sum"], axis=2)
    labels = list(spectra["detector"].values)  # eager-ok: labels
    if detector not in labels:
        if isinstance(detector, int) and 0 <= detector < len(labels):
            return spectra.isel(detector=[detector])
        raise ConfigError(f"detector={detector!r}: the map has detectors {[getattr(v, 'item', lambda: v)() for v in labels]} (or use 'sum')")
    return spectra.sel(detector=[detector])



def _solve_band(inputs: np.ndarray, models: list[LinearModel], method: str) -> list[tuple[np.ndarray, np.ndarray, Candidates]]:
    """Background and solve for every detector of a block: ``inputs`` is (detector, pixels, fit channels)."""
    solve = _SOLVERS[method]
    return [solve(inputs[d], models[d]) for d in range(len(models))]


def _band_candidates(solved: list[tuple]) -> list[Candidates]:
    return [c for _, _, c in solved]


def _log(bands: list[list[Candidates]], models: list[LinearModel]) -> list[list]:
    """The map's refit steps, per detector (from the candidate pixels of every band)."""
    return [refit_log([band[d] for band in bands], model) for d, model in enumerate(models)]


def _finish_band(solved, logs, models: list[LinearModel], lines: list[str], shape: tuple[int, int], which: int) -> np.ndarray:
    """Apply the refit, keep the peak parameters, place them on the map's line axis.

    Returns the (rows, cols, detector, line) areas (``which`` 0) or uncertainties (1), NaN for a
    line a detector does not fit. One task per output block: computing the areas alone costs
    one task per band, not a task for both and one to take them apart.
    """
    rows, cols = shape
    out = np.full((rows * cols, len(models), len(lines)), np.nan, dtype=models[0].result_dtype)
    for d, ((x, sigma, found), steps, model) in enumerate(zip(solved, logs, models, strict=True)):
        if steps and found.rows.size:  # the refit touches this band: on copies, the solve's result may be shared
            x, sigma = x.copy(), sigma.copy()
            replay(x, sigma, found, steps, model)
        index = [lines.index(name) for name in model.line_names]
        out[:, d, index] = (x, sigma)[which][:, model.peak_slice]
    return out.reshape(rows, cols, len(models), len(lines))


# The graphs below are written as task dictionaries, one HighLevelGraph layer per step, rather
# than with dask.delayed: building them is serial time before any worker starts, and delayed's
# argument traversal and tokenising cost ~0.7 ms per band (a 40 GB map has thousands of bands).


def _block_grid(data: da.Array):
    """(i, j, rows, cols) for every block of pixels, in raster order."""
    for i, rows in enumerate(data.chunks[0]):
        for j, cols in enumerate(data.chunks[1]):
            yield i, j, rows, cols


def _results(layers: dict[str, dict], deps: dict[str, set], data: da.Array, nlines: int, dtype, inputs=()) -> tuple[da.Array, da.Array]:
    """Areas and uncertainties (y, x, detector, line) from a graph of named layers.

    The last two layers hold the tasks ``(name, i, j, 0, 0)`` of the areas' and the
    uncertainties' blocks; ``inputs`` are the collections the first layers read. Whole-map steps
    keep a layer of their own (``xrf-global-…``), which streaming writers compute once, first.
    """
    graph_layers: dict[str, Any] = {}
    graph_deps: dict[str, set] = {}
    for collection in inputs:
        g = collection.__dask_graph__()
        graph_layers.update(g.layers)
        graph_deps.update(g.dependencies)
    graph_layers.update((name, MaterializedLayer(tasks)) for name, tasks in layers.items())
    graph_deps.update(deps)
    graph = HighLevelGraph(graph_layers, graph_deps)
    chunks = (data.chunks[0], data.chunks[1], (data.shape[2],), (nlines,))
    area, error = list(layers)[-2:]
    return da.Array(graph, area, chunks, dtype=dtype), da.Array(graph, error, chunks, dtype=dtype)


def _linear_graph(data: da.Array, models: list[LinearModel], lines: list[str], method: str, token: str):
    lo, hi, dtype = models[0].xmin, models[0].xmax, models[0].result_dtype
    # PyMca trims by the configuration alone, which every detector's model shares.
    assert all((m.xmin, m.xmax) == (lo, hi) for m in models), "detector models trim different ranges"
    model, solve, negatives = f"fit-model-{token}", f"fit-{method}-{token}", f"fit-negatives-{token}"
    log, area, error = f"xrf-global-refit-{token}", f"fit-area-{token}", f"fit-area-error-{token}"
    # Inputs: a .GeoPIXE map as opened is decoded straight into the trimmed float blocks (one
    # pass over the sparse records); any other array goes through its own blocks.
    fast = fastpaths.channel_blocks(data, lo, hi, dtype)
    # Named for the reader on the dashboard: geopixe-read-fit-..., or fit-trim-...
    read = f"{fastpaths.source(data)}fit-{token}" if fast is not None else f"fit-trim-{token}"
    grid = list(_block_grid(data))
    if fast is not None:
        read_tasks = {(read, i, j): fast[i, j] for i, j, _, _ in grid}
    else:
        read_tasks = {(read, i, j): (trim_band, (data.name, i, j, 0, 0), lo, hi, dtype) for i, j, _, _ in grid}
    layers = {
        model: {model: (list, models)},
        read: read_tasks,
        solve: {(solve, i, j): (_solve_band, (read, i, j), model, method) for i, j, _, _ in grid},
        negatives: {(negatives, i, j): (_band_candidates, (solve, i, j)) for i, j, _, _ in grid},
        log: {log: (_log, [(negatives, i, j) for i, j, _, _ in grid], model)},
        **{
            name: {
                (name, i, j, 0, 0): (_finish_band, (solve, i, j), log, model, (list, list(lines)), (rows, cols), which)
                for i, j, rows, cols in grid
            }
            for which, name in enumerate((area, error))
        },
    }
    deps = {
        model: set(),
        read: set() if fast is not None else {data.name},
        solve: {read, model},
        negatives: {solve},
        log: {negatives, model},
        area: {solve, log, model},
        error: {solve, log, model},
    }
    return _results(layers, deps, data, len(lines), dtype, inputs=[] if fast is not None else [data])


def _full_band(block: np.ndarray, config_json: str, lines: list[str]) -> np.ndarray:
    rows, cols, ndet, nchan = block.shape
    out = np.zeros((2, rows, cols, ndet, len(lines)))
    for d in range(ndet):
        areas, errors = fit_full(np.ascontiguousarray(block[:, :, d, :]).reshape(rows * cols, nchan), config_json, lines)
        out[0, :, :, d] = areas.reshape(rows, cols, -1)
        out[1, :, :, d] = errors.reshape(rows, cols, -1)
    return out


def _full_graph(data: da.Array, cfg: dict, lines: list[str], token: str):
    name, key = f"fit-full-{token}", config_key(cfg)
    area, error = f"fit-full-area-{token}", f"fit-full-area-error-{token}"
    grid = list(_block_grid(data))
    layers = {
        name: {(name, i, j): (_full_band, (data.name, i, j, 0, 0), key, (list, list(lines))) for i, j, _, _ in grid},
        area: {(area, i, j, 0, 0): (operator.getitem, (name, i, j), 0) for i, j, _, _ in grid},
        error: {(error, i, j, 0, 0): (operator.getitem, (name, i, j), 1) for i, j, _, _ in grid},
    }
    deps = {name: {data.name}, area: {name}, error: {name}}
    return _results(layers, deps, data, len(lines), np.float64, inputs=[data])
