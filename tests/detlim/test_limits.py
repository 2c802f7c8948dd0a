"""Detection limits and yields (xrfdask/detlim/limits.py) against spec 5.2-5.4 computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr
from PyMca5.PyMcaPhysics import Elements

import xrfdask.io.h5layout as layout
from tests.conftest import SHARED
from xrfdask.detlim import concentration_unit, detection_limits, reference_concentrations
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.io.cnc import Cnc, read_cnc

CNC = SHARED / "data" / "cnc"
NIST613 = str(CNC / "nist613.cnc")
NIST611 = str(CNC / "nist611.cnc")
LINES = ["Fe K", "Pb M", "Br K", "Compt", "Pb L", "Ca K", "Rayl", "Hg L"]
KEPT = ["Fe K", "Pb M", "Pb L", "Ca K"]  # the fit's order; no scatter, no Br or Hg in NIST 613
ALPHA1 = {"K": "KL3", "L": "L3M5", "M": "M5N7"}


def raw_sums(seed: int = 0, ndet: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Dead-time-corrected sum-spectrum areas P and backgrounds B (detector, line)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(1e3, 1e6, (ndet, len(LINES)))
    b = rng.uniform(1e2, 1e5, (ndet, len(LINES)))
    return p, b


def make_nrm(p, b, *, i0_total=(4.0e7, 4.0e7), time_total=(250.0, 250.0), normto=1.0e5, tm=False):
    """A normalised Dataset with exactly the contract's variables, normalised as xrf_proc."""
    i0_total = np.asarray(i0_total)[: p.shape[0]]
    time_total = np.asarray(time_total)[: p.shape[0]]
    pn = p / i0_total[:, None] * normto
    bn = b / i0_total[:, None] * normto
    dims = ("detector", "line")
    return xr.Dataset(
        {
            "sum_area": (dims, pn),
            "sum_background": (dims, bn),
            "sum_area_error": (dims, pn * np.sqrt(p + 2 * b) / np.where(p > 0, p, 1.0)),
            "sum_background_error": (dims, bn * np.sqrt(b) / b),
            "I0_total": ("detector", i0_total),
            "time_total": ("detector", time_total),
        },
        coords={"detector": list(range(p.shape[0])), "line": LINES},
        attrs={"I0": normto, "TmNorm": "True" if tm else "False", "tmnorm": tm},
    )


def by_hand(p, b, cnc: Cnc, lines, *, i0_total, t, normto, tilt=90.0, full_eps_b=False):
    """Spec 5.2-5.4 line by line: (DL1, σDL1, DL1000, σDL1000, Y, σY) for one detector."""
    out = {k: [] for k in ("dl1", "dl1e", "dl1000", "dl1000e", "y", "ye", "depth")}
    normfactor = normto / i0_total  # 5.2
    for line in lines:
        j = LINES.index(line)
        pn, bn = p[j] / i0_total * normto, b[j] / i0_total * normto
        pe, be = pn * math.sqrt(p[j] + 2 * b[j]) / p[j], bn * math.sqrt(b[j]) / b[j]
        pp, bb = pn / normfactor, bn / normfactor
        eps_p, eps_b = pe / pn, be / bn
        el, fam = line.split()
        energy = Elements.getxrayenergy(el, ALPHA1[fam[0]])  # 5.3
        mu = sum(
            w / 1e6 * Elements.getmassattcoef(Elements.getsymbol(int(z)), [energy])["total"][0]
            for z, w in zip(cnc.z, cnc.conc, strict=True)
        )
        rho = cnc.density * 1e-3
        d_esc = math.log(100) / (rho * mu)
        d_v = cnc.thickness / math.sin(tilt * math.pi / 180) * 1e-4
        d = d_v if d_esc > d_v else d_esc
        zi = int(np.flatnonzero(cnc.z == Elements.getz(el))[0])
        c, sc = cnc.conc[zi], cnc.err[zi]
        ca = c * rho * d
        sca = sc / c * ca
        dl1 = 3 * math.sqrt(bb * t) / pp * c  # 5.4
        dl1000 = dl1 / math.sqrt(1000)
        eb = eps_b if full_eps_b else eps_b / 2
        dl1e = dl1 * math.sqrt(eps_p**2 + eb**2 + (sc / c) ** 2)
        y = (pn / normto) / ca
        out["dl1"].append(dl1)
        out["dl1e"].append(dl1e)
        out["dl1000"].append(dl1000)
        out["dl1000e"].append(dl1e / dl1 * dl1000)
        out["y"].append(y)
        out["ye"].append(y * math.sqrt((sca / ca) ** 2 + eps_p**2))
        out["depth"].append(d)
    return {k: np.asarray(v) for k, v in out.items()}


