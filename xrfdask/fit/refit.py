"""PyMca's non-negativity refit, made independent of the chunking.

After the linear solve, ``FastXRFLinearFit`` refits pixels with negative peak areas without the
offending peaks (``_fitLstSqNegative``): repeatedly, it takes the peak with the most negative
pixels over the *whole input*, adds every other peak negative in the same pixels, and either
refits those pixels with the reduced model or, if they are fewer than 0.25 % of the input, sets
the peaks to zero. Called block by block, PyMca would make those choices per block; here they are
made once for the whole map, so a map fitted in one chunk or in fifty gives the same numbers as
PyMca fitting the whole map in memory.

How, without holding the map: a pixel that is never negative is never touched, so only the
pixels with a negative peak after the first solve matter. Each block hands over those pixels'
areas and a compact state (``U.T @ y`` for the SVD solvers, ``nFree`` numbers instead of the
spectrum); :func:`refit_log` runs PyMca's loop on them and records each step (which peaks, zero
or refit); :func:`replay` applies the same steps to any block, pixel by pixel. Reduced solves
use the SVD of the full model: ``A[:, S] = U (diag(s) Vh[:, S])``, so the least-squares solution
for any subset ``S`` follows from ``U.T @ y`` alone, with PyMca's cut-off on singular values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xrfdask.fit.model import LinearModel
from xrfdask.fit.project import project

__all__ = ["RefitStep", "Candidates", "ReducedSolver", "refit_log", "replay", "candidates"]


@dataclass(frozen=True)
class RefitStep:
    """One iteration of PyMca's refit: the peaks (free-parameter indices) and what was done."""

    bad: tuple[int, ...]
    action: str  # "refit" (reduced model), "zero" (too few pixels), "force" (last resort)


@dataclass
class Candidates:
    """The pixels of a block with a negative peak after the first solve."""

    rows: np.ndarray  # int64 row indices within the block
    x: np.ndarray  # (k, free) areas, in the result dtype
    sigma: np.ndarray  # (k, free) uncertainties, in the result dtype
    state: np.ndarray  # (k, free) U.T @ y_w (SVD solvers) or (k, channels) y (policy 2)


def candidates(
    model: LinearModel,
    x: np.ndarray,
    sigma: np.ndarray,
    background_free: Callable[[np.ndarray], np.ndarray],
) -> Candidates:
    """Select the pixels of a block that the refit may touch and compute their state.

    ``background_free(rows)`` returns the background-subtracted, trimmed spectra of those rows
    (k, channels) as PyMca's solver sees them.
    """
    rows = np.flatnonzero((x[:, model.peak_slice] < 0).any(axis=1))
    if rows.size == 0:
        empty = np.zeros((0, model.n_free))
        return Candidates(rows, x[:0], sigma[:0], empty)
    y = background_free(rows)
    solver = ReducedSolver.for_model(model)
    return Candidates(rows, x[rows].copy(), sigma[rows].copy(), solver.state(y))


