"""xd.classify on synthetic maps of known phases: every method recovers them; PCA and k-means
equal scikit-learn's; results do not depend on the chunking."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from xrfdask.classify import _gram, _scatter, classify
from xrfdask.errors import ConfigError

N_CHANNELS = 512
ENERGY = np.arange(N_CHANNELS) * 0.04  # keV


def phase_map(ny=40, nx=50, k=4, seed=3, rows_per_chunk=7, n_detectors=2):
    """A raw map of k phases in vertical/horizontal stripes: each phase a distinct spectrum
    (Gaussian lines at chosen energies on a common background), Poisson counts."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:ny, :nx]
    truth = ((xx * k) // nx + (yy > ny // 2) * 1) % k
    lines = [(1.7, 3.7), (6.4, 7.1), (8.0, 8.6), (14.1, 15.8), (5.4, 5.9)][:k]
    spectra = []
    for a, b in lines:
        s = (
            2
            + 40 * np.exp(-0.5 * ((ENERGY - a) / 0.07) ** 2)
            + 15 * np.exp(-0.5 * ((ENERGY - b) / 0.08) ** 2)
        )
        spectra.append(s)
    mean = np.asarray(spectra)[truth] / n_detectors  # (y, x, channel)
    counts = rng.poisson(mean[:, :, None, :].repeat(n_detectors, axis=2)).astype(np.uint16)
    ds = xr.Dataset(
        {"spectra": (("y", "x", "detector", "channel"),
                     da.from_array(counts, chunks=(rows_per_chunk, -1, -1, -1)))},
        coords={"y": np.arange(ny) * 0.01, "x": np.arange(nx) * 0.01,
                "detector": np.arange(n_detectors), "channel": np.arange(N_CHANNELS),
                "energy": ("channel", ENERGY)},
    )  # fmt: skip
    return ds, truth, counts


@pytest.mark.parametrize("method", ["kmeans", "pca-kmeans", "umap-kmeans", "hdbscan"])
def test_every_method_recovers_the_phases(method):
    ds, truth, _ = phase_map()
    cls = classify(ds, method, n_clusters=4, seed=0).compute()
    labels = cls["labels"].values
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) >= 0.95
    assert cls["class_size"].sum() == truth.size


def test_class_spectra_are_the_sums_of_each_class():
    ds, truth, counts = phase_map()
    cls = classify(ds, "pca-kmeans", n_clusters=4).compute()
    summed = counts.sum(axis=2).astype(float)
    labels = cls["labels"].values
    for c in range(4):
        want = summed[labels == c].sum(axis=0)
        np.testing.assert_allclose(cls["class_spectra"].values[c], want)
        np.testing.assert_allclose(cls["class_mean_spectra"].values[c], want / (labels == c).sum())
        assert cls["class_size"].values[c] == (labels == c).sum()


def _features(counts, bin=8):
    s = counts.sum(axis=2).astype(float)
    ny, nx, nc = s.shape
    return s.reshape(ny, nx, nc // bin, bin).sum(-1).reshape(ny * nx, -1)


def test_pca_equals_scikit_learn():
    ds, _, counts = phase_map()
    cls = classify(ds, "pca-kmeans", n_clusters=4, n_components=5).compute()
    f = _features(counts)
    pca = PCA(5, svd_solver="full").fit(f)
    scores = pca.transform(f)
    got = cls["scores"].values.reshape(-1, 5)
    for i in range(5):
        sign = np.sign(got[:, i] @ scores[:, i])
        np.testing.assert_allclose(
            sign * got[:, i], scores[:, i], rtol=0, atol=1e-6 * np.abs(scores).max() * 10
        )
        np.testing.assert_allclose(
            sign * cls["loadings"].values[:, i], pca.components_[i], atol=1e-6
        )
    np.testing.assert_allclose(
        cls["explained_variance_ratio"], pca.explained_variance_ratio_, rtol=1e-6
    )


def test_kmeans_from_given_centroids_equals_scikit_learn():
    ds, _, counts = phase_map()
    f = _features(counts)
    init = f[[0, 30, 60, 1990]]
    cls = classify(ds, "kmeans", n_clusters=4, init=init).compute()
    km = KMeans(4, init=init, n_init=1, max_iter=300).fit(f)
    np.testing.assert_array_equal(cls["labels"].values.ravel(), km.labels_)
    np.testing.assert_allclose(float(cls["inertia"]), km.inertia_, rtol=1e-9)


@pytest.mark.parametrize("method", ["pca-kmeans", "umap-kmeans"])
def test_labels_do_not_depend_on_the_chunking(method):
    a, _, _ = phase_map(rows_per_chunk=5)
    b, _, _ = phase_map(rows_per_chunk=40)
    la = classify(a, method, n_clusters=4, seed=2)["labels"].compute().values
    with dask.config.set(scheduler="synchronous"):
        lb = classify(b, method, n_clusters=4, seed=2)["labels"].compute().values
    np.testing.assert_array_equal(la, lb)


def test_a_sample_fits_large_maps_and_every_pixel_is_labelled():
    ds, truth, _ = phase_map()
    cls = classify(ds, "pca-kmeans", n_clusters=4, sample_size=300).compute()
    assert adjusted_rand_score(truth.ravel(), cls["labels"].values.ravel()) >= 0.95


def test_element_maps_are_z_scored_as_xrf_proc():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 100).reshape(15, 20)
    centres = np.array([[100.0, 1.0, 5.0], [10.0, 30.0, 5.0], [10.0, 1.0, 50.0]])
    values = rng.normal(centres[truth], 1.0)[:, :, None, :]  # one detector
    nrm = xr.Dataset(
        {"normalised": (("y", "x", "detector", "line"),
                        da.from_array(values, chunks=(4, -1, -1, -1)))},
        coords={"detector": ["channel00"], "line": ["Fe K", "Ca K", "Zn K"]},
    )  # fmt: skip
    cls = classify(nrm, "pca-kmeans", n_clusters=3, n_components=2).compute()
    assert adjusted_rand_score(truth.ravel(), cls["labels"].values.ravel()) == 1.0
    z = values.reshape(-1, 3)
    z = (z - z.mean(0)) / z.std(0)
    evals = np.sort(np.linalg.eigvalsh(np.cov(z.T)))[::-1]
    np.testing.assert_allclose(cls["explained_variance_ratio"], evals[:2] / evals.sum(), rtol=1e-9)
    assert cls["clustered_data"].item() == "norm/ims"
    assert cls["detector"].item() == "channel00"
    np.testing.assert_allclose(cls["class_means"].sel(line="Fe K").max(), 100, atol=0.5)


