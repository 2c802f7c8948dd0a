"""Benchmark: ``method="pymca"`` with BLAS held to one thread per task, against BLAS left alone.

PyMca's ``lstsq`` multiplies matrices with BLAS (OpenBLAS in pip wheels, one thread per core by
default). Next to dask's worker threads, and worse with another busy process on the machine,
those threads oversubscribe the cores (issue 9: 11-19 s against 4.6-5.4 s with
``OPENBLAS_NUM_THREADS=1``). The fit's tasks now hold BLAS to one thread
(:func:`xrfdask.fit.blas.one_blas_thread`). In one run, on an in-memory example map
(``--shape``, one detector, 4096 channels, bands of ``--rows`` rows):

- the cost of entering the limit per task: ``threadpoolctl.threadpool_limits`` (scans the
  loaded libraries each time) against ``one_blas_thread`` (controller built once);
- ``xd.fit(..., method="pymca").peak_area.compute()`` on one thread (synchronous scheduler) and
  on ``--threads`` threads (threaded scheduler), each with BLAS held (as shipped) and with BLAS
  left as a user gets it (the baseline, as before the fix), with and without one competing
  process spinning on a core. Wall and CPU seconds (CPU: this process, all its threads, BLAS's
  spinning included), best of ``--repeat``.

Targets: on threads no slower than on one thread (wall), and no collapse under the competing
load. A loaded machine makes wall times noisy: compare CPU seconds, and the ratios within a run.

Usage: python benchmarks/bench_blas.py [--shape 100 120] [--rows 8] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time

import dask
import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

import xrfdask as xd
from xrfdask.datasets import ELEMENTS, example_dataset
from xrfdask.fit import blas


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def entry_cost(n: int = 200) -> tuple[float, float]:
    """Microseconds per enter + exit: threadpool_limits, one_blas_thread (best of 5)."""

    def per_call(enter) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                with enter():
                    pass
            best = min(best, (time.perf_counter() - t0) / n)
        return best * 1e6

    return per_call(lambda: threadpool_limits(limits=1, user_api="blas")), per_call(
        blas.one_blas_thread
    )


@contextlib.contextmanager
def blas_unlimited():
    """The baseline: the fit's limit made a no-op (a controller that holds no library)."""
    saved = blas._controller
    blas._controller = ThreadpoolController().select(user_api="none")
    try:
        yield
    finally:
        blas._controller = saved


@contextlib.contextmanager
def busy_core(on: bool):
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def timed(fit, scheduler: str, threads: int, repeat: int) -> tuple[float, float, np.ndarray]:
    """(best wall s, best CPU s, areas) of computing the fit's areas."""
    walls, cpus, area = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        with dask.config.set(scheduler=scheduler, num_workers=threads):
            area = fit.peak_area.values
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(100, 120))
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}, cpus {os.cpu_count()}")
    print(f"BLAS threads as the user gets them: {blas_threads()}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')!r}")
    limits, ours = entry_cost()
    print(f"per task: threadpool_limits {limits:8.1f} us, one_blas_thread {ours:6.1f} us")

    ds = example_dataset(shape=tuple(args.shape), n_detectors=1, seed=5).chunk({"y": args.rows})
    config = xd.make_fit_config(ds, list(ELEMENTS))
    fit = xd.fit(ds, config, method="pymca")  # sum spectrum and model: once, outside the timing
    npix = args.shape[0] * args.shape[1]
    print(f"map {args.shape[0]} x {args.shape[1]} = {npix} spectra, bands of {args.rows} rows")
    print(f"{'competing load':>15} {'BLAS':>10} {'scheduler':>10} {'wall s':>8} {'CPU s':>8}")
    reference = None
    rows = {}
    for load in (False, True):
        with busy_core(load):
            for held in (True, False):
                with contextlib.nullcontext() if held else blas_unlimited():
                    for scheduler, threads in (("synchronous", 1), ("threads", args.threads)):
                        wall, cpu, area = timed(fit, scheduler, threads, args.repeat)
                        if reference is None:
                            reference = area
                        assert np.array_equal(area, reference)  # the same numbers every way
                        rows[load, held, threads] = wall, cpu
                        name = "held to 1" if held else "left alone"
                        where = f"{threads} thread{'s' if threads > 1 else ''}"
                        print(
                            f"{'1 busy process' if load else 'none':>15} {name:>10} "
                            f"{where:>10} {wall:8.2f} {cpu:8.2f}"
                        )
    t = args.threads
    for load in (False, True):
        label = "with 1 busy process" if load else "no busy process    "
        held, alone = rows[load, True, t], rows[load, False, t]
        one = rows[load, True, 1]
        print(
            f"{label}: {t} threads / 1 thread (held) wall {one[0] / held[0]:5.2f}x; "
            f"held vs left alone on {t} threads: wall {alone[0] / held[0]:5.2f}x faster, "
            f"CPU {alone[1] / held[1]:5.2f}x less"
        )


if __name__ == "__main__":
    main()
