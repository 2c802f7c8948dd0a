import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from xrfdask import index_geopixe, open_geopixe
from xrfdask.cli import main, readout_dir


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_summarises_from_the_index(capsys, sample_path):
    code, out, err = run(capsys, "info", str(sample_path))
    assert code == 0, err
    assert "1,407,157 bytes" in out
    assert "20 x 10 pixels" in out
    assert "detectors       2" in out
    assert "400 of 400 (complete)" in out
    assert "missing pixels  0" in out
    assert "4096 x 10 eV" in out
    assert "deadtime det 0  7.17 - 84.25 % (mean 23.74 %)" in out
    assert "deadtime det 1  11.26 - 87.93 % (mean 26.85 %)" in out


def test_info_on_a_truncated_file(capsys, tmp_path, sample_path):
    cut = tmp_path / "cut.GeoPIXE"
    idx = index_geopixe(sample_path)
    cut.write_bytes(sample_path.read_bytes()[: int(idx.offset[300]) + 20])
    code, out, err = run(capsys, "info", str(cut))
    assert code == 0
    assert "300 of 400 (incomplete" in out and "missing pixels  50" in out
    assert f"offset {int(idx.offset[300]):,}" in out
    assert err.startswith("warning: ") and len(err.strip().splitlines()) == 1


def test_readout_outputs_like_readoutxfm(capsys, sample_copy, sample_dense):
    code, out, err = run(capsys, "readout", "-f", str(sample_copy), "-w", "-x", "5", "15", "-y", "2", "8", "-e")
    assert code == 0, err
    odir = sample_copy.parent / "out_ts2_01_sub_export"
    data = odir / "data"
    idx = index_geopixe(sample_copy)
    dt = np.load(data / "pxstats_dt.npy")
    assert dt.shape == (200, 2)
    np.testing.assert_array_equal(dt.reshape(-1), idx.deadtime.values)
    np.testing.assert_array_equal(np.load(data / "pxstats_pxlen.npy").reshape(-1), idx.length.values)
    np.testing.assert_array_equal(np.load(data / "pxstats_xidx.npy")[:, 0], np.tile(np.arange(20), 10))
    np.testing.assert_array_equal(np.load(data / "pxstats_yidx.npy")[:, 1], np.repeat(np.arange(10), 20))
    np.testing.assert_array_equal(np.load(data / "pxstats_sum.npy"), sample_dense.sum(-1).reshape(200, 2))
    cube = np.load(data / "dataset.npy", mmap_mode="r")
    assert cube.shape == (10, 20, 2, 4096)
    np.testing.assert_array_equal(cube, sample_dense)
    np.testing.assert_array_equal(xr.open_zarr(data / "dataset.zarr").spectra.values, sample_dense)
    written = odir / "ts2_01_sub_export_mod.GeoPIXE"
    assert os.path.getsize(written) == 431_218
    np.testing.assert_array_equal(open_geopixe(written).spectra.values, sample_dense[2:8, 5:15])


def test_readout_index_only_decodes_nothing(capsys, sample_copy):
    # Corrupt every channel field: -i must still succeed, a full readout must fail cleanly.
    idx = index_geopixe(sample_copy)
    data = bytearray(sample_copy.read_bytes())
    for off in idx.offset.values:
        struct.pack_into("<H", data, int(off) + 16, 5000)
    sample_copy.write_bytes(bytes(data))
    code, out, err = run(capsys, "readout", "-f", str(sample_copy), "-i", "-o", str(sample_copy.parent / "res"))
    assert code == 0, err
    stats = sample_copy.parent / "res" / "out" / "data"
    assert (stats / "pxstats_dt.npy").exists() and not (stats / "pxstats_sum.npy").exists()
    code, out, err = run(capsys, "readout", "-f", str(sample_copy))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert f"stores channel 5000 at offset {int(idx.offset[0]) + 16}" in err


