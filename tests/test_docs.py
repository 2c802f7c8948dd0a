"""The documentation in docs/ builds with warnings as errors and documents every public name.

One Sphinx build per test session (``sphinx-build -W --keep-going``, in a fresh interpreter) is
shared by the tests. The notebooks are rendered as stored, without running them:
tests/test_notebooks.py runs them already.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import xrfdask
from xrfdask.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
BUILD_TIMEOUT_S = 300
#: Modules of ``xrfdask.__all__`` whose own ``__all__`` is public API too.
SUBMODULES = ("plot", "tomo", "datasets", "testing")
_INVENTORY_LINE = re.compile(r"(.+?)\s+(\S+)\s+(-?\d+)\s+(\S*)\s+(.*)")


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """The HTML site, built once; fails with Sphinx's warnings when the build does."""
    out = tmp_path_factory.mktemp("docs") / "html"
    env = {k: v for k, v in os.environ.items() if k != "XRFDASK_DOCS_EXECUTE"}
    env["MPLBACKEND"] = "Agg"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    cmd += [str(DOCS), str(out)]
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    if done.returncode != 0:
        pytest.fail(
            f"sphinx-build -W failed (exit {done.returncode}):\n{done.stderr[-6000:]}",
            pytrace=False,
        )
    return out


def inventory(html: Path) -> dict[str, str]:
    """``{name: domain:role}`` of the site's ``objects.inv``."""
    data = (html / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then zlib
        header_end = data.index(b"\n", header_end) + 1
    objects = {}
    for line in zlib.decompress(data[header_end:]).decode().splitlines():
        match = _INVENTORY_LINE.match(line.rstrip())
        if match:
            objects[match.group(1)] = match.group(2)
    return objects


@pytest.mark.slow
def test_the_documentation_builds_with_warnings_as_errors(html):
    index = (html / "index.html").read_text(encoding="utf-8")
    assert "xrfdask" in index
    for page in ("getting-started", "cli", "api/index", "deployment", "benchmarks"):
        assert (html / f"{page}.html").is_file(), page
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert (html / "notebooks" / f"{notebook.stem}.html").is_file(), notebook.name


@pytest.mark.slow
def test_every_public_name_is_in_the_api_reference(html):
    objects = inventory(html)
    expected = {f"xrfdask.{name}" for name in xrfdask.__all__}
    for module in SUBMODULES:
        names = getattr(xrfdask, module).__all__
        expected |= {f"xrfdask.{module}.{name}" for name in names}
    missing = sorted(n for n in expected if not objects.get(n, "").startswith("py:"))
    assert not missing, f"not in docs/api/index.rst: {missing}"
    for module in SUBMODULES:
        assert objects[f"xrfdask.{module}"] == "py:module", module


@pytest.mark.slow
def test_every_command_is_in_the_cli_reference(html):
    objects = inventory(html)
    missing = [c for c in COMMANDS if objects.get(f"xrfdask {c}") != "commands:command"]
    assert not missing, f"commands missing from docs/cli.md: {missing}"
