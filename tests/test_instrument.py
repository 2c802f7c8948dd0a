"""Instrument attributes: filled once by the GeoPIXE reader, serialisable, kept by the h5 layout."""

from __future__ import annotations

import json

import pytest

import xrfdask as xd
from xrfdask.datasets import example_geopixe
from xrfdask.instrument import DETECTOR_ATTRS, INSTRUMENT_ATTRS, detector_value, map_value
from xrfdask.io.geopixe.reader import instrument_attrs
from xrfdask.io.h5layout import open_h5, to_h5

HEADER = {
    "File Header": {"Dets": 2},
    "X-ray Source": {"KV": 40.0, "UA (µA)": 150.0, "Elt": "W", "Incid (°)": 60.0,
                     "Take (°)": 30.0, "Scat (°)": 95.0},
    "Detector": [  # out of order: matched by Idx
        {"Idx": 1, "Elt": 32, "Thick (mm)": 1.0, "Win": 2, "WThick (µm)": 8.0},
        {"Idx": 0, "Elt": 14, "Thick (mm)": 0.45, "DLThick (µm)": 0.05, "Win": 1,
         "WThick (µm)": 12.5, "Area (mm²)": 50.0},
    ],
}  # fmt: skip


def test_geopixe_header_to_instrument_attributes():
    attrs = instrument_attrs(HEADER, 3)
    assert set(attrs) <= set(INSTRUMENT_ATTRS)
    assert attrs["tube_element"] == "W" and attrs["tube_kv"] == 40.0
    assert attrs["tube_current_ua"] == 150.0
    assert (attrs["incidence_angle_deg"], attrs["takeoff_angle_deg"]) == (60.0, 30.0)
    assert attrs["scatter_angle_deg"] == 95.0
    assert attrs["detector_crystal"] == ["Si", "Ge", None]  # a third detector without a block
    assert attrs["detector_crystal_thickness_mm"] == [0.45, 1.0, None]
    assert attrs["detector_window"] == ["Be", None, None]  # window type 2 is not beryllium
    assert attrs["detector_window_thickness_um"] == [12.5, None, None]
    assert attrs["detector_area_mm2"] == [50.0, None, None]
    assert json.loads(json.dumps(attrs)) == attrs
    assert detector_value(attrs, "detector_crystal", 1) == "Ge"
    assert detector_value(attrs, "detector_crystal", 2) is None
    assert detector_value(attrs, "detector_crystal", 7) is None
    assert map_value(attrs, "tube_kv") == 40.0 and map_value(attrs, "dwell_ms") is None


def test_header_without_instrument_blocks():
    assert instrument_attrs({"File Header": {}}, 2) == {}
    bad = {"X-ray Source": {"KV": "n/a"}, "Detector": {"Idx": 0, "Elt": 14}}  # one block, a dict
    attrs = instrument_attrs(bad, 1)
    assert "tube_kv" not in attrs and attrs["detector_crystal"] == ["Si"]


@pytest.fixture(scope="module")
def small_map(tmp_path_factory):
    return xd.open_geopixe(example_geopixe(tmp_path_factory.mktemp("map"), shape=(3, 4)))


def test_reader_fills_the_attributes_and_h5_keeps_them(small_map, tmp_path):
    ds = small_map
    assert ds.attrs["detector_crystal"] == ["Si", "Si"] and ds.attrs["tube_kv"] == 50.0
    assert "geopixe_header" in ds.attrs  # kept: the .GeoPIXE writer needs it
    to_h5(ds, tmp_path / "map.h5")
    back = open_h5(tmp_path / "map.h5")
    for name in INSTRUMENT_ATTRS:
        if name in ds.attrs:
            assert back.attrs[name] == ds.attrs[name], name
    assert set(DETECTOR_ATTRS) <= set(back.attrs)
