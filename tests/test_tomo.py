"""xd.tomo: reconstruction of element maps from an XRF tomography scan (xrf_proc's tomo_proc)."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

pytest.importorskip("skimage")

from scipy import ndimage  # noqa: E402
from skimage.transform import iradon, radon  # noqa: E402

from xrfdask import tomo  # noqa: E402
from xrfdask.errors import ConfigError  # noqa: E402
from xrfdask.io.h5layout import open_h5, to_h5  # noqa: E402

N = 64  # translation positions (slices N x N)
LINES = ["Fe K", "Zn K", "Sr K"]


def ellipse(n, cy, cx, ry, rx, value=1.0):
    yy, xx = np.mgrid[:n, :n] - n / 2
    return value * (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)


def phantoms(n=N) -> np.ndarray:
    """Three elements' distributions (line, ty, tx) inside the reconstruction circle."""
    fe = ellipse(n, 0, 0, 0.38 * n, 0.3 * n, 1.0) - ellipse(n, 4, -3, 0.15 * n, 0.1 * n, 0.6)
    zn = ellipse(n, -0.15 * n, 0.12 * n, 0.1 * n, 0.14 * n) + ellipse(n, 0.2 * n, -0.1 * n, 4, 4)
    sr = ellipse(n, 0.1 * n, 0.1 * n, 0.12 * n, 0.06 * n, 2.0) + 0.3 * ellipse(
        n, 0, 0, 0.3 * n, 0.2 * n
    )
    return np.stack([fe, zn, sr])


