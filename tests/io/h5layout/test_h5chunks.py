"""Direct chunk reads (decompression in the tasks) give exactly h5py's own reads.

Every test runs twice: through the compiled kernels (one call a band) and chunk by chunk in
Python, the path taken where the kernels do not apply.
"""

import os
import zlib

import dask
import h5py
import numpy as np
import pytest

from xrfdask.errors import FormatError
from xrfdask.io.h5layout import h5chunks, inflate_kernels, open_h5
from xrfdask.io.h5layout.stores import H5Reader


@pytest.fixture(autouse=True, params=["compiled", "python"])
def path_taken(request, monkeypatch):
    """Which reading path the test runs: both must give h5py's values."""
    compiled = request.param == "compiled"
    if compiled:
        assert inflate_kernels.AVAILABLE  # libdeflate found in the deflate package
    monkeypatch.setattr(h5chunks, "COMPILED", compiled)
    return request.param


def _spectra(shape, seed=0, dtype=np.uint32):
    return np.random.default_rng(seed).poisson(3, shape).astype(dtype)


def _write(path, data, **options):
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/channel00/spectra", data=data, **options)
    return path


def _read_all(path, chunks):
    with H5Reader(path) as reader:
        array = reader.lazy("raw/channel00/spectra", chunks)
        layout = h5chunks.direct_layout(reader._dataset("raw/channel00/spectra"), reader._token)
    with dask.config.set(scheduler="threads", num_workers=2):
        return array.compute(), layout


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "gzip", "compression_opts": 4},  # xrf_proc's converters: automatic chunks
        {"compression": "gzip", "compression_opts": 1, "shuffle": True, "chunks": (3, 5, 16)},
        {"compression": "gzip", "shuffle": True, "chunks": (4, 4, 64)},
        {"chunks": (7, 3, 20)},  # chunked, no filter
    ],
    ids=["gzip-auto", "gzip-shuffle", "gzip-shuffle-2", "no-filter"],
)
def test_direct_reads_equal_h5py(tmp_path, options):
    data = _spectra((23, 17, 64))  # irregular edge chunks along every axis
    path = _write(tmp_path / "m.h5", data, **options)
    chunks = ((5, 9, 9), (17,), (64,))  # bands that do not align with the stored chunks
    got, layout = _read_all(path, chunks)
    assert layout is not None  # the direct path was taken
    with h5py.File(path) as f:
        expected = f["raw/channel00/spectra"][()]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [">u4", "<i2", "<f4", ">f8", "u1"])
def test_direct_reads_keep_the_stored_dtype(tmp_path, dtype):
    data = _spectra((9, 6, 32), dtype=np.dtype(dtype))
    path = _write(tmp_path / "m.h5", data, compression="gzip", shuffle=True, chunks=(2, 4, 8))
    got, layout = _read_all(path, ((9,), (6,), (32,)))
    assert layout is not None
    with h5py.File(path) as f:
        expected = f["raw/channel00/spectra"][()]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_unallocated_chunks_read_as_the_fill_value(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset(
            "raw/channel00/spectra",
            shape=(10, 8, 32),
            dtype="u4",
            chunks=(4, 4, 16),
            compression="gzip",
            fillvalue=7,
        )
        d[0:4, 0:4] = 1  # one column of chunks written; the rest never allocated
        d[9, 7, 31] = 3
        expected = d[()]
        assert d.id.get_num_chunks() < 3 * 2 * 2
    got, layout = _read_all(path, ((3, 7), (8,), (32,)))
    assert layout is not None and layout.fill == 7
    np.testing.assert_array_equal(got, expected)
    assert (got == 7).sum() > 0


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compression": "lzf", "chunks": (4, 4, 16)},
        {"compression": "gzip", "fletcher32": True, "chunks": (4, 4, 16)},
    ],
    ids=["contiguous", "lzf", "fletcher32"],
)
def test_other_layouts_read_through_h5py(tmp_path, options):
    data = _spectra((10, 8, 32))
    path = _write(tmp_path / "m.h5", data, **options)
    got, layout = _read_all(path, ((6, 4), (8,), (32,)))
    assert layout is None
    np.testing.assert_array_equal(got, data)


