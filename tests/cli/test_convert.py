import numpy as np
import pytest
import xarray as xr


def test_convert_between_formats(run, tmp_path, sample_path, sample_dense):
    h5, store, back = tmp_path / "m.h5", tmp_path / "m.zarr", tmp_path / "back.GeoPIXE"
    for src, dst in ((sample_path, h5), (h5, store), (store, back)):
        code, out, err = run("convert", str(src), str(dst))
        assert code == 0, err
        assert f"wrote {dst}" in out
    assert back.read_bytes() == sample_path.read_bytes()  # .GeoPIXE -> h5 -> zarr -> .GeoPIXE
    code, out, err = run("convert", str(sample_path), str(h5))
    assert code == 1 and "exists; use --overwrite" in err
    assert run("convert", str(sample_path), str(h5), "--overwrite")[0] == 0


def test_convert_copies_a_result_group(run, tmp_path):
    import dask.array as da

    from xrfdask import open_h5, to_h5, to_zarr
    from xrfdask.datasets import example_dataset

    ds = example_dataset(shape=(6, 5))
    src = to_h5(ds, tmp_path / "a.h5")
    fit = xr.Dataset(
        {"peak_area": (("y", "x", "detector", "line"), da.ones((6, 5, 2, 2)))},
        coords={"detector": [0, 1], "line": ["Fe K", "Ca K"]},
    )
    to_h5(fit, src)
    to_zarr(ds, tmp_path / "b.zarr")
    code, out, err = run("convert", str(src), str(tmp_path / "b.zarr"), "--group", "fit")
    assert code == 0, err
    from xrfdask import open_zarr

    assert list(open_zarr(tmp_path / "b.zarr", group="fit").line.values) == ["Fe K", "Ca K"]
    code, out, err = run("convert", str(src), str(tmp_path / "x.GeoPIXE"), "--group", "fit")
    assert code == 2 and "holds raw maps" in err
    assert open_h5(src, group="fit").peak_area.shape == (6, 5, 2, 2)


def test_convert_beamlines(run, tmp_path):
    import h5py

    from tests.io.beamlines.test_id15 import bliss_scan, grid

    path = tmp_path / "esrf" / "sample.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as f:
        truth = bliss_scan(f, "3.1")
    code, out, err = run(
        "convert", "--id15", str(path), "--scan", "3.1", "--dim", "5", "10",
        "--mot1", "hrz", "--mot2", "hry",
    )  # fmt: skip
    assert code == 0, err
    out_path = tmp_path / "esrf" / "sample_scan3.h5"
    with h5py.File(out_path) as f:
        np.testing.assert_array_equal(f["raw/channel00/spectra"][...], grid(truth["falconx_det0"]))
    code, out, err = run("convert", "--id15", str(path), "--scan", "3.1", str(tmp_path / "x.h5"))
    assert code == 2 and "--id15 needs --scan N.1 and --dim ROWS COLS" in err
    code, out, err = run(
        "convert", "--id15", str(path), "--scan", "9.1", "--dim", "5", "10",
        str(tmp_path / "x.zarr"),
    )  # fmt: skip
    assert code == 1 and "scan entry '9.1' is missing" in err and len(err.strip().splitlines()) == 1


def test_convert_p06(run, tmp_path):
    from tests.io.beamlines.test_p06 import synth, write_scan

    rng = np.random.default_rng(0)
    scan = write_scan(
        tmp_path / "bt", 1, "cmesh scanx 0 0.9 10 scany 0 0.3 3 0.1", synth(40, rng), split=(20, 20)
    )
    code, out, err = run("convert", "--p06", str(scan), str(tmp_path / "p06.zarr"))
    assert code == 0, err
    from xrfdask import convert_p06, open_zarr

    np.testing.assert_array_equal(
        open_zarr(tmp_path / "p06.zarr").spectra.values, convert_p06(scan).spectra.values
    )
    code, out, err = run("convert", "--p06", str(scan))
    assert code == 0, err
    assert (tmp_path / "bt" / "scan00001_merge.h5").exists()


def test_bad_group_is_one_line(run, tmp_path, sample_path):
    h5 = tmp_path / "m.h5"
    assert run("convert", str(sample_path), str(h5))[0] == 0
    code, out, err = run("convert", str(h5), str(tmp_path / "o.h5"), "--group", "foo")
    assert code == 1 and "unknown group 'foo'" in err and len(err.strip().splitlines()) == 1
    code, out, err = run("convert", str(sample_path), str(tmp_path / "o2.h5"), "--group", "fit")
    assert (
        code == 2 and "holds a raw map only, not a 'fit' group" in err and str(sample_path) in err
    )
    assert not (tmp_path / "o2.h5").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--id15", "a.h5", "--p06", "b"], "--id15 and --p06 are different beamlines: give one"),
        (["--p06", "b", "x.h5", "y.h5"], "with --id15/--p06 give only OUT, not 2 paths"),
        (["--p06", "b", "--group", "fit"], "beamline files convert to the raw group: drop --group"),
        (["only.h5"], "give IN and OUT (or --id15/--p06 with OUT)"),
        ([], "give IN and OUT (or --id15/--p06 with OUT)"),
    ],
)
def test_convert_rejects_bad_path_combinations(run, argv, message):
    code, out, err = run("convert", *argv)
    assert code == 2
    assert err == f"xrfdask convert: error: {message} (see xrfdask convert --help)\n"


def test_convert_unknown_format_is_a_usage_error(run, tmp_path, sample_path):
    code, out, err = run("convert", str(sample_path), str(tmp_path / "m.tiff"))
    assert code == 2
    assert f"{tmp_path / 'm.tiff'}: unknown format .tiff; use .GeoPIXE, .h5 or .zarr" in err
    assert err.rstrip().endswith("(see xrfdask convert --help)") and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    code, out, err = run("convert", str(tmp_path / "m"), str(tmp_path / "m.h5"))
    assert code == 2 and "unknown format (no extension)" in err