def test_bad_input_is_a_clear_error():
    ds, _, _ = phase_map(ny=6, nx=6)
    with pytest.raises(ConfigError, match="method="):
        classify(ds, "spectral")
    with pytest.raises(ConfigError, match="n_clusters"):
        classify(ds, "kmeans", n_clusters=1)
    with pytest.raises(ConfigError, match="no 'spectra'"):
        classify(xr.Dataset({"a": (("y", "x"), np.zeros((2, 2)))}))


def test_written_as_xrf_procs_kmeans_and_pca_groups(tmp_path):
    import h5py

    from xrfdask.io.h5layout import open_h5, to_h5

    ds, _, counts = phase_map(ny=12, nx=10)
    cls = classify(ds, "pca-kmeans", n_clusters=3, n_components=3)
    path = to_h5(cls, tmp_path / "c.h5")
    got = cls.compute()
    with h5py.File(path) as f:
        base = "kmeans/sum" if "kmeans/sum" in f else next(iter(f["kmeans"].values())).name
        np.testing.assert_array_equal(f[f"{base}/ims"][()], got["labels"].values)
        for i in range(3):
            np.testing.assert_allclose(f[f"{base}/sumspec_{i}"][()], got["class_spectra"][i])
            assert f[f"{base}/sumspec_{i}"].attrs["NPixels"] == got["class_size"][i]
        pca = base.replace("kmeans", "PCA")
        assert f[f"{pca}/ims"].shape == (3, 12, 10)
        np.testing.assert_allclose(f[f"{pca}/RVE"][()], got["explained_variance_ratio"])
        assert [n.decode() for n in f[f"{pca}/names"][()]] == ["PC0", "PC1", "PC2"]
    back = open_h5(path, group="kmeans").compute()
    np.testing.assert_array_equal(back["labels"].squeeze().values, got["labels"].values)


def test_on_a_real_cluster_the_labels_equal_the_threaded_ones(dask_cluster):
    from distributed import Client

    # pca-kmeans: UMAP's numba functions would compile again in each worker process (about
    # 30 s of CI); its batched transform's chunk invariance is tested on threads above.
    ds, _, _ = phase_map(rows_per_chunk=9)
    local = classify(ds, "pca-kmeans", n_clusters=4, seed=1).compute()
    with Client(scheduler_file=str(dask_cluster)):
        remote = classify(ds, "pca-kmeans", n_clusters=4, seed=1).compute()
    np.testing.assert_array_equal(local["labels"].values, remote["labels"].values)
    np.testing.assert_array_equal(local["class_spectra"].values, remote["class_spectra"].values)


def test_hdbscan_works_on_the_200_pixel_sample(sample_path):
    # ReadoutXFM's min_cluster_size = npx/1000 fails under 1,500 pixels (spec 9.16)
    from xrfdask import open_geopixe

    cls = classify(open_geopixe(sample_path), "hdbscan", seed=0).compute()
    assert cls["labels"].shape == (cls.sizes["y"], cls.sizes["x"])
    assert int(cls["n_clusters"]) >= 2
    assert int(cls["class_size"].sum()) == cls["labels"].size


def test_xd_classify_stays_the_function():
    import xrfdask as xd

    assert callable(xd.classify) and xd.classify is classify


