"""Result groups (fit, norm, quant, ...) in the layout: what xrf_proc writes, what we write."""

import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr

from xrfdask import ConfigError, FormatError
from xrfdask.io.h5layout import open_h5, open_zarr, to_h5, to_zarr
from xrfdask.io.h5layout.schema import RESULT_GROUPS

NY, NX = 6, 8
LINES = ["Fe K", "Ca K", "Pb L", "Compt", "Rayl"]


def xrf_proc_fit_file(path, ims0, ims1):
    """A file as xrf_proc's fit_xrf_batch leaves it (spec 1.1): raw/ plus fit/channelXX/*."""
    with h5py.File(path, "w") as f:
        f["cmd"] = "cmesh scanx 0 1 8 scany 0 1 5 0.1"
        for c in ("channel00", "channel01"):
            f[f"raw/{c}/spectra"] = np.zeros((NY, NX, 32), np.uint32)
            f[f"raw/{c}/icr"] = np.ones((NY, NX))
            f[f"raw/{c}/ocr"] = np.ones((NY, NX))
        f["mot1"] = np.tile(np.arange(NX) * 0.5, (NY, 1))
        f["mot1"].attrs["Name"] = "scanx"
        f["mot2"] = np.repeat(np.arange(NY)[:, None] * 0.25, NX, 1)
        f["mot2"].attrs["Name"] = "scany"
        fit = f.create_group("fit")
        fit.attrs["LastUpdated"] = "01/02/2025 10:11:12"
        fit.attrs["ScatROI"] = False
        for c, ims, lines in (
            ("channel00", ims0, LINES),
            ("channel01", ims1, LINES[:2] + LINES[3:]),
        ):
            g = fit.create_group(c)
            g.create_dataset("ims", data=ims, compression="gzip", compression_opts=4)
            g["names"] = [n.encode("utf8") for n in lines]
            g["cfg"] = "/data/cfg/axo.cfg"
            g["sum/int"] = ims.sum((1, 2))
            g["sum/bkg"] = ims.sum((1, 2)) / 10


def test_reads_fit_written_by_xrf_proc(tmp_path):
    rng = np.random.default_rng(0)
    ims0 = rng.random((5, NY, NX)).astype(np.float32)
    ims1 = rng.random((4, NY, NX)).astype(np.float32)  # channel01 fitted without Pb L
    path = tmp_path / "scan.h5"
    xrf_proc_fit_file(path, ims0, ims1)
    fit = open_h5(path, group="fit")
    assert fit.peak_area.dims == ("y", "x", "detector", "line")
    assert list(fit.line.values) == LINES
    assert list(fit.detector.values) == ["channel00", "channel01"]
    np.testing.assert_array_equal(
        fit.peak_area.sel(detector="channel00").transpose("line", "y", "x").values, ims0
    )
    one = fit.peak_area.sel(detector="channel01")
    assert np.isnan(one.sel(line="Pb L")).all()
    np.testing.assert_array_equal(
        one.sel(line=["Fe K", "Ca K", "Compt", "Rayl"]).transpose("line", "y", "x").values, ims1
    )
    np.testing.assert_allclose(fit.sum_area.sel(detector="channel00").values, ims0.sum((1, 2)))
    assert str(fit.config.sel(detector="channel00").item()) == "/data/cfg/axo.cfg"
    assert fit.attrs["LastUpdated"] == "01/02/2025 10:11:12"
    np.testing.assert_allclose(fit.x.values, np.arange(NX) * 0.5)
    assert fit.x.attrs["motor"] == "scanx"
    # ... and writing it back gives each channel its own lines again.
    out = tmp_path / "copy.h5"
    to_h5(open_h5(path), out)
    to_h5(fit, out)
    with h5py.File(out) as f:
        assert [n.decode() for n in f["fit/channel01/names"][...]] == [
            "Fe K",
            "Ca K",
            "Compt",
            "Rayl",
        ]
        np.testing.assert_array_equal(f["fit/channel01/ims"][...], ims1)


