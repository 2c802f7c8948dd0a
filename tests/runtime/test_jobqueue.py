"""Batch-system and Kubernetes clusters through ``xd.connect``, without a batch system.

What is tested for real: dask-jobqueue builds its cluster here (a scheduler on 127.0.0.1), and
``cluster.job_script()`` renders the script each job would run, so the settings given to
``connect`` and the defaults from dask's ``jobqueue.<kind>.*`` configuration are checked in the
script itself; ``workers=N`` is checked as the N job specs the cluster asks for. Submitting them
(``sbatch``, ``qsub``...) is replaced by a no-op, so no job is ever submitted.

Not part of this change: a test against a real Slurm (or PBS, SGE, LSF) cluster, and one
against a real Kubernetes cluster with the Dask operator; only the missing-extra error of
``connect("kubernetes")`` is tested.
"""

from __future__ import annotations

import inspect
import sys

import dask
import pytest

dask_jobqueue = pytest.importorskip("dask_jobqueue", reason="the test extra installs it")

from xrfdask.cli import build_parser  # noqa: E402
from xrfdask.cli.common import UsageError, connect_arguments, scheduler  # noqa: E402
from xrfdask.runtime import connect  # noqa: E402
from xrfdask.runtime.clusters import CLUSTERS, JOBQUEUE, jobqueue_cluster  # noqa: E402

# The tests' schedulers listen on loopback only (a real one must be reachable from the nodes).
LOOPBACK = {"scheduler_options": {"host": "127.0.0.1"}, "dashboard_address": "127.0.0.1:0"}


@pytest.fixture
def no_submission(monkeypatch):
    """Jobs are planned (``cluster.worker_spec``) but never submitted: no sbatch is called."""

    async def plan_only(self):
        self._correct_state_waiting = None

    monkeypatch.setattr(dask_jobqueue.core.JobQueueCluster, "_correct_state_internal", plan_only)


def _close(client):
    cluster = client.cluster
    client.close()
    cluster.close()


def test_every_batch_system_is_a_cluster_kind():
    assert {"slurm", "pbs", "sge", "lsf", "kubernetes"} <= set(CLUSTERS)


def test_job_script_takes_its_defaults_from_dask_config():
    config = {
        "jobqueue.slurm.cores": 4,
        "jobqueue.slurm.memory": "8GiB",
        "jobqueue.slurm.walltime": "00:30:00",
        "jobqueue.slurm.queue": "short",
        "jobqueue.slurm.account": "xrf42",
    }
    with dask.config.set(config):  # read as each job is made, as from jobqueue.yaml
        cluster = jobqueue_cluster("slurm", **LOOPBACK)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    for line in ("--cpus-per-task=4", "--mem=8G", "-t 00:30:00", "-p short", "-A xrf42"):
        assert f"#SBATCH {line}" in script.splitlines()
    assert "-m distributed.cli.dask_worker tcp://127.0.0.1:" in script


def test_connect_slurm_scales_to_n_jobs_with_the_settings_given(no_submission):
    config = {"jobqueue.slurm.cores": 4, "jobqueue.slurm.account": "xrf42"}
    with dask.config.set(config):  # read as each job is made, as from jobqueue.yaml
        client = connect(
            "slurm",
            workers=3,
            cores=8,
            memory="16GiB",
            walltime="01:30:00",
            queue="batch",
            processes=1,
            **LOOPBACK,
        )
        try:
            cluster = client.cluster
            assert isinstance(cluster, dask_jobqueue.SLURMCluster)
            script = cluster.job_script().splitlines()
            for line in ("--cpus-per-task=8", "--mem=16G", "-t 01:30:00", "-p batch", "-A xrf42"):
                assert f"#SBATCH {line}" in script  # given over configured; the rest configured
            assert "--nthreads 8 --memory-limit 16.00GiB" in script[-1]
            assert len(cluster.worker_spec) == 3  # three jobs asked for, none submitted
            # The scheduler's dashboard stays on loopback (an SSH tunnel reaches it).
            assert client.dashboard_link.startswith("http://127.0.0.1:")
        finally:
            _close(client)


def test_the_dashboard_binds_to_loopback_unless_configured():
    for function in (connect, jobqueue_cluster):
        default = inspect.signature(function).parameters["dashboard_address"].default
        assert default == "127.0.0.1:8787"
    # A site's jobqueue.<kind>.scheduler-options are kept, under the options given here.
    options = {"dashboard_address": "127.0.0.1:0", "port": 0}
    with dask.config.set({"jobqueue.slurm.scheduler-options": options}):
        cluster = jobqueue_cluster(
            "slurm",
            cores=1,
            memory="1GiB",
            dashboard_address="127.0.0.1:8787",  # the default, under the site's setting
            scheduler_options=LOOPBACK["scheduler_options"],
        )
    try:
        spec = cluster.scheduler_spec["options"]
        assert (spec["dashboard_address"], spec["port"], spec["host"]) == (
            "127.0.0.1:0",
            0,
            "127.0.0.1",
        )
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
    finally:
        cluster.close()


