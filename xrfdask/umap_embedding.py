"""UMAP fitted on a sample of pixels and applied to every other pixel, for :func:`xrfdask.classify`.

umap-learn finds the neighbours of a sample of 4,096 points or more with pynndescent, whose
numba functions are compiled again in every fresh process (about 30 s of a 45 s fit on 20,000
pixels), and embeds new points with a per-point Python loop for their starting positions. Here
the sample's neighbours are exact (a k-d tree: PCA scores have about ten dimensions) and given
to UMAP as ``precomputed_knn``, and new points are embedded by umap-learn's own transform
algorithm, step by step with its functions, on that tree: exact neighbours, their fuzzy
memberships, the weighted mean of their embeddings as the start, then ``TRANSFORM_EPOCHS`` of
umap-learn's layout optimisation against the fixed sample embedding.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["SampleUmap", "TRANSFORM_EPOCHS"]

#: Epochs of the layout optimisation of new points: umap-learn's own choice for batches of more
#: than 10,000 points (it takes 100 for smaller ones; on bench_classify's map 30 epochs made
#: pass 2 2.4x faster with the same labels).
TRANSFORM_EPOCHS = 30


class SampleUmap:
    """A UMAP embedding of sample rows, able to embed new rows.

    Parameters
    ----------
    model : umap.UMAP
        Fitted on the sample.
    index : sklearn.neighbors.NearestNeighbors
        Fitted on the same sample, with the model's number of neighbours.
    """

    def __init__(self, model: Any, index: Any) -> None:
        self.model = model
        self.index = index
        self.n_components = model.n_components
        self.embedding_ = model.embedding_

    @classmethod
    def fit(cls, rows: np.ndarray, n_components: int, n_neighbors: int, min_dist: float,
            seed: int) -> SampleUmap:  # fmt: skip
        """UMAP of ``rows`` on their exact neighbours; ``seed`` makes it reproducible."""
        import umap
        from sklearn.neighbors import NearestNeighbors

        rows = np.ascontiguousarray(rows, dtype=np.float32)
        k = min(n_neighbors, len(rows) - 1)
        # A k-d tree: exact, deterministic, single-threaded queries safe from several threads.
        index = NearestNeighbors(n_neighbors=k, algorithm="kd_tree").fit(rows)
        dists, nbrs = index.kneighbors(rows)  # each row's first neighbour is itself
        with warnings.catch_warnings():
            # "transforming new data with transform will be unavailable": it is done here.
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
            model = umap.UMAP(
                n_components=n_components, n_neighbors=k, min_dist=min_dist, random_state=seed,
                n_jobs=1,  # a seeded UMAP runs on one thread anyway (umap-learn says so, loudly)
                precomputed_knn=(nbrs.astype(np.int32), dists.astype(np.float32)),
            ).fit(rows)  # fmt: skip
        return cls(model, index)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Embed new rows as umap-learn's ``UMAP.transform`` does, on exact neighbours.

        The result depends only on ``rows`` (a fixed random state per call), so callers that
        need results independent of the chunking pass fixed batches.
        """
        import scipy.sparse
        from sklearn.utils import check_random_state
        from umap.layouts import optimize_layout_euclidean
        from umap.umap_ import (
            INT32_MAX,
            INT32_MIN,
            compute_membership_strengths,
            make_epochs_per_sample,
            smooth_knn_dist,
        )

        m = self.model
        if len(rows) == 0:
            return np.empty((0, self.n_components), dtype=np.float32)
        dists, nbrs = self.index.kneighbors(np.asarray(rows, dtype=np.float32))
        dists = dists.astype(np.float32, order="C")
        nbrs = nbrs.astype(np.int32)
        nbrs[dists >= m._disconnection_distance] = -1
        local = max(0.0, m.local_connectivity - 1.0)
        sigmas, rhos = smooth_knn_dist(dists, float(m._n_neighbors), local_connectivity=local)
        r, c, v, _ = compute_membership_strengths(nbrs, dists, sigmas, rhos, bipartite=True)
        graph = scipy.sparse.coo_matrix((v, (r, c)), shape=(len(rows), len(self.embedding_)))
        csr = graph.tocsr()
        csr.eliminate_zeros()
        start = _weighted_start(csr, self.embedding_)
        graph.data[graph.data < graph.data.max() / float(TRANSFORM_EPOCHS)] = 0.0
        graph.eliminate_zeros()
        rng_state = (
            check_random_state(m.transform_seed).randint(INT32_MIN, INT32_MAX, 3).astype(np.int64)
        )
        return optimize_layout_euclidean(
            start, self.embedding_.astype(np.float32, copy=True), graph.row, graph.col,
            TRANSFORM_EPOCHS, graph.shape[1], make_epochs_per_sample(graph.data, TRANSFORM_EPOCHS),
            m._a, m._b, rng_state, m.repulsion_strength, m._initial_alpha / 4.0,
            m.negative_sample_rate, False,  # not parallel: seeded, reproducible
        )  # fmt: skip


def _weighted_start(graph: Any, embedding: np.ndarray) -> np.ndarray:
    """umap-learn's ``init_graph_transform`` without its loop over points: each new point at
    the membership-weighted mean of its neighbours' embeddings, at the embedding of the first
    neighbour of membership 1 (the same point), NaN without neighbours."""
    sums = np.asarray(graph.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        start = (graph @ embedding.astype(np.float64)) / sums[:, None]
    exact = graph.data == 1
    if exact.any():
        rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))[exact]
        first = np.unique(rows, return_index=True)[1]
        start[rows[first]] = embedding[graph.indices[exact][first]]
    start[np.diff(graph.indptr) == 0] = np.nan
    return start.astype(np.float32)