def check(dl, p, b, cnc, *, det=0, rtol=1e-12, **kw):
    want = by_hand(p[det], b[det], cnc, list(dl.line.values), **kw)
    got = dl.isel(detector=det)
    np.testing.assert_allclose(got.detection_limit_1s, want["dl1"], rtol=rtol)
    np.testing.assert_allclose(got.detection_limit_1s_error, want["dl1e"], rtol=rtol)
    np.testing.assert_allclose(got.detection_limit_1000s, want["dl1000"], rtol=rtol)
    np.testing.assert_allclose(got.detection_limit_1000s_error, want["dl1000e"], rtol=rtol)
    np.testing.assert_allclose(got.elemental_yield, want["y"], rtol=rtol)
    np.testing.assert_allclose(got.elemental_yield_error, want["ye"], rtol=rtol)
    np.testing.assert_allclose(dl.information_depth, want["depth"], rtol=rtol)


def test_every_formula_of_5_2_to_5_4_by_hand():
    p, b = raw_sums()
    nrm = make_nrm(p, b, i0_total=(4.0e7, 3.5e7), time_total=(250.0, 240.0))
    dl = detection_limits(nrm, NIST613)
    assert list(dl.line.values) == KEPT
    cnc = read_cnc(NIST613)
    check(dl, p, b, cnc, det=0, i0_total=4.0e7, t=250.0, normto=1.0e5)
    check(dl, p, b, cnc, det=1, i0_total=3.5e7, t=240.0, normto=1.0e5)
    assert dl.attrs["cnc"] == "nist613.cnc" and dl.attrs["unit"] == "ppm"
    assert dl.attrs["yield_unit"] == "counts/(I0 count)/(ug/cm2)"
    assert dl.attrs["I0"] == 1.0e5 and dl.attrs["TmNorm"] == "False" and dl.attrs["tilt"] == 90
    assert dl.attrs["I0_total_raw"] == 4.0e7
    # DL1000 is DL1 / sqrt(1000), with the same relative error.
    np.testing.assert_allclose(dl.detection_limit_1000s * math.sqrt(1000), dl.detection_limit_1s)
    # The reference's sums of every line (Compt, Rayl too) for quantify's norm_line.
    assert list(dl.norm_line.values) == LINES
    np.testing.assert_array_equal(dl.norm_sum_area.values, nrm.sum_area.values)
    np.testing.assert_array_equal(dl.norm_sum_background.values, nrm.sum_background.values)


def test_compat_xrf_proc_uses_the_full_background_error():
    p, b = raw_sums(1)
    nrm = make_nrm(p, b)
    fixed = detection_limits(nrm, NIST613)
    orig = detection_limits(nrm, NIST613, compat="xrf_proc")
    check(orig, p, b, read_cnc(NIST613), i0_total=4.0e7, t=250.0, normto=1.0e5, full_eps_b=True)
    assert orig.attrs["compat"] == "xrf_proc"
    for name in ("detection_limit_1s", "detection_limit_1000s", "elemental_yield"):
        xr.testing.assert_identical(fixed[name], orig[name])
    assert (orig.detection_limit_1s_error > fixed.detection_limit_1s_error).all()
    with pytest.raises(ConfigError, match="compat='pymca'"):
        detection_limits(nrm, NIST613, compat="pymca")


