"""The pipeline on the example map and a reference material of known composition."""

import json

import pytest

import xrfdask as xd
from xrfdask.datasets import ELEMENTS, REFERENCE_DENSITY_MG_CM3, REFERENCE_THICKNESS_UM
from xrfdask.pipeline import PipelineError, process

SHAPE = (24, 32)
FIT = {"elements": list(ELEMENTS)}


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """The example map and its reference, the reference processed (fit, norm, detlim)."""
    folder = tmp_path_factory.mktemp("pipeline")
    sample = xd.datasets.example_geopixe(folder, shape=SHAPE)
    reference, cnc = xd.datasets.example_reference(folder, shape=SHAPE)
    report = process(
        reference,
        {"version": 1, "fit": FIT, "normalise": {}, "detection_limits": {"cnc": str(cnc)}},
    )
    return sample, report.output


def _config(reference_h5, **changes):
    config = {
        "version": 1,
        "fit": dict(FIT),
        "normalise": {},
        "quantify": {
            "references": [reference_h5],
            "density": REFERENCE_DENSITY_MG_CM3 / 1000,
            "thickness": REFERENCE_THICKNESS_UM * 1e-4,
        },
        "classify": {"method": "kmeans", "n_clusters": 4},
        "colour": {},
        "images": {"correlation": False},
        "export": {},
    }
    for step, params in changes.items():
        config[step] = {**config[step], **params}
    return config


def _status(report):
    return {s.step: s.status for s in report.steps}


def test_the_pipeline_writes_every_group_and_recovers_the_truth(maps, tmp_path):
    sample, reference_h5 = maps
    out = tmp_path / "sample.h5"
    report = process(sample, _config(reference_h5), output=out)
    assert set(_status(report).values()) == {"ran"}
    for group in ("fit", "norm", "quant", "kmeans"):
        record = json.loads(xd.open_h5(out, group=group).attrs["xrfdask_process"])
        assert record["xrfdask_version"] == xd.__version__
        assert record["inputs"]["raw"]  # the raw map's fingerprint
    fit_record = json.loads(xd.open_h5(out, group="fit").attrs["xrfdask_process"])
    assert fit_record["params"]["elements"] == list(ELEMENTS)
    images = tmp_path / "sample_images"
    assert (images / "colours.png").stat().st_size > 1000
    assert sorted(p.name for p in images.glob("*_overview.png")) == [
        "sample_ch0_quant_overview.png",
        "sample_ch1_quant_overview.png",
    ]
    assert (images / "tiff_quant").is_dir() and list((images / "tiff_quant").iterdir())
    assert (images / "quant_0.csv").exists() and (images / "quant_1.csv").exists()
    # Map averages against the truth: the reference's yields are the true ones (linear physics).
    quant = xd.open_h5(out, group="quant")
    truth = xd.datasets.example_truth(shape=SHAPE)["concentration"].mean(("y", "x"))
    for element in ("K", "Ca", "Fe", "Zn", "Sr"):
        found = float(quant.sum_concentration.sel(detector=0, line=f"{element} K"))
        assert found == pytest.approx(float(truth.sel(element=element)), rel=0.02), element
    assert str(report).splitlines()[0] == f"{sample} -> {out} (images and exports: {images})"


def test_a_second_run_skips_every_step_and_a_change_redoes_only_what_depends_on_it(maps, tmp_path):
    sample, reference_h5 = maps
    out = tmp_path / "sample.h5"
    process(sample, _config(reference_h5), output=out)
    before = xd.open_h5(out, group="fit").attrs["xrfdask_process"]
    again = process(sample, _config(reference_h5), output=out)
    assert set(_status(again).values()) == {"up to date"}
    assert xd.open_h5(out, group="fit").attrs["xrfdask_process"] == before  # not rewritten

    changed = process(sample, _config(reference_h5, normalise={"I0norm": 10.0}), output=out)
    assert _status(changed) == {
        "fit": "up to date",
        "normalise": "ran",
        "quantify": "ran",  # reads norm/
        "classify": "up to date",  # the raw spectra
        "colour": "up to date",
        "images": "ran",  # draws quant/
        "export": "ran",
    }
    config = _config(reference_h5, normalise={"I0norm": 10.0}, classify={"n_clusters": 3})
    only = process(sample, config, output=out)
    assert [s for s, v in _status(only).items() if v == "ran"] == ["classify"]
    assert int(xd.open_h5(out, group="kmeans").attrs.get("n_clusters", 3)) == 3
    assert process(sample, config, output=out, force=True).steps[0].status == "ran"


def test_an_edited_reference_file_redoes_the_steps_that_read_it(maps, tmp_path):
    sample, _ = maps
    folder = tmp_path / "ref"
    reference, cnc = xd.datasets.example_reference(folder, shape=SHAPE)
    ref_config = {"version": 1, "fit": FIT, "normalise": {}, "detection_limits": {"cnc": str(cnc)}}
    process(reference, ref_config)
    assert set(_status(process(reference, ref_config)).values()) == {"up to date"}
    lines = [("26\t60000\t0" if r.startswith("26\t") else r) for r in cnc.read_text().split("\n")]
    cnc.write_text("\n".join(lines))  # Fe's certificate edited
    assert _status(process(reference, ref_config))["detection_limits"] == "ran"


def test_a_failing_step_says_which_and_keeps_the_steps_before_it(maps, tmp_path, capsys):
    sample, _ = maps
    out = tmp_path / "sample.h5"
    config = _config(str(tmp_path / "missing.h5"))
    with pytest.raises(PipelineError) as info:
        process(sample, config, output=out)
    assert str(info.value).startswith("step 'quantify' failed: ")
    assert "missing.h5: no such file" in str(info.value)
    assert "peak_area" in xd.open_h5(out, group="fit")
    assert "normalised" in xd.open_h5(out, group="norm")
    # The command: one line, exit status 1.
    from xrfdask.cli import main

    path = tmp_path / "pipeline.toml"
    path.write_text(
        'version = 1\n[fit]\nelements = ["Fe", "Zn"]\n[normalise]\n[quantify]\n'
        'references = ["missing.h5"]\n'
    )
    assert main(["process", str(sample), "--config", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err  # the progress bars of fit and normalise, then one line
    assert "Traceback" not in err
    assert (
        err.rstrip().splitlines()[-1].startswith("xrfdask process: error: step 'quantify' failed")
    )


def test_a_step_needing_a_missing_group_says_so(maps, tmp_path):
    sample, _ = maps
    with pytest.raises(PipelineError, match=r"needs fit/ in .*: add the \[fit\] step"):
        process(sample, {"version": 1, "normalise": {}}, output=tmp_path / "x.h5")


def test_the_command_prints_the_example_and_a_summary(maps, tmp_path, capsys):
    from xrfdask.cli import main

    assert main(["process", "--example-config"]) == 0
    example = capsys.readouterr().out
    assert example.startswith("# xrfdask pipeline configuration") and "version = 1" in example
    sample, _ = maps
    path = tmp_path / "p.toml"
    path.write_text('version = 1\n[fit]\nelements = ["Fe", "Zn", "Sr"]\n[colour]\n')
    out = tmp_path / "s.h5"
    assert main(["process", str(sample), "--config", str(path), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"-> {out} (images and exports: {tmp_path / 's_images'})")
    assert [line.split()[:2] for line in lines[1:3]] == [["fit", "ran"], ["colour", "ran"]]
    assert lines[-1].split()[0] == "total"
    lines = list(xd.open_h5(out, group="fit").line.values)
    assert lines[:3] == ["Fe K", "Zn K", "Sr K"] and "Compt" in lines  # the elements, scatter
