"""Benchmark: classifying a 100,000-pixel x 4096-channel map, against ReadoutXFM's way.

Generates a map of K known phases (each a distinct spectrum of Gaussian lines on a background,
Poisson counts, about 1,500 counts per pixel, 1 detector) as a ``.GeoPIXE`` file, so xrfdask
reads it lazily. Then, in the same run:

- the baseline, ReadoutXFM's way (spec geopixe.md 6.2): the whole (pixels, 4096) float32
  array in memory, scikit-learn ``PCA(2)`` + ``KMeans(K, init="random", n_init=6)``, and
  ``umap.UMAP(n_neighbors=30, min_dist=0.3)`` to 2 + the same k-means. Loading the array is not
  counted, in the baseline's favour.
- xrfdask, a fresh interpreter per method: ``xd.classify(xd.open_geopixe(f), "pca-kmeans")``
  and ``"umap-kmeans"`` with defaults, labels and class spectra computed (decode included;
  scikit-learn, umap and distributed imported before the timer, as ReadoutXFM's process
  imports its libraries: its raw path runs PCA and UMAP in one run, and importing umap starts
  numba, whose one-time start-up (0.3-0.4 s) xrfdask's first kernel would pay otherwise),
  three times: the speed-up is the session's figure (the best of the second and third
  calls; the baseline's PCA + k-means is the better of two), and the first call is printed
  beside it (it also loads each compiled kernel and starts the thread pools); the peak RSS
  (VmHWM) of ``pca-kmeans`` on this map and on one with 4x the pixels.

Adjusted Rand index against the true phases is printed for every run.

Targets (issue 11): pca-kmeans >= 5x the baseline's PCA + k-means; umap-kmeans >= 3x the
baseline's UMAP + k-means with ARI no lower; peak RSS at 4x the pixels within 1.2x.

Usage: python benchmarks/bench_classify.py [--shape 400x250] [--phases 5] [--skip-umap]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_CHANNELS = 4096
LINES = [(1.74, 6.40), (3.69, 8.04), (4.51, 9.57), (5.90, 14.16), (7.48, 12.61), (2.31, 10.55)]


def write_phase_map(path: Path, ny: int, nx: int, k: int, seed: int = 0) -> np.ndarray:
    """A .GeoPIXE map of k phases in blobs (truth returned), generated band by band."""
    import dask.array as da
    import xarray as xr

    import xrfdask as xd

    energy = np.arange(N_CHANNELS) * 0.01
    means = []
    for a, b in LINES[:k]:
        s = 0.05 + 1.2 * np.exp(-0.5 * ((energy - a) / 0.07) ** 2)
        s += 0.6 * np.exp(-0.5 * ((energy - b) / 0.09) ** 2)
        means.append(s)
    means = np.asarray(means)
    yy, xx = np.mgrid[:ny, :nx]
    truth = ((np.sin(yy / 17.0) + np.cos(xx / 23.0) + 2) * k / 4).astype(int) % k

    def band(block_id=None):
        i = block_id[0]
        rows = slice(i * 25, min((i + 1) * 25, ny))
        rng = np.random.default_rng([seed, i])
        return rng.poisson(means[truth[rows]])[:, :, None, :].astype(np.uint16)

    spectra = da.map_blocks(band, chunks=(tuple(np.diff(np.r_[0:ny:25, ny])), (nx,), (1,),
                                          (N_CHANNELS,)), dtype=np.uint16)  # fmt: skip
    ds = xr.Dataset(
        {"spectra": (("y", "x", "detector", "channel"), spectra)},
        coords={"y": np.arange(ny) * 0.01, "x": np.arange(nx) * 0.01, "detector": [0],
                "channel": np.arange(N_CHANNELS), "energy": ("channel", energy)},
        attrs={"dwell_ms": 10.0},
    )  # fmt: skip
    xd.to_geopixe(ds, path, overwrite=True)
    return truth


CHILD = """
import json, time, numpy as np, xrfdask as xd
from sklearn.metrics import adjusted_rand_score
# Imported before the timer, as the baseline's libraries are: ReadoutXFM's raw path runs PCA
# and UMAP in one process, so its imports include umap (and start numba, as here); dask
# imports distributed on its first compute (dask.base.get_scheduler looks for a client).
import sklearn.cluster, sklearn.decomposition, distributed, umap
truth = np.load({truth!r})
out = {{}}
for method in {methods!r}:
    times = []
    for run in range({runs}):  # the first in this interpreter, then again in the same session
        t0 = time.perf_counter()
        cls = xd.classify(xd.open_geopixe({path!r}), method, {k}).compute()
        times.append(time.perf_counter() - t0)
    out[method] = (times, adjusted_rand_score(truth.ravel(), cls["labels"].values.ravel()))