def test_escape_depth_against_virtual_thickness_and_tilt():
    nist = read_cnc(NIST613)
    thick = Cnc("/x/thick.cnc", "thick", nist.density, 0.0, 1e6, nist.z, nist.conc, nist.err)
    thin = Cnc("/x/thin.cnc", "thin", nist.density, 0.0, 1.0, nist.z, nist.conc, nist.err)
    ref_thick = reference_concentrations(KEPT, thick)
    ref_thin = reference_concentrations(KEPT, thin)
    assert (ref_thick.escape_depth < ref_thick.virtual_thickness).all()
    np.testing.assert_array_equal(ref_thick.depth, ref_thick.escape_depth)
    np.testing.assert_array_equal(ref_thin.depth, ref_thin.virtual_thickness)
    np.testing.assert_allclose(ref_thin.depth, 1e-4)
    tilted = reference_concentrations(KEPT, thin, tilt=30)
    np.testing.assert_allclose(tilted.depth, 2e-4)  # 1 um / sin(30 deg)
    np.testing.assert_allclose(tilted.areal, 2 * ref_thin.areal)
    # The escape depth does not depend on the tilt (only the thickness is divided by sin).
    np.testing.assert_array_equal(
        reference_concentrations(KEPT, thick, tilt=30).depth, ref_thick.depth
    )
    p, b = raw_sums(2)
    nrm = make_nrm(p, b)
    for cnc, tilt in ((thin, 90), (thin, 30), (thick, 20)):
        dl = detection_limits(nrm, cnc, tilt)
        check(dl, p, b, cnc, i0_total=4.0e7, t=250.0, normto=1.0e5, tilt=tilt)
    # Thin: the yield doubles when the beam crosses twice the material; DLs (ppm) do not change.
    a, c = detection_limits(nrm, thin), detection_limits(nrm, thin, 30)
    np.testing.assert_allclose(a.elemental_yield, 2 * c.elemental_yield)
    xr.testing.assert_identical(a.detection_limit_1s, c.detection_limit_1s)
    for bad in (0, 180, -5, float("nan")):
        with pytest.raises(ConfigError, match="tilt"):
            detection_limits(nrm, thin, bad)


def test_lines_kept_and_dropped():
    ref = reference_concentrations(
        ["Compt", "Rayl", "Rayl001", "Br K", "Pb L", "Fe K", "Pb M"], NIST613
    )
    assert ref.lines == ["Pb L", "Fe K", "Pb M"]  # fit order; scatter and Br (absent) dropped
    nist = read_cnc(NIST613)
    pb = nist.concentration("Pb")
    np.testing.assert_array_equal(ref.conc[[0, 2]], [pb[0], pb[0]])  # both Pb lines: Pb's c
    np.testing.assert_array_equal(ref.conc_error[[0, 2]], [pb[1], pb[1]])
    np.testing.assert_array_equal(ref.z, [82, 26, 82])
    assert ref.energy[0] == Elements.getxrayenergy("Pb", "L3M5")
    assert ref.energy[2] == Elements.getxrayenergy("Pb", "M5N7")
    # An element the cnc lists with concentration 0: warned about by element and file, dropped.
    conc = nist.conc.copy()
    conc[nist.z == 26] = 0.0
    zero = Cnc("/refs/zero.cnc", "zero", nist.density, 0, nist.thickness, nist.z, conc, nist.err)
    p, b = raw_sums(3)
    with pytest.warns(XrfdaskWarning, match=r"zero.cnc: concentration 0 for Fe K"):
        dl = detection_limits(make_nrm(p, b), zero)
    assert list(dl.line.values) == ["Pb M", "Pb L", "Ca K"]
    assert np.isfinite(dl.elemental_yield).all()


def test_density_zero_gives_nan_yields_and_a_warning_not_inf():
    p, b = raw_sums(4)
    nrm = make_nrm(p, b)
    crm = str(CNC / "crm278r.cnc")  # density 0, thickness 0; no Fe or Ca, but Hg
    with pytest.warns(
        XrfdaskWarning, match=r"crm278r.cnc: density 0 .*Pb M, Pb L, Hg L: .*yields are NaN"
    ):
        dl = detection_limits(nrm, crm)
    assert list(dl.line.values) == ["Pb M", "Pb L", "Hg L"]
    assert np.isnan(dl.elemental_yield).all() and np.isnan(dl.elemental_yield_error).all()
    c = read_cnc(crm).concentration("Pb")[0]
    pp = nrm.sum_area.sel(line="Pb L")[0] / (1.0e5 / 4.0e7)
    bb = nrm.sum_background.sel(line="Pb L")[0] / (1.0e5 / 4.0e7)
    want = 3 * np.sqrt(bb * 250.0) / pp * c
    np.testing.assert_allclose(dl.detection_limit_1s.sel(line="Pb L")[0], want, rtol=1e-12)


