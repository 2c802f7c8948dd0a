"""xrfdask.plot.overview: xrf_proc's collated overview (spec 8.1, 8.5) from a real fit."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread

import xrfdask as xd
import xrfdask.plot
from xrfdask.plot.overview import nice_length

LINES = ["Ca K", "Fe K", "Zn K", "Sr K", "Compt"]


@pytest.fixture(scope="module")
def fit(example_path):
    ds = xd.open_geopixe(example_path)
    return xd.fit(ds, xd.make_fit_config(ds, ["Ca", "Fe", "Zn", "Sr"])).persist()


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_title()]


def png_shape(path):
    return imread(path).shape[:2]


def test_one_png_per_detector_with_xrf_procs_names(tmp_path, fit):
    written = xrfdask.plot.overview(fit, tmp_path / "sample", log=True, dpi=80)
    assert written == [str(tmp_path / f"sample_log_ch{d}_fit_overview.png") for d in (0, 1)]
    fig = xrfdask.plot.overview(fit, log=True)
    w, h = fig.get_size_inches()
    for path in written:
        assert png_shape(path) == (round(h * 80), round(w * 80))
    # a folder: the stem is "map" (a fit carries no source path); sqrt; the detector sum
    folder = tmp_path / "plots"
    folder.mkdir()
    (one,) = xrfdask.plot.overview(fit, folder, sqrt=True, detector="sum", lines=LINES[:2])
    assert one == str(folder / "map_sqrt_sum_fit_overview.png")
    assert png_shape(one)[0] > 100


def test_panels_titles_and_scale_bar(fit):
    fig = xrfdask.plot.overview(fit, detector=1, lines=LINES, ncols=2, scale_bar=300)
    axes = image_axes(fig)
    assert [ax.get_title() for ax in axes] == LINES
    # rows = ceil(5 / 2) = 3: three distinct panel heights, two columns
    assert len({round(ax.get_position().y0, 4) for ax in axes}) == 3
    assert len({round(ax.get_position().x0, 4) for ax in axes}) == 2
    # colour bars titled as xrf_proc's ('Int.;[cts]')
    bars = [ax for ax in fig.axes if ax not in axes]
    assert len(bars) == len(LINES) and all(b.get_title() == "Int.\n[cts]" for b in bars)
    # the scale bar: 300 µm at 25 µm pixels (coordinates in mm) = 12 image pixels
    for ax in axes:
        (bar,) = [ln for ln in ax.lines if ln.get_gid() == "scale_bar"]
        x = bar.get_xdata()
        assert x[1] - x[0] == pytest.approx(12.0)
        assert [t.get_text() for t in ax.texts if t.get_gid() == "scale_bar_label"] == ["300 µm"]
        # the image is 64 px wide, the bar starts at its left edge
        assert ax.images[0].get_array().shape == (48, 64)
        assert x[0] == pytest.approx(ax.get_xlim()[0])


def test_default_scale_bar_rotation_and_pixel_size(fit):
    fig = xrfdask.plot.overview(fit, detector=0, lines=["Fe K"])
    (ax,) = image_axes(fig)
    (bar,) = [ln for ln in ax.lines if ln.get_gid() == "scale_bar"]
    # 64 px x 25 µm = 1600 µm wide: a fifth is 320 µm -> 200 µm, 8 px
    assert np.ptp(bar.get_xdata()) == pytest.approx(8.0)
    fig = xrfdask.plot.overview(fit, detector=0, lines=["Fe K"], rotate=90, pixel_size=10)
    (ax,) = image_axes(fig)
    assert ax.images[0].get_array().shape == (64, 48)
    (bar,) = [ln for ln in ax.lines if ln.get_gid() == "scale_bar"]
    assert np.ptp(bar.get_xdata()) == pytest.approx(5.0)  # 48 px x 10 µm / 5 = 96 -> 50 µm
    image = fit.peak_area.sel(detector=0, line="Fe K").values
    np.testing.assert_allclose(
        ax.images[0].get_array(), np.rot90(np.where(image < 0, 0, image)), rtol=1e-6
    )
    flipped = xrfdask.plot.overview(fit, detector=0, lines=["Fe K"], flip=True)
    np.testing.assert_allclose(
        image_axes(flipped)[0].images[0].get_array(), np.where(image < 0, 0, image)[::-1]
    )
    assert nice_length(320) == 200 and nice_length(99) == 50 and nice_length(1000) == 1000


def test_clim_fractions_of_each_image(fit):
    maps = np.where(fit.peak_area.sel(detector=0).values < 0, 0, fit.peak_area.sel(detector=0))
    full = image_axes(xrfdask.plot.overview(fit, detector=0, lines=LINES))
    cut = image_axes(xrfdask.plot.overview(fit, detector=0, lines=LINES, clim=(0.1, 0.6)))
    for i, (a, b) in enumerate(zip(full, cut, strict=True)):
        k = list(fit.line.values).index(LINES[i])
        mn, mx = float(maps[..., k].min()), float(maps[..., k].max())
        assert a.images[0].get_clim() == pytest.approx((mn, mx), rel=1e-6)
        lo, hi = mn + 0.1 * (mx - mn), mn + 0.6 * (mx - mn)
        assert b.images[0].get_clim() == pytest.approx((lo, hi), rel=1e-6)


def test_log_has_no_minus_infinity(fit):
    fig = xrfdask.plot.overview(fit, detector=0, lines=LINES, log=True)
    for ax in image_axes(fig):
        shown = np.asarray(ax.images[0].get_array())
        assert np.isfinite(shown).all()
        k = list(fit.line.values).index(ax.get_title())
        raw = fit.peak_area.sel(detector=0).values[..., k].astype(float)
        assert shown.min() == pytest.approx(np.log10(raw[raw > 0].min()), rel=1e-6)
        assert np.isfinite(ax.images[0].get_clim()).all()
    bars = [ax for ax in fig.axes if ax not in image_axes(fig)]
    assert bars[0].get_title() == "log. Int.\n[cts]"


def test_main_variable_of_normalised_and_detector_labels(tmp_path, example_path, fit):
    nrm = xd.normalise(xd.open_geopixe(example_path), fit)
    (path,) = xrfdask.plot.overview(nrm, tmp_path / "n", detector=1, lines=["Fe K"])
    assert path.endswith("n_ch1_norm_overview.png")
    with pytest.raises(ValueError, match="detectors"):
        xrfdask.plot.overview(fit, detector=7)
    with pytest.raises(ValueError, match="not in the result"):
        xrfdask.plot.overview(fit, lines=["Qq K"])
    with pytest.raises(ValueError, match="choose one"):
        xrfdask.plot.overview(fit, log=True, sqrt=True)
    pixels = fit.assign_coords(x=("x", np.arange(64.0), {"units": "pixel"}))
    with pytest.raises(ValueError, match="pixel_size"):
        xrfdask.plot.overview(pixels, lines=["Fe K"], scale_bar=100)
    fig = xrfdask.plot.overview(pixels, lines=["Fe K"])  # no length: no scale bar
    assert not [ln for ln in image_axes(fig)[0].lines if ln.get_gid() == "scale_bar"]


def _raises():
    raise AssertionError("computed a variable that is not drawn")


def test_computes_only_the_maps_drawn():
    """Other variables of the result are never computed; one pass over the maps."""
    ny, nx = 30, 40
    maps = da.random.RandomState(0).random((ny, nx, 2, 3), chunks=(10, nx, 2, 3))
    poison = da.from_delayed(dask.delayed(_raises)(), shape=(ny, nx, 2, 3), dtype=float)
    res = xr.Dataset(
        {"normalised": (("y", "x", "detector", "line"), maps),
         "normalised_error": (("y", "x", "detector", "line"), poison)},
        coords={"line": ["A K", "B K", "C K"], "detector": [0, 1],
                "y": ("y", np.arange(ny) * 1e-3, {"units": "mm"}),
                "x": ("x", np.arange(nx) * 1e-3, {"units": "mm"})},
    )  # fmt: skip
    fig = xrfdask.plot.overview(res, detector=1)
    assert [ax.get_title() for ax in image_axes(fig)] == ["A K", "B K", "C K"]
    np.testing.assert_allclose(image_axes(fig)[2].images[0].get_array(), maps[:, :, 1, 2])


def test_concentrations_carry_their_unit_on_the_colour_bar():
    maps = xr.DataArray(np.random.default_rng(0).random((6, 8, 1, 2)),
                        dims=("y", "x", "detector", "line"),
                        coords={"line": ["Fe K", "Zn K"], "detector": [0]})  # fmt: skip
    q = xr.Dataset({"concentration": maps}, attrs={"unit": "ug/g"})
    fig = xd.plot.overview(q, pixel_size=10.0)
    titles = [a.get_title() for a in fig.axes if a.get_title().startswith("Int.")]
    assert titles == ["Int.\n[ug/g]"] * 2
