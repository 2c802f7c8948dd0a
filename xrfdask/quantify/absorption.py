"""Self-absorption correction by the Kα/Kβ ratio (spec ``xrf_proc.md`` section 6.5).

For each absorber element e the measured Kα1/Kβ1 ratio of every pixel, against its theoretical
value R_th (xrf_proc: RadRate(KL3) / RadRate(KM3), xraylib; here that of the windows, below),
gives the mass thickness of an absorbing
layer on the exit path, rho t_e = (ln R_exp - ln R_th) / (mu_b - mu_a) [g/cm²], with mu the
matrix's total mass-attenuation coefficients (xraylib, as xrf_proc) at Kα1 and Kβ1. rho t is the
maximum over the absorbers; each line n is corrected by f_n = exp(rho t mu_n) (f_n > 1000: 1, not
corrected, as xrf_proc).

The ratio comes from one lazy pass over the raw spectra: each block's window sums (two per
absorber) by one vectorised function, dead-time corrected (icr/ocr, or the deadtime percentage).
Windows sit at the fitted calibration (zero, gain: a fit configuration, or the map's energy
coordinate) and span +-1 FWHM of the detector's resolution at each line (PyMca's noise and Fano
factor), so both peaks lose the same small fraction of their area whatever the gain, less the
continuum under them (the mean of two side bands of half a FWHM), which would otherwise pull a
weak Kβ ratio towards 1. The theoretical ratio is that of the same windows (every K line at the
detector's resolution, weighted by the detector efficiency of the fit configuration's window,
dead layer and crystal); ``compat="xrf_proc"``: xrf_proc's 6 channels [i - 3, i + 3) around the
last channel at or below the PyMca line energy, no background subtraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError
from xrfdask.io.cnc import read_cnc
from xrfdask.physics import (
    FWHM_PER_SIGMA,
    alpha1_energy,
    composition_attenuation,
    element_symbol,
    fwhm,
    line_energy,
    radiative_rate,
)

__all__ = [
    "Absorbers",
    "absorbers",
    "calibrations",
    "window_bounds",
    "window_sums",
    "window_ratio_th",
    "detector_layers",
    "efficiency",
    "ratios",
    "rhot",
    "rhot_per_absorber",
    "correction_factors",
    "CUTOFF",
    "LOW_RATIO",
]

CUTOFF = 1000.0  # f_n above this: not corrected (f_n = 1), as xrf_proc
LOW_RATIO = 0.55  # R_exp <= 0.55 R_th: not trusted (R_exp = R_th), as xrf_proc
NOISE_KEV, FANO = 0.1, 0.114  # PyMca's default detector resolution


@dataclass(frozen=True)
class Absorbers:
    """The constants of the correction (all from xraylib, as xrf_proc's self-absorption)."""

    elements: list[str]
    mu_lines: np.ndarray  # (line,) cm²/g of the matrix at each quantified line's α1 energy
    mu_a: np.ndarray  # (absorber,) at Kα1
    mu_b: np.ndarray  # (absorber,) at Kβ1
    ratio_th: np.ndarray  # (absorber,) RadRate(KL3) / RadRate(KM3)
    energy_a: np.ndarray  # (absorber,) keV, the window centres
    energy_b: np.ndarray


def absorbers(elements: list[str], matrix: Any, lines: list[str], *, compat: bool) -> Absorbers:
    """The absorbers' constants and the matrix attenuation at every quantified line."""
    cnc = read_cnc(matrix)
    if not len(elements):
        raise ConfigError("absorb: give at least one absorber element, e.g. (['Fe'], 'matrix.cnc')")
    symbols = []
    for e in elements:
        symbol = element_symbol(e)
        if symbol is None:
            raise ConfigError(f"absorb: {e!r} is not an element")
        if radiative_rate(symbol, "KM3") <= 0 or radiative_rate(symbol, "KL3") <= 0:
            raise ConfigError(f"absorb: {symbol} has no K-alpha1/K-beta1 lines")
        symbols.append(symbol)
    mu_lines = np.array(
        [composition_attenuation(cnc, alpha1_energy(n, "xraylib"), "xraylib") for n in lines]
    )
    ea = np.array([line_energy(s, "KL3", "xraylib") for s in symbols])
    eb = np.array([line_energy(s, "KM3", "xraylib") for s in symbols])
    mu_a = np.array([composition_attenuation(cnc, e, "xraylib") for e in ea])
    mu_b = np.array([composition_attenuation(cnc, e, "xraylib") for e in eb])
    ratio_th = np.array([radiative_rate(s, "KL3") / radiative_rate(s, "KM3") for s in symbols])
    if compat:  # xrf_proc places the windows at PyMca's energies
        ea = np.array([line_energy(s, "KL3", "pymca") for s in symbols])
        eb = np.array([line_energy(s, "KM3", "pymca") for s in symbols])
    return Absorbers(symbols, mu_lines, mu_a, mu_b, ratio_th, ea, eb)


def _parse(config: Any) -> dict:
    from xrfdask.fit.config.text import config_from_text, load_config

    if isinstance(config, str) and "[" in config and "\n" in config:
        return config_from_text(config)
    return load_config(config)


def _from_config(config: Any) -> tuple[float, float, float, float]:
    cfg = _parse(config)
    det = cfg.get("detector", {})
    try:
        return (
            float(det["zero"]),
            float(det["gain"]),
            float(det.get("noise", NOISE_KEV)),
            float(det.get("fano", FANO)),
        )
    except (KeyError, TypeError, ValueError):
        raise ConfigError("absorb: the fit configuration has no [detector] zero and gain") from None


def _item(i: int, det: Any, calibration: Any, config: Any) -> Any:
    item = calibration.get(det) if isinstance(calibration, dict) else calibration
    if item is None and config is not None:
        item = config[i] if isinstance(config, list | tuple | np.ndarray) else config
    return item


def detector_layers(detectors: list, calibration: Any = None, config: Any = None) -> list:
    """Per detector, the layers between sample and detector of its fit configuration:
    [(formula, g/cm³, cm, is_crystal)], from ``[attenuators]`` (enabled entries but the sample
    matrix and beam filters; ``Detector`` is the crystal). Empty without a configuration."""
    out = []
    for i, det in enumerate(detectors):
        item = _item(i, det, calibration, config)
        layers = []
        if item is not None and not isinstance(item, tuple | list):
            for name, entry in (_parse(item).get("attenuators") or {}).items():
                if name == "Matrix" or name.startswith("BeamFilter") or not entry:
                    continue
                if int(entry[0]) != 1 or len(entry) < 4 or str(entry[1]) in ("-", ""):
                    continue
                layers.append((str(entry[1]), float(entry[2]), float(entry[3]), name == "Detector"))
        out.append(layers)
    return out


def efficiency(layers: list, energy: float) -> float:
    """Detector efficiency at ``energy`` (keV): window and dead-layer transmissions times the
    crystal's absorption (xraylib ``CS_Total_CP``); 1 without layers."""
    import xraylib

    value = 1.0
    for formula, density, thickness, crystal in layers:
        mu_t = xraylib.CS_Total_CP(formula, float(energy)) * density * thickness
        value *= -math.expm1(-mu_t) if crystal else math.exp(-mu_t)
    return value


def calibrations(
    raw: xr.Dataset, detectors: list, calibration: Any = None, config: Any = None
) -> np.ndarray:
    """(detector, 4): zero, gain (keV, keV/channel), noise (keV), Fano factor per detector.

    From ``calibration`` ((zero, gain), or a fit configuration, or a dict of either per
    detector), else ``config`` (the fit's per-detector .cfg text), else the raw map's ``energy``
    coordinate with PyMca's default resolution.
    """
    out = np.zeros((len(detectors), 4))
    for i, det in enumerate(detectors):
        item = _item(i, det, calibration, config)
        if item is None:
            if "energy" not in raw.coords or raw.sizes.get("channel", 0) < 2:
                raise ConfigError(
                    "absorb: the raw map has no energy coordinate; pass calibration=(zero, gain) "
                    "or the fit configuration"
                )
            energy = np.asarray(raw["energy"].values, dtype=float)  # eager-ok: 1-D coordinate
            channel = np.asarray(raw["channel"].values, dtype=float)  # eager-ok: 1-D coordinate
            gain = (energy[-1] - energy[0]) / (channel[-1] - channel[0])
            out[i] = (energy[0] - gain * channel[0], gain, NOISE_KEV, FANO)
        elif isinstance(item, tuple | list) and len(item) in (2, 4):
            values = [float(v) for v in item]
            out[i] = values + [NOISE_KEV, FANO] if len(values) == 2 else values
        else:
            out[i] = _from_config(item)
        if not out[i, 1] > 0:
            raise ConfigError(f"absorb: detector {det}: gain {out[i, 1]} is not positive")
    return out


def window_bounds(
    energies: np.ndarray, calib: np.ndarray, n_channels: int, *, compat: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, side) channel bounds (detector, window) of windows [lo, hi).

    Default: the channels whose centres lie within +-FWHM(E) of E, and ``side`` = the width of
    the two background bands [lo - side, lo) and [hi, hi + side) (half a FWHM, at least 2
    channels). ``compat``: i = the last channel with zero + gain i <= E, window [i - 3, i + 3)
    (xrf_proc, 6 channels) and no background bands (side 0).
    """
    zero, gain = calib[:, 0:1], calib[:, 1:2]
    if compat:
        i = np.floor((energies[None, :] - zero) / gain + 1e-9)
        lo, hi = np.round(i - 3), np.round(i + 3)
        side = np.zeros_like(lo)
    else:
        width = np.stack([fwhm(energies, n, f) for n, f in calib[:, 2:4]])
        lo = np.ceil((energies[None, :] - width - zero) / gain)
        hi = np.floor((energies[None, :] + width - zero) / gain) + 1
        side = np.maximum(np.round(width / 2 / gain), 2)
        side = np.minimum(side, np.minimum(lo, n_channels - hi))  # bands inside the spectrum
    lo = np.clip(lo, 0, n_channels).astype(np.int64)
    hi = np.clip(hi, 0, n_channels).astype(np.int64)
    if (hi <= lo).any():
        raise ConfigError("absorb: a K-alpha or K-beta window lies outside the spectrum")
    return lo, hi, np.maximum(side, 0).astype(np.int64)


def window_ratio_th(
    elements: list[str],
    lo: np.ndarray,
    hi: np.ndarray,
    side: np.ndarray,
    calib: np.ndarray,
    layers: list | None = None,
) -> np.ndarray:
    """(detector, absorber): the Kα/Kβ ratio the windows of a layer-free spectrum would show.

    Every K line of the element (xraylib radiative rates, lines of at least 1 % of the
    strongest) as a Gaussian of the detector's FWHM, its share in the net window (main window
    minus the side-band level) summed over lines: so Kα2 and Kβ3, which the windows take in with
    Kα1 and Kβ1, and the tails the windows cut, are in the theoretical value as in the measured
    one. Each line is weighted by the detector efficiency of ``layers`` (per detector, from
    :func:`detector_layers`), which a Be window or a thin crystal tilts towards Kβ. The windows
    are windows 0..n-1 (Kα) and n..2n-1 (Kβ) of ``lo``/``hi``/``side``.
    """
    import xraylib

    from xrfdask.physics import radiative_group_lines

    n = len(elements)
    out = np.zeros((calib.shape[0], n))
    for d in range(calib.shape[0]):
        seen = layers[d] if layers else []
        for k, symbol in enumerate(elements):
            lines = [
                (e, r * efficiency(seen, e))
                for e, r in radiative_group_lines(xraylib.SymbolToAtomicNumber(symbol), "K")
            ]
            ia = sum(r * _net_share(e, calib[d], lo[d, k], hi[d, k], side[d, k]) for e, r in lines)
            ib = sum(
                r * _net_share(e, calib[d], lo[d, n + k], hi[d, n + k], side[d, n + k])
                for e, r in lines
            )
            out[d, k] = ia / ib
    return out


def _share(e: float, sigma: float, zero: float, gain: float, a: int, b: int) -> float:
    """Share of a Gaussian (centre e, sigma keV) in channels [a, b) of zero + gain x channel."""
    lo_e, hi_e = zero + gain * (a - 0.5), zero + gain * (b - 0.5)
    root = sigma * math.sqrt(2.0)
    return 0.5 * (math.erf((hi_e - e) / root) - math.erf((lo_e - e) / root))


def _net_share(e: float, calib: np.ndarray, a: int, b: int, s: int) -> float:
    """A line's share in a window less the side-band level (as :func:`_block_window_sums`)."""
    zero, gain, noise, fano = (float(v) for v in calib)
    sigma = fwhm(e, noise, fano) / FWHM_PER_SIGMA
    a, b, s = int(a), int(b), int(s)
    value = _share(e, sigma, zero, gain, a, b)
    if s > 0:
        bands = _share(e, sigma, zero, gain, a - s, a) + _share(e, sigma, zero, gain, b, b + s)
        value -= bands * (b - a) / (2.0 * s)
    return value


