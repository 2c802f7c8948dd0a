"""Truncated and byte-corrupted files: only FormatError or documented warnings, never wrong spectra.

A corrupted count cannot be detected (the format has no checksum), so the property is: whatever
opens, every record whose bytes were not touched decodes to exactly its true spectrum at its true
place. Misplaced or shifted data (ReadoutXFM's failure mode) would break that.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import geopixe_files as gf
from xrfdask import FormatError, XrfdaskWarning, open_geopixe

SHAPE = (4, 5, 2, 48)
SPECTRA, DEADTIME = gf.random_map(SHAPE, seed=7, density=0.4)
DATA, OFFSETS = gf.build(SPECTRA, DEADTIME)
ENDS = OFFSETS[1:] + [len(DATA)]


def _open_and_read(path, rows):
    """Open, decode everything; return (spectra, present) or None if a FormatError was raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", XrfdaskWarning)  # documented warnings are fine
        try:
            ds = open_geopixe(path, chunks=rows, cache=False)
            return ds.spectra.values, ds.present.values
        except FormatError:
            return None


def _check_untouched_records(spectra, present, touched: set[int]):
    ny, nx, nd, _ = SHAPE
    assert spectra.shape[1:3] == (nx, nd)
    assert spectra.shape[0] <= ny
    for k, (start, end) in enumerate(zip(OFFSETS, ENDS, strict=True)):
        pixel, d = divmod(k, nd)
        y, x = divmod(pixel, nx)
        if y >= spectra.shape[0] or not present[y, x, d]:
            assert not spectra[y, x, d].any() if y < spectra.shape[0] else True
            continue
        if touched.isdisjoint(range(start, end)):
            got = spectra[y, x, d]
            np.testing.assert_array_equal(got[: SHAPE[3]], SPECTRA[y, x, d], err_msg=f"record {k}")
            assert not got[SHAPE[3] :].any()


@settings(max_examples=150)
@given(cut=st.integers(0, len(DATA) - 1), rows=st.integers(1, 4))
def test_truncated_files(tmp_path_factory, cut, rows):
    path = gf.write(tmp_path_factory.mktemp("t") / "t.GeoPIXE", DATA[:cut])
    result = _open_and_read(path, rows)
    if result is None:
        # Only a cut inside the header or before the first complete record may fail.
        assert cut < ENDS[0]
        return
    spectra, present = result
    complete = sum(1 for end in ENDS if end <= cut)
    assert present.reshape(-1)[:complete].all() and not present.reshape(-1)[complete:].any()
    _check_untouched_records(spectra, present, touched=set())


@settings(max_examples=300)
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(DATA) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ),
    rows=st.integers(1, 4),
)
def test_corrupted_bytes(tmp_path_factory, flips, rows):
    data = bytearray(DATA)
    touched = set()
    for pos, value in flips:
        if data[pos] != value:
            data[pos] = value
            touched.add(pos)
    path = gf.write(tmp_path_factory.mktemp("c") / "c.GeoPIXE", bytes(data))
    result = _open_and_read(path, rows)
    if result is not None:
        _check_untouched_records(*result, touched=touched)


@pytest.mark.parametrize("pos", [OFFSETS[3] + 2, OFFSETS[3] + 6, OFFSETS[3] + 8, OFFSETS[3] + 10])
def test_corrupt_record_header_fields_always_fail(tmp_path, pos):
    # Length, x, y, detector: any change is caught (a deadtime or count change cannot be).
    data = bytearray(DATA)
    data[pos] ^= 0x01
    assert _open_and_read(gf.write(tmp_path / "h.GeoPIXE", bytes(data)), 2) is None
