"""Benchmark: fitting a >= 30,000-pixel x 4096-channel map, spectra/s per core and peak RSS.

Generates the example map once (``xd.datasets.example_geopixe``, 2 detectors, 4096 channels,
cached in the working folder), then, in fresh interpreters with OMP/OpenBLAS/MKL limited to one
thread each (so "per core" is honest), in the same run:

- baseline, xrf_proc's way: the whole map decoded into memory (``ds.spectra.values``, timed
  apart), then per detector ``FastXRFLinearFit().setFitConfiguration(cfg)`` and
  ``fitMultipleSpectra(x=arange, y=cube[:, :, d], ysum=its sum, save=False)``; only the
  ``fitMultipleSpectra`` calls are the fitting time;
- ``xd.fit(ds, cfg, method="linear" | "pymca")`` on one thread (synchronous scheduler): the
  ``fit()`` call (sum spectrum, models, sum-spectrum fits; split with timers) plus computing the
  whole ``peak_area`` (GeoPIXE decode included), in bands of ``--chunk`` (default: the
  library's 16 MiB) and of the design's 128 MiB; the areas are compared with the baseline's;
- the same with 2 worker threads (threaded scheduler, in process); and the linear method on 1 and 2
  threads again with BLAS's threads left as a user gets them (not limited), since BLAS threads
  competing with dask's are what a user would hit; and on a
  ``distributed.LocalCluster`` of 2 and of 1 single-threaded worker processes, warmed up first
  (imports, numba) with a tiny fit on every worker, with and without the workers'
  ``MALLOC_TRIM_THRESHOLD_`` (set by distributed's nanny; ``xd.connect`` unsets it);
- where the time goes on one thread, stage by stage, over a few bands;
- peak RSS of ``xd.to_h5(xd.fit(ds, cfg), path, group="fit")`` (linear, threaded scheduler,
  ``xrfdask.chunk-size`` = ``--chunk``) for the map and for a map 4x smaller.

Spectra are counted as pixels x detectors in every figure; times are the best of ``--repeat``.

Targets (issue): ``method="linear"`` >= 3x the baseline per core; ``method="pymca"`` within 15 %
of the baseline per core; 2 workers >= 1.7x one worker (fit() + compute), compared like with like:
the linear engine releases the GIL, so its workers are threads; PyMca's per-spectrum background
loop holds it, so ``"pymca"`` scales with worker processes (the stricter comparisons, against one
in-process thread, are printed too); peak memory bounded by chunk size, not map size (here: the
map's peak at most 1.2x the 4x smaller map's).

Usage: python benchmarks/bench_fit.py [--pixels 30000] [--dir /tmp/xrfdask-bench-fit]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from xrfdask.testing import peak_rss_of

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
BASE_SHAPE = (150, 200)  # generated directly; bigger maps are tiled from it
NX = 200

GENERATE = """
import xrfdask as xd
xd.datasets.example_geopixe(r"{dst}", shape=({ny}, {nx}))
"""

TILE = """
from xrfdask.testing import write_tiled_geopixe
write_tiled_geopixe(r"{src}", r"{dst}", {ny}, {nx})
"""

BASELINE = """
import json, time, numpy as np, xrfdask as xd
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
ds = xd.open_geopixe(r"{src}")
cfg = xd.make_fit_config(ds, xd.datasets.ELEMENTS)
t0 = time.perf_counter()
cube = ds.spectra.values                      # xrf_proc: the whole map in memory
out = {{"decode": time.perf_counter() - t0, "fit": [], "configure": [], "ysum": []}}
x = np.arange(cube.shape[-1], dtype=np.float64)
for rep in range({repeat}):
    fit = configure = ysum = 0.0
    params = []
    for d in range(cube.shape[2]):
        y = cube[:, :, d, :]
        t0 = time.perf_counter()
        fast = FastXRFLinearFit()
        fast.setFitConfiguration(cfg)
        t1 = time.perf_counter()
        ref = y.sum((0, 1), dtype=np.float64)
        t2 = time.perf_counter()
        result = fast.fitMultipleSpectra(x=x, y=y, ysum=ref, save=False)
        t3 = time.perf_counter()
        configure, ysum, fit = configure + t1 - t0, ysum + t2 - t1, fit + t3 - t2
        params.append(np.moveaxis(np.asarray(result["parameters"]), 0, -1))  # (y, x, free)
    out["fit"].append(fit); out["configure"].append(configure); out["ysum"].append(ysum)
