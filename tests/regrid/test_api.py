"""xd.regrid on raw maps and results: snake and time-triggered scans back onto their grid."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.spatial import Delaunay

from tests.regrid.maps import fit_like, grid_positions, snake_map, snake_order, truth_map
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.regrid import regrid

# --- snake (position-triggered) ----------------------------------------------------------


def test_a_snake_goes_back_onto_its_grid_exactly_with_nearest():
    truth = truth_map(9, 12)
    raw = snake_map(truth, chunks=(4, 12, 2, 6))
    out = regrid(raw)
    assert out.spectra.dtype == np.uint32
    np.testing.assert_array_equal(out.spectra.values, truth)
    np.testing.assert_array_equal(out.icr.values, truth.sum(axis=3).astype(float))
    np.testing.assert_array_equal(
        out.I0.values, np.arange(9 * 12, dtype=float).reshape(9, 12) + 1000.0
    )
    gx, gy = grid_positions(9, 12)
    np.testing.assert_allclose(out.x.values, gx, atol=1e-12)
    np.testing.assert_allclose(out.y.values, gy, atol=1e-12)
    np.testing.assert_array_equal(out.mot1.values, np.broadcast_to(out.x.values, (9, 12)))
    np.testing.assert_array_equal(out.mot2.values.T, np.broadcast_to(out.y.values, (12, 9)))
    assert out.x.attrs == {"units": "mm", "motor": "samx"}
    assert out.y.attrs == {"units": "mm", "motor": "samy"}
    assert out.mot1.attrs == {"Name": "samx", "units": "mm"}
    np.testing.assert_array_equal(out.sumspec.values, raw.sumspec.values)  # no y/x: as given
    assert out.attrs["regridded"] is True
    assert (out.attrs["regrid_mode"], out.attrs["regrid_method"]) == ("snake", "nearest")
    assert out.attrs["regrid_half_pixel_shift"] is True
    assert out.attrs["regrid_fast_motor"] == "mot1"
    assert out.attrs["fast_axis"] == "mot1 (samx) varies along x"
    assert out.attrs["cmd"] == raw.attrs["cmd"]


def test_without_the_half_pixel_shift_backward_rows_stay_a_step_off():
    truth = truth_map(6, 10)
    out = regrid(snake_map(truth), half_pixel_shift=False)
    assert out.attrs["regrid_half_pixel_shift"] is False
    assert not np.array_equal(out.spectra.values, truth)


def test_linear_reproduces_an_affine_map_and_a_smooth_one_within_its_error_bound():
    ny, nx, step = 12, 14, (1.0, 1.0)
    gx, gy = grid_positions(ny, nx, step)
    rng = np.random.default_rng(7)
    jitter = rng.uniform(-0.15, 0.15, (ny, nx))
    jitter[:, [0, 1, -2, -1]] = 0.0  # the first step of each row sets its half-pixel shift
    cx = gx[None, :] + jitter
    cy = gy[:, None] + rng.uniform(-0.15, 0.15, (ny, nx))
    a, kx, ky = 100.0, 2 * np.pi / 12, 2 * np.pi / 15

    def smooth(x, y):
        return 1000.0 + a * np.sin(kx * x) * np.cos(ky * y)

    def affine(x, y):
        return 3.0 * x - 2.0 * y + 7.0

    values = np.stack([affine(cx, cy), smooth(cx, cy)], axis=-1)[:, :, None, :]
    raw = snake_map(values, step=step, centres_x=cx, centres_y=cy)
    lin = regrid(raw, method="linear")
    near = regrid(raw, method="nearest")
    assert lin.spectra.dtype == np.float64
    X, Y = np.meshgrid(lin.x.values, lin.y.values)
    got = lin.spectra.values[:, :, 0, :]
    inside = np.isfinite(got[..., 0])
    assert inside[1:-1, 1:-1].all() and inside.mean() > 0.8  # NaN only outside the hull
    np.testing.assert_allclose(got[inside, 0], affine(X, Y)[inside], rtol=0, atol=1e-9)
    assert np.abs(near.spectra.values[:, :, 0, 0] - affine(X, Y)).max() > 0.1
    # |f - Lf| <= 1/2 max|Hessian| max|p - v|^2 over the triangle's vertices v
    tri = Delaunay(np.column_stack((cx.ravel(), cy.ravel())))
    query = np.column_stack((X.ravel(), Y.ravel()))
    simplex = tri.find_simplex(query)
    vertices = tri.points[tri.simplices[simplex]]
    reach = ((vertices - query[:, None, :]) ** 2).sum(-1).max(-1).reshape(X.shape)
    bound = 0.5 * a * (kx**2 + ky**2) * reach
    error = np.abs(got[..., 1] - smooth(X, Y))
    assert (error[inside] <= bound[inside] + 1e-9).all()
    assert error[inside].max() < 0.2 * a


def test_masks_stay_masks():
    truth = truth_map(6, 8, ndet=1)
    raw = snake_map(truth)
    valid = np.ones((6, 8, 1), dtype=bool)
    valid[2, 3] = False
    raw["valid"] = (("y", "x", "detector"), da.from_array(snake_order(valid), chunks=(3, 8, 1)))
    near = regrid(raw)
    assert near.valid.dtype == bool
    np.testing.assert_array_equal(near.valid.values, valid)
    lin = regrid(raw, method="linear")
    assert lin.valid.dtype == bool
    assert not lin.valid.values[2, 3, 0] and lin.valid.values.sum() >= 6 * 8 - 7


def test_the_fast_motor_is_the_one_varying_along_x_whatever_its_name():
    truth = truth_map(6, 8)
    raw = snake_map(truth)
    swapped = raw.rename({"mot1": "mot2", "mot2": "mot1"})
    out = regrid(swapped)
    assert out.attrs["regrid_fast_motor"] == "mot2"
    assert out.attrs["fast_axis"] == "mot2 (samx) varies along x"
    np.testing.assert_array_equal(out.spectra.values, truth)
    assert out.x.attrs["motor"] == "samx"
    forced = regrid(swapped, fast="mot1")  # wrong on purpose: the grid then runs the other way
    assert forced.attrs["regrid_fast_motor"] == "mot1"
    assert not np.array_equal(forced.spectra.values, truth)


# --- time-triggered ----------------------------------------------------------------------


def time_scan(truth, *, step=(0.5, 2.0), origin=(10.0, -3.0), kind="cmesh", relative=False):
    """A continuous mesh recorded as one 1-D list (one row): snake order, each point recorded
    at the start of its interval (half a step before the centre in the direction of travel)."""
    ny, nx = truth.shape[:2]
    gx, gy = grid_positions(ny, nx, step, origin)
    offset = np.where(np.arange(ny) % 2 == 0, -step[0] / 2, step[0] / 2)[:, None]
    mot1 = snake_order(np.broadcast_to(gx[None, :], (ny, nx)) + offset).reshape(1, -1)
    mot2 = np.repeat(gy, nx)[None, :]
    spectra = snake_order(truth).reshape(1, ny * nx, *truth.shape[2:])
    if relative:  # a relative mesh's command counts from where the scan starts
        c1, c2 = (gx[-1] - gx[0]) / 2, (gy[-1] - gy[0]) / 2
        cmd = f"{kind} samx {-c1} {c1} {nx} samy {-c2} {c2} {ny} 0.1"
    else:
        cmd = f"{kind} samx {gx[0]} {gx[-1]} {nx} samy {gy[0]} {gy[-1]} {ny} 0.1"
    return xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), da.from_array(spectra, chunks=-1)),
            "mot1": (("y", "x"), mot1, {"Name": "samx"}),
            "mot2": (("y", "x"), mot2, {"Name": "samy"}),
        },
        attrs={"cmd": cmd},
    )


@pytest.mark.parametrize("relative", [False, True])
def test_a_1d_time_triggered_mesh_goes_onto_the_commands_grid(relative):
    truth = truth_map(5, 10, ndet=1)
    scan = time_scan(truth, kind="cdmesh" if relative else "cmesh", relative=relative)
    assert scan.sizes["y"] == 1
    out = regrid(scan, mode="time")
    assert out.spectra.shape == (5, 10, 1, 6) and out.spectra.dtype == np.uint32
    np.testing.assert_array_equal(out.spectra.values, truth)
    gx, gy = grid_positions(5, 10)
    np.testing.assert_allclose(out.x.values, gx, atol=1e-12)
    np.testing.assert_allclose(out.y.values, gy, atol=1e-12)
    assert out.attrs["regrid_mode"] == "time"
    assert out.attrs["regrid_cmd"] == scan.attrs["cmd"]


def test_time_mode_takes_bytes_commands_and_their_repr():
    truth = truth_map(4, 6, ndet=1)
    scan = time_scan(truth)
    for cmd in (scan.attrs["cmd"].encode(), "b'" + scan.attrs["cmd"] + "'"):
        out = regrid(scan.assign_attrs(cmd=cmd), mode="time")
        np.testing.assert_array_equal(out.spectra.values, truth)
    out = regrid(scan.assign_attrs(cmd="unused"), mode="time", cmd=scan.attrs["cmd"].encode())
    np.testing.assert_array_equal(out.spectra.values, truth)


def test_time_mode_finds_the_commands_first_motor_by_name():
    truth = truth_map(4, 6, ndet=1)
    scan = time_scan(truth).rename({"mot1": "mot2", "mot2": "mot1"})
    out = regrid(scan, mode="time")
    assert out.attrs["regrid_fast_motor"] == "mot2"
    np.testing.assert_array_equal(out.spectra.values, truth)


def test_a_stopped_time_scan_fills_the_missing_points_from_their_nearest():
    truth = truth_map(4, 6, ndet=1)
    # 4 of the last row's 6 points missing; rows close enough that the row above is nearer
    scan = time_scan(truth, step=(1.0, 0.8)).isel(x=slice(0, 20))
    out = regrid(scan, mode="time")
    np.testing.assert_array_equal(out.spectra.values[:3], truth[:3])
    np.testing.assert_array_equal(out.spectra.values[3, 4:], truth[3, 4:])  # measured ones
    np.testing.assert_array_equal(out.spectra.values[3, :4], truth[2, :4])  # the row above


# --- results, idempotence, laziness ------------------------------------------------------


def test_a_fit_result_takes_its_motors_from_the_raw_map():
    truth = truth_map(8, 10, ndet=2)
    raw = snake_map(truth, chunks=(3, 10, 2, 6))
    areas = truth[..., :3].astype(np.float32) / 7
    fit = fit_like(snake_order(areas), raw)
    out = regrid(fit, motors=raw)
    assert out.peak_area.dtype == np.float32
    np.testing.assert_array_equal(out.peak_area.values, areas)
    np.testing.assert_array_equal(out.sum_area.values, fit.sum_area.values)
    assert list(out.line.values) == ["Fe K", "Pb L", "Compt"]
    spectra = regrid(raw)
    np.testing.assert_array_equal(out.x.values, spectra.x.values)
    assert out.peak_area.chunks[:2] == spectra.spectra.chunks[:2]  # merge without rechunking
    merged = xr.merge([spectra, out.drop_vars(["mot1", "mot2"])])
    assert merged.peak_area.chunks[:2] == merged.spectra.chunks[:2]
    one = regrid(fit.peak_area, motors=raw, method="linear")
    assert isinstance(one, xr.DataArray) and one.name == "peak_area"
    np.testing.assert_allclose(one.values, areas, rtol=1e-6)
    assert one.attrs["regridded"] is True and {"mot1", "mot2"} <= set(one.coords)


def test_masked_pixels_stay_masked():
    truth = truth_map(6, 8, ndet=1)
    raw = snake_map(truth)
    norm = truth[..., :2].astype(np.float64)
    norm[1, 2] = np.nan
    nrm = fit_like(snake_order(norm), raw).rename(peak_area="normalised")
    out = regrid(nrm, motors=raw)
    np.testing.assert_array_equal(out.normalised.values, norm)


def test_regridding_twice_gives_the_same_and_never_shifts_twice():
    truth = truth_map(6, 8)
    raw = snake_map(truth)
    before = raw.copy(deep=True)
    first = regrid(raw).compute()
    second = regrid(raw).compute()
    xr.testing.assert_identical(first, second)
    xr.testing.assert_identical(raw, before)  # the input is untouched, motors included
    assert "regridded" not in raw.attrs
    with pytest.warns(XrfdaskWarning, match="already regridded"):
        again = regrid(first)
    assert again is first


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_one_row_seven_row_and_whole_map_chunks_give_the_same(method):
    truth = truth_map(15, 11, ndet=1)
    results = []
    for rows in (1, 7, 15):
        out = regrid(snake_map(truth, chunks=(rows, 11, 1, 6)), method=method)
        assert out.spectra.chunks[0] == snake_map(truth, chunks=(rows, 11, 1, 6)).spectra.chunks[0]
        results.append(out.compute())
    split = regrid(snake_map(truth, chunks=(4, 11, 1, 4)), method=method)  # channels in 2
    assert split.spectra.chunks[3] == (4, 2)
    xr.testing.assert_identical(results[0], split.compute())
    for other in results[1:]:
        xr.testing.assert_identical(results[0], other)


def test_time_mode_chunks_along_a_long_row_give_the_same():
    truth = truth_map(5, 10, ndet=1)
    scan = time_scan(truth)
    results = []
    for cols in (1, 7, 50):
        chunked = scan.chunk({"x": cols})
        out = regrid(chunked, mode="time")
        if cols == 7:  # bands of about the input's 7 pixels: one row cut in 7 columns
            assert out.spectra.chunks[:2] == ((1,) * 5, (7, 3))
        results.append(out.compute())
    for other in results[1:]:
        xr.testing.assert_identical(results[0], other)


def test_building_the_graph_computes_nothing_and_bands_read_only_their_rows():
    truth = truth_map(8, 6, ndet=1)
    raw = snake_map(truth, chunks=(2, 6, 1, 6))

    def far_rows_raise(block, block_info=None):
        if block_info[0]["chunk-location"][0] >= 2:  # source rows 4 and beyond
            raise RuntimeError("a far band was read")
        return block

    raw["spectra"] = raw.spectra.copy(
        data=raw.spectra.data.map_blocks(far_rows_raise, dtype=np.uint32)
    )
    out = regrid(raw)  # builds the graph only
    assert isinstance(out.spectra.data, da.Array)
    np.testing.assert_array_equal(out.spectra[:4].values, truth[:4])  # bands 0 and 1
    with pytest.raises(RuntimeError, match="far band"):
        out.spectra.compute()


def test_in_memory_variables_stay_in_memory():
    truth = truth_map(6, 8)
    raw = snake_map(truth).compute()
    out = regrid(raw)
    assert isinstance(out.spectra.data, np.ndarray)
    np.testing.assert_array_equal(out.spectra.values, truth)


# --- bad input ---------------------------------------------------------------------------


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ConfigError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_input_is_a_one_line_error():
    truth = truth_map(6, 8)
    raw = snake_map(truth)
    fit = fit_like(truth[..., :2].astype(float), raw)
    one_line_error(r"no motor positions: the data has no 'mot1'.*motors=", regrid, fit)
    one_line_error(r"'mot1' of motors= has shape \(4, 8\); the map is \(6, 8\)", regrid, fit,
                   motors=raw.isel(y=slice(0, 4)))  # fmt: skip
    one_line_error(r"motors= has no 'mot2'", regrid, fit, motors=raw.drop_vars("mot2"))
    one_line_error(r"'mot1' of motors= has dims \('x',\)", regrid, fit,
                   motors=raw.assign(mot1=raw.mot1.isel(y=0)))  # fmt: skip
    one_line_error("motors= is already regridded", regrid, fit, motors=regrid(raw))
    one_line_error("mode='zigzag'", regrid, raw, mode="zigzag")
    one_line_error("method='cubic'", regrid, raw, method="cubic")
    one_line_error("fast='mot3'", regrid, raw, fast="mot3")
    one_line_error(r"1-D scan \('dscan'\)", regrid, raw, mode="time", cmd="dscan samx 0 1 9 0.1")
    one_line_error("no scan command", regrid, raw.assign_attrs(cmd=None), mode="time")
    one_line_error("one row.*mode='time'", regrid, raw.isel(y=[0]))
    one_line_error("no y or x dimension", regrid, raw.sumspec.to_dataset())
    line = raw.assign(mot1=(("y", "x"), np.broadcast_to(np.arange(8.0), (6, 8))),
                      mot2=(("y", "x"), np.broadcast_to(np.arange(8.0), (6, 8))))  # fmt: skip
    one_line_error("cannot be triangulated", regrid, line, method="linear", half_pixel_shift=False)
    one_line_error("only one of y and x", regrid, raw.assign(row_sum=raw.I0.sum("x")))


# --- through the files -------------------------------------------------------------------


def test_a_snake_map_read_back_from_the_layout(tmp_path):
    import xrfdask as xd

    truth = truth_map(6, 8)
    path = tmp_path / "snake.h5"
    xd.to_h5(snake_map(truth, chunks=(2, 8, 2, 6)), path)
    raw = xd.open_h5(path)
    out = regrid(raw)
    np.testing.assert_array_equal(out.spectra.values, truth)
    assert out.x.attrs == {"units": "mm", "motor": "samx"}


def test_a_1d_file_as_xrf_proc_converters_write_it(tmp_path):
    # a relative continuous mesh saved as 1-D lists (spectra N x C, motors N), cmd a str
    import h5py

    import xrfdask as xd

    truth = truth_map(4, 6, ndet=1)
    scan = time_scan(truth, kind="cdmesh", relative=True)
    path = tmp_path / "line.h5"
    with h5py.File(path, "w") as f:
        f["cmd"] = scan.attrs["cmd"]
        for m in ("mot1", "mot2"):
            f[m] = scan[m].values[0]
            f[m].attrs["Name"] = scan[m].attrs["Name"]
        spectra = scan.spectra.values[0, :, 0, :]
        f["raw/I0"] = np.ones(24)
        f["raw/channel00/spectra"] = spectra
        f["raw/channel00/icr"] = f["raw/channel00/ocr"] = np.ones(24)
        f["raw/channel00/sumspec"] = spectra.sum(axis=0)
        f["raw/channel00/maxspec"] = spectra.max(axis=0)
    raw = xd.open_h5(path)
    assert raw.sizes["y"] == 1
    out = regrid(raw, mode="time")
    np.testing.assert_array_equal(out.spectra.values, truth)
    np.testing.assert_allclose(out.x.values, grid_positions(4, 6)[0], atol=1e-12)
    np.testing.assert_allclose(out.y.values, grid_positions(4, 6)[1], atol=1e-12)


def test_a_data_array_with_its_motors_as_coordinates():
    truth = truth_map(6, 8)
    spectra = snake_map(truth).set_coords(["mot1", "mot2"]).spectra
    out = regrid(spectra)
    assert isinstance(out, xr.DataArray) and out.name == "spectra"
    np.testing.assert_array_equal(out.values, truth)
    np.testing.assert_array_equal(out.mot1.values, np.broadcast_to(out.x.values, (6, 8)))
    with pytest.warns(XrfdaskWarning, match="already regridded"):
        again = regrid(out)
    xr.testing.assert_identical(again, out)