def test_areal_cnc_axo_in_ug_cm2():
    p, b = raw_sums(5)
    nrm = make_nrm(p, b)
    axo = read_cnc(CNC / "axo.cnc")  # ng/mm^2, density 0: used as areal concentrations
    dl = detection_limits(nrm, axo)
    assert list(dl.line.values) == ["Fe K", "Pb M", "Pb L", "Ca K"]
    assert dl.attrs["unit"] == "ug/cm2" and dl.detection_limit_1s.attrs["units"] == "ug/cm2"
    for line in dl.line.values:
        j = LINES.index(line)
        c, sc = axo.concentration(line.split()[0])
        ca, sca = 0.1 * c, 0.1 * sc  # 1 ng/mm^2 = 0.1 ug/cm^2
        pp, bb = p[0, j], b[0, j]
        dl1 = 3 * math.sqrt(bb * 250.0) / pp * ca
        eps_p = math.sqrt(pp + 2 * bb) / pp
        eps_b = 1 / math.sqrt(bb)
        got = dl.sel(line=line).isel(detector=0)
        np.testing.assert_allclose(got.detection_limit_1s, dl1, rtol=1e-12)
        np.testing.assert_allclose(
            got.detection_limit_1s_error,
            dl1 * math.sqrt(eps_p**2 + (eps_b / 2) ** 2 + (sc / c) ** 2),
            rtol=1e-12,
        )
        y = pp / 4.0e7 / ca
        np.testing.assert_allclose(got.elemental_yield, y, rtol=1e-12)
        np.testing.assert_allclose(
            got.elemental_yield_error, y * math.sqrt((sca / ca) ** 2 + eps_p**2), rtol=1e-12
        )
    tilted = detection_limits(nrm, axo, 60)  # the beam crosses 1/sin(60) of the film
    np.testing.assert_allclose(
        tilted.elemental_yield * (1 / math.sin(math.pi / 3)), dl.elemental_yield, rtol=1e-12
    )


def test_units():
    assert concentration_unit("ppm") == ("mass", 1.0)
    assert concentration_unit("ng/mm^2") == ("areal", 0.1)
    assert concentration_unit("µg/cm²") == ("areal", 1.0)
    assert concentration_unit("wt%") == ("mass", 1e4)
    with pytest.raises(ConfigError, match="concentration unit 'counts'"):
        concentration_unit("counts")


def test_unknown_unit_of_a_cnc_file_names_the_file(tmp_path):
    # Found by benchmarks/fuzz_inputs.py: the ConfigError did not say which file's unit it was.
    path = tmp_path / "odd.cnc"
    path.write_text(
        "Standard_Name\nX\nDensity(mg/cm^3)\tMass(mg)\tSample_thickness(micron)\n1000\t1\t10\n"
        "Number of elements\n1\nZ\tCert conc(counts)\tErr\n26\t10\t1\n"
    )
    with pytest.raises(ConfigError, match=r"odd.cnc: concentration unit 'counts' is not one of"):
        reference_concentrations(["Fe K"], read_cnc(path))


def test_tmnorm_and_totals_from_the_raw_map():
    p, b = raw_sums(6, ndet=1)
    rng = np.random.default_rng(6)
    i0 = rng.uniform(1e4, 2e4, (3, 4))
    t = rng.uniform(0.5, 1.5, (3, 4))
    raw = xr.Dataset({"I0": (("y", "x"), i0), "acquisition_time": (("y", "x"), t)})
    i0t = float((i0 * t).sum())
    nrm = make_nrm(p, b, i0_total=(i0t,), time_total=(float(t.sum()),), tm=True)
    dl = detection_limits(nrm, NIST613, raw=raw)
    check(dl, p, b, read_cnc(NIST613), i0_total=i0t, t=float(t.sum()), normto=1.0e5)
    assert dl.attrs["yield_unit"] == "counts/(I0 count x s)/(ug/cm2)"
    np.testing.assert_allclose(dl.attrs["I0_total_raw"], i0.sum())
    # A norm/ read from a file has no totals: they come from raw/, as xrf_proc takes them.
    stored = nrm.drop_vars(["I0_total", "time_total"]).drop_attrs()
    stored.attrs = {"I0": 1.0e5, "TmNorm": "True"}
    again = detection_limits(stored, NIST613, raw=raw)
    for name in ("detection_limit_1s", "elemental_yield", "detection_limit_1000s_error"):
        np.testing.assert_allclose(again[name], dl[name], rtol=1e-12)
    with pytest.raises(ConfigError, match=r"lacks I0_total, time_total .*pass raw="):
        detection_limits(stored, NIST613)
    with pytest.raises(ConfigError, match=r"no 'acquisition_time'"):
        detection_limits(stored, NIST613, raw=raw.drop_vars("acquisition_time"))


