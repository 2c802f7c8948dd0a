"""A writer killed (SIGKILL) in the middle of ``to_h5``/``to_zarr`` loses nothing that was there.

Each case runs the write in a child process (``_writer_child.py``) that stops at a known point of
the write and is killed there, then checks the target against a snapshot taken before, and that
the same write run again succeeds and gives the undisturbed result. The stop points patch nothing
in xrfdask: a dask callback blocks the child once ``after`` tasks have finished while the write's
temporary (``.tmp-*`` beside the target) exists, i.e. while the map is being computed and written;
or the child kills itself right after one of h5py's/os's own calls of the final swap.

What the writers guarantee, as tested here:

- New file or store, a raw map replacing a file (``overwrite=True``), a result group added to or
  replacing one in an existing file or store: a writer killed while the result is computed and
  written leaves the target byte for byte as it was (nothing at all at a new path). It can leave
  ``.tmp-*`` entries beside the target; they never block the next write.
- zarr, killed during the swap of a finished group into the store: the store is readable and
  holds the new group complete (the swap is two renames; the consolidated metadata is dropped
  before them and rewritten after, so no group is ever read with another's metadata).
- HDF5, killed during the swap (the finished group copied into the file, two link moves, one
  flush; no computation): HDF5 has no crash consistency, so nothing is promised by the format.
  What happens for a result group (it fits HDF5's metadata cache): the new links reach the disk
  only at the flush, and the file reads as before, the old group intact; tested as "the old group
  or the new one, complete, and raw/ unchanged".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xrfdask as xd

CHILD = Path(__file__).with_name("_writer_child.py")
OLD_LINES, NEW_LINES = ["Fe", "Zn"], ["Fe", "Zn", "Ca"]
AFTER = 10  # tasks finished mid-write before the kill (a write here runs about 80-120 tasks)
TIMEOUT = 120  # s, for the child to reach its stop point (a slow, shared 2-core machine)


def _write(kind):
    return xd.to_h5 if kind == "h5" else xd.to_zarr


def _open(kind):
    return xd.open_h5 if kind == "h5" else xd.open_zarr


def _name(kind, stem="map"):
    return f"{stem}.h5" if kind == "h5" else f"{stem}.zarr"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example map (48 x 64 px, 2 detectors, 50 MB of spectra) and its two fits."""
    path = xd.datasets.example_geopixe(tmp_path_factory.mktemp("interrupted"))
    ds = xd.open_geopixe(path)
    old = xd.fit(ds, xd.make_fit_config(ds, OLD_LINES))
    new = xd.fit(ds, xd.make_fit_config(ds, NEW_LINES))
    return path, ds, old, new


@pytest.fixture(scope="module")
def bases(example, tmp_path_factory):
    """Targets that existed before the interrupted write, per kind: raw only; raw + old fit."""
    _, ds, old, _ = example
    folder = tmp_path_factory.mktemp("bases")
    out = {}
    for kind in ("h5", "zarr"):
        raw_only = _write(kind)(ds, folder / _name(kind, "raw"))
        with_fit = _write(kind)(ds, folder / _name(kind, "fit"))
        _write(kind)(old, with_fit)
        out[kind] = {"raw": raw_only, "fit": with_fit}
    return out


@pytest.fixture(scope="module")
def reference(example, bases, tmp_path_factory):
    """The undisturbed result of adding the new fit, per kind (written by this process)."""
    folder = tmp_path_factory.mktemp("reference")
    return {
        kind: _write(kind)(example[3], _copy(bases[kind]["raw"], folder / _name(kind)))
        for kind in ("h5", "zarr")
    }


def _copy(src, dst):
    if os.path.isdir(src):
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def _snapshot(path):
    """Every byte of a file or store: relative path -> sha256."""
    path = Path(path)
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _run_child(tmp_path, example, target, kind, what, cut, *, overwrite=False, after=AFTER):
    """Run the writer, stopped at ``cut``; returns its exit status (-9: killed)."""
    signal_file = tmp_path / f"signal-{time.monotonic_ns()}"
    args = {
        "src": str(example[0]),
        "target": str(target),
        "kind": kind,
        "what": what,
        "lines": NEW_LINES,
        "overwrite": overwrite,
        "signal": str(signal_file),
        "cut": cut,
        "after": after,
    }
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        if cut != "task":  # the child kills itself at the stop point
            _, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == -9, err.decode()[-2000:]
            return proc.returncode
        deadline = time.monotonic() + TIMEOUT
        while not signal_file.exists():
            if proc.poll() is not None:
                pytest.fail(f"writer exited ({proc.returncode}) before its stop point: "
                            f"{proc.stderr.read().decode()[-2000:]}")  # fmt: skip
            if time.monotonic() > deadline:
                pytest.fail("writer did not reach its stop point in time")
            time.sleep(0.02)
        assert signal_file.read_text() == "writing"  # blocked mid-write, not finished
        folder = Path(target).parent
        assert any(n.startswith(".tmp-") for n in os.listdir(folder)), "no write under way"
        proc.kill()
        proc.wait(timeout=30)
        assert proc.returncode == -9
        return proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()


def _leftovers(folder, final):
    return sorted(n for n in os.listdir(folder) if n != final and not n.startswith("signal-"))


def _fit_values(kind, target):
    fit = _open(kind)(target, "fit")
    return (
        list(fit.line.values),
        fit.peak_area.values,
        fit.sum_area.values,
        fit.deadtime_factor.values if "deadtime_factor" in fit else None,
    )


