"""Benchmark: .GeoPIXE (>= 500 MB) to the uniform HDF5 layout and to zarr, MB/s and peak RSS.

Generates a map of at least 500 MB (the real sample's spectra, tiled), then converts it in fresh
interpreters, reporting MB/s of input and peak resident memory (VmHWM):

- xrfdask ``to_zarr`` (default compressor, Blosc lz4) on 1 core (synchronous scheduler) and on
  all cores (threads); ``to_h5`` (gzip 4, the layout's) on 1 core and on all cores;
- baseline, xrf_proc's way: the whole cube decoded into memory, then written with h5py
  (``create_dataset(..., compression="gzip", compression_opts=4)``) or xarray ``to_zarr``.

Targets (issue 3): to zarr >= 100 MB/s of input per core; peak RSS under 1 GB whatever the map
size.

Usage: python benchmarks/bench_convert.py [--mb 500] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from xrfdask.testing import peak_rss_of, write_tiled_geopixe

HERE = Path(__file__).resolve().parent
SAMPLE = (
    Path(os.environ.get("XRFDASK_SHARED", HERE.parent.parent / "shared"))
    / "data"
    / "ts2_01_sub_export.GeoPIXE"
)

XRFDASK = """
import time, dask, xrfdask as xd
dask.config.set(scheduler="{scheduler}")
t0 = time.perf_counter()
xd.{writer}(xd.open_geopixe(r"{src}"), r"{dst}", overwrite=True)
print(time.perf_counter() - t0)
"""

BASELINE_H5 = """
import time, h5py, numpy as np, xrfdask as xd
t0 = time.perf_counter()
ds = xd.open_geopixe(r"{src}")
cube = ds.spectra.values                      # xrf_proc: the whole map in memory
with h5py.File(r"{dst}", "w") as f:
    for d in range(cube.shape[2]):
        f.create_dataset(f"raw/channel{{d:02d}}/spectra", data=cube[:, :, d],
                         compression="gzip", compression_opts=4)
        f.create_dataset(f"raw/channel{{d:02d}}/sumspec", data=cube[:, :, d].sum((0, 1)),
                         compression="gzip", compression_opts=4)
print(time.perf_counter() - t0)
"""

BASELINE_ZARR = """
import time, xrfdask as xd
t0 = time.perf_counter()
ds = xd.open_geopixe(r"{src}").load()         # whole map in memory, then written
ds.attrs = {{}}
ds.to_zarr(r"{dst}", mode="w", zarr_format=2, consolidated=False)
print(time.perf_counter() - t0)
"""


def run(code: str, size: int, label: str, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    peak, out = peak_rss_of(code)
    seconds = float(out.split()[-1])
    print(
        f"{label:34s} {size / seconds / 1e6:8.0f} MB/s  {seconds:6.1f} s  "
        f"peak RSS {peak / 1e9:5.2f} GB"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=float, default=500, help="minimum input size in MB (default 500)"
    )
    parser.add_argument(
        "--dir", default=None, help="working folder (needs about 3x the input size)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-"))
    nx = 400
    ny = int(-(-args.mb * 1e6 // ((SAMPLE.stat().st_size - 1161) / 200 * nx)))
    src = folder / f"convert_{ny}x{nx}.GeoPIXE"
    if not src.exists():
        write_tiled_geopixe(SAMPLE, src, ny, nx)
    size = src.stat().st_size
    src.read_bytes()  # page cache
    print(
        f"input {src} ({ny} x {nx} px, 2 detectors): {size / 1e6:.0f} MB, "
        f"dense {ny * nx * 2 * 4096 * 2 / 1e9:.2f} GB; {os.cpu_count()} cores"
    )
    zarr_out, h5_out = folder / "out.zarr", folder / "out.h5"
    run(
        XRFDASK.format(scheduler="synchronous", writer="to_zarr", src=src, dst=zarr_out),
        size,
        "xrfdask to_zarr, 1 core",
        zarr_out,
    )
    run(
        XRFDASK.format(scheduler="threads", writer="to_zarr", src=src, dst=zarr_out),
        size,
        f"xrfdask to_zarr, {os.cpu_count()} threads",
        zarr_out,
    )
    run(
        XRFDASK.format(scheduler="synchronous", writer="to_h5", src=src, dst=h5_out),
        size,
        "xrfdask to_h5, 1 core",
        h5_out,
    )
    run(
        XRFDASK.format(scheduler="threads", writer="to_h5", src=src, dst=h5_out),
        size,
        f"xrfdask to_h5, {os.cpu_count()} threads",
        h5_out,
    )
    run(
        BASELINE_ZARR.format(src=src, dst=zarr_out),
        size,
        "baseline: in memory, then zarr",
        zarr_out,
    )
    run(
        BASELINE_H5.format(src=src, dst=h5_out), size, "baseline: in memory, then h5py gzip", h5_out
    )


if __name__ == "__main__":
    main()
