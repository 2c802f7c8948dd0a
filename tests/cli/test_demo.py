import numpy as np

from xrfdask import open_geopixe


def test_demo_runs_the_main_job(run, tmp_path):
    code, out, err = run("demo", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    assert (tmp_path / "demo" / "example.GeoPIXE").exists()
    assert "64 x 48 pixels" in out
    from xrfdask import open_zarr

    ds = open_zarr(tmp_path / "demo" / "example.zarr")
    ref = open_geopixe(tmp_path / "demo" / "example.GeoPIXE")
    np.testing.assert_array_equal(ds.spectra.values, ref.spectra.values)
    assert "fitted 6,144 spectra in " in out
    assert (tmp_path / "demo" / "element_maps.png").stat().st_size > 10_000
