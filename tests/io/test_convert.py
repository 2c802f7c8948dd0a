import dask.array as da
import numpy as np
import pytest
import xarray as xr

from xrfdask import XrfdaskError, open_geopixe, open_h5, open_zarr, to_h5
from xrfdask.io.convert import UnsupportedFormatError, convert, file_format, open_map, write_map


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("map.GeoPIXE", "geopixe"),
        ("MAP.GEOPIXE", "geopixe"),
        ("a/b.c/map.h5", "h5"),
        ("map.HDF5", "h5"),
        ("map.zarr", "zarr"),
        ("map.zarr/", "zarr"),
    ],
)
def test_file_format_from_the_extension(path, kind, tmp_path):
    assert file_format(path) == kind
    assert file_format(tmp_path / path.rstrip("/")) == kind  # path-like too


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("map.tif", ".tif"),
        ("map", "(no extension)"),
        ("map.h5.bak", ".bak"),
        ("dir.zarr/x", "(no extension)"),
    ],
)
def test_file_format_rejects_others(path, what):
    with pytest.raises(UnsupportedFormatError) as info:
        file_format(path)
    assert str(info.value) == f"{path}: unknown format {what}; use .GeoPIXE, .h5 or .zarr"
    assert isinstance(info.value, XrfdaskError) and isinstance(info.value, ValueError)


def test_open_map_opens_each_format_lazily(tmp_path, sample_path, sample_dense):
    h5 = convert(sample_path, tmp_path / "m.h5")
    store = convert(h5, tmp_path / "m.zarr")
    for path, reference in ((sample_path, open_geopixe), (h5, open_h5), (store, open_zarr)):
        ds = open_map(path, chunks="1MiB")
        expected = reference(path, chunks="1MiB")
        assert isinstance(ds.spectra.data, da.Array)
        assert ds.spectra.data.chunks == expected.spectra.data.chunks
        xr.testing.assert_identical(ds, expected)
        np.testing.assert_array_equal(ds.spectra.values, sample_dense)
    assert open_map(sample_path, chunks={"y": 4}).spectra.data.chunks[0] == (4, 4, 2)
    with pytest.raises(UnsupportedFormatError, match=r"holds a raw map only, not a 'fit' group"):
        open_map(sample_path, group="fit")
    assert open_map(sample_path, group="raw").sizes["x"] == 20


def test_convert_returns_the_path_and_round_trips(tmp_path, sample_path):
    h5 = convert(str(sample_path), str(tmp_path / "m.h5"))
    assert h5 == str(tmp_path / "m.h5")
    back = convert(open_h5(h5), tmp_path / "back.GeoPIXE")  # a Dataset source
    assert open(back, "rb").read() == sample_path.read_bytes()
    with pytest.raises(FileExistsError, match="exists"):
        convert(sample_path, h5)
    assert convert(sample_path, h5, overwrite=True) == h5


def test_convert_and_write_map_copy_result_groups(tmp_path):
    from xrfdask.datasets import example_dataset

    src = to_h5(example_dataset(shape=(6, 5)), tmp_path / "a.h5")
    fit = xr.Dataset(
        {"peak_area": (("y", "x", "detector", "line"), da.arange(120.0).reshape(6, 5, 2, 2))},
        coords={"detector": [0, 1], "line": ["Fe K", "Ca K"]},
    )
    write_map(fit, src, group="fit")
    out = convert(src, tmp_path / "b.zarr", group="fit")
    np.testing.assert_array_equal(
        open_zarr(out, group="fit").peak_area.values, np.arange(120.0).reshape(6, 5, 2, 2)
    )
    # A result has no spectra: it cannot become a .GeoPIXE file, and nothing is written.
    with pytest.raises(UnsupportedFormatError, match=r"holds raw maps, not the 'fit' group"):
        convert(src, tmp_path / "x.GeoPIXE", group="fit")
    with pytest.raises(UnsupportedFormatError, match=r"unknown format \.tif"):
        write_map(fit, tmp_path / "x.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.zarr"]
