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
        (["-dt", "150"], "-dt 150: a dead time is a percentage, 0 <= V <= 100"),
        (["-c", "pca"], "-c pca: expected one of kmeans, pca-kmeans, umap-kmeans, hdbscan"),
        (["--compat", "readoutxfm"], "--compat sets the colour numbers of -a: add -a"),
        (["-dt", "-x", "25", "30"], "crop starts at x=25"),  # -dt implies -w
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


def _records(path) -> list[bytes]:
    """Every record of a .GeoPIXE file, in file order (from its index)."""
    idx = index_geopixe(path)
    data = path.read_bytes()
    return [data[o : o + n] for o, n in zip(idx.offset.values, idx.length.values, strict=True)]


def _without_deadtime(record: bytes) -> bytes:
    return record[:12] + record[16:]


def test_readout_predicted_deadtimes_rewrite_only_the_deadtime_field(
    run, sample_copy, sample_dense
):
    # -dt alone: predict (ReadoutXFM HEAD's cubic in each spectrum's count rate), write (-w).
    code, out, err = run("readout", "-f", str(sample_copy), "-dt")
    assert code == 0, err
    odir = sample_copy.parent / "out_ts2_01_sub_export"
    written = odir / "ts2_01_sub_export_mod.GeoPIXE"
    original, rewritten = _records(sample_copy), _records(written)
    assert len(rewritten) == len(original) == 400
    assert [_without_deadtime(r) for r in rewritten] == [_without_deadtime(r) for r in original]
    # The cubic by hand (spec 4.3): u maps [4.08008563, 99.727441] kcps onto [-1, 1].
    dwell = open_geopixe(sample_copy).attrs["dwell_ms"]
    rate = sample_dense.sum(-1).reshape(-1).astype(np.float64) / dwell  # record order
    a, b = 4.08008563, 99.727441
    u = (2 * rate - (a + b)) / (b - a)
    expected = 100 * (0.23438781 + 0.21464015 * u + 0.05402071 * u**2 + 0.02689396 * u**3)
    got = np.array([struct.unpack_from("<f", r, 12)[0] for r in rewritten], dtype=np.float32)
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=2e-7)
    assert 0 < got.min() and round(float(got.max()), 1) == 60.4  # spec 4.3: no clipping here
    dtmod = np.load(odir / "data" / "pxstats_dtmod.npy")
    np.testing.assert_array_equal(dtmod.reshape(-1), got)
    np.testing.assert_array_equal(
        np.load(odir / "data" / "pxstats_dt.npy").reshape(-1),
        np.array([struct.unpack_from("<f", r, 12)[0] for r in original], dtype=np.float32),
    )
    assert f"dead times predicted (readoutxfm) -> {odir / 'data' / 'pxstats_dtmod.npy'}" in out
    assert f"wrote {written} (20 x 10 pixels)" in out


def test_readout_constant_deadtime_with_index_only(run, sample_copy):
    # -dt V works with -i (no sums, no analysis), cropped, records otherwise unchanged.
    code, out, err = run(
        "readout", "-f", str(sample_copy), "-i", "-dt", "15", "-x", "2", "12", "-y", "3", "9"
    )
    assert code == 0, err
    odir = sample_copy.parent / "out_ts2_01_sub_export"
    assert not (odir / "data" / "pxstats_sum.npy").exists()
    rewritten = _records(odir / "ts2_01_sub_export_mod.GeoPIXE")
    idx = index_geopixe(sample_copy)
    keep = (idx.x.values >= 2) & (idx.x.values < 12) & (idx.y.values >= 3) & (idx.y.values < 9)
    original = [r for r, k in zip(_records(sample_copy), keep, strict=True) if k]
    assert len(rewritten) == len(original) == 2 * 10 * 6
    for new, old in zip(rewritten, original, strict=True):
        x, y = struct.unpack_from("<2H", old, 6)
        assert struct.unpack_from("<2H", new, 6) == (x - 2, y - 3)  # re-based to the crop
        assert new[:6] == old[:6] and new[10:12] == old[10:12] and new[16:] == old[16:]
        assert struct.unpack_from("<f", new, 12)[0] == 15.0
    np.testing.assert_array_equal(np.load(odir / "data" / "pxstats_dtmod.npy"), 15.0)


