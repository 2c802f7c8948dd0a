import numpy as np
import pytest

from xrfdask import TruncatedMapWarning, index_geopixe, open_geopixe
from xrfdask.io.geopixe import build_index
from xrfdask.io.geopixe.readout import (
    PIXEL_STATS,
    readout_dir,
    readout_layout,
    write_pixel_stats,
    write_pixel_sums,
)


def test_readout_dir_rules(tmp_path):
    f = str(tmp_path / "map.GeoPIXE")
    assert readout_dir(f, None) == tmp_path / "out_map"
    assert readout_dir(f, "/x/out") == tmp_path.__class__("/x/out")
    assert readout_dir(f, "/x/out_map") == tmp_path.__class__("/x/out_map")
    assert readout_dir(f, "/x/results") == tmp_path.__class__("/x/results/out")


def test_layout_paths(tmp_path):
    layout = readout_layout(tmp_path / "map.GeoPIXE", tmp_path / "res")
    assert layout.folder == tmp_path / "res" / "out" and layout.stem == "map"
    assert layout.data == tmp_path / "res" / "out" / "data"
    assert layout.pixel_stats("dt") == layout.data / "pxstats_dt.npy"
    assert layout.cube_npy == layout.data / "dataset.npy"
    assert layout.cube_zarr == layout.data / "dataset.zarr"
    assert layout.modified == tmp_path / "res" / "out" / "map_mod.GeoPIXE"
    assert not (tmp_path / "res").exists()  # paths only


def test_pixel_stats_of_a_complete_map(tmp_path, sample_copy):
    layout = readout_layout(sample_copy)
    written = write_pixel_stats(build_index(sample_copy), layout)
    names = [*PIXEL_STATS, "present"]
    assert written == [layout.pixel_stats(n) for n in names]
    table = index_geopixe(sample_copy)
    for name, (var, dtype) in PIXEL_STATS.items():
        values = np.load(layout.pixel_stats(name))
        assert values.shape == (200, 2) and values.dtype == dtype
        np.testing.assert_array_equal(values.reshape(-1), table[var].values.astype(dtype))
    assert np.load(layout.pixel_stats("present")).all()


def test_pixel_stats_of_a_truncated_map_pad_with_zeros(tmp_path, sample_path):
    # Cut inside record 301: records 0..299 remain, row 15 (pixels 150..199) is incomplete.
    idx = index_geopixe(sample_path)
    cut = tmp_path / "cut.GeoPIXE"
    cut.write_bytes(sample_path.read_bytes()[: int(idx.offset[301]) + 20])
    with pytest.warns(TruncatedMapWarning):
        index = build_index(cut)
    layout = readout_layout(cut, tmp_path / "out")
    write_pixel_stats(index, layout)
    npx = index.nrows * index.xres
    dt = np.load(layout.pixel_stats("dt"))
    assert dt.shape == (npx, 2) and index.n_records == 301
    np.testing.assert_array_equal(dt.reshape(-1)[:301], idx.deadtime.values[:301])
    assert (dt.reshape(-1)[301:] == 0).all()
    np.testing.assert_array_equal(np.load(layout.pixel_stats("xidx")).reshape(-1)[301:], 0)
    present = np.load(layout.pixel_stats("present")).reshape(-1)
    assert present[:301].all() and not present[301:].any()


def test_pixel_sums(tmp_path, sample_copy, sample_dense):
    layout = readout_layout(sample_copy)
    layout.data.mkdir(parents=True)
    total = write_pixel_sums(open_geopixe(sample_copy, chunks={"y": 3}), layout)
    assert total == int(sample_dense.sum())
    sums = np.load(layout.pixel_stats("sum"))
    assert sums.dtype == np.uint32
    np.testing.assert_array_equal(sums, sample_dense.sum(-1).reshape(200, 2))
