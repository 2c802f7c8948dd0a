"""ESRF ID15 BLISS files (synthetic, with the structure of spec xrf_proc.md 9.1) to raw maps."""

import warnings

import dask
import h5py
import numpy as np
import pytest

from xrfdask import FormatError, XrfdaskWarning
from xrfdask.io.beamlines.id15 import convert_id15, id15_output_path
from xrfdask.io.h5layout import open_h5, to_h5

ROWS, COLS, NCHAN = 5, 10, 256


def bliss_scan(f, scan="1.1", *, rows=ROWS, cols=COLS, y0=0.0, x0=0.0, seed=0, second=True, i1=True,
               current=None, order=None, extra_points=0,
               title="amesh hry 0 0.09 9 hrz 0 0.045 4 0.1"):  # fmt: skip
    """One scan entry as BLISS writes it; returns the per-point truth."""
    rng = np.random.default_rng(seed)
    n = rows * cols + extra_points
    hry = np.tile(x0 + np.linspace(0, 0.09, cols), rows + 1)[:n]  # varies along columns
    hrz = np.repeat(y0 + np.linspace(0, 0.045, rows + 1), cols)[:n]
    truth = {
        "falconx_det0": rng.poisson(5, (n, NCHAN)).astype(np.uint32),
        "falconx2_det0": rng.poisson(3, (n, NCHAN)).astype(np.uint32),
        "ocr0": rng.uniform(1e4, 2e4, n), "ocr1": rng.uniform(1e4, 2e4, n),
        "fpico2": 1e5 + rng.normal(0, 100, n), "fpico3": 5e4 + rng.normal(0, 100, n),
        "hry": hry, "hrz": hrz, "time": np.full(n, 0.1),
    }  # fmt: skip
    if order is not None:
        truth = {k: v[order] for k, v in truth.items()}
    g = f.create_group(scan)
    g["title"] = title
    m = g.create_group("measurement")
    for det, ocr in (("falconx_det0", "ocr0"), ("falconx2_det0", "ocr1")):
        if det == "falconx2_det0" and not second:
            continue
        m[det] = truth[det]
        m[f"{det}_event_count_rate"] = truth[ocr]
        m[f"{det}_trigger_count_rate"] = truth[ocr] * 1.25
    m["falconx_det0_elapsed_time"] = truth["time"]
    m["fpico2"] = truth["fpico2"]
    if i1:
        m["fpico3"] = truth["fpico3"]
    m["hry"], m["hrz"] = truth["hry"], truth["hrz"]
    inst = g.create_group("instrument")
    if current is not None:
        inst.create_group("machine")["current"] = current
    return truth


def grid(values, rows=ROWS, cols=COLS):
    return np.asarray(values)[: rows * cols].reshape((rows, cols) + np.shape(values)[1:])


@pytest.fixture
def bliss(tmp_path):
    path = tmp_path / "sample.h5"
    with h5py.File(path, "w") as f:
        truth = bliss_scan(f)
    return path, truth


def test_recipe_scan_converts_value_by_value(bliss):
    path, t = bliss
    with dask.config.set(scheduler=lambda *a, **k: pytest.fail("converting read the spectra")):
        ds = convert_id15(path, "1.1", (ROWS, COLS), mot1_name="hrz", mot2_name="hry")
    assert ds.spectra.dims == ("y", "x", "detector", "channel")
    assert list(ds.detector.values) == ["channel00", "channel01"]
    np.testing.assert_array_equal(ds.spectra.values[:, :, 0], grid(t["falconx_det0"]))
    np.testing.assert_array_equal(ds.spectra.values[:, :, 1], grid(t["falconx2_det0"]))
    np.testing.assert_allclose(ds.ocr.values[:, :, 0], grid(t["ocr0"]))
    np.testing.assert_allclose(ds.icr.values[:, :, 1], grid(t["ocr1"]) * 1.25)
    np.testing.assert_allclose(ds.I0.values, grid(t["fpico2"]))
    np.testing.assert_allclose(ds.I1.values, grid(t["fpico3"]))
    np.testing.assert_allclose(ds.acquisition_time.values, 0.1)
    np.testing.assert_allclose(ds.mot1.values, grid(t["hrz"]))
    np.testing.assert_allclose(ds.mot2.values, grid(t["hry"]))
    assert ds.mot1.attrs["Name"] == "hrz" and ds.mot2.attrs["Name"] == "hry"
    # hry (mot2) moves along the rows: it is the x coordinate, the fast axis.
    np.testing.assert_allclose(ds.x.values, np.linspace(0, 0.09, COLS))
    np.testing.assert_allclose(ds.y.values, np.linspace(0, 0.045, ROWS + 1)[:ROWS])
    assert "mot2" in ds.attrs["fast_axis"]
    assert ds.attrs["cmd"] == "amesh hry 0 0.09 9 hrz 0 0.045 4 0.1"