def scan(
    n=N,
    n_angles=90,
    centre=None,
    drift=0.0,
    counts=400.0,
    seed=0,
    detectors=("channel00",),
    span=180.0,
):
    """The phantoms forward-projected (scikit-image's radon) into a normalised result with
    Poisson noise: rows = angles (mot1, degrees), columns = translation (mot2, mm)."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, span, n_angles, endpoint=False)
    truth = phantoms(n)
    sinos = np.stack([radon(p, angles, circle=True).T for p in truth])  # (line, angle, pos)
    shift = (centre - n // 2) if centre is not None else 0.0
    k = np.arange(n_angles)[:, None]
    if shift or drift:  # axis off centre and a drift: the feature at u is recorded at u + s
        pos = np.arange(n)[None, :]
        src = pos - shift + k / (n_angles - 1) * drift
        sinos = np.stack(
            [
                np.stack(
                    [
                        ndimage.map_coordinates(s[a], [src[a]], order=3, mode="constant")
                        for a in range(n_angles)
                    ]
                )
                for s in sinos
            ]
        )
    sinos = np.clip(sinos, 0, None)
    per_det = []
    err = []
    for _ in detectors:
        noisy = rng.poisson(sinos * counts) / counts
        per_det.append(noisy)
        err.append(np.sqrt(np.maximum(noisy * counts, 1)) / counts)
    values = np.stack(per_det).transpose(2, 3, 0, 1)  # (y, x, detector, line)
    errors = np.stack(err).transpose(2, 3, 0, 1)
    mot1 = np.repeat(angles[:, None], n, axis=1)
    mot2 = np.repeat((np.arange(n) * 0.01)[None, :], n_angles, axis=0)
    ds = xr.Dataset(
        {
            "normalised": (("y", "x", "detector", "line"), values),
            "normalised_error": (("y", "x", "detector", "line"), errors),
            "mot1": (("y", "x"), mot1),
            "mot2": (("y", "x"), mot2),
        },
        coords={"detector": list(detectors), "line": LINES},
    )
    return ds.chunk({"y": 16}), truth


def inside(n=N, margin=0.45):
    yy, xx = np.mgrid[:n, :n] - n // 2
    return yy**2 + xx**2 < (margin * n) ** 2


def correlation(a, b, mask):
    return float(np.corrcoef(a[mask], b[mask])[0, 1])


# -- the kernel -------------------------------------------------------------------------------


@pytest.mark.parametrize("filt", ["shepp-logan", "ramp", "hann", None])
def test_fbp_is_scikit_image_iradon(filt):
    sino, _ = scan(n_angles=60)
    s = sino["normalised"].isel(detector=0, line=0).values
    angles = sino["mot1"].values[:, 0]
    ref = iradon(s.T, angles, filter_name=filt, circle=False, output_size=N)
    mine = tomo.fbp(s, angles, N // 2, filt)
    # identical but for samples exactly at the sinogram's edge (rounding of t)
    assert np.median(np.abs(mine - ref)) < 1e-12
    np.testing.assert_allclose(mine, ref, atol=2e-2 * np.abs(ref).max())


# -- reconstruction ---------------------------------------------------------------------------


def test_each_line_correlates_with_its_phantom_and_the_centre_is_found():
    ds, truth = scan(n_angles=120)
    rec = tomo.reconstruct(ds)
    assert isinstance(rec["tomogram"].data, dask.array.Array)  # lazy
    assert rec["tomogram"].dims == ("detector", "line", "ty", "tx")
    assert rec["tomogram"].data.numblocks == (1, 3, 1, 1)  # one task per line
    assert abs(float(rec["rotation_center"][0]) - N // 2) <= 0.5
    assert rec.attrs["centre_signal"] == "Fe K"  # the line with the most counts
    out = rec.compute()
    for i, line in enumerate(LINES):
        r = correlation(out["tomogram"].sel(line=line)[0].values, truth[i], inside())
        assert r >= 0.95, (line, r)
    err = out["tomogram_error"].values
    assert np.all(err >= 0) and np.isfinite(err).all() and err.max() > 0


@pytest.mark.parametrize("true_centre", [N // 2 + 3.4, N // 2 - 5.7])
def test_an_off_centre_axis_is_found_within_half_a_pixel(true_centre):
    ds, truth = scan(centre=true_centre, n_angles=120, seed=2)
    found = tomo.find_centre(ds, signal="Sr-K")  # xrf_proc's spelling
    assert found.signal == "Sr K"
    assert abs(found.centre - true_centre) <= 0.5
    assert found.figure_of_merit > 0.2
    rec = tomo.reconstruct(ds, centre=found.centre, lines="Fe K", errors=False).compute()
    assert correlation(rec["tomogram"][0, 0].values, truth[0], inside(margin=0.4)) >= 0.95


def test_translation_shift_corrects_a_drift():
    drift = 6.0
    ds, truth = scan(drift=drift, n_angles=120, seed=3)
    plain = tomo.reconstruct(ds, centre=N // 2, lines="Fe K", errors=False).compute()
    fixed = tomo.reconstruct(
        ds, centre=N // 2, lines="Fe K", errors=False, translation_shift=drift
    ).compute()
    r_plain = correlation(plain["tomogram"][0, 0].values, truth[0], inside())
    r_fixed = correlation(fixed["tomogram"][0, 0].values, truth[0], inside())
    assert r_fixed >= 0.95 > r_plain + 0.02
    assert fixed.attrs["translation_shift"] == drift


def test_options_limit_range_background_sart_and_a_360_degree_scan():
    ds, truth = scan(n_angles=120, span=360.0, seed=4)
    assert abs(tomo.find_centre(ds).centre - N // 2) <= 0.5
    half = tomo.reconstruct(ds, centre=N // 2, limit_rotation_range=(0, 60), errors=False)
    assert half.attrs["angles"].count(",") == 59
    bg = tomo.reconstruct(ds, centre=N // 2, lines="Zn K", background=((0, 120), (0, 3)))
    sart = tomo.reconstruct(ds, centre=N // 2, lines="Zn K", algorithm="sart", iterations=3)
    for rec in (half, bg, sart):
        out = rec.compute()
        line = list(out["line"].values).index("Zn K")
        r = correlation(out["tomogram"][0, line].values, truth[1], inside())
        assert r >= 0.9, r
    uniform = tomo.reconstruct(ds, centre=N // 2, interp_tr=True, lines="Fe K", errors=False)
    assert uniform.sizes["tx"] == N


def test_transmission_and_the_tomo_group_round_trip(tmp_path):
    ds, truth = scan(n_angles=90, detectors=("channel00", "channel01"))
    mu = 0.05 * truth[0]
    absorb = np.stack([radon(mu, ds["mot1"].values[:, 0], circle=True).T])[0]
    i0 = np.full(absorb.shape, 1e5)
    ds["I0"] = (("y", "x"), i0)
    ds["I1"] = (("y", "x"), 0.8 * i0 * np.exp(-absorb))
    rec = tomo.reconstruct(ds, centre=N // 2, lines=["Fe K", "Sr K"])
    assert "transmission" in rec and float(rec["transmission_rotation_center"]) == N // 2
    path = to_h5(rec, tmp_path / "tomo.h5")
    import h5py

    with h5py.File(path) as f:
        assert f["tomo/channel01/ims"].shape == (2, N, N)
        assert float(f["tomo/channel00/rotation_center"][()]) == N // 2
        assert [n.decode() for n in f["tomo/I1/names"][()]] == ["transmission"]
        assert f["tomo/I1/ims"].shape == (1, N, N)
    back = open_h5(path, group="tomo")
    np.testing.assert_allclose(back["tomogram"].values, rec["tomogram"].values)
    np.testing.assert_allclose(back["transmission"].values, rec["transmission"].values)
    assert correlation(back["transmission"].values, mu, inside()) >= 0.95
    alone = tomo.transmission(ds)  # its own centre, found on -log(I1/I0)
    assert abs(float(alone["transmission_rotation_center"]) - N // 2) <= 0.5
    np.testing.assert_allclose(alone["transmission"].values, rec["transmission"].values, atol=0.05)


def test_chunking_does_not_change_a_line():
    ds, _ = scan(n_angles=60, detectors=("channel00", "channel01"))
    one = tomo.reconstruct(ds, centre=31.5).compute()
    other = tomo.reconstruct(ds.chunk({"y": 7, "x": 20, "line": 2}), centre=31.5)
    two = other.compute(scheduler="sync")
    xr.testing.assert_equal(one, two)


def test_on_a_real_cluster_the_lines_equal_the_threaded_ones(dask_cluster):
    from distributed import Client

    ds, _ = scan(n_angles=60)
    local = tomo.reconstruct(ds, centre=32.25).compute()
    with Client(scheduler_file=str(dask_cluster)):
        remote = tomo.reconstruct(ds.chunk({"y": 5}), centre=32.25).compute()
    xr.testing.assert_equal(local, remote)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ("swap", {}, "rotation motor 'mot1' does not vary along rows"),
        ("rows", {}, "needs 2 angles or more"),
        (None, {"limit_rotation_range": (50, 70)}, "limit_rotation_range=(50, 70) is outside"),
        (None, {"limit_rotation_range": (3, 4)}, "1 angle(s) kept"),
        (None, {"centre": 80}, "centre=80 is outside the sinogram's columns 0..63"),
        (None, {"background": ((0, 5), (60, 70))}, "background rows 0..5, columns 60..70"),
        (None, {"lines": "Pb L"}, "line(s) ['Pb L'] not in the data"),
        (None, {"rotation": "mot3"}, "rotation='mot3'"),
        (None, {"algorithm": "art"}, "algorithm='art'"),
        (None, {"filter": "wavelet"}, "filter='wavelet'"),
        ("nomotor", {}, "no rotation motor 'mot1'"),
    ],
)
def test_bad_input_is_one_line_naming_it(change, kwargs, message):
    ds, _ = scan(n_angles=40)
    if change == "swap":
        ds = ds.assign(mot1=ds["mot2"], mot2=ds["mot1"])
    elif change == "rows":
        ds = ds.isel(y=slice(0, 1))
    elif change == "nomotor":
        ds = ds.drop_vars(["mot1"])
    with pytest.raises(ConfigError) as info:
        tomo.reconstruct(ds, **{"centre": 32, **kwargs})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_find_centre_needs_half_a_turn():
    ds, _ = scan(n_angles=40, span=90.0)
    with pytest.raises(ConfigError, match="needs 180 degrees of rotation"):
        tomo.find_centre(ds)


def test_trial_centres_are_written(tmp_path):
    ds, _ = scan(n_angles=60)
    found = tomo.find_centre(ds, centre_range=(30, 34, 1), output=tmp_path / "cor")
    assert 30 <= found.centre <= 34
    assert sorted(p.name for p in (tmp_path / "cor").iterdir()) == [
        "0030.000.tiff",
        "0031.000.tiff",
        "0032.000.tiff",
        "0033.000.tiff",
        "0034.000.tiff",
    ]


def test_a_stack_of_scans_reconstructs_slice_by_slice():
    ds, truth = scan(n_angles=60)
    stack = xr.concat([ds, ds * 2], dim="slice").assign(mot1=ds["mot1"], mot2=ds["mot2"])
    rec = tomo.reconstruct(stack, centre=N // 2, lines=["Fe K", "Zn K"])
    assert rec["tomogram"].dims == ("slice", "detector", "line", "ty", "tx")
    assert rec["tomogram"].data.numblocks == (2, 1, 2, 1, 1)  # a task per slice and line
    out = rec["tomogram"].values
    np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-9, atol=1e-9)
    sino = tomo.sinograms(stack, lines="Fe K", limit_rotation_range=(0, 30))
    assert sino.dims == ("slice", "detector", "line", "angle", "position")
    assert sino.shape == (2, 1, 1, 30, N) and sino["angle"].values[-1] == 87.0


def test_a_centred_axis_is_at_half_the_columns_as_tomopy_counts_it():
    # tomopy's default centre for a centred axis is dx / 2 (its detector runs over
    # linspace(-1, 1, dx, endpoint=False): 128 for 256 columns), and xrf_proc's files hold
    # tomopy's numbers; a centred scan of 128 columns must give 64, not 63.5.
    from skimage.data import shepp_logan_phantom
    from skimage.transform import radon, resize

    from xrfdask.tomo import centre_of

    theta = np.arange(0.0, 180.0, 1.0)
    sino = radon(resize(shepp_logan_phantom(), (128, 128)), theta).T
    assert centre_of(sino, theta)[0] == pytest.approx(64.0, abs=0.05)
    assert centre_of(np.roll(sino, 3, axis=1), theta)[0] == pytest.approx(67.0, abs=0.05)


def test_sirt_recovers_every_line_and_only_improves_with_iterations():
    ds, truth = scan(n_angles=90, seed=5)
    rs = []
    for passes in (5, 100):
        out = tomo.reconstruct(ds, centre=N // 2, algorithm="sirt", iterations=passes,
                               errors=False).compute()  # fmt: skip
        lines = list(out["line"].values)
        rs.append([correlation(out["tomogram"][0, i].values, truth[i], inside())
                   for i in range(len(lines))])  # fmt: skip
        assert float(out["tomogram"].min()) >= 0.0  # non-negative
    assert min(rs[1]) >= 0.95, rs[1]
    assert all(b >= a for a, b in zip(rs[0], rs[1], strict=True)), rs


def test_the_sirt_projector_is_the_exact_adjoint_of_the_back_projection():
    from xrfdask.tomo import _backproject, _forwardproject

    rng = np.random.default_rng(0)
    x, b = rng.random((24, 24)), rng.random((30, 24))
    theta = np.deg2rad(np.linspace(0, 180, 30, endpoint=False))
    cos, sin = np.cos(theta), np.sin(theta)
    ax = _forwardproject(x, cos, sin, 12.3, 24)
    atb = _backproject(b, cos, sin, 12.3, 24, False)
    assert float((ax * b).sum()) == pytest.approx(float((x * atb).sum()), rel=1e-12)


def test_a_snake_scan_is_regridded_first():
    # Rows recorded in both directions (odd rows backward, each position taken half a step
    # before the pixel's centre in the direction of travel): regrid="snake" puts them back.
    ds, truth = scan(n_angles=90, seed=6)
    ds = ds.compute()
    step = float(ds["mot2"][0, 1] - ds["mot2"][0, 0])
    backward = (np.arange(ds.sizes["y"]) % 2 == 1)[:, None]

    def snake(a):
        out = np.array(a, copy=True)
        out[1::2] = out[1::2, ::-1]
        return out

    recorded = ds["mot2"].values + np.where(backward, step / 2, -step / 2)
    snaked = ds.copy(
        data={
            "normalised": snake(ds["normalised"].values),
            "normalised_error": snake(ds["normalised_error"].values),
            "mot1": snake(ds["mot1"].values),
            "mot2": snake(recorded),
        }
    )
    rec = tomo.reconstruct(snaked, centre=N // 2, regrid="snake", errors=False).compute()
    for i in range(len(LINES)):
        assert correlation(rec["tomogram"][0, i].values, truth[i], inside()) >= 0.95
    plain = tomo.reconstruct(snaked, centre=N // 2, errors=False).compute()  # not regridded
    r = [correlation(plain["tomogram"][0, i].values, truth[i], inside()) for i in range(len(LINES))]
    assert min(r) < 0.9, r
