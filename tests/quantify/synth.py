"""Small hand-made inputs of quantify, with exactly the variables of the issue-10 contract."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr


def make_nrm(
    counts: np.ndarray,
    lines: list[str],
    i0: np.ndarray,
    *,
    normto: float | None = None,
    background: np.ndarray | None = None,
    detectors=("channel00",),
    chunks: int = 2,
) -> xr.Dataset:
    """A normalised result from dead-time-corrected counts (y, x, detector, line) and I0 (y, x).

    Errors Poisson: sqrt(C) / I0 * normto per pixel; sums P = sum C, B = ``background`` (detector,
    line), P_norm = P / sum(I0) * normto with the contract's errors.
    """
    counts = np.asarray(counts, dtype=float)
    normto = float(i0.max()) if normto is None else normto
    norm = counts / i0[:, :, None, None] * normto
    err = np.sqrt(counts) / i0[:, :, None, None] * normto
    p = counts.sum((0, 1))
    b = np.zeros_like(p) if background is None else np.asarray(background, dtype=float)
    total = float(i0.sum())
    p_norm, b_norm = p / total * normto, b / total * normto
    with np.errstate(divide="ignore", invalid="ignore"):
        p_err = np.where(p > 0, p_norm * np.sqrt(p + 2 * b) / p, 0.0)
        b_err = np.where(b > 0, b_norm * np.sqrt(b) / b, 0.0)
    ny, nx, nd, _ = counts.shape
    coords = {
        "y": np.arange(ny, dtype=float),
        "x": np.arange(nx, dtype=float),
        "detector": list(detectors),
        "line": lines,
    }
    dims4, dims2 = ("y", "x", "detector", "line"), ("detector", "line")

    def lazy(a):
        return da.from_array(a, chunks=(chunks, -1, -1, -1)[: a.ndim])

    return xr.Dataset(
        {
            "normalised": (dims4, lazy(norm)),
            "normalised_error": (dims4, lazy(err)),
            "valid": (("y", "x", "detector"), lazy(np.ones((ny, nx, nd), dtype=bool))),
            "sum_area": (dims2, p_norm),
            "sum_background": (dims2, b_norm),
            "sum_area_error": (dims2, p_err),
            "sum_background_error": (dims2, b_err),
            "I0_total": ("detector", np.full(nd, total)),
            "time_total": ("detector", np.full(nd, float(ny * nx))),
        },
        coords=coords,
        attrs={"I0": normto, "TmNorm": "False", "tmnorm": False, "error_source": "poisson"},
    )


def make_ref(
    lines: list[str],
    yields,
    errors,
    *,
    cnc: str = "ref.cnc",
    norm_lines=("Compt", "Rayl"),
    norm_sums=(1000.0, 2000.0),
    norm_bkg=(10.0, 20.0),
    normto: float = 1e5,
    i0_total_raw: float = 1e9,
    detectors=("channel00",),
) -> xr.Dataset:
    """A detection_limits-like result: yields (detector, line) and the norm-line sums."""
    nd = len(detectors)
    y = np.broadcast_to(np.asarray(yields, dtype=float), (nd, len(lines)))
    e = np.broadcast_to(np.asarray(errors, dtype=float), (nd, len(lines)))
    s = np.broadcast_to(np.asarray(norm_sums, dtype=float), (nd, len(norm_lines)))
    b = np.broadcast_to(np.asarray(norm_bkg, dtype=float), (nd, len(norm_lines)))
    return xr.Dataset(
        {
            "elemental_yield": (("detector", "line"), y.copy()),
            "elemental_yield_error": (("detector", "line"), e.copy()),
            "norm_sum_area": (("detector", "norm_line"), s.copy()),
            "norm_sum_background": (("detector", "norm_line"), b.copy()),
        },
        coords={"detector": list(detectors), "line": lines, "norm_line": list(norm_lines)},
        attrs={
            "cnc": cnc,
            "I0": normto,
            "TmNorm": "False",
            "I0_total_raw": i0_total_raw,
            "unit": "ppm",
        },
    )
