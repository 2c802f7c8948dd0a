import os
import struct

import numpy as np
import pytest
import xarray as xr

from xrfdask import index_geopixe, open_geopixe


def test_readout_outputs_like_readoutxfm(run, sample_copy, sample_dense):
    code, out, err = run(
        "readout", "-f", str(sample_copy), "-w", "-x", "5", "15", "-y", "2", "8", "-e"
    )
    assert code == 0, err
    odir = sample_copy.parent / "out_ts2_01_sub_export"
    data = odir / "data"
    idx = index_geopixe(sample_copy)
    dt = np.load(data / "pxstats_dt.npy")
    assert dt.shape == (200, 2)
    np.testing.assert_array_equal(dt.reshape(-1), idx.deadtime.values)
    np.testing.assert_array_equal(
        np.load(data / "pxstats_pxlen.npy").reshape(-1), idx.length.values
    )
    np.testing.assert_array_equal(
        np.load(data / "pxstats_xidx.npy")[:, 0], np.tile(np.arange(20), 10)
    )
    np.testing.assert_array_equal(
        np.load(data / "pxstats_yidx.npy")[:, 1], np.repeat(np.arange(10), 20)
    )
    np.testing.assert_array_equal(
        np.load(data / "pxstats_sum.npy"), sample_dense.sum(-1).reshape(200, 2)
    )
    cube = np.load(data / "dataset.npy", mmap_mode="r")
    assert cube.shape == (10, 20, 2, 4096)
    np.testing.assert_array_equal(cube, sample_dense)
    np.testing.assert_array_equal(xr.open_zarr(data / "dataset.zarr").spectra.values, sample_dense)
    written = odir / "ts2_01_sub_export_mod.GeoPIXE"
    assert os.path.getsize(written) == 431_218
    np.testing.assert_array_equal(open_geopixe(written).spectra.values, sample_dense[2:8, 5:15])
    # What it reports, one line a step, on stdout.
    total = int(sample_dense.sum())
    assert "indexed 400 records in " in out and f"-> {data}\n" in out
    assert f"decoded spectra: {total:,} counts -> {data / 'pxstats_sum.npy'}" in out
    assert f"exported {data / 'dataset.npy'} and {data / 'dataset.zarr'}" in out
    assert f"wrote {written} (10 x 6 pixels)" in out


def test_readout_index_only_decodes_nothing(run, sample_copy):
    # Corrupt every channel field: -i must still succeed, a full readout must fail cleanly.
    idx = index_geopixe(sample_copy)
    data = bytearray(sample_copy.read_bytes())
    for off in idx.offset.values:
        struct.pack_into("<H", data, int(off) + 16, 5000)
    sample_copy.write_bytes(bytes(data))
    code, out, err = run(
        "readout", "-f", str(sample_copy), "-i", "-o", str(sample_copy.parent / "res")
    )
    assert code == 0, err
    stats = sample_copy.parent / "res" / "out" / "data"
    assert (stats / "pxstats_dt.npy").exists() and not (stats / "pxstats_sum.npy").exists()
    code, out, err = run("readout", "-f", str(sample_copy))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert f"stores channel 5000 at offset {int(idx.offset[0]) + 16}" in err


def test_readout_multiprocess_cluster(run, sample_copy, sample_dense):
    code, out, err = run(
        "readout", "-f", str(sample_copy), "-m", "--workers", "2", "--dashboard-address", ":0"
    )
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
def test_readout_rejects_bad_flag_combinations(run, sample_copy, argv, message):
    code, out, err = run("readout", "-f", str(sample_copy), *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_readout_rejects_flags_before_reading_anything(run, sample_copy):
    # Flag combinations are checked before the index pass: no output folder appears.
    code, out, err = run("readout", "-f", str(sample_copy), "-i", "-e")
    assert code == 2 and err.startswith("xrfdask readout: error: ")
    assert err.rstrip().endswith("(see xrfdask readout --help)")
    assert not (sample_copy.parent / "out_ts2_01_sub_export").exists()
