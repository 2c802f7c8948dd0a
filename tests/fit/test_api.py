"""xd.fit on the example map: chunk invariance, equality with PyMca run the old way, truth."""

import copy

import dask
import h5py
import numpy as np
import pytest
from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
from threadpoolctl import threadpool_info

import xrfdask as xd
from xrfdask import ConfigError
from xrfdask.datasets import ELEMENTS, example_truth
from xrfdask.deadtime_correction import corrected_fit
from xrfdask.errors import XrfdaskWarning
from xrfdask.io.h5layout import open_h5, to_h5

MAJORS = ["Ca K", "Fe K", "Sr K", "Zn K"]


class ComputeForbidden:
    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("something was computed")


@pytest.fixture(scope="module")
def example(example_path):
    return xd.open_geopixe(example_path, chunks=7)


@pytest.fixture(scope="module")
def config(example):
    return xd.make_fit_config(example, list(ELEMENTS))


@pytest.fixture(scope="module")
def fits(example, config):
    return {
        method: xd.fit(example, config, method=method).compute() for method in ("linear", "pymca")
    }


def old_way(ds, config, detector, **kwargs):
    """xrf_proc's fit_xrf_batch fast path: the whole cube in memory, one fitMultipleSpectra call."""
    cube = ds.spectra.isel(detector=detector).values  # uint16, as xrf_proc passes it
    ysum = cube.sum((0, 1), dtype=np.float64)
    fast = FastXRFLinearFit()
    fast.setFitConfiguration(copy.deepcopy(config))
    out = fast.fitMultipleSpectra(
        x=np.arange(cube.shape[-1]), y=cube, ysum=ysum, save=False, **kwargs
    )
    return out["parameters"], out["uncertainties"], list(out.labels("parameters"))


def test_result_dataset(fits, example):
    fit = fits["linear"]
    assert fit.peak_area.dims == ("y", "x", "detector", "line")
    assert fit.peak_area.shape == (48, 64, 2, fit.sizes["line"])
    assert {"Fe K", "Pb L", "Pb M", "Compt", "Rayl"} <= set(fit.line.values)
    assert fit.sum_area.dims == ("detector", "line") and fit.sum_background.dims == (
        "detector",
        "line",
    )
    assert "[peaks]" in str(fit.config.values[0]) and fit.attrs["method"] == "linear"
    assert fit.attrs["config"] == fit.config.values[0]  # the configuration text, as PyMca writes it
    np.testing.assert_array_equal(fit.x, example.x)
    assert (fit.peak_area.values >= 0).all()  # the refit leaves no negative area


@pytest.mark.parametrize("method", ["pymca", "linear"])
def test_pymca_method_equals_pymca_on_the_whole_map(example, config, fits, method):
    """Chunked (7-row bands) and the refit decided map-wide: PyMca's numbers, to 1e-6."""
    fit = fits[method]
    for d in (0, 1):
        params, errors, labels = old_way(example, config, d, refit=True)
        for i, label in enumerate(labels):
            line = {"Scatter Peak000": "Rayl", "Scatter Compton000": "Compt"}.get(
                label, label.replace("Scatter Peak", "Rayl").replace("Scatter Compton", "Compt")
            )
            ours = fit.peak_area.sel(detector=d, line=line).values
            if method == "pymca":
                np.testing.assert_allclose(
                    ours,
                    params[i],
                    rtol=1e-6,
                    atol=1e-6 * np.abs(params[i]).max(),
                    err_msg=f"{label} det {d}",
                )
                np.testing.assert_allclose(
                    fit.peak_area_error.sel(detector=d, line=line).values, errors[i], rtol=1e-6
                )
            else:
                # The linear engine: within 0.5 % for lines with at least 100 counts per pixel.
                strong = params[i] >= 100
                if strong.any():
                    np.testing.assert_allclose(
                        ours[strong], params[i][strong], rtol=5e-3, err_msg=f"{label} det {d}"
                    )


