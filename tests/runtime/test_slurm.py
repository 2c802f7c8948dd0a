"""Dask workers as jobs of a real Slurm: ``xd.connect("slurm")`` on a private one-node Slurm.

The Slurm is ``munged``, ``slurmctld`` and ``slurmd`` on 127.0.0.1, run as root from a temporary
folder (:mod:`tests.runtime.slurm_cluster`). dask-jobqueue submits each worker with ``sbatch``;
the test checks that the workers are those jobs while they run (``squeue``, and ``SLURM_JOB_ID``
in each worker), that a fit and its normalisation of the example map equal the threaded ones,
and that the jobs leave the queue when the cluster closes. Skipped, with the reason, where
Slurm's programs are not installed (``apt-get install slurm-wlm munge``) or not run as root.
"""

from __future__ import annotations

import sys
import time

import pytest
import xarray as xr

import xrfdask as xd
from tests.runtime import slurm_cluster

pytest.importorskip("dask_jobqueue", reason="the test extra installs it")

LINES = ["Fe", "Zn", "Ca"]
TIMEOUT = 60  # s, any single wait


@pytest.fixture(scope="module")
def slurm():
    """A running private Slurm, and ``SLURM_CONF`` naming it (for dask-jobqueue's sbatch)."""
    reason = slurm_cluster.missing()
    if reason is not None:
        pytest.skip(reason)
    with slurm_cluster.running() as slurm, pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(slurm.conf))
        yield slurm


def _job_id():
    def job_id():  # local: pickled by value, for workers that cannot import tests/
        import os

        return os.environ.get("SLURM_JOB_ID")

    return job_id


@pytest.mark.slow
def test_workers_are_slurm_jobs_and_compute_as_threads_do(slurm, example_path, tmp_path):
    ds = xd.open_geopixe(example_path, chunks=12)
    fit = xd.fit(ds, xd.make_fit_config(ds, LINES))
    nrm = xd.normalise(ds, fit)
    want = [result.compute(scheduler="threads") for result in (fit, nrm)]
    client = xd.connect(
        "slurm", workers=2, cores=1, memory="2GiB", walltime="00:10:00", queue="debug",
        python=sys.executable, dashboard_address="127.0.0.1:0",
        scheduler_options={"host": "127.0.0.1"}, worker_extra_args=["--host", "127.0.0.1"],
        local_directory=str(tmp_path), log_directory=str(tmp_path / "logs"),
        job_extra_directives=[f"--chdir={tmp_path}"],
    )  # fmt: skip
    cluster = client.cluster
    try:
        client.wait_for_workers(2, timeout=TIMEOUT)
        ids = {job.job_id for job in cluster.workers.values()}
        assert len(ids) == 2
        # While they run, Slurm lists the jobs, and each worker runs inside one of them.
        assert {i: s for i, s in slurm.jobs().items() if i in ids} == dict.fromkeys(ids, "RUNNING")
        assert sorted(client.run(_job_id()).values()) == sorted(ids)
        got = [result.compute() for result in (fit, nrm)]
    finally:
        client.close()
        cluster.close()
    deadline = time.monotonic() + TIMEOUT
    while ids & set(slurm.jobs()):  # scancel'd by the cluster: completing, then gone
        assert time.monotonic() < deadline, f"jobs still queued: {slurm.jobs()}"
        time.sleep(0.2)
    for result, expected in zip(got, want, strict=True):
        xr.testing.assert_identical(result, expected)