def _block_window_sums(
    block: np.ndarray, lo: np.ndarray, hi: np.ndarray, side: np.ndarray
) -> np.ndarray:
    """(y, x, detector, channel) block -> (y, x, detector, window) net sums over [lo, hi).

    Net: minus the mean level of the two side bands times the window's width (side > 0).
    """
    out = np.empty(block.shape[:3] + (lo.shape[1],), dtype=np.float64)
    for d in range(block.shape[2]):  # a few detectors and windows: vectorised over pixels
        for w in range(lo.shape[1]):
            a, b, s = lo[d, w], hi[d, w], side[d, w]
            out[:, :, d, w] = block[:, :, d, a:b].sum(axis=-1, dtype=np.float64)
            if s > 0:
                bands = block[:, :, d, a - s : a].sum(axis=-1, dtype=np.float64)
                bands += block[:, :, d, b : b + s].sum(axis=-1, dtype=np.float64)
                out[:, :, d, w] -= bands * ((b - a) / (2.0 * s))
    return out


def window_sums(
    spectra: xr.DataArray, lo: np.ndarray, hi: np.ndarray, side: np.ndarray | None = None
) -> xr.DataArray:
    """Window sums of every pixel: one lazy pass over ``spectra`` (y, x, detector, channel)."""
    spectra = spectra.transpose("y", "x", "detector", "channel")
    side = np.zeros_like(lo) if side is None else side
    data = spectra.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(max(1, data.shape[0]), -1, -1, -1))
    data = data.rechunk({2: -1, 3: -1})
    sums = da.map_blocks(
        _block_window_sums,
        data,
        lo,
        hi,
        side,
        dtype=np.float64,
        chunks=(*data.chunks[:3], (lo.shape[1],)),
        name="xrf-window-sums",
    )
    return xr.DataArray(
        sums, dims=("y", "x", "detector", "window"), coords={"detector": spectra["detector"]}
    )


