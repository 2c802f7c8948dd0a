import pickle
import struct
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from dask.utils import key_split

from tests import geopixe_files as gf
from xrfdask import FormatError, TruncatedMapWarning, index_geopixe, open_geopixe
from xrfdask.io.geopixe.index import build_index
from xrfdask.io.geopixe.reader import BlockSpec, plan_chunks


class ComputeForbidden:
    """A dask scheduler that fails the test if anything is computed."""

    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("something was computed")


def test_sample_matches_dense_reference(sample_path, sample_dense):
    ds = open_geopixe(sample_path)
    assert ds.spectra.dims == ("y", "x", "detector", "channel")
    assert ds.spectra.dtype == np.uint16 and ds.deadtime.dtype == np.float32
    np.testing.assert_array_equal(ds.spectra.values, sample_dense)
    assert bool(ds.present.all())


def test_sample_deadtime_matches_records(sample_path):
    ds = open_geopixe(sample_path)
    idx = index_geopixe(sample_path)
    expected = np.zeros((10, 20, 2), np.float32)
    expected[idx.y.values, idx.x.values, idx.detector.values] = idx.deadtime.values
    np.testing.assert_array_equal(ds.deadtime.values, expected)
    assert ds.deadtime.attrs["units"] == "percent"


def test_coordinates_and_attrs(sample_path):
    ds = open_geopixe(sample_path)
    np.testing.assert_allclose(ds.x, (np.arange(20) + 0.5) * 0.5703125 / 20)
    np.testing.assert_allclose(ds.y, (np.arange(10) + 0.5) * 0.2850467289719626 / 10)
    assert ds.x.attrs["units"] == "mm" and ds.energy.attrs["units"] == "keV"
    np.testing.assert_allclose(ds.energy, np.arange(4096) * 0.01)
    assert list(ds.detector.values) == [0, 1]
    assert ds.attrs["geopixe_header"]["File Header"]["Xres"] == 20
    assert ds.attrs["tube_element"] == "Mo" and ds.attrs["tube_kv"] == 50.0


@pytest.mark.parametrize(
    "chunks", [1, 3, 7, None, -1, "auto", {"y": 2, "x": 7}, {"y": 1, "x": 3}, {"y": (4, 6)}]
)
def test_result_does_not_depend_on_chunking(sample_path, sample_dense, chunks):
    ds = open_geopixe(sample_path, chunks=chunks)
    np.testing.assert_array_equal(ds.spectra.values, sample_dense)


def test_chunks_follow_design(sample_path):
    ds = open_geopixe(sample_path, chunks=3)
    assert ds.spectra.chunks == ((3, 3, 3, 1), (20,), (2,), (4096,))
    assert ds.deadtime.chunks == ((3, 3, 3, 1), (20,), (2,))
    # "auto": bands of whole rows within the budget.
    with dask.config.set({"xrfdask.chunk-size": "1MiB"}):
        ds = open_geopixe(sample_path)
    row_bytes = 20 * 2 * 4096 * 2
    assert ds.spectra.chunks[0][0] == (2**20) // row_bytes == 3
    assert ds.spectra.chunks[1:] == ((20,), (2,), (4096,))
    # A single row over the budget: x is split.
    with dask.config.set({"xrfdask.chunk-size": "100KiB"}):
        y_chunks, x_chunks = plan_chunks(build_index(sample_path), "auto")
    assert set(y_chunks) == {1} and max(x_chunks) == (100 * 1024) // (2 * 4096 * 2) == 6
    assert open_geopixe(sample_path, chunks="200KiB").spectra.chunks[0][0] == 1


def test_bad_chunks_arguments(sample_path):
    for bad in ({"channel": 100}, {"q": 1}, 0, {"y": (3, 3)}, 2.5):
        with pytest.raises(ValueError):
            open_geopixe(sample_path, chunks=bad)


def test_task_names_say_what_they_do(sample_path):
    ds = open_geopixe(sample_path, chunks=2)
    prefixes = {key_split(k) for k in ds.spectra.data.__dask_graph__()}
    assert prefixes == {"geopixe-read"}
    assert len(ds.spectra.data.__dask_graph__()) == 5


def test_opening_and_indexing_never_decode_spectra(tmp_path):
    # Every record body holds an impossible channel: decoding any of them raises; opening must not.
    spectra, deadtime = gf.random_map((3, 4, 2, 16), density=1.0)
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    for off in offsets:
        struct.pack_into("<H", bad, off + 16, 999)
    path = gf.write(tmp_path / "bodies.GeoPIXE", bytes(bad))
    with dask.config.set(scheduler=ComputeForbidden()):
        ds = open_geopixe(path)
        index_geopixe(path)
        xr.open_dataset(path, engine="geopixe")
    assert ds.deadtime.shape == (3, 4, 2)
    with pytest.raises(
        FormatError,
        match=rf"stores channel 999 at offset {offsets[0] + 16}, but the header has Chan = 16",
    ):
        _ = ds.spectra.isel(y=0).values


