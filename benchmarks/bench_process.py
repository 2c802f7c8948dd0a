"""Benchmark: ``xd.process`` on a map of at least 1 GB against the same steps run by hand.

Generates a ``.GeoPIXE`` map of at least 1 GB (the example map's spectra tiled, 2 detectors)
and a reference material (``xd.datasets.example_reference``, processed once: fit, normalise,
detection limits). Then, each in a fresh interpreter on the default threaded scheduler (every
core), with its peak RSS (VmHWM) and, per step, the time (and, by hand, the largest RSS sampled
every 20 ms):

- pipeline: ``xd.process(map, config)`` with fit (linear), normalise, quantify (against the
  reference), classify (pca-kmeans, 6 classes, class plots) and images (overview, correlation);
- by hand (the baseline): the same calls one by one through the Python API, each result written
  with ``xd.to_h5`` and read back by the next step, as a script would do it.

Target (issue 12): the pipeline adds no more than 5 % to the sum of the steps by hand (and
reads the spectra no more often: fit once, classify twice); the overview of a 1,000,000-pixel
map in less than 10 s is ``bench_images.py``'s figure.

Usage: python benchmarks/bench_process.py [--mb 1000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import xrfdask as xd
from xrfdask.datasets import ELEMENTS, REFERENCE_DENSITY_MG_CM3, REFERENCE_THICKNESS_UM
from xrfdask.testing import peak_rss_of, write_tiled_geopixe

SAMPLER = """
import threading, time, json
_marks, _peaks = [], {}
def _rss():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmRSS:'))
def _sample():
    while True:
        if _marks:
            name = _marks[-1]
            _peaks[name] = max(_peaks.get(name, 0), _rss())
        time.sleep(0.02)
threading.Thread(target=_sample, daemon=True).start()
def mark(name):
    _marks.append(name)
"""

PIPELINE = """
import xrfdask as xd
mark("start")
report = xd.process({path!r}, {config!r}, output={out!r}, images={images!r})
print(json.dumps({{"steps": {{s.step: s.seconds for s in report.steps}}}}))
"""

BY_HAND = """
import time
import xrfdask as xd
steps = {{}}
def step(name):
    mark(name)
    steps[name] = time.perf_counter()
def done(name):
    steps[name] = time.perf_counter() - steps[name]
ds = xd.open_geopixe({path!r})
step("fit")
fit = xd.fit(ds, xd.make_fit_config(ds, {elements!r}), method="linear")
xd.to_h5(fit, {out!r})
done("fit"); step("normalise")
nrm = xd.normalise(ds, xd.open_h5({out!r}, group="fit"))
xd.to_h5(nrm, {out!r})
done("normalise"); step("quantify")
q = xd.quantify(xd.open_h5({out!r}, group="norm"), [{reference!r}], density={density!r},
                thickness={thickness!r}, file={out!r})
xd.to_h5(q, {out!r})
done("quantify"); step("classify")
cls = xd.classify(ds, "pca-kmeans", 6).persist()
xd.to_h5(cls, {out!r})
xd.plot.classes(cls, {images!r} + "/classes")
done("classify"); step("images")
quant = xd.open_h5({out!r}, group="quant")
xd.plot.overview(quant, {images!r} + "/by_hand")
xd.plot.correlation(quant, {images!r} + "/correlation_quant.png")
done("images")
print(json.dumps({{"steps": steps}}))
"""

TAIL = "\nprint(json.dumps({'peaks': _peaks}))\n"


def run(code: str) -> tuple[int, dict, dict]:
    rss, out = peak_rss_of(code + TAIL)
    lines = out.strip().splitlines()
    return rss, json.loads(lines[-2])["steps"], json.loads(lines[-1])["peaks"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000, help="minimum map size in MB of file")
    parser.add_argument("--dir", default=None, help="folder for the generated maps (kept)")
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="xrfdask-bench-process-"))
    folder.mkdir(parents=True, exist_ok=True)
    example = xd.datasets.example_geopixe(folder / "tile")
    per_px = example.stat().st_size / (48 * 64)
    side = int(np.ceil(np.sqrt(args.mb * 1e6 / per_px)))
    big = folder / f"map_{side}x{side}.GeoPIXE"
    if not big.exists():
        write_tiled_geopixe(example, big, side, side)
    reference, cnc = xd.datasets.example_reference(folder / "reference")
    ref_config = {"version": 1, "fit": {"elements": list(ELEMENTS)}, "normalise": {},
                  "detection_limits": {"cnc": str(cnc)}}  # fmt: skip
    ref_h5 = xd.process(reference, ref_config).output
    density, thickness = REFERENCE_DENSITY_MG_CM3 / 1000, REFERENCE_THICKNESS_UM * 1e-4
    config = {
        "version": 1,
        "fit": {"elements": list(ELEMENTS)},
        "normalise": {},
        "quantify": {"references": [ref_h5], "density": density, "thickness": thickness},
        "classify": {"method": "pca-kmeans", "n_clusters": 6},
        "images": {"correlation": True, "dpi": 150},
    }
    size = big.stat().st_size
    big.read_bytes()  # page cache warm for both runs
    print(f"map {big.name}: {side} x {side} px, 2 detectors, {size / 1e9:.2f} GB of file; "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}")  # fmt: skip
    results = {}
    for name, template in (("by hand", BY_HAND), ("pipeline", PIPELINE)):
        out = folder / f"{name.replace(' ', '_')}.h5"
        images = folder / f"{name.replace(' ', '_')}_images"
        out.unlink(missing_ok=True)
        fields = dict(path=str(big), config=config, out=str(out), images=str(images),
                      elements=list(ELEMENTS), reference=ref_h5, density=density,
                      thickness=thickness)  # fmt: skip
        code = SAMPLER + template.format(**fields)
        results[name] = run(code)
    (rss_h, steps_h, peaks_h), (rss_p, steps_p, _) = results["by hand"], results["pipeline"]
    print(f"{'step':10s} {'by hand s':>10s} {'pipeline s':>11s} {'RSS by hand':>12s}")
    for step in steps_h:
        print(f"{step:10s} {steps_h[step]:10.2f} {steps_p.get(step, float('nan')):11.2f} "
              f"{peaks_h.get(step, 0) / 2**30:9.2f} GiB")  # fmt: skip
    total_h, total_p = sum(steps_h.values()), sum(steps_p.values())
    ratio = total_p / total_h
    print(
        f"{'total':10s} {total_h:10.2f} {total_p:11.2f}   pipeline / by hand {ratio:.3f} "
        f"(target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})"
    )
    print(
        f"peak RSS: by hand {rss_h / 2**30:.2f} GiB, pipeline {rss_p / 2**30:.2f} GiB; "
        f"{size / total_p / 1e6:.0f} MB/s of map through the whole pipeline"
    )


if __name__ == "__main__":
    main()
