"""Damaged or inconsistent layout files: one-line FormatError naming the file and the dataset."""

import warnings

import h5py
import numpy as np
import pytest

from xrfdask import FormatError
from xrfdask.io import fastpaths
from xrfdask.io.h5layout import open_h5, open_zarr


def good_file(path, n=2):
    with h5py.File(path, "w") as f:
        for d in range(n):
            f[f"raw/channel{d:02d}/spectra"] = np.ones((4, 5, 16), np.uint32)
            f[f"raw/channel{d:02d}/icr"] = np.ones((4, 5))
            f[f"raw/channel{d:02d}/ocr"] = np.ones((4, 5))
        f["raw/I0"] = np.ones((4, 5))
        f["mot1"] = np.ones((4, 5))
        f["mot2"] = np.ones((4, 5))
    return path


def _set(f, name, data):
    if name in f:
        del f[name]
    f[name] = data


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.__delitem__("raw"), "group 'raw' is missing"),
        (lambda f: [f.__delitem__(f"raw/channel0{d}") for d in (0, 1)], "no 'raw/channelXX' group"),
        (
            lambda f: f.__delitem__("raw/channel01/spectra"),
            "dataset 'raw/channel01/spectra' is missing",
        ),
        (
            lambda f: _set(f, "raw/channel00/spectra", np.ones((4, 5, 2, 16))),
            "'raw/channel00/spectra' has shape \\(4, 5, 2, 16\\), "
            "expected rows x columns x channels",
        ),
        (
            lambda f: _set(f, "raw/channel01/spectra", np.ones((4, 6, 16))),
            "'raw/channel01/spectra' covers 4 x 6 pixels but 'raw/channel00/spectra' covers 4 x 5",
        ),
        (
            lambda f: _set(f, "raw/channel01/spectra", np.ones((4, 5, 8))),
            "'raw/channel01/spectra' has 8 channels",
        ),
        (
            lambda f: _set(f, "raw/channel00/icr", np.ones((5, 4))),
            "'raw/channel00/icr' has shape \\(5, 4\\), expected rows x columns = \\(4, 5\\)",
        ),
        (lambda f: _set(f, "raw/I0", np.ones(7)), "'raw/I0' has shape \\(7,\\)"),
        (lambda f: _set(f, "mot1", np.ones((3, 5))), "'mot1' has shape \\(3, 5\\)"),
        (lambda f: f.__delitem__("raw/channel01/ocr"), "'ocr' exists for some channels only"),
        (
            lambda f: _set(f, "raw/channel00/sumspec", np.ones(15)),
            "'raw/channel00/sumspec' has shape \\(15,\\)",
        ),
    ],
)
def test_inconsistent_files(tmp_path, damage, message):
    path = good_file(tmp_path / "bad.h5")
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(FormatError, match=message) as info:
        open_h5(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("hello")
    with pytest.raises(FormatError, match="not a readable HDF5 file"):
        open_h5(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_h5(tmp_path / "missing.h5")
    with pytest.raises(FileNotFoundError, match="no such zarr store"):
        open_zarr(tmp_path / "missing.zarr")


def test_truncated_hdf5_file(tmp_path):
    path = good_file(tmp_path / "cut.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=str(path)):
        _ = open_h5(path).spectra.values


# Found by benchmarks/fuzz_inputs.py (issue 14): each of these escaped as h5py's OSError or
# RuntimeError, numpy's DTypePromotionError, json's JSONDecodeError, a TypeError or an xarray
# ValueError, or returned strings as spectra.


def _damage(path, offset, data):
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _set(f, "raw/channel00/spectra", np.full((4, 5, 16), b"ab", "S2")),
         r"dataset 'raw/channel00/spectra' holds \|S2 values, expected numbers"),
        (lambda f: _set(f, "raw/channel01/icr", np.zeros((4, 5), [("a", "<f4"), ("b", "<i2")])),
         r"dataset 'raw/channel01/icr' holds .* values, expected numbers"),
        (lambda f: _set(f, "raw/channel00/sumspec", np.full(16, "x", h5py.string_dtype())),
         r"dataset 'raw/channel00/sumspec' has shape \(16,\) \(<U1\), expected \(16,\) numbers"),
        (lambda f: f["raw"].attrs.__setitem__("xrfdask_attrs", "null"),
         r"attribute 'xrfdask_attrs' of 'raw' is 'null', expected a JSON object"),
        (lambda f: f["raw"].attrs.__setitem__("xrfdask_attrs", "{"),
         r"attribute 'xrfdask_attrs' of 'raw' is '\{', expected a JSON object"),
        (lambda f: f["raw"].attrs.update(energy_gain_keV="abc"),
         r"attribute 'energy_gain_keV' of 'raw' is 'abc', expected a finite number"),
        (lambda f: f["raw"].attrs.update(energy_gain_keV=0.01, energy_offset_keV=np.nan),
         r"attribute 'energy_offset_keV' of 'raw' is nan, expected a finite number"),
    ],
    ids=["string-spectra", "compound-icr", "string-sumspec", "attrs-null", "attrs-broken",
         "gain-text", "offset-nan"],
)  # fmt: skip
def test_wrongly_typed_datasets_and_attributes(tmp_path, damage, message):
    path = good_file(tmp_path / "bad.h5")
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(FormatError, match=message) as info:
        open_h5(path).spectra.sum().compute()
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unusable_detector_labels_give_way_to_the_channel_names(tmp_path):
    path = good_file(tmp_path / "labels.h5")
    for labels in ("[[1], [2]]", '["a", "a"]', "[0, 1, 2]", "junk"):
        with h5py.File(path, "a") as f:
            f["raw"].attrs["xrfdask_detectors"] = labels
        assert open_h5(path).detector.values.tolist() == ["channel00", "channel01"]


