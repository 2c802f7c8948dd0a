import re

import pytest

import xrfdask as xd


def test_demo_runs_the_whole_pipeline_and_writes_the_report(run, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run("demo", "--out", str(out))
    assert code == 0, err
    assert (out / "example.GeoPIXE").exists() and (out / "reference.GeoPIXE").exists()
    assert "64 x 48 pixels" in stdout
    assert "fitted 6,144 spectra in " in stdout
    for group in ("fit", "norm", "quant", "kmeans", "PCA"):
        xd.open_h5(out / "example.h5", group=group)  # every group readable
    for group in ("fit", "norm", "detlim", "elyield"):
        xd.open_h5(out / "reference.h5", group=group)
    # Map averages against the truth, printed and in the report.
    truth = xd.datasets.example_truth()["concentration"].mean(("y", "x"))
    for element in ("Ca", "Fe", "Zn", "Sr"):
        row = re.search(rf"^  {element} K +([\d.]+) +([\d.]+) +[-+][\d.]+ %$", stdout, re.M)
        assert float(row[1]) == pytest.approx(float(truth.sel(element=element)), rel=1e-3)
        assert float(row[2]) == pytest.approx(float(row[1]), rel=0.02), element
    report = (out / "report.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', report)
    assert len(images) >= 5
    for src in images:
        assert (out / src).stat().st_size > 1000, src
    assert "<th>true (ug/g)</th>" in report
    # The configurations are written for reuse: a second run finds everything up to date.
    code, again, err = run("process", str(out / "example.GeoPIXE"), "--config",
                           str(out / "example.toml"))  # fmt: skip
    assert code == 0, err
    assert "ran" not in {line.split()[1] for line in again.splitlines()[1:-1]}
