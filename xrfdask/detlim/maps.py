"""Detection-limit maps: the detection limit of every pixel, from its own background and time.

The sum-spectrum limit of :func:`~xrfdask.detlim.limits.detection_limits` is
DL₁ = 3 √(B·T) / P · c: three standard deviations of the background counts B under a line's
windows, over the counts P per concentration c, scaled to a 1 s measurement. A pixel i of a map
has its own background B_i, its own flux I0_i and its own counting time t_i; with the
reference's sensitivity k = P_norm / (I0n · c) (counts per I0 count per concentration unit; per
I0 count x s with TmNorm) its expected counts per concentration unit are s_i = k · I0_i
(k · I0_i · t_i with TmNorm), so

- ``detection_limit`` = 3 √B_i / s_i: the limit at the pixel's own counting time, to compare
  with (mask) the pixel's concentration;
- ``detection_limit_1s`` = ``detection_limit`` · √(t_i / 1 s): the 1 s equivalent. On a
  homogeneous reference map (B_i = B/N, t_i = T/N, I0_i = ΣI0/N) it equals DL₁ exactly.

The background is the one the linear fit subtracts: PyMca's Savitzky-Golay + SNIP
(:func:`xrfdask.fit.background.snip_background`) with the configuration's ``snipwidth``,
``stripfilterwidth`` and anchors, over the fit range, exactly as
:func:`~xrfdask.fit.model.build_model` sets them up for the fit. It is summed over each line's
±3σ windows (σ = FWHM/2.3548 at the line energy, PyMca's detector noise and Fano), each window
weighted by the line's share of its group (the lines of :func:`xrfdask.physics.group_lines`
under the configured excitation, ratios summing to 1), as PyMca's ``statistics`` weights the
sum-spectrum windows; then dead-time corrected (x icr/ocr, or / (1 - deadtime/100)) like the
peak areas. Two estimates of B_i (``background=``):

- ``"pixel"``: the SNIP background of the pixel's own spectrum. SNIP follows the lower envelope
  of the noise, so it is right for spectra with many counts per channel and far too low for
  sparse ones (the 16 x 16 pixel, 100 ms example map: the pixels' SNIP backgrounds under Fe K add
  up to 2.4 % of the sum spectrum's; many pixels get B_i = 0 and a limit of 0);
- ``"scaled"`` (default): the sum spectrum's SNIP background under each window, shared among the
  pixels in proportion to each pixel's own SNIP background over the whole fit range (thousands
  of channels, so the noise and the envelope bias largely cancel): B_ij = B_j(sum) · S_i / ΣS.
  The totals then agree with the sum spectrum's whatever the counts; the price is that the
  pixel's background level is one number for all its lines (every line's map has the same
  pattern, scaled), where ``"pixel"`` follows each window separately.

The sum-spectrum B of :func:`detection_limits` (PyMca's ``statistics - fitarea``) also counts
neighbouring lines under the windows, which a smooth background does not: where lines overlap
(Pb L and M on the example map), map limits are lower than the sum-spectrum ones.

One pass over the spectra, chunked like the map: each block is trimmed, stripped by the compiled
SNIP and multiplied by a (channels x lines) window matrix; everything after is elementwise.
"""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError
from xrfdask.physics import FWHM_PER_SIGMA, fwhm, group_lines, radiative_group_lines

__all__ = ["detection_limit_maps", "line_windows"]

_WINDOW_SIGMAS = 3.0


def _excitation(config: dict) -> tuple[tuple[float, float], ...]:
    fit = config.get("fit", {})
    energies = fit.get("energy")
    energies = energies if isinstance(energies, list) else [energies]
    weights = fit.get("energyweight", [1.0] * len(energies))
    weights = weights if isinstance(weights, list) else [weights]
    flags = fit.get("energyflag", [1] * len(energies))
    flags = flags if isinstance(flags, list) else [flags]
    out = []
    for e, w, f in zip(energies, weights, flags, strict=False):
        if e is not None and f and float(e) > 0:
            out.append((float(e), float(w if w is not None else 1.0)))
    return tuple(out)


def _group(line: str) -> tuple[int, str]:
    import xraylib

    symbol, shell = str(line).split()[:2]
    return xraylib.SymbolToAtomicNumber(symbol), shell