def test_readout_multiprocess_cluster(capsys, sample_copy, sample_dense):
    code, out, err = run(capsys, "readout", "-f", str(sample_copy), "-m", "--workers", "2", "--dashboard-address", ":0")
    assert code == 0, err
    assert "dask dashboard: http://127.0.0.1:" in err
    total = np.load(sample_copy.parent / "out_ts2_01_sub_export" / "data" / "pxstats_sum.npy")
    np.testing.assert_array_equal(total, sample_dense.sum(-1).reshape(200, 2))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x", "5", "15"], "-x/-y crop the written file: add -w"),
        (["-i", "-e"], "-i reads the index only and cannot export spectra with -e"),
        (["-w", "-x", "15", "5"], "-x 15 5: expected 0 <= x0 < x1"),
        (["-w", "-y", "-1", "5"], "-y -1 5: expected 0 <= y0 < y1"),
        (["-s", "0"], "-s 0: chunk size must be positive"),
        (["-w", "-x", "25", "30"], "crop starts at x=25, y=0, outside the map's 20 x 10 pixels"),
        (["-m", "--scheduler", "tcp://127.0.0.1:1"], "-m starts a local cluster"),
    ],
)
def test_readout_rejects_bad_flag_combinations(capsys, sample_copy, argv, message):
    code, out, err = run(capsys, "readout", "-f", str(sample_copy), *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_file_is_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "info", str(tmp_path / "nope.GeoPIXE"))
    assert code == 1 and "nope.GeoPIXE: cannot open" in err and len(err.strip().splitlines()) == 1


def test_corrupt_header_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.GeoPIXE"
    bad.write_bytes(struct.pack("<H", 10) + b"{not json}DP")
    code, out, err = run(capsys, "info", str(bad))
    assert code == 1
    assert err.strip() == f"xrfdask info: error: {bad}: header JSON is broken at offset 3: Expecting property name enclosed in double quotes"


def test_readout_dir_rules(tmp_path):
    f = str(tmp_path / "map.GeoPIXE")
    assert readout_dir(f, None) == tmp_path / "out_map"
    assert readout_dir(f, "/x/out") == tmp_path.__class__("/x/out")
    assert readout_dir(f, "/x/out_map") == tmp_path.__class__("/x/out_map")
    assert readout_dir(f, "/x/results") == tmp_path.__class__("/x/results/out")