def test_spectra_of_every_detector_and_the_fit_channel_range(tmp_path):
    a, b = _spectra((13, 10, 300), 1), _spectra((13, 10, 300), 2)
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/channel00/spectra", data=a, compression="gzip", compression_opts=4)
        f.create_dataset(
            "raw/channel01/spectra", data=b, compression="gzip", chunks=(3, 10, 64), shuffle=True
        )
    with dask.config.set({"xrfdask.chunk-size": "40KiB"}):
        ds = open_h5(path)
    spectra = ds.spectra.data
    assert len(spectra.chunks[0]) > 1
    np.testing.assert_array_equal(spectra.compute(), np.stack([a, b], axis=2))
    from xrfdask.io import fastpaths

    blocks = fastpaths.channel_blocks(spectra, 70, 200, np.float32)
    rows = np.cumsum((0,) + spectra.chunks[0])
    for (i, _), task in blocks.items():
        got = task[0](*task[1:])
        want = (
            np.stack([a, b])[:, rows[i] : rows[i + 1], :, 70:200]
            .reshape(2, -1, 130)
            .astype(np.float32)
        )
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_the_fit_range_decompresses_only_its_chunks(tmp_path, inflated):
    data = _spectra((6, 4, 512))
    path = _write(tmp_path / "m.h5", data, compression="gzip", chunks=(6, 4, 64))
    ds = open_h5(path)
    calls = inflated
    from xrfdask.io import fastpaths

    (task,) = fastpaths.channel_blocks(ds.spectra.data, 100, 250, np.float64).values()
    got = task[0](*task[1:])
    np.testing.assert_array_equal(got[0], data[:, :, 100:250].reshape(24, 150))
    assert len(calls) == 3  # channels 64-127, 128-191, 192-255 of 8 stored chunks


def test_fast_sum_equals_numpy(tmp_path):
    data = _spectra((23, 17, 64))
    path = _write(tmp_path / "m.h5", data, compression="gzip", chunks=(4, 5, 16))
    with dask.config.set({"xrfdask.chunk-size": "30KiB"}):
        ds = open_h5(path)
    from xrfdask.io import fastpaths

    total = fastpaths.sum_spectrum(ds.spectra.data)
    np.testing.assert_array_equal(total.compute(), data.sum(axis=(0, 1), dtype=np.float64)[None])
    assert fastpaths.sum_spectrum(ds.spectra.data[1:]) is None  # not the reader's own array


def test_inflate_fallback_and_corrupt_chunks(tmp_path, monkeypatch):
    raw = np.arange(1000, dtype=np.uint32).tobytes()
    packed = zlib.compress(raw, 4)
    assert h5chunks.inflate(packed, len(raw)) == raw
    monkeypatch.setattr(h5chunks, "_deflate", None)  # without libdeflate: the standard zlib
    assert h5chunks.inflate(packed, len(raw)) == raw
    data = _spectra((4, 4, 16))
    path = _write(tmp_path / "m.h5", data, compression="gzip", chunks=(4, 4, 16))
    with h5py.File(path, "r+") as f:
        f["raw/channel00/spectra"].id.write_direct_chunk((0, 0, 0), b"not a zlib stream")
    with pytest.raises(
        FormatError, match="m.h5: dataset 'raw/channel00/spectra': corrupt gzip chunk"
    ):
        open_h5(path).spectra.compute()


def test_chunks_are_fetched_through_the_file_index(tmp_path, monkeypatch, path_taken):
    data = _spectra((23, 17, 64))
    path = _write(tmp_path / "m.h5", data, compression="gzip", chunks=(4, 5, 16))
    fetched = []
    name = "_fetch" if path_taken == "compiled" else "_indexed_chunks"
    real = getattr(h5chunks, name)
    monkeypatch.setattr(h5chunks, name, lambda *a: fetched.append(1) or real(*a))
    got, layout = _read_all(path, ((23,), (17,), (64,)))
    np.testing.assert_array_equal(got, data)
    assert fetched  # os.pread through the index, no h5py call per chunk
    index = h5chunks.chunk_index(str(path), "raw/channel00/spectra", layout)
    assert index.offset.shape == (6, 4, 4) and (index.offset >= 0).all()