def test_readout_index_only_is_switched_off_to_predict(run, sample_copy, sample_dense):
    code, out, err = run("readout", "-f", str(sample_copy), "-i", "-dt", "--dt-model", "linear")
    assert code == 0, err
    assert "-dt needs the spectra: -i switched off" in err
    data = sample_copy.parent / "out_ts2_01_sub_export" / "data"
    np.testing.assert_array_equal(
        np.load(data / "pxstats_sum.npy"), sample_dense.sum(-1).reshape(200, 2)
    )
    # The legacy model: min(0.8333 * (pixel total over detectors / dwell) / 2, 95), per pixel.
    dwell = open_geopixe(sample_copy).attrs["dwell_ms"]
    flat = sample_dense.sum((-1, -2)).reshape(-1) / dwell
    expected = np.minimum(0.8333 * flat / 2, 95).astype(np.float32)
    np.testing.assert_allclose(
        np.load(data / "pxstats_dtmod.npy"), np.stack([expected, expected], -1), rtol=1e-6
    )


def test_readout_analysis_prints_statistics_and_writes_colours_and_plots(
    run, sample_copy, sample_dense
):
    code, out, err = run("readout", "-f", str(sample_copy), "-a", "--compat", "readoutxfm")
    assert code == 0, err
    # ReadoutXFM's printed means on this sample (spec 4.1).
    assert "mean dead time: 23.74 % (detector 0), 26.85 % (detector 1), 25.30 % overall" in out
    odir = sample_copy.parent / "out_ts2_01_sub_export"
    for name in ("deadtime_histograms", "deadtime_maps", "difference_map",
                 "deadtime_vs_counts", "colours"):  # fmt: skip
        assert (odir / "plots" / f"{name}.png").stat().st_size > 1000
    # The colour files by hand (spec 5.1/5.2): hsv weights up to the channel nearest 20.44 keV,
    # sums / 4096 over the common maximum, stored as (r, b, g) by the original.
    from matplotlib import colormaps

    ds = open_geopixe(sample_copy)
    energy = ds.energy.values
    k = int(np.argmin(np.abs(energy - 20.44)))
    w = np.zeros((energy.size, 3))
    w[:k] = colormaps["hsv"].resampled(k)(np.arange(k))[:, :3]
    w[k:] = (1, 0, 0)
    sums = sample_dense.sum(2).reshape(200, -1).astype(np.float64) @ w / 4096
    sums /= sums.max()
    for band, column in (("red", 0), ("green", 2), ("blue", 1)):
        values = np.loadtxt(odir / "embeddings" / f"colourmap_{band}.txt")
        np.testing.assert_allclose(values, sums[:, column], rtol=1e-12, atol=1e-15)


def test_readout_index_only_analysis_draws_the_deadtime_plots(run, sample_copy):
    code, out, err = run("readout", "-f", str(sample_copy), "-i", "-a")
    assert code == 0, err
    assert "25.30 % overall" in out and "-i: no colour map" in out
    plots = sample_copy.parent / "out_ts2_01_sub_export" / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [
        "deadtime_histograms.png",
        "deadtime_maps.png",
    ]
    assert not (plots.parent / "embeddings").exists()


def test_readout_classify_writes_readoutxfm_files(run, sample_copy, sample_dense):
    code, out, err = run("readout", "-f", str(sample_copy), "-c", "pca-kmeans", "-n", "4")
    assert code == 0, err
    odir = sample_copy.parent / "out_ts2_01_sub_export"
    labels = np.load(odir / "embeddings" / "categories.npy")
    assert labels.shape == (200,) and set(np.unique(labels)) == {0, 1, 2, 3}
    assert np.load(odir / "embeddings" / "embedding_2d.npy").shape == (200, 2)
    # Class averages: the mean detector-summed spectrum of each class's pixels.
    summed = sample_dense.sum(2).reshape(200, -1)
    expected = np.stack([summed[labels == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(np.load(odir / "embeddings" / "classavg.npy"), expected)
    sizes = ", ".join(str(int((labels == c).sum())) for c in range(4))
    assert f"pca-kmeans: 4 classes of {sizes} pixels" in out
    assert (odir / "plots" / "vis_category_map.png").exists()