np.save(r"{ref}", np.stack(params, axis=2))  # (y, x, detector, free)
print(json.dumps(out))
"""

# One interpreter per scheduler: a tiny warm-up fit, then each method `repeat` times (best kept).
# fit()'s own setup is split with timers wrapped around xrfdask.fit.api's helpers.
XRFDASK = """
import importlib, json, time, numpy as np, dask, xrfdask as xd
api = importlib.import_module("xrfdask.fit.api")
T = {{}}
def timed(name, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            T[name] = T.get(name, 0.0) + time.perf_counter() - t0
    return wrapper
api.build_model = timed("model", api.build_model)
api.fit_sum_spectrum = timed("sum_fit", api.fit_sum_spectrum)

def warm(path):
    ds = xd.open_geopixe(path)
    cfg = xd.make_fit_config(ds, xd.datasets.ELEMENTS)
    with dask.config.set(scheduler="synchronous"):
        for method in ("linear", "pymca"):
            xd.fit(ds, cfg, method=method).peak_area.values

if __name__ == "__main__":
    {scheduler}
    t0 = time.perf_counter()
    warm(r"{tiny}")
    out = {{"warmup": time.perf_counter() - t0}}
    ds = xd.open_geopixe(r"{src}", chunks="{chunks}")
    out["bands"] = len(ds.spectra.chunks[0])
    cfg = xd.make_fit_config(ds, xd.datasets.ELEMENTS)
    xd.fit(xd.open_geopixe(r"{tiny}"), cfg).peak_area.values  # the scheduler itself, warm
    ref = np.load(r"{ref}") if {check} else None
    for method in {methods}:
        best = None
        for rep in range({repeat}):
            T.clear()
            t0 = time.perf_counter()
            fit = xd.fit(ds, cfg, method=method)
            t1 = time.perf_counter()
            area = fit.peak_area.values
            t2 = time.perf_counter()
            rec = {{"setup": t1 - t0, "compute": t2 - t1, "total": t2 - t0}}
            rec.update(model=T.get("model", 0.0), sum_fit=T.get("sum_fit", 0.0))
            best = rec if best is None or rec["total"] < best["total"] else best
        if ref is not None and ref.shape == area.shape:  # free parameters = lines (no polynomial)
            scale = np.nanmax(np.abs(ref))
            best["max_diff"] = float(np.nanmax(np.abs(area - ref)) / scale)
            big = np.abs(ref) > 1e-3 * scale
            best["median_rel_diff"] = float(np.median(np.abs(area - ref)[big] / np.abs(ref[big])))
        out[method] = best
    print(json.dumps(out))
"""

SYNCHRONOUS = 'dask.config.set(scheduler="synchronous")'
THREADS2 = 'dask.config.set(scheduler="threads", num_workers=2)'
CLUSTER = """from distributed import Client, LocalCluster
    {malloc}
    cluster = LocalCluster(
        n_workers={n}, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    client.run(warm, r"{tiny}")                          # imports and numba on every worker"""
# distributed's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers by default; None unsets it.
UNSET_TRIM = 'dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})'

# Where the time goes on one thread, for one band of `rows` rows (both detectors).
STAGES = """
import json, time, numpy as np, dask, xrfdask as xd
from PyMca5.PyMcaMath.linalg import lstsq
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
from xrfdask.fit.background import subtract_background
from xrfdask.fit.model import build_model
from xrfdask.fit.project import project
from xrfdask.fit.refit import candidates
from xrfdask.fit.engines.blocks import trimmed
from xrfdask.io.geopixe.reader import block_specs, read_block_channels
dask.config.set(scheduler="synchronous")
ds = xd.open_geopixe(r"{src}", chunks={rows})
specs = block_specs(ds.spectra.data)
cfg = xd.make_fit_config(ds, xd.datasets.ELEMENTS)
npix = ds.sizes["y"] * ds.sizes["x"]
sums = ds.spectra.sum(("y", "x"), dtype=np.float64).values
T = {{}}
t0 = time.perf_counter()
models = [build_model(cfg, s, npixels=npix, data_dtype=np.uint16) for s in sums]
T["models (PyMca configure)"] = time.perf_counter() - t0
t0 = time.perf_counter()
sums = ds.spectra.sum(("y", "x"), dtype=np.float64).values
T["sum spectrum (whole map)"] = time.perf_counter() - t0  # second pass: reader warm
band = ds.spectra[:{rows}].values  # band 0 warms up every stage below
def tick(name, t0):
    if i:
        T[name] = T.get(name, 0.0) + time.perf_counter() - t0
    return time.perf_counter()
spectra = 0
for i, d in ((i, d) for i in range({nbands} + 1) for d in range(len(models))):
    model = models[d]
    t = time.perf_counter()
    if d == 0:
        j = i % max(1, ds.sizes["y"] // {rows})  # a small map: the same band again
        band = ds.spectra[j * {rows}:(j + 1) * {rows}].values
        t = tick("generic: decode dense uint16 band", t)
        rows, cols, ndet, nchan = band.shape
        spectra += rows * cols * ndet if i else 0
        t = time.perf_counter()
        trimmed_band = read_block_channels(specs[j, 0], model.xmin, model.xmax, model.result_dtype)
        t = tick("fit's read: records -> trimmed float32", t)
    t = time.perf_counter()
    spec = np.ascontiguousarray(band[:, :, d, :]).reshape(rows * cols, nchan)
    t = tick("generic: slice detector (copy)", t)
    y = trimmed(spec, model)
    t = tick("generic: trim + float32 (copy)", t)
    assert np.array_equal(y, trimmed_band[d])
    y0 = y.copy()
    t = time.perf_counter()
    subtract_background(y, model.snip_width, filter_width=model.filter_width, anchors=model.anchors)
    t = tick("linear: SNIP (compiled)", t)
    xs = project(model.projection, y, np.empty((len(y), model.n_free), model.result_dtype))
    sigma = np.broadcast_to(model.sigma.astype(model.result_dtype), xs.shape).copy()
    t = tick("linear: pinv projection (compiled)", t)
    found = candidates(model, xs, sigma, lambda r: y[r])
    t = tick("linear: refit candidates (U.T @ y)", t)
    chunk = y0.T.copy()
    t = time.perf_counter()
    FastXRFLinearFit._fitBkgSubtract(chunk, config=model.config, anchorslist=model.anchors)
    t = tick("pymca: SNIP (PyMca loop)", t)
    kwargs = model.lstsq_kwargs
    kwargs["last_svd"] = tuple(a.copy() for a in model.svd)
    lstsq(model.derivatives, chunk, digested_output=True, **kwargs)
    t = tick("pymca: lstsq, whole band", t)
    step = max(1, (1 << 20) // (chunk.shape[0] * chunk.itemsize))  # PyMca's own 1 MB chunks
    for k in range(0, chunk.shape[1], step):
        kwargs["last_svd"] = tuple(a.copy() for a in model.svd)
        lstsq(model.derivatives, chunk[:, k:k + step], digested_output=True, **kwargs)
    t = tick("pymca: lstsq, 1 MB sub-chunks", t)
print(json.dumps({{"spectra": spectra, "stages": T}}))
"""

MEMORY = """
import time, dask, xrfdask as xd
dask.config.set({{"xrfdask.chunk-size": "{chunks}"}})
t0 = time.perf_counter()
ds = xd.open_geopixe(r"{src}")
cfg = xd.make_fit_config(ds, xd.datasets.ELEMENTS)
xd.to_h5(xd.fit(ds, cfg, method="linear"), r"{dst}", group="fit", overwrite=True)
print(len(ds.spectra.chunks[0]), time.perf_counter() - t0)
"""


def ensure_map(folder: Path, ny: int, nx: int) -> Path:
    """The example map of ny x nx pixels (generated once; bigger than BASE_SHAPE: tiled)."""
    path = folder / f"fit_{ny}x{nx}.GeoPIXE"
    if path.exists():
        return path
    t0 = time.perf_counter()
    if ny * nx <= BASE_SHAPE[0] * BASE_SHAPE[1]:
        peak_rss_of(GENERATE.format(dst=path, ny=ny, nx=nx))
        how = "generated"
    else:
        base = ensure_map(folder, *BASE_SHAPE)
        peak_rss_of(TILE.format(src=base, dst=path, ny=ny, nx=nx))
        how = f"tiled from {base.name}"
    print(f"{how} {path} in {time.perf_counter() - t0:.1f} s")
    return path


def run_json(code: str, env: dict[str, str] | None = ONE_THREAD) -> tuple[int, dict]:
    peak, out = peak_rss_of(code, env=env)
    return peak, json.loads(out.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=30000, help="pixels per detector (30000)")
    parser.add_argument("--dir", default=None, help="working folder (<tmp>/xrfdask-bench-fit)")
    parser.add_argument(
        "--chunk", default="16MiB", help="band size of xrfdask's runs (16MiB, the default)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept (3)")
    args = parser.parse_args(argv)
    folder = Path(args.dir or Path(tempfile.gettempdir()) / "xrfdask-bench-fit")
    folder.mkdir(parents=True, exist_ok=True)
    t_start, load = time.perf_counter(), os.getloadavg()[0]
    if args.pixels < 30000:
        print(f"note: {args.pixels} pixels, under the issue's 30,000: fit()'s setup weighs more")
    nx, ndet = NX, 2
    ny = max(2, math.ceil(args.pixels / nx))
    src = ensure_map(folder, ny, nx)
    quarter = ensure_map(folder, max(1, ny // 2), nx // 2)
    tiny = ensure_map(folder, 8, 10)
    src.read_bytes(), quarter.read_bytes()  # page cache
    spectra = ny * nx * ndet
    print(
        f"map {src.name}: {ny} x {nx} px x {ndet} detectors = {spectra} spectra (pixels x "
        f"detectors) x 4096 channels; file {src.stat().st_size / 1e6:.0f} MB, dense "
        f"{spectra * 8192 / 1e6:.0f} MB\n{os.cpu_count()} cores, BLAS/OpenMP 1 thread per "
        f"process unless said, load average {load:.2f} before the run"
    )
    ref = folder / f"baseline_{ny}x{nx}.npy"

    # --- baseline ---------------------------------------------------------------------------
    peak_b, b = run_json(BASELINE.format(src=src, ref=ref, repeat=args.repeat))
    t_base = min(b["fit"])
    rate_b = spectra / t_base
    print("\nbaseline: PyMca FastXRFLinearFit on the whole map in memory, 1 core")
    print(f"  decode into memory  {b['decode']:6.2f} s   (not in the fitting time)")
    print(f"  setFitConfiguration {min(b['configure']):6.2f} s   (not in the fitting time)")
    print(f"  ysum                {min(b['ysum']):6.2f} s   (not in the fitting time)")
    print(f"  fitMultipleSpectra  {t_base:6.2f} s   {rate_b:7.0f} spectra/s   ", end="")
    print(f"peak RSS {peak_b / 1e9:.2f} GB")

    # --- xrfdask ----------------------------------------------------------------------------
    methods = ("linear", "pymca")
    common = dict(src=src, tiny=tiny, ref=ref, repeat=args.repeat, methods=methods)

    def xrfdask(scheduler, chunks=args.chunk, check=False, env=ONE_THREAD, methods=methods):
        code = XRFDASK.format(
            scheduler=scheduler, chunks=chunks, check=check, **{**common, "methods": methods}
        )
        return run_json(code, env=env)[1]

    def cluster(n, malloc=""):
        return CLUSTER.format(n=n, malloc=malloc, tiny=tiny)

    one = xrfdask(SYNCHRONOUS, check=True)
    auto = xrfdask(SYNCHRONOUS, chunks="128MiB")
    threads = xrfdask(THREADS2)
    user_one = xrfdask(SYNCHRONOUS, env=None, methods=("linear",))
    user_threads = xrfdask(THREADS2, env=None, methods=("linear",))
    two_trim = xrfdask(cluster(2))
    two = xrfdask(cluster(2, UNSET_TRIM))
    one_worker = xrfdask(cluster(1, UNSET_TRIM))

    def block(title, res, cores):
        print(title)
        rates = {}
        for m in (m for m in methods if m in res):
            r = res[m]
            rates[m] = rate = spectra / r["total"]
            rest = r["setup"] - r["model"] - r["sum_fit"]
            print(
                f'  "{m}" {r["total"]:5.2f} s = fit() {r["setup"]:4.2f} s (models '
                f"{r['model']:.2f}, sum fits {r['sum_fit']:.2f}, sum spectrum {rest:.2f}) + "
                f"compute {r['compute']:4.2f} s  {rate:6.0f} spectra/s  "
                f"{rate / cores / rate_b:4.2f}x baseline per core"
            )
        return rates

    def speedup(res, ref_res, label):
        for m in (m for m in methods if m in res):
            total = ref_res[m]["total"] / res[m]["total"]
            compute = ref_res[m]["compute"] / res[m]["compute"]
            print(f"  {m:6s} {label}: {total:.2f}x (compute alone {compute:.2f}x)")

    print(f"\nxrfdask, one thread (synchronous scheduler), bands of {args.chunk} ", end="")
    rate1 = block(f"({one['bands']} bands)", one, 1)
    for m in methods:
        if "max_diff" in one[m]:
            print(
                f"  {m:6s} vs baseline areas: max |diff| {one[m]['max_diff']:.1e} of the "
                f"largest area, median relative {one[m]['median_rel_diff']:.1e}"
            )
    rate_auto = block(f"one thread, 128 MiB bands ({auto['bands']} bands)", auto, 1)
    rate_t = block(f"2 worker threads (threaded scheduler), bands of {args.chunk}", threads, 2)
    speedup(threads, one, "2 threads / one thread")
    print("BLAS threads not limited (as a user runs it), linear only")
    rate_u1 = block("  one thread (synchronous scheduler)", user_one, 1)
    rate_u2 = block("  2 worker threads (threaded scheduler)", user_threads, 2)
    speedup(user_threads, user_one, "2 threads / one thread, BLAS not limited")
    print(
        f"LocalCluster 2 workers x 1 thread, as xd.connect() starts them, bands of {args.chunk}, ",
        end="",
    )
    rate2 = block(f"warm-up {two['warmup']:.1f} s not timed", two, 2)
    speedup(two, one, "2 worker processes / one in-process thread")
    rate_w1 = block("LocalCluster 1 worker x 1 thread (distributed's own cost)", one_worker, 1)
    speedup(two, one_worker, "2 worker processes / 1 worker process")
    block("2 worker processes with distributed's default MALLOC_TRIM_THRESHOLD_=65536", two_trim, 2)
    speedup(two_trim, one, "2 worker processes / one in-process thread")

    # --- where the time goes ----------------------------------------------------------------
    for chunk in dict.fromkeys((args.chunk, "128MiB")):
        rows = min(ny, band_rows(chunk, nx, ndet))
        nbands = max(1, min(ny // rows - 1, 12000 // (rows * nx * ndet) + 1))  # + a warm-up
        _, st = run_json(STAGES.format(src=src, rows=rows, nbands=nbands))
        n = st["spectra"]
        print(f"\nwhere the time goes, one thread, bands of {rows} rows ({chunk}), ", end="")
        print(f"{nbands} band(s) timed: s per 10,000 spectra")
        for name, seconds in st["stages"].items():
            if "whole map" in name or "models" in name:
                print(f"  {name:38s} {seconds:6.3f} s for the map (once per fit)")
            else:
                print(f"  {name:38s} {seconds * 1e4 / n:6.3f}")

    # --- peak memory ------------------------------------------------------------------------
    print("\npeak RSS, to_h5(fit(ds, cfg, 'linear'), group='fit'), threaded scheduler, ", end="")
    print(f"xrfdask.chunk-size {args.chunk}")
    peaks = {}
    for path in (quarter, src):
        dst = folder / f"{path.stem}_fit.h5"
        if dst.exists():
            dst.unlink()
        code = MEMORY.format(src=path, dst=dst, chunks=args.chunk)
        peaks[path], out = peak_rss_of(code, env=ONE_THREAD)
        bands, seconds = out.split()[-2:]
        ry, rx = map(int, path.stem.split("_")[-1].split("x"))
        print(
            f"  {ry:4d} x {rx:3d} px ({ry * rx * ndet:6d} spectra, dense "
            f"{ry * rx * ndet * 8192 / 1e6:4.0f} MB, {bands:>3s} bands): "
            f"peak RSS {peaks[path] / 1e9:.2f} GB, {float(seconds):.1f} s"
        )
    imports = "import dask, numpy, xarray, numba, xrfdask, PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit"
    base_import, _ = peak_rss_of(imports)
    print(f"  (interpreter with xrfdask and PyMca imported: {base_import / 1e9:.2f} GB; ", end="")
    print(f"baseline peak {peak_b / 1e9:.2f} GB)")

    # --- summary ----------------------------------------------------------------------------
    c = args.chunk
    targets = [
        (f'"linear" per core / baseline ({c})', rate1["linear"] / rate_b, ">=", 3.0),
        (f'"pymca" per core / baseline ({c})', rate1["pymca"] / rate_b, ">=", 0.85),
        ('"linear" per core / baseline (128MiB)', rate_auto["linear"] / rate_b, ">=", 3.0),
        ('"pymca" per core / baseline (128MiB)', rate_auto["pymca"] / rate_b, ">=", 0.85),
        ('"linear" 2 threads / 1 thread', rate_t["linear"] / rate1["linear"], ">=", 1.7),
        (
            '"linear" 2 / 1 thread, BLAS not limited',
            rate_u2["linear"] / rate_u1["linear"],
            ">=",
            1.7,
        ),
        ('"pymca" 2 worker processes / 1 worker', rate2["pymca"] / rate_w1["pymca"], ">=", 1.7),
        ("peak RSS, map / 4x smaller map", peaks[src] / peaks[quarter], "<=", 1.2),
    ]
    print(f"\nsummary ({spectra} spectra; baseline {rate_b:.0f} spectra/s on one core)")
    print(f"  {'target':40s} {'measured':>8s} {'target':>8s}  result")
    for name, value, op, goal in targets:
        ok = value >= goal if op == ">=" else value <= goal
        print(f"  {name:40s} {value:7.3f}x {op}{goal:5.2f}x  {'PASS' if ok else 'FAIL'}")
    print("  stricter, for the record (a 2-core machine also runs the scheduler and client):")
    for m in methods:
        print(f'    "{m}" 2 worker processes / one in-process thread {rate2[m] / rate1[m]:6.3f}x')
    print(
        f'    "pymca" 2 threads / one thread {rate_t["pymca"] / rate1["pymca"]:6.3f}x '
        "(holds the GIL)"
    )
    print(f"(whole run {time.perf_counter() - t_start:.0f} s)")


def band_rows(chunk: str, nx: int, ndet: int) -> int:
    """Rows per band that open_geopixe plans for a byte budget (whole rows, dense uint16)."""
    from dask.utils import parse_bytes

    return max(1, parse_bytes(chunk) // (nx * ndet * 4096 * 2))


if __name__ == "__main__":
    main()
