"""Benchmark: xrf_proc's overview images of a 1,000,000-pixel map (1000 x 1000, 12 lines).

A synthetic lazy result (dask, bands of 125 rows: smooth blobs plus noise, like element maps;
coordinates in mm, 2 µm pixels) is drawn, in the same run, best of ``--repeat``:

- overview: ``xd.plot.overview(result, folder)`` (the maps computed from the graph, the figure
  drawn and written as PNG at dpi 150);
- baseline: xrf_proc's way (spec 8.1): the maps computed, then pyplot ``imshow`` per panel with
  its colour bar, the whole figure saved at dpi 420 with ``bbox_inches="tight"``;
- correlation: ``xd.plot.correlation(result, path)`` on its 20,000-pixel seeded sample.

Target (issue 12): the overview in less than 10 s. Each figure is printed with its ratio to the
baseline.

Usage: python benchmarks/bench_images.py [--size 1000] [--lines 12] [--repeat 2] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from _timing import best_of

import xrfdask as xd

TARGET_S = 10.0


def synthetic_result(size: int, nlines: int) -> xr.Dataset:
    """A lazy (y, x, detector, line) ``normalised`` map: a few Gaussian blobs per line + noise."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, size, (nlines, 4, 2))
    widths = rng.uniform(size / 20, size / 6, (nlines, 4))

    def block(block_info=None):
        (y0, y1), (x0, x1) = block_info[None]["array-location"][:2]
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        out = np.empty((y1 - y0, x1 - x0, 1, nlines), np.float32)
        noise = np.random.default_rng(y0).normal(0, 5, out.shape).astype(np.float32)
        for k in range(nlines):
            img = np.full(yy.shape, 20.0, np.float32)
            for (cy, cx), w in zip(centres[k], widths[k], strict=True):
                img += 1000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
            out[..., 0, k] = img
        return out + noise

    data = da.map_blocks(
        block, chunks=((125,) * math.ceil(size / 125), (size,), (1,), (nlines,)), dtype=np.float32
    )[:size]
    pitch_mm = 0.002
    return xr.Dataset(
        {"normalised": (("y", "x", "detector", "line"), data)},
        coords={
            "y": ("y", (np.arange(size) + 0.5) * pitch_mm, {"units": "mm"}),
            "x": ("x", (np.arange(size) + 0.5) * pitch_mm, {"units": "mm"}),
            "detector": [0],
            "line": [f"L{k} K" for k in range(nlines)],
        },
    )


def xrf_proc_way(result: xr.Dataset, path: Path, ncols: int = 4) -> None:
    """Spec 8.1/8.5 as the original does it: pyplot, imshow + colorbar per panel, dpi 420."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = result["normalised"].isel(detector=0).transpose("y", "x", "line").values
    maps = np.where(maps < 0, 0, maps)
    n = maps.shape[-1]
    nrows = math.ceil(n / ncols)
    h = 6 / nrows
    w = h * maps.shape[1] / maps.shape[0]
    fig = plt.figure(figsize=((0.6 + 0.05) * (ncols + 1) + ncols * w,
                              6 + (nrows + 1) * (0.35 + 0.05)))  # fmt: skip
    for k in range(n):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        im = ax.imshow(maps[..., k], interpolation="nearest", cmap="viridis")
        ax.set_title(str(result.line.values[k]), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("Int.\n[cts]")
    fig.savefig(path, dpi=420, bbox_inches="tight", pad_inches=0)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="pixels per side")
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", default=None, help="folder for the PNGs (kept)")
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-images-"))
    folder.mkdir(parents=True, exist_ok=True)
    result = synthetic_result(args.size, args.lines)
    print(f"map: {args.size} x {args.size} px, {args.lines} lines, lazy dask "
          f"({result.normalised.data.npartitions} chunks); PNGs in {folder}")  # fmt: skip

    t_overview = best_of(lambda: xd.plot.overview(result, folder), args.repeat)
    t_base = best_of(lambda: xrf_proc_way(result, folder / "xrf_proc_way.png"), args.repeat)
    t_corr = best_of(lambda: xd.plot.correlation(result, folder / "correlation.png"), args.repeat)
    verdict = "meets" if t_overview < TARGET_S else "MISSES"
    print(f"overview:              {t_overview:6.2f} s  ({verdict} the < {TARGET_S:.0f} s target; "
          f"{t_base / t_overview:.1f}x faster than the baseline)")  # fmt: skip
    print(f"baseline (xrf_proc):   {t_base:6.2f} s  (pyplot imshow + colorbar per panel, dpi 420)")
    print(f"correlation (20,000 px sample of {args.lines} lines): {t_corr:6.2f} s")


if __name__ == "__main__":
    main()
