"""Detection-limit maps (xrfdask/detlim/maps.py): windows, background, formulas, consistency."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from tests.conftest import SHARED
from xrfdask.detlim import detection_limit_maps, detection_limits, line_windows
from xrfdask.errors import ConfigError
from xrfdask.fit.config import config_to_text, load_config, validate_config
from xrfdask.physics import group_lines

NIST613 = str(SHARED / "data" / "cnc" / "nist613.cnc")
NCH, GAIN, ZERO, NOISE, FANO = 1024, 0.02, 0.01, 0.1, 0.114
LINES = ["Fe K", "Cu K", "Compt"]
CONFIG = {
    "fit": {
        "energy": [20.0],
        "energyweight": [1.0],
        "energyflag": [1],
        "energyscatter": [1],
        "xmin": 50,
        "xmax": 900,
        "stripflag": 1,
        "stripalgorithm": 1,
        "snipwidth": 30,
        "stripfilterwidth": 5,
    },
    "detector": {"zero": ZERO, "gain": GAIN, "noise": NOISE, "fano": FANO},
    "peaks": {"Fe": "K", "Cu": "K"},
}


def config() -> dict:
    return validate_config(load_config(CONFIG), nchan=NCH, method="linear")


def raw_map(base, t, *, i0_rate=1e4, chunks=1, icr=None, ocr=None, i0=None) -> xr.Dataset:
    ny, nx = t.shape
    spectra = t[:, :, None, None] * base[None, None, None, :]
    ds = xr.Dataset(
        {
            "spectra": (
                ("y", "x", "detector", "channel"),
                da.from_array(spectra, chunks=(chunks, -1, -1, -1)),
            ),
            "I0": (("y", "x"), i0_rate * t if i0 is None else i0),
            "acquisition_time": (("y", "x"), t),
        },
        coords={"detector": [0], "energy": ("channel", ZERO + GAIN * np.arange(NCH))},
    )
    if icr is not None:
        ds["icr"] = (("y", "x", "detector"), icr[..., None])
        ds["ocr"] = (("y", "x", "detector"), ocr[..., None])
    return ds


def reference(p, b, i0_total, time_total, tm=False) -> xr.Dataset:
    """A reference's detection limits from hand-made normalised sums (no errors)."""
    normto = 1.0e4
    pn, bn = np.asarray(p)[None] / i0_total * normto, np.asarray(b)[None] / i0_total * normto
    dims = ("detector", "line")
    nrm = xr.Dataset(
        {
            "sum_area": (dims, pn),
            "sum_background": (dims, bn),
            "sum_area_error": (dims, np.zeros_like(pn)),
            "sum_background_error": (dims, np.zeros_like(bn)),
            "I0_total": ("detector", [i0_total]),
            "time_total": ("detector", [time_total]),
        },
        coords={"detector": [0], "line": LINES},
        attrs={"I0": normto, "TmNorm": "True" if tm else "False"},
    )
    return detection_limits(nrm, NIST613)


def test_line_windows_by_hand():
    cfg = config()
    w, used = line_windows(["Fe K", "Cu K"], cfg, 50, 900)
    energy = ZERO + GAIN * np.arange(50, 900)
    exc = ((20.0, 1.0),)
    for j, (z, line) in enumerate(((26, "Fe K"), (29, "Cu K"))):
        group = group_lines(z, "K", exc)
        total = sum(r for _, r in group)
        want = np.zeros_like(energy)
        for e, r in group:
            sigma = math.sqrt(NOISE**2 + 2.3548**2 * FANO * 0.00385 * e) / 2.3548
            want += r / total * (np.abs(energy - e) <= 3 * sigma)
        np.testing.assert_allclose(w[:, j], want, rtol=1e-12, err_msg=line)
        assert math.isclose(sum(r for _, r in used[j]), 1.0)
    # A flat background of 1 count per channel gives sum_p r_p n_p: about 6 sigma / gain.
    fe_sigma = math.sqrt(NOISE**2 + 2.3548**2 * FANO * 0.00385 * 6.4) / 2.3548
    assert abs(w[:, 0].sum() - 6 * fe_sigma / GAIN) < 2


@pytest.mark.parametrize("background", ["scaled", "pixel"])
def test_flat_background_every_pixel_by_hand(background):
    """Constant spectra: SNIP returns them unchanged, so B_i = c t_i sum_p r_p n_p x icr/ocr."""
    rng = np.random.default_rng(1)
    t = rng.uniform(0.5, 1.5, (3, 4))
    icr = rng.uniform(1.0e4, 2.0e4, t.shape)
    ocr = icr * rng.uniform(0.6, 0.95, t.shape)
    ds = raw_map(np.full(NCH, 7.0), t, icr=icr, ocr=ocr, i0_rate=3e4)
    p, b = [2e5, 4e4, 1e6], [3e3, 2e3, 1e5]
    dl = reference(p, b, i0_total=6e5, time_total=20.0)
    maps = detection_limit_maps(ds, None, dl, config=config(), background=background)
    assert isinstance(maps.detection_limit.data, da.Array)  # lazy
    assert list(maps.line.values) == ["Fe K", "Cu K"]
    w, _ = line_windows(["Fe K", "Cu K"], config(), 50, 900)
    got = maps.compute()
    for j, line in enumerate(("Fe K", "Cu K")):
        c = dl.reference_concentration.sel(line=line).item()
        k = p[j] / 6e5 / c  # P / sum(I0) / c: counts per I0 count per ppm
        bi = 7.0 * t * w[:, j].sum() * icr / ocr
        dl_own = 3 * np.sqrt(bi) / (k * 3e4 * t)
        one = got.sel(line=line, detector=0)
        np.testing.assert_allclose(one.background_counts, bi, rtol=1e-12)
        np.testing.assert_allclose(one.detection_limit, dl_own, rtol=1e-12)
        np.testing.assert_allclose(one.detection_limit_1s, dl_own * np.sqrt(t), rtol=1e-12)
    assert got.attrs["unit"] == "ppm" and got.detection_limit.attrs["units"] == "ppm"


