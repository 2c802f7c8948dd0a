"""Cluster selection: start or join a dask cluster (:func:`connect`), and ask the active one.

Each kind of cluster that :func:`connect` can start is a factory registered by name
(``"local"``, ``"slurm"``, ``"pbs"``); other kinds (dask-kubernetes...) register theirs with
:func:`register_cluster`. Anything else is a scheduler address or a scheduler file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import dask

__all__ = ["connect", "current_client", "parallelism", "register_cluster"]

logger = logging.getLogger("xrfdask.runtime")

#: kind -> factory(n_workers=..., threads_per_worker=..., memory_limit=..., dashboard_address=...,
#: processes=..., warm=..., **cluster_kwargs) -> a started cluster (a ``distributed`` deploy object)
CLUSTERS: dict[str, Callable[..., Any]] = {}

#: The worker preload that imports xrfdask and loads its compiled kernels at start-up.
PRELOAD = "xrfdask.runtime.preload"


def register_cluster(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a cluster factory under ``kind``, so that ``connect(kind)`` starts one."""

    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        CLUSTERS[kind] = factory
        return factory

    return add


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


@register_cluster("local")
def _local_cluster(
    *,
    n_workers: int | None,
    threads_per_worker: int | None,
    memory_limit: str | None,
    dashboard_address: str,
    processes: bool,
    warm: bool,
    **cluster_kwargs: Any,
):
    from distributed import LocalCluster

    if warm and processes:
        # Imports and numba's cache loads run while the worker starts, before it takes tasks
        # (measured on the 1.3 GB map: 1-2 s in each worker's first tasks otherwise).
        preload = list(cluster_kwargs.pop("preload", None) or [])
        cluster_kwargs["preload"] = [*preload, PRELOAD]
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
    if warm and not processes:
        from xrfdask.runtime.preload import warm_up

        warm_up()  # the workers are threads of this process
    return cluster


def _jobqueue(kind: str) -> Callable[..., Any]:
    def factory(*, n_workers: int | None, warm: bool, **cluster_kwargs: Any):
        try:
            import dask_jobqueue
        except ImportError:
            raise ImportError(
                f"scheduler={kind!r} needs dask-jobqueue: pip install dask-jobqueue"
            ) from None
        for key in ("threads_per_worker", "memory_limit", "dashboard_address", "processes"):
            cluster_kwargs.pop(key, None)  # set by ~/.config/dask/jobqueue.yaml
        cls = dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster
        cluster = cls(**cluster_kwargs)
        cluster.scale(jobs=n_workers or 1)
        return cluster

    return factory


register_cluster("slurm")(_jobqueue("slurm"))
register_cluster("pbs")(_jobqueue("pbs"))


def connect(
    scheduler: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | None = "auto",
    dashboard_address: str = "127.0.0.1:8787",
    processes: bool = True,
    warm: bool | None = None,
    **cluster_kwargs: Any,
):
    """Start or join a dask cluster and return a ``distributed.Client``.

    Parameters
    ----------
    scheduler : str, optional
        None or ``"local"``: a new ``LocalCluster`` on 127.0.0.1 (process workers, dashboard on
        loopback). A registered kind (``"slurm"``, ``"pbs"``: a dask-jobqueue cluster
        configured by ``~/.config/dask/jobqueue.yaml``; see :func:`register_cluster`).
        A path to a scheduler file. Otherwise a scheduler address, ``"tcp://host:port"``.
    n_workers, threads_per_worker, memory_limit, dashboard_address, processes
        LocalCluster settings (the default splits the machine's cores between workers).
    warm : bool, optional
        Import xrfdask and load its compiled kernels in every worker as it starts
        (:mod:`xrfdask.runtime.preload`), so that the first tasks do not pay for it. Default:
        on for a cluster started here (dask setting ``xrfdask.runtime.warm-workers``, e.g.
        ``DASK_XRFDASK__RUNTIME__WARM_WORKERS=False``, turns it off), off when joining an
        existing scheduler.
    **cluster_kwargs
        Passed to the cluster class.

    Returns
    -------
    distributed.Client
        The client, which is also set as dask's default scheduler; its ``dashboard_link`` shows
        the running tasks (also logged at INFO level on the ``xrfdask.runtime`` logger).
    """
    from distributed import Client

    kind = "local" if scheduler is None else scheduler
    if kind in CLUSTERS:
        cluster = CLUSTERS[kind](
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            dashboard_address=dashboard_address,
            processes=processes,
            warm=_warm_default() if warm is None else warm,
            **cluster_kwargs,
        )
        client = Client(cluster)
        if kind != "local" and (warm or warm is None and _warm_default()):
            _warm_workers(client)
    else:
        client = Client(scheduler_file=kind) if os.path.exists(kind) else Client(kind)
        if warm:
            _warm_workers(client)
    logger.info("dask dashboard: %s", client.dashboard_link)
    return client


def _warm_default() -> bool:
    return bool(dask.config.get("xrfdask.runtime.warm-workers", True))


def _warm_workers(client) -> None:
    """Run the preload's warm-up on every worker, now and on workers that join later."""
    from xrfdask.runtime.preload import WarmUp

    client.register_plugin(WarmUp(), name="xrfdask-warm-up")
