import os
import struct
import warnings

import numpy as np
import pytest
import xarray as xr

from tests import geopixe_files as gf
from xrfdask import FormatError, TruncatedMapWarning, XrfdaskWarning, index_geopixe, open_geopixe
from xrfdask.io.geopixe.header import read_header
from xrfdask.io.geopixe.writer import to_geopixe


def _records(path):
    """(header 16 bytes, body bytes) of every record, parsed with struct."""
    data = path.read_bytes()
    (h,) = struct.unpack_from("<H", data)
    pos, out = 2 + h, []
    while pos < len(data):
        length = struct.unpack_from("<I", data, pos + 2)[0]
        out.append((data[pos : pos + 16], data[pos + 16 : pos + length]))
        pos += length
    return out


def test_unmodified_rewrite_is_byte_identical(sample_path, tmp_path):
    out = to_geopixe(open_geopixe(sample_path, chunks=3), tmp_path / "same.GeoPIXE")
    assert open(out, "rb").read() == sample_path.read_bytes()


@pytest.mark.parametrize(
    ("crop", "size", "h", "header"),
    [
        # Expected outputs of ReadoutXFM's writer for the sample (spec geopixe.md 3.4).
        (
            {"x": slice(5, 15), "y": slice(2, 8)},
            431_218,
            1160,
            (10, 6, 0.28515625, 0.17102803738317757),
        ),
        (
            {"x": slice(15, 40), "y": slice(7, 30)},
            112_734,
            1160,
            (5, 3, 0.142578125, 0.08551401869158878),
        ),
    ],
)
def test_crops_match_readoutxfm(sample_path, tmp_path, crop, size, h, header):
    ds = open_geopixe(sample_path)
    out = tmp_path / "crop.GeoPIXE"
    to_geopixe(ds.isel(**crop), out)
    assert os.path.getsize(out) == size
    hdr = read_header(out)
    fh = hdr.file_header
    assert hdr.length == h
    assert (fh["Xres"], fh["Yres"], fh["Width (mm)"], fh["Height (mm)"]) == header
    back = open_geopixe(out)
    np.testing.assert_array_equal(back.spectra.values, ds.spectra.isel(**crop).values)
    np.testing.assert_array_equal(back.deadtime.values, ds.deadtime.isel(**crop).values)
    # Records re-based to the crop origin; bodies copied byte for byte.
    x0, y0 = crop["x"].start, crop["y"].start
    source = {struct.unpack_from("<3H", head, 6): body for head, body in _records(sample_path)}
    for head, body in _records(out):
        x, y, d = struct.unpack_from("<3H", head, 6)
        assert source[(x + x0, y + y0, d)] == body


def test_edited_deadtime_is_written(sample_path, tmp_path):
    ds = open_geopixe(sample_path)
    edited = ds.assign(deadtime=xr.full_like(ds.deadtime, 33.0))
    out = to_geopixe(edited, tmp_path / "dt33.GeoPIXE")
    assert os.path.getsize(out) == sample_path.stat().st_size
    idx = index_geopixe(out)
    assert (idx.deadtime.values == 33.0).all()
    np.testing.assert_array_equal(open_geopixe(out).spectra.values, ds.spectra.values)


def test_selection_by_coordinate_and_detector(sample_path, tmp_path):
    ds = open_geopixe(sample_path)
    part = ds.sel(x=slice(0.1, 0.3)).isel(detector=[1])
    out = to_geopixe(part, tmp_path / "det1.GeoPIXE")
    hdr = read_header(out)
    assert hdr.dets == 1 and hdr.xres == part.sizes["x"]
    back = open_geopixe(out)
    np.testing.assert_array_equal(back.spectra.values, part.spectra.values)


def test_strided_crop_keeps_physical_size(sample_path, tmp_path):
    ds = open_geopixe(sample_path)
    out = to_geopixe(ds.isel(x=slice(0, None, 2)), tmp_path / "s.GeoPIXE")
    fh = read_header(out).file_header
    assert fh["Xres"] == 10
    assert fh["Width (mm)"] == pytest.approx(0.5703125)