def deadtime_factor(raw: xr.Dataset) -> xr.DataArray | None:
    """icr/ocr (or 1 / (1 - deadtime/100)) per pixel and detector; NaN where undefined."""
    if "icr" in raw and "ocr" in raw:
        ocr = raw["ocr"].astype(np.float64)
        return (raw["icr"] / ocr.where(ocr > 0)).transpose("y", "x", "detector")
    if "deadtime" in raw:
        live = 1.0 - raw["deadtime"].astype(np.float64) / 100.0
        return (1.0 / live.where(live > 0)).transpose("y", "x", "detector")
    return None


def ratios(sums: xr.DataArray, ratio_th: xr.DataArray) -> xr.DataArray:
    """R_exp (y, x, detector, absorber) from Kα and Kβ window sums, cleaned as xrf_proc.

    I_a < 1 -> 1; I_b <= 1 -> I_a / R_th; R_exp > R_th, R_exp <= 0.55 R_th or NaN -> R_th.
    """
    n = ratio_th.sizes["absorber"]
    ia = sums.isel(window=slice(0, n)).rename(window="absorber")
    ib = sums.isel(window=slice(n, 2 * n)).rename(window="absorber")
    ia = ia.assign_coords(absorber=ratio_th["absorber"])
    ib = ib.assign_coords(absorber=ratio_th["absorber"])
    ia = xr.where(ia < 1, 1.0, ia)
    ib = xr.where(ib <= 1, ia / ratio_th, ib)
    r = ia / ib
    bad = (r > ratio_th) | (r <= LOW_RATIO * ratio_th) | r.isnull()
    return xr.where(bad, ratio_th, r).transpose("y", "x", "detector", "absorber")


def rhot_per_absorber(ratio_exp: xr.DataArray, ratio_th: xr.DataArray, mu_a, mu_b):
    """rho t_e = (ln R_exp - ln R_th) / (mu_b - mu_a) [g/cm²]; negative and NaN -> 0."""
    per = (np.log(ratio_exp) - np.log(ratio_th)) / (mu_b - mu_a)
    return xr.where(per.isnull() | (per < 0), 0.0, per)


def rhot(ratio_exp: xr.DataArray, ratio_th: xr.DataArray, mu_a, mu_b) -> xr.DataArray:
    """rho t (y, x, detector) in g/cm²: the maximum over the absorbers of
    :func:`rhot_per_absorber`."""
    return rhot_per_absorber(ratio_exp, ratio_th, mu_a, mu_b).max("absorber")


def correction_factors(rho_t: xr.DataArray, mu_lines: xr.DataArray) -> xr.DataArray:
    """f_n = exp(rho t mu_n) (y, x, detector, line); f_n > 1000 -> 1 (not corrected)."""
    exponent = rho_t * mu_lines
    limit = np.log(CUTOFF)
    return xr.where(exponent > limit, 1.0, np.exp(exponent.clip(max=limit)))
