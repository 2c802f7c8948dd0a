"""``method="full"``: PyMca's per-pixel nonlinear fit (``McaTheory``), xrf_proc's precise path.

``McaTheory`` setData / estimate / startfit per spectrum, with one configured theory per worker
process (:func:`~xrfdask.fit.pymcalib.theory`). Slow: for reference materials and small maps.
Tasks: ``fit-full`` per block, ``fit-full-area`` / ``fit-full-area-error`` taking it apart.
"""

from __future__ import annotations

import operator

import dask.array as da
import numpy as np

from xrfdask.fit.blas import one_blas_thread
from xrfdask.fit.engines.base import Engine, block_grid, results
from xrfdask.fit.model import LinearModel
from xrfdask.fit.pymcalib import PYMCA_LOCK, config_key, fit_spectrum, line_label, theory

__all__ = ["FullEngine", "fit_full"]


def fit_full(
    spectra: np.ndarray, config_json: str, lines: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Fit every spectrum of a block with the full nonlinear model (areas, uncertainties).

    Spectra summing to zero are skipped (zero areas), as xrf_proc does; a spectrum whose fit
    fails gets NaN. ``lines`` fixes the output order (the groups of the model).
    """
    areas = np.zeros((spectra.shape[0], len(lines)), dtype=np.float64)
    errors = np.zeros_like(areas)
    index = {name: i for i, name in enumerate(lines)}
    channels = np.arange(spectra.shape[1], dtype=np.float64)
    for p in range(spectra.shape[0]):  # the nonlinear fit is per spectrum by nature
        y = np.asarray(spectra[p], dtype=np.float64)  # eager-ok: one spectrum of the block
        if y.sum() <= 0:
            continue
        with PYMCA_LOCK:
            configured = theory(config_json)
            xmin, xmax = (
                int(configured.config["fit"]["xmin"]),
                int(configured.config["fit"]["xmax"]),
            )
            try:
                result = fit_spectrum(configured, channels, y, xmin, xmax)
            except Exception:  # noqa: BLE001 - PyMca raises anything on a hopeless spectrum
                areas[p] = errors[p] = np.nan
                continue
        for group in result["groups"]:
            i = index.get(line_label(group))
            if i is not None:
                areas[p, i] = result[group]["fitarea"]
                errors[p, i] = result[group]["sigmaarea"]
    return areas, errors


@one_blas_thread()
def _full_band(block: np.ndarray, config_json: str, lines: list[str]) -> np.ndarray:
    rows, cols, ndet, nchan = block.shape
    out = np.zeros((2, rows, cols, ndet, len(lines)))
    for d in range(ndet):
        areas, errors = fit_full(
            np.ascontiguousarray(block[:, :, d, :]).reshape(rows * cols, nchan), config_json, lines
        )
        out[0, :, :, d] = areas.reshape(rows, cols, -1)
        out[1, :, :, d] = errors.reshape(rows, cols, -1)
    return out


class FullEngine(Engine):
    """PyMca's per-pixel nonlinear fit (:func:`fit_full` per block), in float64."""

    name = "full"
    config_rules = "full"

    def result_dtype(self, models: list[LinearModel]) -> np.dtype:
        return np.dtype(np.float64)

    def graph(
        self, data: da.Array, config: dict, models: list[LinearModel], lines: list[str], token: str
    ) -> tuple[da.Array, da.Array]:
        name, key = f"fit-full-{token}", config_key(config)
        area, error = f"fit-full-area-{token}", f"fit-full-area-error-{token}"
        grid = list(block_grid(data))
        layers = {
            name: {
                (name, i, j): (_full_band, (data.name, i, j, 0, 0), key, (list, list(lines)))
                for i, j, _, _ in grid
            },
            area: {(area, i, j, 0, 0): (operator.getitem, (name, i, j), 0) for i, j, _, _ in grid},
            error: {
                (error, i, j, 0, 0): (operator.getitem, (name, i, j), 1) for i, j, _, _ in grid
            },
        }
        deps = {name: {data.name}, area: {name}, error: {name}}
        return results(layers, deps, data, len(lines), np.float64, inputs=[data])
