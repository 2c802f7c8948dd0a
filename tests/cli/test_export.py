"""``xrfdask export FILE``: TIFF, xrf_proc's CSV table and class spectra from a file's groups."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

import xrfdask as xd


@pytest.fixture(scope="module")
def h5(tmp_path_factory, example_path):
    """A file with raw/, fit/, norm/ and kmeans/ of the example map's first 8 rows."""
    ds = xd.open_geopixe(example_path).isel(y=slice(0, 8))
    fit = xd.fit(ds, xd.make_fit_config(ds, ["Fe", "Zn", "Pb"])).persist()
    path = tmp_path_factory.mktemp("cli-export") / "map.h5"
    for obj in (ds, fit, xd.normalise(ds, fit), xd.classify(ds, "kmeans", 2, sample_size=200)):
        xd.to_h5(obj, path)
    return path


def test_export_tiff_csv_and_class_csv(run, h5, tmp_path):
    code, out, err = run("export", str(h5), "--tiff", str(tmp_path / "maps"), "--csv",
                         str(tmp_path / "n.csv"), "--detector", "1", "--class-csv",
                         str(tmp_path / "k.csv"))  # fmt: skip
    assert code == 0, err
    nrm = xd.open_h5(h5, group="norm")
    names = sorted(os.listdir(tmp_path / "maps"))
    assert len(names) == nrm.sizes["line"] and "normalised_channel01_Fe_K.tif" in names
    image = tifffile.imread(tmp_path / "maps" / "normalised_channel01_Fe_K.tif")
    np.testing.assert_array_equal(image, nrm.normalised.sel(detector=1, line="Fe K").values)
    with open(tmp_path / "n.csv") as f:
        header = f.readline().rstrip("\n").split(";")
        first = f.readline().split(";")
    assert header[:5] == ["FileID", "RowID", "Fe K", "Zn K", "Pb L"]
    assert header[header.index("Compt") + 1] == "Rayl"
    assert first[0] == str(h5)  # xrf_proc's FileID: the file as passed
    with open(tmp_path / "k.csv") as f:
        assert f.readline() == "channel,energy_keV,class_0,class_1\n"
    assert "-> " in out


def test_export_fit_group_one_detector_and_labels(run, h5, tmp_path):
    code, _, err = run("export", str(h5), "--group", "fit", "--detector", "channel00",
                       "--lines", "Zn K", "--tiff", str(tmp_path))  # fmt: skip
    assert code == 0, err
    assert os.listdir(tmp_path) == ["peak_area_channel00_Zn_K.tif"]
    code, _, err = run("export", str(h5), "--group", "kmeans", "--tiff", str(tmp_path / "k"))
    assert code == 0, err
    assert os.listdir(tmp_path / "k") == ["labels.tif"]


def test_class_table_of_element_map_classes_round_trips(run, h5, tmp_path):
    """Classes of element maps keep their per-class sums and sizes in kmeans/ (xrf_proc keeps
    only the labels), so `export --class-csv` works after `classify --group norm`."""
    out = tmp_path / "classes.h5"
    nrm = xd.open_h5(h5, group="norm")
    cls = xd.classify(nrm, "kmeans", 3).compute()
    xd.to_h5(cls, out)
    back = xd.open_h5(out, group="kmeans")
    np.testing.assert_array_equal(back["class_sums"].sel(detector=cls.detector.item()),
                                  cls["class_sums"])  # fmt: skip
    code, _, err = run("export", str(out), "--class-csv", str(tmp_path / "c.csv"))
    assert code == 0, err
    rows = np.genfromtxt(tmp_path / "c.csv", delimiter=",", names=True, deletechars="")
    np.testing.assert_array_equal(rows["n_pixels"], cls["class_size"])
    np.testing.assert_allclose(rows["Fe_K"], cls["class_means"].sel(line="Fe K"), rtol=1e-15)


def test_export_errors(run, h5, tmp_path, example_path):
    code, _, err = run("export", str(h5))
    assert code == 2 and "nothing to export" in err
    code, _, err = run("export", str(h5), "--csv", str(tmp_path / "a.csv"))
    assert code == 1 and "choose one" in err and "--detector" in err
    code, _, err = run("export", str(h5), "--group", "quant", "--csv", str(tmp_path / "a.csv"))
    assert code == 1 and "'quant' is missing" in err
    code, _, err = run("export", str(example_path), "--csv", str(tmp_path / "a.csv"))
    assert code == 2 and "raw map only" in err
    assert run("export", str(h5), "--csv", str(tmp_path / "a.csv"), "--detector", "0")[0] == 0
    code, _, err = run("export", str(h5), "--csv", str(tmp_path / "a.csv"), "--detector", "0")
    assert code == 1 and "exists; use --overwrite" in err
    code, _, err = run("export", str(h5), "--csv", str(tmp_path / "a.csv"), "--detector", "0",
                       "--overwrite")  # fmt: skip
    assert code == 0, err
    code, _, err = run("export", str(h5), "--tiff", str(tmp_path), "--variable", "nope")
    assert code == 1 and "no variable 'nope'" in err
