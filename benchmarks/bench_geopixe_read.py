"""Benchmark: .GeoPIXE index and decode throughput on one core, against the per-record Python way.

Generates a map of at least 200 MB (tiled from the real sample's spectra), warms the page cache,
then reports in the same run:

- index: xrfdask's compiled header walk (cache disabled), GB/s of file;
- decode: every block read and decoded to dense uint16 (file -> dense blocks), one thread, blocks
  dropped; and the same with each block summed over pixels (nothing kept);
- dask: ``open_geopixe(path).spectra.sum(("y", "x"))`` on the synchronous scheduler (one core);
- baseline: the same decode the straightforward way, as ReadoutXFM's Python path does it (per
  record ``struct.unpack`` of the header, ``np.frombuffer`` of the body, scatter into 4096
  channels), on the first 20 MB of records, and the ratio.

Targets (issue 2): index >= 2 GB/s, decode >= 1 GB/s.

Usage: python benchmarks/bench_geopixe_read.py [--mb 200] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import dask
import numpy as np
from _timing import best_of

from xrfdask import open_geopixe
from xrfdask.io.geopixe.index import build_index
from xrfdask.io.geopixe.reader import BlockSpec, _bounds, plan_chunks, read_block
from xrfdask.testing import write_tiled_geopixe

HERE = Path(__file__).resolve().parent
SAMPLE = (
    Path(os.environ.get("XRFDASK_SHARED", HERE.parent.parent / "shared"))
    / "data"
    / "ts2_01_sub_export.GeoPIXE"
)


def block_specs(index):
    y_chunks, x_chunks = plan_chunks(index, "auto")
    specs = [BlockSpec.of(index, ya, yb, 0, index.xres) for ya, yb in _bounds(y_chunks)]
    return specs, y_chunks


def python_decode(path, limit_bytes):
    """ReadoutXFM's way: a Python loop over records. Returns bytes of records decoded."""
    header = struct.Struct("<2sI3Hf")
    with open(path, "rb") as f:
        data = f.read()
    (h,) = struct.unpack_from("<H", data)
    pos = start = 2 + h
    total = np.zeros((2, 4096), dtype=np.uint64)
    while pos < len(data) and pos - start < limit_bytes:
        tag, length, x, y, det, dt = header.unpack_from(data, pos)
        body = np.frombuffer(data, dtype="<u2", count=(length - 16) // 2, offset=pos + 16)
        spectrum = np.zeros(4096, dtype=np.uint16)
        spectrum[body[0::2]] = body[1::2]
        total[det] += spectrum
        pos += length
    return pos - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=float, default=200, help="minimum file size in MB (default 200)"
    )
    parser.add_argument("--dir", default=None, help="folder for the generated map")
    args = parser.parse_args(argv)
    dask.config.set(scheduler="synchronous")  # one core

    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-"))
    sample_bytes_per_px = (SAMPLE.stat().st_size - 1161) / 200
    nx = 200
    ny = int(np.ceil(args.mb * 1e6 / sample_bytes_per_px / nx))
    path = folder / f"bench_{ny}x{nx}.GeoPIXE"
    if not path.exists():
        write_tiled_geopixe(SAMPLE, path, ny, nx)
    size = path.stat().st_size
    path.read_bytes()  # warm the page cache
    dense = ny * nx * 2 * 4096 * 2
    print(f"map: {path} ({ny} x {nx} px, 2 detectors, 4096 channels)")
    print(
        f"file {size / 1e6:.0f} MB, dense {dense / 1e6:.0f} MB; "
        f"python {sys.version.split()[0]}, numpy {np.__version__}"
    )

    build_index(SAMPLE, cache=False)  # compile the kernels outside the timings
    t_index = best_of(lambda: build_index(path, cache=False))
    index = build_index(path, cache=False)
    specs, y_chunks = block_specs(index)
    read_block(specs[0])

    def decode():
        for spec in specs:
            read_block(spec)

    def decode_and_sum():
        for spec in specs:
            read_block(spec).sum(axis=(0, 1), dtype=np.uint64)

    t_decode = best_of(decode)
    t_decode_sum = best_of(decode_and_sum)
    ds = open_geopixe(path)
    t_dask = best_of(lambda: ds.spectra.sum(("y", "x")).compute(), repeat=2)

    limit = 20e6
    t0 = time.perf_counter()
    done = python_decode(path, limit)
    t_python = time.perf_counter() - t0

    gbs = lambda nbytes, t: nbytes / t / 1e9  # noqa: E731
    baseline = gbs(done, t_python)
    print(
        f"chunks: {len(specs)} bands of {y_chunks[0]} rows "
        f"({y_chunks[0] * nx * 2 * 4096 * 2 / 2**20:.0f} MiB dense)"
    )
    print(
        f"index                   {gbs(size, t_index):7.2f} GB/s   ({t_index * 1e3:.1f} ms)   "
        "target >= 2 GB/s"
    )
    print(
        f"decode                  {gbs(size, t_decode):7.2f} GB/s   ({t_decode:.3f} s)    "
        "target >= 1 GB/s"
    )
    print(f"decode + sum            {gbs(size, t_decode_sum):7.2f} GB/s   ({t_decode_sum:.3f} s)")
    print(f"dask sum(y, x), 1 core  {gbs(size, t_dask):7.2f} GB/s   ({t_dask:.3f} s)")
    print(
        f"baseline python decode  {baseline:7.4f} GB/s   "
        f"({done / 1e6:.0f} MB of records in {t_python:.2f} s)"
    )
    print(f"ratio decode / baseline {gbs(size, t_decode) / baseline:7.0f} x")
    print(f"ratio decode+sum / base {gbs(size, t_decode_sum) / baseline:7.0f} x")


if __name__ == "__main__":
    main()
