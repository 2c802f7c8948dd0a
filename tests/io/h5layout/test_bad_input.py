"""Damaged or inconsistent layout files: one-line FormatError naming the file and the dataset."""

import h5py
import numpy as np
import pytest

from xrfdask import FormatError
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