@pytest.mark.parametrize(("adapt", "expected"), [(True, (0, 4)), ((1, 6), (1, 6))])
def test_connect_slurm_adapts_between_a_minimum_and_maximum_of_jobs(no_submission, adapt, expected):
    client = connect(
        "slurm", workers=4, cores=2, memory="4GiB", processes=1, adapt=adapt, **LOOPBACK
    )
    try:
        adaptive = client.cluster._adaptive
        assert (adaptive.minimum, adaptive.maximum) == expected
    finally:
        _close(client)


@pytest.mark.parametrize(
    ("kind", "lines"),
    [
        ("pbs", ["#PBS -q batch", "#PBS -l select=1:ncpus=8:mem=16GB", "#PBS -l walltime=01:30"]),
        ("sge", ["#$ -q batch", "#$ -l h_rt=01:30"]),
        ("lsf", ["#BSUB -q batch", "#BSUB -n 8", "#BSUB -W 01:30"]),
    ],
)
def test_other_batch_systems_render_the_settings_given(kind, lines):
    cluster = jobqueue_cluster(
        kind, cores=8, memory="16GiB", walltime="01:30", queue="batch", processes=1, **LOOPBACK
    )
    try:
        script = cluster.job_script().splitlines()
    finally:
        cluster.close()
    assert set(lines) <= set(script)


def test_batch_settings_are_checked():
    with pytest.raises(ValueError, match=r"cores=, queue= apply to a batch system"):
        connect(None, cores=4, queue="batch")
    with pytest.raises(ValueError, match="threads_per_worker does not apply"):
        connect("slurm", threads_per_worker=2, **LOOPBACK)
    with pytest.raises(ValueError, match="adapt=True scales between 0 and workers=N"):
        connect("slurm", adapt=True, **LOOPBACK)
    with pytest.raises(ValueError, match="0 <= minimum <= maximum"):
        connect("slurm", adapt=(5, 2), **LOOPBACK)


@pytest.mark.parametrize(
    ("kind", "module", "extra"),
    [("kubernetes", "dask_kubernetes", "kubernetes"), ("slurm", "dask_jobqueue", "cluster")],
)
def test_a_missing_extra_is_named_in_one_line(monkeypatch, kind, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    monkeypatch.setitem(sys.modules, f"{module}.operator", None)
    with pytest.raises(ImportError) as info:
        connect(kind, workers=2)
    message = str(info.value)
    assert f'pip install "xrfdask[{extra}]"' in message and "\n" not in message


def _parse(*options):
    return build_parser().parse_args(["process", "map.GeoPIXE", "--config", "p.toml", *options])


def test_cli_options_map_to_connect_arguments():
    args = _parse("--scheduler", "slurm", "--workers", "8", "--memory-limit", "16GiB")
    assert connect_arguments(args) == (
        "slurm",
        {"workers": 8, "memory": "16GiB", "dashboard_address": "127.0.0.1:8787"},
    )
    args = _parse(
        "--scheduler", "pbs", "--workers", "2", "--cores", "16", "--walltime", "04:00:00",
        "--queue", "long", "--adapt", "1:10", "--dashboard-address", "127.0.0.1:8788",
    )  # fmt: skip
    assert connect_arguments(args) == (
        "pbs",
        {
            "workers": 2,
            "cores": 16,
            "walltime": "04:00:00",
            "queue": "long",
            "adapt": (1, 10),
            "dashboard_address": "127.0.0.1:8788",
        },
    )
    # A local cluster keeps LocalCluster's settings; --tls asks for temporary certificates.
    args = _parse("--scheduler", "local", "--workers", "2", "--adapt", "--tls")
    assert connect_arguments(args) == (
        None,
        {
            "workers": 2,
            "threads_per_worker": None,
            "memory_limit": "auto",
            "dashboard_address": "127.0.0.1:8787",
            "adapt": True,
            "security": True,
        },
    )
    assert set(JOBQUEUE) == {"slurm", "pbs", "sge", "lsf"}


def test_cli_rejects_batch_options_without_a_batch_system():
    with pytest.raises(UsageError, match="--cores, --queue need --scheduler slurm"):
        connect_arguments(_parse("--scheduler", "local", "--cores", "4", "--queue", "q"))
    with pytest.raises(UsageError, match="TLS needs all of"):
        connect_arguments(_parse("--scheduler", "local", "--tls-cert", "c.pem"))
    with pytest.raises(SystemExit):
        _parse("--adapt", "3")  # MIN:MAX


def test_cli_scheduler_calls_connect_and_closes_the_jobs(monkeypatch):
    calls = []

    class Cluster:
        closed = False

        def close(self):
            Cluster.closed = True

    class Client:
        dashboard_link = "http://127.0.0.1:8787/status"
        cluster = Cluster()

        def close(self):
            pass

    def fake_connect(target, **kwargs):
        calls.append((target, kwargs))
        return Client()

    monkeypatch.setattr("xrfdask.runtime.connect", fake_connect)
    args = _parse("--scheduler", "slurm", "--workers", "8", "--memory-limit", "16GiB")
    with scheduler(args) as client:
        assert isinstance(client, Client)
    assert calls == [
        ("slurm", {"workers": 8, "memory": "16GiB", "dashboard_address": "127.0.0.1:8787"})
    ]
    assert Cluster.closed  # the jobs started for this command end with it
