"""The files in deploy/: they parse, name what they must, and dask-jobqueue accepts the example."""

from __future__ import annotations

import re
import shutil
import subprocess

import dask
import pytest
import yaml

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
IMAGE = "registry.example.org/xrfdask:0.1.0"


def _daskcluster() -> dict:
    return yaml.safe_load((DEPLOY / "kubernetes" / "daskcluster.yaml").read_text())


def test_daskcluster_manifest_names_the_image_scheduler_and_workers():
    doc = _daskcluster()
    assert doc["apiVersion"] == "kubernetes.dask.org/v1" and doc["kind"] == "DaskCluster"
    assert doc["metadata"]["name"] == "xrfdask"
    worker, scheduler = doc["spec"]["worker"], doc["spec"]["scheduler"]
    assert worker["replicas"] >= 1
    (w,) = worker["spec"]["containers"]
    (s,) = scheduler["spec"]["containers"]
    assert w["image"] == s["image"] == IMAGE  # one image: versions match
    assert w["command"][:2] == ["dask", "worker"] and "$(DASK_WORKER_NAME)" in w["command"]
    assert "xrfdask.runtime.preload" in w["command"]
    assert s["command"] == ["dask", "scheduler"]
    assert {p["containerPort"] for p in s["ports"]} == {8786, 8787}
    # Nothing exposed outside the Kubernetes cluster: the dashboard is port-forwarded.
    assert scheduler["service"]["type"] == "ClusterIP"
    for spec in (worker["spec"], scheduler["spec"]):
        assert spec["securityContext"]["runAsNonRoot"] is True
        mounts = {m["name"]: m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]}
        assert mounts["data"] == "/data"


def test_daskcluster_manifest_with_kubectl(tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    # `kubectl apply --dry-run=client` needs an API server that knows the DaskCluster resource;
    # kustomize reads and re-renders the manifest without one.
    shutil.copy(DEPLOY / "kubernetes" / "daskcluster.yaml", tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - daskcluster.yaml\n")
    result = subprocess.run(
        [kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == _daskcluster()


def test_jobqueue_example_has_a_slurm_job_and_dask_jobqueue_renders_it():
    doc = yaml.safe_load((DEPLOY / "slurm" / "jobqueue.yaml").read_text())
    slurm = doc["jobqueue"]["slurm"]
    assert slurm["cores"] == 8 and slurm["memory"] == "32GiB"
    assert slurm["scheduler-options"]["dashboard_address"].startswith("127.0.0.1:")
    pytest.importorskip("dask_jobqueue", reason="the test extra installs it")
    from xrfdask.runtime.clusters import jobqueue_cluster

    config = {f"jobqueue.slurm.{key}": value for key, value in slurm.items()}
    config["jobqueue.slurm.scheduler-options"] = {}
    with dask.config.set(config):
        cluster = jobqueue_cluster(
            "slurm", dashboard_address="127.0.0.1:0", scheduler_options={"host": "127.0.0.1"}
        )
        try:
            script = cluster.job_script().splitlines()
        finally:
            cluster.close()
    assert {"#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G", "#SBATCH -t 02:00:00"} <= set(script)
    assert 'source "$HOME/xrfdask-venv/bin/activate"' in script
    assert "--nworkers 2" in script[-1] and "--local-directory $TMPDIR" in script[-1]


def test_sbatch_script_submits_xrfdask_process_on_slurm():
    text = (DEPLOY / "slurm" / "process.sbatch").read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    directives = [line for line in lines if line.startswith("#SBATCH ")]
    assert any("--time=" in d for d in directives) and any("--mem=" in d for d in directives)
    # sbatch reads #SBATCH lines only before the first command.
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(lines.index(d) < first_command for d in directives)
    command = re.search(r"^xrfdask process .*?(?<!\\)$", text, re.M | re.S)
    assert command, "no xrfdask process command"
    for option in ("--config", "--scheduler slurm", "--workers", "--dashboard-address 127.0.0.1"):
        assert option in command.group(0)
    bash = shutil.which("bash")
    assert subprocess.run([bash, "-n", str(DEPLOY / "slurm" / "process.sbatch")]).returncode == 0


def test_containerfile_installs_xrfdask_with_pip_and_runs_it():
    text = (DEPLOY / "Containerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    assert re.search(r"^COPY pyproject.toml README.md ", text, re.M)
    assert re.search(r"^COPY xrfdask ", text, re.M)
    assert 'pip install --no-index --find-links /wheels "xrfdask[cluster]"' in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert re.search(r'^ENTRYPOINT \["xrfdask"\]$', text, re.M)
    # What the Containerfile copies exists, and the extra it installs is declared.
    assert (REPO / "pyproject.toml").exists() and (REPO / "xrfdask" / "__init__.py").exists()
    assert "\ncluster = [" in (REPO / "pyproject.toml").read_text()
