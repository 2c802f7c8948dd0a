"""A worker process killed (SIGKILL) in the middle of a fit or of a zarr write on a real cluster:
the computation completes, and the result equals the undisturbed threaded one.

The cluster is a ``dask scheduler`` and three ``dask worker`` processes (one thread each, no
nanny: a killed worker stays dead and the other two finish the work), all on 127.0.0.1. The
"middle" is made deterministic with a gate after the fit: every band of peak areas but the first
waits, on the worker that fitted it, for a file the test creates. The test kills a worker once it
holds fitted bands (waiting in the gate), and for the write once the first chunks are written;
then it opens the gate. The killed worker's fitted bands are lost with it and the scheduler
recomputes them (reading the map and fitting again) on the other workers; zarr chunks it had
written are rewritten with the same bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr

import xrfdask as xd

LINES = ["Fe", "Zn", "Ca"]
N_WORKERS = 3
TIMEOUT = 90  # s, any single wait (a slow, shared 2-core machine)


def _gate():
    """Hold every band but the first until the file ``go`` exists (at most 120 s), on the worker
    that fitted it, with its worker thread free for other tasks.

    A local function: pickled by value, for workers that cannot import tests/.
    """

    def gate(block, go: str, block_info=None):
        if block_info[0]["chunk-location"][0] > 0:
            from distributed import rejoin, secede

            secede()  # wait outside the worker's thread: the other tasks go on meanwhile
            deadline = time.monotonic() + 120
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.02)
            rejoin()
        return block

    return gate


def _wait(condition, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler file, {worker name: Popen}): a scheduler and 3 separate worker processes."""
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False", PYTHONWARNINGS="ignore")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(scheduler_file)],
            cwd=tmp_path, **quiet,
        )
    ]  # fmt: skip
    workers = {}
    try:
        _wait(scheduler_file.exists, "the scheduler")
        for i in range(N_WORKERS):
            workers[f"w{i}"] = subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker",
                 "--scheduler-file", str(scheduler_file), "--name", f"w{i}", "--no-nanny",
                 "--nthreads", "1", "--memory-limit", "2GiB", "--host", "127.0.0.1",
                 "--local-directory", str(tmp_path)],
                cwd=tmp_path, **quiet,
            )  # fmt: skip
            procs.append(workers[f"w{i}"])
        yield scheduler_file, workers
    finally:
        for proc in procs[1:]:  # the workers: ours, and no graceful close is tested here
            if proc.poll() is None:
                proc.kill()
        if procs[0].poll() is None:
            procs[0].terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example map in 10 bands of rows, its fit (lazy), and the threaded results."""
    path = xd.datasets.example_geopixe(tmp_path_factory.mktemp("worker-loss"))
    ds = xd.open_geopixe(path, chunks=5)
    fit = xd.fit(ds, xd.make_fit_config(ds, LINES))  # the model: computed once, on threads
    assert len(fit.peak_area.chunks[0]) >= 8
    store = xd.to_zarr(fit, tmp_path_factory.mktemp("threaded") / "fit.zarr")
    return fit, fit.peak_area.compute(scheduler="threads"), store


def _gated(fit: xr.Dataset, go) -> xr.Dataset:
    data = fit.peak_area.data.map_blocks(_gate(), str(go), dtype=fit.peak_area.dtype)
    return fit.assign(peak_area=fit.peak_area.copy(data=data))


def _kill_a_worker_holding_fitted_bands(client, workers) -> str:
    """SIGKILL a worker on which a gate task (its fitted band in memory) is waiting."""
    names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}

    def holders():
        processing = client.processing()
        return [a for a, keys in processing.items() if any("gate" in str(k) for k in keys)]

    victim = names[_wait(holders, "fitted bands held in the gate")[0]]
    workers[victim].kill()
    workers[victim].wait(timeout=30)
    _wait(lambda: len(client.scheduler_info()["workers"]) == N_WORKERS - 1, "the loss noticed")
    return victim


def test_fit_survives_a_killed_worker(cluster, example, tmp_path):
    from distributed import Client

    scheduler_file, workers = cluster
    fit, expected, _ = example
    go = tmp_path / "go"
    with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
        client.wait_for_workers(N_WORKERS, timeout=TIMEOUT)
        future = client.compute(_gated(fit, go).peak_area)
        victim = _kill_a_worker_holding_fitted_bands(client, workers)
        assert not future.done()
        go.touch()
        result = future.result(timeout=TIMEOUT)
        assert len(client.scheduler_info()["workers"]) == N_WORKERS - 1, victim
    np.testing.assert_allclose(result.values, expected.values, rtol=1e-6, atol=1e-4)


def test_zarr_write_survives_a_killed_worker(cluster, example, tmp_path):
    from distributed import Client

    scheduler_file, workers = cluster
    fit, _, threaded = example
    go = tmp_path / "go"
    store = tmp_path / "fit.zarr"
    with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
        client.wait_for_workers(N_WORKERS, timeout=TIMEOUT)

        def written():  # zarr-write tasks finished on the workers: chunks on disk
            tasks = client.run_on_scheduler(
                lambda dask_scheduler: [
                    str(k) for k, t in dask_scheduler.tasks.items() if t.state == "memory"
                ]
            )
            return any("zarr-write" in k for k in tasks)

        with ThreadPoolExecutor(1) as pool:
            writing = pool.submit(xd.to_zarr, _gated(fit, go), store)
            try:
                _wait(written, "the first chunks written")
                _kill_a_worker_holding_fitted_bands(client, workers)
                assert not writing.done()
            finally:
                go.touch()  # the write ends, whatever happened
            writing.result(timeout=TIMEOUT)
        assert len(client.scheduler_info()["workers"]) == N_WORKERS - 1
    got, want = xd.open_zarr(store, "fit"), xd.open_zarr(threaded, "fit")
    assert list(got.line.values) == list(want.line.values)
    for name in ("peak_area", "peak_area_error", "sum_area", "sum_background"):
        np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-6, atol=1e-4)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
