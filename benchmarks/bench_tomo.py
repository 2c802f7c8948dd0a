"""Benchmark: ``xd.tomo.reconstruct`` of 20 lines against scikit-image called line by line.

A normalised result of 20 lines, 360 angles (0-180 degrees) x 512 translation positions (a
Shepp-Logan phantom scaled per line, forward-projected once with ``skimage.transform.radon``),
reconstructed by filtered back-projection with the Shepp-Logan filter and a given centre, best
of 3 (dask's compile and warm-up run excluded):

- baseline: ``skimage.transform.iradon(sinogram, angles, filter_name="shepp-logan")`` in a loop
  over the lines (xrf_proc's way with tomopy, one call per line), in this process;
- xrfdask: ``xd.tomo.reconstruct(nrm, centre=256, errors=False).tomogram`` computed on the
  threaded scheduler with ``--workers`` threads (default 2: the issue's "2 cores"), one task
  per line; and with its propagated errors (a second back-projection per line);
- per line: xrfdask's time per line on one thread against ``iradon``'s single-slice time.

Target (issue 13): xrfdask on 2 cores >= 1.8x the baseline loop.

Usage: python benchmarks/bench_tomo.py [--lines 20] [--angles 360] [--size 512] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time

import dask
import numpy as np
import xarray as xr
from _timing import best_of

import xrfdask as xd


def scan(lines: int, n_angles: int, size: int) -> tuple[xr.Dataset, np.ndarray]:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import radon, resize

    angles = np.linspace(0, 180, n_angles, endpoint=False)
    phantom = resize(shepp_logan_phantom(), (size, size), order=1)
    sino = radon(phantom, angles, circle=True).T  # (angle, position)
    scale = 1.0 + np.arange(lines)[None, None, None, :] / lines
    values = sino[:, :, None, None] * scale  # (y, x, detector, line)
    ds = xr.Dataset(
        {
            "normalised": (("y", "x", "detector", "line"), values),
            "normalised_error": (("y", "x", "detector", "line"), np.sqrt(values) * 0.01),
            "mot1": (("y", "x"), np.repeat(angles[:, None], size, axis=1)),
            "mot2": (("y", "x"), np.repeat(np.arange(size)[None, :] * 1e-3, n_angles, axis=0)),
        },
        coords={"detector": ["channel00"], "line": [f"L{i}" for i in range(lines)]},
    )
    return ds.chunk({"y": 64}), angles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--angles", type=int, default=360)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from skimage.transform import iradon

    ds, angles = scan(args.lines, args.angles, args.size)
    sinos = [
        np.ascontiguousarray(ds["normalised"].isel(detector=0, line=i).values.T)
        for i in range(args.lines)
    ]
    centre = args.size // 2
    print(
        f"{args.lines} lines x {args.angles} angles x {args.size} positions, FBP (Shepp-Logan), "
        f"{os.cpu_count()} CPUs on the machine, xrfdask on {args.workers} thread(s)"
    )

    def baseline():
        for s in sinos:
            iradon(s, angles, filter_name="shepp-logan", circle=True)

    def ours(errors=False, workers=args.workers):
        rec = xd.tomo.reconstruct(ds, centre=centre, errors=errors, transmission=False)
        with dask.config.set(scheduler="threads", num_workers=workers):
            dask.compute(*[rec[v].data for v in rec.data_vars if v != "rotation_center"])

    t0 = time.perf_counter()
    ours(errors=True)  # compiles the kernels (cached afterwards)
    print(f"first call (compile or load the kernels): {time.perf_counter() - t0:.2f} s")
    single = best_of(lambda: iradon(sinos[0], angles, filter_name="shepp-logan"), 3)
    t_base = best_of(baseline, 3)
    t_ours = best_of(ours, 3)
    t_err = best_of(lambda: ours(errors=True), 3)
    t_one = best_of(lambda: ours(workers=1), 3)
    per_line = t_one / args.lines
    w = args.workers
    rows = [
        ("scikit-image iradon, one slice", f"{single * 1e3:.1f} ms"),
        ("baseline, iradon line by line", f"{t_base:.2f} s ({t_base / args.lines:.3f} s/line)"),
        (f"xrfdask, {w} threads", f"{t_ours:.2f} s -> {t_base / t_ours:.2f}x (target >= 1.8x)"),
        (f"xrfdask, {w} threads, with errors", f"{t_err:.2f} s -> {t_base / t_err:.2f}x"),
        ("xrfdask, 1 thread, per line", f"{per_line * 1e3:.1f} ms -> {single / per_line:.2f}x"),
    ]
    for label, figure in rows:
        print(f"{label + ':':44s} {figure}")


if __name__ == "__main__":
    main()