def test_bad_input_is_one_line():
    p, b = raw_sums(7)
    nrm = make_nrm(p, b)
    with pytest.raises(ConfigError, match=r"lacks sum_background_error") as err:
        detection_limits(nrm.drop_vars("sum_background_error"), NIST613)
    assert "\n" not in str(err.value)
    no_i0 = nrm.copy()
    no_i0.attrs = {}
    with pytest.raises(ConfigError, match=r"no attrs\['I0'\]"):
        detection_limits(no_i0, NIST613)
    with pytest.raises(FileNotFoundError, match="nope.cnc"):
        detection_limits(nrm, "/nope/nope.cnc")


def test_zero_area_gives_nan_not_inf():
    p, b = raw_sums(8, ndet=1)
    p[0, LINES.index("Fe K")] = 0.0
    dl = detection_limits(make_nrm(p, b, i0_total=(4e7,), time_total=(250.0,)), NIST613)
    fe = dl.sel(line="Fe K")
    assert np.isnan(fe.detection_limit_1s).all() and fe.elemental_yield.item() == 0.0
    assert np.isfinite(dl.drop_sel(line="Fe K").detection_limit_1s).all()


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_two_references_side_by_side_round_trip(tmp_path, suffix):
    p, b = raw_sums(9)
    nrm = make_nrm(p, b)
    a, c = detection_limits(nrm, NIST613), detection_limits(nrm, NIST611)
    path = tmp_path / f"ref{suffix}"
    write = layout.to_h5 if suffix == ".h5" else layout.to_zarr
    read = layout.open_h5 if suffix == ".h5" else layout.open_zarr
    write(a, path)
    write(c, path)
    for dl in (a, c):
        cnc = dl.attrs["cnc"]
        got = read(path, group=f"detlim/{cnc}")
        assert got.attrs["unit"] == "ppm" and got.attrs["cnc"] == cnc
        assert list(got.line.values) == list(dl.line.values)
        for name in ("detection_limit_1s", "detection_limit_1s_error"):
            np.testing.assert_array_equal(got[name].values, dl[name].values)
        for name in ("detection_limit_1000s", "detection_limit_1000s_error"):
            np.testing.assert_array_equal(got[name].values, dl[name].values)
        y = read(path, group=f"elyield/{cnc}")
        np.testing.assert_array_equal(y.elemental_yield.values, dl.elemental_yield.values)
        np.testing.assert_array_equal(y.elemental_yield_error.values, dl.elemental_yield_error)
    # Replacing needs overwrite=True, and a refusal leaves both groups as they were.
    with pytest.raises(FileExistsError, match=r"detlim/nist613.cnc' exists"):
        write(a, path)
    write(a, path, overwrite=True)
    assert read(path, group="elyield/nist611.cnc").sizes["line"] == c.sizes["line"]
    if suffix == ".h5":
        with h5py.File(path) as f:
            assert set(f["detlim"]) == set(f["elyield"]) == {"nist613.cnc", "nist611.cnc"}
            assert f["detlim/nist613.cnc/unit"][()] == b"ppm"
            assert [n.decode() for n in f["detlim/nist613.cnc/channel01/names"][()]] == KEPT
            assert f["elyield/nist611.cnc/channel00/yield"].shape == (c.sizes["line"],)


def xrf_proc_file(path, p, b, i0, t) -> float:
    """raw/ and norm/ of one channel as xrf_proc writes them (spec 1.1); returns norm/I0."""
    normto = float(i0.max())
    pn, bn = p / i0.sum() * normto, b / i0.sum() * normto
    ny, nx = i0.shape
    with h5py.File(path, "w") as f:
        f["cmd"] = f"dmesh samx 0 1 {nx - 1} samy 0 1 {ny - 1} 0.5"
        f.create_dataset("raw/I0", data=i0)
        f.create_dataset("raw/acquisition_time", data=t)
        f.create_dataset("raw/channel00/spectra", data=np.ones((ny, nx, 8), dtype=np.uint32))
        f.create_dataset("raw/channel00/icr", data=np.ones((ny, nx)))
        f.create_dataset("raw/channel00/ocr", data=np.ones((ny, nx)))
        f["norm/I0"] = normto
        f["norm"].attrs["TmNorm"] = "False"
        ch = f.create_group("norm/channel00")
        ch["names"] = np.array([n.encode() for n in LINES])  # fixed-length S<n>
        ch["ims"] = np.ones((len(LINES), ny, nx))
        ch["ims_stddev"] = np.ones((len(LINES), ny, nx))
        ch["sum/int"] = pn
        ch["sum/bkg"] = bn
        ch["sum/int_stddev"] = pn * np.sqrt(p + 2 * b) / p
        ch["sum/bkg_stddev"] = bn * np.sqrt(b) / b
    return normto