class ReducedSolver:
    """Least-squares solutions of a model restricted to a subset of its free parameters."""

    def __init__(self, model: LinearModel):
        self.model = model
        self._reduced: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def for_model(cls, model: LinearModel) -> ReducedSolver:
        """The model's solver in this process: its reduced SVDs are reused by every block."""
        solver = model.__dict__.get("_reduced_solver")
        if solver is None:
            solver = model.__dict__["_reduced_solver"] = cls(model)
        return solver

    @property
    def weights(self) -> np.ndarray | None:
        return self.model.weights

    def state(self, y: np.ndarray) -> np.ndarray:
        """(k, free) ``U.T @ (y / w)`` for the SVD policies; (k, channels) ``y`` for policy 2.

        ``y`` is (k, channels), background-free and trimmed.
        """
        if self.model.weight_policy == 2:
            return np.ascontiguousarray(y, dtype=np.float64)
        return project(self.model.state_matrix, y)

    def _projection(self, keep: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(|keep|, free) map from the state to the reduced solution, and its uncertainties."""
        if keep not in self._reduced:
            u, s, vh = self.model.svd
            m = self.model.derivatives.shape[0]
            reduced = s[:, None] * vh[:, list(keep)]
            um, sm, vhm = np.linalg.svd(reduced, full_matrices=False)
            n = len(keep)
            cutoff = (max(m, n) if self.weights is None else n) * np.finfo(np.float64).eps
            inv = np.where(sm < cutoff, 0.0, 1.0 / np.where(sm == 0, 1.0, sm))
            projection = (vhm.T * inv) @ um.T
            sigma = np.sqrt(np.sum((vhm.T * inv) ** 2, axis=1))
            self._reduced[keep] = (projection, sigma)
        return self._reduced[keep]

    def solve(self, state: np.ndarray, keep: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Areas and uncertainties (k, |keep|) of the reduced fit of ``k`` pixels."""
        if self.model.weight_policy == 2:
            from PyMca5.PyMcaMath.linalg import lstsq

            a = self.model.derivatives[:, list(keep)]
            out = lstsq(a, state.T, digested_output=True, svd=False, sigma_b=None, weight=1)
            return out["parameters"].T, out["uncertainties"].T
        projection, sigma = self._projection(keep)
        # Row by row (einsum, no BLAS blocking): a pixel's result does not depend on its batch.
        x = np.einsum("ij,kj->ki", projection, state, optimize=False)
        return x, np.broadcast_to(sigma, x.shape)


def _step(
    x: np.ndarray,
    sigma: np.ndarray,
    state: np.ndarray,
    step: RefitStep,
    model: LinearModel,
    solver: ReducedSolver,
) -> None:
    """Apply one refit step in place (x, sigma in the result dtype, as PyMca stores them)."""
    peaks = model.peak_slice
    if step.action == "force":
        block = x[:, peaks]
        block[block < 0] = 0.0
        return
    bad = list(step.bad)
    mask = np.all(x[:, bad] < 0, axis=1)
    if not mask.any():
        return
    if step.action == "zero":
        for j in bad:
            x[mask, j] = 0.0
            sigma[mask, j] = 0.0
        return
    keep = tuple(i for i in range(model.n_free) if i not in step.bad)
    values, errors = solver.solve(state[mask], keep)
    rows = np.flatnonzero(mask)
    x[np.ix_(rows, keep)] = values
    sigma[np.ix_(rows, keep)] = errors
    x[np.ix_(rows, bad)] = 0.0
    sigma[np.ix_(rows, bad)] = 0.0


def refit_log(parts: list[Candidates], model: LinearModel) -> list[RefitStep]:
    """Run PyMca's refit loop on the candidate pixels of the whole map; return its steps.

    Mirrors ``FastXRFLinearFit._fitLstSqNegative``: the same order of choices, the same
    threshold (0.25 % of all the map's pixels) and the same iteration limit.
    """
    x = np.concatenate([p.x for p in parts]) if parts else np.zeros((0, model.n_free))
    sigma = np.concatenate([p.sigma for p in parts]) if parts else x.copy()
    state = np.concatenate([p.state for p in parts]) if parts else np.zeros((0, model.n_free))
    solver = ReducedSolver.for_model(model)
    nmin = 0.0025 * model.npixels
    first = model.n_free_bkg
    n_iter = 2 * (model.n_free - first) + 1
    steps: list[RefitStep] = []
    iteration = 1
    while True:
        negative = x[:, first:] < 0
        counts = negative.sum(axis=0)
        listed = sorted(((int(c), j + first) for j, c in enumerate(counts) if c > 0), reverse=True)
        if not listed:
            break
        if iteration > n_iter:
            step = RefitStep((), "force")
            _step(x, sigma, state, step, model, solver)
            steps.append(step)
            continue
        bad = [listed[0][1]]
        mask = negative[:, listed[0][1] - first]
        for count, j in listed:
            if j not in bad and count:
                combined = mask & negative[:, j - first]
                if combined.any():
                    bad.append(j)
                    mask = combined
        action = "zero" if mask.sum() < nmin else "refit"
        step = RefitStep(tuple(bad), action)
        _step(x, sigma, state, step, model, solver)
        steps.append(step)
        iteration += 1
    return steps


def replay(
    x: np.ndarray, sigma: np.ndarray, found: Candidates, steps: list[RefitStep], model: LinearModel
) -> None:
    """Apply the map's refit steps to one block's candidate pixels (in place on x, sigma)."""
    if not steps or found.rows.size == 0:
        return
    solver = ReducedSolver.for_model(model)
    xs, ss = found.x.copy(), found.sigma.copy()
    for step in steps:
        _step(xs, ss, found.state, step, model, solver)
    x[found.rows] = xs
    sigma[found.rows] = ss
