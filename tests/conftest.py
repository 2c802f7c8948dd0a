"""Shared fixtures: the real sample file, the embedded example map, a real dask cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XRFDASK_SHARED", REPO.parent / "shared"))
SAMPLE = SHARED / "data" / "ts2_01_sub_export.GeoPIXE"
SAMPLE_DENSE = SHARED / "data" / "ts2_01_sub_export_data.npy"

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Index caches of read-only inputs go to a per-session folder, not the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRFDASK_CACHE_DIR", str(tmp_path_factory.mktemp("xrfdask-cache")))
        yield


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The real instrument-derived map (20 x 10 px, 2 detectors), read-only in ../shared."""
    if not SAMPLE.exists():
        pytest.fail(f"sample data missing: {SAMPLE} (set XRFDASK_SHARED)")
    return SAMPLE


@pytest.fixture
def sample_copy(tmp_path, sample_path) -> Path:
    """A writable copy of the sample file."""
    target = tmp_path / sample_path.name
    shutil.copyfile(sample_path, target)
    return target


@pytest.fixture(scope="session")
def sample_dense():
    """The sample's dense spectra, reshaped to (y, x, detector, channel)."""
    import numpy as np

    return np.load(SAMPLE_DENSE).reshape(10, 20, 2, 4096)


@pytest.fixture(scope="session")
def example_path(tmp_path_factory) -> Path:
    """The embedded example map, written once per session."""
    from xrfdask import datasets

    return datasets.example_geopixe(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A real distributed cluster: `dask scheduler` and `dask worker` processes on 127.0.0.1.

    Yields the scheduler file; tests connect with ``Client(scheduler_file=...)``.
    """
    folder = tmp_path_factory.mktemp("cluster")
    scheduler_file = folder / "scheduler.json"
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False", PYTHONWARNINGS="ignore")
    scheduler = subprocess.Popen(
        [*dask_cli, "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
         "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=folder,
    )  # fmt: skip
    workers = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker",
         "--scheduler-file", str(scheduler_file), "--nworkers", "2", "--nthreads", "1",
         "--memory-limit", "2GiB", "--host", "127.0.0.1",
         "--local-directory", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=folder,
    )  # fmt: skip
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline or scheduler.poll() is not None:
                pytest.fail("dask scheduler did not start")
            time.sleep(0.2)
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
        yield scheduler_file
    finally:
        for proc in (workers, scheduler):
            proc.terminate()
        for proc in (workers, scheduler):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
