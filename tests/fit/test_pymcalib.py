"""PyMca's configured objects, cached per process and configuration."""

import copy

import numpy as np

import xrfdask as xd
from xrfdask.datasets import ELEMENTS, example_dataset
from xrfdask.fit import pymcalib


def test_config_key_is_canonical_and_json():
    ds = example_dataset(shape=(4, 4), seed=1)
    config = xd.make_fit_config(ds, list(ELEMENTS))
    reordered = dict(reversed(list(copy.deepcopy(config).items())))
    assert pymcalib.config_key(reordered) == pymcalib.config_key(config)
    with_array = copy.deepcopy(config)
    with_array["fit"]["energy"] = np.array(config["fit"]["energy"], dtype=float)
    assert pymcalib.config_key(with_array) == pymcalib.config_key(config)


def test_configured_objects_are_shared_and_honour_the_fit_range():
    ds = example_dataset(shape=(4, 4), seed=1)
    key = pymcalib.config_key(xd.make_fit_config(ds, list(ELEMENTS)))
    with pymcalib.PYMCA_LOCK:
        assert pymcalib.fast_fit(key, None, 16) is pymcalib.fast_fit(key, None, 16)
        theory = pymcalib.theory(key)
        assert pymcalib.theory(key) is theory
    assert theory.config["fit"]["use_limit"] == 1


def test_line_labels():
    assert pymcalib.line_label("Scatter Peak000") == "Rayl"
    assert pymcalib.line_label("Scatter Compton001") == "Compt001"
    assert pymcalib.line_label("Fe K") == "Fe K"
