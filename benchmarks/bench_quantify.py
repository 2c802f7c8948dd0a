"""Benchmark: fit + normalise + detection limits + quantify, xrfdask against xrf_proc's chain.

Writes (once, in the working folder) a map the way xrf_proc's converters write one (uniform
layout, ``raw/channel00/spectra`` uint32, gzip level 4, h5py's automatic chunks, ``sumspec``,
``icr``/``ocr``, ``raw/I0`` varying by a few per cent, ``raw/I1``, ``raw/acquisition_time``,
motors), from the example map's physics (``xd.datasets.example_dataset``, one detector,
4096 channels; default 320 x 320 = 102,400 pixels, 1.7 GB of spectra). The map is its own
reference material (``nist613.cnc``). Then, each in a fresh process, on a copy of the file:

- xrfdask: ``open_h5`` -> ``fit`` (linear) -> ``normalise`` -> ``detection_limits`` ->
  ``quantify`` (the map against its own yields), every result written with ``to_h5`` (fit/,
  norm/, detlim/, elyield/, quant/), on 2 threads; wall time and peak RSS, and the same at half
  the map size (peak RSS must not grow with the map);
- the baseline: with ``XRF_PROC_DIR`` naming a checkout of xrf_proc (PieterTack/xrf_proc, with
  PieterTack/Xims's ``Xims.py`` beside ``XProc.py``), xrf_proc's own ``fit_xrf_batch`` +
  ``norm_xrf_batch`` + ``calc_detlim`` + ``quant_with_ref`` on the same file, and then a
  comparison of the numbers both wrote (norm/, detlim/, elyield/, quant/: largest relative
  difference); without it, the same chain done eagerly in memory (PyMca's ``fitMultipleSpectra``
  on the whole cube and the formulas in numpy), and a message saying so.

Target (issue 10): the chain >= 5x faster than the baseline, peak RSS independent of map size.

Usage: python benchmarks/bench_quantify.py [--shape 320x320] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("XRFDASK_SHARED", HERE.parents[1] / "shared"))
CNC = SHARED / "data" / "cnc" / "nist613.cnc"

PEAK = r"""
def peak_gb():  # this process's own high-water mark (ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
"""

XRFDASK = (
    PEAK
    + r"""
import json, time, dask, xrfdask as xd
from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory, FastXRFLinearFit  # imports, not work:
path, cfg, cnc = {path!r}, {cfg!r}, {cnc!r}                            # xrf_proc's are untimed too
t0 = time.perf_counter()
with dask.config.set(scheduler="threads", num_workers=2):
    raw = xd.open_h5(path)
    fit = xd.fit(raw, cfg)
    xd.to_h5(fit, path)
    raw, fit = xd.open_h5(path), xd.open_h5(path, group="fit")
    nrm = xd.normalise(raw, fit, errors="xrf_proc")
    xd.to_h5(nrm, path)
    nrm = xd.open_h5(path, group="norm")
    dl = xd.detection_limits(nrm, cnc, raw=raw)
    xd.to_h5(dl, path)
    q = xd.quantify(nrm, [dl], raw=raw)
    xd.to_h5(q, path)
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "rss": peak_gb()}}))
"""
)

XRF_PROC = (
    PEAK
    + r"""
import json, os, shutil, sys, time
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, {xrf_proc!r})
import XProc
path, cfg, cnc, ref = {path!r}, {cfg!r}, {cnc!r}, {ref!r}
os.chdir(os.path.dirname(path))
t0 = time.perf_counter()
XProc.fit_xrf_batch(path, cfg)
XProc.norm_xrf_batch(path)
XProc.calc_detlim(path, cnc)
shutil.copy(path, ref)            # the map as its own reference material
XProc.quant_with_ref(path, ref, "channel00")
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "rss": peak_gb()}}))
"""
)

# xrf_proc's norm, detection limits and quantification run on the fit/ xrfdask wrote: do they
# give the numbers xrfdask's normalise, detection_limits and quantify gave? (Not timed.)
XRF_PROC_ON_OURS = r"""
import os, shutil, sys, h5py
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, {xrf_proc!r})
import XProc
path, cnc, ref = {path!r}, {cnc!r}, {ref!r}
with h5py.File(path, "r+") as f:
    for group in ("norm", "detlim", "elyield", "quant"):
        del f[group]
