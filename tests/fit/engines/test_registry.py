"""The registry of fit engines: fit() dispatches through it, a new engine is one class."""

import dask
import numpy as np
import pytest

import xrfdask as xd
from xrfdask import ConfigError
from xrfdask.datasets import ELEMENTS, example_dataset
from xrfdask.fit import METHODS, api, engines
from xrfdask.fit.config import METHODS as CONFIG_METHODS
from xrfdask.fit.engines.linear import LinearEngine, solve_linear

SOLVED = []


def counting_solve(y, model):
    SOLVED.append(y.shape)
    return solve_linear(y, model)


class EchoEngine(LinearEngine):
    """A new engine in a few lines: the linear engine's solve, under another name."""

    name = "linear-echo"
    solve = staticmethod(counting_solve)


@pytest.fixture
def echo():
    engine = engines.register(EchoEngine())
    yield engine
    del engines._ENGINES[engine.name]


def test_the_built_in_engines_are_the_methods():
    assert METHODS == api.METHODS == engines.METHODS == ("linear", "pymca", "full")
    assert CONFIG_METHODS == METHODS
    assert [engines.get(m).name for m in METHODS] == list(METHODS)
    assert type(engines.get("pymca")).__name__ == "PymcaEngine"


def test_unknown_method_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"method='magic': expected one of linear, pymca, full"):
        engines.get("magic")
    with pytest.raises(ConfigError, match=r"method=\['linear'\]"):
        engines.get(["linear"])


def test_a_name_is_registered_once(echo):
    assert engines.register(echo) is echo  # the same engine again: no-op
    with pytest.raises(ValueError, match="'linear-echo' is already registered"):
        engines.register(EchoEngine())
    assert engines.methods() == (*METHODS, "linear-echo")


def test_fit_dispatches_to_a_registered_engine(echo):
    ds = example_dataset(shape=(12, 10), seed=2).chunk({"y": 4})
    config = xd.make_fit_config(ds, list(ELEMENTS))
    SOLVED.clear()
    with dask.config.set(scheduler="synchronous"):
        got = xd.fit(ds, config, method="linear-echo")
        names = {dask.utils.key_split(k) for k in got.peak_area.data.__dask_graph__()}
        assert "fit-linear-echo" in names and "fit-linear" not in names
        assert got.attrs["method"] == "linear-echo"
        got = got.peak_area.values
        assert len(SOLVED) == 3 * ds.sizes["detector"]  # one solve per band and detector
        np.testing.assert_array_equal(got, xd.fit(ds, config, method="linear").peak_area.values)
