"""Benchmark: a map whose dense cube is 4x the cluster's memory, through fit, normalise and zarr.

Generates a ``.GeoPIXE`` map (the example map's spectra tiled, 2 detectors, uint16) whose dense
(y, x, detector, channel) cube is at least 4x the total memory of a 2-worker local cluster with
1 GiB per worker (8.6 GB), then, each in a fresh interpreter:

- cluster: ``xd.connect(workers=2, threads_per_worker=1, memory_limit="1GiB")`` with spilling
  to disk switched off (so nothing can be spilled: a worker that outgrew its limit would be
  paused, then killed by its nanny at 95 %), then ``xd.process`` with fit (linear) and normalise
  into a ``.zarr`` store. Reported: each worker's peak resident memory (``VmHWM`` of the worker
  process, read on the worker at the end), whether any worker was restarted (its pid changed)
  and the time;
- threads (the baseline): the same ``xd.process`` on the default threaded scheduler, with its
  peak RSS.

The two stores' ``fit/`` and ``norm/`` groups must be equal. Targets (issue 14): no worker above
its 1 GiB limit, no spilling needed, the same result as on threads.

Usage: python benchmarks/bench_cluster_memory.py [--dir /tmp/xrfdask-bench-memory]
       [--worker-memory 1GiB] [--factor 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dask
import numpy as np

import xrfdask as xd
from xrfdask.datasets import ELEMENTS
from xrfdask.testing import peak_rss_of, write_tiled_geopixe

CONFIG = {"version": 1, "fit": {"method": "linear", "elements": list(ELEMENTS)}, "normalise": {}}

CLUSTER = """
import json, os, time
import dask
import xrfdask as xd
# No spilling: what does not fit in a worker's memory has nowhere else to go.
dask.config.set({{"distributed.worker.memory.target": False,
                  "distributed.worker.memory.spill": False}})
client = xd.connect(workers=2, threads_per_worker=1, memory_limit={memory!r},
                    dashboard_address="127.0.0.1:0")
pids = client.run(os.getpid)
t0 = time.perf_counter()
report = xd.process({path!r}, {config!r}, output={out!r})
seconds = time.perf_counter() - t0
def peak(dask_worker):
    with open("/proc/self/status") as f:
        hwm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    return {{"pid": os.getpid(), "peak": hwm, "limit": dask_worker.memory_manager.memory_limit,
            "spilled": dask_worker.data.spilled_total.disk
                       if hasattr(dask_worker.data, "spilled_total") else 0}}
after = client.run(peak)
print(json.dumps({{"seconds": seconds, "before": pids, "after": after,
                  "steps": {{s.step: s.seconds for s in report.steps}}}}))
client.close()
"""

THREADS = """
import json, time
import xrfdask as xd
t0 = time.perf_counter()
report = xd.process({path!r}, {config!r}, output={out!r})
print(json.dumps({{"seconds": time.perf_counter() - t0,
                  "steps": {{s.step: s.seconds for s in report.steps}}}}))
"""


def _bytes(size: str) -> int:
    return int(dask.utils.parse_bytes(size))


def make_map(folder: Path, dense_bytes: int) -> Path:
    """The example map tiled to at least ``dense_bytes`` of dense uint16 cube (made once)."""
    nx = 800
    per_row = nx * 2 * 4096 * 2
    ny = -(-dense_bytes // per_row)
    path = folder / f"map_{ny}x{nx}.GeoPIXE"
    if not path.exists():
        tile = xd.datasets.example_geopixe(folder / "tile.GeoPIXE", shape=(150, 200))
        t0 = time.perf_counter()
        write_tiled_geopixe(tile, path.with_suffix(".part"), ny, nx)
        os.replace(path.with_suffix(".part"), path)
        print(f"wrote {path.name} ({path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    return path


def compare(a: Path, b: Path) -> list[str]:
    """Names of the variables of fit/ and norm/ that differ between two stores."""
    differ = []
    for group in ("fit", "norm"):
        one, two = xd.open_zarr(a, group=group), xd.open_zarr(b, group=group)
        for name in one.data_vars:
            x, y = one[name].values, two[name].values  # eager-ok: element maps, small
            numeric = np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)
            same = (
                np.allclose(x, y, rtol=1e-6, atol=0, equal_nan=True)
                if numeric and x.shape == y.shape
                else np.array_equal(x, y)
            )
            if not same:
                differ.append(f"{group}/{name}")
    return differ


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="folder for the map and the stores (kept)")
    parser.add_argument("--worker-memory", default="1GiB", help="memory limit per worker")
    parser.add_argument("--factor", type=float, default=4.0,
                        help="dense cube / total worker memory (default 4)")  # fmt: skip
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    limit = _bytes(args.worker_memory)
    path = make_map(folder, int(args.factor * 2 * limit))
    ds = xd.open_geopixe(path)
    dense = ds.spectra.nbytes
    print(f"map {path.name}: {ds.sizes['y']} x {ds.sizes['x']} px, 2 detectors, dense cube "
          f"{dense / 1e9:.2f} GB = {dense / (2 * limit):.1f} x the 2 workers' "
          f"{2 * limit / 2**30:.0f} GiB; file {path.stat().st_size / 1e9:.2f} GB; "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}")  # fmt: skip
    stores = {name: folder / f"{name}.zarr" for name in ("cluster", "threads")}
    for store in stores.values():
        shutil.rmtree(store, ignore_errors=True)
    fields = dict(path=str(path), config=CONFIG)
    _, out = peak_rss_of(CLUSTER.format(memory=args.worker_memory, out=str(stores["cluster"]),
                                        **fields))  # fmt: skip
    cluster = json.loads(out.strip().splitlines()[-1])
    rss, out = peak_rss_of(THREADS.format(out=str(stores["threads"]), **fields))
    threads = json.loads(out.strip().splitlines()[-1])

    restarted = set(cluster["before"]) != set(cluster["after"]) or any(
        cluster["before"][addr] != info["pid"] for addr, info in cluster["after"].items()
    )
    worst = max(info["peak"] for info in cluster["after"].values())
    spilled = sum(info["spilled"] for info in cluster["after"].values())
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in cluster["steps"].items())
    print(f"cluster (2 workers x 1 thread, {args.worker_memory} each, no spilling): "
          f"{cluster['seconds']:.0f} s ({steps})")  # fmt: skip
    for addr, info in sorted(cluster["after"].items()):
        print(f"  worker {addr}: peak RSS {info['peak'] / 2**30:.2f} GiB of "
              f"{info['limit'] / 2**30:.2f} GiB ({info['peak'] / info['limit']:.0%}), "
              f"spilled {info['spilled']} B")  # fmt: skip
    print(f"threads (baseline): {threads['seconds']:.0f} s, peak RSS {rss / 2**30:.2f} GiB")
    differ = compare(stores["cluster"], stores["threads"])
    ok = worst <= limit and not restarted and spilled == 0 and not differ
    print(f"largest worker peak {worst / 2**30:.2f} GiB (limit {limit / 2**30:.2f} GiB); "
          f"workers restarted: {'yes' if restarted else 'no'}; spilled: {spilled} B; "
          f"fit/ and norm/ equal to threads: {'yes' if not differ else 'NO: ' + ', '.join(differ)}"
          f" -> target {'met' if ok else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