@pytest.mark.parametrize("method", ["linear", "pymca"])
def test_chunking_does_not_change_the_result(example_path, config, fits, method):
    reference = fits[method].peak_area
    for rows in (1, -1):
        ds = xd.open_geopixe(example_path, chunks=rows)
        got = xd.fit(ds, config, method=method).peak_area.values
        np.testing.assert_allclose(
            got, reference.values, rtol=1e-6, atol=1e-4, err_msg=f"chunks={rows}"
        )


@pytest.mark.parametrize("method", ["linear", "pymca"])
def test_any_array_gives_the_result_of_the_geopixe_fast_path(example, config, fits, method):
    """A .GeoPIXE map is decoded straight into trimmed floats; other arrays take their blocks."""
    names = {
        dask.utils.key_split(k)
        for k in xd.fit(example, config, method=method).peak_area.data.__dask_graph__()
    }
    assert "geopixe-read-fit" in names and "fit-trim" not in names
    memory = example[["spectra"]].compute()
    memory["spectra"] = memory.spectra.astype(np.float32)  # a float map covering every channel
    before = memory.spectra.values.copy()
    got = xd.fit(memory, config, method=method)
    assert "fit-trim" in {dask.utils.key_split(k) for k in got.peak_area.data.__dask_graph__()}
    np.testing.assert_allclose(
        got.peak_area.values, fits[method].peak_area.values, rtol=1e-6, atol=1e-4
    )
    # The background is not subtracted in place.
    np.testing.assert_array_equal(memory.spectra.values, before)


def test_sum_spectrum_fit(example, config, fits):
    fit = fits["linear"]
    sums = example.spectra.sum(("y", "x")).values
    for d in (0, 1):
        theory = ClassMcaTheory.McaTheory()
        cfg = copy.deepcopy(config)
        cfg["fit"]["use_limit"] = 1
        theory.setConfiguration(cfg)
        theory.setData(
            x=np.arange(4096.0),
            y=sums[d].astype(float),
            xmin=cfg["fit"]["xmin"],
            xmax=cfg["fit"]["xmax"],
        )
        theory.estimate()
        _, result = theory.startfit(digest=1)
        for group in ("Fe K", "Sr K"):
            assert fit.sum_area.sel(detector=d, line=group) == pytest.approx(
                result[group]["fitarea"]
            )
            assert fit.sum_background.sel(detector=d, line=group) == pytest.approx(
                result[group]["statistics"] - result[group]["fitarea"]
            )
            assert (
                0
                < fit.sum_background.sel(detector=d, line=group)
                < fit.sum_area.sel(detector=d, line=group)
            )


def test_fitted_maps_follow_the_true_concentrations(fits, example):
    truth = example_truth()
    fit = fits["linear"]
    live = 1 - example.deadtime.values / 100
    for line in MAJORS:
        conc = truth.concentration.sel(element=line.split()[0]).values.ravel()
        for d in (0, 1):
            area = fit.peak_area.sel(line=line, detector=d).values
            assert np.corrcoef(area.ravel(), conc)[0, 1] >= 0.99, line
            # Corrected for the live time the records carry, areas are proportional to
            # concentration.
            assert np.corrcoef((area / live[:, :, d]).ravel(), conc)[0, 1] >= 0.998, line


def test_ratios_between_pixels_within_counting_statistics(fits, example):
    """Area_i / area_j = truth_i / truth_j: residuals scaled by the counts in the line windows."""
    import xraylib as xl

    truth = example_truth()
    spectra = example.spectra.values.astype(float)
    fit = fits["linear"]
    for line in ("Ca K", "Fe K", "Sr K"):
        z_number = xl.SymbolToAtomicNumber(line.split()[0])
        window = np.zeros(4096, bool)
        for emission in (xl.KA1_LINE, xl.KB1_LINE):
            energy = xl.LineEnergy(z_number, emission)
            fwhm = np.sqrt(0.1**2 + 2.3548**2 * 0.114 * 0.00385 * energy)
            window[int((energy - 1.5 * fwhm) / 0.01) : int((energy + 1.5 * fwhm) / 0.01) + 1] = True
        for d in (0, 1):
            area = fit.peak_area.sel(line=line, detector=d).values
            expected = truth.expected_counts.sel(line=line, detector=d).values
            bright = expected > np.percentile(expected, 75)
            scale = area[bright].sum() / expected[bright].sum()  # one calibration factor per line
            z = (area - scale * expected) / np.sqrt(spectra[:, :, d][..., window].sum(-1))
            assert abs(z[bright].mean()) < 0.5 and z[bright].std() < 1.5, (line, d, z[bright].std())


