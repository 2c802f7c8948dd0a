"""xrfdask.plot.detection_limits: xrf_proc's plot_detlim (spec 5.6) drawn and saved."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.container import BarContainer

import xrfdask.plot
from tests.conftest import SHARED
from tests.detlim.test_limits import make_nrm, raw_sums
from xrfdask.detlim import detection_limits

CNC = SHARED / "data" / "cnc"


@pytest.fixture(scope="module")
def dls():
    p, b = raw_sums(11)
    nrm = make_nrm(p, b)
    return [detection_limits(nrm, CNC / "nist613.cnc"), detection_limits(nrm, CNC / "nist611.cnc")]


def test_marker_plot_series_labels_errors_and_trend(tmp_path, dls):
    png = tmp_path / "dl.png"
    fig = xrfdask.plot.detection_limits(dls, png, detector=1)
    assert png.stat().st_size > 5000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = fig.axes
    (top,) = ax.child_axes
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["nist613_1s", "nist613_1000s", "nist611_1s", "nist611_1000s"]
    # The markers: one point per line at its Z, the values of the chosen detector.
    a = dls[0].isel(detector=1)
    containers = {c.get_label(): c for c in ax.containers}
    assert list(containers) == labels
    first = containers["nist613_1s"][0]
    np.testing.assert_allclose(first.get_xdata(), a.z.values)
    np.testing.assert_allclose(first.get_ydata(), a.detection_limit_1s.values)
    np.testing.assert_allclose(
        containers["nist613_1000s"][0].get_ydata(), a.detection_limit_1000s.values
    )
    assert [c[0].get_marker() for c in containers.values()] == ["o", "s", "d", "p"]
    assert all(c[0].get_linestyle() == "None" for c in containers.values())
    # 3-sigma error bars: the bar of the first point spans DL +- 3 sigma.
    bars = ax.containers[0].lines[2][0].get_segments()[0]
    dl0, err0 = a.detection_limit_1s.values[0], a.detection_limit_1s_error.values[0]
    np.testing.assert_allclose(bars[:, 1], [dl0 - 3 * err0, dl0 + 3 * err0])
    # The degree-2 trend of ln(DL) vs Z, dashed, in the series' colour, over [Zmin, Zmax].
    trends = [ln for ln in ax.get_lines() if ln.get_gid() == "trend"]
    assert len(trends) == 4
    z = a.z.values.astype(float)
    coeff = np.polyfit(z, np.log(a.detection_limit_1s.values), 2)
    t0 = trends[0]
    np.testing.assert_allclose(t0.get_ydata(), np.exp(np.polyval(coeff, t0.get_xdata())))
    assert t0.get_xdata()[0] == z.min() and t0.get_xdata()[-1] == z.max()
    assert len(t0.get_xdata()) == 2 * (z.max() - z.min())
    assert t0.get_linestyle() == "--" and t0.get_color() == first.get_color()
    # The top axis: El-line labels per Z; Pb's two lines stacked, highest mean limit first.
    ticks = dict(zip(top.get_xticks(), [t.get_text() for t in top.get_xticklabels()], strict=True))
    assert ticks[26] == "Fe-K" and ticks[20] == "Ca-K"
    sel = [d.isel(detector=1).sel(line=["Pb L", "Pb M"]) for d in dls]
    pb = np.mean([[v.detection_limit_1s, v.detection_limit_1000s] for v in sel], axis=(0, 1))
    assert ticks[82] == ("Pb-L\nPb-M" if pb[0] > pb[1] else "Pb-M\nPb-L")
    assert ax.get_ylabel() == "Detection Limit (ppm)"
    assert ax.get_xlabel() == "Atomic Number (Z)"


def test_bar_mode(tmp_path, dls):
    png = tmp_path / "bar.png"
    fig = xrfdask.plot.detection_limits(dls[0], png, bar=True, times=["1s"], ytitle="DL")
    assert png.exists()
    (ax,) = fig.axes
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == dls[0].sizes["line"]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["Ca-K", "Fe-K", "Pb-L", "Pb-M"]  # categorical, in Z order
    a = dls[0].isel(detector=0).detection_limit_1s
    heights = [b.get_height() for b in sorted(bars, key=lambda b: b.get_x())]
    np.testing.assert_allclose(heights, [a.sel(line=n.replace("-", " ")).item() for n in names])
    assert ax.get_ylabel() == "DL" and ax.get_yscale() == "log"


def test_few_points_no_trend_and_missing_variable(dls):
    fig = xrfdask.plot.detection_limits(dls[0].sel(line=["Fe K", "Ca K"]))
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "trend"]
    with pytest.raises(ValueError, match="detection_limit_10s"):
        xrfdask.plot.detection_limits(dls[0], times=["10s"])


def test_limits_read_back_from_a_file(tmp_path, dls):
    import xrfdask.io.h5layout as layout

    path = tmp_path / "ref.h5"
    layout.to_h5(dls[0], path)
    stored = layout.open_h5(path, group="detlim/nist613.cnc")  # no z coordinate: from names
    fig = xrfdask.plot.detection_limits(stored, detector=0)
    first = fig.axes[0].containers[0][0]
    np.testing.assert_array_equal(first.get_xdata(), dls[0].z.values)
