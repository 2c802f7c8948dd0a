"""Where graphs run: cluster selection, bounded streaming of results, progress reporting.

Library functions build graphs and leave the choice of scheduler to dask: threads by default, or
the active ``distributed`` client. Writers that must put results in one file, in order, pull them
through :func:`iter_computed`, which keeps only a few blocks in flight so memory stays bounded by
chunk size, whatever the map size.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import dask

__all__ = ["connect", "current_client", "iter_computed", "progress", "parallelism"]


def current_client():
    """The active ``distributed.Client``, or None when dask uses a local scheduler."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        client = default_client()
    except ValueError:
        return None
    return client if client.status == "running" else None


def parallelism() -> int:
    """How many tasks can run at once on the current scheduler."""
    client = current_client()
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))  # eager-ok: dict of workers
        except Exception:  # noqa: BLE001 - scheduler unreachable: fall back
            return 1
    workers = dask.config.get("num_workers", None)
    return max(1, int(workers or os.cpu_count() or 1))


class _TextBar:
    """A one-line progress bar on stderr for work done in steps (bands written...)."""

    def __init__(self, label: str = "", width: int = 30):
        self.label, self.width = label, width
        self.total, self.t0 = 0, time.perf_counter()

    def start(self, total: int) -> None:
        self.total, self.t0 = max(total, 1), time.perf_counter()
        self.update(0)

    def update(self, done: int) -> None:
        filled = int(self.width * done / self.total)
        elapsed = time.perf_counter() - self.t0
        bar = "#" * filled + " " * (self.width - filled)
        end = "\n" if done >= self.total else ""
        print(f"\r{self.label}[{bar}] {100 * done // self.total:3d}% {done}/{self.total} | {elapsed:.1f} s", end=end, file=sys.stderr, flush=True)


_BAR: contextvars.ContextVar[_TextBar | None] = contextvars.ContextVar("xrfdask_progress", default=None)


@contextlib.contextmanager
def _quiet_local_bars():
    """Hide dask's ProgressBar while a step-wise bar reports instead (one line, not one per step)."""
    from dask.callbacks import Callback
    from dask.diagnostics import ProgressBar

    hidden = set()
    for cb in list(Callback.active):  # each is a tuple of the callback's bound methods
        owners = {getattr(f, "__self__", None) for f in cb if f is not None}
        if any(isinstance(owner, ProgressBar) for owner in owners):
            hidden.add(cb)
    Callback.active.difference_update(hidden)
    try:
        yield
    finally:
        Callback.active.update(hidden)


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

    values = dict(zip(found, dask.compute(*[Delayed(name, g) for name, g in found.items()]), strict=True))
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
    :func:`progress`, a one-line bar counts the steps.

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
    bar = _BAR.get()
    if bar is not None:
        bar.start(len(tasks))
    done = 0
    if client is None:
        for i in range(0, len(tasks), window):
            with _quiet_local_bars() if bar is not None else contextlib.nullcontext():
                results = dask.compute(*tasks[i : i + window])
            for result in results:
                done += 1
                if bar is not None:
                    bar.update(done)
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
        done += 1
        if bar is not None:
            bar.update(done)
        yield result


def connect(
    scheduler: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | None = "auto",
    dashboard_address: str = "127.0.0.1:8787",
    processes: bool = True,
    **cluster_kwargs: Any,
):
    """Start or join a dask cluster and return a ``distributed.Client``.

    Parameters
    ----------
    scheduler : str, optional
        None: a new ``LocalCluster`` on 127.0.0.1 (process workers, dashboard on loopback).
        ``"tcp://host:port"``: an existing scheduler. A path to a scheduler file. ``"slurm"`` or
        ``"pbs"``: a dask-jobqueue cluster configured by ``~/.config/dask/jobqueue.yaml``.
    n_workers, threads_per_worker, memory_limit, dashboard_address, processes
        LocalCluster settings (the default splits the machine's cores between workers).
    **cluster_kwargs
        Passed to the cluster class.

    Returns
    -------
    distributed.Client
        The client, which is also set as dask's default scheduler; its ``dashboard_link`` shows
        the running tasks.
    """
    from distributed import Client, LocalCluster

    if scheduler is None or scheduler == "local":
        # distributed sets MALLOC_TRIM_THRESHOLD_=65536 in workers, which turns off glibc's
        # dynamic mmap threshold: every band-sized temporary is then mapped and page-faulted
        # afresh (measured: 20 % of the linear fit's time). The default allocator reuses them.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                memory_limit=memory_limit,
                dashboard_address=dashboard_address,
                host="127.0.0.1",
                **cluster_kwargs,
            )
        return Client(cluster)
    if scheduler in ("slurm", "pbs"):
        try:
            import dask_jobqueue
        except ImportError:
            raise ImportError(
                f"scheduler={scheduler!r} needs dask-jobqueue: pip install dask-jobqueue"
            ) from None
        cls = dask_jobqueue.SLURMCluster if scheduler == "slurm" else dask_jobqueue.PBSCluster
        cluster = cls(**cluster_kwargs)
        cluster.scale(jobs=n_workers or 1)
        return Client(cluster)
    if os.path.exists(scheduler):
        return Client(scheduler_file=scheduler)
    return Client(scheduler)


@contextlib.contextmanager
def progress(enabled: bool = True, *, label: str = ""):
    """Report progress of the graphs computed inside the block, on stderr.

    Local schedulers: dask's text ``ProgressBar`` for whole computations, and a one-line bar for
    step-wise writers (:func:`iter_computed`). On a distributed cluster the dashboard link is printed
    and the step-wise bar still counts bands.
    """
    if not enabled:
        yield
        return
    token = _BAR.set(_TextBar(label))
    try:
        client = current_client()
        if client is not None:
            print(f"{label}dashboard: {client.dashboard_link}", file=sys.stderr)
            yield
            return
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr, minimum=1.0):
            yield
    finally:
        _BAR.reset(token)
