import h5py
import numpy as np

import xrfdask as xd
from xrfdask.datasets import ELEMENTS


def test_normalise_command(run, tmp_path, example_path):
    path = tmp_path / "m.h5"
    raw = xd.open_geopixe(example_path)
    xd.to_h5(raw, path)
    code, _, err = run("fit", str(path), "--elements", *ELEMENTS, "-o", str(path))
    assert code == 0, err
    code, stdout, err = run("normalise", str(path), "--tmnorm")
    assert code == 0, err
    assert "normalised" in stdout and "(norm/)" in stdout
    want = xd.normalise(xd.open_h5(path), xd.open_h5(path, group="fit"), tmnorm=True).compute()
    with h5py.File(path) as f:
        assert f["norm"].attrs["TmNorm"] == "True"
        np.testing.assert_array_equal(
            f["norm/channel00/ims"][...],
            want.normalised.sel(detector=0).transpose("line", "y", "x").values,
        )
    # Not replaced without --overwrite; replaced with it.
    code, _, err = run("normalise", str(path), "--I0norm", "5")
    assert code == 1 and "norm" in err and "overwrite" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("normalise", str(path), "--I0norm", "5", "--overwrite")
    assert code == 0, err
    assert xd.open_h5(path, group="norm").attrs["I0"] == 5.0


def test_normalise_bad_input(run, tmp_path, example_path):
    path = tmp_path / "raw.h5"
    xd.to_h5(xd.open_geopixe(example_path), path)
    code, _, err = run("normalise", str(path))  # no fit/ yet
    assert code == 1 and "fit" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("normalise", str(example_path))
    assert code == 2 and "fit it first" in err
