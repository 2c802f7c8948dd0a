import os

import dask.array as da
import numpy as np
import pytest

from xrfdask import open_geopixe
from xrfdask.io.npy import to_npy


def test_streams_a_map_to_npy(sample_path, sample_dense, tmp_path):
    out = to_npy(open_geopixe(sample_path, chunks=3).spectra, tmp_path / "cube.npy")
    back = np.load(out, mmap_mode="r")
    assert back.shape == (10, 20, 2, 4096) and back.dtype == np.uint16
    np.testing.assert_array_equal(back, sample_dense)


def test_any_chunking_and_dtype(tmp_path):
    x = np.arange(7 * 5 * 3, dtype=np.float64).reshape(7, 5, 3)
    out = to_npy(da.from_array(x, chunks=(2, 2, 1)), tmp_path / "x.npy")
    np.testing.assert_array_equal(np.load(out), x)


def test_no_overwrite_and_no_leftovers(tmp_path):
    target = tmp_path / "x.npy"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        to_npy(da.zeros((2, 2)), target)
    assert target.read_bytes() == b"keep"

    def boom(block):
        raise RuntimeError("failed block")

    bad = da.zeros((4, 2), chunks=2).map_blocks(boom, dtype=float)
    with pytest.raises(RuntimeError, match="failed block"):
        to_npy(bad, tmp_path / "bad.npy")
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]
