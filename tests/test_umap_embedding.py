"""xrfdask.umap_embedding: UMAP on a sample with exact neighbours, and umap-learn's transform
algorithm on them, checked against umap-learn itself."""

from __future__ import annotations

import numpy as np
import scipy.sparse
import umap
from sklearn.neighbors import NearestNeighbors
from umap.umap_ import init_graph_transform

from xrfdask.umap_embedding import TRANSFORM_EPOCHS, SampleUmap, _weighted_start


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(4, 6)) * 6
    labels = rng.integers(0, 4, n)
    return (centres[labels] + rng.normal(size=(n, 6))).astype(np.float32), labels


def test_weighted_start_is_umap_learns_init_graph_transform():
    rng = np.random.default_rng(1)
    graph = scipy.sparse.random(300, 200, density=0.05, random_state=2, format="csr")
    graph.data = rng.uniform(0.1, 0.9, graph.nnz)
    graph.data[::17] = 1.0  # some new points equal to a sample point
    graph = scipy.sparse.vstack([graph, scipy.sparse.csr_matrix((2, 200))]).tocsr()  # no neighbours
    embedding = rng.normal(size=(200, 2)).astype(np.float32)
    want = init_graph_transform(graph, embedding)
    got = _weighted_start(graph, embedding)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.isnan(got[-2:]).all() and not np.isnan(got[:-2]).any()


def test_transform_equals_umap_learns_on_exact_neighbours():
    """Below 4,096 points umap-learn's own transform uses exact neighbours too: on the same
    model and with the same epochs, both place new points alike."""
    sample, _ = blobs(800, 3)
    new, labels = blobs(400, 4)
    plain = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1)
    plain.fit(sample)
    fitted = SampleUmap(plain, NearestNeighbors(n_neighbors=15).fit(sample))
    got = fitted.transform(new)
    plain.n_epochs = 3 * TRANSFORM_EPOCHS  # umap-learn's transform runs n_epochs // 3 epochs
    want = plain.transform(new)
    # Not value for value: the k-d tree's distances differ from umap-learn's in the last
    # digits, which changes how often some edges are sampled and so shifts the random stream
    # of the optimisation for every point after them. Each blob lands in the same place.
    scale = np.ptp(fitted.embedding_, axis=0).max()
    diff = np.abs(got - want).max(axis=1)
    assert (diff < 1e-5 * scale).mean() > 0.05  # the points optimised before any shift
    for c in range(4):
        shift = np.abs(got[labels == c].mean(axis=0) - want[labels == c].mean(axis=0)).max()
        assert shift < 0.02 * scale
    # New points land with their own blob's sample points.
    centre = np.array([got[labels == c].mean(axis=0) for c in range(4)])
    nearest = np.argmin(((got[:, None] - centre[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.99
    np.testing.assert_array_equal(fitted.transform(new), got)  # reproducible
    assert fitted.transform(new[:0]).shape == (0, 2)


def test_large_samples_fit_without_pynndescent():
    """From 4,096 points umap-learn would index the sample with pynndescent; the exact
    neighbours are given instead, and new points still embed beside their blob."""
    sample, sample_labels = blobs(4200, 5)
    new, labels = blobs(300, 6)
    fitted = SampleUmap.fit(sample, 2, 15, 0.1, seed=0)
    assert getattr(fitted.model, "_knn_search_index", None) is None
    got = fitted.transform(new)
    centre = np.array([fitted.embedding_[sample_labels == c].mean(axis=0) for c in range(4)])
    nearest = np.argmin(((got[:, None] - centre[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.99
