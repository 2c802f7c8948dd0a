"""Benchmark: snake regridding of a 100,000-pixel x 4096-channel map, against xrf_proc's way.

Generates a position-triggered snake map (320 x 320 pixels x 4096 channels, uint32, 1.68 GB
dense; rows in acquisition order, every other one reversed, positions recorded half a step off in
the direction of travel) and writes it with ``xd.to_zarr`` to a temporary store, so the cube is
read lazily. Then, in the same run:

- xrfdask: in a fresh interpreter with default settings (threaded scheduler on all cores,
  ``xrfdask.chunk-size``), ``regrid(xd.open_zarr(store))`` and the regridded cube streamed
  through a reduction (``spectra.sum(("y", "x"))``); opening, the plan and the read of every
  spectrum are included. Its peak RSS (VmHWM) is printed, with the same run on a map of half the
  pixels (160 x 320), to show that it does not grow with the map.
- the baseline, xrf_proc's ``norm_xrf_batch(snake=True)`` (spec xrf_proc.md 4.5): the cube in
  memory and ``scipy.interpolate.griddata(points, cube[:, :, c].ravel(), grid, "nearest")`` once
  per channel. ``--baseline-channels`` (64) channels are timed, on a cube with the full
  4096-channel stride, and the time is extrapolated linearly to all channels (each call does the
  same work: a k-d tree of all pixels and a query of all grid points). Loading the cube is not
  counted, in the baseline's favour.

Checks printed beside the figures: the regridded map equals the baseline's griddata output
on the timed channels, value for value, and the regridded cube is the original (unsnaked) map,
whose per-channel sums the reduction reproduces.

Target (issue 10): >= 50x faster than the baseline; peak RSS bounded by chunk size.

Usage: python benchmarks/bench_regrid.py [--shape 320x320] [--channels 4096]
       [--baseline-channels 64] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from xrfdask.testing import peak_rss_of

STEP = (0.002, 0.002)  # mm
ORIGIN = (12.5, -4.0)

JOB = """
import json, time, numpy as np, xrfdask as xd
from xrfdask.regrid import regrid
t0, c0 = time.perf_counter(), time.process_time()
ds = xd.open_zarr(r"{store}")
out = regrid(ds)
t1 = time.perf_counter()
total = out.spectra.sum(("y", "x"), dtype=np.uint64).compute()
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"wall": t2 - t0, "build": t1 - t0, "cpu": c2 - c0,
                  "sums": total.values[0].tolist(), "band": out.spectra.data.chunksize[0]}}))