def test_sorting_reorders_every_variable_identically(tmp_path):
    # A snake scan run top-down: odd rows recorded backwards, rows in reverse order. Sorting must
    # restore the grid, identically for every variable.
    index = np.arange(ROWS * COLS).reshape(ROWS, COLS)
    index[1::2] = index[1::2, ::-1]
    order = index[::-1].reshape(-1)
    path = tmp_path / "shuffled.h5"
    with h5py.File(path, "w") as f:
        scrambled = bliss_scan(f, order=order)
    with h5py.File(tmp_path / "ref.h5", "w") as f:
        ref = bliss_scan(f)
    ds = convert_id15(path, "1.1", (ROWS, COLS), mot1_name="hrz", mot2_name="hry")
    assert scrambled["hry"][0] != ref["hry"][0] or scrambled["hrz"][0] != ref["hrz"][0]
    np.testing.assert_allclose(ds.mot2.values, grid(ref["hry"]))
    np.testing.assert_allclose(ds.mot1.values, grid(ref["hrz"]))
    np.testing.assert_array_equal(ds.spectra.values[:, :, 0], grid(ref["falconx_det0"]))
    np.testing.assert_allclose(ds.I0.values, grid(ref["fpico2"]))
    np.testing.assert_allclose(ds.ocr.values[:, :, 1], grid(ref["ocr1"]))


def test_sorting_finds_the_fast_motor_whatever_its_name(bliss):
    path, t = bliss
    swapped = convert_id15(path, "1.1", (ROWS, COLS), mot1_name="hry", mot2_name="hrz")
    np.testing.assert_allclose(swapped.x.values, np.linspace(0, 0.09, COLS))
    assert "mot1" in swapped.attrs["fast_axis"]


def test_single_detector_file_and_missing_i1(tmp_path):
    path = tmp_path / "one.h5"
    with h5py.File(path, "w") as f:
        bliss_scan(f, second=False, i1=False)
    with pytest.warns(XrfdaskWarning, match="no I1"):
        ds = convert_id15(path, "1.1", (ROWS, COLS))
    assert list(ds.detector.values) == ["channel00"] and "I1" not in ds
    with pytest.raises(FormatError, match="'1.1/measurement/falconx2_det0' is missing"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XrfdaskWarning)
            convert_id15(path, "1.1", (ROWS, COLS), ch1id="falconx2_det0")


def test_ring_current_and_i0_correction(tmp_path):
    path = tmp_path / "cur.h5"
    with h5py.File(path, "w") as f:
        t = bliss_scan(f, current=np.full(ROWS * COLS, 200.0))
        f.create_group("1.2/measurement")["i0cor"] = np.full(7, 3.0)
    ds = convert_id15(path, "1.1", (ROWS, COLS), i0corid="i0cor")
    i0 = grid(t["fpico2"]) / 200.0
    np.testing.assert_allclose(ds.I0.values, i0 / i0.mean() * 3.0)
    np.testing.assert_allclose(ds.I1.values, grid(t["fpico3"]) / 200.0)


