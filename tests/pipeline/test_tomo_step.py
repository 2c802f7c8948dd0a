"""The pipeline's [tomo] step: tomo/ from norm/, with provenance, up to date on a re-run."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skimage")

import xrfdask as xd  # noqa: E402
from tests.cli.test_tomo import scan_file  # noqa: E402
from tests.test_tomo import N  # noqa: E402
from xrfdask.pipeline import process  # noqa: E402
from xrfdask.pipeline.config import STEPS, load_config  # noqa: E402


def test_tomo_runs_after_quantify_and_is_up_to_date_on_a_rerun(tmp_path):
    assert STEPS.index("tomo") == STEPS.index("quantify") + 1
    path = scan_file(tmp_path)
    config = {"version": 1, "tomo": {"signal": "Fe K", "lines": ["Fe K", "Zn K"]}}
    report = process(path, config)
    assert [(s.step, s.status) for s in report.steps] == [("tomo", "ran")]
    rec = xd.open_h5(path, group="tomo")
    assert list(rec["line"].values) == ["Fe K", "Zn K"]
    assert rec["tomogram"].shape == (1, 2, N, N) and "transmission" in rec
    assert abs(float(rec["rotation_center"][0]) - N // 2) <= 0.5
    record = json.loads(rec.attrs["xrfdask_process"])
    assert record["step"] == "tomo" and record["params"]["algorithm"] == "fbp"
    again = process(path, config)
    assert [s.status for s in again.steps] == ["up to date"]
    changed = process(path, {"version": 1, "tomo": {"centre": 31.5, "lines": ["Fe K"]}})
    assert [s.status for s in changed.steps] == ["ran"]
    assert float(xd.open_h5(path, group="tomo")["rotation_center"][0]) == 31.5


def test_bad_tomo_parameters_are_refused_before_running(tmp_path):
    with pytest.raises(xd.ConfigError, match="tomo"):
        load_config({"version": 1, "tomo": {"centre": "middle"}})
