"""Snake and time-triggered scans simulated from known maps, for the regrid tests."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr


def truth_map(ny: int, nx: int, nchan: int = 6, ndet: int = 2, seed: int = 0) -> np.ndarray:
    """Known spectra (y, x, detector, channel), uint32, all different."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**20, (ny, nx, ndet, nchan), dtype=np.uint32)


def grid_positions(ny: int, nx: int, step=(0.5, 2.0), origin=(10.0, -3.0)):
    """Pixel centres of the regular grid: x (columns, fast) and y (rows, slow)."""
    return origin[0] + step[0] * np.arange(nx), origin[1] + step[1] * np.arange(ny)


def snake_order(a: np.ndarray) -> np.ndarray:
    """Rows in acquisition order: every other row reversed."""
    out = np.array(a, copy=True)
    out[1::2] = out[1::2, ::-1]
    return out


def snake_map(
    truth: np.ndarray,
    *,
    step=(0.5, 2.0),
    origin=(10.0, -3.0),
    chunks=None,
    centres_x: np.ndarray | None = None,
    centres_y: np.ndarray | None = None,
) -> xr.Dataset:
    """A raw position-triggered snake map of ``truth``.

    Even rows run forward, odd rows backward (stored in acquisition order). Each pixel's position
    is recorded at its trigger, half a step before its centre in the direction of travel: centre
    - step/2 on forward rows, centre + step/2 on backward ones (the bidirectional offset the
    half-pixel shift corrects). ``centres_x``/``centres_y`` (y, x) replace the grid's centres.
    """
    ny, nx = truth.shape[:2]
    gx, gy = grid_positions(ny, nx, step, origin)
    cx = np.broadcast_to(gx[None, :], (ny, nx)) if centres_x is None else centres_x
    cy = np.broadcast_to(gy[:, None], (ny, nx)) if centres_y is None else centres_y
    offset = np.where(np.arange(ny) % 2 == 0, -step[0] / 2, step[0] / 2)[:, None]
    mot1 = snake_order(cx + offset)
    mot2 = snake_order(cy)
    spectra = snake_order(truth)
    icr = spectra.sum(axis=3).astype(np.float64)
    i0 = snake_order(np.arange(ny * nx, dtype=np.float64).reshape(ny, nx) + 1000.0)
    chunks = chunks or (ny, nx, truth.shape[2], truth.shape[3])
    det = [f"channel{d:02d}" for d in range(truth.shape[2])]
    return xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), da.from_array(spectra, chunks=chunks)),
            "icr": (("y", "x", "detector"), da.from_array(icr, chunks=chunks[:3])),
            "ocr": (("y", "x", "detector"), da.from_array(icr * 0.9, chunks=chunks[:3])),
            "I0": (("y", "x"), da.from_array(i0, chunks=chunks[:2])),
            "mot1": (("y", "x"), mot1, {"Name": "samx", "units": "mm"}),
            "mot2": (("y", "x"), mot2, {"Name": "samy", "units": "mm"}),
            "sumspec": (("detector", "channel"), spectra.sum(axis=(0, 1))),
        },
        coords={
            "y": ("y", np.arange(ny, dtype=float), {"units": "pixel"}),
            "x": ("x", np.arange(nx, dtype=float), {"units": "pixel"}),
            "detector": det,
            "channel": np.arange(truth.shape[3]),
        },
        attrs={"cmd": f"cmesh samx {gx[0]} {gx[-1]} {nx} samy {gy[0]} {gy[-1]} {ny} 0.1"},
    )


def fit_like(values: np.ndarray, raw: xr.Dataset, chunks=None) -> xr.Dataset:
    """A fit result (peak areas on (y, x, detector, line)) on the raw map's pixels."""
    lines = ["Fe K", "Pb L", "Compt"][: values.shape[3]]
    chunks = chunks or raw.spectra.data.chunksize[:2] + values.shape[2:]
    return xr.Dataset(
        {
            "peak_area": (("y", "x", "detector", "line"), da.from_array(values, chunks=chunks)),
            "sum_area": (("detector", "line"), values.sum(axis=(0, 1)).astype(np.float64)),
        },
        coords={"y": raw.y, "x": raw.x, "detector": raw.detector, "line": lines},
        attrs={"method": "linear"},
    )