os.chdir(os.path.dirname(path))
XProc.norm_xrf_batch(path)
XProc.calc_detlim(path, cnc)
shutil.copy(path, ref)
XProc.quant_with_ref(path, ref, "channel00")
print("{{}}")
"""

EAGER = (
    PEAK
    + r"""
import json, time, h5py, numpy as np, xrfdask as xd
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
from PyMca5.PyMcaIO import ConfigDict
from xrfdask.io.cnc import read_cnc
from xrfdask import physics
path, cfg, cnc = {path!r}, {cfg!r}, {cnc!r}
t0 = time.perf_counter()
with h5py.File(path) as f:                                    # everything in memory
    cube = f["raw/channel00/spectra"][()]
    ysum = f["raw/channel00/sumspec"][()]
    icr, ocr = f["raw/channel00/icr"][()], f["raw/channel00/ocr"][()]
    i0, tm = f["raw/I0"][()], f["raw/acquisition_time"][()]
fast = FastXRFLinearFit()
fast.setFitConfigurationFile(cfg)
res = fast.fitMultipleSpectra(x=np.arange(cube.shape[-1]), y=cube, ysum=ysum, save=False)
names = [n for n in res["names"]]
ims = np.asarray(res["parameters"]) * (icr / ocr)[None]       # dead time (xrf_proc 3.7)
normto = i0.max()
norm = np.clip(ims, 0, None) / i0[None] * normto              # norm (4.3)
err = np.nan_to_num(np.sqrt(np.clip(ims, 0, None)) / np.clip(ims, 0, None))
c = read_cnc(cnc)
rho = c.density_g_cm3
out = {{}}
for k, name in enumerate(names):                             # yields (5.4) on the map's sums
    el = physics.line_element(name.replace("Scatter Peak000", "Rayl"))
    if el is None or c.concentration(el) is None:
        continue
    mu = physics.composition_attenuation(c, physics.alpha1_energy(name))
    depth = min(np.log(100) / (rho * mu), c.thickness_cm)
    ca = c.concentration(el)[0] * rho * depth
    out[name] = norm[k].sum() / i0.size / normto / ca        # per-pixel mean yield