def test_detector_sum_and_selection(example, config, fits):
    summed = xd.fit(example, config, detector="sum").compute()
    assert list(summed.detector.values) == ["sum"]
    # The same as fitting a one-detector map of the summed spectra...
    manual = (
        example.spectra.sum("detector")
        .astype("uint32")
        .expand_dims(detector=[0], axis=2)
        .to_dataset(name="spectra")
    )
    np.testing.assert_allclose(
        summed.peak_area.values, xd.fit(manual, config).peak_area.values, rtol=1e-6, atol=1e-3
    )
    # ... and, the detectors differing slightly in resolution, close to the sum of both fits.
    both = fits["linear"].peak_area.sel(line="Fe K").sum("detector")
    assert float(summed.peak_area.sel(detector="sum", line="Fe K").sum()) == pytest.approx(
        float(both.sum()), rel=0.01
    )
    one = xd.fit(example, config, detector=1)
    assert list(one.detector.values) == [1]
    with pytest.raises(ConfigError, match="detector=5"):
        xd.fit(example, config, detector=5)


def test_fit_is_lazy_but_for_the_sum_spectrum(example, config):
    computed = []

    def counting(dsk, keys, **kwargs):
        computed.append(keys)
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=counting):
        fit = xd.fit(example, config)
    assert len(computed) == 1  # the global sum spectrum, one reduction
    names = {dask.utils.key_split(k) for k in fit.peak_area.data.__dask_graph__()}
    assert {"geopixe-read-fit", "fit-linear", "xrf-global-refit", "fit-area", "fit-model"} <= names


def test_bad_configuration_fails_before_any_task(example, config):
    bad = copy.deepcopy(config)
    bad["fit"]["xmin"] = 5000  # an empty range (PyMca: no free parameters)
    with dask.config.set(scheduler=ComputeForbidden()):
        with pytest.raises(ConfigError, match="fit.xmin"):
            xd.fit(example, bad)
        with pytest.raises(ConfigError, match="method='magic'"):
            xd.fit(example, config, method="magic")
        nosnip = copy.deepcopy(config)
        nosnip["fit"]["stripalgorithm"] = 0
        with pytest.raises(ConfigError, match="fit.stripalgorithm"):
            xd.fit(example, nosnip, method="linear")
        unknown = copy.deepcopy(config)
        unknown["peaks"]["Xx"] = "K"
        with pytest.raises(ConfigError, match="peaks.Xx"):
            xd.fit(example, unknown)
    # Spectra shorter than the configured range: PyMca fits up to their last channel, so does xd.
    short = example.isel(channel=slice(0, 1500), y=slice(0, 4))
    with pytest.warns(XrfdaskWarning, match=r"^fit\.xmax: .*1500 channels"):
        assert xd.fit(short, config).attrs["fit_range_channels"][1] == 1500


