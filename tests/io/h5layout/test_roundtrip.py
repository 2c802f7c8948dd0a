"""Raw maps through the uniform layout: GeoPIXE -> h5 -> zarr -> h5, checked with plain h5py too."""

import dask
import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

from xrfdask import open_geopixe
from xrfdask.io.h5layout import open_h5, open_zarr, to_h5, to_zarr


@pytest.fixture(scope="module")
def chain(tmp_path_factory, sample_path):
    folder = tmp_path_factory.mktemp("chain")
    src = open_geopixe(sample_path, chunks=3)
    h5a = to_h5(src, folder / "a.h5")
    za = to_zarr(open_h5(h5a), folder / "a.zarr")
    h5b = to_h5(open_zarr(za), folder / "b.h5")
    return src, h5a, za, h5b


def test_geopixe_h5_zarr_h5_identical(chain, sample_dense):
    src, h5a, za, h5b = chain
    a, z, b = open_h5(h5a).compute(), open_zarr(za).compute(), open_h5(h5b).compute()
    xr.testing.assert_identical(a, z)
    xr.testing.assert_identical(a, b)
    # Against the source map: every array it has, its attributes, its coordinates.
    source = src.compute()
    for name in ("spectra", "deadtime", "present"):
        xr.testing.assert_identical(a[name], source[name])
    np.testing.assert_array_equal(a.spectra.values, sample_dense)
    for key, value in source.attrs.items():
        assert a.attrs[key] == value
    for coord in ("y", "x", "detector", "channel", "energy"):
        xr.testing.assert_identical(a[coord], source[coord])


def test_layout_as_xrf_proc_reads_it(chain, sample_dense):
    src, h5a, *_ = chain
    with h5py.File(h5a, "r") as f:
        for d in (0, 1):
            raw = f[f"raw/channel{d:02d}"]
            spectra = raw["spectra"]
            assert spectra.shape == (10, 20, 4096)  # rows x columns x channels
            assert spectra.compression == "gzip" and spectra.compression_opts == 4
            np.testing.assert_array_equal(spectra[...], sample_dense[:, :, d])
            np.testing.assert_array_equal(raw["sumspec"][...], sample_dense[:, :, d].sum((0, 1)))
            np.testing.assert_array_equal(raw["maxspec"][...], sample_dense[:, :, d].max((0, 1)))
            dt = src.deadtime.values[:, :, d].astype(float)
            # xrf_proc's deadtime correction multiplies by icr/ocr: it must match the records.
            np.testing.assert_allclose(raw["ocr"][...] / raw["icr"][...], 1 - dt / 100, rtol=1e-6)
            np.testing.assert_allclose(raw["ocr"][...], sample_dense[:, :, d].sum(-1) / 0.1)
        assert f["raw/I0"].shape == (10, 20) and f["raw/acquisition_time"][0, 0] == 0.1
        assert f["mot1"].attrs["Name"] == "x" and f["mot2"].attrs["Name"] == "y"
        np.testing.assert_allclose(f["mot1"][0], src.x.values)
        assert isinstance(f["cmd"][()], bytes)


def test_zarr_groups_open_with_plain_xarray(chain, sample_dense):
    *_, za, _ = chain
    ch = xr.open_zarr(za, group="raw/channel01")
    assert ch.spectra.dims == ("y", "x", "channel")
    np.testing.assert_array_equal(ch.spectra.values, sample_dense[:, :, 1])
    assert zarr.open_group(za, mode="r")["raw/channel01/spectra"].attrs["_ARRAY_DIMENSIONS"] == [
        "y",
        "x",
        "channel",
    ]
    assert xr.open_zarr(za, group="raw").I0.dims == ("y", "x")


def test_reading_is_lazy_and_follows_stored_chunks(tmp_path):
    rng = np.random.default_rng(0)
    spectra = rng.poisson(2, (30, 12, 64)).astype(np.uint32)
    path = tmp_path / "xrf_proc.h5"
    with h5py.File(path, "w") as f:  # as xrf_proc's converters write it
        f["cmd"] = "cmesh scanx 0 1 12 scany 0 1 29 0.1"
        f.create_dataset(
            "raw/channel00/spectra",
            data=spectra,
            compression="gzip",
            compression_opts=4,
            chunks=(4, 12, 64),
        )
        f.create_dataset("raw/channel00/icr", data=np.ones((30, 12)))  # unchunked
        f.create_dataset("raw/channel00/ocr", data=np.ones((30, 12)))
        f["raw/channel00/sumspec"] = spectra.sum((0, 1))
        f["raw/I0"] = np.full((30, 12), 7.0)
    with dask.config.set(
        {"xrfdask.chunk-size": "20KiB"}, scheduler=lambda *a, **k: pytest.fail("opening read data")
    ):
        ds = open_h5(path)
    assert set(ds.spectra.chunks[0][:-1]) == {4}  # a multiple of the stored chunk rows
    assert ds.spectra.chunks[1:] == ((12,), (1,), (64,))
    assert "h5-read" in {dask.utils.key_split(k) for k in ds.spectra.data.dask}
    np.testing.assert_array_equal(ds.spectra.values[:, :, 0], spectra)
    assert list(ds.detector.values) == ["channel00"] and "I1" not in ds
    assert ds.attrs["cmd"].startswith("cmesh") and (ds.I0.values == 7).all()
    assert ds.y.attrs["units"] == "pixel"  # no motors: pixel indices


