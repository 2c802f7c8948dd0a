"""Benchmark: HDF5 (and zarr) input, read and fitted, against xrf_proc's whole-map PyMca fit.

Writes a map with h5py exactly as xrf_proc's converters write one (``raw/channel00/spectra``
uint32, gzip level 4, h5py's automatic chunks, ``sumspec``, ``maxspec``, ``icr``, ``ocr``,
``raw/I0``, ``raw/I1``, ``raw/acquisition_time``, ``mot1``, ``mot2``, ``cmd``), with the spectra of
the example map's physics (``xd.datasets.example_dataset``, one detector, 4096 channels), and the
same map as a zarr store (``xd.to_zarr``). Then, in the same run:

- read + sum (``xd.open_h5(f).spectra.sum(("y", "x")).compute()``) on 1 and 2 threads, against
  h5py's own whole-dataset read (``f["raw/channel00/spectra"][()]``); the same from zarr;
- the baseline, xrf_proc's ``fit_xrf_batch`` fast path (spec xrf_proc.md 3.3), in a fresh
  interpreter with BLAS as a user gets it: the cube and ``sumspec`` read with h5py, then
  ``FastXRFLinearFit().fitMultipleSpectra(x=arange, y=cube, ysum=sumspec)``; its time is read + fit;
- ``xd.fit(xd.open_h5(f), cfg, method=...).peak_area.compute()`` (opening included), ``linear`` and
  ``pymca``, on HDF5 and zarr, on 1 and 2 threads (threaded scheduler), after a warm-up fit.

Targets (issue 9, section 2): read + sum on 2 threads >= 1.7x one thread (the best of 7 runs of
each, run in alternation; the ratios of the pairs printed beside it) and faster than h5py's read;
``pymca`` on 2 threads at least as fast as the baseline; ``linear`` on 2 threads >= 3x it.
Times are the best of ``--repeat``; CPU seconds are printed beside wall seconds, since a loaded
machine hides scaling (``uptime`` is printed first).

Usage: python benchmarks/bench_fit_h5.py [--shape 200x150] [--repeat 3] [--dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = """
import json, time, numpy as np, h5py, xrfdask as xd
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
small = xd.datasets.example_dataset(shape=(8, 8), n_detectors=1)
cfg = xd.make_fit_config(small, xd.datasets.ELEMENTS)
reads, fits = [], []
for _ in range({repeat}):
    t0 = time.perf_counter()
    with h5py.File(r"{h5}", "r") as f:             # xrf_proc: everything in memory
        cube = f["raw/channel00/spectra"][()]
        ysum = f["raw/channel00/sumspec"][()]
    t1 = time.perf_counter()
    fast = FastXRFLinearFit()
    fast.setFitConfiguration(cfg)
    fast.fitMultipleSpectra(x=np.arange(cube.shape[-1]), y=cube, ysum=ysum, save=False)
    t2 = time.perf_counter()
    reads.append(t1 - t0); fits.append(t2 - t1)
