import numpy as np
from PIL import Image

import xrfdask as xd


def test_readoutxfms_deadtime_plots(tmp_path, sample_path):
    ds = xd.open_geopixe(sample_path)
    files = xd.plot.deadtime(xd.predict_deadtime(ds), tmp_path / "plots")
    names = sorted(p.rsplit("/", 1)[1] for p in files)
    assert names == [
        "deadtime_histograms.png",
        "deadtime_maps.png",
        "deadtime_vs_counts.png",
        "difference_map.png",
        "predicted_deadtime_histograms.png",
    ]
    for path in files:  # real images with something drawn on them
        image = np.asarray(Image.open(path).convert("L"))
        assert image.shape[0] > 200 and image.std() > 5


def test_a_truncated_map_and_no_prediction(tmp_path, sample_path):
    ds = xd.open_geopixe(sample_path)
    cut = ds.assign(deadtime=ds.deadtime.where(ds.y < ds.y[7]))  # rows 7.. never recorded
    files = xd.plot.deadtime(cut, tmp_path)
    assert len(files) == 4 and not any("predicted" in f for f in files)
    # Without spectra (an index-only look): the plots that need no counts.
    only = cut.drop_vars("spectra")
    assert len(xd.plot.deadtime(only, tmp_path / "index")) == 2
