import pytest

import xrfdask as xd
from xrfdask.errors import FormatError
from xrfdask.model import check_not_empty, line_union


def test_line_union_keeps_first_seen_order():
    assert line_union([["Fe-K", "Ca-K"], ["Ca-K", "Zn-K"], []]) == ["Fe-K", "Ca-K", "Zn-K"]


@pytest.mark.parametrize("dim", ["y", "x", "channel"])
@pytest.mark.parametrize(
    "writer, ext", [(xd.to_geopixe, "GeoPIXE"), (xd.to_h5, "h5"), (xd.to_zarr, "zarr")]
)
def test_empty_selection_is_refused_by_every_writer(tmp_path, dim, writer, ext):
    ds = xd.datasets.example_dataset(shape=(4, 5)).isel({dim: slice(0, 0)})
    out = tmp_path / f"empty.{ext}"
    with pytest.raises(FormatError, match=rf"empty\.{ext}: the map is empty \({dim}=0\)"):
        writer(ds, out)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_empty_selection_is_refused_by_fit():
    ds = xd.datasets.example_dataset(shape=(4, 5))
    cfg = xd.make_fit_config(ds, ["Fe"])
    with pytest.raises(FormatError, match=r"fit: the map is empty \(x=0\)"):
        xd.fit(ds.isel(x=slice(0, 0)), cfg)


def test_non_empty_map_passes():
    ds = xd.datasets.example_dataset(shape=(1, 1))
    check_not_empty(ds, "one pixel")  # a one-pixel map is a map: no error
    check_not_empty(ds["spectra"], "one pixel")