def test_written_in_the_xrf_proc_layout(example, fits, tmp_path):
    fit = fits["pymca"]
    assert not fit.attrs["deadtime_corrected"]  # raw counts in memory
    path = to_h5(fit, tmp_path / "fit.h5")
    # xrf_proc's fit/ is dead-time corrected (spec 3.7): per pixel 1 / (1 - deadtime / 100) for
    # .GeoPIXE records, the sums by the mean factor.
    factor = 1.0 / (1.0 - example.deadtime.sel(detector=1).values.astype(np.float64) / 100.0)
    want = fit.peak_area.sel(detector=1).values * factor.astype(np.float32)[..., None]
    with h5py.File(path) as f:
        assert f["fit"].attrs["deadtime_corrected"]
        g = f["fit/channel01"]
        names = [n.decode() for n in g["names"][...]]
        assert names == list(fit.line.values)
        np.testing.assert_array_equal(g["ims"][...], want.transpose(2, 0, 1))
        assert "[peaks]" in g["cfg"][()].decode()
        mean = factor.mean()
        np.testing.assert_allclose(g["sum/int"][...], fit.sum_area.sel(detector=1).values * mean)
        np.testing.assert_allclose(
            g["sum/bkg"][...], fit.sum_background.sel(detector=1).values * mean
        )
        assert "deadtime_factor" not in g
    back = open_h5(path, group="fit")
    assert back.attrs["deadtime_corrected"]
    np.testing.assert_array_equal(back.peak_area.sel(detector=1).values, want)


def test_fit_through_a_distributed_cluster(example_path, config, fits, dask_cluster):
    from distributed import Client

    with Client(scheduler_file=str(dask_cluster)) as client:
        ds = xd.open_geopixe(example_path, chunks=5)
        remote = xd.fit(ds, config, method="pymca").peak_area.compute()
        # Worker processes start with BLAS on one thread (distributed's nanny sets
        # OPENBLAS_NUM_THREADS=1): the worker-level form of the fit's per-task limit.
        blas = client.run(
            lambda: [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        )
        assert blas and all(t and set(t) == {1} for t in blas.values()), blas
    np.testing.assert_allclose(remote.values, fits["pymca"].peak_area.values, rtol=1e-6, atol=1e-4)


def test_streamed_writers_decide_the_refit_once(example_path, config, monkeypatch, tmp_path):
    from xrfdask.fit.engines import blocks

    calls = []
    original = blocks._log

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(blocks, "_log", counting)
    ds = xd.open_geopixe(example_path, chunks=5)  # 10 bands written one after the other
    fit = xd.fit(ds, config)
    to_h5(fit, tmp_path / "fit.h5")
    assert calls == [1]
    np.testing.assert_allclose(
        open_h5(tmp_path / "fit.h5", group="fit").peak_area.values,
        corrected_fit(fit).peak_area.values,
        rtol=1e-6,
    )


def test_chunk_invariance_with_rows_split_along_x(example_path, config, fits):
    with dask.config.set({"xrfdask.chunk-size": "300KiB"}):
        ds = xd.open_geopixe(example_path)
        assert len(ds.spectra.chunks[1]) > 1
        got = xd.fit(ds, config).peak_area.values
    np.testing.assert_allclose(got, fits["linear"].peak_area.values, rtol=1e-6, atol=1e-3)


def test_configuration_pymca_rejects_fails_before_any_task(example, config):
    bad = copy.deepcopy(config)
    bad["attenuators"]["Matrix"] = [1, "MULTILAYER", 1.0, 0.1, 45.0, 45.0, 0, 90.0]
    bad["multilayer"] = {"Layer0": [1, "Qq", 1.0, 0.1]}
    with dask.config.set(scheduler=ComputeForbidden()):
        with pytest.raises(ConfigError, match="PyMca rejects the configuration"):
            xd.fit(example, bad)


def test_sum_spectrum_pymca_cannot_fit_gives_nan_and_a_warning():
    # Found by benchmarks/fuzz_inputs.py: a matrix scattering angle of 0 degrees puts the Compton
    # peaks on the Rayleigh ones; PyMca's full fit of the sum spectrum then raised numpy's
    # LinAlgError out of xd.fit's sum task. The pixels' linear fit is unaffected.
    ds = xd.datasets.example_dataset(shape=(2, 3), n_detectors=1)
    config = xd.make_fit_config(ds, list(ELEMENTS))
    config["attenuators"]["Matrix"][6:8] = [1, 0.0]
    fit = xd.fit(ds, config)
    with pytest.warns(XrfdaskWarning, match=r"sum spectrum failed \(LinAlgError: Singular matrix"):
        sums = fit.sum_area.values
    assert np.isnan(sums).all() and np.isfinite(fit.peak_area.values).all()