def test_console_script_and_module_entry_points(sample_path):
    exe = shutil.which("xrfdask", path=os.path.dirname(sys.executable)) or "xrfdask"
    for cmd in ([exe, "--version"], [sys.executable, "-m", "xrfdask", "--version"]):
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert result.returncode == 0 and result.stdout.startswith("xrfdask "), result.stderr
    result = subprocess.run([exe, "info", str(sample_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "400 of 400" in result.stdout


def test_demo_runs_the_main_job(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    assert (tmp_path / "demo" / "example.GeoPIXE").exists()
    assert "64 x 48 pixels" in out
    from xrfdask import open_zarr

    ds = open_zarr(tmp_path / "demo" / "example.zarr")
    ref = open_geopixe(tmp_path / "demo" / "example.GeoPIXE")
    np.testing.assert_array_equal(ds.spectra.values, ref.spectra.values)


def test_convert_between_formats(capsys, tmp_path, sample_path, sample_dense):
    h5, store, back = tmp_path / "m.h5", tmp_path / "m.zarr", tmp_path / "back.GeoPIXE"
    for src, dst in ((sample_path, h5), (h5, store), (store, back)):
        code, out, err = run(capsys, "convert", str(src), str(dst))
        assert code == 0, err
        assert f"wrote {dst}" in out
    assert back.read_bytes() == sample_path.read_bytes()  # .GeoPIXE -> h5 -> zarr -> .GeoPIXE
    code, out, err = run(capsys, "convert", str(sample_path), str(h5))
    assert code == 1 and "exists; use --overwrite" in err
    assert run(capsys, "convert", str(sample_path), str(h5), "--overwrite")[0] == 0


def test_convert_copies_a_result_group(capsys, tmp_path):
    import dask.array as da

    from xrfdask import open_h5, to_h5, to_zarr
    from xrfdask.datasets import example_dataset

    ds = example_dataset(shape=(6, 5))
    src = to_h5(ds, tmp_path / "a.h5")
    fit = xr.Dataset({"peak_area": (("y", "x", "detector", "line"), da.ones((6, 5, 2, 2)))}, coords={"detector": [0, 1], "line": ["Fe K", "Ca K"]})
    to_h5(fit, src)
    to_zarr(ds, tmp_path / "b.zarr")
    code, out, err = run(capsys, "convert", str(src), str(tmp_path / "b.zarr"), "--group", "fit")
    assert code == 0, err
    from xrfdask import open_zarr

    assert list(open_zarr(tmp_path / "b.zarr", group="fit").line.values) == ["Fe K", "Ca K"]
    code, out, err = run(capsys, "convert", str(src), str(tmp_path / "x.GeoPIXE"), "--group", "fit")
    assert code == 2 and "holds raw maps" in err
    assert open_h5(src, group="fit").peak_area.shape == (6, 5, 2, 2)


def test_convert_beamlines(capsys, tmp_path):
    import h5py

    from tests.io.beamlines.test_id15 import bliss_scan, grid

    path = tmp_path / "esrf" / "sample.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as f:
        truth = bliss_scan(f, "3.1")
    code, out, err = run(capsys, "convert", "--id15", str(path), "--scan", "3.1", "--dim", "5", "10", "--mot1", "hrz", "--mot2", "hry")
    assert code == 0, err
    out_path = tmp_path / "esrf" / "sample_scan3.h5"
    with h5py.File(out_path) as f:
        np.testing.assert_array_equal(f["raw/channel00/spectra"][...], grid(truth["falconx_det0"]))
    code, out, err = run(capsys, "convert", "--id15", str(path), "--scan", "3.1", str(tmp_path / "x.h5"))
    assert code == 2 and "--id15 needs --scan N.1 and --dim ROWS COLS" in err
    code, out, err = run(capsys, "convert", "--id15", str(path), "--scan", "9.1", "--dim", "5", "10", str(tmp_path / "x.zarr"))
    assert code == 1 and "scan entry '9.1' is missing" in err and len(err.strip().splitlines()) == 1


def test_convert_p06(capsys, tmp_path):
    from tests.io.beamlines.test_p06 import write_scan, synth

    rng = np.random.default_rng(0)
    scan = write_scan(tmp_path / "bt", 1, "cmesh scanx 0 0.9 10 scany 0 0.3 3 0.1", synth(40, rng), split=(20, 20))
    code, out, err = run(capsys, "convert", "--p06", str(scan), str(tmp_path / "p06.zarr"))
    assert code == 0, err
    from xrfdask import convert_p06, open_zarr

    np.testing.assert_array_equal(open_zarr(tmp_path / "p06.zarr").spectra.values, convert_p06(scan).spectra.values)
    code, out, err = run(capsys, "convert", "--p06", str(scan))
    assert code == 0, err
    assert (tmp_path / "bt" / "scan00001_merge.h5").exists()


def test_fit_command(capsys, tmp_path, example_path):
    import h5py

    from xrfdask import make_fit_config, open_geopixe
    from xrfdask.datasets import ELEMENTS
    from xrfdask.fit import config_to_text

    out, png = tmp_path / "fit.h5", tmp_path / "maps.png"
    code, stdout, err = run(capsys, "fit", str(example_path), "--elements", *ELEMENTS, "-o", str(out), "--png", str(png))
    assert code == 0, err
    assert "fitted 6,144 spectra" in stdout and png.stat().st_size > 10_000
    with h5py.File(out) as f:
        assert "Fe K" in [n.decode() for n in f["fit/channel00/names"][...]]
        assert f["fit/channel00/ims"].shape[1:] == (48, 64)
    # The same with a .cfg file, PyMca's fast fit, one detector, into a zarr store.
    cfg = tmp_path / "map.cfg"
    cfg.write_text(config_to_text(make_fit_config(open_geopixe(example_path), ["Ca", "Fe", "Zn"])))
    code, stdout, err = run(capsys, "fit", str(example_path), "--config", str(cfg), "--method", "pymca", "--detector", "1", "-o", str(tmp_path / "f.zarr"))
    assert code == 0, err
    from xrfdask import open_zarr

    fit = open_zarr(tmp_path / "f.zarr", group="fit")
    assert list(fit.detector.values) == [1] and "Zn K" in fit.line.values
    code, stdout, err = run(capsys, "fit", str(example_path), "-o", str(out))
    assert code == 2 and "give --config CFG or --elements" in err
    code, stdout, err = run(capsys, "fit", str(example_path), "--elements", "Fe", "Qq", "-o", str(tmp_path / "x.h5"))
    assert code == 1 and "Qq" in err and len(err.strip().splitlines()) == 1


def test_bad_group_is_one_line(capsys, tmp_path, sample_path):
    h5 = tmp_path / "m.h5"
    assert run(capsys, "convert", str(sample_path), str(h5))[0] == 0
    code, out, err = run(capsys, "convert", str(h5), str(tmp_path / "o.h5"), "--group", "foo")
    assert code == 1 and "unknown group 'foo'" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "convert", str(sample_path), str(tmp_path / "o2.h5"), "--group", "fit")
    assert code == 2 and "holds a raw map only, not a 'fit' group" in err and str(sample_path) in err
    assert not (tmp_path / "o2.h5").exists()
