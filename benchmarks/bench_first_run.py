"""Benchmark: the first ``xrfdask demo`` after installing against a second run (issue 9, part 3).

A fresh install differs from a used one by the compiled kernels it has not cached yet. This
script gives each run of ``xrfdask demo`` (a subprocess, as a user types it) an empty cache folder
(``XRFDASK_CACHE_DIR`` in a temporary folder, ``NUMBA_CACHE_DIR`` unset), runs it, then runs it
again with that cache, and prints for both runs the wall and CPU seconds of the whole process,
the fit step's own time (the demo's "fitted ... in X s" line) and the ratios; for the first run,
every numba compilation of an xrfdask kernel (one per kernel and argument types) and its
seconds, from numba's compile events. ``--repeat N`` repeats the pair of runs with a fresh cache
each time and reports each pair and the best of them.

    python benchmarks/bench_first_run.py [--repeat 2] [--keep DIR]

The runs use threads (the demo's default). Wall-clock seconds are noisy on a loaded machine: the
CPU seconds (user + system of the process and its children) say the same more steadily.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run in the child: xrfdask's CLI, with numba's compile events recorded (a kernel's time
# includes the helpers compiled for it; only xrfdask's own kernels are listed).
_CHILD = r"""
import json, sys, time
from numba.core import event

starts, compiled = [], []  # compilations nest (a kernel compiles its helpers) under one lock

class _Timer(event.Listener):
    def on_start(self, ev):
        starts.append(time.perf_counter())

    def on_end(self, ev):
        seconds = time.perf_counter() - starts.pop()
        func = ev.data["dispatcher"].py_func
        if func.__module__.startswith("xrfdask"):
            name = f"{func.__module__}.{func.__qualname__}"
            compiled.append((seconds, name, str(ev.data["args"])))

event.register("numba:compile", _Timer())
from xrfdask.cli import main

code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(compiled, f)
sys.exit(code)
"""

_FITTED = re.compile(r"fitted [\d,]+ spectra in ([\d.]+) s")


def _run_demo(out: Path, cache: Path, events: Path) -> dict:
    env = dict(os.environ, XRFDASK_CACHE_DIR=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(events), "demo", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        sys.exit(f"xrfdask demo failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    fitted = _FITTED.search(proc.stdout)
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "fit": float(fitted.group(1)) if fitted else float("nan"),
        "compiled": json.loads(events.read_text()),
    }


def _pair(folder: Path) -> tuple[dict, dict]:
    cache = folder / "cache"  # empty: the state right after installing
    first = _run_demo(folder / "demo", cache, folder / "events1.json")
    second = _run_demo(folder / "demo", cache, folder / "events2.json")
    return first, second


def _report(first: dict, second: dict) -> None:
    print(f"{'':22}{'first run':>11}{'second run':>12}{'ratio':>8}")
    for key, label in (("wall", "demo wall (s)"), ("cpu", "demo CPU (s)"), ("fit", "fit step (s)")):
        a, b = first[key], second[key]
        print(f"{label:22}{a:11.2f}{b:12.2f}{a / b:8.2f}x")
    compiled = sorted(first["compiled"], reverse=True)
    print(f"first run: {len(compiled)} compilations of xrfdask kernels (seconds, with helpers):")
    for seconds, name, args in compiled:
        print(f"  {seconds:6.2f}  {name.removeprefix('xrfdask.')}{args[:110]}")
    if second["compiled"]:
        print(f"second run compiled again (cache missed): {[c[1] for c in second['compiled']]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (default 1)")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: temp dir)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    pairs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="xrfdask-first-run-") as tmp:
            folder = Path(args.keep) / f"pair{i}" if args.keep else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            pairs.append(_pair(folder))
        if args.repeat > 1:
            print(f"--- pair {i + 1}")
        _report(*pairs[-1])
    if args.repeat > 1:
        first = min(pairs, key=lambda p: p[0]["wall"])[0]
        second = min(pairs, key=lambda p: p[1]["wall"])[1]
        a, b = first["wall"], second["wall"]
        print(f"--- best of {args.repeat}: first {a:.2f} s, second {b:.2f} s, ratio {a / b:.2f}x")
        print(
            f"    (target <= 2x); CPU {first['cpu']:.2f} s / {second['cpu']:.2f} s = "
            f"{first['cpu'] / second['cpu']:.2f}x"
        )
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
