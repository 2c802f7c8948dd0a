"""Tests of the embedded example map generator (xrfdask.datasets)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xraylib

import xrfdask
from xrfdask.datasets import LINE_GROUPS, example_dataset, example_geopixe, example_truth

SMALL = (10, 14)


@pytest.fixture(scope="module")
def default_map():
    return example_dataset(), example_truth()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    return example_geopixe(tmp_path_factory.mktemp("small"), shape=SMALL, n_detectors=2, seed=3)


# --------------------------------------------------------------------------------------------
# Files: determinism and round trip


def test_same_arguments_give_identical_files(tmp_path, small_file):
    again = example_geopixe(tmp_path / "again.GeoPIXE", shape=SMALL, n_detectors=2, seed=3)
    assert again == tmp_path / "again.GeoPIXE"
    assert again.read_bytes() == small_file.read_bytes()


def test_identical_in_a_fresh_process(tmp_path, small_file):
    """No hidden state (caches, global RNG, clock) leaks into the file."""
    path = tmp_path / "fresh.GeoPIXE"
    code = (
        "import sys; from xrfdask.datasets import example_geopixe; "
        f"example_geopixe(sys.argv[1], shape={SMALL!r}, n_detectors=2, seed=3)"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    assert path.read_bytes() == small_file.read_bytes()


def test_other_seed_gives_other_file(tmp_path, small_file):
    other = example_geopixe(tmp_path, shape=SMALL, n_detectors=2, seed=4)
    assert other.read_bytes() != small_file.read_bytes()
    # Same header (only the noise changes), so same header length prefix and JSON.
    h = int.from_bytes(small_file.read_bytes()[:2], "little")
    assert other.read_bytes()[: 2 + h] == small_file.read_bytes()[: 2 + h]


def test_dest_directory_and_overwrite(tmp_path):
    path = example_geopixe(tmp_path / "new" / "dir", shape=(3, 4), n_detectors=1)
    assert path == tmp_path / "new" / "dir" / "example.GeoPIXE"
    assert path.stat().st_size > 0
    with pytest.raises(FileExistsError):
        example_geopixe(path.parent, shape=(3, 4), n_detectors=1, overwrite=False)
    assert example_geopixe(path, shape=(3, 4), n_detectors=1, seed=9, overwrite=True) == path


def test_file_opens_equal_to_dataset(small_file):
    ds = example_dataset(shape=SMALL, n_detectors=2, seed=3)
    opened = xrfdask.open_geopixe(small_file, cache=False)
    assert opened.sizes == ds.sizes
    np.testing.assert_array_equal(opened.spectra.values, ds.spectra.values)
    np.testing.assert_array_equal(opened.deadtime.values, ds.deadtime.values)
    assert opened.deadtime.dtype == np.float32
    np.testing.assert_allclose(opened.x.values, ds.x.values, rtol=1e-12)
    np.testing.assert_allclose(opened.y.values, ds.y.values, rtol=1e-12)
    np.testing.assert_array_equal(opened.energy.values, ds.energy.values)
    assert opened.attrs["geopixe_header"] == ds.attrs["geopixe_header"]
    assert opened.attrs["tube_element"] == "Mo" and opened.attrs["tube_kv"] == 50.0
    assert opened.attrs["dwell_ms"] == 100.0


def test_header_keys_follow_the_spec(default_map):
    ds, _ = default_map
    header = ds.attrs["geopixe_header"]
    assert list(header) == ["File Header", "X-ray Source", "Detector"]
    fh = header["File Header"]
    assert list(fh) == [
        "Timestamp", "Duration (H:M:S)", "Dwell (mS)", "Xres", "Yres", "Width (mm)",
        "Height (mm)", "Dets", "Chan", "Gain (eV)", "Deadtime (%)",
    ]  # fmt: skip
    assert (fh["Xres"], fh["Yres"], fh["Dets"]) == (64, 48, 2)
    assert (fh["Chan"], fh["Gain (eV)"]) == (4096, 10.0)
    assert fh["Dwell (mS)"] == 100.0
    src = header["X-ray Source"]
    assert src["Elt"] == "Mo" and src["KV"] == 50.0 and 80 <= src["Scat (°)"] <= 100
    assert isinstance(header["Detector"], list) and len(header["Detector"]) == 2
    assert [d["Idx"] for d in header["Detector"]] == [0, 1]
    assert all(d["Type"] == 5 and d["Elt"] == 14 and d["Win"] == 1 for d in header["Detector"])
    assert ds.spectra.dtype == np.uint16 and ds.spectra.shape == (48, 64, 2, 4096)
    np.testing.assert_allclose(ds.energy.values, np.arange(4096) * 0.01)


def test_shapes_and_detector_counts():
    ds = example_dataset(shape=(5, 7), n_detectors=3, seed=1)
    assert ds.spectra.shape == (5, 7, 3, 4096)
    assert ds.deadtime.shape == (5, 7, 3)
    assert len(ds.attrs["geopixe_header"]["Detector"]) == 3
    truth = example_truth(shape=(5, 7), n_detectors=3)
    assert truth.expected_counts.shape == (5, 7, 3, len(LINE_GROUPS))


@pytest.mark.parametrize(
    "kwargs",
    [{"shape": (0, 4)}, {"shape": 5}, {"n_detectors": 0}, {"dwell_ms": 0.0}, {"pixel_mm": -1.0}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        example_dataset(**kwargs)


# --------------------------------------------------------------------------------------------
# Physics


def _peak_energy(energy: np.ndarray, spectrum: np.ndarray, lo: float, hi: float) -> float:
    m = (energy >= lo) & (energy <= hi)
    return float(energy[m][np.argmax(spectrum[m])])


def test_fe_ka_peak_position(default_map):
    ds, _ = default_map
    total = ds.spectra.values.sum(axis=(0, 1, 2), dtype=np.int64)
    assert abs(_peak_energy(ds.energy.values, total, 6.0, 6.8) - 6.40) <= 0.0101  # +/- 1 channel
    # Also in the single brightest Fe pixel, where Poisson noise could move it.
    fe = ds.spectra.values[..., 635:646].sum(axis=(2, 3), dtype=np.int64)
    y, x = np.unravel_index(np.argmax(fe), fe.shape)
    one = ds.spectra.values[y, x].sum(axis=0, dtype=np.int64)
    assert abs(_peak_energy(ds.energy.values, one, 6.0, 6.8) - 6.40) <= 0.0101


def test_scatter_peaks(default_map):
    ds, truth = default_map
    energy = ds.energy.values
    total = ds.spectra.values.sum(axis=(0, 1, 2), dtype=np.int64)
    mo_ka = xraylib.LineEnergy(42, xraylib.KA_LINE)  # rate-weighted Ka1/Ka2, 17.44 keV
    assert abs(_peak_energy(energy, total, 17.2, 17.8) - mo_ka) <= 0.0201
    # Compton of Mo Ka1 at the header's scattering angle.
    theta = np.radians(ds.attrs["geopixe_header"]["X-ray Source"]["Scat (°)"])
    mo_ka1 = xraylib.LineEnergy(42, xraylib.KL3_LINE)
    compton = mo_ka1 / (1 + mo_ka1 / 510.999 * (1 - np.cos(theta)))
    assert abs(_peak_energy(energy, total, 16.4, 17.15) - compton) <= 0.06
    mo_kb1 = xraylib.LineEnergy(42, xraylib.KM3_LINE)
    assert abs(_peak_energy(energy, total, 19.3, 19.9) - mo_kb1) <= 0.0201
    # Nothing below the 0.25 keV discriminator; a continuum everywhere else.
    assert total[:25].sum() == 0 and total[150:2000].min() > 0
    assert truth.expected_continuum.min() > 0


def test_counts_agree_with_truth(default_map):
    ds, truth = default_map
    observed = ds.spectra.values.sum(axis=3, dtype=np.int64).astype(float)
    expected = truth.expected_total.values
    z = (observed - expected) / np.sqrt(expected)
    n = z.size
    # chi-square per degree of freedom of a Poisson map is 1 +/- sqrt(2/n)
    assert abs(np.mean(z**2) - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z)) < 5 / np.sqrt(n)
    grand = observed.sum()
    assert abs(grand - expected.sum()) < 5 * np.sqrt(expected.sum())
    # Channel by channel on the map sum, where the expectation is large enough for a Gaussian limit.
    sum_obs = ds.spectra.values.sum(axis=(0, 1), dtype=np.int64).astype(float)
    sum_exp = truth.expected_sum_spectrum.values
    np.testing.assert_allclose(sum_exp.sum(axis=1), expected.sum(axis=(0, 1)), rtol=1e-10)
    ok = sum_exp > 20
    chi2 = np.mean((sum_obs[ok] - sum_exp[ok]) ** 2 / sum_exp[ok])
    assert abs(chi2 - 1) < 5 * np.sqrt(2 / ok.sum())


def test_wrong_truth_would_fail(default_map):
    """The Poisson checks above are sharp: a 2 % error in the expectation is detected."""
    ds, truth = default_map
    observed = ds.spectra.values.sum(axis=3, dtype=np.int64).astype(float)
    expected = truth.expected_total.values * 1.02
    z = (observed - expected) / np.sqrt(expected)
    assert abs(np.mean(z)) > 5 / np.sqrt(z.size)


def test_deadtime(default_map):
    ds, truth = default_map
    dt = ds.deadtime.values
    assert 3.0 < dt.min() < 8.0 and 35.0 < dt.max() < 45.0
    np.testing.assert_array_equal(dt, truth.deadtime.values.astype(np.float32))
    # Deadtime rises with the recorded count rate, for every detector.
    counts = ds.spectra.values.sum(axis=3, dtype=np.int64)
    for d in range(ds.sizes["detector"]):
        r = np.corrcoef(dt[:, :, d].ravel(), counts[:, :, d].ravel())[0, 1]
        assert r > 0.9
    # The model behind it: paralysable, ocr = icr exp(-icr tau), deadtime = 100 (1 - ocr/icr).
    icr, ocr = truth.icr.values, truth.ocr.values
    np.testing.assert_allclose(ocr, icr * np.exp(-icr * truth.attrs["tau_s"]), rtol=1e-12)
    np.testing.assert_allclose(truth.deadtime.values, 100 * (1 - ocr / icr), rtol=1e-10)
    # Detectors differ slightly.
    ratio = truth.icr.values[:, :, 1] / truth.icr.values[:, :, 0]
    assert 0.8 < ratio.mean() < 1.2 and abs(ratio.mean() - 1) > 0.02


def test_concentration_maps_are_varied(default_map):
    _, truth = default_map
    conc = truth.concentration
    assert conc.attrs["units"] == "ppm"
    elements = ["K", "Ca", "Ti", "Mn", "Fe", "Ni", "Cu", "Zn", "As", "Sr", "Pb"]
    assert list(conc.element.values) == elements
    for element in conc.element.values:
        c = conc.sel(element=element).values
        assert c.min() > 0
        assert c.max() / c.min() > 10, element
        assert c.std() / c.mean() > 0.1, element
    # Compositions are mass fractions: at most 1 in total.
    assert (conc.sum("element") < 1e6).all()
    # Major lines are well above 100 counts per pixel and detector somewhere, and the
    # major elements carry hundreds of counts in a typical pixel.
    counts = truth.expected_counts
    for line in ("Ca K", "Fe K", "Zn K", "Sr K", "Pb L"):
        assert counts.sel(line=line).max() > 1000, line
    for line in ("K K", "Ca K", "Fe K", "Sr K"):
        assert counts.sel(line=line).median() > 100, line
    # Not one map scaled: the majors are not all correlated with each other.
    fe, ca = conc.sel(element="Fe").values.ravel(), conc.sel(element="Ca").values.ravel()
    assert np.corrcoef(fe, ca)[0, 1] < 0.5


def test_expected_counts_follow_concentration(default_map):
    _, truth = default_map
    counts = truth.expected_counts / truth.live_fraction  # (y, x, detector, line)
    for label, element in LINE_GROUPS:
        c = truth.concentration.sel(element=element)
        k = (counts.sel(line=label) / c).values  # (y, x, detector)
        np.testing.assert_allclose(k, k[0:1, 0:1, :] * np.ones_like(k), rtol=1e-10, err_msg=label)
        sensitivity = truth.group_sensitivity.sel(line=label).values
        np.testing.assert_allclose(k[0, 0], sensitivity, rtol=1e-10)
    # So ratios between pixels are exactly the concentration ratios once deadtime is undone.
    fe = counts.sel(line="Fe K", detector=0).values
    c = truth.concentration.sel(element="Fe").values
    np.testing.assert_allclose(fe / fe[0, 0], c / c[0, 0], rtol=1e-10)
    assert list(truth.line.values) == [g for g, _ in LINE_GROUPS]
    assert truth.line_energy.sel(line="Fe K") == pytest.approx(6.404, abs=0.001)


def test_dwell_scales_counts_not_deadtime():
    a = example_truth(shape=(6, 8), dwell_ms=100.0)
    b = example_truth(shape=(6, 8), dwell_ms=50.0)
    np.testing.assert_allclose(b.expected_counts.values, a.expected_counts.values / 2, rtol=1e-12)
    np.testing.assert_allclose(b.deadtime.values, a.deadtime.values, rtol=1e-12)
    assert example_truth(shape=(6, 8), seed=5).identical(a)
