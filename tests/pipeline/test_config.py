import tomllib

import pytest

from xrfdask.errors import ConfigError
from xrfdask.pipeline import EXAMPLE_CONFIG, STEPS, VERSION, load_config


def _write(tmp_path, text):
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_runs_its_uncommented_steps(tmp_path):
    tomllib.loads(EXAMPLE_CONFIG)
    cfg = load_config(_write(tmp_path, EXAMPLE_CONFIG))
    assert list(cfg.steps) == ["fit", "normalise", "classify", "colour", "images", "export"]
    assert cfg.steps["fit"]["method"] == "linear"
    assert cfg.steps["normalise"]["tmnorm"] is False  # defaults filled in
    assert cfg.steps["classify"]["n_clusters"] == 6


def test_steps_run_in_pipeline_order_and_paths_are_relative_to_the_file(tmp_path):
    cfg = load_config(
        _write(
            tmp_path,
            'version = 1\n[classify]\n[quantify]\nreferences = ["refs/a.h5"]\n[fit]\n'
            'config = "my.cfg"\n',
        )
    )
    assert list(cfg.steps) == ["fit", "quantify", "classify"]
    assert cfg.steps["fit"]["config"] == str(tmp_path / "my.cfg")
    assert cfg.steps["quantify"]["references"] == [str(tmp_path / "refs" / "a.h5")]
    assert STEPS.index("fit") < STEPS.index("quantify") < STEPS.index("classify")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[fit]\n", f"no 'version' key; this xrfdask reads version = {VERSION}"),
        ("version = 99\n[fit]\n", "version 99 is newer than this xrfdask reads (1)"),
        ("version = 0\n[fit]\n", "version = 0; expected an integer 1..1"),
        ("version = 1\n[fitt]\n", "unknown table or key 'fitt'"),
        ("version = 1\n[fit]\nmethd = 'linear'\n", "[fit] has an unknown key 'methd'"),
        ("version = 1\n[classify]\nn_clusters = 'six'\n", "[classify] n_clusters = 'six'"),
        ("version = 1\n[normalise]\ntmnorm = 1\n", "[normalise] tmnorm = 1; expected bool"),
        ("version = 1\n[output]\npath = 'a.h5'\n", "no step to run"),
        ("version = 1\n[fit\n", "not valid TOML"),
    ],
)
def test_bad_configurations_name_the_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_dict_works_like_a_file():
    cfg = load_config({"version": 1, "fit": {"elements": ["Fe"]}})
    assert cfg.steps == {"fit": {"method": "linear", "config": None, "elements": ["Fe"],
                                 "detector": None, "excitation": None}}  # fmt: skip