def test_a_user_block_or_a_replaced_file_still_reads_right(tmp_path):
    data = _spectra((9, 8, 32))
    path = tmp_path / "m.h5"
    with h5py.File(path, "w", userblock_size=1024) as f:  # file addresses shifted by 1024
        f.create_dataset("raw/channel00/spectra", data=data, compression="gzip", chunks=(3, 4, 8))
    got, _ = _read_all(path, ((4, 5), (8,), (32,)))
    np.testing.assert_array_equal(got, data)
    # A different file put in its place after opening: an error, never the old layout's reads.
    lazy = open_h5(path).spectra
    _write(tmp_path / "new.h5", _spectra((9, 8, 32), 5), compression="gzip", chunks=(2, 2, 32))
    os.replace(tmp_path / "new.h5", path)
    with pytest.raises(FormatError, match="m.h5: the file was replaced since it was opened"):
        lazy.compute()


def test_a_file_truncated_after_opening_is_a_format_error(tmp_path):
    data = _spectra((12, 10, 64))
    path = _write(tmp_path / "m.h5", data, compression="gzip", chunks=(3, 5, 16))
    lazy = open_h5(path).spectra
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(FormatError, match="m.h5"):
        lazy.compute()


def test_a_chunk_tree_listing_chunks_outside_the_dataset_reads_as_hdf5_does(tmp_path):
    # Found by benchmarks/fuzz_inputs.py: a damaged chunk key made HDF5's listing name a chunk
    # beyond the dataset (IndexError out of the index); the listing is now checked, and HDF5's
    # own lookups are used when it disagrees.
    import struct

    data = np.arange(2 * 3 * 8, dtype=np.uint32).reshape(2, 3, 8) + 1
    path = tmp_path / "tree.h5"
    with h5py.File(path, "w", libver="earliest") as f:  # chunks indexed by a version-1 B-tree
        f.create_dataset("raw/channel00/spectra", data=data, compression="gzip", chunks=(1, 3, 8))
    raw = bytearray(path.read_bytes())
    node = raw.find(b"TREE")
    while node >= 0 and raw[node + 4] != 1:  # node type 1: raw data chunks
        node = raw.find(b"TREE", node + 4)
    # Node header 24 bytes; a key is size, filter mask and 4 offsets (40 bytes), a child 8.
    second_key = node + 24 + 40 + 8
    assert struct.unpack_from("<Q", raw, second_key + 8)[0] == 1  # chunk (1, 0, 0)
    struct.pack_into("<Q", raw, second_key + 8, 5)  # listed as (5, 0, 0): outside 2 rows
    path.write_bytes(bytes(raw))
    with h5py.File(path) as f:
        want = f["raw/channel00/spectra"][()]  # HDF5's lookup no longer finds row 1: fill value
    np.testing.assert_array_equal(open_h5(path).spectra.values[:, :, 0, :], want)


def test_datasets_of_one_and_two_axes_read_and_sum_right(tmp_path):
    i0 = np.random.default_rng(3).uniform(1e4, 1e5, (11, 7))
    line = np.arange(50, dtype=np.int32) - 20
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/I0", data=i0, compression="gzip", chunks=(4, 3), shuffle=True)
        f.create_dataset("line", data=line, compression="gzip", chunks=(16,))
    with H5Reader(path) as reader:
        for name, data in (("raw/I0", i0), ("line", line)):
            layout = h5chunks.direct_layout(reader._dataset(name), reader._token)
            sel = tuple(slice(1, n - 1) for n in data.shape)
            out = np.empty(tuple(s.stop - s.start for s in sel), dtype=data.dtype)
            h5chunks.read_region(str(path), name, sel, layout, out)
            np.testing.assert_array_equal(out, data[sel])
            total = np.zeros(out.shape[-1])
            h5chunks.sum_region(str(path), name, sel, layout, total)
            np.testing.assert_allclose(total, data[sel].reshape(-1, out.shape[-1]).sum(0), 1e-12)