def test_one_dimensional_scans(tmp_path):
    path = tmp_path / "line.h5"
    spectra = np.arange(7 * 16, dtype=np.uint32).reshape(7, 16)
    with h5py.File(path, "w") as f:
        f["raw/channel00/spectra"] = spectra  # N x C
        f["raw/channel00/icr"] = np.ones(7)
        f["raw/channel00/ocr"] = np.ones(7)
        f["mot1"] = np.linspace(0, 1, 7)
        f["mot1"].attrs["Name"] = "scanx"
    ds = open_h5(path)
    assert ds.spectra.shape == (1, 7, 1, 16)
    np.testing.assert_array_equal(ds.spectra.values[0, :, 0], spectra)
    np.testing.assert_allclose(ds.x.values, np.linspace(0, 1, 7))


def test_xrfh5_engine(chain, sample_dense):
    _, h5a, *_ = chain
    ds = xr.open_dataset(h5a, engine="xrfh5")
    np.testing.assert_array_equal(ds.spectra[3:5, [2, 7], 1].values, sample_dense[3:5, [2, 7], 1])
    assert "xrfh5" in xr.backends.list_engines()
    assert xr.open_dataset(h5a).spectra.shape == (10, 20, 2, 4096)  # guessed from the file


def test_example_map_to_h5_and_zarr_through_a_distributed_cluster(
    example_path, dask_cluster, tmp_path
):
    """Process workers on a real scheduler read, compress, (zarr) write; one process writes h5."""
    from distributed import Client

    local = open_geopixe(example_path).compute(scheduler="threads")
    with Client(scheduler_file=str(dask_cluster)):
        ds = open_geopixe(example_path, chunks=7)
        h5 = to_h5(ds, tmp_path / "example.h5")
        store = to_zarr(ds, tmp_path / "example.zarr")
        back = open_h5(h5).spectra.sum(("y", "x")).compute()
    np.testing.assert_array_equal(open_h5(h5).spectra.values, local.spectra.values)
    np.testing.assert_array_equal(open_zarr(store).spectra.values, local.spectra.values)
    np.testing.assert_array_equal(back.values, local.spectra.sum(("y", "x")).values)
    with h5py.File(h5) as f:
        np.testing.assert_array_equal(
            f["raw/channel01/sumspec"][...], local.spectra.values[:, :, 1].sum((0, 1))
        )


def test_rows_over_the_budget_are_split_along_x(tmp_path, sample_path, sample_dense):
    """A row bigger than the chunk budget (one-row scans, very wide maps) never loads whole."""
    with dask.config.set({"xrfdask.chunk-size": "100KiB"}):
        ds = open_geopixe(sample_path)
        assert len(ds.spectra.chunks[1]) > 1
        h5 = to_h5(ds, tmp_path / "wide.h5")
        store = to_zarr(ds, tmp_path / "wide.zarr")
        for back in (open_h5(h5), open_zarr(store)):
            assert len(back.spectra.chunks[1]) > 1 and max(back.spectra.chunks[0]) == 1
            np.testing.assert_array_equal(back.spectra.values, sample_dense)
            np.testing.assert_array_equal(back.sumspec.values, sample_dense.sum((0, 1)))
    with h5py.File(h5) as f:
        assert f["raw/channel00/spectra"].chunks == (1, 6, 4096)


def test_one_dimensional_and_contiguous_datasets_are_read_in_pieces(tmp_path):
    path = tmp_path / "line.h5"
    spectra = np.random.default_rng(0).poisson(2, (400, 256)).astype(np.uint32)
    with h5py.File(path, "w") as f:
        f["raw/channel00/spectra"] = spectra  # 1-D scan, contiguous (no HDF5 chunks)
        f["raw/channel00/icr"] = np.ones(400)
        f["raw/channel00/ocr"] = np.ones(400)
    with dask.config.set({"xrfdask.chunk-size": "64KiB"}):
        ds = open_h5(path)
    assert ds.spectra.shape == (1, 400, 1, 256)
    assert max(ds.spectra.chunks[1]) * 256 * 4 <= 64 * 1024 and len(ds.spectra.chunks[1]) > 1
    np.testing.assert_array_equal(ds.spectra.values[0, :, 0], spectra)


def test_cropped_maps_write(tmp_path, sample_path, sample_dense):
    crop = open_geopixe(sample_path, chunks=3).isel(y=slice(1, None), x=slice(2, 17))
    np.testing.assert_array_equal(
        open_h5(to_h5(crop, tmp_path / "crop.h5")).spectra.values, sample_dense[1:, 2:17]
    )
    np.testing.assert_array_equal(
        open_zarr(to_zarr(crop, tmp_path / "crop.zarr")).spectra.values, sample_dense[1:, 2:17]
    )