print(json.dumps(out))
"""


def run_xrfdask(path: Path, truth_path: Path, k: int, methods: list[str], runs: int = 1):
    from xrfdask.testing import peak_rss_of

    code = CHILD.format(truth=str(truth_path), methods=methods, path=str(path), k=k, runs=runs)
    rss, stdout = peak_rss_of(code)
    return rss, json.loads(stdout.strip().splitlines()[-1])


def baseline(path: Path, truth: np.ndarray, k: int, umap_too: bool) -> dict:
    import umap
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    import xrfdask as xd

    flat = xd.open_geopixe(path).spectra.sum("detector").values  # eager-ok: the baseline
    flat = flat.reshape(-1, N_CHANNELS).astype(np.float32)
    out = {}
    times = []
    for _ in range(2):  # the better of two, in the baseline's favour
        t0 = time.perf_counter()
        emb = PCA(2).fit_transform(flat)
        lab = KMeans(k, init="random", n_init=6, max_iter=300, random_state=42).fit_predict(emb)
        times.append(time.perf_counter() - t0)
    out["pca-kmeans"] = (min(times), adjusted_rand_score(truth.ravel(), lab))
    if umap_too:
        t0 = time.perf_counter()
        emb = umap.UMAP(n_neighbors=30, min_dist=0.3, low_memory=True).fit_transform(flat)
        lab = KMeans(k, init="random", n_init=6, max_iter=300, random_state=42).fit_predict(emb)
        out["umap-kmeans"] = (time.perf_counter() - t0, adjusted_rand_score(truth.ravel(), lab))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="400x250", help="rows x columns (default 400x250)")
    parser.add_argument("--phases", type=int, default=5)
    parser.add_argument("--skip-umap", action="store_true", help="PCA + k-means only")
    args = parser.parse_args()
    ny, nx = (int(v) for v in args.shape.split("x"))
    k = args.phases
    methods = ["pca-kmeans"] if args.skip_umap else ["pca-kmeans", "umap-kmeans"]
    with tempfile.TemporaryDirectory(prefix="xrfdask-bench-classify-") as tmp:
        tmp = Path(tmp)
        small, large = tmp / "small.GeoPIXE", tmp / "large.GeoPIXE"
        truth = write_phase_map(small, ny, nx, k)
        np.save(tmp / "small.npy", truth)
        truth4 = write_phase_map(large, 2 * ny, 2 * nx, k, seed=1)
        np.save(tmp / "large.npy", truth4)
        print(f"map: {ny} x {nx} pixels x {N_CHANNELS} channels, {k} phases; 4x: "
              f"{2 * ny} x {2 * nx}")  # fmt: skip
        base = baseline(small, truth, k, not args.skip_umap)
        # One method per fresh interpreter, so each peak RSS belongs to one method; the RSS
        # ratio compares the same method (pca-kmeans) at 1x and 4x the pixels.
        ours, rss = {}, {}
        for method in methods:
            rss[method], result = run_xrfdask(small, tmp / "small.npy", k, [method], runs=3)
            ours.update(result)
        rss4, ours4 = run_xrfdask(large, tmp / "large.npy", k, ["pca-kmeans"])
    for method in methods:
        (tb, ab), (times, ax) = base[method], ours[method]
        target = 5 if method == "pca-kmeans" else 3
        first, again = times[0], min(times[1:])
        print(f"{method:12s} baseline {tb:7.2f} s (ARI {ab:.3f})   xrfdask {again:7.2f} s "
              f"(ARI {ax:.3f})   speed-up {tb / again:5.2f}x (target >= {target}x); first call "
              f"in a fresh interpreter {first:.2f} s ({tb / first:.2f}x)")  # fmt: skip
    rss1 = rss["pca-kmeans"]
    print(f"xrfdask pca-kmeans peak RSS: {rss1 / 2**30:.2f} GiB on the map, {rss4 / 2**30:.2f} GiB "
          f"at 4x the pixels: ratio {rss4 / rss1:.2f} (target <= 1.2); 4x pca-kmeans "
          f"{ours4['pca-kmeans'][0][0]:.2f} s, ARI {ours4['pca-kmeans'][1]:.3f}")  # fmt: skip
    if "umap-kmeans" in rss:
        print(f"xrfdask umap-kmeans peak RSS: {rss['umap-kmeans'] / 2**30:.2f} GiB on the map")


if __name__ == "__main__":
    main()