def result(group: str, rng) -> xr.Dataset:
    """A Dataset holding every variable of a result group's schema."""
    schema = RESULT_GROUPS[group]
    sizes = {
        "y": NY,
        "x": NX,
        "line": len(LINES),
        "absorber": 2,
        "variable": 3,
        "component": 3,
        "ty": 4,
        "tx": 4,
        "class": 3,
        "channel": 16,
    }
    data_vars, coords = {}, {"detector": [0, 1]}
    for field in schema.fields:
        if field.kind == "names":
            labels = {
                "line": LINES,
                "variable": ["Fe K", "Ca K", "Zn K"],
                "component": ["PC0", "PC1", "PC2"],
                "references": ["a.h5", "b.h5"],
                "absorber": ["Fe", "Zn"],
            }[field.var]
            coords[field.var] = (field.dims, labels)
        elif field.kind == "text":
            data_vars[field.var] = (
                ("detector",),
                np.array([f"{field.var} 0", f"{field.var} 1"], dtype=object),
            )
        elif field.kind == "scalar":
            data_vars[field.var] = (("detector",), np.array([3, 4]))
        else:
            dims = ("detector",) + field.dims
            shape = [2] + [sizes[d] for d in field.dims]
            dtype = np.int64 if field.var == "labels" else np.float64
            values = rng.integers(0, 3, shape) if dtype is np.int64 else rng.random(shape)
            if "y" in field.dims:
                values = da.from_array(values, chunks=2)
            data_vars[field.var] = (dims, values)
    if group == "kmeans":
        data_vars["class_spectra"] = (("detector", "class", "channel"), rng.random((2, 3, 16)))
        data_vars["class_size"] = (("detector", "class"), np.array([[10, 20, 18], [12, 18, 18]]))
    attrs = {"note": f"{group} test"}
    if group == "norm":
        attrs["I0"] = 12345.0
        attrs["TmNorm"] = "False"
    if group in ("detlim", "elyield"):
        attrs["cnc"] = "nist613.cnc"
    if group == "detlim":
        attrs["unit"] = "ppm"
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    return ds.transpose(*[d for d in ("y", "x", "detector") if d in ds.dims], ...)


@pytest.mark.parametrize("group", sorted(RESULT_GROUPS))
@pytest.mark.parametrize("backend", ["h5", "zarr"])
def test_every_result_group_round_trips(tmp_path, group, backend):
    rng = np.random.default_rng(1)
    ds = result(group, rng)
    path = tmp_path / ("r.h5" if backend == "h5" else "r.zarr")
    write, read = (to_h5, open_h5) if backend == "h5" else (to_zarr, open_zarr)
    write(ds, path)
    back = read(path, group=group).compute()
    for name, var in ds.data_vars.items():
        got = back[name].transpose(*var.dims)
        if var.dtype == object:
            assert [str(v) for v in got.values] == list(var.values)
        else:
            np.testing.assert_array_equal(got.values, var.values, err_msg=name)
    for name in ("line", "variable", "component", "references", "absorber"):
        if name in ds.coords:
            assert list(back[name].values) == list(ds[name].values)
    assert back.attrs["note"] == f"{group} test" and "LastUpdated" in back.attrs
    assert list(back.detector.values) == [0, 1]


def test_fit_layout_with_plain_h5py(tmp_path):
    rng = np.random.default_rng(2)
    ds = result("fit", rng)
    to_h5(ds, tmp_path / "fit.h5")
    with h5py.File(tmp_path / "fit.h5") as f:
        g = f["fit/channel01"]
        assert g["ims"].shape == (len(LINES), NY, NX)  # lines x rows x columns
        np.testing.assert_array_equal(
            g["ims"][...], ds.peak_area.sel(detector=1).transpose("line", "y", "x").values
        )
        assert g["ims"].compression == "gzip" and g["ims"].compression_opts == 4
        assert [n.decode("utf8") for n in g["names"][...]] == LINES  # utf-8 bytes, vlen
        assert (
            g["names"].compression is None
            and h5py.check_string_dtype(g["names"].dtype).encoding == "ascii"
        )
        assert g["cfg"][()].decode() == "config 1"
        np.testing.assert_array_equal(g["sum/int"][...], ds.sum_area.sel(detector=1).values)
        np.testing.assert_array_equal(g["sum/bkg"][...], ds.sum_background.sel(detector=1).values)
        assert len(f["fit"].attrs["LastUpdated"]) == 19  # dd/mm/YYYY HH:MM:SS


