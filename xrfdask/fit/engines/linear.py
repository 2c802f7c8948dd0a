"""``method="linear"``: xrfdask's engine, the compiled SNIP then one fixed projection per pixel.

The background is :mod:`xrfdask.fit.background`'s compiled SNIP over the whole block; the
areas are the model's pseudo-inverse (computed once, the sum-spectrum weights folded in) applied
to every pixel by :func:`~xrfdask.fit.project.project`, which does not use BLAS. Weighting: none
or PyMca's average weights from the sum spectrum (``fitweight`` 1), one fixed matrix either way.
"""

from __future__ import annotations

import numpy as np

from xrfdask.errors import ConfigError
from xrfdask.fit.background import subtract_background
from xrfdask.fit.engines.blocks import Solved, SolveEngine
from xrfdask.fit.model import LinearModel
from xrfdask.fit.project import project
from xrfdask.fit.refit import candidates

__all__ = ["LinearEngine", "solve_linear"]


def solve_linear(y: np.ndarray, model: LinearModel) -> Solved:
    """xrfdask's engine: compiled SNIP over the block, then ``x = pinv @ y`` for every pixel.

    ``y`` is a C-contiguous (pixels, fit channels) block
    (:func:`~xrfdask.fit.engines.blocks.trimmed`); it is overwritten.
    """
    if model.strip:
        subtract_background(
            y, model.snip_width, filter_width=model.filter_width, anchors=model.anchors
        )
    x = project(model.projection, y, np.empty((y.shape[0], model.n_free), dtype=model.result_dtype))
    # The same for every pixel: a read-only view.
    sigma = np.broadcast_to(model.sigma.astype(model.result_dtype), x.shape)
    return x, sigma, candidates(model, x, sigma, lambda rows: y[rows])


class LinearEngine(SolveEngine):
    """xrfdask's linear engine (:func:`solve_linear` per block)."""

    name = "linear"
    config_rules = "linear"
    solve = staticmethod(solve_linear)

    def resolve_weight(self, config: dict, weight: int | None) -> int:
        if weight == 2:
            raise ConfigError(
                "weight=2: individual pixel weights are supported by methods 'pymca' and 'full', "
                "not 'linear'"
            )
        if weight is None:  # fitweight 1: the sum spectrum's average weights, one fixed matrix
            weight = 1 if config["fit"]["fitweight"] else 0
        return weight