def test_unsorted_channels_are_reported(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 1, 16), density=1.0)
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<H", bad, offsets[2] + 16 + 4, 0)  # second pair's channel 1 -> 0
    ds = open_geopixe(gf.write(tmp_path / "u.GeoPIXE", bytes(bad)), chunks=1)
    np.testing.assert_array_equal(ds.spectra.isel(y=0).values, spectra[0])
    with pytest.raises(
        FormatError,
        match=rf"record \(x=0, y=1, detector=0\) has channels out of ascending order "
        rf"at offset {offsets[2] + 20}",
    ):
        _ = ds.spectra.isel(y=1).values


def test_truncated_map_reads_zero_and_flags_missing(tmp_path, sample_path, sample_dense):
    data = sample_path.read_bytes()
    idx = index_geopixe(sample_path)
    cut = int(idx.offset[301]) + 100  # inside the body of record 301 (pixel 150, detector 1)
    path = gf.write(tmp_path / "cut.GeoPIXE", data[:cut])
    with pytest.warns(TruncatedMapWarning, match=f"offset {int(idx.offset[301])}"):
        ds = open_geopixe(path, chunks=3)
    assert ds.sizes["y"] == 8
    flat = ds.spectra.values.reshape(160, 2, 4096)
    ref = sample_dense.reshape(200, 2, 4096)
    np.testing.assert_array_equal(flat[:150], ref[:150])
    np.testing.assert_array_equal(flat[150, 0], ref[150, 0])
    assert not flat[150, 1].any() and not flat[151:].any()
    present = ds.present.values.reshape(160, 2)
    assert (
        present[:150].all() and present[150].tolist() == [True, False] and not present[151:].any()
    )
    assert ds.deadtime.values.reshape(160, 2)[151:].sum() == 0


def test_file_changed_after_opening(sample_copy):
    ds = open_geopixe(sample_copy)
    with open(sample_copy, "ab") as f:
        f.write(b"DP")
    with pytest.raises(FormatError, match="changed since it was opened"):
        _ = ds.spectra.values


def test_graph_pieces_pickle(sample_path):
    ds = open_geopixe(sample_path, chunks=4)
    graph = dict(ds.spectra.data.__dask_graph__())
    task = next(iter(graph.values()))
    clone = pickle.loads(pickle.dumps(graph))
    assert len(clone) == len(graph)
    spec = next(a for a in getattr(task, "args", task[1:]) if isinstance(a, BlockSpec))
    assert pickle.loads(pickle.dumps(spec)) == spec
    # No index arrays in the graph: each task carries only its byte range.
    assert len(pickle.dumps(spec)) < 1000


