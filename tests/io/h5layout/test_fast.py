"""The layout readers' fast paths: stored sum spectra (a fit reads the spectra once)."""

import h5py
import numpy as np
import pytest

import xrfdask as xd
from xrfdask.datasets import ELEMENTS
from xrfdask.io import fastpaths
from xrfdask.io.h5layout import fast, open_h5, open_zarr, to_h5, to_zarr


@pytest.fixture(scope="module")
def example():
    return xd.datasets.example_dataset(shape=(12, 10), n_detectors=1)


@pytest.fixture(scope="module")
def config(example):
    return xd.make_fit_config(example, list(ELEMENTS))


def _xrf_proc_file(path, cube, sumspec="exact"):
    """As xrf_proc's converters write it: uint32, gzip 4, h5py's automatic chunks."""
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/channel00/spectra", data=cube, compression="gzip", compression_opts=4)
        if sumspec is not None:
            value = cube.sum(axis=(0, 1)) if isinstance(sumspec, str) else sumspec
            f.create_dataset(
                "raw/channel00/sumspec", data=value, compression="gzip", compression_opts=4
            )
        f.create_dataset("raw/channel00/icr", data=np.ones(cube.shape[:2]))
        f.create_dataset("raw/channel00/ocr", data=np.ones(cube.shape[:2]))
    return path


@pytest.fixture(scope="module")
def cube(example):
    return example.spectra.values[:, :, 0, :].astype(np.uint32)


@pytest.mark.parametrize("method", ["linear", "pymca"])
def test_fit_reads_the_spectra_once_with_a_stored_sum(tmp_path, inflated, cube, config, method):
    path = _xrf_proc_file(tmp_path / "map.h5", cube)
    ds = open_h5(path)
    with h5py.File(path) as f:
        dset = f["raw/channel00/spectra"]
        nchunks = dset.id.get_num_chunks()
        channel_chunks = -(-cube.shape[2] // dset.chunks[2])
    calls = inflated
    stored = xd.fit(ds, config, method=method)
    areas = stored.peak_area.values
    auto_reads = len(calls)
    calls.clear()
    computed = xd.fit(ds, config, method=method, sum_spectrum="compute")
    expected = computed.peak_area.values
    compute_reads = len(calls)
    assert stored.attrs["sum_spectrum_source"] == "stored: raw/channel00/sumspec"
    assert computed.attrs["sum_spectrum_source"] == "computed"
    np.testing.assert_array_equal(areas, expected)
    np.testing.assert_array_equal(stored.peak_area_error.values, computed.peak_area_error.values)
    # "auto": five sampled pixels (check_sumspec) and the fit's own reads; "compute": every
    # stored chunk once more for the sum.
    sample = 5 * channel_chunks
    assert compute_reads - auto_reads == nchunks - sample
    assert auto_reads - sample < nchunks  # the fit decompresses only the chunks of its range


@pytest.mark.parametrize(
    "bad",
    ["missing", "nan", "negative", "fraction", "mean"],
)  # one of another length: the reader refuses the file (test_bad_input)
def test_a_doubtful_stored_sum_is_not_used(tmp_path, cube, bad):
    exact = cube.sum(axis=(0, 1)).astype(np.float64)
    value = {
        "missing": None,
        "nan": np.where(np.arange(exact.size) == 5, np.nan, exact),
        "negative": exact - 10 * (np.arange(exact.size) == 7),
        "fraction": exact + 0.5,
        "mean": exact / (cube.shape[0] * cube.shape[1]),  # a normalised sum spectrum
    }[bad]
    ds = open_h5(_xrf_proc_file(tmp_path / "map.h5", cube, value))
    assert fastpaths.stored_sum_spectrum(ds.spectra.data) is None


def test_stored_sum_only_for_the_readers_own_array(tmp_path, cube):
    ds = open_h5(_xrf_proc_file(tmp_path / "map.h5", cube))
    sums, source = fastpaths.stored_sum_spectrum(ds.spectra.data)
    np.testing.assert_array_equal(sums, cube.sum(axis=(0, 1))[None])
    assert source == "raw/channel00/sumspec"
    assert fastpaths.stored_sum_spectrum(ds.spectra.data[:5]) is None  # a crop
    assert fastpaths.stored_sum_spectrum(ds.spectra.data + 1) is None
    assert fastpaths.stored_sum_spectrum(ds.icr.data) is None


def test_xrfdask_writers_store_an_exact_sum_even_of_a_crop(tmp_path, example):
    crop = example.isel(y=slice(2, 9), x=slice(1, 7))
    h5 = to_h5(crop, tmp_path / "crop.h5")
    zs = to_zarr(open_h5(h5), tmp_path / "crop.zarr")
    expected = crop.spectra.values.sum(axis=(0, 1), dtype=np.float64)
    for ds in (open_h5(h5), open_zarr(zs)):
        sums, _ = fastpaths.stored_sum_spectrum(ds.spectra.data)
        np.testing.assert_array_equal(sums, expected)
    with h5py.File(h5) as f:
        assert (
            f["raw/channel00/sumspec"].attrs[fast.STORAGE_ATTR]
            == f["raw/channel00/spectra"].id.get_storage_size()
        )


def test_spectra_rewritten_after_the_sum_was_stored(tmp_path, example):
    h5 = to_h5(example, tmp_path / "map.h5")
    with h5py.File(h5, "r+") as f:  # as xrf_proc's norm_xrf_batch(snake=True) rewrites raw spectra
        spectra = f["raw/channel00/spectra"][()]
        del f["raw/channel00/spectra"]
        f.create_dataset(
            "raw/channel00/spectra", data=spectra[::-1] // 2, compression="gzip", compression_opts=4
        )
    assert fastpaths.stored_sum_spectrum(open_h5(h5).spectra.data) is None


def test_zarr_fit_uses_the_stored_sum(tmp_path, example, config):
    zs = to_zarr(example, tmp_path / "map.zarr")
    ds = open_zarr(zs)
    a = xd.fit(ds, config)
    b = xd.fit(ds, config, sum_spectrum="compute")
    assert a.attrs["sum_spectrum_source"] == "stored: raw/channel00/sumspec"
    np.testing.assert_array_equal(a.peak_area.values, b.peak_area.values)
