"""Cluster selection: start or join a dask cluster (:func:`connect`), and ask the active one.

Each kind of cluster that :func:`connect` can start is a factory registered by name
(``"local"``; ``"slurm"``, ``"pbs"``, ``"sge"``, ``"lsf"`` through dask-jobqueue;
``"kubernetes"`` through dask-kubernetes); other kinds register theirs with
:func:`register_cluster`. Anything else is a scheduler address or a scheduler file.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import dask

__all__ = ["connect", "current_client", "jobqueue_cluster", "parallelism", "register_cluster"]

logger = logging.getLogger("xrfdask.runtime")

#: kind -> factory(n_workers=..., threads_per_worker=..., memory_limit=..., dashboard_address=...,
#: processes=..., warm=..., **cluster_kwargs) -> a started cluster (a ``distributed`` deploy
#: object). ``cluster_kwargs`` hold ``adapt=(minimum, maximum)``, ``security=`` (a ``Security``)
#: and a batch job's ``cores=``, ``memory=``, ``walltime=``, ``queue=`` only when they are given.
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
    if "distributed" not in sys.modules:
        return None  # no client without distributed imported; its import costs ~0.3 s
    from distributed import default_client

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
    adapt: tuple[int, int] | None = None,
    **cluster_kwargs: Any,
):
    from distributed import LocalCluster

    if adapt is not None:
        n_workers = adapt[0]
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
    if adapt is not None:
        cluster.adapt(minimum=adapt[0], maximum=adapt[1])
    return cluster


#: dask-jobqueue's cluster class for each batch system ``connect`` knows by name.
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}


def jobqueue_cluster(
    kind: str,
    *,
    dashboard_address: str = "127.0.0.1:8787",
    security: Any = None,
    **cluster_kwargs: Any,
):
    """A dask-jobqueue cluster of ``kind`` (``"slurm"``, ``"pbs"``, ``"sge"``, ``"lsf"``), no jobs.

    Only the settings given are passed: dask-jobqueue takes the others from dask's
    configuration, ``jobqueue.<kind>.*`` (``~/.config/dask/jobqueue.yaml``, ``/etc/dask/``,
    ``DASK_JOBQUEUE__SLURM__CORES=...``). The scheduler runs here, reachable from the compute
    nodes; its dashboard binds to ``dashboard_address`` (loopback by default) unless
    ``scheduler_options`` (given, or ``jobqueue.<kind>.scheduler-options``) says otherwise.
    ``cluster.job_script()`` shows the script each job will run.
    """
    try:
        import dask_jobqueue
    except ImportError:
        raise ImportError(
            f'scheduler={kind!r} needs dask-jobqueue: pip install "xrfdask[cluster]"'
        ) from None
    cls = getattr(dask_jobqueue, JOBQUEUE[kind])
    configured = dask.config.get(f"jobqueue.{kind}.scheduler-options", None) or {}
    cluster_kwargs["scheduler_options"] = {
        "dashboard_address": dashboard_address,
        **configured,
        **(cluster_kwargs.get("scheduler_options") or {}),
    }
    if security is not None and security is not False:
        cluster_kwargs["security"] = security
    return cls(**cluster_kwargs)


def _jobqueue(kind: str) -> Callable[..., Any]:
    def factory(
        *,
        n_workers: int | None,
        threads_per_worker: int | None,
        memory_limit: str | None,
        dashboard_address: str,
        processes: bool | int,
        warm: bool,
        adapt: tuple[int, int] | None = None,
        **cluster_kwargs: Any,
    ):
        if threads_per_worker is not None:
            raise ValueError(
                f"threads_per_worker does not apply to scheduler={kind!r}: a job's cores= "
                "threads are shared among its processes= workers"
            )
        if memory_limit not in (None, "auto"):
            cluster_kwargs.setdefault("memory", memory_limit)  # one worker per job by default
        if type(processes) is int:  # worker processes per job (a bool: LocalCluster's switch)
            cluster_kwargs.setdefault("processes", processes)
        cluster = jobqueue_cluster(kind, dashboard_address=dashboard_address, **cluster_kwargs)
        if adapt is not None:
            cluster.adapt(minimum_jobs=adapt[0], maximum_jobs=adapt[1])
        else:
            cluster.scale(jobs=n_workers or 1)
        return cluster

    return factory


for _kind in JOBQUEUE:
    register_cluster(_kind)(_jobqueue(_kind))


@register_cluster("kubernetes")
def _kubernetes(
    *,
    n_workers: int | None,
    threads_per_worker: int | None,
    memory_limit: str | None,
    dashboard_address: str,
    processes: bool,
    warm: bool,
    adapt: tuple[int, int] | None = None,
    security: Any = None,
    **cluster_kwargs: Any,
):
    """A cluster of pods through the Dask Kubernetes Operator (``DaskCluster`` resources)."""
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError:
        raise ImportError(
            'scheduler="kubernetes" needs dask-kubernetes: pip install "xrfdask[kubernetes]"'
        ) from None
    if security is not None and security is not False:
        raise ValueError(
            'security= does not apply to scheduler="kubernetes": configure TLS in the '
            "DaskCluster resource (see deploy/kubernetes/)"
        )
    if n_workers is not None:
        cluster_kwargs["n_workers"] = n_workers if adapt is None else adapt[0]
    cluster = KubeCluster(**cluster_kwargs)  # image, name, namespace... or dask config kubernetes.*
    if adapt is not None:
        cluster.adapt(minimum=adapt[0], maximum=adapt[1])
    return cluster


def _adapt_range(adapt: bool | tuple[int, int], workers: int | None) -> tuple[int, int] | None:
    """``adapt=`` as (minimum, maximum), or None for a fixed size."""
    if adapt is False or adapt is None:
        return None
    if adapt is True:
        if workers is None:
            raise ValueError(
                "adapt=True scales between 0 and workers=N: give workers, or "
                "adapt=(minimum, maximum)"
            )
        return 0, int(workers)
    try:
        low, high = (int(v) for v in adapt)
    except (TypeError, ValueError):
        raise ValueError(
            f"adapt must be True, False or (minimum, maximum), not {adapt!r}"
        ) from None
    if not 0 <= low <= high:
        raise ValueError(f"adapt=(minimum, maximum) needs 0 <= minimum <= maximum, not {adapt!r}")
    return low, high


def _security(security: Any, *, joining: bool):
    """``security=`` as a ``distributed.security.Security`` (None when not given)."""
    if security is None or security is False:
        return None
    if security is True:
        if joining:
            raise ValueError(
                "security=True makes new certificates, which an existing scheduler does not "
                "trust: give a Security with its CA and a client certificate"
            )
        from distributed.security import Security

        try:
            return Security.temporary()
        except ImportError:
            raise ImportError(
                'security=True needs the cryptography package: pip install "xrfdask[cluster]"'
            ) from None
    return security


def connect(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | None = "auto",
    dashboard_address: str = "127.0.0.1:8787",
    processes: bool | int = True,
    cores: int | None = None,
    memory: str | None = None,
    walltime: str | None = None,
    queue: str | None = None,
    adapt: bool | tuple[int, int] = False,
    security: Any = None,
    warm: bool | None = None,
    **cluster_kwargs: Any,
):
    """Start or join a dask cluster and return a ``distributed.Client``.

    Parameters
    ----------
    scheduler : str, optional
        None or ``"local"``: a new ``LocalCluster`` on 127.0.0.1 (process workers, dashboard on
        loopback). ``"slurm"``, ``"pbs"``, ``"sge"``, ``"lsf"``: a dask-jobqueue cluster (the
        ``cluster`` extra), one batch job per worker, whose settings not given here come from
        dask's configuration ``jobqueue.<kind>.*`` (``~/.config/dask/jobqueue.yaml``, ``DASK_*``
        variables). ``"kubernetes"``: pods through the Dask Kubernetes Operator (the
        ``kubernetes`` extra; ``image=``, ``name=``... in ``cluster_kwargs``). Another kind
        registered with :func:`register_cluster`. A path to a scheduler file. Otherwise a
        scheduler address, ``"tcp://host:port"`` or ``"tls://host:port"``.
    workers : int, optional
        How many workers: LocalCluster workers, batch jobs (a job runs ``processes`` workers,
        one by default) or pods. ``n_workers`` is the same, LocalCluster's spelling.
    threads_per_worker, memory_limit, processes
        LocalCluster settings (the default splits the machine's cores between workers). For a
        batch system ``memory_limit`` is the job's ``memory`` when that is not given, and
        ``processes`` as an int is the workers per job.
    dashboard_address : str
        Where the scheduler's dashboard listens: loopback by default, also for a batch system's
        scheduler on a login node (reach it through ``ssh -L 8787:127.0.0.1:8787 login-node``).
    cores, memory, walltime, queue
        One batch job's cores, memory (``"16GiB"``), time limit (``"01:00:00"``) and queue or
        partition; only those given are passed, over ``jobqueue.<kind>.*``.
    adapt : bool or (int, int)
        Scale with the work instead of to a fixed size: True for between 0 and ``workers``, or
        ``(minimum, maximum)`` workers (jobs for a batch system).
    security : distributed.security.Security or True, optional
        TLS for every connection (``tls://``): True makes temporary self-signed certificates
        for a cluster started here (needs ``cryptography``); a ``Security`` with files is used
        by the cluster started here, or by the client joining an existing scheduler.
    warm : bool, optional
        Import xrfdask and load its compiled kernels in every worker as it starts
        (:mod:`xrfdask.runtime.preload`), so that the first tasks do not pay for it. Default:
        on for a cluster started here (dask setting ``xrfdask.runtime.warm-workers``, e.g.
        ``DASK_XRFDASK__RUNTIME__WARM_WORKERS=False``, turns it off), off when joining an
        existing scheduler.
    **cluster_kwargs
        Passed to the cluster class (``account=``, ``job_extra_directives=``, ``interface=``,
        ``scheduler_options=``... for dask-jobqueue).

    Returns
    -------
    distributed.Client
        The client, which is also set as dask's default scheduler; its ``dashboard_link`` shows
        the running tasks (also logged at INFO level on the ``xrfdask.runtime`` logger).
    """
    from distributed import Client

    if workers is not None and n_workers is not None and workers != n_workers:
        raise ValueError(f"workers={workers} and n_workers={n_workers} disagree: give one")
    n_workers = n_workers if workers is None else workers
    kind = "local" if scheduler is None else scheduler
    job = {"cores": cores, "memory": memory, "walltime": walltime, "queue": queue}
    job = {key: value for key, value in job.items() if value is not None}
    if job and kind not in JOBQUEUE:
        raise ValueError(
            f"{', '.join(f'{key}=' for key in job)} apply to a batch system "
            f"({', '.join(map(repr, JOBQUEUE))}), not scheduler={scheduler!r}"
        )
    adapt_range = _adapt_range(adapt, n_workers)
    if kind in CLUSTERS:
        security = _security(security, joining=False)
        if security is not None:
            cluster_kwargs["security"] = security
        if adapt_range is not None:
            cluster_kwargs["adapt"] = adapt_range
        cluster = CLUSTERS[kind](
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            dashboard_address=dashboard_address,
            processes=processes,
            warm=_warm_default() if warm is None else warm,
            **job,
            **cluster_kwargs,
        )
        client = Client(cluster, security=security)
        if kind != "local" and (warm or warm is None and _warm_default()):
            _warm_workers(client)
    else:
        if adapt_range is not None:
            raise ValueError("adapt= applies to a cluster started here, not to a scheduler address")
        security = _security(security, joining=True)
        if os.path.exists(kind):
            client = Client(scheduler_file=kind, security=security)
        else:
            client = Client(kind, security=security)
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