def test_norm_names_are_fixed_length_and_I0_scalar(tmp_path):
    ds = result("norm", np.random.default_rng(3))
    to_h5(ds, tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5") as f:
        assert f["norm/channel00/names"].dtype.kind == "S"
        assert f["norm/I0"][()] == 12345.0 and f["norm"].attrs["TmNorm"] == "False"


def test_detlim_keeps_other_references(tmp_path):
    ds = result("detlim", np.random.default_rng(4))
    path = tmp_path / "d.h5"
    to_h5(ds, path)
    other = ds.assign_attrs(cnc="nist611.cnc")
    to_h5(other, path)  # xrf_proc would delete nist613.cnc here
    with h5py.File(path) as f:
        assert sorted(f["detlim"]) == ["nist611.cnc", "nist613.cnc"]
        assert f["detlim/nist611.cnc/unit"][()].decode() == "ppm"
        assert f["detlim/nist613.cnc/channel00/1000s/data"].shape == (len(LINES),)
    with pytest.raises(ConfigError, match="choose one with group='detlim/<name>'"):
        open_h5(path, group="detlim")
    back = open_h5(path, group="detlim/nist611.cnc")
    assert back.attrs["cnc"] == "nist611.cnc" and back.attrs["unit"] == "ppm"


def test_bad_result_groups(tmp_path):
    path = tmp_path / "x.h5"
    xrf_proc_fit_file(path, np.zeros((5, NY, NX), "f4"), np.zeros((4, NY, NX), "f4"))
    with h5py.File(path, "a") as f:
        del f["fit/channel00/ims"]
        f["fit/channel00/ims"] = np.zeros((5, NY, NX + 1), "f4")
    with pytest.raises(
        FormatError,
        match=r"dataset 'fit/channel00/ims' covers \(6, 9\) pixels, expected \(6, 8\)|covers",
    ):
        open_h5(path, group="fit")
    with pytest.raises(FormatError, match="group 'quant' is missing"):
        open_h5(path, group="quant")
    with pytest.raises(ValueError, match="unknown group 'fits'"):
        open_h5(path, group="fits")


def _set(f, name, value):
    del f[name]
    f[name] = value


# Found by benchmarks/fuzz_inputs.py (issue 14): xarray's ValueError (duplicate or wrongly sized
# names), TypeError (a scalar of names), numpy's ValueError (.item() of several values), h5py's
# RuntimeError (a dangling link on the path): each is now one line naming the file and dataset.
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _set(f, "fit/channel01/names", [b"Fe K", b"Fe K", b"Compt", b"Rayl"]),
         r"dataset 'fit/channel01/names' names the line 'Fe K' twice"),
        (lambda f: _set(f, "fit/channel01/names", [b"Fe K", b"Ca K", b"Compt"]),
         r"the datasets of 'fit/channel01' do not match \(conflicting sizes for dimension 'line'"),
        (lambda f: _set(f, "fit/channel01/names", 3.0),
         r"dataset 'fit/channel01/names' holds float64 values of shape \(\), expected a list"),
        (lambda f: _set(f, "fit/channel01/names", np.zeros((2, 4), "S4")),
         r"dataset 'fit/channel01/names' holds \|S4 values of shape \(2, 4\), expected a list"),
        (lambda f: _set(f, "fit/channel00/ims", np.full((5, NY, NX), b"x", "S1")),
         r"dataset 'fit/channel00/ims' holds \|S1 values, expected numbers"),
        (lambda f: _set(f, "fit/channel00/cfg", [b"a.cfg", b"b.cfg"]),
         r"dataset 'fit/channel00/cfg' has shape \(2,\), expected a scalar"),
    ],
    ids=["duplicate-names", "names-too-short", "names-scalar", "names-2d", "text-ims",
         "two-cfg"],
)  # fmt: skip
def test_broken_result_datasets(tmp_path, damage, message):
    path = tmp_path / "x.h5"
    xrf_proc_fit_file(path, np.zeros((5, NY, NX), "f4"), np.zeros((4, NY, NX), "f4"))
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(FormatError, match=message) as info:
        open_h5(path, group="fit")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_dangling_link_compound_motor_and_no_reference_subgroup(tmp_path):
    path = tmp_path / "x.h5"
    xrf_proc_fit_file(path, np.zeros((5, NY, NX), "f4"), np.zeros((4, NY, NX), "f4"))
    with h5py.File(path, "a") as f:
        del f["fit/channel00/sum"]
        f["fit/channel00/sum"] = h5py.SoftLink("/nowhere/at/all")  # h5py: RuntimeError on 'in'
        f.create_group("detlim")
        _set(f, "mot1", np.zeros((NY, NX), [("a", "<f4"), ("b", "<i2")]))  # no positions
    fit = open_h5(path, group="fit")  # numpy's UFuncTypeError on the compound motor before
    assert np.isnan(fit.sum_area.sel(detector="channel00").values).all()
    assert fit.x.attrs == {"units": "pixel"}
    with pytest.raises(FormatError, match="group 'detlim' holds no 'detlim/<name>' subgroup"):
        open_h5(path, group="detlim")


def test_single_detector_sum_detector_and_coordinates(tmp_path):
    rng = np.random.default_rng(5)
    ds = result("fit", rng).assign_coords(
        y=("y", np.arange(NY) * 0.5, {"units": "mm"}),
        x=("x", np.arange(NX) * 0.25, {"units": "mm"}),
    )
    one = ds.isel(detector=0)  # a scalar detector coordinate
    back = open_h5(to_h5(one, tmp_path / "one.h5"), group="fit")
    np.testing.assert_array_equal(back.peak_area.isel(detector=0).values, one.peak_area.values)
    # No raw/ motors: the result's own coordinates come back.
    np.testing.assert_array_equal(back.x.values, np.arange(NX) * 0.25)
    assert back.x.attrs["units"] == "mm"
    summed = ds.isel(detector=[0]).assign_coords(detector=["sum"])
    path = to_h5(summed, tmp_path / "sum.h5")
    with h5py.File(path) as f:
        assert list(f["fit"]) == ["coords", "sum"]  # not a channelXX: xrf_proc's scripts skip it
    assert list(open_h5(path, group="fit").detector.values) == ["sum"]