def base_spectrum() -> np.ndarray:
    e = ZERO + GAIN * np.arange(NCH)
    return (
        50 * np.exp(-e / 5)
        + 5
        + 5000 * np.exp(-0.5 * ((e - 6.4) / 0.07) ** 2)
        + 800 * np.exp(-0.5 * ((e - 7.06) / 0.075) ** 2)
        + 3000 * np.exp(-0.5 * ((e - 8.05) / 0.075) ** 2)
    )


@pytest.mark.parametrize("background", ["scaled", "pixel"])
@pytest.mark.parametrize("tm", [False, True])
def test_homogeneous_reference_agrees_with_the_sum_formula(tm, background):
    """On a homogeneous map every pixel's 1 s limit is DL1 of the sum formula 3 sqrt(B T) / P c,
    B the map's total background under the windows. Homogeneous: counts proportional to the
    I0 counts (TmNorm: I0 a rate, counts proportional to I0 t); counting times differ."""
    rng = np.random.default_rng(2)
    t = rng.uniform(0.5, 1.5, (4, 5))
    i0 = np.full(t.shape, 1e4) if tm else 1e4 * t
    ds = raw_map(base_spectrum(), t, i0=i0)
    cfg = config()
    # The reference's background: the window sums of the maps themselves (any P will do).
    probe = detection_limit_maps(
        ds, None, reference([1, 1, 1], [1, 1, 1], 1.0, 1.0), config=cfg, background=background
    )
    b_total = probe.background_counts.sum(("y", "x")).values[0]
    i0_total = float((i0 * t).sum()) if tm else float(i0.sum())
    p = [2e5, 4e4, 1e6]
    dl = reference(p, [*b_total, 1.0], i0_total, float(t.sum()), tm=tm)
    maps = detection_limit_maps(ds, None, dl, config=cfg, background=background).compute()
    for line in ("Fe K", "Cu K"):
        want = dl.detection_limit_1s.sel(line=line).item()
        one = maps.detection_limit_1s.sel(line=line, detector=0)
        np.testing.assert_allclose(one, want, rtol=1e-9)
        own = maps.detection_limit.sel(line=line, detector=0)
        np.testing.assert_allclose(own, one / np.sqrt(t), rtol=1e-12)
    # The SNIP background follows the smooth continuum, not the peaks: B_Fe is a few hundred
    # counts per second (about 19 per channel under about 20 channels), not the peak's 5000.
    assert 250 < b_total[0] / t.sum() < 500


def test_sparse_spectra_pixel_snip_is_biased_low_scaled_is_not():
    """Poisson spectra of a homogeneous map at a few counts per channel: the pixels' own SNIP
    hugs the noise's lower envelope; the scaled background keeps the sum spectrum's total."""
    rng = np.random.default_rng(4)
    t = np.ones((6, 6))
    base = base_spectrum() / 20  # about 1 count per channel of background under Fe K
    ds = raw_map(base, t)
    ds["spectra"] = ds.spectra.copy(data=rng.poisson(ds.spectra.values).astype(np.float64))
    dl = reference([2e5, 4e4, 1e6], [3e3, 2e3, 1e5], 6e5, 36.0)
    cfg = config()
    scaled = detection_limit_maps(ds, None, dl, config=cfg).compute()
    pixel = detection_limit_maps(ds, None, dl, config=cfg, background="pixel").compute()
    # The sum spectrum's SNIP background under the windows, by hand.
    from xrfdask.fit.background import snip_background

    total = ds.spectra.values.sum(axis=(0, 1))[0, 50:900]
    w, _ = line_windows(["Fe K", "Cu K"], cfg, 50, 900)
    anchors = [0, 849]  # PyMca's default anchors of a trimmed spectrum (no configured ones)
    b_sum = snip_background(total[None], 30, filter_width=5, anchors=anchors)[0] @ w
    np.testing.assert_allclose(scaled.background_counts.sum(("y", "x"))[0], b_sum, rtol=1e-9)
    own = pixel.background_counts.sum(("y", "x"))[0].values
    assert (own < 0.2 * b_sum).all()  # SNIP of each sparse spectrum: 6 % and 1 % here
    assert (scaled.detection_limit > 0).all()


