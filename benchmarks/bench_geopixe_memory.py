"""Benchmark: peak memory of a full pass over a map whose dense cube is at least 4 GB.

Generates a ``.GeoPIXE`` map (real sample spectra, tiled) with a dense (y, x, detector, channel)
uint16 cube of at least 4 GB, then, in a fresh interpreter with default settings (dask's
``xrfdask.chunk-size``, threaded scheduler on all cores), computes
``open_geopixe(path).spectra.sum(("y", "x"))`` and reports its peak resident memory (VmHWM) and
time. Baseline: ReadoutXFM allocates the whole dense cube before reading (spec geopixe.md 2.1),
so it needs at least the dense size; the same figure is printed for a map 4x smaller, to show that
the peak does not depend on the map size.

Target (issue 2): peak RSS under 1.5 GB.

Usage: python benchmarks/bench_geopixe_memory.py [--gb 4] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from xrfdask.testing import peak_rss_of, write_tiled_geopixe

HERE = Path(__file__).resolve().parent
SAMPLE = (
    Path(os.environ.get("XRFDASK_SHARED", HERE.parent.parent / "shared"))
    / "data"
    / "ts2_01_sub_export.GeoPIXE"
)

JOB = """
import time, numpy as np, xrfdask as xd
t0 = time.perf_counter()
ds = xd.open_geopixe(r"{path}")
total = ds.spectra.sum(("y", "x"), dtype=np.uint64).compute()
print(int(total.sum()), time.perf_counter() - t0)
"""


def measure(path):
    peak, out = peak_rss_of(JOB.format(path=path))
    counts, seconds = out.split()
    return peak, int(counts), float(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=4.0, help="dense cube size in GB (default 4)")
    parser.add_argument(
        "--dir", default=None, help="folder for the generated maps (needs ~gb/2 GB)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-"))
    nx = 640
    ny = int(-(-args.gb * 1e9 // (nx * 2 * 4096 * 2)))
    maps = []
    for rows in (ny // 4, ny):
        path = folder / f"mem_{rows}x{nx}.GeoPIXE"
        if not path.exists():
            t0 = time.perf_counter()
            write_tiled_geopixe(SAMPLE, path, rows, nx)
            print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
        maps.append((path, rows))
    base, _ = peak_rss_of("import dask, numpy, xarray, numba, xrfdask")
    print(f"interpreter with xrfdask imported: {base / 1e9:.2f} GB")
    for path, rows in maps:
        dense = rows * nx * 2 * 4096 * 2
        peak, counts, seconds = measure(path)
        print(
            f"{rows} x {nx} px: dense {dense / 1e9:.2f} GB, "
            f"file {path.stat().st_size / 1e9:.2f} GB -> "
            f"peak RSS {peak / 1e9:.2f} GB (target < 1.5 GB), {seconds:.1f} s, "
            f"{path.stat().st_size / seconds / 1e9:.2f} GB/s of file; "
            f"baseline (dense in memory) >= {dense / 1e9:.2f} GB, ratio {dense / peak:.1f} x"
        )


if __name__ == "__main__":
    main()
