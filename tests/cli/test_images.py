"""``xrfdask images``: xrf_proc's overview images (and the optional plots) as PNG files."""

from __future__ import annotations

import pytest
from matplotlib.image import imread

import xrfdask as xd


@pytest.fixture(scope="module")
def h5(example_path, tmp_path_factory):
    """raw/ and fit/ of the example map in one uniform-layout file."""
    path = tmp_path_factory.mktemp("images") / "sample.h5"
    ds = xd.open_geopixe(example_path)
    xd.to_h5(ds, path)
    xd.to_h5(xd.fit(ds, xd.make_fit_config(ds, ["Ca", "Fe", "Zn"])), path)
    return path


def test_images_command(run, tmp_path, h5):
    out = tmp_path / "png"
    code, stdout, err = run(
        "images", str(h5), "--log", "--clim", "0", "0.9", "--ncols", "2", "--dpi", "40",
        "--correlation", "--rgb", "Fe K", "Ca K", "Zn K", "--spectrum", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    names = [
        "sample_log_ch0_fit_overview.png", "sample_log_ch1_fit_overview.png",
        "sample_ch0_fit_correlation.png", "sample_ch0_fit_rgb_Fe-K_Ca-K_Zn-K.png",
        "sample_ch0_sumspectrum.png",
    ]  # fmt: skip
    assert stdout.split() == [str(out / n) for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    fig = xd.plot.overview(xd.open_h5(h5, group="fit"), log=True, clim=(0, 0.9), ncols=2)
    w, h = fig.get_size_inches()
    assert imread(out / names[0]).shape[:2] == (round(h * 40), round(w * 40))
    assert imread(out / names[2]).shape[:2] == (400, 400)
    assert imread(out / names[4]).shape[:2] == (200, 400)


def test_images_options_and_errors(run, tmp_path, h5, example_path):
    code, stdout, err = run(
        "images", str(h5), "--group", "fit", "--detector", "1", "--lines", "Fe K", "Zn K",
        "--sqrt", "--pixel-size", "10", "--scale-bar", "100", "--rotate", "90", "--flip",
        "--cmap", "magma", "--dpi", "30", "-o", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    assert stdout.split() == [str(tmp_path / "sample_sqrt_ch1_fit_overview.png")]
    code, stdout, err = run("images", str(h5), "--group", "norm", "-o", str(tmp_path))
    assert code == 1 and "norm" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        run("images", str(h5), "--log", "--sqrt")
    assert exit_.value.code == 2
    code, stdout, err = run("images", str(example_path), "-o", str(tmp_path))
    assert code == 2 and "--spectrum" in err
    code, stdout, err = run("images", str(example_path), "--spectrum", "--dpi", "20",
                            "-o", str(tmp_path))  # fmt: skip
    assert code == 0, err
    assert stdout.split() == [str(tmp_path / "example_ch0_sumspectrum.png")]
    code, stdout, err = run("images", str(h5), "--lines", "Qq K", "-o", str(tmp_path))
    assert code == 1 and "Qq K" in err