def test_each_band_is_read_once_per_pass():
    # The rules that travel in the tasks must not carry the input array: dask would make every
    # task depend on the whole map (read in full, held in memory, once more per band).
    import collections

    reads = collections.Counter()
    rng = np.random.default_rng(3)
    means = rng.uniform(0.5, 5.0, (3, 64))
    truth = np.repeat(np.arange(3), 10)[:, None] * np.ones(12, dtype=int)

    def band(block_id=None):
        i = block_id[0]
        reads[i] += 1
        rows = truth[i * 5 : (i + 1) * 5]
        return np.random.default_rng(i).poisson(means[rows] * 30)[:, :, None, :].astype(np.uint16)

    spectra = da.map_blocks(band, chunks=((5,) * 6, (12,), (1,), (64,)), dtype=np.uint16)
    ds = xr.Dataset({"spectra": (("y", "x", "detector", "channel"), spectra)})
    cls = classify(ds, "kmeans", 3, bin=1, sample_size=100)  # a sample: pass 2 labels bands
    assert dict(reads) == {i: 1 for i in range(6)}  # pass 1: sums, Gram matrix, sample
    # The first band's labels need the first band only, not the whole map.
    first = cls.labels.data.blocks[0]
    needed = first.__dask_graph__().cull(set(dask.core.flatten(first.__dask_keys__())))
    bands = {k[1] for k in dict(needed) if isinstance(k, tuple) and k[0] == spectra.name}
    assert 0 in bands and len(bands) < 6, bands  # its own rows (a band or two), not all six
    reads.clear()
    cls = cls.compute()
    assert dict(reads) == {i: 1 for i in range(6)}  # pass 2: labels, class spectra, sizes
    assert adjusted_rand_score(truth.ravel(), cls.labels.values.ravel()) == 1.0

    # The sample is the whole map: its labels are known after the clustering (no band needed),
    # and the last pass reads each band once for the class spectra.
    reads.clear()
    whole = classify(ds, "kmeans", 3, bin=1)
    assert dict(reads) == {i: 1 for i in range(6)}
    first = whole.labels.data.blocks[0]
    needed = first.__dask_graph__().cull(set(dask.core.flatten(first.__dask_keys__())))
    assert not any(isinstance(k, tuple) and k[0] == spectra.name for k in dict(needed))
    reads.clear()
    whole = whole.compute()
    assert dict(reads) == {i: 1 for i in range(6)}
    np.testing.assert_array_equal(whole.labels, cls.labels)
    np.testing.assert_array_equal(whole.class_spectra, cls.class_spectra)


def test_geopixe_map_classified_from_its_records_as_from_dense_spectra(tmp_path):
    """A .GeoPIXE map's features and class spectra come from the sparse records (no dense
    spectra); the result is the dense path's, value for value."""
    import xrfdask as xd

    ds, truth, _ = phase_map()
    path = xd.to_geopixe(ds, tmp_path / "phases.GeoPIXE")
    raw = xd.open_geopixe(path, chunks={"y": 6})
    fast = classify(raw, "pca-kmeans", n_clusters=4, energy=(1.0, 16.0)).compute()
    dense = classify(raw.assign(spectra=raw.spectra + 0), "pca-kmeans", n_clusters=4,
                     energy=(1.0, 16.0)).compute()  # fmt: skip
    # Pass 1 bins the records; the labels of a sampled map come from the records' weighted
    # sums, the class spectra from the records by label: no dense decode in the results.
    lazy = classify(raw, "pca-kmeans", 4, sample_size=500)
    layers = " ".join([*lazy.labels.data.dask.layers, *lazy.class_spectra.data.dask.layers])
    assert "geopixe-weighted" in layers and "geopixe-class-sums" in layers
    assert "geopixe-read" not in layers
    sampled = lazy.compute()
    assert adjusted_rand_score(truth.ravel(), sampled["labels"].values.ravel()) == 1.0
    assert adjusted_rand_score(truth.ravel(), fast["labels"].values.ravel()) == 1.0
    np.testing.assert_array_equal(fast["labels"], dense["labels"])
    np.testing.assert_array_equal(fast["class_spectra"], dense["class_spectra"])
    np.testing.assert_allclose(fast["scores"], dense["scores"], rtol=1e-6, atol=1e-4)


def test_gram_matrix_of_counts_is_exact():
    # Pass 1 sums the Gram matrix of counts in float32 in groups of rows whose partial sums stay
    # below 2**24: exact, as integer arithmetic gives it.
    rng = np.random.default_rng(0)
    f = rng.poisson(rng.uniform(0, 50, 64), (20000, 64)).astype(float)
    exact = f.astype(np.int64).T @ f.astype(np.int64)
    assert exact.max() > 2**24  # one float32 product over all rows would round
    one_product = f.astype(np.float32).T @ f.astype(np.float32)
    assert not np.array_equal(one_product.astype(np.int64), exact)
    np.testing.assert_array_equal(_gram(f), exact.astype(float))
    # Counts too large for groups worth a product: None (the float64 product is used instead).
    assert _gram(np.full((1000, 3), 5000.0)) is None
    # Either way, the scatter matrix about the mean is the float64 one.
    centred = f - f.mean(axis=0)
    want = centred.T @ centred
    scale = np.abs(want).max()
    for counts in (True, False):
        got = _scatter(f, f.sum(axis=0), counts)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale)
