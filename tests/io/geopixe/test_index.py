import os
import struct
import warnings

import numpy as np
import pytest

from tests import geopixe_files as gf
from xrfdask import FormatError, TruncatedMapWarning, XrfdaskWarning, index_geopixe
from xrfdask.io.geopixe import index as index_module
from xrfdask.io.geopixe.index import build_index


def _parse_headers_slowly(path):
    """Walk the record headers with struct, the way ReadoutXFM does (the reference)."""
    data = path.read_bytes()
    (h,) = struct.unpack_from("<H", data)
    pos, rows = 2 + h, []
    while pos < len(data):
        tag, length, x, y, det, dt = gf.RECORD.unpack_from(data, pos)
        rows.append((pos, length, x, y, det, dt))
        pos += length
    return np.array(rows)


def test_sample_index_matches_record_headers(sample_path):
    idx = index_geopixe(sample_path)
    ref = _parse_headers_slowly(sample_path)
    assert idx.sizes["record"] == 400 == len(ref)
    np.testing.assert_array_equal(idx.offset, ref[:, 0])
    np.testing.assert_array_equal(idx.length, ref[:, 1])
    np.testing.assert_array_equal(idx.x, ref[:, 2])
    np.testing.assert_array_equal(idx.y, ref[:, 3])
    np.testing.assert_array_equal(idx.detector, ref[:, 4])
    np.testing.assert_array_equal(idx.deadtime, ref[:, 5].astype(np.float32))
    assert int(idx.offset[0]) == 1161
    assert int(idx.length.sum()) == os.path.getsize(sample_path) - 1161
    # Per-detector means quoted in the spec (ReadoutXFM -a).
    dt = idx.deadtime.groupby(idx.detector).mean()
    np.testing.assert_allclose(dt, [23.74, 26.85], atol=0.005)
    assert idx.attrs["complete"] == 1


def test_cache_written_beside_file_and_reused(sample_copy, monkeypatch):
    build_index(sample_copy)
    cache = sample_copy.with_name(sample_copy.name + ".xrfidx.npz")
    assert cache.exists()

    def no_walk(*args):
        raise AssertionError("index rebuilt although the cache is valid")

    monkeypatch.setattr(index_module.kernels, "index_records", no_walk)
    again = build_index(sample_copy)
    assert again.n_records == 400 and again.offsets[0] == 1161


def test_cache_invalidated_by_changed_file(sample_copy, monkeypatch):
    build_index(sample_copy)
    # Same size, new content and mtime: every deadtime of the first record changes.
    data = bytearray(sample_copy.read_bytes())
    struct.pack_into("<f", data, 1161 + 12, 42.5)
    sample_copy.write_bytes(bytes(data))
    os.utime(sample_copy, ns=(1, 10**9))
    assert build_index(sample_copy).deadtime[0] == np.float32(42.5)


def test_cache_goes_to_user_dir_when_folder_read_only(tmp_path, sample_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / sample_path.name
    target.write_bytes(sample_path.read_bytes())
    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("XRFDASK_CACHE_DIR", str(user_cache))
    folder.chmod(0o555)
    try:
        build_index(target)
        assert os.listdir(folder) == [sample_path.name]
        cached = list((user_cache / "index").glob("*.xrfidx.npz"))
        assert len(cached) == 1
    finally:
        folder.chmod(0o755)


def test_corrupt_cache_is_rebuilt(sample_copy):
    build_index(sample_copy)
    cache = sample_copy.with_name(sample_copy.name + ".xrfidx.npz")
    cache.write_bytes(b"not a zip")
    assert build_index(sample_copy).n_records == 400


# --- unusual but valid maps ---------------------------------------------------------------


@pytest.mark.parametrize("ndet", [1, 2, 3])
@pytest.mark.parametrize(("nchan", "gain"), [(64, 10.0), (1024, 20.0)])
def test_any_detector_count_and_channels(tmp_path, ndet, nchan, gain):
    spectra, deadtime = gf.random_map((3, 4, ndet, nchan), seed=ndet)
    data, offsets = gf.build(spectra, deadtime, gf.header_fields(4, 3, ndet, nchan, gain))
    idx = build_index(gf.write(tmp_path / "m.GeoPIXE", data), cache=False)
    assert idx.ndet == ndet and idx.nchan == nchan
    np.testing.assert_array_equal(idx.offsets, offsets)
    np.testing.assert_array_equal(idx.deadtime, deadtime.reshape(-1))


def test_empty_spectrum_record(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 1, 16))
    spectra[1, 0, 0] = 0
    data, offsets = gf.build(spectra, deadtime)
    idx = build_index(gf.write(tmp_path / "m.GeoPIXE", data), cache=False)
    assert idx.lengths[2] == 16