def test_chunk_invariant_and_masked(tmp_path):
    rng = np.random.default_rng(3)
    t = rng.uniform(0.5, 1.5, (7, 3))
    base = base_spectrum()
    dl = reference([2e5, 4e4, 1e6], [3e3, 2e3, 1e5], 6e5, 20.0)
    results = []
    for chunks in (1, 3, 7):
        ds = raw_map(base, t, chunks=chunks)
        results.append(detection_limit_maps(ds, None, dl, config=config()).compute())
    for other in results[1:]:
        xr.testing.assert_allclose(results[0], other, rtol=1e-12)
    valid = np.ones((7, 3, 1), bool)
    valid[2, 1] = False
    nrm = xr.Dataset(
        {"valid": (("y", "x", "detector"), valid)},
        coords={"detector": [0]},
    )
    nrm.attrs["config"] = config_to_text(config())  # as a fit result carries it
    masked = detection_limit_maps(raw_map(base, t), nrm, dl).compute()  # config from nrm
    assert np.isnan(masked.detection_limit[2, 1]).all()
    assert np.isfinite(masked.detection_limit.values[valid[..., 0]]).all()


def test_one_pass_over_the_spectra():
    t = np.ones((4, 2))
    ds = raw_map(base_spectrum(), t)
    dl = reference([2e5, 4e4, 1e6], [3e3, 2e3, 1e5], 6e5, 20.0)
    maps = detection_limit_maps(ds, None, dl, config=config())
    graph = dict(maps.detection_limit_1s.data.__dask_graph__())
    snips = [k for k in graph if isinstance(k, tuple) and k[0] == "detlim-map-background"]
    assert len(snips) == 4  # one task per band of rows
    reads = [k for k in graph if isinstance(k, tuple) and k[0] == ds.spectra.data.name]
    assert len(reads) == 4  # the spectra's blocks, each read once


def test_bad_input():
    t = np.ones((2, 2))
    ds = raw_map(base_spectrum(), t)
    dl = reference([2e5, 4e4, 1e6], [3e3, 2e3, 1e5], 6e5, 20.0)
    with pytest.raises(ConfigError, match="need the fit's PyMca configuration"):
        detection_limit_maps(ds, None, dl)
    no_snip = {**CONFIG, "fit": {**CONFIG["fit"], "stripflag": 0}}
    with pytest.raises(ConfigError, match="stripflag is 0"):
        detection_limit_maps(ds, None, dl, config=no_snip)
    with pytest.raises(ConfigError, match="lack 'reference_concentration'"):
        detection_limit_maps(ds, None, dl.drop_vars("reference_concentration"), config=CONFIG)
    with pytest.raises(ConfigError, match=r"detectors \[5\]"):
        detection_limit_maps(ds, None, dl.assign_coords(detector=[5]), config=CONFIG)
    with pytest.raises(ConfigError, match="background='snip'"):
        detection_limit_maps(ds, None, dl, config=CONFIG, background="snip")
    with pytest.raises(ConfigError, match="no 'I0'"):
        detection_limit_maps(ds.drop_vars("I0"), None, dl, config=CONFIG)


def test_geopixe_map_tube_charge_and_deadtime():
    """A .GeoPIXE-like map: I0 = tube current (uA) x dwell (s), time = dwell, B_i / (1 - dt)."""
    from xrfdask.datasets import example_dataset
    from xrfdask.fit import make_fit_config

    ds = example_dataset(shape=(3, 4), n_detectors=1)
    cfg = make_fit_config(ds, ["Fe", "Cu"])
    dims = ("detector", "line")
    nrm = xr.Dataset(
        {
            "sum_area": (dims, [[2e3, 5e2, 1e4]]),
            "sum_background": (dims, [[3e2, 2e2, 1e3]]),
            "sum_area_error": (dims, np.zeros((1, 3))),
            "sum_background_error": (dims, np.zeros((1, 3))),
            "I0_total": ("detector", [240.0]),
            "time_total": ("detector", [1.2]),
        },
        coords={"detector": [0], "line": ["Fe K", "Cu K", "Compt"]},
        attrs={"I0": 20.0, "TmNorm": "False"},
    )
    dl = detection_limits(nrm, NIST613)
    maps = detection_limit_maps(ds, None, dl, config=cfg, background="pixel").compute()
    plain = detection_limit_maps(
        ds.drop_vars("deadtime"), None, dl, config=cfg, background="pixel"
    ).compute()
    live = 1 - ds.deadtime.values.astype(float) / 100
    np.testing.assert_allclose(
        maps.background_counts.values, plain.background_counts.values / live[..., None], rtol=1e-6
    )
    k = dl.norm_sum_area.sel(norm_line=["Fe K", "Cu K"]).values / 20.0
    k = k / dl.reference_concentration.values
    flux = 200.0 * 0.1  # tube current (uA) x dwell (s)
    np.testing.assert_allclose(
        maps.detection_limit.values * k * flux, 3 * np.sqrt(maps.background_counts.values)
    )
    np.testing.assert_allclose(maps.detection_limit_1s, maps.detection_limit * np.sqrt(0.1))