def test_damaged_superblock_is_a_format_error(tmp_path):
    path = good_file(tmp_path / "super.h5")
    _damage(path, 9, b"\xff")  # the free-space version of superblock 0: HDF5 refuses the file
    with pytest.raises(FormatError, match="not a readable HDF5 file"):
        open_h5(path)


@pytest.mark.parametrize("name", ["raw/channel00/sumspec", "raw/channel00/spectra"])
def test_damaged_chunk_read_through_h5py_is_a_format_error(tmp_path, name):
    # sumspec is read when opening, spectra (with a checksum: h5py reads them) in the tasks
    path = good_file(tmp_path / "chunk.h5")
    with h5py.File(path, "a") as f:
        value = f[name][()] if name in f else np.full(16, 20.0)
        if name in f:
            del f[name]
        f.create_dataset(name, data=value, chunks=value.shape, fletcher32=True)
        info = f[name].id.get_chunk_info(0)
    _damage(path, info.byte_offset, b"\x5a" * info.size)  # the chunk overwritten
    with pytest.raises(FormatError, match=f"dataset '{name}' cannot be read") as error:
        open_h5(path).spectra.compute()
    assert "\n" not in str(error.value)


def test_dangling_link_inside_a_path_is_a_missing_dataset(tmp_path):
    path = good_file(tmp_path / "link.h5")
    with h5py.File(path, "a") as f:
        del f["raw/channel01"]
        f["raw/channel01"] = h5py.SoftLink("/nowhere/at/all")
        del f["raw/I0"]
        f["raw/sub"] = h5py.SoftLink("/nowhere/at/all")
    ds = open_h5(path)  # channel01 is no group: one detector
    assert ds.sizes["detector"] == 1 and "I0" not in ds


@pytest.mark.parametrize("ebias", [100000, 0])
def test_a_float_type_numpy_cannot_hold_is_a_format_error(tmp_path, ebias):
    # A damaged float type (its exponent bias): h5py's ValueError ("Insufficient precision in
    # available types") or RuntimeError when the dtype is asked for.
    path = good_file(tmp_path / "type.h5")
    with h5py.File(path, "a") as f:
        del f["raw/channel00/icr"]
        tid = h5py.h5t.IEEE_F64LE.copy()
        tid.set_ebias(ebias)
        h5py.h5d.create(f.id, b"raw/channel00/icr", tid, h5py.h5s.create_simple((4, 5)))
    with pytest.raises(FormatError, match="dataset 'raw/channel00/icr' has a data type numpy"):
        open_h5(path)


def test_inf_motor_positions_and_spectra_without_channels(tmp_path):
    # numpy's RuntimeWarning (inf - inf) deciding the grid of an inf motor, and a ValueError
    # reshaping spectra with no channel in the fast sum.
    path = good_file(tmp_path / "odd.h5")
    with h5py.File(path, "a") as f:
        _set(f, "mot1", np.full((4, 5), np.inf))
        for d in (0, 1):
            _set(f, f"raw/channel0{d}/spectra", np.ones((4, 5, 0), np.uint32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = open_h5(path)
        assert ds.x.attrs == {"units": "pixel"}
        assert fastpaths.sum_spectrum(ds.spectra.data).compute().shape == (2, 0)


def test_a_group_name_that_is_not_utf8_is_no_detector(tmp_path):
    # Found by benchmarks/fuzz_inputs.py: h5py lists such a name as bytes (TypeError before).
    path = good_file(tmp_path / "name.h5")
    with h5py.File(path, "a") as f:
        f["raw"].create_group(b"channel\xff")
        assert any(isinstance(k, bytes) for k in f["raw"].keys())
    ds = open_h5(path)
    assert ds.sizes["detector"] == 2