def test_header_dets_larger_than_records_warns_and_uses_records(tmp_path):
    spectra, deadtime = gf.random_map((2, 3, 1, 16))
    data, _ = gf.build(spectra, deadtime, gf.header_fields(3, 2, 2, 16))  # says Dets = 2
    path = gf.write(tmp_path / "m.GeoPIXE", data)
    with pytest.warns(XrfdaskWarning, match="header says Dets = 2 but each pixel holds 1"):
        idx = build_index(path, cache=False)
    assert idx.ndet == 1 and idx.complete
    # Every opening warns, also when the index comes from the cache.
    for _ in range(2):
        with pytest.warns(XrfdaskWarning, match="header says Dets = 2 but each pixel holds 1"):
            assert build_index(path).ndet == 1
    assert list(tmp_path.glob("*.xrfidx.npz"))


def test_header_without_dets_infers_detectors(tmp_path):
    spectra, deadtime = gf.random_map((2, 3, 3, 16))
    fields = gf.header_fields(3, 2, 3, 16)
    del fields["File Header"]["Dets"]
    data, _ = gf.build(spectra, deadtime, fields)
    assert build_index(gf.write(tmp_path / "m.GeoPIXE", data), cache=False).ndet == 3


# --- truncated maps (scan stopped early): open, warn, flag -----------------------------------


def _sample_truncated(tmp_path, sample_path, n_records, extra=b""):
    offsets = _parse_headers_slowly(sample_path)[:, 0].astype(int)
    data = sample_path.read_bytes()
    end = offsets[n_records] if n_records < len(offsets) else len(data)
    return gf.write(tmp_path / "cut.GeoPIXE", data[:end] + extra), offsets


def test_truncated_at_row_boundary(tmp_path, sample_path):
    path, _ = _sample_truncated(tmp_path, sample_path, 7 * 20 * 2)
    with pytest.warns(TruncatedMapWarning, match="map ends after 280 of 400 records"):
        idx = build_index(path, cache=False)
    assert idx.nrows == 7 and idx.present().all()


def test_truncated_mid_row_at_pixel_boundary(tmp_path, sample_path):
    path, _ = _sample_truncated(tmp_path, sample_path, 150 * 2)
    with pytest.warns(TruncatedMapWarning):
        idx = build_index(path, cache=False)
    assert idx.nrows == 8
    present = idx.present()
    assert present[:7].all() and present[7, :10].all() and not present[7, 10:].any()


@pytest.mark.parametrize("cut", [5, 16, 400])  # inside the record header, at its body, in the body
def test_truncated_inside_a_record_drops_it(tmp_path, sample_path, cut):
    offsets = _parse_headers_slowly(sample_path)[:, 0].astype(int)
    data = sample_path.read_bytes()[: offsets[301] + cut]
    path = gf.write(tmp_path / "cut.GeoPIXE", data)
    with pytest.warns(
        TruncatedMapWarning,
        match=f"ends inside the record at offset {offsets[301]}; it was dropped",
    ):
        idx = build_index(path, cache=False)
    assert idx.n_records == 301
    present = idx.present()
    assert present.reshape(-1)[:301].all() and not present.reshape(-1)[301:].any()


def test_header_yres_larger_than_rows_present(tmp_path, sample_path):
    data = bytearray(sample_path.read_bytes())
    header = data[2:1161].replace(b'"Yres": 10', b'"Yres": 12')
    path = gf.write(tmp_path / "y12.GeoPIXE", bytes(data[:2] + header + data[1161:]))
    with pytest.warns(TruncatedMapWarning):
        idx = build_index(path, cache=False)
    assert idx.nrows == 10 and idx.n_records == 400


# --- corrupt maps: FormatError naming the record's offset -----------------------------------