"""


def truth_block(rows: np.ndarray, nx: int, nchan: int) -> np.ndarray:
    """The known map's spectra of ``rows`` (grid order), small counts like a real map's."""
    i = rows[:, None, None, None].astype(np.int64)
    j = np.arange(nx, dtype=np.int64)[None, :, None, None]
    c = np.arange(nchan, dtype=np.int64)[None, None, None, :]
    return ((i * 31 + j * 17 + c * 7 + (i * j) % 13) % 61).astype(np.uint32)


def snake_block(block_info=None, *, nx: int, nchan: int) -> np.ndarray:
    (r0, r1) = block_info[None]["array-location"][0]
    rows = np.arange(r0, r1)
    out = truth_block(rows, nx, nchan)
    backward = rows % 2 == 1
    out[backward] = out[backward, ::-1]
    return out


def snake_motors(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    gx = ORIGIN[0] + STEP[0] * np.arange(nx)
    gy = ORIGIN[1] + STEP[1] * np.arange(ny)
    offset = np.where(np.arange(ny) % 2 == 0, -STEP[0] / 2, STEP[0] / 2)[:, None]
    mot1 = np.broadcast_to(gx[None, :], (ny, nx)) + offset
    mot1[1::2] = mot1[1::2, ::-1]
    mot2 = np.ascontiguousarray(np.broadcast_to(gy[:, None], (ny, nx)))
    return mot1, mot2


def write_map(store: Path, ny: int, nx: int, nchan: int) -> None:
    import dask.array as da
    import xarray as xr

    import xrfdask as xd

    rows = max(1, (16 * 2**20) // (nx * nchan * 4))
    spectra = da.map_blocks(
        snake_block,
        nx=nx,
        nchan=nchan,
        chunks=(da.core.normalize_chunks((rows,), (ny,))[0], (nx,), (1,), (nchan,)),
        dtype=np.uint32,
        meta=np.empty((0, 0, 0, 0), np.uint32),
    )
    mot1, mot2 = snake_motors(ny, nx)
    ones = np.ones((ny, nx, 1))
    ds = xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), spectra),
            "icr": (("y", "x", "detector"), ones),
            "ocr": (("y", "x", "detector"), ones),
            "I0": (("y", "x"), ones[..., 0]),
            "acquisition_time": (("y", "x"), ones[..., 0] * 0.01),
            "mot1": (("y", "x"), mot1, {"Name": "samx", "units": "mm"}),
            "mot2": (("y", "x"), mot2, {"Name": "samy", "units": "mm"}),
        },
        coords={"detector": ["channel00"], "channel": np.arange(nchan)},
        attrs={"cmd": f"cmesh samx 0 1 {nx} samy 0 1 {ny - 1} 0.01"},
    )
    xd.to_zarr(ds, store)


def xrf_proc_grid(mot1: np.ndarray, mot2: np.ndarray):
    """xrf_proc's ``norm_xrf_batch(sort=True, snake=True)`` on the motors: each row sorted by
    mot1 (spec 4.4; rows of a raw snake run both ways), then spec 4.5 steps 1-2 (the row-wise
    half-pixel shift, the mean positions, ``np.mgrid``). Returns the row order, the points and
    the grid."""
    order = np.argsort(mot1, axis=1)
    mot1 = np.take_along_axis(mot1, order, axis=1)
    mot2 = np.take_along_axis(mot2, order, axis=1)
    first = mot1[:, 0].copy()
    middle = np.average((first.max(), first.min()))
    for row in range(mot1.shape[0]):
        half = abs(mot1[row, 1] - mot1[row, 0]) / 2.0
        mot1[row, :] += half if first[row] <= middle else -half
    cols = np.average(mot1, axis=0)
    rows = np.average(mot2, axis=1)
    gx, gy = np.mgrid[
        cols[0] : cols[-1] : complex(cols.size), rows[0] : rows[-1] : complex(rows.size)
    ]
    return order, (mot1.ravel(), mot2.ravel()), (gx, gy)


def baseline(store: Path, nchan: int, nbase: int):
    """Per channel: the row sort and ``griddata(..., "nearest")`` on the in-memory cube;
    seconds for ``nbase`` channels, and their output (rows, columns, nbase)."""
    from scipy.interpolate import griddata

    import xrfdask as xd

    ds = xd.open_zarr(store)
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    order, points, grid = xrf_proc_grid(ds.mot1.values, ds.mot2.values)
    # the cube with the full channel stride; only the timed channels' pages are touched
    cube = np.zeros((ny, nx, nchan), dtype=np.uint32)
    cube[:, :, :nbase] = ds.spectra.isel(detector=0, channel=slice(0, nbase)).values
    out = np.empty((ny, nx, nbase))
    t0 = time.perf_counter()
    for c in range(nbase):
        values = np.take_along_axis(cube[:, :, c], order, axis=1).ravel()
        out[:, :, c] = griddata(points, values, grid, method="nearest").T
    return time.perf_counter() - t0, out


def known_sums(ny: int, nx: int, nchan: int) -> np.ndarray:
    total = np.zeros(nchan, dtype=np.uint64)
    for r in range(0, ny, 16):
        block = truth_block(np.arange(r, min(r + 16, ny)), nx, nchan)
        total += block.sum(axis=(0, 1, 2), dtype=np.uint64)
    return total


def run_xrfdask(store: Path) -> tuple[int, dict]:
    peak, text = peak_rss_of(JOB.format(store=store))
    return peak, json.loads(text.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="320x320", help="rows x columns (default 320x320)")
    parser.add_argument("--channels", type=int, default=4096)
    parser.add_argument("--baseline-channels", type=int, default=64)
    parser.add_argument("--dir", default=None, help="folder for the temporary zarr stores")
    args = parser.parse_args(argv)
    ny, nx = (int(v) for v in args.shape.lower().split("x"))
    nchan, nbase = args.channels, min(args.baseline_channels, args.channels)
    print(f"load before: {os.getloadavg()}  cores: {os.cpu_count()}")
    folder = Path(tempfile.mkdtemp(prefix="xrfdask-regrid-", dir=args.dir))
    try:
        stores = {}
        for shape in ((ny, nx), (max(2, ny // 2), nx)):
            stores[shape] = folder / f"snake_{shape[0]}x{shape[1]}.zarr"
            t0 = time.perf_counter()
            write_map(stores[shape], *shape, nchan)
            print(
                f"wrote {shape[0]} x {shape[1]} x {nchan} uint32 snake map "
                f"({shape[0] * shape[1] * nchan * 4 / 1e9:.2f} GB dense) in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        full = stores[(ny, nx)]

        peak, res = run_xrfdask(full)
        half_peak, half_res = run_xrfdask(stores[(max(2, ny // 2), nx)])
        seconds, reference = baseline(full, nchan, nbase)
        per_channel = seconds / nbase
        extrapolated = per_channel * nchan

        from xrfdask.io.h5layout import open_zarr
        from xrfdask.regrid import regrid

        ours = regrid(open_zarr(full)).spectra.isel(detector=0, channel=slice(0, nbase)).values
        same = np.array_equal(ours.astype(np.float64), reference)
        truth = known_sums(ny, nx, nchan)
        sums_ok = np.array_equal(np.asarray(res["sums"], dtype=np.uint64), truth)

        npix = ny * nx
        print(f"map: {ny} x {nx} = {npix} pixels x {nchan} channels (zarr, read lazily)")
        print(
            f"xrfdask regrid (open + plan + read + regrid + reduce): {res['wall']:.2f} s wall, "
            f"{res['cpu']:.2f} s CPU ({res['build']:.2f} s to build the graph); band "
            f"{res['band']} rows; peak RSS {peak / 2**20:.0f} MiB"
        )
        print(
            f"  half the map ({max(2, ny // 2)} x {nx}): {half_res['wall']:.2f} s; "
            f"peak RSS {half_peak / 2**20:.0f} MiB"
        )
        print(
            f"baseline griddata('nearest') per channel: {per_channel * 1e3:.1f} ms/channel over "
            f"{nbase} channels timed ({seconds:.2f} s), extrapolated linearly to {nchan} channels: "
            f"{extrapolated:.1f} s"
        )
        print(f"speed-up: {extrapolated / res['wall']:.1f}x (target >= 50x)")
        print(f"peak RSS full / half map: {peak / half_peak:.2f} (bounded by chunk size: ~1)")
        print(f"check: equal to griddata on the {nbase} timed channels: {same}")
        print(f"check: per-channel sums of the regridded cube equal the known map's: {sums_ok}")
        print(f"load after: {os.getloadavg()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