def test_stitching_scans_along_the_motor_that_changed(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        a = bliss_scan(f, "1.1", seed=1)
        b = bliss_scan(f, "2.1", seed=2, y0=0.1)  # the slow motor continues: rows appended
    ds = convert_id15(path, ["2.1", "1.1"], (ROWS, COLS), mot1_name="hrz", mot2_name="hry")
    assert ds.sizes == {"y": 2 * ROWS, "x": COLS, "detector": 2, "channel": NCHAN}
    np.testing.assert_array_equal(ds.spectra.values[:ROWS, :, 0], grid(a["falconx_det0"]))
    np.testing.assert_array_equal(ds.spectra.values[ROWS:, :, 0], grid(b["falconx_det0"]))
    assert np.all(np.diff(ds.mot1.values[:, 0]) > 0)
    assert ds.attrs["cmd"].count("amesh") == 2
    # Overlapping ranges: the lower scan is cut below the upper one's start.
    path2 = tmp_path / "overlap.h5"
    with h5py.File(path2, "w") as f:
        bliss_scan(f, "1.1", seed=1)
        bliss_scan(f, "2.1", seed=2, y0=0.03)
    ds = convert_id15(path2, ["1.1", "2.1"], (ROWS, COLS), mot1_name="hrz", mot2_name="hry")
    assert ds.sizes["y"] == 4 + ROWS  # rows at 0, 0.009, 0.018, 0.027 (< 0.03) kept from scan 1
    assert np.all(np.diff(ds.mot1.values[:, 0]) > 0)


def test_extra_points_are_ignored_and_short_scans_refused(tmp_path):
    path = tmp_path / "extra.h5"
    with h5py.File(path, "w") as f:
        t = bliss_scan(f, extra_points=7)
    ds = convert_id15(path, "1.1", (ROWS, COLS))
    np.testing.assert_array_equal(ds.spectra.values[:, :, 0], grid(t["falconx_det0"]))
    with pytest.raises(
        FormatError,
        match=r"'1.1/measurement/falconx_det0' has 57 points, the scan needs 6 x 10 = 60",
    ):
        convert_id15(path, "1.1", (6, 10))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda f: f.__delitem__("1.1/measurement/fpico2"),
            "dataset '1.1/measurement/fpico2' is missing",
        ),
        (lambda f: f.__delitem__("1.1/measurement/hry"), "motor 'hry' is missing"),
        (
            lambda f: f.__delitem__("1.1/measurement/falconx_det0_event_count_rate"),
            "falconx_det0_event_count_rate' is missing",
        ),
        (
            lambda f: _replace(f, "1.1/measurement/falconx_det0", np.zeros((50,), "u4")),
            "has shape \\(50,\\), expected points x channels",
        ),
        (
            lambda f: _replace(f, "1.1/measurement/falconx2_det0", np.zeros((50, 128), "u4")),
            "different channel counts",
        ),
    ],
)
def test_bad_input_names_file_and_dataset(bliss, damage, message):
    path, _ = bliss
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(FormatError, match=message) as info:
        convert_id15(path, "1.1", (ROWS, COLS))
    assert str(path) in str(info.value)
    with pytest.raises(FormatError, match="scan entry '9.1' is missing"):
        convert_id15(path, "9.1", (ROWS, COLS))


def _replace(f, name, data):
    del f[name]
    f[name] = data


def test_output_names(tmp_path):
    f = tmp_path / "data.v2" / "sample.h5"
    assert id15_output_path(f, "3.1") == tmp_path / "data.v2" / "sample_scan3.h5"
    assert id15_output_path(f, ["3.1", "5.1"]).name == "sample_scan3-5.h5"
    assert (
        id15_output_path([f, tmp_path / "other.h5"], ["3.1", "5.1"]).name
        == "sample_scan3-other_scan5.h5"
    )


def test_converted_map_writes_to_the_layout(bliss, tmp_path):
    path, t = bliss
    ds = convert_id15(path, "1.1", (ROWS, COLS), mot1_name="hrz", mot2_name="hry")
    out = to_h5(ds, tmp_path / "sample_scan1.h5")
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["raw/channel00/spectra"][...], grid(t["falconx_det0"]))
        np.testing.assert_array_equal(f["raw/channel00/sumspec"][...], t["falconx_det0"].sum(0))
        np.testing.assert_allclose(f["raw/I1"][...], grid(t["fpico3"]))
        assert f["mot2"].attrs["Name"] == "hry" and f["cmd"][()].decode().startswith("amesh")
    back = open_h5(out)
    np.testing.assert_array_equal(back.spectra.values, ds.spectra.values)
    np.testing.assert_allclose(back.x.values, ds.x.values)