def _expect_error(path, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may replace the error
        with pytest.raises(FormatError, match=message) as info:
            build_index(path, cache=False)
    assert str(path) in str(info.value)
    return info.value


def test_surplus_records(tmp_path, sample_path):
    offsets = _parse_headers_slowly(sample_path)[:, 0].astype(int)
    data = sample_path.read_bytes()
    path = gf.write(tmp_path / "surplus.GeoPIXE", data + data[offsets[0] : offsets[2]])
    _expect_error(path, f"record at offset {len(data)} is surplus")


def test_header_yres_smaller_than_rows_present(tmp_path, sample_path):
    data = bytearray(sample_path.read_bytes())
    header = data[2:1161].replace(b'"Yres": 10', b'"Yres": 8 ')
    path = gf.write(tmp_path / "y8.GeoPIXE", bytes(data[:2] + header + data[1161:]))
    offsets = _parse_headers_slowly(sample_path)[:, 0].astype(int)
    _expect_error(path, f"record at offset {offsets[8 * 40]} is surplus")


def test_missing_detector_record_is_an_error_not_a_shift(tmp_path, sample_path):
    # ReadoutXFM silently shifted 300 of 400 spectra here.
    offsets = _parse_headers_slowly(sample_path)[:, 0].astype(int)
    data = sample_path.read_bytes()
    path = gf.write(tmp_path / "missing.GeoPIXE", data[: offsets[101]] + data[offsets[102] :])
    _expect_error(
        path,
        rf"record at offset {offsets[101]} holds \(x=11, y=2, detector=0\), expected \(x=10, y=2, "
        r"detector=1\): a record is missing",
    )


def test_duplicated_record(tmp_path, sample_path):
    offsets = _parse_headers_slowly(sample_path)[:, 0].astype(int)
    data = sample_path.read_bytes()
    dup = data[offsets[50] : offsets[51]]
    path = gf.write(
        tmp_path / "dup.GeoPIXE", data[: offsets[51]] + dup + data[offsets[51] : offsets[-1]]
    )
    _expect_error(
        path, f"record at offset {offsets[51]} holds .*: duplicated or out-of-order record"
    )


def test_detectors_swapped_within_pixel(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 2, 16))
    data, offsets = gf.build(spectra, deadtime)
    a, b, c = offsets[4], offsets[5], offsets[6]
    swapped = data[:a] + data[b:c] + data[a:b] + data[c:]
    _expect_error(
        gf.write(tmp_path / "swap.GeoPIXE", swapped),
        f"record at offset {a} holds .*missing or out of order",
    )


def test_record_outside_header_dimensions(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 1, 16))
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<H", bad, offsets[3] + 6, 7)  # x = 7 in a 2-column map
    _expect_error(
        gf.write(tmp_path / "x.GeoPIXE", bytes(bad)),
        rf"offset {offsets[3]} holds \(x=7, y=1, detector=0\), outside the header",
    )


@pytest.mark.parametrize(
    ("length", "why"), [(15, "short"), (18, "not 16 + 4k"), (16 + 4 * 17, "more pairs than Chan")]
)
def test_impossible_record_length(tmp_path, length, why):
    spectra, deadtime = gf.random_map((2, 2, 1, 16))
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<I", bad, offsets[1] + 2, length)
    _expect_error(
        gf.write(tmp_path / "len.GeoPIXE", bytes(bad)),
        f"record at offset {offsets[1]} has length {length}",
    )


def test_length_running_past_eof_is_corruption_when_implausible(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 1, 16))
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    struct.pack_into("<I", bad, offsets[3] + 2, 10**6)  # cannot hold 16 channels: not a truncation
    _expect_error(
        gf.write(tmp_path / "eof.GeoPIXE", bytes(bad)),
        f"record at offset {offsets[3]} has length 1000000",
    )


def test_bad_tag(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 1, 16))
    data, offsets = gf.build(spectra, deadtime)
    bad = bytearray(data)
    bad[offsets[2] : offsets[2] + 2] = b"XP"
    _expect_error(
        gf.write(tmp_path / "tag.GeoPIXE", bytes(bad)),
        f"record at offset {offsets[2]} starts with b'XP', expected 'DP'",
    )


def test_more_detectors_than_header_dets(tmp_path):
    spectra, deadtime = gf.random_map((2, 2, 3, 16))
    data, offsets = gf.build(spectra, deadtime, gf.header_fields(2, 2, 2, 16))
    _expect_error(
        gf.write(tmp_path / "d.GeoPIXE", data),
        rf"record at offset {offsets[2]} holds \(x=0, y=0, detector=2\), "
        r"outside the header's Dets = 2",
    )
