"""Reference yields (spec 6.1, 6.4 step 5): combination, norm line, interpolation, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.quantify.synth import make_ref
from xrfdask.errors import ConfigError, FormatError
from xrfdask.quantify.references import apply_norm_line, combine, line_yields, load_reference


def test_combine_mean_and_error_of_the_mean():
    a = (["Fe K", "Ca K"], np.array([2.0, 1.0]), np.array([0.1, 0.2]))  # relative errors
    b = (["Fe K", "Zn K"], np.array([4.0, 8.0]), np.array([0.05, 0.3]))
    names, y, e = combine([a, b], compat=False)
    assert names == ["Ca K", "Fe K", "Zn K"]  # sorted by Z
    assert y.tolist() == [1.0, 3.0, 8.0]
    sigma_fe = math.sqrt((2.0 * 0.1) ** 2 + (4.0 * 0.05) ** 2) / 2
    assert e[1] == pytest.approx(sigma_fe / 3.0)
    assert e[0] == pytest.approx(0.2) and e[2] == pytest.approx(0.3)
    _, y, e = combine([a, b], compat=True)
    assert y[1] == 3.0 and e[1] == pytest.approx(math.sqrt(0.1**2 + 0.05**2))


def test_interpolation_linear_compat_and_log_default():
    # K family: Ca (20), Fe (26), Zn (30); Mn (25) between Ca and Fe, Sr (38) beyond Zn.
    names = ["Ca K", "Fe K", "Zn K"]
    y = np.array([1.0, 4.0, 6.0])
    e = np.array([0.1, 0.2, 0.4])
    lines = ["Mn K", "Sr K", "Ti K", "Fe K"]
    yc, ec, how = line_yields(lines, names, y, e, compat=True)
    assert how == ["interpolated", "interpolated", "interpolated", "reference"]
    assert yc[0] == pytest.approx(1.0 + (25 - 20) * (4.0 - 1.0) / 6)
    assert ec[0] == pytest.approx(0.1 + 5 * 0.1 / 6)
    assert yc[1] == pytest.approx(4.0 + (38 - 26) * (6.0 - 4.0) / 4)  # through the last two
    assert ec[1] == pytest.approx(0.2 + 12 * 0.2 / 4)
    assert yc[2] == pytest.approx(1.0 + (22 - 20) * 3.0 / 6)  # Ti 22: between Ca and Fe
    assert (yc[3], ec[3]) == (4.0, 0.2)
    yl, el, _ = line_yields(lines, names, y, e, compat=False)
    assert yl[0] == pytest.approx(math.exp(math.log(1.0) + 5 * (math.log(4.0) - 0) / 6))
    assert yl[1] == pytest.approx(math.exp(math.log(4) + 12 * (math.log(6) - math.log(4)) / 4))
    assert el[0] == pytest.approx(ec[0])
    assert el[1] == pytest.approx(0.2 + 12 * 0.2 / 4)


def test_extrapolation_never_reaches_zero_by_default():
    # Falling yields: linear extrapolation to high Z goes negative (spec 12.16), log does not.
    names, y, e = ["Fe K", "Zn K"], np.array([10.0, 2.0]), np.array([0.1, 0.1])
    yc, _, _ = line_yields(["Sr K"], names, y, e, compat=True)
    assert yc[0] == pytest.approx(10.0 + (38 - 26) * (2.0 - 10.0) / 4) and yc[0] < 0
    yl, _, _ = line_yields(["Sr K"], names, y, e, compat=False)
    assert yl[0] == pytest.approx(10.0 * (2.0 / 10.0) ** (12 / 4)) and yl[0] > 0


def test_family_and_missing_lines():
    names, y, e = ["Fe K", "Pb L"], np.array([2.0, 3.0]), np.array([0.1, 0.2])
    yc, ec, how = line_yields(["Zn K", "Ba L", "Pb M"], names, y, e, compat=True)
    assert yc[:2].tolist() == [2.0, 3.0] and ec[:2].tolist() == [0.1, 0.2]  # one of the family
    assert how[2] == "missing" and (yc[2], ec[2]) == (-1.0, 0.0)
    yl, el, _ = line_yields(["Pb M"], names, y, e, compat=False)
    assert np.isnan(yl[0]) and np.isnan(el[0])


def test_norm_line_default_divides_per_i0_count():
    ref = load_reference(make_ref(["Fe K"], [2.0], [0.2], norm_sums=(1000.0, 2000.0), normto=1e5))
    ref.norm["channel00"]["Rayl"] = (2000.0, 20.0, 40.0)  # with a stored error of 2 %
    lines, y, e = apply_norm_line(ref, "channel00", "Rayl", n_refs=1, compat=False)
    s_n = 2000.0 / 1e5
    assert y[0] == pytest.approx(2.0 / s_n)
    assert e[0] == pytest.approx(math.sqrt(0.1**2 + 0.02**2))


def test_norm_line_default_poisson_without_stored_error():
    ref = load_reference(make_ref(["Fe K"], [2.0], [0.2], normto=1e5, i0_total_raw=1e9))
    _, y, e = apply_norm_line(ref, "channel00", "Compt", n_refs=1, compat=False)
    s_n, b_n = 1000.0 / 1e5, 10.0 / 1e5
    counts, bkg = s_n * 1e9, b_n * 1e9
    assert y[0] == pytest.approx(2.0 / s_n)
    assert e[0] == pytest.approx(math.sqrt(0.01 + (counts + 2 * bkg) / counts**2))


def test_norm_line_compat_single_and_several():
    ref = load_reference(make_ref(["Fe K"], [2.0], [0.2], normto=1e5, i0_total_raw=1e9))
    _, y, e = apply_norm_line(ref, "channel00", "Rayl", n_refs=1, compat=True)
    assert y[0] == pytest.approx(2.0 * 2000.0)  # Y x S (S normalised to norm/I0)
    assert e[0] == pytest.approx(math.sqrt(0.1**2 + 1 / 2000.0))
    _, y, e = apply_norm_line(ref, "channel00", "Rayl", n_refs=2, compat=True)
    s_n, b_n = 2000.0 / 1e5, 20.0 / 1e5
    assert y[0] == pytest.approx(2.0 * s_n)  # Y x S per I0 count
    poisson = math.sqrt((s_n + 2 * b_n) * 1e9) / (s_n * 1e9)  # added unsquared, as xrf_proc
    assert e[0] == pytest.approx(math.sqrt(0.1**2 + poisson))


def test_norm_line_not_fitted_in_reference():
    ref = load_reference(make_ref(["Fe K"], [2.0], [0.2]))
    with pytest.raises(ConfigError, match="norm line 'Kr K'"):
        apply_norm_line(ref, "channel00", "Kr K", n_refs=1, compat=False)


def test_reference_file_without_elyield(tmp_path):
    import h5py

    path = tmp_path / "ref.h5"
    with h5py.File(path, "w") as f:
        f["norm/I0"] = 1.0
    with pytest.raises(FormatError, match=r"ref\.h5: no 'elyield/' group") as exc:
        load_reference(str(path))
    assert len(str(exc.value).splitlines()) == 1
    with pytest.raises(FileNotFoundError, match="no such reference file"):
        load_reference(str(tmp_path / "missing.h5"))
