"""Helpers for tests and benchmarks: large maps built from small real ones, peak-memory probes."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["tiled_map", "write_tiled_geopixe", "peak_rss_of"]


def tiled_map(ds: xr.Dataset, ny: int, nx: int, *, rows_per_chunk: int | None = None) -> xr.Dataset:
    """A lazy raw map of ``ny`` x ``nx`` pixels made by tiling ``ds`` (real spectra, bigger map).

    The header in ``attrs["geopixe_header"]`` keeps the source's pixel size, so the tiled map is
    written as a consistent ``.GeoPIXE`` file.
    """
    sy, sx = ds.sizes["y"], ds.sizes["x"]
    reps = (math.ceil(ny / sy), math.ceil(nx / sx))

    def tile(var: xr.DataArray) -> da.Array:
        data = var.data if isinstance(var.data, da.Array) else da.from_array(var.values)
        data = data.rechunk(-1)
        out = da.tile(data, reps + (1,) * (data.ndim - 2))[:ny, :nx]
        rows = rows_per_chunk or max(1, sy)
        return out.rechunk((rows,) + (-1,) * (data.ndim - 1))

    out = xr.Dataset(
        {
            name: (ds[name].dims, tile(ds[name]), ds[name].attrs)
            for name in ("spectra", "deadtime")
            if name in ds
        },
        coords={k: v for k, v in ds.coords.items() if "y" not in v.dims and "x" not in v.dims},
        attrs=dict(ds.attrs),
    )
    for dim, n in (("y", ny), ("x", nx)):
        step = float(ds[dim][1] - ds[dim][0]) if ds.sizes[dim] > 1 else 1.0
        out = out.assign_coords({dim: (dim, (np.arange(n) + 0.5) * step, ds[dim].attrs)})
    return out


def write_tiled_geopixe(
    source: str | os.PathLike, dest: str | os.PathLike, ny: int, nx: int
) -> str:
    """Write a ``ny`` x ``nx`` ``.GeoPIXE`` map tiled from the spectra of ``source``."""
    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.io.geopixe.writer import to_geopixe

    big = tiled_map(open_geopixe(source), ny, nx, rows_per_chunk=64)
    return to_geopixe(big, dest, overwrite=True)


def peak_rss_of(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 1800
) -> tuple[int, str]:
    """Run Python ``code`` in a fresh interpreter; return (its peak RSS in bytes, its stdout).

    The child reports its ``VmHWM`` (peak resident set of its own address space), so the figure
    covers everything the code touched, interpreter and imports included. (``ru_maxrss`` would not
    do: on Linux it keeps the parent's peak across fork and exec.)
    """
    probe = code + (
        "\nprint('PEAK_RSS_KB', next(int(line.split()[1]) for line in open('/proc/self/status')"
        " if line.startswith('VmHWM:')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"probe failed:\n{result.stderr}")
    lines = result.stdout.strip().splitlines()
    peak_kb = int(lines[-1].split()[1])
    return peak_kb * 1024, "\n".join(lines[:-1])
