"""Writing never loses data: no silent overwrite, raw/ untouched, failures leave the old content."""

import os
import subprocess
import sys
import textwrap
import time

import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr

from xrfdask import open_geopixe
from xrfdask.io.h5layout import FileLockedError, open_h5, open_zarr, to_h5, to_zarr

LINES = ["Fe K", "Ca K", "Compt"]


def fit_result(ds, value: float, fail: bool = False) -> xr.Dataset:
    """A fit-shaped result on the map's grid; with ``fail`` its last band raises when computed."""
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    data = da.full((ny, nx, 2, len(LINES)), value, dtype=np.float32, chunks=(3, nx, 2, len(LINES)))
    if fail:

        def boom(block, block_info=None):
            if block_info[None]["chunk-location"][0] == data.numblocks[0] - 1:
                raise RuntimeError("worker died while fitting")
            return block

        data = data.map_blocks(boom, dtype=np.float32)
    return xr.Dataset(
        {
            "peak_area": (("y", "x", "detector", "line"), data),
            "sum_area": (("detector", "line"), np.full((2, 3), value)),
        },
        coords={"detector": [0, 1], "line": LINES},
    )


@pytest.fixture
def converted(tmp_path, sample_path):
    ds = open_geopixe(sample_path)
    path = to_h5(ds, tmp_path / "map.h5")
    return ds, path


def raw_fingerprint(path):
    """Content and on-disk chunk offsets of every raw dataset: equal means not rewritten."""
    out = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                offsets = (
                    tuple(
                        obj.id.get_chunk_info(i).byte_offset for i in range(obj.id.get_num_chunks())
                    )
                    if obj.chunks
                    else None
                )
                out[name] = (obj[...].tobytes(), offsets)

        f["raw"].visititems(visit)
    return out


def leftovers(folder, path):
    names = os.listdir(folder)
    with h5py.File(path, "r") as f:
        inside = []
        f.visit(inside.append)
    return [n for n in names if n.startswith(".tmp-")] + [
        n for n in inside if ".tmp-" in n or ".old-" in n
    ]


def test_existing_file_is_never_silently_overwritten(converted):
    ds, path = converted
    before = open(path, "rb").read()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_h5(ds, path)
    assert open(path, "rb").read() == before


def test_result_group_added_and_replaced_without_touching_raw(converted, tmp_path):
    ds, path = converted
    raw = raw_fingerprint(path)
    to_h5(fit_result(ds, 1.0), path)
    with pytest.raises(FileExistsError, match="group 'fit' exists"):
        to_h5(fit_result(ds, 2.0), path)
    to_h5(fit_result(ds, 3.0), path, overwrite=True)
    assert raw_fingerprint(path) == raw
    assert float(open_h5(path, group="fit").peak_area.max()) == 3.0
    assert leftovers(tmp_path, path) == []
    with pytest.raises(ValueError, match="a raw map goes to group 'raw'"):
        to_h5(ds, path, group="fit")


def test_failure_midway_leaves_previous_content(converted, tmp_path):
    ds, path = converted
    to_h5(fit_result(ds, 1.0), path)
    raw = raw_fingerprint(path)
    with pytest.raises(RuntimeError, match="worker died"):
        to_h5(fit_result(ds, 5.0, fail=True), path, overwrite=True)
    fit = open_h5(path, group="fit")
    assert float(fit.peak_area.min()) == float(fit.peak_area.max()) == 1.0
    assert raw_fingerprint(path) == raw
    assert leftovers(tmp_path, path) == []
    # A new file that fails is not created at all.
    with pytest.raises(RuntimeError):
        to_h5(fit_result(ds, 5.0, fail=True), tmp_path / "new.h5")
    assert not (tmp_path / "new.h5").exists()


def test_zarr_groups_are_replaced_safely(tmp_path, sample_path):
    ds = open_geopixe(sample_path)
    store = to_zarr(ds, tmp_path / "map.zarr")
    to_zarr(fit_result(ds, 1.0), store)
    with pytest.raises(RuntimeError):
        to_zarr(fit_result(ds, 5.0, fail=True), store, overwrite=True)
    assert float(open_zarr(store, group="fit").peak_area.max()) == 1.0
    to_zarr(fit_result(ds, 2.0), store, overwrite=True)
    assert float(open_zarr(store, group="fit").peak_area.max()) == 2.0
    np.testing.assert_array_equal(open_zarr(store).spectra.values, ds.spectra.values)
    assert not [n for n in os.listdir(store) if ".tmp-" in n or ".old-" in n]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_file_open_for_writing_elsewhere(converted):
    ds, path = converted
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import h5py, sys, time
            f = h5py.File({str(path)!r}, "a")
            print("open", flush=True)
            sys.stdin.readline()
            f.close()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(FileLockedError, match="open for writing by another program"):
            to_h5(fit_result(ds, 1.0), path)
        with pytest.raises(FileLockedError, match=str(path)):
            open_h5(path)
    finally:
        holder.communicate("\n", timeout=30)
    time.sleep(0.1)
    np.testing.assert_array_equal(open_h5(path).spectra.values, ds.spectra.values)
    assert "fit" not in h5py.File(path, "r")


def test_overwriting_a_raw_file_open_for_writing_elsewhere(converted):
    ds, path = converted
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import h5py, sys; f = h5py.File({str(path)!r}, 'a'); "
         "print('open', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(FileLockedError):
            to_h5(ds, path, overwrite=True)
    finally:
        holder.communicate("\n", timeout=30)
