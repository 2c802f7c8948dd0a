import pickle

import numpy as np
import pytest
import xarray as xr

from xrfdask import open_geopixe
from xrfdask.io.backends import GeoPixeBackendEntrypoint, GeoPixeSpectraArray
from xrfdask.io.geopixe.index import build_index


def test_engine_is_registered_and_guesses_geopixe_files(sample_path):
    assert "geopixe" in xr.backends.list_engines()
    entry = GeoPixeBackendEntrypoint()
    assert entry.guess_can_open(str(sample_path)) and entry.guess_can_open("a/b.geopixe")
    assert not entry.guess_can_open("map.h5")
    assert not entry.guess_can_open(object())


def test_open_dataset_equals_open_geopixe(sample_path, sample_dense):
    ds = xr.open_dataset(sample_path, engine="geopixe")
    ref = open_geopixe(sample_path)
    xr.testing.assert_identical(ds.load(), ref.compute())
    auto = xr.open_dataset(sample_path)  # engine guessed from the extension
    np.testing.assert_array_equal(auto.spectra.values, sample_dense)


def test_preferred_chunks_are_bands_of_rows(sample_path):
    import dask

    with dask.config.set({"xrfdask.chunk-size": "1MiB"}):
        ds = xr.open_dataset(sample_path, engine="geopixe", chunks={})
    assert ds.spectra.chunks == ((3, 3, 3, 1), (20,), (2,), (4096,))


@pytest.mark.parametrize(
    "key",
    [
        (slice(2, 7, 2), [3, 1, 5], 1, slice(100, 200)),
        (slice(None, None, -1), 4),
        (3, 4, 0),
        ([9, 0], slice(None), [1, 0], [5, 2, 7]),
        (slice(5, 5),),
    ],
)
def test_lazy_outer_indexing(sample_path, sample_dense, key):
    ds = xr.open_dataset(sample_path, engine="geopixe")
    got = ds.spectra[key].values
    expected = sample_dense
    for axis, k in reversed(list(enumerate(key))):
        expected = (
            expected[(slice(None),) * axis + (k,)]
            if not isinstance(k, list)
            else np.take(expected, k, axis=axis)
        )
    np.testing.assert_array_equal(got, expected)


def test_backend_array_pickles(sample_path):
    array = GeoPixeSpectraArray(build_index(sample_path))
    clone = pickle.loads(pickle.dumps(array))
    assert clone.shape == (10, 20, 2, 4096)


def test_drop_variables(sample_path):
    ds = xr.open_dataset(sample_path, engine="geopixe", drop_variables=["present"])
    assert set(ds.data_vars) == {"spectra", "deadtime"}
