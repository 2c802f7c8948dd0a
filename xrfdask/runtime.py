"""Where graphs run: cluster selection, bounded streaming of results, progress reporting.

Library functions build graphs and leave the choice of scheduler to dask: threads by default, or
the active ``distributed`` client. Writers that must put results in one file, in order, pull them
through :func:`iter_computed`, which keeps only a few blocks in flight so memory stays bounded by
chunk size, whatever the map size.
"""

from __future__ import annotations

import contextlib
import os
import sys
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


def iter_computed(tasks: Sequence[Any], *, window: int | None = None) -> Iterator[Any]:
    """Compute dask collections one by one, yielding results in order with bounded look-ahead.

    At most ``window`` tasks are computing or waiting to be consumed at once, so a writer that
    consumes results sequentially holds at most ``window`` blocks in memory.

    Parameters
    ----------
    tasks : sequence of dask collections (Delayed, Array...)
    window : int, optional
        Look-ahead; default: the scheduler's parallelism (at least 2 on distributed, so the
        transfer of one result overlaps the computation of the next).
    """
    client = current_client()
    window = window or parallelism() + (1 if client is not None else 0)
    if client is None:
        for i in range(0, len(tasks), window):
            yield from dask.compute(*tasks[i : i + window])
        return
    pending: deque = deque()
    todo = iter(tasks)
    for task in todo:
        pending.append(client.compute(task))
        if len(pending) >= window:
            break
    while pending:
        future = pending.popleft()
        result = future.result()
        future.release()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append(client.compute(nxt))
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
    """Show a text progress bar for graphs computed inside the block (local schedulers).

    On a distributed cluster the dashboard shows progress; a one-line pointer to it is printed.
    """
    if not enabled:
        yield
        return
    client = current_client()
    if client is not None:
        print(f"{label}dashboard: {client.dashboard_link}", file=sys.stderr)
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr, minimum=1.0):
        yield