best = min(range(len(fits)), key=lambda i: reads[i] + fits[i])
print(json.dumps({{"read": reads[best], "fit": fits[best]}}))
"""


PAIRS = 7  # read + sum: pairs of runs (1 thread, 2 threads), at least --repeat


def write_xrf_proc_h5(path: Path, shape: tuple[int, int], i0_spread: float = 0.0) -> Path:
    """The example map as xrf_proc's converters write it (spec xrf_proc.md 9: gzip 4 everywhere).

    ``i0_spread``: I0 varies uniformly by this fraction around 1e5 (0: constant).
    """
    import h5py
    import numpy as np

    import xrfdask as xd

    ds = xd.datasets.example_dataset(shape=shape, n_detectors=1)
    cube = ds.spectra.values[:, :, 0, :].astype(np.uint32)
    ny, nx = shape
    gz = {"compression": "gzip", "compression_opts": 4}
    dwell = float(ds.attrs["dwell_ms"]) / 1000.0
    live = 1.0 - ds.deadtime.values[:, :, 0].astype(np.float64) / 100.0
    ocr = cube.sum(axis=2) / dwell
    tmp = path.with_suffix(".tmp.h5")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("cmd", data=f"cmesh hrz 0 1 {nx - 1} hry 0 1 {ny - 1} {dwell}")
        f.create_dataset("raw/channel00/spectra", data=cube, **gz)
        f.create_dataset("raw/channel00/icr", data=ocr / live, **gz)
        f.create_dataset("raw/channel00/ocr", data=ocr, **gz)
        f.create_dataset("raw/channel00/sumspec", data=cube.sum(axis=(0, 1)), **gz)
        f.create_dataset("raw/channel00/maxspec", data=cube.max(axis=(0, 1)), **gz)
        i0 = 1.0e5 * np.random.default_rng(0).uniform(1 - i0_spread, 1 + i0_spread, shape)
        f.create_dataset("raw/I0", data=i0, **gz)
        f.create_dataset("raw/I1", data=i0 / 2, **gz)
        f.create_dataset("raw/acquisition_time", data=np.full(shape, dwell), **gz)
        for name, motor, grid in (
            ("mot1", "hrz", np.arange(nx)[None, :]),
            ("mot2", "hry", np.arange(ny)[:, None]),
        ):
            dset = f.create_dataset(
                name, data=np.broadcast_to(grid * 0.025, shape).astype(np.float64), **gz
            )
            dset.attrs["Name"] = motor
    os.replace(tmp, path)
    return path


def best(fn, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the run with the shortest wall time."""
    runs = []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - w, time.process_time() - c))
    return min(runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape", default="200x150", help="rows x columns of the map (200x150, 491 MB of uint32)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept (3)")
    parser.add_argument("--dir", default=None, help="working folder (<tmp>/xrfdask-bench-fit-h5)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: a 40 x 30 map, one run each"
    )
    args = parser.parse_args(argv)
    shape = (40, 30) if args.quick else tuple(int(n) for n in args.shape.lower().split("x"))
    repeat = 1 if args.quick else args.repeat

    import dask
    import h5py

    import xrfdask as xd

    folder = Path(args.dir or Path(tempfile.gettempdir()) / "xrfdask-bench-fit-h5")
    folder.mkdir(parents=True, exist_ok=True)
    h5 = folder / f"xrf_proc_{shape[0]}x{shape[1]}.h5"
    if not h5.exists():
        t0 = time.perf_counter()
        write_xrf_proc_h5(h5, shape)
        print(f"wrote {h5} in {time.perf_counter() - t0:.1f} s")
    zs = folder / f"xrf_proc_{shape[0]}x{shape[1]}.zarr"
    if not zs.exists():
        xd.to_zarr(xd.open_h5(h5), zs)
    with h5py.File(h5) as f:
        dset = f["raw/channel00/spectra"]
        nbytes, chunks = dset.size * dset.dtype.itemsize, dset.chunks
    npix = shape[0] * shape[1]
    print(
        f"map {shape[0]} x {shape[1]} px, 1 detector, 4096 channels, {nbytes / 1e6:.0f} MB uint32, "
        f"h5 chunks {chunks}"
    )
    print("load: " + " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores")
    deflate = "libdeflate" if xd.io.h5layout.h5chunks._deflate is not None else "zlib"
    print(f"inflate: {deflate}\n")

    def threads(n):
        return dask.config.set(scheduler="threads", num_workers=n)

    # --- read + sum ---------------------------------------------------------------------
    def h5py_read():
        with h5py.File(h5) as f:
            f["raw/channel00/spectra"][()]

    t_h5py = best(h5py_read, repeat)
    print("read + sum of the spectra (wall s / CPU s)")
    print(f"  h5py whole-dataset read          {t_h5py[0]:6.2f} / {t_h5py[1]:5.2f}")
    reads, ratios = {}, {}
    for kind, opener, path in (("h5", xd.open_h5, h5), ("zarr", xd.open_zarr, zs)):
        # 1 and 2 threads in alternation, so both meet the same moments of a noisy machine
        runs = {1: [], 2: []}
        with threads(2):  # warm-up: the chunk listing, kernels loaded, the thread pool started
            opener(path).spectra.sum(("y", "x")).compute()
        for _ in range(max(repeat, PAIRS)):
            for n in (1, 2):
                with threads(n):
                    runs[n].append(
                        best(lambda o=opener, p=path: o(p).spectra.sum(("y", "x")).compute(), 1)
                    )
        for n in (1, 2):
            reads[kind, n] = min(runs[n])
            print(
                f"  xd.open_{kind:4s} sum, {n} thread{'s' if n > 1 else ' '}     "
                f"{reads[kind, n][0]:6.2f} / {reads[kind, n][1]:5.2f}"
            )
        pairs = [a[0] / b[0] for a, b in zip(runs[1], runs[2], strict=True)]
        ratios[kind] = (min(pairs), statistics.median(pairs), max(pairs))
    r = reads["h5", 1][0] / reads["h5", 2][0]
    print(
        f"  h5: 2 threads {r:.2f}x one, best against best (target >= 1.7x); "
        f"{t_h5py[0] / reads['h5', 2][0]:.2f}x h5py's read (target > 1x)"
    )
    print(
        "  h5: run by run {:.2f}x / median {:.2f}x / {:.2f}x".format(*ratios["h5"])
        + f" ({len(pairs)} pairs of runs)"
    )
    print(f"  zarr: 2 threads {reads['zarr', 1][0] / reads['zarr', 2][0]:.2f}x one\n")

    # --- baseline: xrf_proc's fit_xrf_batch ----------------------------------------------
    out = subprocess.run(
        [sys.executable, "-c", BASELINE.format(h5=h5, repeat=repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        print(out.stderr)
        return 1
    base = json.loads(out.stdout.splitlines()[-1])
    t_base = base["read"] + base["fit"]
    print(
        "baseline: xrf_proc fit_xrf_batch (h5py read + FastXRFLinearFit.fitMultipleSpectra, "
        "BLAS as a user gets it)"
    )
    print(
        f"  read {base['read']:.2f} s + fit {base['fit']:.2f} s = {t_base:.2f} s   "
        f"{npix / t_base:7.0f} px/s\n"
    )

    # --- xd.fit -------------------------------------------------------------------------
    cfg = xd.make_fit_config(
        xd.datasets.example_dataset(shape=(8, 8), n_detectors=1), xd.datasets.ELEMENTS
    )
    with threads(2):
        xd.fit(
            xd.open_h5(h5), cfg, method="linear"
        ).peak_area.compute()  # numba kernels, PyMca imports
    print(
        "xd.fit(...).peak_area.compute(), opening included "
        "(wall s / CPU s, speed-up over the baseline)"
    )
    fits = {}
    for method in ("linear", "pymca"):
        for kind, opener, path in (("h5", xd.open_h5, h5), ("zarr", xd.open_zarr, zs)):
            for n in (1, 2):
                with threads(n):
                    fits[method, kind, n] = best(
                        lambda o=opener, p=path, m=method: xd.fit(
                            o(p), cfg, method=m
                        ).peak_area.compute(),
                        repeat,
                    )
                w, c = fits[method, kind, n]
                print(
                    f"  {method:6s} {kind:4s} {n} thread{'s' if n > 1 else ' '}  {w:6.2f} / "
                    f"{c:5.2f}   {npix / w:7.0f} px/s   {t_base / w:5.2f}x"
                )
    source = xd.fit(xd.open_h5(h5), cfg).attrs["sum_spectrum_source"]
    print(f"  sum spectrum: {source}")
    lin, pym = t_base / fits["linear", "h5", 2][0], t_base / fits["pymca", "h5", 2][0]
    print(
        f"\ntargets on HDF5, 2 threads: linear {lin:.2f}x the baseline (>= 3x), "
        f"pymca {pym:.2f}x (>= 1x)"
    )
    print(
        f"  pymca 2 threads {fits['pymca', 'h5', 1][0] / fits['pymca', 'h5', 2][0]:.2f}x one "
        "(>= 1x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