def test_reads_what_xrf_proc_writes(tmp_path):
    """norm/ and raw/ written by hand as xrf_proc writes them (spec 1.1), then its detlim/."""
    p, b = raw_sums(10, ndet=1)
    i0 = np.full((2, 3), 1.0e4)
    t = np.full((2, 3), 0.5)
    path = tmp_path / "xrf_proc.h5"
    normto = xrf_proc_file(path, p[0], b[0], i0, t)
    with h5py.File(path, "a") as f:
        # detlim/elyield as calc_detlim writes them: names vlen bytes, unit vlen str.
        f["detlim/nist613.cnc/unit"] = "ppm"
        g = f.create_group("detlim/nist613.cnc/channel00")
        g["names"] = [n.encode() for n in KEPT]
        for k, tm in enumerate(("1s", "1000s")):
            g[f"{tm}/data"] = np.arange(4.0) + k
            g[f"{tm}/stddev"] = np.arange(4.0) / 10 + k
        e = f.create_group("elyield/nist613.cnc/channel00")
        e["names"] = [n.encode() for n in KEPT]
        e["yield"] = np.arange(4.0) * 1e-3
        e["yield"].attrs["Unit"] = "(ct/s)/(ug/cm²)"
        e["stddev"] = np.arange(4.0) * 1e-5
    got = layout.open_h5(path, group="detlim/nist613.cnc")
    assert list(got.line.values) == KEPT and got.attrs["unit"] == "ppm"
    np.testing.assert_array_equal(got.detection_limit_1000s.values[0], np.arange(4.0) + 1)
    np.testing.assert_array_equal(got.detection_limit_1s_error.values[0], np.arange(4.0) / 10)
    y = layout.open_h5(path, group="elyield/nist613.cnc")
    np.testing.assert_array_equal(y.elemental_yield.values[0], np.arange(4.0) * 1e-3)
    assert layout.open_h5(path, group="elyield").attrs["cnc"] == "nist613.cnc"
    # From xrf_proc's norm/ (totals from raw/I0, raw/acquisition_time): the formulas by hand.
    nrm = layout.open_h5(path, group="norm")
    dl = detection_limits(nrm, NIST613, raw=layout.open_h5(path))
    check(dl, p, b, read_cnc(NIST613), i0_total=i0.sum(), t=t.sum(), normto=normto, rtol=1e-10)


def test_lazy_sums_stay_lazy():
    p, b = raw_sums(13)
    nrm = make_nrm(p, b)
    lazy = detection_limits(nrm.chunk(), NIST613)
    for name in ("detection_limit_1s", "detection_limit_1000s_error", "elemental_yield"):
        assert isinstance(lazy[name].data, da.Array)
    xr.testing.assert_allclose(lazy.compute(), detection_limits(nrm, NIST613))


XRF_PROC_FILE = Path(__file__).resolve().parents[1] / "data" / "xrf_proc_groups.h5"


def test_xrf_procs_own_calc_detlim_on_its_own_norm():
    """tests/data/xrf_proc_groups.h5: norm/ and detlim/, elyield/ written by xrf_proc itself
    (its norm_xrf_batch and calc_detlim, nist613.cnc); compat="xrf_proc" gives its numbers."""
    nrm = layout.open_h5(XRF_PROC_FILE, group="norm")
    dl = detection_limits(nrm, NIST613, raw=layout.open_h5(XRF_PROC_FILE), compat="xrf_proc")
    theirs = layout.open_h5(XRF_PROC_FILE, group="detlim/nist613.cnc")
    yields = layout.open_h5(XRF_PROC_FILE, group="elyield/nist613.cnc")
    assert list(dl.line.values) == list(theirs.line.values) == list(yields.line.values)
    for name in ("1s", "1s_error", "1000s", "1000s_error"):
        var = f"detection_limit_{name}"
        np.testing.assert_allclose(dl[var].values, theirs[var].values, rtol=1e-12)
    for var in ("elemental_yield", "elemental_yield_error"):
        np.testing.assert_allclose(dl[var].values, yields[var].values, rtol=1e-12)
    fixed = detection_limits(nrm, NIST613, raw=layout.open_h5(XRF_PROC_FILE))
    assert (fixed.detection_limit_1s_error < theirs.detection_limit_1s_error).all()