def line_windows(
    lines: list[str], config: dict, xmin: int, xmax: int
) -> tuple[np.ndarray, list[list[tuple[float, float]]]]:
    """The (fit channels, lines) window matrix W: B_j = Σ_ch background(ch) · W[ch, j].

    W[ch, j] = Σ_p r_p · [|E(ch) - E_p| <= 3 σ_p] over the lines p of group j (energies E_p and
    ratios r_p summing to 1), E(ch) = zero + gain · ch of the configuration's calibration, for
    the channels [xmin, xmax) of the fit range.

    Returns
    -------
    (W, lines per group)
    """
    det = config["detector"]
    zero, gain = float(det["zero"]), float(det["gain"])
    noise, fano = float(det["noise"]), float(det["fano"])
    exc = _excitation(config)
    energy = zero + gain * np.arange(xmin, xmax, dtype=np.float64)
    w = np.zeros((xmax - xmin, len(lines)))
    used = []
    for j, line in enumerate(lines):
        z, shell = _group(line)
        group = group_lines(z, shell, exc) if exc else ()
        if not group:
            group = radiative_group_lines(z, shell)
        total = sum(r for _, r in group)
        used.append([(e, r / total) for e, r in group])
        for e, r in used[-1]:
            sigma = fwhm(e, noise, fano) / FWHM_PER_SIGMA
            w[:, j] += r * (np.abs(energy - e) <= _WINDOW_SIGMAS * sigma)
    return w, used


def _block_background(block, params):
    """(by, bx, ndet, nline) window sums of the SNIP background of a (by, bx, ndet, nch) block."""
    from xrfdask.fit.background import snip_background

    by, bx, ndet, _ = block.shape
    out = np.empty((by, bx, ndet, params[0]["w"].shape[1]), dtype=np.float64)
    for d, p in enumerate(params):
        y = np.ascontiguousarray(
            block[:, :, d, p["xmin"] : p["xmax"]].reshape(by * bx, -1), dtype=p["dtype"]
        )
        bkg = snip_background(y, p["snip"], filter_width=p["filter"], anchors=p["anchors"], out=y)
        out[:, :, d, :] = (bkg.astype(np.float64) @ p["w"]).reshape(by, bx, -1)
    return out


def _config_of(config: Any, nrm: xr.Dataset | None) -> Any:
    if config is not None:
        return config
    if nrm is not None:
        if "config" in nrm.attrs:
            return nrm.attrs["config"]
        if "config" in nrm:
            return str(np.asarray(nrm["config"].values).reshape(-1)[0])  # eager-ok: text
    raise ConfigError(
        "detection-limit maps need the fit's PyMca configuration: pass config= (the .cfg, or the "
        "fit result's attrs['config'])"
    )


def _load(config: Any) -> dict:
    """A configuration from a path, a dict or a ``.cfg`` text (the fit's ``attrs["config"]``)."""
    from xrfdask.fit.config import config_from_text, load_config

    if isinstance(config, str) and "\n" in config:
        return load_config(config_from_text(config))
    return load_config(config)


