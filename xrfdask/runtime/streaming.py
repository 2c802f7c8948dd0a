"""Streaming: compute a sequence of results in order with bounded look-ahead.

Writers that must put results in one file, in order, pull them through :func:`iter_computed`,
which keeps only a few blocks in flight so memory stays bounded by chunk size, whatever the map
size. Whole-map steps every block depends on (``xrf-global-…``) are computed once, first
(:func:`materialize_globals`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import dask

from xrfdask.runtime.clusters import current_client, parallelism
from xrfdask.runtime.reporting import step_bar, whole_bars_paused

__all__ = ["GLOBAL_PREFIX", "iter_computed", "materialize_globals"]

GLOBAL_PREFIX = "xrf-global-"  # tasks every block of a result depends on (e.g. the map's refit)


def materialize_globals(tasks: Sequence[Any]) -> list[Any]:
    """Compute the whole-map steps of the graphs once, and put their values in the graphs.

    A writer that computes a result band by band would otherwise recompute, for every band, any
    task that all bands depend on (such as the refit decided from the whole map, ``xrf-global-…``).
    Those tasks are computed first, in one computation (which keeps only their small inputs), and
    substituted; the bands are then independent. Cost: one look at the layer names of each
    distinct graph, so nothing when there is no such task.
    """
    from dask.base import is_dask_collection
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    flat = [t for item in tasks for t in (item if isinstance(item, list | tuple) else [item])]
    graphs: dict[int, Any] = {}
    for t in flat:
        if is_dask_collection(t):
            g = t.__dask_graph__()
            graphs.setdefault(id(g), g)
    found: dict[str, Any] = {}  # global layer name -> its graph
    for g in graphs.values():  # eager-ok: a dict of graphs, not array values
        layers = g.layers if isinstance(g, HighLevelGraph) else {k: None for k in g}
        for name in layers:
            if isinstance(name, str) and name.startswith(GLOBAL_PREFIX):
                found.setdefault(name, g)
    if not found:
        return list(tasks)
    from dask.delayed import Delayed

    computed = dask.compute(*[Delayed(name, g) for name, g in found.items()])
    values = dict(zip(found, computed, strict=True))
    replaced: dict[int, Any] = {}

    def substituted(g):
        if id(g) not in replaced:
            if isinstance(g, HighLevelGraph):
                layers, deps = dict(g.layers), dict(g.dependencies)
                for name, value in values.items():
                    if name in layers:
                        layers[name] = MaterializedLayer({name: value})
                        deps[name] = set()
                replaced[id(g)] = HighLevelGraph(layers, deps)
            else:
                replaced[id(g)] = {**g, **{k: v for k, v in values.items() if k in g}}
        return replaced[id(g)]

    return [_substitute(item, substituted) for item in tasks]


def _substitute(item: Any, substituted) -> Any:
    from dask.delayed import Delayed

    if isinstance(item, list | tuple):
        return type(item)(_substitute(i, substituted) for i in item)
    if isinstance(item, Delayed):
        return Delayed(item.key, substituted(item.__dask_graph__()))
    if hasattr(item, "__dask_graph__") and hasattr(item, "chunks"):  # a dask array
        import dask.array as da

        return da.Array(substituted(item.__dask_graph__()), item.name, item.chunks, meta=item._meta)
    return item


def iter_computed(tasks: Sequence[Any], *, window: int | None = None) -> Iterator[Any]:
    """Compute dask collections one by one, yielding results in order with bounded look-ahead.

    At most ``window`` tasks are computing or waiting to be consumed at once, so a writer that
    consumes results sequentially holds at most ``window`` blocks in memory. Inside
    :func:`~xrfdask.runtime.progress`, a one-line bar counts the steps.

    Parameters
    ----------
    tasks : sequence of dask collections (Delayed, Array, or lists of them)
    window : int, optional
        Look-ahead; default: the scheduler's parallelism (plus one on distributed, so the
        transfer of one result overlaps the computation of the next).
    """
    tasks = materialize_globals(tasks)
    client = current_client()
    window = window or parallelism() + (1 if client is not None else 0)
    with step_bar(len(tasks)) as bar:
        if client is None:
            for i in range(0, len(tasks), window):
                with whole_bars_paused():  # the step bar reports, not one bar per step
                    results = dask.compute(*tasks[i : i + window])
                for result in results:
                    bar.update(1)
                    yield result
            return
        pending: deque = deque()
        todo = iter(tasks)
        for task in todo:
            pending.append(client.compute(task))
            if len(pending) >= window:
                break
        while pending:
            future = pending.popleft()
            result = [f.result() for f in future] if isinstance(future, list) else future.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(client.compute(nxt))
            bar.update(1)
            yield result
