import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import geopixe_files as gf
from xrfdask import FormatError
from xrfdask.io.geopixe.header import dump_header, parse_header_text, read_header


def test_sample_header(sample_path):
    header = read_header(sample_path)
    assert header.length == 1159
    assert header.data_start == 1161
    assert (header.xres, header.yres, header.nchan, header.dets) == (20, 10, 4096, 2)
    assert header.width_mm == 0.5703125
    assert header.height_mm == 0.2850467289719626
    assert header.gain_ev == 10.0 and header.dwell_ms == 100.0
    assert header.source["Elt"] == "Mo" and header.source["KV"] == 50.0
    # The rewritten sample kept a single Detector block (Idx 1); its garbage Alpha is not trusted.
    assert [d["Idx"] for d in header.detectors] == [1]
    assert header.detectors[0]["Alpha (°)"] == pytest.approx(2.350003246570754e30)


def test_sample_header_dumps_byte_identical(sample_path):
    header = read_header(sample_path)
    assert dump_header(header.fields) == header.raw


def test_repeated_detector_blocks_are_all_kept_in_order(tmp_path):
    detectors = [
        {"Idx": 0, "Type": 5, "Area (mm²)": 150.0},
        {"Idx": 1, "Type": 5, "Area (mm²)": 30.0},
    ]
    raw = gf.header_bytes(gf.header_fields(2, 1, 2, 8), detectors)
    assert json.loads(raw)["Detector"] == detectors[1]  # what a plain json.loads would keep
    fields = parse_header_text(raw)
    assert fields["Detector"] == detectors
    # ... and they are written back as repeated keys, in order.
    text = dump_header(fields).decode()
    assert text.count('"Detector"') == 2
    assert text.index('"Idx": 0') < text.index('"Idx": 1')
    assert parse_header_text(dump_header(fields))["Detector"] == detectors


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text(max_size=8).filter(lambda k: k != "Detector"), json_values, max_size=5)
)
def test_dump_matches_readoutxfm_serialiser(fields):
    # ReadoutXFM writes json.dumps(obj, indent="\t"): our writer must produce the same bytes.
    assert dump_header(fields) == json.dumps(fields, indent="\t").encode()


def _file(tmp_path, data: bytes):
    path = tmp_path / "bad.GeoPIXE"
    path.write_bytes(data)
    return path


def test_broken_json_names_file_and_offset(tmp_path):
    text = b'{"File Header": {"Xres": 2,, "Yres": 1}}'  # the second comma is byte 27 of the text
    path = _file(tmp_path, struct.pack("<H", len(text)) + text + b"DP")
    with pytest.raises(FormatError, match=r"bad\.GeoPIXE: header JSON is broken at offset 29"):
        read_header(path)


def test_header_length_past_end_of_file(tmp_path):
    path = _file(tmp_path, struct.pack("<H", 5000) + b'{"a": 1}')
    with pytest.raises(FormatError, match="header length 5000 at offset 0 runs past the end"):
        read_header(path)


def test_no_record_tag_after_header(tmp_path):
    text = gf.header_bytes(gf.header_fields(2, 1, 1, 8))
    path = _file(tmp_path, struct.pack("<H", len(text) - 1) + text + b"DP")  # H one byte short
    with pytest.raises(FormatError, match="header JSON is broken"):
        read_header(path)
    path = _file(tmp_path, struct.pack("<H", len(text)) + text + b"XX" + bytes(14))
    with pytest.raises(
        FormatError, match=rf"expected the first pixel record 'DP' at offset {2 + len(text)}"
    ):
        read_header(path)


def test_file_without_header(tmp_path):
    path = _file(tmp_path, gf.record_bytes(0, 0, 0, 0.0, __import__("numpy").ones(4, "u2")))
    with pytest.raises(FormatError, match="has no JSON header"):
        read_header(path)


def test_empty_file(tmp_path):
    with pytest.raises(FormatError, match="too short for a GeoPIXE header"):
        read_header(_file(tmp_path, b""))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Xres": "20"}, r"'File Header/Xres' is '20', expected an integer"),
        ({"Yres": 0}, r"'File Header/Yres' is 0, expected 1\.\.65536"),
        ({"Chan": -4}, r"'File Header/Chan' is -4"),
        ({"Gain (eV)": 0}, r"'File Header/Gain \(eV\)' is 0"),
        ({"Dets": 0}, r"'File Header/Dets' is 0"),
        # Found by benchmarks/fuzz_inputs.py: int(nan) and int(inf) escaped as ValueError and
        # OverflowError, a fractional channel count was truncated, a gain of true read as 1 eV,
        # and Dets 2**63 reached the index kernel (OverflowError) when no record said otherwise.
        ({"Xres": float("nan")}, r"'File Header/Xres' is nan, expected an integer"),
        ({"Yres": float("inf")}, r"'File Header/Yres' is inf, expected an integer"),
        ({"Chan": 8.5}, r"'File Header/Chan' is 8\.5, expected an integer"),
        ({"Gain (eV)": True}, r"'File Header/Gain \(eV\)' is True"),
        ({"Dets": 2**63}, r"'File Header/Dets' is 9223372036854775808, expected an integer 1"),
    ],
)
def test_bad_header_values_name_the_key(tmp_path, change, message):
    fields = gf.header_fields(2, 1, 1, 8)
    fields["File Header"].update(change)
    text = gf.header_bytes(fields)
    path = _file(tmp_path, struct.pack("<H", len(text)) + text + b"DP")
    with pytest.raises(FormatError, match=message):
        read_header(path)


def test_integral_floats_are_integers(tmp_path):
    # Found by benchmarks/fuzz_inputs.py: Xres 2.0 was read as 2 but Dets 2.0 refused.
    fields = gf.header_fields(2, 1, 1, 8)
    fields["File Header"].update(Xres=2.0, Dets=1.0, Chan=8.0)
    text = gf.header_bytes(fields)
    header = read_header(_file(tmp_path, struct.pack("<H", len(text)) + text + b"DP"))
    assert (header.xres, header.dets, header.nchan) == (2, 1, 8)


def test_non_utf8_header(tmp_path):
    text = b'{"File Header": {"Xres": 1, "Yres": 1, "Elt": "\xff"}}'
    path = _file(tmp_path, struct.pack("<H", len(text)) + text + b"DP")
    with pytest.raises(FormatError, match="not UTF-8"):
        read_header(path)