def _pixel_flux(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """(I0, t) per pixel: the map's ``I0`` and ``acquisition_time``; for a ``.GeoPIXE`` map
    without I0 the tube current (µA) x dwell (s), and the dwell as the time."""
    from xrfdask.instrument import map_value

    dwell = float(ds.attrs["dwell_ms"]) / 1000.0 if ds.attrs.get("dwell_ms") else None
    if "acquisition_time" in ds:
        t = ds["acquisition_time"].astype(np.float64)
    elif dwell:
        t = xr.full_like(ds["spectra"].isel(detector=0, channel=0, drop=True), dwell, float)
    else:
        raise ConfigError("the map has no 'acquisition_time' (raw/acquisition_time) nor a dwell")
    if "I0" in ds:
        return ds["I0"].astype(np.float64), t
    current = map_value(ds.attrs, "tube_current_ua")
    if isinstance(current, int | float) and current > 0 and dwell:
        return t * 0 + float(current) * dwell, t
    raise ConfigError("the map has no 'I0' (raw/I0) nor a tube current and dwell to stand for it")


def _deadtime_factor(ds: xr.Dataset) -> xr.DataArray | float:
    if "icr" in ds and "ocr" in ds:
        icr, ocr = ds["icr"].astype(np.float64), ds["ocr"].astype(np.float64)
        return xr.where(ocr > 0, icr / ocr.where(ocr > 0), 1.0)
    if "deadtime" in ds:
        live = 1.0 - ds["deadtime"].astype(np.float64) / 100.0
        return xr.where(live > 0, 1.0 / live.where(live > 0), np.nan)
    return 1.0


def detection_limit_maps(
    ds: xr.Dataset,
    nrm: xr.Dataset | None,
    dl: xr.Dataset,
    *,
    config: Any = None,
    background: str = "scaled",
) -> xr.Dataset:
    """The detection limit of every pixel of a map, from its own background and counting time.

    Parameters
    ----------
    ds : xarray.Dataset
        The raw map (``spectra`` (y, x, detector, channel), ``I0``, ``acquisition_time``,
        ``icr``/``ocr`` or ``deadtime``), e.g. ``open_h5(path)``. Read once, lazily.
    nrm : xarray.Dataset or None
        The map's normalised result: its ``valid`` mask (NaN elsewhere) and, unless
        ``config`` is given, the fit configuration in ``attrs["config"]`` or ``config``.
    dl : xarray.Dataset
        A reference's :func:`~xrfdask.detection_limits` (in memory: it needs
        ``reference_concentration`` and ``norm_sum_area``): its lines, sensitivity
        k = P_norm / (I0n c) per detector, unit and TmNorm.
    config : PyMca configuration, optional
        The fit's (a .cfg path, a dict, or the text of a fit result's ``attrs["config"]``):
        calibration, noise, Fano, fit range, SNIP width, filter
        width, anchors and excitation.
    background : {"scaled", "pixel"}, default "scaled"
        ``"pixel"``: B_i is the SNIP background of pixel i's own spectrum under the windows.
        Right for spectra with many counts per channel; SNIP follows the lower envelope of
        Poisson noise, so sparse spectra (a few counts per channel) give far too low a
        background (on the 100 ms example map: 2 % of the sum spectrum's under Fe K) and
        limits near 0. ``"scaled"``: the sum spectrum's SNIP background under each window,
        shared among the pixels in proportion to each pixel's own SNIP background over the
        whole fit range, B_ij = B_j(sum) · S_i / ΣS: the background's shape from the sum, its
        level from the pixel (one level for all of its lines), so the totals agree with the sum
        spectrum whatever the counts.

    Returns
    -------
    xarray.Dataset
        Lazy (y, x, detector, line): ``detection_limit`` (at the pixel's own counting time),
        ``detection_limit_1s`` (1 s equivalent), in ``dl``'s unit (ppm, or µg/cm²), and
        ``background_counts`` (dead-time-corrected B_i). See the module docstring for the
        physics.

    Raises
    ------
    ConfigError
        No configuration, a configuration without the SNIP background (``stripflag`` 0), a
        ``dl`` without the reference's sums, detectors of ``dl`` missing from ``ds``, no I0 or
        time per pixel.
    """
    from xrfdask.fit.config import validate_config
    from xrfdask.fit.model import build_model

    for name in ("reference_concentration", "norm_sum_area"):
        if name not in dl:
            raise ConfigError(
                f"the detection limits lack {name!r}: pass xd.detection_limits(...)'s result, "
                "not one read back from a file"
            )
    if "spectra" not in ds:
        raise ConfigError("detection-limit maps need the raw map (a 'spectra' variable)")
    if background not in ("scaled", "pixel"):
        raise ConfigError(f"background={background!r}: expected 'scaled' or 'pixel'")
    labels = dl["detector"].values.tolist()  # eager-ok: labels
    missing = [lb for lb in labels if lb not in ds["detector"].values.tolist()]  # eager-ok: labels
    if missing:
        raise ConfigError(f"detectors {missing} of the detection limits are not in the map")
    ds = ds.sel(detector=labels)
    spectra = ds["spectra"]
    nchan = spectra.sizes["channel"]
    with warnings.catch_warnings():  # the fit has said what it had to say about its config
        warnings.simplefilter("ignore")
        cfg = validate_config(_load(_config_of(config, nrm)), nchan=nchan, method="linear")
    if not int(cfg["fit"].get("stripflag", 0)):
        raise ConfigError(
            "fit.stripflag is 0: detection-limit maps use the SNIP background of the linear fit"
        )
    lines = [str(v) for v in dl["line"].values]  # eager-ok: labels
    data = spectra.data
    if not isinstance(data, da.Array):
        data = da.from_array(data, chunks=(max(1, spectra.sizes["y"] // 4), -1, -1, -1))
    data = data.rechunk({2: -1, 3: -1})
    if "sumspec" in ds:
        sums = np.asarray(ds["sumspec"].values, dtype=np.float64)  # eager-ok: per channel
    else:
        sums = np.asarray(data.sum(axis=(0, 1), dtype=np.float64).compute())  # eager-ok: sum
    npix = spectra.sizes["y"] * spectra.sizes["x"]
    params, sum_windows = [], []
    for d, label in enumerate(labels):
        model = build_model(cfg, sums[d], npixels=npix, data_dtype=data.dtype, detector=label)
        w, _ = line_windows(lines, model.config, model.xmin, model.xmax)
        # One more column of ones: the pixel's whole background over the fit range (S_i).
        w = np.concatenate([w, np.ones((w.shape[0], 1))], axis=1)
        param = {
            "xmin": model.xmin,
            "xmax": model.xmax,
            "snip": model.snip_width,
            "filter": model.filter_width,
            "anchors": model.anchors,
            "dtype": np.dtype(np.float64),
            "w": w,
        }
        sum_windows.append(_block_background(sums[d][None, None, None, :], [param])[0, 0, 0])
        param["dtype"] = model.result_dtype  # pixels: in the fit's own precision
        params.append(param)
    bkg = data.map_blocks(
        _block_background,
        params,
        chunks=(data.chunks[0], data.chunks[1], (len(labels),), (len(lines) + 1,)),
        dtype=np.float64,
        name="detlim-map-background",
    )
    dims = ("y", "x", "detector", "line")
    coords = {k: v for k, v in spectra.coords.items() if k in ("y", "x")}
    coords |= {"detector": labels, "line": lines}
    own = xr.DataArray(bkg[..., :-1], dims=dims, coords=coords)
    if background == "scaled":
        total = xr.DataArray(bkg[..., -1], dims=dims[:3], coords={"detector": labels})
        share = total / total.sum(("y", "x"))
        of_sum = xr.DataArray(
            np.asarray(sum_windows)[:, :-1],
            dims=dims[2:],
            coords={"detector": labels, "line": lines},
        )
        own = (share * of_sum).assign_coords(own.coords)
    b = own * _deadtime_factor(ds)
    i0, t = _pixel_flux(ds)
    tmnorm = str(dl.attrs.get("TmNorm", "False")) == "True"
    ref = dl["norm_sum_area"].sel(norm_line=lines).rename(norm_line="line")
    k = ref.reset_coords(drop=True) / float(dl.attrs["I0"]) / dl["reference_concentration"]
    signal = k * i0 * (t if tmnorm else 1.0)
    limit = 3.0 * np.sqrt(b) / signal.where(signal > 0)
    if nrm is not None and "valid" in nrm:
        limit = limit.where(nrm["valid"].sel(detector=labels))
    unit = str(dl.attrs.get("unit", "ppm"))
    limit = limit.transpose(*dims)
    out = xr.Dataset(
        {
            "detection_limit": limit.assign_attrs(
                units=unit, long_name="detection limit at the pixel's counting time"
            ),
            "detection_limit_1s": (limit * np.sqrt(t / 1.0))
            .transpose(*dims)
            .assign_attrs(units=unit, long_name="1 s equivalent detection limit"),
            "background_counts": b.transpose(*dims).assign_attrs(
                units="counts", long_name="SNIP background under the line windows"
            ),
        },
        attrs={
            "cnc": dl.attrs.get("cnc", ""),
            "unit": unit,
            "window_sigmas": _WINDOW_SIGMAS,
            "background": background,
        },
    )
    return out
