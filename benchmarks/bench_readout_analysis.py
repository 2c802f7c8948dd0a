"""Benchmark: ReadoutXFM's ``-a`` analysis of a 1 GB ``.GeoPIXE`` map against the plain decode.

Generates a map of at least 1 GB of file (tiled from the real sample's spectra, 2 detectors),
warms the page cache, then reports in the same run, on the default threaded scheduler (every
core), best of 3:

- decode: every block of ``open_geopixe(path).spectra`` decoded to dense uint16 and dropped
  (the baseline: what any pass over the spectra costs);
- colour map: ``xd.colour_map(ds).rgb`` computed (one pass: weighted sums, common maximum);
- dead-time statistics: ``xd.deadtime_stats(ds)`` with its per-pixel ``counts`` computed
  (index statistics plus one counting pass over the sparse records);
- both in one ``dask.compute``, as ``xrfdask readout -a`` needs them.

Each figure is GB/s of file and its ratio to the decode.

Target (issue 11): the colour map and the dead-time statistics at >= 80 % of the decode speed.

Usage: python benchmarks/bench_readout_analysis.py [--mb 1000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import dask
import numpy as np
from _timing import best_of

import xrfdask as xd
from xrfdask.testing import write_tiled_geopixe

HERE = Path(__file__).resolve().parent
SAMPLE = (
    Path(os.environ.get("XRFDASK_SHARED", HERE.parent.parent / "shared"))
    / "data"
    / "ts2_01_sub_export.GeoPIXE"
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000, help="minimum file size in MB")
    parser.add_argument("--dir", default=None, help="folder for the generated map (kept)")
    args = parser.parse_args(argv)

    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-"))
    per_px = (SAMPLE.stat().st_size - 1161) / 200
    nx = 256
    ny = int(np.ceil(args.mb * 1e6 / per_px / nx))
    path = folder / f"bench_{ny}x{nx}.GeoPIXE"
    if not path.exists():
        write_tiled_geopixe(SAMPLE, path, ny, nx)
    size = path.stat().st_size
    path.read_bytes()  # warm the page cache
    ds = xd.open_geopixe(path)
    print(f"map: {path.name}, {ny} x {nx} px, 2 detectors, file {size / 1e9:.2f} GB, "
          f"dense {ds.spectra.nbytes / 1e9:.2f} GB, {ds.spectra.data.npartitions} blocks, "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}")  # fmt: skip

    spectra = ds.spectra.data
    dropped = spectra.map_blocks(
        lambda b: np.zeros((1, 1, 1, 1), b.dtype),
        chunks=tuple((1,) * len(c) for c in spectra.chunks),
        dtype=spectra.dtype,
    )

    def decode():
        dropped.compute()

    def colour():
        xd.colour_map(ds).rgb.compute()

    def stats():
        xd.deadtime_stats(ds)["counts"].compute()

    def both():
        dask.compute(xd.colour_map(ds).rgb.data, xd.deadtime_stats(ds)["counts"].data)

    for fn in (decode, colour, stats, both):  # compile the kernels outside the timings
        fn()
    t = {fn.__name__: best_of(fn) for fn in (decode, colour, stats, both)}
    base = size / t["decode"] / 1e9
    names = {
        "decode": "decode (baseline)",
        "colour": "colour map",
        "stats": "dead-time statistics",
        "both": "colour + statistics",
    }
    for key, label in names.items():
        gbs = size / t[key] / 1e9
        ratio = gbs / base
        target = (
            "" if key == "decode" else f"   target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}"
        )
        print(f"{label:22s} {t[key]:6.2f} s  {gbs:5.2f} GB/s  {ratio:5.2f} x decode{target}")


if __name__ == "__main__":
    main()