def _assert_same_fit(kind, target, reference):
    got, want = _fit_values(kind, target), _fit_values(kind, reference)
    assert got[0] == want[0]
    for a, b in zip(got[1:], want[1:], strict=True):
        np.testing.assert_array_equal(a, b)


def _raw_values(kind, target):
    raw = _open(kind)(target)
    return {name: raw[name].values for name in raw.data_vars}


def _assert_same_raw(kind, target, other):
    got, want = _raw_values(kind, target), _raw_values(kind, other)
    assert sorted(got) == sorted(want)
    for name in got:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("kind", ["h5", "zarr"])
def test_killed_writing_a_new_file(tmp_path, example, bases, kind):
    ds = example[1]
    target = tmp_path / _name(kind)
    _run_child(tmp_path, example, target, kind, "raw", "task")
    assert not target.exists()  # nothing appears at the final path
    assert all(n.startswith(".tmp-") for n in _leftovers(tmp_path, target.name))
    _write(kind)(ds, target)  # the same write again, the temporaries still there
    _assert_same_raw(kind, target, bases[kind]["raw"])
    np.testing.assert_array_equal(_open(kind)(target).spectra.values, ds.spectra.values)


@pytest.mark.parametrize("kind", ["h5", "zarr"])
def test_killed_replacing_a_file(tmp_path, example, bases, kind):
    """A raw map written over an existing file (overwrite=True): the old file stays whole."""
    target = _copy(bases[kind]["fit"], tmp_path / _name(kind))
    before = _snapshot(target)
    _run_child(tmp_path, example, target, kind, "raw", "task", overwrite=True)
    assert _snapshot(target) == before
    assert all(n.startswith(".tmp-") for n in _leftovers(tmp_path, target.name))
    _write(kind)(example[1], target, overwrite=True)
    _assert_same_raw(kind, target, bases[kind]["raw"])
    with pytest.raises(Exception):  # noqa: B017  (a new file: the old fit/ went with the old)
        _open(kind)(target, "fit")


@pytest.mark.parametrize("kind", ["h5", "zarr"])
def test_killed_adding_a_group(tmp_path, example, bases, reference, kind):
    """fit/ added to a file that holds raw/: the file is unchanged, fit/ absent."""
    target = _copy(bases[kind]["raw"], tmp_path / _name(kind))
    before = _snapshot(target)
    _run_child(tmp_path, example, target, kind, "fit", "task")
    assert _snapshot(target) == before
    with pytest.raises(Exception):  # noqa: B017
        _open(kind)(target, "fit")
    _assert_same_raw(kind, target, bases[kind]["raw"])
    _write(kind)(example[3], target)
    _assert_same_fit(kind, target, reference[kind])
    _assert_same_raw(kind, target, bases[kind]["raw"])


@pytest.mark.parametrize("kind", ["h5", "zarr"])
def test_killed_replacing_a_group(tmp_path, example, bases, reference, kind):
    """fit/ replaced with overwrite=True: killed while computing, the old fit/ is intact."""
    target = _copy(bases[kind]["fit"], tmp_path / _name(kind))
    before, old = _snapshot(target), _fit_values(kind, target)
    _run_child(tmp_path, example, target, kind, "fit", "task", overwrite=True)
    assert _snapshot(target) == before
    got = _fit_values(kind, target)
    assert got[0] == old[0] and [x.split()[0] for x in got[0][:2]] == OLD_LINES
    _write(kind)(example[3], target, overwrite=True)
    _assert_same_fit(kind, target, reference[kind])
    _assert_same_raw(kind, target, bases[kind]["raw"])


@pytest.mark.parametrize("moves", [1, 2])
def test_h5_killed_swapping_a_group_in(tmp_path, example, bases, reference, moves):
    """Killed after the 1st (old group moved aside) or 2nd link move (new group in place) of the
    swap, before the flush: raw/ unchanged and fit/ readable, the old one or the new one."""
    target = _copy(bases["h5"]["fit"], tmp_path / "map.h5")
    old = _fit_values("h5", target)
    _run_child(tmp_path, example, target, "h5", "fit", "h5-move", overwrite=True, after=moves)
    _assert_same_raw("h5", target, bases["h5"]["raw"])
    got = _fit_values("h5", target)
    if got[0] == old[0]:
        for a, b in zip(got[1:], old[1:], strict=True):
            np.testing.assert_array_equal(a, b)
    else:
        _assert_same_fit("h5", target, reference["h5"])
    xd.to_h5(example[3], target, overwrite=True)
    _assert_same_fit("h5", target, reference["h5"])
    _assert_same_raw("h5", target, bases["h5"]["raw"])


def test_zarr_killed_swapping_a_group_in(tmp_path, example, bases, reference):
    """Killed right after the new fit/ was renamed into the store, before the consolidated
    metadata was rewritten: the new group reads complete (it once failed to read, with the old
    group's consolidated metadata), and no old copy is left inside the store."""
    target = _copy(bases["zarr"]["fit"], tmp_path / "map.zarr")
    _run_child(tmp_path, example, target, "zarr", "fit", "zarr-swap", overwrite=True, after=1)
    assert not [n for n in os.listdir(target) if ".old-" in n or n.startswith(".tmp-")]
    _assert_same_fit("zarr", target, reference["zarr"])
    _assert_same_raw("zarr", target, bases["zarr"]["raw"])
    xd.to_zarr(example[3], target, overwrite=True)
    _assert_same_fit("zarr", target, reference["zarr"])
    _assert_same_raw("zarr", target, bases["zarr"]["raw"])
