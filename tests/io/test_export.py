"""xd.to_tiff, xd.to_csv (xrf_proc's XProcH5toCSV layout), class_spectra_to_csv, open_result."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import tifffile
import xarray as xr

import xrfdask as xd
from xrfdask.deadtime_correction import corrected_fit
from xrfdask.errors import ConfigError, FormatError
from xrfdask.io.export import class_spectra_to_csv, line_order, open_result

ELEMENTS = ["Ca", "Fe", "Zn", "Sr", "Pb"]


@pytest.fixture(scope="module")
def results(tmp_path_factory, example_path):
    """The example map (16 rows), fitted, normalised, classified; all in one .h5 file too."""
    ds = xd.open_geopixe(example_path).isel(y=slice(0, 16))
    fit = xd.fit(ds, xd.make_fit_config(ds, ELEMENTS)).persist()
    nrm = xd.normalise(ds, fit).persist()
    cls = xd.classify(ds, "kmeans", 3, sample_size=300).persist()
    path = tmp_path_factory.mktemp("export") / "map.h5"
    for obj in (ds, fit, nrm, cls):
        xd.to_h5(obj, path)
    return {"raw": ds, "fit": fit, "norm": nrm, "cls": cls, "path": path}


def read_table(path, sep=";"):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=sep))
    return rows[0], rows[1:]


def small_result(lines=("Zn K", "Compt", "Fe K", "Rayl", "Ca K"), detectors=(0,), ny=3, nx=4):
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 100, (ny, nx, len(detectors), len(lines)))
    return xr.Dataset(
        {"normalised": (("y", "x", "detector", "line"), values)},
        coords={"y": np.arange(ny) * 0.5, "x": np.arange(nx) * 0.25 + 1,
                "detector": list(detectors), "line": list(lines)},
    )  # fmt: skip


# --- TIFF ---------------------------------------------------------------------------------------


def test_tiff_reads_back_every_line_and_detector(results, tmp_path):
    nrm = results["norm"]
    paths = xd.to_tiff(nrm, tmp_path / "maps")
    lines, detectors = list(nrm.line.values), list(nrm.detector.values)
    assert len(paths) == len(lines) * len(detectors)
    assert os.path.basename(paths[0]) == f"normalised_channel00_{lines[0].replace(' ', '_')}.tif"
    k = 0
    for det in detectors:
        for line in lines:
            image = tifffile.imread(paths[k])
            assert image.dtype == np.float32 and image.shape == (16, 64)
            expected = nrm.normalised.sel(detector=det, line=line).values.astype(np.float32)
            np.testing.assert_array_equal(image, expected)
            k += 1
    assert not [n for n in os.listdir(tmp_path / "maps") if n.startswith(".tmp")]


def test_tiff_of_a_fit_is_deadtime_corrected_as_in_the_file(results, tmp_path):
    fit = results["fit"]
    (path,) = xd.to_tiff(fit, tmp_path, detector=1, lines=["Fe K"])
    assert os.path.basename(path) == "peak_area_channel01_Fe_K.tif"
    stored = xd.open_h5(results["path"], group="fit").peak_area.sel(detector=1, line="Fe K")
    np.testing.assert_array_equal(tifffile.imread(path), stored.values)
    corrected = corrected_fit(fit).peak_area.sel(detector=1, line="Fe K").values
    np.testing.assert_array_equal(tifffile.imread(path), corrected)


def test_tiff_names_single_detector_and_lines(tmp_path):
    res = small_result(lines=("Pb L3", "Fe K"))
    paths = xd.to_tiff(res, tmp_path, lines=["Fe K", "Pb L3"])
    assert [os.path.basename(p) for p in paths] == ["normalised_Fe_K.tif", "normalised_Pb_L3.tif"]
    np.testing.assert_array_equal(
        tifffile.imread(paths[1]), res.normalised.sel(line="Pb L3", detector=0).values.astype("f4")
    )


def test_tiff_of_labels_keeps_integers(results, tmp_path):
    (path,) = xd.to_tiff(results["cls"], tmp_path)
    assert os.path.basename(path) == "labels.tif"
    image = tifffile.imread(path)
    assert image.dtype == np.int32
    np.testing.assert_array_equal(image, results["cls"].labels.values)


def test_tiff_errors(results, tmp_path):
    nrm = results["norm"]
    with pytest.raises(ConfigError, match="no variable 'nope'"):
        xd.to_tiff(nrm, tmp_path, variable="nope")
    with pytest.raises(ConfigError, match=r"lines \['Xx K'\] not in"):
        xd.to_tiff(nrm, tmp_path, lines=["Xx K"])
    with pytest.raises(ConfigError, match="detector 7 not in"):
        xd.to_tiff(nrm, tmp_path, detector=7)
    with pytest.raises(ConfigError, match="has dims"):
        xd.to_tiff(results["cls"], tmp_path, variable="embedding")
    first = xd.to_tiff(nrm, tmp_path, lines=["Fe K"], detector=0)
    before = os.path.getmtime(first[0])
    with pytest.raises(FileExistsError, match="Fe_K.tif: exists"):
        xd.to_tiff(nrm, tmp_path, lines=["Ca K", "Fe K"], detector=0)
    assert not os.path.exists(tmp_path / "normalised_channel00_Ca_K.tif")  # nothing written
    assert os.path.getmtime(first[0]) == before
    assert xd.to_tiff(nrm, tmp_path, lines=["Fe K"], detector="channel00", overwrite=True) == first


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_header_is_xrf_procs(tmp_path):
    res = small_result()
    path = xd.to_csv(res, tmp_path / "t.csv", file_id="scan.h5")
    with open(path) as f:
        assert f.readline() == "FileID;RowID;Ca K;Fe K;Zn K;Compt;Rayl\n"


def test_line_order_by_atomic_number():
    names = ["Rayl001", "Pb M", "Compt", "Fe K", "Pb L", "Rayl", "K K", "Ba L"]
    assert [names[i] for i in line_order(names)] == [
        "K K", "Fe K", "Ba L", "Pb M", "Pb L", "Compt", "Rayl", "Rayl001"
    ]  # fmt: skip


def test_csv_rows_read_back(results, tmp_path):
    nrm = results["norm"]
    path = xd.to_csv(nrm, tmp_path / "n.csv", detector=1, file_id="map.h5")
    header, rows = read_table(path)
    lines = [str(v) for v in nrm.line.values]
    assert header[:2] == ["FileID", "RowID"] and sorted(header[2:]) == sorted(lines)
    assert header[2:8] == ["Ca K", "Fe K", "Zn K", "Sr K", "Pb L", "Pb M"]  # by Z
    assert header[8:10] == ["Compt", "Rayl"]
    assert len(rows) == 16 * 64 and {r[0] for r in rows} == {"map.h5"}
    values = np.loadtxt(path, delimiter=";", skiprows=1, usecols=range(2, 2 + len(lines)))
    expected = nrm.normalised.sel(detector=1, line=header[2:]).values.reshape(-1, len(lines))
    np.testing.assert_array_equal(values, expected)  # exact: the shortest repr round-trips
    x, y = nrm.x.values, nrm.y.values
    assert rows[0][1] == f"{x[0]}_{y[0]}" and rows[1][1] == f"{x[1]}_{y[0]}"  # x fastest
    assert rows[64][1] == f"{x[0]}_{y[1]}"


def test_csv_fit_matches_the_file_and_streams_in_bands(results, tmp_path):
    fit = results["fit"].chunk(y=5)  # four bands of rows
    a = xd.to_csv(fit, tmp_path / "a.csv", detector=0, file_id="id")
    stored = open_result(results["path"], "fit")
    b = xd.to_csv(stored, tmp_path / "b.csv", detector=0, file_id="id")
    with open(a) as fa, open(b) as fb:
        assert fa.read() == fb.read()  # corrected in memory as in the file; motors = x_y


def test_csv_motors_from_raw_and_handheld_names(tmp_path):
    res = small_result(ny=2, nx=2)
    raw = xr.Dataset({"mot1": (("y", "x"), [[1.5, 2.5], [1.5, 2.5]]),
                      "mot2": (("y", "x"), [[7.0, 7.0], [8.0, 8.0]])})  # fmt: skip
    _, rows = read_table(xd.to_csv(res, tmp_path / "m.csv", motors=raw))
    assert [r[1] for r in rows] == ["1.5_7.0", "2.5_7.0", "1.5_8.0", "2.5_8.0"]
    assert rows[0][0] == "m"  # default FileID: the CSV's name
    hand = res.assign_coords(mot1=(("y", "x"), np.array([[b"s1", b"s2"], [b"s3", b"s4"]])))
    _, rows = read_table(xd.to_csv(hand, tmp_path / "h.csv"))
    assert [r[1] for r in rows] == ["s1", "s2", "s3", "s4"]


def test_csv_sum_row(results, tmp_path):
    nrm = results["norm"]
    path = xd.to_csv(nrm, tmp_path / "s.csv", variable="sum_area", detector=0, file_id="f.h5")
    header, rows = read_table(path)
    assert len(rows) == 1 and rows[0][:2] == ["f.h5", "norm/channel00/sum/int"]
    expected = nrm.sum_area.sel(detector=0, line=header[2:]).values
    np.testing.assert_array_equal(np.array(rows[0][2:], dtype=float), expected)


def test_csv_detector_choice_and_errors(results, tmp_path):
    res = small_result(detectors=(0, 1))
    with pytest.raises(ConfigError, match=r"detectors \[0, 1\]: choose one"):
        xd.to_csv(res, tmp_path / "x.csv")
    summed = small_result(detectors=(0, "sum"))
    _, rows = read_table(xd.to_csv(summed, tmp_path / "s.csv"))
    assert float(rows[0][2]) == summed.normalised.sel(detector="sum", line="Ca K").values[0, 0]
    with pytest.raises(ConfigError, match="no variable 'nope'"):
        xd.to_csv(results["norm"], tmp_path / "x.csv", variable="nope", detector=0)
    with pytest.raises(ConfigError, match="'labels' has dims"):
        xd.to_csv(results["cls"], tmp_path / "x.csv")
    xd.to_csv(res, tmp_path / "x.csv", detector=0)
    with pytest.raises(FileExistsError, match="x.csv: exists"):
        xd.to_csv(res, tmp_path / "x.csv", detector=1)
    xd.to_csv(res, tmp_path / "x.csv", detector=1, overwrite=True)


# --- class spectra, open_result -----------------------------------------------------------------


def test_class_spectra_csv(results, tmp_path):
    cls = results["cls"]
    path = class_spectra_to_csv(cls, tmp_path / "c.csv")
    header, rows = read_table(path, sep=",")
    assert header == ["channel", "energy_keV", "class_0", "class_1", "class_2"]
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 1], cls.energy.values)
    np.testing.assert_array_equal(table[:, 2:], cls.class_mean_spectra.values.T)
    # read back: sums only, no energy on the group; the raw map's axis and means from the sizes
    stored = open_result(results["path"], "kmeans")
    again = class_spectra_to_csv(stored, tmp_path / "d.csv")
    np.testing.assert_allclose(np.loadtxt(again, delimiter=",", skiprows=1), table, rtol=1e-12)
    sums = np.loadtxt(class_spectra_to_csv(cls, tmp_path / "e.csv", mean=False), delimiter=",",
                      skiprows=1)  # fmt: skip
    np.testing.assert_array_equal(sums[:, 2:], cls.class_spectra.values.T)
    with pytest.raises(ConfigError, match="no class spectra"):
        class_spectra_to_csv(results["norm"], tmp_path / "f.csv")


def test_class_means_of_element_maps(results, tmp_path):
    cls = xd.classify(results["norm"], "kmeans", 2, detector=0).persist()
    header, rows = read_table(class_spectra_to_csv(cls, tmp_path / "c.csv"), sep=",")
    assert header[:4] == ["class", "n_pixels", "Ca K", "Fe K"]
    assert [int(r[1]) for r in rows] == cls.class_size.values.tolist()
    np.testing.assert_array_equal(
        np.array([r[2:] for r in rows], dtype=float),
        cls.class_means.sel(line=header[2:]).values,
    )


def test_open_result_picks_the_main_group_and_motors(results, tmp_path):
    res = open_result(results["path"])
    assert "normalised" in res and res.mot1.dims == ("y", "x")
    with pytest.raises(FormatError, match="'quant' is missing"):
        open_result(results["path"], "quant")
    with pytest.raises(xd.XrfdaskError, match="raw map only"):
        open_result(tmp_path / "map.GeoPIXE")
