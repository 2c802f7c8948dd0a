"""``xrfdask classify``: kmeans/ and PCA/ groups, ReadoutXFM's files and the class plots."""

from __future__ import annotations

import h5py
import numpy as np
from sklearn.metrics import adjusted_rand_score

from tests.test_classify import phase_map
from xrfdask.cli import main
from xrfdask.io.h5layout import to_h5


def test_classify_a_raw_map_into_its_file(tmp_path, capsys):
    ds, truth, _ = phase_map(ny=20, nx=24)
    path = to_h5(ds, tmp_path / "map.h5")
    code = main(["classify", str(path), "-n", "4", "--readout", str(tmp_path / "out"),
                 "--plots", str(tmp_path / "plots")])  # fmt: skip
    assert code == 0
    assert "pca-kmeans: 4 classes" in capsys.readouterr().out
    with h5py.File(path) as f:
        kmeans = [k for k in f["kmeans"]][0]
        labels = f[f"kmeans/{kmeans}/ims"][()]
        assert "PCA" in f and f[f"kmeans/{kmeans}/sumspec_0"].attrs["NPixels"] > 0
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) >= 0.95
    emb = tmp_path / "out" / "embeddings"
    categories = np.load(emb / "categories.npy")
    np.testing.assert_array_equal(categories, labels.ravel())
    assert np.load(emb / "embedding_2d.npy").shape == (labels.size, 2)
    avg = np.loadtxt(emb / "class_averages.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(avg, np.load(emb / "classavg.npy"), atol=1e-8)
    for name in ("vis_category_map.png", "class_spectra.png", "vis_embeddings.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000


def test_a_geopixe_map_needs_an_output(tmp_path, capsys, sample_path):
    assert main(["classify", str(sample_path)]) != 0
    assert "pass -o" in capsys.readouterr().err
