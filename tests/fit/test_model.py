"""Building the linear model: its small linear algebra runs on one BLAS thread."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import xrfdask as xd
from xrfdask.datasets import ELEMENTS, example_dataset
from xrfdask.errors import ConfigError
from xrfdask.fit import model as model_module


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_build_model_holds_blas_to_one_thread_and_restores_it(monkeypatch):
    """BLAS threads woken by the model's SVD would spin on the cores dask's workers need next."""
    ds = example_dataset(shape=(8, 10), seed=1)
    config = xd.make_fit_config(ds, list(ELEMENTS))
    before = _blas_threads()
    assert before, "numpy's BLAS is not visible to threadpoolctl"
    seen = []
    svd = np.linalg.svd

    def recording_svd(*args, **kwargs):
        seen.append(_blas_threads())
        return svd(*args, **kwargs)

    monkeypatch.setattr(model_module.np.linalg, "svd", recording_svd)
    built = model_module.build_model(
        config, ds.spectra.values[:, :, 0].sum((0, 1), dtype=float), npixels=80
    )
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert _blas_threads() == before
    weighted = built.derivatives if built.weights is None else built.derivatives / built.weights
    np.testing.assert_allclose(built.pinv @ weighted, np.eye(built.n_free), atol=1e-8)


def test_pymca_refusal_is_a_one_line_config_error(monkeypatch):
    # Found by benchmarks/fuzz_inputs.py: PyMca's own message ("No K xrays for element Tc\nToo
    # high attenuation?") made the ConfigError two lines.
    def refuse(key, weight, npixels):
        raise ValueError("No K xrays for element Tc\nToo high attenuation?")

    monkeypatch.setattr(model_module, "fast_fit", refuse)
    with pytest.raises(ConfigError, match=r"No K xrays for element Tc Too high attenuation\?") as e:
        model_module.check_with_pymca({"fit": {}}, weight=None, npixels=1)
    assert "\n" not in str(e.value)


def test_a_model_pymca_cannot_compute_is_a_config_error():
    # Found by benchmarks/fuzz_inputs.py: PyMca's peak widths overflowed (Python's OverflowError
    # out of xd.fit). validate_config refuses such a noise now; the model is guarded as well.
    ds = example_dataset(shape=(2, 3), n_detectors=1)
    config = xd.make_fit_config(ds, list(ELEMENTS))
    config["detector"].update(noise=1e200, fixednoise=0)
    with pytest.raises(ConfigError, match="PyMca"):
        model_module.build_model(config, ds.spectra.values[:, :, 0].sum((0, 1), dtype=float),
                                 npixels=6)  # fmt: skip