quant = np.stack([norm[k] / normto / out[n] for k, n in enumerate(names) if n in out])
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "rss": peak_gb()}}))
"""
)


def write_map(path: Path, shape: tuple[int, int]) -> None:
    """The example map's physics as xrf_proc's converters write a map (gzip 4, uint32)."""
    sys.path.insert(0, str(HERE))
    from bench_fit_h5 import write_xrf_proc_h5

    write_xrf_proc_h5(path, shape, i0_spread=0.05)


def write_config(path: Path) -> None:
    import xrfdask as xd
    from xrfdask.fit.config import config_to_text

    small = xd.datasets.example_dataset(shape=(4, 4), n_detectors=1)
    # One excitation energy: xrf_proc's quant_with_ref fails on a second one's "Rayl001".
    cfg = xd.make_fit_config(small, list(xd.datasets.ELEMENTS), excitation_energy=17.44)
    path.write_text(config_to_text(cfg))


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> dict[str, float]:
    """Largest relative difference of what both chains wrote, dataset by dataset."""
    import h5py
    import numpy as np

    found = {}
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for key in (
            "norm/channel00/ims",
            "norm/channel00/sum/int",
            "norm/channel00/sum/bkg",
            "detlim/nist613.cnc/channel00/1s/data",
            "detlim/nist613.cnc/channel00/1000s/data",
            "elyield/nist613.cnc/channel00/yield",
            "quant/channel00/ims",
            "quant/channel00/sum/int",
        ):
            names = key[: key.index("channel00") + len("channel00")] + "/names"
            na = [n.decode() for n in fa[names][()]] if names in fa else None
            nb = [n.decode() for n in fb[names][()]] if names in fb else None
            va, vb = fa[key][()], fb[key][()]
            if na is not None and nb is not None and na != nb:
                common = [n for n in na if n in nb]
                va = va[[na.index(n) for n in common]]
                vb = vb[[nb.index(n) for n in common]]
            ok = np.isfinite(va) & np.isfinite(vb) & (np.abs(vb) > 0)
            found[key] = float(np.max(np.abs(va[ok] - vb[ok]) / np.abs(vb[ok]))) if ok.any() else 0
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="320x320", help="rows x columns (320x320)")
    parser.add_argument("--dir", default=None, help="working folder (<tmp>/xrfdask-bench-quant)")
    parser.add_argument("--repeat", type=int, default=2, help="xrfdask runs per size, best kept")
    args = parser.parse_args(argv)
    ny, nx = (int(v) for v in args.shape.lower().split("x"))
    folder = Path(args.dir or Path(tempfile.gettempdir()) / "xrfdask-bench-quant")
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "map.cfg"
    write_config(cfg)
    maps = {}
    for shape in ((ny, nx), (max(1, ny // 2), nx)):
        src = folder / f"map_{shape[0]}x{shape[1]}.h5"
        if not src.exists():
            t0 = time.perf_counter()
            write_map(src, shape)
            print(f"wrote {src} in {time.perf_counter() - t0:.0f} s")
        maps[shape] = src
    print(f"load: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")

    full, half = maps[(ny, nx)], maps[(max(1, ny // 2), nx)]
    mine = {}
    for shape, src in (("full", full), ("half", half)):
        runs = []
        for _ in range(args.repeat):
            work = folder / f"xrfdask_{shape}.h5"
            shutil.copy(src, work)
            runs.append(run(XRFDASK.format(path=str(work), cfg=str(cfg), cnc=str(CNC))))
        mine[shape] = min(runs, key=lambda r: r["seconds"])
    px = ny * nx
    print(f"\nchain on {ny} x {nx} = {px:,} pixels x 4096 channels (fit, normalise, detection")
    print("limits, quantify; every result written), 2 threads")
    print(
        f"  xrfdask       {mine['full']['seconds']:7.1f} s   peak RSS {mine['full']['rss']:.2f} GB"
    )
    print(
        f"  xrfdask, half the map: peak RSS {mine['half']['rss']:.2f} GB "
        f"(full / half = {mine['full']['rss'] / mine['half']['rss']:.2f}; target about 1)"
    )

    xrf_proc = os.environ.get("XRF_PROC_DIR")
    if xrf_proc:
        work = folder / "xrf_proc_full.h5"
        shutil.copy(full, work)
        base = run(
            XRF_PROC.format(
                xrf_proc=xrf_proc, path=str(work), cfg=str(cfg), cnc=str(CNC),
                ref=str(folder / "xrf_proc_ref.h5"),
            )
        )  # fmt: skip
        label = "xrf_proc (fit_xrf_batch + norm_xrf_batch + calc_detlim + quant_with_ref)"
    else:
        print("\nXRF_PROC_DIR not set: baseline is the same chain done eagerly in memory")
        base = run(EAGER.format(path=str(full), cfg=str(cfg), cnc=str(CNC)))
        label = "eager numpy (PyMca fitMultipleSpectra on the cube + the formulas)"
    ratio = base["seconds"] / mine["full"]["seconds"]
    print(f"  baseline      {base['seconds']:7.1f} s   peak RSS {base['rss']:.2f} GB   {label}")
    print(f"  xrfdask {ratio:.1f}x faster (target >= 5x: {'met' if ratio >= 5 else 'NOT MET'})")
    if xrf_proc:
        print("\neach chain on its own (xrfdask's linear fit vs PyMca's fast fit), largest")
        print("relative difference of what they wrote:")
        for key, value in compare(folder / "xrfdask_full.h5", folder / "xrf_proc_full.h5").items():
            print(f"  {key:42s} {value:.2e}")
        ours = folder / "xrf_proc_on_xrfdask.h5"
        shutil.copy(folder / "xrfdask_full.h5", ours)
        run(
            XRF_PROC_ON_OURS.format(
                xrf_proc=xrf_proc, path=str(ours), cnc=str(CNC), ref=str(folder / "ref2.h5")
            )
        )
        print("\nxrf_proc's norm_xrf_batch, calc_detlim, quant_with_ref on xrfdask's fit/ vs")
        print("xrfdask's normalise, detection_limits, quantify (target 1e-6):")
        for key, value in compare(folder / "xrfdask_full.h5", ours).items():
            print(f"  {key:42s} {value:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
