"""Kernels compiled ahead, once between processes, with the signatures the fit's tasks use."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("fcntl")  # the sharing needs POSIX file locks

REPORT = """
import json, sys
from xrfdask.runtime import compile_ahead
compile_ahead.compile_ahead()
from xrfdask.fit import background, project
from xrfdask.io.geopixe import kernels
out = {}
for name, d in [("sum", kernels.sum_records), ("decode", kernels.decode_records),
                ("snip", background._snip_kernel), ("project", project._project)]:
    out[name] = {"misses": sum(d.stats.cache_misses.values()),
                 "hits": sum(d.stats.cache_hits.values()),
                 "signatures": [str(s) for s in d.signatures]}
if sys.argv[1] == "fit":  # then a real linear fit of the example map: nothing more to compile
    import xrfdask as xd
    path = xd.datasets.example_geopixe(sys.argv[2])
    ds = xd.open_geopixe(path)
    fit = xd.fit(ds, xd.make_fit_config(ds, list(xd.datasets.ELEMENTS)))
    fit.peak_area.compute(scheduler="sync")
    for name, d in [("sum", kernels.sum_records), ("decode", kernels.decode_records),
                    ("snip", background._snip_kernel), ("project", project._project)]:
        out[name]["after_fit"] = [str(s) for s in d.signatures]
print(json.dumps(out))
"""


def _run(args, cache, **kw):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-c", REPORT, *args], env=env, stdout=subprocess.PIPE, text=True, **kw
    )


def test_the_warm_ups_are_the_fits_own_specialisations(tmp_path):
    proc = _run(["fit", str(tmp_path / "map")], tmp_path / "cache")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0
    report = json.loads(out)
    for name, kernel in report.items():
        assert kernel["signatures"], name
        # The fit used exactly what was compiled ahead: no other specialisation.
        assert kernel["after_fit"] == kernel["signatures"], name


def test_two_workers_compile_each_kernel_once(tmp_path):
    cache = tmp_path / "cache"
    procs = [_run(["only"], cache) for _ in range(2)]  # started together, as a cluster's workers
    reports = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    for name in reports[0]:
        misses = [r[name]["misses"] for r in reports]
        assert sum(misses) == 1, (
            name,
            misses,
        )  # compiled by one, loaded from the cache by the other
        assert all(r[name]["hits"] + r[name]["misses"] == 1 for r in reports), name
