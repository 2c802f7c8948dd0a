"""What :func:`xrfdask.fit` needs from a fit engine, and the graph helpers engines share.

An engine turns a map's blocks of pixels into blocks of areas and uncertainties. ``fit``
validates the configuration, builds the linear model of each detector from the global sum
spectrum (:func:`~xrfdask.fit.model.build_model`) and then asks the engine for its graph; the
engine decides what runs per block.

The graphs are written as task dictionaries, one HighLevelGraph layer per step, rather than with
dask.delayed: building them is serial time before any worker starts, and delayed's argument
traversal and tokenising cost ~0.7 ms per band (a 40 GB map has thousands of bands).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from xrfdask.fit.model import LinearModel

__all__ = ["Engine", "block_grid", "results"]


class Engine:
    """A fit engine: subclass, set :attr:`name`, implement :meth:`graph`, then register it.

    Instances hold no state (one per process, in :mod:`xrfdask.fit.engines`' registry).
    """

    #: The ``method=`` of :func:`xrfdask.fit` that selects the engine; also the name of its
    #: solve tasks on the dashboard (``fit-<name>``).
    name: ClassVar[str]

    #: The built-in method whose configuration rules apply
    #: (:func:`~xrfdask.fit.config.validate_config`'s ``method``): what the engine fits, e.g.
    #: ``"linear"`` for an engine solving the same linear model on other hardware.
    config_rules: ClassVar[str]

    def resolve_weight(self, config: dict, weight: int | None) -> int | None:
        """Check ``weight`` against what the engine supports; return the one to fit with.

        ``weight`` is already one of None, 0, 1, 2. Raise :class:`~xrfdask.ConfigError` naming
        the engines that support a refused option. The default takes every weight as given
        (None: PyMca's own reading of ``fit.fitweight``).
        """
        return weight

    def result_dtype(self, models: list[LinearModel]) -> np.dtype:
        """dtype of ``peak_area`` and ``peak_area_error`` (PyMca's result dtype by default)."""
        return models[0].result_dtype

    def graph(
        self, data: da.Array, config: dict, models: list[LinearModel], lines: list[str], token: str
    ) -> tuple[da.Array, da.Array]:
        """Areas and uncertainties (y, x, detector, line), lazily.

        Parameters
        ----------
        data : dask array
            The raw spectra (y, x, detector, channel), one chunk along detector and channel.
        config : dict
            The validated configuration.
        models : list of LinearModel
            One per detector, built from the global sum spectra.
        lines : list of str
            The result's line axis (the union of the models' lines); NaN where a detector
            does not fit a line.
        token : str
            Suffix of every task name (``fit-<name>-<token>``), deterministic in the inputs.
        """
        raise NotImplementedError


def block_grid(data: da.Array) -> Iterator[tuple[int, int, int, int]]:
    """(i, j, rows, cols) for every block of pixels, in raster order."""
    for i, rows in enumerate(data.chunks[0]):
        for j, cols in enumerate(data.chunks[1]):
            yield i, j, rows, cols


def results(
    layers: dict[str, dict],
    deps: dict[str, set],
    data: da.Array,
    nlines: int,
    dtype: Any,
    inputs=(),
) -> tuple[da.Array, da.Array]:
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
