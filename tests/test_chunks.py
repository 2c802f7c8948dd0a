"""The bands-of-rows rule (xrfdask.chunks) and the planners that follow it."""

import dask
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xrfdask import chunks
from xrfdask.io.geopixe.reader import plan_chunks

MiB = 2**20


def test_bands_of_whole_rows_within_the_budget():
    # 150 columns x 4096 channels of uint32: 2.4 MB a row, 6 rows in 16 MiB
    y, x, c = chunks.bands((200, 150, 4096), 4, budget="16MiB")
    assert set(y[:-1]) == {6} and sum(y) == 200 and x == (150,) and c == (4096,)
    with dask.config.set({"xrfdask.chunk-size": "32MiB"}):
        assert chunks.bands((200, 150, 4096), 4)[0][0] == 13


def test_bands_follow_the_files_own_chunks():
    # xrf_proc's automatic chunks (13, 10, 256): whole stored chunks per band, even over budget
    y, x, _ = chunks.bands((200, 150, 4096), 4, stored=(13, 10, 256), budget="16MiB")
    assert set(y[:-1]) == {13} and y[-1] == 200 - 15 * 13 and x == (150,)
    y, _, _ = chunks.bands((200, 150, 4096), 4, stored=(13, 10, 256), budget="64MiB")
    assert set(y[:-1]) == {26}


def test_a_row_over_the_budget_is_cut_along_x():
    y, x, _ = chunks.bands((5, 1000, 4096), 2, budget=MiB)  # 8 kB a pixel: 128 per block
    assert y == (1,) * 5 and set(x[:-1]) == {128} and sum(x) == 1000
    _, x, _ = chunks.bands((5, 1000, 4096), 2, stored=(1, 50, 4096), budget=MiB)
    assert set(x[:-1]) == {100}  # a multiple of the stored columns


@given(
    ny=st.integers(0, 400),
    nx=st.integers(1, 400),
    nchan=st.sampled_from([1, 256, 4096]),
    itemsize=st.sampled_from([1, 2, 4, 8]),
    budget=st.integers(1, 64 * MiB),
    stored=st.one_of(st.none(), st.tuples(st.integers(1, 30), st.integers(1, 30), st.just(256))),
)
def test_the_rule(ny, nx, nchan, itemsize, budget, stored):
    y, x, c = chunks.bands((ny, nx, nchan), itemsize, stored=stored, budget=budget)
    assert sum(y) == ny and sum(x) == nx and c == (nchan,)
    row = nx * nchan * itemsize
    step_y = min(stored[0], ny) if stored else 1
    step_x = min(stored[1], nx) if stored else 1
    if row <= budget:
        assert x == (nx,)  # x whole
        assert all(r % max(1, step_y) == 0 for r in y[:-1])
        # as many rows as fit, rounded down to the stored step, but at least one step
        assert (
            y[0] == min(ny, max(step_y, (budget // row) - (budget // row) % max(1, step_y)))
            or ny == 0
        )
    else:
        assert set(y) <= {1, 0}  # one row per band, cut along x
        assert all(b % step_x == 0 for b in x[:-1])
        pixel = nchan * itemsize
        assert x[0] * pixel <= budget or x[0] == step_x or x[0] == nx


class _Index:
    def __init__(self, nrows, xres, ndet=2, nchan=4096):
        self.nrows, self.xres, self.ndet, self.nchan = nrows, xres, ndet, nchan


def test_geopixe_planner_follows_the_rule():
    index = _Index(530, 256)  # 256 columns x 2 detectors x 4096 channels of uint16: 4 MiB a row
    with dask.config.set({"xrfdask.chunk-size": "16MiB"}):
        y, x = plan_chunks(index)
        assert (y, x) == chunks.bands((530, 256), 2 * 4096 * 2)
        assert set(y[:-1]) == {4} and x == (256,)
        assert plan_chunks(index, "64MiB")[0][0] == 16
        assert plan_chunks(index, 10) == ((10,) * 53, (256,))
        assert plan_chunks(index, {"x": 64})[0][0] == 16  # a narrower x-block: more rows per band
    with dask.config.set({"xrfdask.chunk-size": "1MiB"}):
        y, x = plan_chunks(index)
        assert set(y) == {1} and set(x) == {64}


def test_normalize_and_bounds():
    assert chunks.normalize(None, 7, "y") == (7,) and chunks.normalize(3, 7, "y") == (3, 3, 1)
    assert chunks.normalize((2, 5), 7, "y") == (2, 5)
    with pytest.raises(ValueError, match="y chunks \\(2, 4\\) do not add up to the 7 y pixels"):
        chunks.normalize((2, 4), 7, "y")
    with pytest.raises(ValueError, match="x=0 must be positive"):
        chunks.normalize(0, 7, "x")
    assert chunks.bounds((3, 3, 1)) == [(0, 3), (3, 6), (6, 7)]
    assert chunks.split(0, 4) == (0,)


def test_storage_chunks_divide_the_written_blocks():
    # HDF5: spectra one row, about 1 MiB of columns dividing the x-block; maps one band
    assert chunks.h5_storage_chunk((200, 150, 4096), 4, 0, 13, None) == (1, 150, 4096)
    assert chunks.h5_storage_chunk((200, 1000, 4096), 4, 0, 1, 100) == (1, 50, 4096)
    assert chunks.h5_storage_chunk((200, 150), 8, 0, 13, None) == (13, 150)
    # zarr: whole rows dividing the band, about 4 MiB
    assert chunks.zarr_storage_chunk((200, 150, 4096), 4, 0, 12, None) == (1, 150, 4096)
    assert chunks.zarr_storage_chunk((200, 150, 1024), 4, 0, 12, None) == (6, 150, 1024)
    assert chunks.zarr_storage_chunk((200, 1000, 4096), 4, 0, 1, 300) == (
        1,
        150,
        4096,
    )  # 256 fit: 150 divides 300
    for band in range(1, 40):
        rows = chunks.zarr_storage_chunk((400, 30, 512), 4, 0, band)[0]
        assert band % rows == 0 and rows * 30 * 512 * 4 <= chunks.ZARR_CHUNK_TARGET or rows == 1
    assert np.prod(chunks.h5_storage_chunk((9, 9, 9, 9), 4, 0, 3, None)) > 0