def test_no_warning_for_a_complete_map(sample_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_geopixe(sample_path)


def test_example_map_reads_through_a_distributed_cluster(example_path, dask_cluster):
    """Process workers on a real scheduler: every task function and argument must pickle."""
    from distributed import Client

    local = open_geopixe(example_path, chunks=5)
    expected_sum = local.spectra.sum(("y", "x")).compute(scheduler="threads")
    expected_dt = local.deadtime.mean().compute(scheduler="threads")
    with Client(scheduler_file=str(dask_cluster)) as client:
        ds = open_geopixe(example_path, chunks=5)
        total = ds.spectra.sum(("y", "x")).compute()
        row = ds.spectra.isel(y=17).compute()
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    np.testing.assert_array_equal(total, expected_sum)
    np.testing.assert_array_equal(row, local.spectra.isel(y=17).compute(scheduler="threads"))
    assert float(ds.deadtime.mean().compute(scheduler="threads")) == float(expected_dt)
    assert int(total.sum()) > 0


def test_fast_sum_spectrum_equals_the_dense_sum(sample_path, sample_dense, tmp_path):
    from xrfdask.io.geopixe.reader import sum_spectrum

    for chunks in (1, 3, -1, {"y": 2, "x": 7}):
        ds = open_geopixe(sample_path, chunks=chunks)
        np.testing.assert_array_equal(
            sum_spectrum(ds.spectra.data).compute(), sample_dense.sum((0, 1))
        )
    # Blocks grouped into any number of sum tasks, added in a tree of any fan-in.
    ds = open_geopixe(sample_path, chunks=1)
    for tasks, fan_in in ((1, 8), (3, 2), (7, 2), (100, 3)):
        total = sum_spectrum(ds.spectra.data, fan_in=fan_in, tasks=tasks)
        assert len([k for k in total.__dask_graph__() if "part" in k[0] and k[1] == 0]) == min(
            tasks, 10
        )
        np.testing.assert_array_equal(total.compute(), sample_dense.sum((0, 1)))
    # Only for the reader's own array: anything derived from it takes the generic path.
    ds = open_geopixe(sample_path)
    assert sum_spectrum(ds.spectra.isel(y=slice(0, 4)).data) is None
    assert sum_spectrum((ds.spectra + 1).data) is None
    # Corrupt bodies are reported as when decoding.
    spectra, deadtime = gf.random_map((3, 4, 2, 16), density=1.0)
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<H", bad, offsets[5] + 16, 999)
    path = gf.write(tmp_path / "bad.GeoPIXE", bytes(bad))
    with pytest.raises(FormatError, match="stores channel 999"):
        sum_spectrum(open_geopixe(path).spectra.data).compute()


def test_channel_window_reads_equal_the_dense_blocks_trimmed(sample_path, sample_dense, tmp_path):
    """What the fit reads: (detector, pixel, channels lo..hi-1) floats, decoded from the records."""
    from xrfdask.io.geopixe.reader import block_specs, read_block_channels

    for chunks in (3, {"y": 2, "x": 7}):
        ds = open_geopixe(sample_path, chunks=chunks)
        for (_i, _j), spec in block_specs(ds.spectra.data).items():
            for lo, hi in ((0, 4096), (100, 1500), (4000, 4096)):
                got = read_block_channels(spec, lo, hi, np.float32)
                dense = sample_dense[
                    spec.y0 : spec.y0 + spec.nrows, spec.x0 : spec.x0 + spec.ncols, :, lo:hi
                ]
                assert (
                    got.shape == (2, spec.nrows * spec.ncols, hi - lo) and got.dtype == np.float32
                )
                assert got.flags.c_contiguous
                np.testing.assert_array_equal(
                    got, dense.transpose(2, 0, 1, 3).reshape(2, -1, hi - lo)
                )
    assert block_specs(ds.spectra.isel(detector=[0]).data) is None
    # Channels outside the window are still checked.
    spectra, deadtime = gf.random_map((3, 4, 2, 16), density=1.0)
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<H", bad, offsets[5] + 16, 999)
    path = gf.write(tmp_path / "bad.GeoPIXE", bytes(bad))
    spec = block_specs(open_geopixe(path, chunks=-1).spectra.data)[0, 0]
    with pytest.raises(FormatError, match="stores channel 999"):
        read_block_channels(spec, 2, 5)


def test_binned_and_class_sums_equal_the_dense_ones(sample_path, sample_dense, tmp_path):
    """Classification's fast paths: binned pixel spectra and per-class sum spectra, summed over
    detectors, from the sparse records."""
    from xrfdask.io import fastpaths

    summed = sample_dense.sum(axis=2, dtype=np.int64)  # (y, x, channel)
    ny, nx, nc = summed.shape
    bins = np.full(nc, -1)
    bins[100:1700] = np.arange(1600) // 16  # a window, 16 channels per bin
    want = summed[:, :, 100:1700].reshape(ny, nx, 100, 16).sum(-1)
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 4, (ny, nx))  # -1 and 3 (beyond 3 classes): left out
    for chunks in (3, {"y": 2, "x": 7}):
        data = open_geopixe(sample_path, chunks=chunks).spectra.data
        binned = fastpaths.pixel_binned_sums(data, bins)
        assert binned.chunks[:2] == data.chunks[:2]
        np.testing.assert_array_equal(binned.compute(), want)
        sums = fastpaths.class_sum_spectra(data, da.from_array(labels, chunks=(5, 9)), 3)
        np.testing.assert_array_equal(
            sums.compute(), [summed[labels == c].sum(axis=0) for c in range(3)]
        )
    ds = open_geopixe(sample_path)
    assert fastpaths.pixel_binned_sums((ds.spectra + 0).data, bins) is None
    assert fastpaths.class_sum_spectra(ds.spectra.isel(y=[0]).data, labels[:1], 3) is None
    # Corrupt records are reported as when decoding.
    spectra, deadtime = gf.random_map((3, 4, 2, 16), density=1.0)
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<H", bad, offsets[5] + 16, 999)
    path = gf.write(tmp_path / "bad.GeoPIXE", bytes(bad))
    bad_data = open_geopixe(path).spectra.data
    with pytest.raises(FormatError, match="stores channel 999"):
        fastpaths.pixel_binned_sums(bad_data, np.arange(16) // 4).compute()
    with pytest.raises(FormatError, match="stores channel 999"):
        fastpaths.class_sum_spectra(bad_data, da.zeros((3, 4), dtype=int), 1).compute()


def test_records_straddling_read_windows(sample_path, sample_dense, tmp_path, monkeypatch):
    """Blocks are read in windows; a record cut by a window's end is read again with the next."""
    from xrfdask.io.geopixe import reader
    from xrfdask.io.geopixe.reader import sum_spectrum

    monkeypatch.setattr(reader, "_WINDOW", 1)  # the smallest allowed: one longest record
    ds = open_geopixe(sample_path, chunks=4)
    np.testing.assert_array_equal(ds.spectra.values, sample_dense)
    np.testing.assert_array_equal(sum_spectrum(ds.spectra.data).compute(), sample_dense.sum((0, 1)))
    # Offsets in error messages are file offsets, wherever the window starts.
    spectra, deadtime = gf.random_map((3, 4, 2, 16), density=1.0)
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<H", bad, offsets[19] + 16 + 4, 0)  # record 19's second channel -> 0
    ds = open_geopixe(gf.write(tmp_path / "late.GeoPIXE", bytes(bad)), chunks=-1)
    with pytest.raises(
        FormatError,
        match=rf"record \(x=1, y=2, detector=1\) has channels out of ascending order "
        rf"at offset {offsets[19] + 20}",
    ):
        _ = ds.spectra.values
