"""``xd.classify``: spectral classification of a map (PCA, k-means, UMAP, HDBSCAN, class spectra).

ReadoutXFM classifies the detector-summed raw spectra of every pixel (spec ``geopixe.md`` 6);
xrf_proc runs PCA and k-means on element maps (spec ``xrf_proc.md`` 7). Both hold every
pixel's (pixels, features) matrix in memory. Here the map is read in bands of rows:

1. **One pass for the statistics**: per band, the feature sums and the scatter matrix
   (features: detector-summed spectra, windowed, binned, optionally ``sqrt``/``log``
   transformed; or one element map per line, z-scored or whitened as xrf_proc does). PCA is
   the eigen-decomposition of the covariance built from those sums: exact (scikit-learn's PCA
   to rounding), one pass, memory ``features**2``, not ``pixels``. For counts the Gram matrix
   is summed exactly in float32 (:func:`_gram`), a quarter of float64's time.
2. **The sample**: a seeded random sample of pixels (chosen by pixel index, so the same on any
   chunking; the whole map when it is small) in the clustered space (PCA scores or scaled
   features). Readers with fast paths (``.GeoPIXE``) read it in a second pass, the PCA scores
   straight from the sparse records as weighted sums; for others pass 1 keeps the sample's
   features.
3. The clustering is fitted on the sample: scikit-learn k-means restarted from ``n_init``
   k-means++ seeds, keeping the lowest inertia; UMAP fitted on the sample and applied with
   ``transform`` to fixed batches of pixels; HDBSCAN on the sample's embedding.
4. **One lazy pass for the results**: every pixel's embedding and label (nearest centroid, or
   for HDBSCAN the label of the nearest sample point), and from the same tasks each class's
   summed and mean spectrum, size and the inertia over the whole map. When the sample is the
   whole map, k-means labels come from the sample and this pass only sums the class spectra.

Why not dask-ml: its PCA and k-means|| read the data once per iteration (a map's decode each
time unless persisted, which memory does not allow for large maps) and its random sampling
depends on the chunking; the sums above need one pass and give the same labels on any chunking.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError
from xrfdask.io import fastpaths
from xrfdask.model import ELEMENT_VARIABLES
from xrfdask.umap_embedding import SampleUmap

__all__ = ["METHODS", "classify", "features_of", "pca_from_sums"]

METHODS = ("kmeans", "pca-kmeans", "umap-kmeans", "hdbscan")
UMAP_PCA_COMPONENTS = 11  # ReadoutXFM HEAD: PCA to 11 components before UMAP (spec 6.1)
TRANSFORM_BATCH = 4096  # pixels per UMAP transform call: fixed, so labels ignore the chunking
KMEANS_TRIAL_ROWS = 16384  # rows on which k-means restarts compete (see _kmeans)


@dataclass
class Features:
    """How to turn a band of the input into the (pixels, features) rows that are clustered."""

    data: da.Array  # (y, x, ...) input, y chunked, the rest whole
    kind: str  # "spectra" (y, x, detector, channel) or "elements" (y, x, line)
    window: slice  # channels kept (spectra)
    bin: int  # channels summed into one feature (spectra)
    transform: str | None
    names: list[str]  # one per feature
    energy: np.ndarray | None  # keV per feature (spectra)
    source: str  # what was clustered, written as kmeans/.../data_dir_clustered
    detector: Any = None  # element maps: the detector label classified
    # Spectra read by a reader with fast paths (.GeoPIXE): ``data`` holds the features already
    # binned from the sparse records, and ``raw`` the reader's own spectra, from which the
    # class spectra are summed by label (no dense spectra in either pass).
    raw: da.Array | None = None
    bins: np.ndarray | None = None  # with ``raw``: each channel's feature, -1 if left out

    @property
    def n_features(self) -> int:
        return len(self.names)

    def for_tasks(self) -> Features:
        """These rules without the input array, to travel in tasks: dask looks inside a
        dataclass argument for collections, so ``data`` would make every task depend on the
        whole map (computed in full, in memory, before any band is processed)."""
        return dataclasses.replace(self, data=None, raw=None, bins=None)

    def counts(self, block: np.ndarray) -> bool:
        """Whether the rows of this band are integer counts (untransformed spectra): their Gram
        matrix can then be summed exactly in float32 (:func:`_gram`)."""
        return (
            self.kind == "spectra"
            and self.transform is None
            and (block.ndim == 3 or block.dtype.kind in "iu")  # binned by the reader: counts
        )

    def rows(self, block: np.ndarray) -> np.ndarray:
        """A band's features as float64 (pixels, features) rows (row-major over y, x)."""
        if self.kind == "spectra" and block.ndim == 3:  # binned by the reader
            f = block
        elif self.kind == "spectra":
            spectra = block[..., self.window]
            ny, nx, nd, nc = spectra.shape
            nb = nc // self.bin
            if spectra.dtype.kind in "iu" and spectra.dtype.itemsize <= 2:
                # Counts summed exactly in integers: a quarter of float64's memory traffic.
                summed = spectra[:, :, 0] if nd == 1 else spectra.sum(axis=2, dtype=np.int32)
                wide = np.int64
            else:
                summed, wide = spectra.sum(axis=2, dtype=np.float64), np.float64
            summed = summed.reshape(ny * nx, nc)[:, : nb * self.bin]
            if nb == 0:
                return np.zeros((ny * nx, 0))
            starts = np.arange(0, nb * self.bin, self.bin)
            f = np.add.reduceat(summed, starts, axis=1, dtype=wide).astype(np.float64)
        else:
            f = np.nan_to_num(block.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        f = f.reshape(-1, f.shape[-1])
        if self.transform == "sqrt":
            f = np.sqrt(np.clip(f, 0, None))
        elif self.transform == "log":
            f = np.log1p(np.clip(f, 0, None))
        return f

    def class_sums(self, block: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """(class, channel or line) sums of a band's pixels by label: full detector-summed
        spectra (integer counts summed exactly, in the stored type's width), or element values.

        One selection per class present (a class's pixels are copied once, in their stored
        type), not a float64 copy of the band: the band is read about twice, not eight times.
        """
        flat = block.reshape(labels.size, -1, block.shape[-1])  # (pixels, detector or 1, last)
        if self.kind != "spectra":
            flat = np.nan_to_num(flat.astype(np.float64))
        wide = np.int64 if flat.dtype.kind in "iub" else np.float64
        out = np.zeros((n_classes, block.shape[-1]))
        for c in np.unique(labels):
            out[c] = flat[labels == c].sum(axis=(0, 1), dtype=wide)
        return out


def features_of(
    obj: xr.Dataset | xr.DataArray,
    *,
    variable: str | None = None,
    lines=None,
    detector=None,
    energy: tuple[float, float] | None = None,
    bin: int = 8,
    transform: str | None = None,
) -> Features:
    """What :func:`classify` clusters: detector-summed spectra of a raw map, or element maps.

    Parameters are those of :func:`classify`.
    """
    if transform not in (None, "sqrt", "log"):
        raise ConfigError(f"classify: transform={transform!r}; expected None, 'sqrt' or 'log'")
    ds = obj.to_dataset(name=obj.name or "values") if isinstance(obj, xr.DataArray) else obj
    if variable is None and "spectra" in ds:
        variable = "spectra"
    if variable is None:
        variable = next((v for v in ELEMENT_VARIABLES if v in ds), None)
    if variable is None or variable not in ds:
        raise ConfigError(
            "classify: no 'spectra' (a raw map) nor element maps "
            f"({', '.join(ELEMENT_VARIABLES)}) in the input; pass variable="
        )
    var = ds[variable]
    if variable == "spectra":
        if not isinstance(bin, int | np.integer) or bin < 1:
            raise ConfigError(f"classify: bin={bin!r} must be a positive integer")
        spectra = var.transpose("y", "x", "detector", "channel")
        n_channels = spectra.sizes["channel"]
        lo, hi = 0, n_channels
        e = spectra["energy"].values if "energy" in spectra.coords else None  # eager-ok: axis
        if energy is not None:
            if e is None:
                raise ConfigError("classify: energy= needs an 'energy' coordinate on channel")
            lo, hi = np.searchsorted(e, energy[0]), np.searchsorted(e, energy[1], side="right")
            if hi - lo < 2:
                raise ConfigError(f"classify: energy={energy} keeps fewer than 2 channels")
        nb = (hi - lo) // bin
        if nb < 2:
            raise ConfigError(f"classify: bin={bin} leaves fewer than 2 features")
        centres = e[lo : lo + nb * bin].reshape(nb, bin).mean(axis=1) if e is not None else None
        names = (
            [f"{c:.3f} keV" for c in centres]
            if centres is not None
            else [f"channels {lo + i * bin}-{lo + (i + 1) * bin - 1}" for i in range(nb)]
        )
        bins = np.full(n_channels, -1, dtype=np.int64)
        bins[lo : lo + nb * bin] = np.arange(nb * bin) // bin
        binned = fastpaths.pixel_binned_sums(spectra.data, bins)
        data = _band_chunks(spectra.data if binned is None else binned)
        return Features(data, "spectra", slice(lo, hi), bin, transform, names, centres,
                        "raw/spectra", raw=None if binned is None else spectra.data,
                        bins=None if binned is None else bins)  # fmt: skip
    if "line" not in var.dims:
        raise ConfigError(f"classify: '{variable}' has no 'line' dimension to classify over")
    if "detector" in var.dims:
        labels = var["detector"].values.tolist()  # eager-ok: labels
        if detector is None:
            detector = "sum" if "sum" in labels else labels[0]
        if detector not in labels:
            raise ConfigError(f"classify: detector {detector!r} not in {labels}")
        var = var.sel(detector=detector)
    if lines is not None:
        missing = [name for name in lines if name not in var["line"].values]
        if missing:
            raise ConfigError(f"classify: lines {missing} not in {list(var['line'].values)}")
        var = var.sel(line=list(lines))
    if var.sizes["line"] < 2:
        raise ConfigError("classify: at least 2 lines are needed")
    var = var.transpose("y", "x", "line")
    group = {"concentration": "quant", "normalised": "norm", "peak_area": "fit"}.get(variable)
    names = [str(v) for v in var["line"].values]
    data = _band_chunks(da.asarray(var.data))
    return Features(data, "elements", slice(None), 1, transform, names, None,
                    f"{group or variable}/ims", detector)  # fmt: skip


def _band_chunks(data: da.Array) -> da.Array:
    """Bands of rows, every other axis whole (a band is a set of complete rows)."""
    return data.rechunk({i: -1 for i in range(1, data.ndim)})


def _band_offsets(data: da.Array) -> np.ndarray:
    nx = data.shape[1]
    return np.concatenate([[0], np.cumsum(data.chunks[0])[:-1]]) * nx


def _stats_block(block: np.ndarray, start: int, feats: Features, sample: np.ndarray | None):
    """Count, sums and scatter matrix (sum of outer products about the band's own mean) of one
    band, and the features of its sampled pixels (``sample`` None: none kept)."""
    f = feats.rows(block)
    total = f.sum(axis=0)
    scatter = _scatter(f, total, feats.counts(block))
    if sample is None:
        return len(f), total, scatter, [], []
    pick = sample[(sample >= start) & (sample < start + len(f))]
    return len(f), total, scatter, pick, f[pick - start].astype(np.float32)


#: float32 holds every integer below 2**24 exactly.
_EXACT = 2.0**24
#: Rows per float32 product below which float64's product is as fast.
_MIN_GROUP = 256


def _scatter(f: np.ndarray, total: np.ndarray, counts: bool) -> np.ndarray:
    """``sum (f - mean)^T (f - mean)`` over the rows of ``f``, in float64.

    Integer counts: the Gram matrix ``f^T f`` summed exactly in float32 (a quarter of float64's
    time), then centred; other features: centred first, then one float64 product.
    """
    from xrfdask.fit.blas import one_blas_thread

    mean = total / max(len(f), 1)
    with one_blas_thread():  # BLAS threads beside dask's oversubscribe the cores
        gram = _gram(f) if counts else None
        if gram is not None:
            # Exact sums minus one rounded product: errors of rounding x (mean**2 + variance)
            # against the centred product's rounding x variance, well below 1e-12 of the
            # matrix for counts (tested).
            return gram - np.outer(total, mean)
        # About the band's own mean: no cancellation between large sums of squares and the
        # mean's square (the covariance's small components would lose their digits).
        centred = f - mean
        return centred.T @ centred


def _gram(f: np.ndarray) -> np.ndarray | None:
    """``f^T f`` of integer-valued rows, exact, from float32 products; None where that does not
    pay (values too large for exact groups of at least ``_MIN_GROUP`` rows).

    In a group of rows, every partial sum of ``f_ri * f_rj`` is an integer no larger than
    ``sum_r max_j f_rj**2``; groups keep that sum below 2**24, so float32 adds them without
    rounding, in whatever order BLAS chooses, and float64 adds the groups' exact results.
    """
    if len(f) == 0:
        return np.zeros((f.shape[1], f.shape[1]))
    low, high = f.min(), f.max()
    peak = (f.max(axis=1) if low >= 0 else np.abs(f).max(axis=1)) ** 2  # counts: no abs copy
    half = _EXACT / 2
    if max(-low, high) ** 2 >= half:
        return None
    reach = np.cumsum(peak)
    # A group ends before the running sum crosses the next multiple of half: its own sum is
    # below half plus its first row's peak, itself below half.
    cuts = np.searchsorted(reach, np.arange(half, reach[-1], half), side="right")
    edges = np.unique(np.concatenate([[0], cuts, [len(f)]]))
    if len(f) / (len(edges) - 1) < _MIN_GROUP and len(f) >= _MIN_GROUP:
        return None
    gram = None
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        g = f[a:b].astype(np.float32)
        if gram is None:
            gram = (g.T @ g).astype(np.float64)
        else:
            gram += g.T @ g
    return gram


def _statistics(feats: Features, sample: np.ndarray | None):
    """Pass 1: count, sums, scatter matrix and the sampled rows (``sample`` None: none kept),
    in one compute."""
    blocks = feats.data.to_delayed().ravel()
    starts = _band_offsets(feats.data)
    # One copy of each in the graph, not one per task; traverse=False: dask would otherwise
    # walk the rules' fields (hundreds of feature names) again for every band.
    rules = dask.delayed(feats.for_tasks(), traverse=False)
    sample_task = dask.delayed(sample)
    parts = [
        dask.delayed(_stats_block)(b, int(s), rules, sample_task)
        for b, s in zip(blocks, starts, strict=True)
    ]
    # A tree of merges, in band order: the bands' Gram matrices (features² each) never all
    # wait in memory at once, however many bands the map has.
    while len(parts) > 1:
        parts = [dask.delayed(_merge_stats)(*parts[i : i + 8]) for i in range(0, len(parts), 8)]
    n, total, scatter, _, rows = dask.compute(parts[0])[0]
    kept = np.concatenate(_joined([rows])) if sample is not None else None
    return n, total, scatter, kept


def _sample_space(feats: Features, sample: np.ndarray, model: _Model) -> np.ndarray:
    """Pass 2, for readers with fast paths (``.GeoPIXE``'s sparse records): the sampled pixels
    in the clustered space (``model.space``, float64), read again rather than kept from pass 1
    (their features, ``sample x features``, are hundreds of MB; the space is small)."""
    data, weighted = _space_input(feats, model)
    blocks = data.to_delayed().ravel()
    starts = _band_offsets(data)
    model_task = dask.delayed(model, traverse=False)
    sample_task = dask.delayed(sample)
    parts = [
        dask.delayed(_sample_block)(b, int(s), model_task, sample_task, weighted)
        for b, s in zip(blocks, starts, strict=True)
    ]
    return np.concatenate(dask.compute(*parts))


def _sample_block(block: np.ndarray, start: int, model: _Model, sample: np.ndarray,
                  weighted: bool):  # fmt: skip
    from xrfdask.fit.blas import one_blas_thread

    n = block.shape[0] * block.shape[1]
    pick = sample[(sample >= start) & (sample < start + n)] - start
    if len(pick) < n:  # the sampled pixels, as one row of a band
        block = block.reshape(1, n, *block.shape[2:])[:, pick]
    with one_blas_thread():
        return model.space_of(block, weighted)


def _space_input(feats: Features, model: _Model) -> tuple[da.Array, bool]:
    """What passes 2 and 3 read, and whether it is weighted sums: PCA scores are linear in the
    counts, so where the reader sums each pixel's records with weights (the colour map's path)
    the scores come straight from the sparse records, ``counts @ channel weights - offset``,
    each channel weighted by its feature's loading; otherwise the features, band by band."""
    if (feats.raw is not None and feats.bins is not None and feats.transform is None
            and model.pca_vectors is not None):  # fmt: skip
        weights = model.weights
        per_channel = np.zeros((len(feats.bins), weights.shape[1]))
        used = feats.bins >= 0
        per_channel[used] = weights[feats.bins[used]]
        sums = fastpaths.pixel_weighted_sums(feats.raw, per_channel)
        if sums is not None:
            return _band_chunks(sums), True
    return feats.data, False


def _merge_stats(*parts):
    """Partial results of consecutive bands as one (sums added, scatter matrices combined
    about the common mean (Chan et al.'s pairwise update), sampled rows in order)."""
    n, total, scatter = parts[0][0], parts[0][1].copy(), parts[0][2].copy()
    for m, t, s, _, _ in parts[1:]:
        if m == 0:
            continue
        if n > 0:
            delta = t / m - total / n
            scatter += s + np.outer(delta, delta) * (n * m / (n + m))
        else:
            scatter = s.copy()
        n, total = n + m, total + t
    # The sampled rows stay lists of the bands' arrays, joined once at the end: joined at
    # every level of the tree they were copied as often (hundreds of MB for a large sample).
    return n, total, scatter, _joined(p[3] for p in parts), _joined(p[4] for p in parts)


def _joined(parts) -> list:
    """Lists of arrays (or arrays) as one list of arrays."""
    return [a for p in parts for a in (p if isinstance(p, list) else [p])]


def pca_from_sums(n: int, total: np.ndarray, scatter: np.ndarray, scale: np.ndarray):
    """Eigen-decomposition of the covariance of ``features / scale`` from its sums.

    Parameters
    ----------
    n : int
        Number of rows (pixels).
    total : ndarray (features,)
        Sum of the rows.
    scatter : ndarray (features, features)
        Sum of the outer products of the rows about their mean.
    scale : ndarray (features,)
        Divisor of each feature.

    Returns
    -------
    mean, eigenvalues, eigenvectors
        The mean, eigenvalues (descending) and eigenvectors (features, components), signs as
        scikit-learn's ``svd_flip`` (each component's largest loading positive).
    """
    mean = total / n
    cov = scatter / max(n - 1, 1)
    cov /= np.outer(scale, scale)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    big = np.argmax(np.abs(evecs), axis=0)
    evecs *= np.sign(evecs[big, np.arange(evecs.shape[1])])
    return mean, evals, evecs


def _scale(scale: str | None, n: int, total: np.ndarray, scatter: np.ndarray) -> tuple:
    """Centre and divisor of each feature: z-score (xrf_proc's PCA), whiten (its k-means)."""
    mean = total / n
    sd = np.sqrt(np.clip(np.diag(scatter) / n, 0, None))
    sd = np.where(sd > 0, sd, 1.0)  # a constant feature: left as is (scipy's whiten does so)
    if scale is None:
        return np.zeros_like(mean), np.ones_like(mean)
    if scale == "zscore":
        return mean, sd
    if scale == "whiten":
        return np.zeros_like(mean), sd
    raise ConfigError(f"classify: scale={scale!r}; expected 'zscore', 'whiten' or None")


@dataclass
class _Model:
    """Everything the sample and result passes need to embed and label a band (small:
    broadcast to the tasks)."""

    feats: Features
    centre: np.ndarray
    divisor: np.ndarray
    pca_mean: np.ndarray | None
    pca_vectors: np.ndarray | None  # (features, components) in scaled units
    umap: SampleUmap | None
    centroids: np.ndarray | None  # k-means centroids in embedding space
    tree: Any  # HDBSCAN: k-d tree of the sample's embedding
    tree_labels: np.ndarray | None
    labels_offset: int

    def scaled(self, f: np.ndarray) -> np.ndarray:
        return (f - self.centre) / self.divisor

    @property
    def weights(self) -> np.ndarray:
        """(features, components): PCA scores are ``features @ weights - offset``."""
        return self.pca_vectors / self.divisor[:, None]

    @property
    def offset(self) -> np.ndarray:
        return (self.centre / self.divisor + self.pca_mean) @ self.pca_vectors

    def scores(self, f: np.ndarray) -> np.ndarray:
        """PCA scores: ``((f - centre) / divisor - pca_mean) @ vectors``, as one product and a
        constant (no band-sized temporaries: each costs its page faults again)."""
        return f @ self.weights - self.offset

    def space_of(self, block: np.ndarray, weighted: bool) -> np.ndarray:
        """A band's rows in :meth:`space`, from its features or (``weighted``) from the
        reader's weighted sums ``counts @ weights`` (:func:`_space_input`)."""
        if weighted:
            return block.reshape(-1, block.shape[-1]) - self.offset
        return self.space(self.feats.rows(block))

    def space(self, f: np.ndarray) -> np.ndarray:
        """Rows in the space that is clustered (or given to UMAP): PCA scores, or the scaled
        features."""
        return self.scores(f) if self.pca_vectors is not None else self.scaled(f)

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Rows of :meth:`space` in the embedding: UMAP's (in fixed batches), else themselves."""
        if self.umap is None:
            return x
        out = [
            self.umap.transform(x[i : i + TRANSFORM_BATCH])
            for i in range(0, len(x), TRANSFORM_BATCH)
        ]
        return np.concatenate(out) if out else np.empty((0, self.umap.n_components))

    def label(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and squared distances to the assigned centroid (NaN without centroids)."""
        if self.centroids is not None:
            d2 = ((e[:, None, :] - self.centroids[None]) ** 2).sum(-1)
            lab = np.argmin(d2, axis=1)
            return lab + self.labels_offset, d2[np.arange(len(e)), lab]
        _, nearest = self.tree.query(e)
        return self.tree_labels[nearest], np.full(len(e), np.nan)


def _result_block(block: np.ndarray, model: _Model, n_classes: int, want_scores: bool,
                  want_sums: bool, weighted: bool):  # fmt: skip
    """The last pass on one band: labels, embedding, scores and per-class partial sums."""
    from xrfdask.fit.blas import one_blas_thread

    with one_blas_thread():
        return _result_block_in(block, model, n_classes, want_scores, want_sums, weighted)


def _result_block_in(block: np.ndarray, model: _Model, n_classes: int, want_scores: bool,
                     want_sums: bool, weighted: bool):  # fmt: skip
    ny, nx = block.shape[:2]
    x = model.space_of(block, weighted)
    e = model.embed(x)
    lab, d2 = model.label(e)
    sums = model.feats.class_sums(block, lab, n_classes) if want_sums else None
    size = np.bincount(lab, minlength=n_classes)
    scores = x.reshape(ny, nx, -1).astype(np.float32) if want_scores else None
    return (lab.reshape(ny, nx).astype(np.int32), e.reshape(ny, nx, -1).astype(np.float32),
            scores, sums, size, np.nansum(d2))  # fmt: skip


def _class_mean(sums: np.ndarray, size: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / size  # an empty class: NaN, as ReadoutXFM's class averages


def classify(
    obj: xr.Dataset | xr.DataArray,
    method: str = "pca-kmeans",
    n_clusters: int = 6,
    *,
    n_components: int | None = None,
    seed: int = 0,
    n_init: int = 10,
    init: np.ndarray | None = None,
    max_iter: int = 300,
    sample_size: int = 100_000,
    umap_sample_size: int = 20_000,
    variable: str | None = None,
    lines=None,
    detector=None,
    energy: tuple[float, float] | None = None,
    bin: int = 8,
    transform: str | None = None,
    scale: str | None = "auto",
    n_neighbors: int = 30,
    min_dist: float = 0.1,
    min_cluster_size: int | None = None,
) -> xr.Dataset:
    """Classify a map's pixels by their spectra or their element maps.

    Parameters
    ----------
    obj : xarray.Dataset
        A raw map (``spectra``: its detector-summed spectra are classified) or a fit,
        normalise or quantify result (one element map per line, of one detector).
    method : {"pca-kmeans", "kmeans", "umap-kmeans", "hdbscan"}
        ``"kmeans"`` on the (scaled) features; ``"pca-kmeans"`` on ``n_components`` PCA scores
        (default 10); ``"umap-kmeans"``: PCA to 11, UMAP to ``n_components`` (default 2),
        k-means; ``"hdbscan"``: PCA, UMAP, HDBSCAN (ReadoutXFM HEAD's default; label 0 is noise).
    n_clusters : int, default 6
        Number of classes of the k-means methods (HDBSCAN finds its own).
    n_components : int, optional
        Dimensions of the space that is clustered (see ``method``).
    seed : int, default 0
        Seed of the pixel sample, k-means starts and UMAP: the same seed gives the same labels
        on any chunking and scheduler.
    n_init, init, max_iter
        k-means restarts (the lowest inertia wins), explicit initial centroids (then one start),
        iteration limit.
    sample_size : int, default 100000
        Pixels the clustering is fitted on (all pixels of smaller maps); every pixel is labelled.
    umap_sample_size : int, default 20000
        Pixels UMAP (and HDBSCAN) are fitted on; the others are embedded with ``transform``.
    variable, lines, detector
        Element maps: the variable (default ``concentration``, ``normalised``, ``peak_area``),
        the lines (default all) and the detector (default ``"sum"`` if present, else the first).
    energy, bin, transform
        Spectra: an energy window (keV), channels summed per feature (default 8: bins of 80 eV
        at 10 eV per channel, narrower than a detector's resolution) and ``"sqrt"`` or ``"log"``.
    scale : {"auto", "zscore", "whiten", None}
        Feature scaling: ``"zscore"`` (xrf_proc's PCA), ``"whiten"`` (its k-means: divide by the
        standard deviation). ``"auto"``: z-score for element maps, none for spectra (counts are
        comparable across channels).
    n_neighbors, min_dist : int, float
        UMAP settings (ReadoutXFM: 30 and 0.1).
    min_cluster_size : int, optional
        HDBSCAN's; default 1 % of the sample, at least 5 (the original's npx/1000 fails under
        1,500 pixels).

    Returns
    -------
    xarray.Dataset
        Lazy per-pixel results, computed together in one pass: ``labels`` (y, x),
        ``embedding`` (y, x, embedding_component), ``scores`` (y, x, component) for PCA methods,
        ``class_spectra`` (class, channel) summed spectra per class (``class_mean_spectra``:
        means, NaN for an empty class; for element maps ``class_sums`` and ``class_means``
        (class, line)), ``class_size``,
        ``inertia``; computed: ``loadings`` (variable, component), ``explained_variance_ratio``.
        Written by :func:`xrfdask.to_h5` as xrf_proc's ``kmeans/`` and ``PCA/`` groups.
    """
    if method not in METHODS:
        raise ConfigError(f"classify: method={method!r}; expected one of {', '.join(METHODS)}")
    if method != "hdbscan" and (not isinstance(n_clusters, int | np.integer) or n_clusters < 2):
        raise ConfigError(f"classify: n_clusters={n_clusters!r} must be an integer >= 2")
    feats = features_of(obj, variable=variable, lines=lines, detector=detector, energy=energy,
                        bin=bin, transform=transform)  # fmt: skip
    if scale == "auto":
        scale = "zscore" if feats.kind == "elements" else None
    ny, nx = feats.data.shape[:2]
    n_pixels = ny * nx
    if n_pixels < 2:
        raise ConfigError("classify: the map has fewer than 2 pixels")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n_pixels, min(sample_size, n_pixels), replace=False))
    # A reader that bins a band from sparse records reads it again faster than hundreds of MB
    # of sampled features are kept (and first touched) in memory: it reads the sample in pass 2.
    reread = feats.raw is not None
    n, total, scatter, kept = _statistics(feats, None if reread else sample)
    centre, divisor = _scale(scale, n, total, scatter)
    _, evals, evecs = pca_from_sums(n, total, scatter, divisor)
    pca_mean = (total / n - centre) / divisor  # the features' mean in scaled units

    k_pca = None
    if method == "pca-kmeans":
        k_pca = n_components or min(10, feats.n_features)
    elif method in ("umap-kmeans", "hdbscan"):
        k_pca = min(UMAP_PCA_COMPONENTS, feats.n_features)
    vectors = evecs[:, :k_pca] if k_pca else None
    model = _Model(feats.for_tasks(), centre, divisor, pca_mean, vectors, *[None] * 4, 0)
    space = _sample_space(feats, sample, model) if reread else _kept_space(kept, model)
    # The sample is every pixel (a map no larger than sample_size): the labels, embedding and
    # scores of k-means methods come from it, and the last pass only sums the class spectra.
    whole = len(sample) == n_pixels and method in ("kmeans", "pca-kmeans")
    whole_space = space if whole else None

    umap_model, tree, tree_labels, centroids, offset = None, None, None, None, 0
    if method in ("umap-kmeans", "hdbscan"):
        n_umap = min(umap_sample_size, len(space))
        fit_rows = np.sort(
            np.random.default_rng(seed + 1).choice(len(space), n_umap, replace=False)
        )
        umap_model = SampleUmap.fit(space[fit_rows],
                                    (n_components or 2) if method == "umap-kmeans" else 2,
                                    n_neighbors, min_dist, seed)  # fmt: skip
        space = umap_model.embedding_  # the clustering is fitted on UMAP's own sample
    if method == "hdbscan":
        from scipy.spatial import cKDTree
        from sklearn.cluster import HDBSCAN

        size = min_cluster_size or max(5, round(len(space) / 100))
        found = HDBSCAN(min_cluster_size=size, cluster_selection_method="eom", copy=True).fit(space)
        tree_labels = (found.labels_ + 1).astype(np.int64)  # 0 = noise (ReadoutXFM's shift)
        tree = cKDTree(space)
        n_classes = int(tree_labels.max()) + 1
    else:
        centroids = _kmeans(space, n_clusters, init, n_init, max_iter, seed)
        n_classes = n_clusters

    model = dataclasses.replace(model, umap=umap_model, centroids=centroids, tree=tree,
                                tree_labels=tree_labels, labels_offset=offset)  # fmt: skip
    return _results(obj, feats, model, n_classes, method, evals, evecs, k_pca, seed, whole_space)


def _kept_space(kept: np.ndarray, model: _Model) -> np.ndarray:
    """The sampled rows kept by pass 1 (float32) in the clustered space, piece by piece (no
    float64 copy of the whole sample)."""
    from xrfdask.fit.blas import one_blas_thread

    step = 8192
    with one_blas_thread():
        parts = [model.space(kept[i : i + step].astype(np.float64))
                 for i in range(0, len(kept), step)]  # fmt: skip
    return np.concatenate(parts) if parts else np.empty((0, 0))


def _kmeans(x: np.ndarray, k: int, init, n_init: int, max_iter: int, seed: int) -> np.ndarray:
    """Centroids of the best of ``n_init`` seeded k-means++ starts (lowest inertia, the first
    on a tie), or of one start from ``init``.

    Each start is its own single-threaded scikit-learn fit, the starts spread over this
    machine's cores: scikit-learn's OpenMP threads spin at every iteration's barrier and run
    10-50x slower when anything else uses a core. The seeds come from ``seed`` alone, so the
    centroids do not depend on the number of cores.

    With more than ``KMEANS_TRIAL_ROWS`` rows, the starts compete on a seeded subsample of that
    many (as scikit-learn's ``MiniBatchKMeans`` chooses its best start on ``init_size`` rows)
    and the winner is refined on every row: a start that merges two phases or splits one has
    the higher inertia on the subsample too, and each start costs a tenth.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    starts = [np.asarray(init)] if init is not None else ["k-means++"] * n_init
    seeds = [int(v) for v in np.random.SeedSequence(seed).generate_state(len(starts) + 1)]
    trial = x
    if len(starts) > 1 and len(x) > KMEANS_TRIAL_ROWS:
        pick = np.random.default_rng(seeds[-1]).choice(len(x), KMEANS_TRIAL_ROWS, replace=False)
        trial = x[np.sort(pick)]

    def fit(start, random_state: int, rows: np.ndarray) -> tuple[float, np.ndarray]:
        with threadpool_limits(1):  # in this thread: OpenMP's thread count is per thread
            km = KMeans(k, init=start, n_init=1, max_iter=max_iter,
                        random_state=random_state).fit(rows)  # fmt: skip
        return km.inertia_, km.cluster_centers_

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with ThreadPoolExecutor(max(1, min(len(starts), cores or 1))) as pool:
        fits = list(pool.map(fit, starts, seeds, [trial] * len(starts)))
    best = min(fits, key=lambda f: f[0])[1]  # min keeps the first of equal inertias
    return best if trial is x else fit(best, seeds[0], x)[1]


def _results(obj, feats, model, n_classes, method, evals, evecs, k_pca, seed,
             whole_space: np.ndarray | None) -> xr.Dataset:  # fmt: skip
    data = feats.data
    spectra = feats.raw if feats.raw is not None else data
    n_class_cols = data.shape[-1] if feats.kind == "elements" else spectra.shape[3]
    if whole_space is None:
        labels, embedding, scores, sums, size, inertia = _band_results(
            feats, model, n_classes, k_pca, n_class_cols
        )
    else:
        labels, embedding, scores, sums, size, inertia = _whole_results(
            feats, model, n_classes, whole_space, n_class_cols
        )
    ds = obj if isinstance(obj, xr.Dataset) else obj.to_dataset(name="values")
    coords = {d: ds[d] for d in ("y", "x") if d in ds.coords}
    klass = np.arange(n_classes)
    channel_dim = "channel" if feats.kind == "spectra" else "line"
    class_coords = {"class": klass}
    if feats.kind == "spectra":
        class_coords["channel"] = (
            ds["channel"].values if "channel" in ds.coords else np.arange(n_class_cols)
        )
        if "energy" in ds.coords:
            class_coords["energy"] = ("channel", ds["energy"].values)  # eager-ok: axis
    else:
        class_coords["line"] = feats.names
    sum_name, mean_name, what = (
        ("class_spectra", "class_mean_spectra", "spectrum")
        if feats.kind == "spectra"
        else ("class_sums", "class_means", "element values")
    )
    mean = da.map_blocks(_class_mean, sums, size[:, None], dtype=float)
    out = xr.Dataset(
        {
            "labels": (("y", "x"), labels, {"long_name": "class label"}),
            "embedding": (("y", "x", "embedding_component"), embedding),
            sum_name: (("class", channel_dim), sums, {"long_name": f"summed {what} per class"}),
            mean_name: (("class", channel_dim), mean, {"long_name": f"mean {what} per class"}),
            "class_size": (("class",), size),
            "n_clusters": ((), n_classes),
            "clustered_data": ((), feats.source),
        },
        coords={**coords, **class_coords, "variable": feats.names},
        attrs={"method": method, "seed": seed, "xrfdask_result": "classify"},
    )
    if model.centroids is not None:
        out["inertia"] = ((), inertia, {"long_name": "sum of squared distances to the centroids"})
    if k_pca is not None:
        out["scores"] = (("y", "x", "component"), scores)
        out = out.assign_coords(component=[f"PC{i}" for i in range(k_pca)])
        out["loadings"] = (("variable", "component"), evecs[:, :k_pca])
        out["explained_variance_ratio"] = (("component",), evals[:k_pca] / evals.sum())
        out["n_components"] = ((), k_pca)
    if feats.energy is not None:
        out = out.assign_coords(variable_energy=("variable", feats.energy))
    if feats.detector is not None:
        out = out.assign_coords(detector=feats.detector)
    return out


def _band_results(feats, model, n_classes, k_pca, n_class_cols) -> tuple:
    """The last pass, lazy, band by band: labels, embedding, scores, class sums, sizes,
    inertia."""
    data, weighted = _space_input(feats, model)
    blocks = data.to_delayed().ravel()
    nx = data.shape[1]
    n_embed = model.centroids.shape[1] if model.centroids is not None else 2
    want_sums = feats.raw is None  # else summed from the reader's sparse records by label
    model_task = dask.delayed(model, traverse=False)  # once in the graph (see _statistics)
    parts = [dask.delayed(_result_block, nout=6)(b, model_task, n_classes, k_pca is not None,
                                                 want_sums, weighted) for b in blocks]  # fmt: skip
    rows = data.chunks[0]

    def joined(i: int, tail: tuple, dtype) -> da.Array:
        return da.concatenate(
            [da.from_delayed(p[i], (r, *tail), dtype) for p, r in zip(parts, rows, strict=True)]
        )

    labels = joined(0, (nx,), np.int32)
    embedding = joined(1, (nx, n_embed), np.float32)
    scores = joined(2, (nx, k_pca), np.float32) if k_pca is not None else None
    if want_sums:
        sums = da.stack(
            [da.from_delayed(p[3], (n_classes, n_class_cols), float) for p in parts]
        ).sum(0)
    else:
        sums = fastpaths.class_sum_spectra(feats.raw, labels, n_classes)
    size = da.stack([da.from_delayed(p[4], (n_classes,), np.int64) for p in parts]).sum(0)
    inertia = da.stack([da.from_delayed(p[5], (), float) for p in parts]).sum()
    return labels, embedding, scores, sums, size, inertia


def _whole_results(feats, model, n_classes, space, n_class_cols) -> tuple:
    """k-means results of a map whose sample is every pixel: labels, embedding and scores from
    the sample's space (in memory: at most ``sample_size`` rows); a lazy pass sums the class
    spectra."""
    data = feats.data
    ny, nx = data.shape[:2]
    step = 65536  # pixels labelled at a time: the (pixels, classes, dims) distances stay small
    found = [model.label(space[i : i + step]) for i in range(0, len(space), step)]
    lab = np.concatenate([f[0] for f in found]).reshape(ny, nx).astype(np.int32)
    inertia = float(sum(np.nansum(f[1]) for f in found))
    rows = (data.chunks[0], (nx,))
    labels = da.from_array(lab, chunks=rows)
    embedding = da.from_array(space.reshape(ny, nx, -1).astype(np.float32),
                              chunks=(*rows, -1))  # fmt: skip
    scores = embedding if model.pca_vectors is not None else None
    size = da.from_array(np.bincount(lab.ravel(), minlength=n_classes))
    if feats.raw is not None:
        sums = fastpaths.class_sum_spectra(feats.raw, labels, n_classes)
    else:
        rules = dask.delayed(feats.for_tasks(), traverse=False)
        parts = [
            da.from_delayed(
                dask.delayed(_band_class_sums)(b, lab, rules, n_classes),
                (n_classes, n_class_cols),
                float,
            )  # fmt: skip
            for b, lab in zip(data.to_delayed().ravel(), labels.to_delayed().ravel(), strict=True)
        ]
        sums = da.stack(parts).sum(0)
    return labels, embedding, scores, sums, size, da.from_array(np.asarray(inertia))


def _band_class_sums(block: np.ndarray, labels: np.ndarray, feats: Features, n_classes: int):
    return feats.class_sums(block, labels.ravel(), n_classes)
