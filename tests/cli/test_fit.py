import pytest

from xrfdask.cli.fit import detector_arg


def test_fit_command(run, tmp_path, example_path):
    import h5py

    from xrfdask import make_fit_config, open_geopixe
    from xrfdask.datasets import ELEMENTS
    from xrfdask.fit import config_to_text

    out, png = tmp_path / "fit.h5", tmp_path / "maps.png"
    code, stdout, err = run(
        "fit", str(example_path), "--elements", *ELEMENTS, "-o", str(out), "--png", str(png)
    )
    assert code == 0, err
    assert "fitted 6,144 spectra" in stdout and png.stat().st_size > 10_000
    with h5py.File(out) as f:
        assert "Fe K" in [n.decode() for n in f["fit/channel00/names"][...]]
        assert f["fit/channel00/ims"].shape[1:] == (48, 64)
    # The same with a .cfg file, PyMca's fast fit, one detector, into a zarr store.
    cfg = tmp_path / "map.cfg"
    cfg.write_text(config_to_text(make_fit_config(open_geopixe(example_path), ["Ca", "Fe", "Zn"])))
    code, stdout, err = run(
        "fit", str(example_path), "--config", str(cfg), "--method", "pymca", "--detector", "1",
        "-o", str(tmp_path / "f.zarr"),
    )  # fmt: skip
    assert code == 0, err
    from xrfdask import open_zarr

    fit = open_zarr(tmp_path / "f.zarr", group="fit")
    assert list(fit.detector.values) == [1] and "Zn K" in fit.line.values
    code, stdout, err = run("fit", str(example_path), "-o", str(out))
    assert code == 2 and "give --config CFG or --elements" in err
    code, stdout, err = run(
        "fit", str(example_path), "--elements", "Fe", "Qq", "-o", str(tmp_path / "x.h5")
    )
    assert code == 1 and "Qq" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("output", ["fit.GeoPIXE", "fit.tif"])
def test_fit_output_must_be_h5_or_zarr(run, tmp_path, example_path, output):
    code, stdout, err = run(
        "fit", str(example_path), "--elements", "Fe", "-o", str(tmp_path / output)
    )
    assert code == 2 and stdout == ""
    assert err.startswith(f"xrfdask fit: error: {tmp_path / output}: ")
    assert "fit results go to an .h5 or .zarr file" in err or "unknown format .tif" in err
    assert err.rstrip().endswith("(see xrfdask fit --help)") and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_detector_argument():
    assert detector_arg(None) is None
    assert detector_arg("sum") == "sum"
    assert detector_arg("1") == 1 and detector_arg("-1") == -1
    assert detector_arg("channel01") == "channel01"