def test_sums_of_unallocated_and_partly_selected_chunks(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset(
            "raw/channel00/spectra", shape=(10, 9, 40), dtype="u2", chunks=(4, 4, 16),
            compression="gzip", shuffle=True, fillvalue=5,
        )  # fmt: skip
        d[2:7, 1:6] = _spectra((5, 5, 40), 4, np.uint16)  # the rest never written
        expected = d[()]
    with H5Reader(path) as reader:
        layout = h5chunks.direct_layout(reader._dataset("raw/channel00/spectra"), reader._token)
    sel = (slice(1, 9), slice(2, 9), slice(3, 37))  # every axis cut inside a chunk
    total = np.zeros(34)
    h5chunks.sum_region(str(path), "raw/channel00/spectra", sel, layout, total)
    np.testing.assert_array_equal(total, expected[sel].sum(axis=(0, 1), dtype=np.float64))
    out = np.empty((8, 7, 34), np.float32)  # read with a cast, as the fit reads
    h5chunks.read_region(str(path), "raw/channel00/spectra", sel, layout, out)
    np.testing.assert_array_equal(out, expected[sel].astype(np.float32))


def test_chunks_stored_without_their_filters_and_wrong_sizes(tmp_path):
    data = _spectra((4, 4, 32))
    path = _write(tmp_path / "m.h5", data, compression="gzip", shuffle=True, chunks=(4, 4, 16))
    with h5py.File(path, "r+") as f:
        dsid = f["raw/channel00/spectra"].id
        # HDF5 skips an optional filter that fails: the mask says which (shuffle 1, gzip 2)
        dsid.write_direct_chunk((0, 0, 0), np.ascontiguousarray(data[:, :, :16]).tobytes(), 3)
    np.testing.assert_array_equal(open_h5(path).spectra.values[:, :, 0, :], data)
    with h5py.File(path, "r+") as f:
        f["raw/channel00/spectra"].id.write_direct_chunk((0, 0, 16), b"\0" * 100, 3)
    with pytest.raises(FormatError, match="m.h5: dataset 'raw/channel00/spectra': a stored chunk"):
        open_h5(path).spectra.compute()
    short = zlib.compress(np.zeros(10, np.uint32).tobytes())  # inflates to 40 bytes, not 1024
    with h5py.File(path, "r+") as f:
        f["raw/channel00/spectra"].id.write_direct_chunk((0, 0, 16), short, 1)
    with pytest.raises(FormatError, match="m.h5: dataset 'raw/channel00/spectra'"):
        open_h5(path).spectra.compute()


def test_chunks_scattered_in_the_file_are_read_in_several_runs(tmp_path, monkeypatch, path_taken):
    a, b = _spectra((8, 6, 64), 5), _spectra((8, 6, 64), 6)
    path = tmp_path / "m.h5"
    with h5py.File(path, "w", rdcc_nbytes=0) as f:  # no chunk cache: chunks stored as written
        opts = {"shape": a.shape, "dtype": "u4", "chunks": (2, 6, 64), "compression": "gzip"}
        da_, db_ = f.create_dataset("raw/channel00/spectra", **opts), f.create_dataset("b", **opts)
        for r in range(0, 8, 2):  # chunks of the two datasets alternate in the file
            da_[r : r + 2], db_[r : r + 2] = a[r : r + 2], b[r : r + 2]
    reads = []
    real = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, at: reads.append(at) or real(fd, bufs, at))
    got, _ = _read_all(path, ((8,), (6,), (64,)))
    np.testing.assert_array_equal(got, a)
    assert len(reads) == (1 if path_taken == "compiled" else 0)  # small gaps: read through
    reads.clear()
    monkeypatch.setattr(h5chunks, "_READ_GAP", 0)
    got, _ = _read_all(path, ((8,), (6,), (64,)))
    np.testing.assert_array_equal(got, a)
    assert len(reads) == (4 if path_taken == "compiled" else 0)  # one read per run of chunks
