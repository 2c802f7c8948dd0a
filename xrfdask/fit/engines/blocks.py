"""Engines that solve the linear model block by block, with PyMca's refit decided map-wide.

The graph, per map (task names as on the dashboard):

1. ``fit-model``: the detectors' linear models, one key, so each worker receives them once;
2. per block of pixels: the spectra trimmed to the fit range, one float (pixels, channels)
   matrix per detector (``geopixe-read-fit``, decoded straight from the records of a
   ``.GeoPIXE`` file, or ``fit-trim`` over any other reader's blocks), then background and solve
   (``fit-<engine>``), returning areas, uncertainties and the pixels with negative areas;
3. the non-negativity refit decided once for the whole map (``xrf-global-refit``) from those
   pixels only, then applied per block as each block of areas and of uncertainties is made
   (``fit-area``, ``fit-area-error``).

A subclass of :class:`SolveEngine` only provides :meth:`SolveEngine.solve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np

from xrfdask.fit.blas import one_blas_thread
from xrfdask.fit.engines.base import Engine, block_grid, results
from xrfdask.fit.model import LinearModel
from xrfdask.fit.refit import Candidates, refit_log, replay
from xrfdask.io import fastpaths

__all__ = ["SolveEngine", "Solved", "trim_band", "trimmed"]

#: What a block solve returns per detector: areas and uncertainties (pixels, free) in the
#: model's result dtype, and the pixels the refit may touch.
Solved = tuple[np.ndarray, np.ndarray, Candidates]


def trim_band(block: np.ndarray, lo: int, hi: int, dtype: Any) -> np.ndarray:
    """(detector, pixels, channels lo..hi-1) in ``dtype``, from a raw (y, x, detector, channel) one.

    A new array in one pass (reorder, trim and cast): the solvers subtract the background in
    place, so the caller's data is never touched.
    """
    rows, cols, ndet, _ = block.shape
    out = np.empty((ndet, rows, cols, hi - lo), dtype=dtype)
    out[...] = block[..., lo:hi].transpose(2, 0, 1, 3)
    return out.reshape(ndet, rows * cols, hi - lo)


def trimmed(spectra: np.ndarray, model: LinearModel) -> np.ndarray:
    """A new (pixels, fit channels) array in the dtype PyMca computes in (float32 for integers)."""
    return trim_band(spectra[:, None, None, :], model.xmin, model.xmax, model.result_dtype)[0]


class SolveEngine(Engine):
    """An engine whose blocks are solved with the detectors' linear models (see the module)."""

    @staticmethod
    def solve(y: np.ndarray, model: LinearModel) -> Solved:
        """Background and solve of one detector's block.

        ``y`` is a C-contiguous (pixels, fit channels) block in the model's result dtype
        (:func:`trimmed`), which the solve may overwrite. A module-level function (it travels
        in the graph, pickled by name).
        """
        raise NotImplementedError

    def graph(
        self, data: da.Array, config: dict, models: list[LinearModel], lines: list[str], token: str
    ) -> tuple[da.Array, da.Array]:
        lo, hi, dtype = models[0].xmin, models[0].xmax, models[0].result_dtype
        # PyMca trims by the configuration alone, which every detector's model shares.
        assert all((m.xmin, m.xmax) == (lo, hi) for m in models), (
            "detector models trim different ranges"
        )
        model, solve, negatives = (
            f"fit-model-{token}",
            f"fit-{self.name}-{token}",
            f"fit-negatives-{token}",
        )
        log, area, error = (
            f"xrf-global-refit-{token}",
            f"fit-area-{token}",
            f"fit-area-error-{token}",
        )
        # Inputs: a .GeoPIXE map as opened is decoded straight into the trimmed float blocks (one
        # pass over the sparse records); any other array goes through its own blocks.
        fast = fastpaths.channel_blocks(data, lo, hi, dtype)
        # Named for the reader on the dashboard: geopixe-read-fit-..., or fit-trim-...
        read = f"{fastpaths.source(data)}fit-{token}" if fast is not None else f"fit-trim-{token}"
        grid = list(block_grid(data))
        if fast is not None:
            read_tasks = {(read, i, j): fast[i, j] for i, j, _, _ in grid}
        else:
            read_tasks = {
                (read, i, j): (trim_band, (data.name, i, j, 0, 0), lo, hi, dtype)
                for i, j, _, _ in grid
            }
        layers = {
            model: {model: (list, models)},
            read: read_tasks,
            solve: {
                (solve, i, j): (_solve_band, (read, i, j), model, self.solve) for i, j, _, _ in grid
            },
            negatives: {
                (negatives, i, j): (_band_candidates, (solve, i, j)) for i, j, _, _ in grid
            },
            log: {log: (_log, [(negatives, i, j) for i, j, _, _ in grid], model)},
            **{
                name: {
                    (name, i, j, 0, 0): (
                        _finish_band,
                        (solve, i, j),
                        log,
                        model,
                        (list, list(lines)),
                        (rows, cols),
                        which,
                    )
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
        return results(
            layers, deps, data, len(lines), dtype, inputs=[] if fast is not None else [data]
        )


@one_blas_thread()
def _solve_band(
    inputs: np.ndarray,
    models: list[LinearModel],
    solve: Callable[[np.ndarray, LinearModel], Solved],
) -> list[Solved]:
    """Background and solve for every detector of a block.

    ``inputs`` is (detector, pixels, fit channels); BLAS on one thread (PyMca's ``lstsq``).
    """
    return [solve(inputs[d], models[d]) for d in range(len(models))]


def _band_candidates(solved: list[Solved]) -> list[Candidates]:
    return [c for _, _, c in solved]


@one_blas_thread()
def _log(bands: list[list[Candidates]], models: list[LinearModel]) -> list[list]:
    """The map's refit steps, per detector (from the candidate pixels of every band)."""
    return [refit_log([band[d] for band in bands], model) for d, model in enumerate(models)]


@one_blas_thread()
def _finish_band(
    solved: list[Solved],
    logs,
    models: list[LinearModel],
    lines: list[str],
    shape: tuple[int, int],
    which: int,
) -> np.ndarray:
    """Apply the refit, keep the peak parameters, place them on the map's line axis.

    Returns the (rows, cols, detector, line) areas (``which`` 0) or uncertainties (1), NaN for a
    line a detector does not fit. One task per output block: computing the areas alone costs
    one task per band, not a task for both and one to take them apart.
    """
    rows, cols = shape
    out = np.full((rows * cols, len(models), len(lines)), np.nan, dtype=models[0].result_dtype)
    for d, ((x, sigma, found), steps, model) in enumerate(zip(solved, logs, models, strict=True)):
        # The refit touches this band: on copies, the solve's result may be shared.
        if steps and found.rows.size:
            x, sigma = x.copy(), sigma.copy()
            replay(x, sigma, found, steps, model)
        index = [lines.index(name) for name in model.line_names]
        out[:, d, index] = (x, sigma)[which][:, model.peak_slice]
    return out.reshape(rows, cols, len(models), len(lines))
