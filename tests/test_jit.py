"""xrfdask._jit: the compiled kernels cache in the user's cache folder, never beside the package.

The regression behind these tests (issue 9, part 3): numba's default cache beside the modules
left ``__pycache__/*.nbi, *.nbc`` in ``site-packages/xrfdask/`` after ``pip install .``; pip
removed the package but not that folder, which then shadowed an editable install as an empty
namespace package in dask's workers. The full path (both README commands in one environment)
runs in ``.ci/run``; here, a copy of the package in a folder of its own stands for site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import xrfdask
from xrfdask import _jit

PACKAGE = Path(xrfdask.__file__).parent

# One kernel of each compiled module, on tiny inputs.
_RUN_KERNELS = """
import numpy as np
from xrfdask.fit.background import snip_background
from xrfdask.fit.project import project
from xrfdask.io.geopixe import kernels

y = np.arange(40, dtype=np.float32).reshape(2, 20)
snip_background(y, 3, filter_width=3)
project(np.ones((2, 20)), y)
kernels.sum_records(np.zeros(8, np.uint16), 0, 0, 1, 1, 4, 0, 1, 0, 1, np.zeros((1, 4)))
import xrfdask, xrfdask._jit
print(xrfdask.__file__)
print(xrfdask._jit.numba_cache_dir())
"""

_KERNELS = ("background._background_kernel", "project._project", "kernels.sum_records")


def _run(code: str, cwd: Path, **env: str | None) -> subprocess.CompletedProcess:
    environ = dict(os.environ)
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environ, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _numba_files(folder: Path) -> set[Path]:
    return {p for pattern in ("*.nbi", "*.nbc") for p in folder.rglob(pattern)}


@pytest.fixture
def installed_copy(tmp_path) -> Path:
    """This checkout's package copied into a writable folder of its own, as pip installs it."""
    site = tmp_path / "site-packages"
    shutil.copytree(PACKAGE, site / "xrfdask", ignore=shutil.ignore_patterns("__pycache__"))
    return site


@pytest.mark.slow
def test_kernels_cache_in_the_xrfdask_cache_not_beside_the_package(tmp_path, installed_copy):
    cache = tmp_path / "cache"
    env = {"PYTHONPATH": str(installed_copy), "XRFDASK_CACHE_DIR": str(cache)}
    first = _run(_RUN_KERNELS, tmp_path, NUMBA_CACHE_DIR=None, **env)
    module_file, cache_dir = first.stdout.split()[-2:]
    assert Path(module_file).parent == installed_copy / "xrfdask"
    assert Path(cache_dir) == cache / "numba"
    assert _numba_files(installed_copy) == set()  # nothing pip would not know of
    saved = {p.name for p in _numba_files(cache / "numba")}
    for kernel in _KERNELS:
        assert any(name.startswith(kernel) and name.endswith(".nbi") for name in saved), kernel

    # A second process finds the kernels there instead of compiling them again.
    second = _run(_RUN_KERNELS, tmp_path, NUMBA_CACHE_DIR=None, NUMBA_DEBUG_CACHE="1", **env)
    log = second.stdout
    loaded = [line for line in log.splitlines() if "data loaded from" in line]
    for kernel in _KERNELS:
        assert any(kernel in line and str(cache / "numba") in line for line in loaded), log
    assert "data saved" not in log, log


@pytest.mark.slow
def test_a_users_numba_cache_dir_is_kept(tmp_path, installed_copy):
    mine = tmp_path / "my-numba-cache"
    proc = _run(
        _RUN_KERNELS,
        tmp_path,
        PYTHONPATH=str(installed_copy),
        XRFDASK_CACHE_DIR=str(tmp_path / "xrfdask-cache"),
        NUMBA_CACHE_DIR=str(mine),
    )
    assert Path(proc.stdout.split()[-1]) == mine
    assert {p.name.split("-")[0] for p in _numba_files(mine)} >= set(_KERNELS)
    assert not (tmp_path / "xrfdask-cache" / "numba").exists()
    assert _numba_files(installed_copy) == set()


def test_other_packages_keep_numbas_own_cache_setting():
    # xrfdask sets numba's cache folder only while decorating its own kernels.
    from numba.core import config

    assert config.CACHE_DIR == os.environ.get("NUMBA_CACHE_DIR", "")


def test_cache_folder_order(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XRFDASK_CACHE_DIR", str(tmp_path / "root"))
    assert _jit.cache_root() == tmp_path / "root"
    assert _jit._choose() == tmp_path / "root" / "numba"

    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a folder cannot be made inside a file, whoever runs the test
    monkeypatch.setenv("XRFDASK_CACHE_DIR", str(blocked))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    fallback = _jit._choose()
    assert fallback is not None and fallback.parent.parent == tmp_path / "tmp"
    assert fallback.name == "numba" and fallback.parent.name.startswith("xrfdask-")

    monkeypatch.setattr(tempfile, "tempdir", str(blocked))
    assert _jit._choose() is None  # then the kernels compile without a cache

    monkeypatch.delenv("XRFDASK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform not in ("win32", "darwin"):
        assert _jit.cache_root() == tmp_path / "xdg" / "xrfdask"


def test_workers_import_this_xrfdask_and_cache_outside_it(dask_cluster):
    from distributed import Client

    def where():  # pickled by value: the workers cannot import the tests
        import xrfdask
        import xrfdask._jit

        return xrfdask.__file__, str(xrfdask._jit.numba_cache_dir())

    with Client(scheduler_file=str(dask_cluster)) as client:
        seen = client.run(where)
    assert len(seen) == 2
    expected = str(_jit.cache_root() / "numba")  # the environment the workers were started with
    for module_file, cache_dir in seen.values():
        # None here was the bug: a leftover site-packages/xrfdask/ folder, a namespace package.
        assert module_file == xrfdask.__file__
        assert cache_dir == expected
        assert not Path(cache_dir).is_relative_to(PACKAGE)