def test_irregular_grid_is_refused(sample_path, tmp_path):
    ds = open_geopixe(sample_path).isel(x=[0, 1, 5])
    with pytest.raises(FormatError, match="'x' coordinate is not evenly spaced"):
        to_geopixe(ds, tmp_path / "irr.GeoPIXE")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ndet", [1, 3])
def test_round_trip_any_detector_count(tmp_path, ndet):
    spectra, deadtime = gf.random_map((5, 6, ndet, 300), seed=ndet)
    path = gf.write(
        tmp_path / "in.GeoPIXE",
        gf.build(spectra, deadtime, gf.header_fields(6, 5, ndet, 300, 5.0))[0],
    )
    ds = open_geopixe(path, chunks=2)
    out = to_geopixe(ds, tmp_path / "out.GeoPIXE")
    assert open(out, "rb").read() == path.read_bytes()


def test_round_trip_truncated_map(tmp_path, sample_path):
    data = sample_path.read_bytes()
    idx = index_geopixe(sample_path)
    cut = gf.write(tmp_path / "cut.GeoPIXE", data[: int(idx.offset[301]) + 50])
    with pytest.warns(TruncatedMapWarning):
        ds = open_geopixe(cut)
    out = to_geopixe(ds, tmp_path / "again.GeoPIXE")
    with pytest.warns(TruncatedMapWarning, match="map ends after 301 of 320 records"):
        back = open_geopixe(out)
    np.testing.assert_array_equal(back.spectra.values, ds.spectra.values)
    np.testing.assert_array_equal(back.present.values, ds.present.values)
    assert read_header(out).yres == 8


def test_map_from_memory_without_header(tmp_path):
    rng = np.random.default_rng(1)
    counts = rng.poisson(3, size=(4, 5, 2, 128)).astype(np.int32)
    ds = xr.Dataset(
        {"spectra": (("y", "x", "detector", "channel"), counts)},
        coords={
            "y": ("y", np.arange(4) * 2.0, {"units": "um"}),
            "x": ("x", np.arange(5) * 2.0, {"units": "um"}),
            "channel": np.arange(128),
            "energy": ("channel", np.arange(128) * 0.02),
        },
    )
    out = to_geopixe(ds, tmp_path / "mem.GeoPIXE")
    hdr = read_header(out)
    assert (hdr.xres, hdr.yres, hdr.dets, hdr.nchan, hdr.gain_ev) == (5, 4, 2, 128, 20.0)
    assert hdr.width_mm == pytest.approx(0.010)
    back = open_geopixe(out)
    np.testing.assert_array_equal(back.spectra.values, counts)
    assert (back.deadtime.values == 0).all()


def test_counts_that_do_not_fit_uint16_fail_cleanly(tmp_path):
    counts = np.zeros((2, 2, 1, 8), dtype=np.int64)
    counts[1, 0, 0, 3] = 70_000
    ds = xr.Dataset({"spectra": (("y", "x", "detector", "channel"), counts)})
    with pytest.raises(
        FormatError, match=r"pixel \(x=0, y=1, detector=0\) holds 70000 counts in channel 3"
    ):
        to_geopixe(ds, tmp_path / "big.GeoPIXE")
    assert os.listdir(tmp_path) == []  # no half-written output
    counts[1, 0, 0, 3] = 0
    counts[0, 1, 0, 2] = -1
    with pytest.raises(FormatError, match="holds -1 counts"):
        to_geopixe(ds.assign(spectra=(ds.spectra.dims, counts)), tmp_path / "neg.GeoPIXE")
    fractional = counts.astype(float)
    fractional[0, 1, 0, 2] = 2.5
    with pytest.raises(FormatError, match="holds 2.5 counts"):
        to_geopixe(ds.assign(spectra=(ds.spectra.dims, fractional)), tmp_path / "frac.GeoPIXE")


def test_existing_file_is_not_overwritten_by_default(sample_path, tmp_path):
    target = tmp_path / "keep.GeoPIXE"
    target.write_bytes(b"precious")
    ds = open_geopixe(sample_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_geopixe(ds, target)
    assert target.read_bytes() == b"precious"
    to_geopixe(ds, target, overwrite=True)
    assert target.read_bytes() == sample_path.read_bytes()


def test_failure_midway_leaves_previous_file(sample_path, tmp_path):
    target = tmp_path / "out.GeoPIXE"
    target.write_bytes(b"previous")
    ds = open_geopixe(sample_path, chunks=2)
    counts = ds.spectra.astype(np.int64)
    counts = counts.where(~((counts.y == counts.y[-1]) & (counts.channel == 5)), 10**6)
    with pytest.raises(FormatError):
        to_geopixe(ds.assign(spectra=counts), target, overwrite=True)
    assert target.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["out.GeoPIXE"]


def test_holes_inside_map_written_as_empty_records(sample_path, tmp_path):
    ds = open_geopixe(sample_path)
    present = ds.present.values.copy()
    present[3, 4, 1] = False
    with pytest.warns(XrfdaskWarning, match="1 record"):
        out = to_geopixe(ds.assign(present=(ds.present.dims, present)), tmp_path / "hole.GeoPIXE")
    back = open_geopixe(out)
    assert not back.spectra.values[3, 4, 1].any()
    assert back.deadtime.values[3, 4, 1] == 0
    np.testing.assert_array_equal(back.spectra.values[3, 4, 0], ds.spectra.values[3, 4, 0])


def test_repeated_detector_blocks_survive_a_round_trip(tmp_path):
    detectors = [{"Idx": 0, "Area (mm²)": 150.0}, {"Idx": 1, "Area (mm²)": 50.0}]
    spectra, deadtime = gf.random_map((2, 3, 2, 32))
    data, _ = gf.build(spectra, deadtime, gf.header_fields(3, 2, 2, 32), detectors)
    path = gf.write(tmp_path / "dets.GeoPIXE", data)
    ds = open_geopixe(path)
    assert ds.attrs["geopixe_header"]["Detector"] == detectors
    out = to_geopixe(ds, tmp_path / "out.GeoPIXE")
    assert read_header(out).detectors == detectors
    one = to_geopixe(ds.isel(detector=[1]), tmp_path / "one.GeoPIXE")
    assert read_header(one).detectors == [detectors[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(open_geopixe(one).spectra.values, spectra[:, :, 1:])


def test_channel_selections_keep_their_energies(sample_path, sample_dense, tmp_path):
    ds = open_geopixe(sample_path)
    part = ds.isel(channel=slice(1000, 3000))
    back = open_geopixe(to_geopixe(part, tmp_path / "part.GeoPIXE"))
    np.testing.assert_array_equal(
        back.spectra.isel(channel=slice(1000, 3000)).values, sample_dense[..., 1000:3000]
    )
    assert not back.spectra.isel(channel=slice(0, 1000)).values.any()
    # A map without a GeoPIXE header, every second channel: Chan covers the numbers kept and
    # the gain is per channel number.
    mem = xr.Dataset(
        {
            "spectra": (
                ("y", "x", "detector", "channel"),
                sample_dense[:2, :3, :, 100:200:2].astype(np.int32),
            )
        },
        coords={
            "channel": np.arange(100, 200, 2),
            "energy": ("channel", np.arange(100, 200, 2) * 0.01),
        },
    )
    out = to_geopixe(mem, tmp_path / "strided.GeoPIXE")
    hdr = read_header(out)
    assert hdr.nchan == 199 and hdr.gain_ev == pytest.approx(10.0)
    back = open_geopixe(out)
    np.testing.assert_array_equal(
        back.spectra.values[..., 100:200:2], sample_dense[:2, :3, :, 100:200:2]
    )
    assert float(back.energy[150]) == pytest.approx(1.5)
