"""PETRA III P06 converter: real NeXus/xspress3 file trees built with h5py (xrf_proc.md 9.2)."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import dask
import dask.array as da
import h5py
import numpy as np
import pytest

from xrfdask.errors import ConfigError, FormatError, XrfdaskWarning
from xrfdask.io.beamlines import p06
from xrfdask.io.beamlines.p06 import convert_p06, p06_output_path
from xrfdask.io.h5layout import open_h5, to_h5

CMESH = "cmesh scanx 0 0.9 10 scany 0 0.3 3 0.1"  # 10 columns x 4 rows
XS = "entry/instrument/xspress3"
# Every variable of a converted scan (the comparisons below check them all).
RAW_VARIABLES = ("spectra", "icr", "ocr", "present", "I0", "I1", "acquisition_time", "mot1", "mot2")


class ComputeForbidden:
    """A dask scheduler that fails the test if anything is computed."""

    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("something was computed")


# --- building P06 scans ---------------------------------------------------------------------


def synth(n: int, rng, nchan: int = 64, channels=(("xspress3_01", "channel00"),)) -> dict:
    """Random source values for an ``n``-point scan: spectra and rates per (device, channel),
    ADC counters, motors on the CMESH grid (scanx fast)."""
    src = {"spectra": {}, "icr": {}, "ocr": {}}
    for key in channels:
        src["spectra"][key] = rng.poisson(3.0, (n, nchan)).astype(np.uint32)
        src["ocr"][key] = rng.uniform(1e3, 2e3, n)
        src["icr"][key] = src["ocr"][key] * rng.uniform(1.0, 1.3, n)
    src["adc"] = {
        "value1": rng.uniform(9e4, 1.1e5, n),
        "value2": rng.uniform(1e4, 2e4, n),
        "exposuretime": rng.uniform(0.09, 0.11, n),
    }
    k = np.arange(n)
    src["scan_data"] = {"scanx": (k % 10) * 0.1, "scany": (k // 10) * 0.1}
    return src


def write_scan(bt: Path, number: int, cmd, src: dict, *, split=None, adc: str | None = "per_file",
               pilc: list[dict] | None = None,
               pilc_dir: str = "pilctriggergenerator_03") -> Path:  # fmt: skip
    """Write scan ``number`` under ``bt/raw`` exactly like P06 does; return its scan id."""
    raw = bt / "raw"
    stem = f"scan_{number:05d}"
    folder = raw / stem
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(raw / f"{stem}.nxs", "w") as f:
        prog = f.create_group("scan/program_name")
        if cmd is not None:
            prog.attrs["scan_command"] = cmd
        for name, values in src["scan_data"].items():
            f[f"scan/data/{name}"] = values
    n = next(iter(src["spectra"].values())).shape[0]
    split = split or [n]
    edges = np.cumsum([0, *split])
    names = [f"{stem}_{i:05d}.nxs" for i in range(len(split))]
    devices = sorted({dev for dev, _ in src["spectra"]})
    for dev in devices:
        (folder / dev).mkdir(exist_ok=True)
        for i, name in enumerate(names):
            sl = slice(edges[i], edges[i + 1])
            with h5py.File(folder / dev / name, "w") as f:
                for (d, ch), spectra in src["spectra"].items():
                    if d != dev:
                        continue
                    f[f"{XS}/{ch}/histogram"] = spectra[sl]
                    f[f"{XS}/{ch}/scaler/allEvent"] = src["icr"][d, ch][sl]
                    f[f"{XS}/{ch}/scaler/allGood"] = src["ocr"][d, ch][sl]
    if adc == "per_file":
        (folder / "adc_01").mkdir()
        for i, name in enumerate(names):
            with h5py.File(folder / "adc_01" / name, "w") as f:
                for key, values in src["adc"].items():
                    f[f"entry/data/{key}"] = values[edges[i] : edges[i + 1]]
    elif adc == "single":
        (folder / "adc01").mkdir()
        with h5py.File(folder / "adc01" / f"{stem}_adc.nxs", "w") as f:
            for key, new in (
                ("value1", "Value1"),
                ("value2", "Value2"),
                ("exposuretime", "ExposureTime"),
            ):
                f[f"entry/data/{new}"] = src["adc"][key]
    if pilc is not None:
        (folder / pilc_dir).mkdir()
        for i, part in enumerate(pilc):
            with h5py.File(folder / pilc_dir / f"{stem}_{i:05d}.nxs", "w") as f:
                f["entry/data/counter"] = part["counter"]
                for k, (name, values) in enumerate(part["encoders"]):
                    f[f"entry/data/encoder_{k}"] = values
                    f[f"entry/data/encoder_{k}"].attrs["Name"] = name
    return raw / stem


def as_map(values: np.ndarray, shape=(4, 10)) -> np.ndarray:
    return values.reshape(shape + values.shape[1:])


@pytest.fixture
def rng():
    return np.random.default_rng(6)


@pytest.fixture
def recipe(tmp_path, rng):
    """The spec's synthetic recipe: cmesh 10 x 4, two xspress3 chunks of 20 points, adc_01."""
    src = synth(40, rng, nchan=4096)
    return write_scan(tmp_path, 1, CMESH, src, split=[20, 20]), src


# --- the recipe -----------------------------------------------------------------------------


def test_recipe_values_one_by_one(recipe):
    scan, src = recipe
    ds = convert_p06(scan, sort=False)
    key = ("xspress3_01", "channel00")
    assert ds.spectra.dims == ("y", "x", "detector", "channel")
    assert ds.spectra.shape == (4, 10, 1, 4096) and ds.spectra.dtype == np.uint32
    np.testing.assert_array_equal(ds.spectra.values[:, :, 0], as_map(src["spectra"][key]))
    np.testing.assert_array_equal(ds.icr.values[:, :, 0], as_map(src["icr"][key]))
    np.testing.assert_array_equal(ds.ocr.values[:, :, 0], as_map(src["ocr"][key]))
    np.testing.assert_array_equal(ds.I0.values, as_map(src["adc"]["value1"]))
    np.testing.assert_array_equal(ds.I1.values, as_map(src["adc"]["value2"]))
    np.testing.assert_array_equal(ds.acquisition_time.values, as_map(src["adc"]["exposuretime"]))
    np.testing.assert_array_equal(ds.mot1.values, as_map(src["scan_data"]["scanx"]))
    np.testing.assert_array_equal(ds.mot2.values, as_map(src["scan_data"]["scany"]))
    assert ds.mot1.attrs["Name"] == "scanx" and ds.mot2.attrs["Name"] == "scany"
    assert bool(ds.present.all())
    # A regular grid: positions as coordinates, mot1 (scanx) along x.
    np.testing.assert_allclose(ds.x, np.arange(10) * 0.1)
    np.testing.assert_allclose(ds.y, np.arange(4) * 0.1)
    assert list(ds.detector.values) == ["channel00"]
    np.testing.assert_array_equal(ds.channel, np.arange(4096))
    assert ds.attrs["cmd"] == CMESH
    assert ds.attrs["source_format"] == "P06" and ds.attrs["source_path"] == str(scan)
    assert ds.attrs["time_triggered"] is False
    assert ds.attrs["fast_axis"].startswith("mot1 (scanx)")
    assert (
        ds.spectra.attrs["units"] == "counts"
        and ds.I0.attrs["long_name"] == "incident flux monitor"
    )


def test_conversion_reads_no_histogram(recipe):
    scan, src = recipe
    with dask.config.set(scheduler=ComputeForbidden()):
        ds = convert_p06(scan, sort=True)
    assert isinstance(ds.spectra.data, da.Array)
    assert any(
        str(k[0] if isinstance(k, tuple) else k).startswith("h5-read")
        for k in ds.spectra.data.__dask_graph__()
    )
    assert ds.spectra.data.chunksize[2:] == (1, 4096)  # detector and channel whole
    np.testing.assert_array_equal(
        ds.spectra.values[:, :, 0], as_map(src["spectra"]["xspress3_01", "channel00"])
    )


def test_scan_path_with_extension_and_pathlike(recipe):
    scan, src = recipe
    a = convert_p06(str(scan) + ".nxs", sort=False)
    b = convert_p06(scan, sort=False)
    np.testing.assert_array_equal(a.icr.values, b.icr.values)
    assert a.attrs["source_path"] == str(scan)


def test_command_as_array_of_strings(tmp_path, rng):
    src = synth(40, rng)
    scan = write_scan(tmp_path, 1, np.array([CMESH], dtype=h5py.string_dtype()), src)
    ds = convert_p06(scan, sort=False)
    assert ds.attrs["cmd"] == CMESH and ds.spectra.shape[:2] == (4, 10)


# --- sorting --------------------------------------------------------------------------------


def scrambled(src: dict, rng) -> dict:
    """The same points, rows in a random order and each row's points shuffled differently."""
    rows = rng.permutation(4)
    order = np.concatenate([r * 10 + rng.permutation(10) for r in rows])

    def take(a):
        return a[order]

    return {
        "spectra": {k: take(v) for k, v in src["spectra"].items()},
        "icr": {k: take(v) for k, v in src["icr"].items()},
        "ocr": {k: take(v) for k, v in src["ocr"].items()},
        "adc": {k: take(v) for k, v in src["adc"].items()},
        "scan_data": {k: take(v) for k, v in src["scan_data"].items()},
    }


def test_sort_reorders_every_variable_identically(tmp_path, rng):
    src = synth(40, rng)
    ref = convert_p06(write_scan(tmp_path / "ref", 1, CMESH, src), sort=False)
    mixed = write_scan(tmp_path / "mixed", 1, CMESH, scrambled(src, rng))
    unsorted = convert_p06(mixed, sort=False)
    assert not np.array_equal(unsorted.mot1.values, ref.mot1.values)
    ds = convert_p06(mixed, sort=True)
    assert isinstance(ds.spectra.data, da.Array)
    for name in RAW_VARIABLES:
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    np.testing.assert_allclose(ds.x, ref.x)
    np.testing.assert_allclose(ds.y, ref.y)


# --- PiLC encoders, ADC fallback, channels ------------------------------------------------------


def pilc_parts(rng, n=40, extra=(3, 17, 30)):
    """Two trigger files whose counter is 1 on the scan's n points, 0 on ``extra`` inserts;
    encoders 0..9 with names; encoder 2 is 'scanx', 5 is 'scany'. Returns the parts and the
    expected (counter == 1) encoder values."""
    total = n + len(extra)
    counter = np.ones(total, dtype=np.int32)
    counter[list(extra)] = 0
    names = ["enc_a", "enc_b", "scanx", "enc_d", "samz", "scany", "samx", "enc_h", "enc_i", "enc_j"]
    values = [rng.normal(k, 0.01, total) for k in range(10)]
    values[2] = np.zeros(total)
    values[5] = np.zeros(total)
    k = np.arange(n)
    values[2][counter == 1] = (k % 10) * 0.1 + rng.normal(0, 1e-4, n)
    values[5][counter == 1] = (k // 10) * 0.1 + rng.normal(0, 1e-4, n)
    half = total // 2
    parts = [
        {
            "counter": counter[:half],
            "encoders": [(nm, v[:half]) for nm, v in zip(names, values, strict=True)],
        },
        {
            "counter": counter[half:],
            "encoders": [(nm, v[half:]) for nm, v in zip(names, values, strict=True)],
        },
    ]
    expected = {nm: v[counter == 1] for nm, v in zip(names, values, strict=True)}
    return parts, expected


def test_pilc_encoders_with_counter_filter(tmp_path, rng):
    src = synth(40, rng)
    parts, enc = pilc_parts(rng)
    scan = write_scan(tmp_path, 1, CMESH, src, split=[20, 20], pilc=parts)
    ds = convert_p06(scan, sort=False)
    # Encoders win over scan/data (which holds the nominal grid here).
    np.testing.assert_array_equal(ds.mot1.values, as_map(enc["scanx"]))
    np.testing.assert_array_equal(ds.mot2.values, as_map(enc["scany"]))
    assert ds.mot1.attrs["Name"] == "scanx" and ds.mot2.attrs["Name"] == "scany"
    # Encoder jitter (1e-4) is within 5 % of a step: still a regular grid.
    np.testing.assert_allclose(ds.x, np.arange(10) * 0.1, atol=1e-3)


def test_pilc_encoder_alias_and_index_fallbacks(tmp_path, rng):
    src = synth(40, rng)
    parts, enc = pilc_parts(rng)
    for part in parts:  # scanx's encoder is called scanv; nothing is called scany
        part["encoders"] = [
            ("scanv" if nm == "scanx" else "other" if nm == "scany" else nm, v)
            for nm, v in part["encoders"]
        ]
    src["scan_data"] = {}
    scan = write_scan(tmp_path, 1, CMESH, src, pilc=parts, pilc_dir="pilctriggergenerator_05")
    ds = convert_p06(scan, sort=False)
    np.testing.assert_array_equal(ds.mot1.values, as_map(enc["scanx"]))
    assert ds.mot1.attrs["Name"] == "scanv"
    np.testing.assert_array_equal(ds.mot2.values, as_map(enc["enc_b"]))  # encoder 1
    assert ds.mot2.attrs["Name"] == "enc_b"


def test_single_file_adc_fallback(tmp_path, rng):
    src = synth(40, rng)
    scan = write_scan(tmp_path, 1, CMESH, src, split=[20, 20], adc="single")
    ds = convert_p06(scan, sort=False)
    np.testing.assert_array_equal(ds.I0.values, as_map(src["adc"]["value1"]))
    np.testing.assert_array_equal(ds.I1.values, as_map(src["adc"]["value2"]))
    np.testing.assert_array_equal(ds.acquisition_time.values, as_map(src["adc"]["exposuretime"]))


def test_no_adc_folder_means_no_counters(tmp_path, rng):
    ds = convert_p06(write_scan(tmp_path, 1, CMESH, synth(40, rng), adc=None), sort=False)
    assert "I0" not in ds and "I1" not in ds and "acquisition_time" not in ds and "icr" in ds


def test_summed_channels_and_devices(tmp_path, rng):
    keys = (
        ("xspress3_01", "channel00"),
        ("xspress3_01", "channel01"),
        ("xspress3_02", "channel00"),
    )
    src = synth(40, rng, channels=keys)
    scan = write_scan(tmp_path, 1, CMESH, src, split=[15, 25])
    ds = convert_p06(scan, sort=False, ch0=("xspress3_01", ["channel00", "channel01"]))
    a, b, c = keys
    assert ds.spectra.dtype == np.uint32 and isinstance(ds.spectra.data, da.Array)
    np.testing.assert_array_equal(
        ds.spectra.values[:, :, 0], as_map(src["spectra"][a] + src["spectra"][b])
    )
    np.testing.assert_allclose(ds.icr.values[:, :, 0], as_map(src["icr"][a] + src["icr"][b]))
    np.testing.assert_allclose(ds.ocr.values[:, :, 0], as_map(src["ocr"][a] + src["ocr"][b]))
    ds = convert_p06(
        scan,
        sort=False,
        ch0=[["xspress3_01", "xspress3_02"], [["channel00", "channel01"], "channel00"]],
    )
    total = src["spectra"][a] + src["spectra"][b] + src["spectra"][c]
    np.testing.assert_array_equal(ds.spectra.values[:, :, 0], as_map(total))
    np.testing.assert_allclose(
        ds.ocr.values[:, :, 0], as_map(src["ocr"][a] + src["ocr"][b] + src["ocr"][c])
    )


def test_two_detectors(tmp_path, rng):
    keys = (("xspress3_01", "channel00"), ("xspress3_01", "channel01"))
    src = synth(40, rng, channels=keys)
    scan = write_scan(tmp_path, 1, CMESH, src, split=[20, 20])
    ds = convert_p06(scan, sort=False, ch1=("xspress3_01", "channel01"))
    assert list(ds.detector.values) == ["channel00", "channel01"]
    for d, key in enumerate(keys):
        np.testing.assert_array_equal(ds.spectra.values[:, :, d], as_map(src["spectra"][key]))
        np.testing.assert_array_equal(ds.icr.values[:, :, d], as_map(src["icr"][key]))
        np.testing.assert_array_equal(ds.ocr.values[:, :, d], as_map(src["ocr"][key]))


@pytest.mark.parametrize(
    "bad", ["xspress3_01", ("xspress3_01",), ("xspress3_01", 3), (["a", "b"], ["channel00"])]
)
def test_bad_channel_spec(recipe, bad):
    scan, _ = recipe
    with pytest.raises(ConfigError):
        convert_p06(scan, ch0=bad)


# --- logbook virtual motors -----------------------------------------------------------------


def test_logbook_virtual_motor_literal_eval_only(tmp_path, rng):
    src = synth(40, rng)
    src["scan_data"] = {}
    parts, enc = pilc_parts(rng)
    cmd = "cmesh vmx 0 0.9 10 scany 0 0.3 3 0.1"
    scan = write_scan(tmp_path, 1, cmd, src, pilc=parts)
    pwned = tmp_path / "pwned"
    entry = {
        "scan": {"scan_prefix": "scan_00001"},
        "axes": {"axis0": {"virtual_motor_config": {
            "pivot_points": [1.5, -2.0],
            "real_members": {"samx": {"contribution": 0.5}, "samz": {"contribution": 0.8}}}}},
    }  # fmt: skip
    other = {"scan": {"scan_prefix": "scan_00002"}, "axes": {}}
    lines = [
        f"__import__('pathlib').Path({str(pwned)!r}).touch()",  # eval would run this
        (
            f"{{'scan': {{'scan_prefix': 'scan_00001'}}, "
            f"'x': __import__('pathlib').Path({str(pwned)!r}).touch()}}"
        ),
        "{'scan': ",  # truncated line
        repr(other),
        repr(entry),
    ]
    (tmp_path / "scan_logbook.txt").write_text("\n".join(lines) + "\n")
    ds = convert_p06(scan, sort=False)
    assert not pwned.exists()
    expected = 0.5 * (enc["samx"] - 1.5) + 0.8 * (enc["samz"] + 2.0) + 1.5
    np.testing.assert_allclose(ds.mot1.values, as_map(expected), rtol=0, atol=1e-12)
    assert ds.mot1.attrs["Name"] == "vmx"
    np.testing.assert_array_equal(ds.mot2.values, as_map(enc["scany"]))
    source = inspect.getsource(p06)
    assert "eval(" not in source.replace("literal_eval(", "")


# --- other scan types -----------------------------------------------------------------------


def test_step_scan_ascan(tmp_path, rng):
    src = synth(11, rng)
    src["scan_data"] = {"scanx": np.linspace(0, 1, 11)[::-1].copy()}  # scanned downwards
    scan = write_scan(tmp_path, 1, "ascan scanx 1 0 10 0.5", src)
    ds = convert_p06(scan, sort=False)
    assert ds.spectra.shape[:2] == (1, 11) and ds.attrs["time_triggered"] is False
    np.testing.assert_array_equal(ds.mot1.values[0], src["scan_data"]["scanx"])
    np.testing.assert_array_equal(ds.mot2.values, ds.mot1.values)
    assert ds.mot2.attrs["Name"] == "scanx"
    ds = convert_p06(scan, sort=True)  # sorted along the row
    np.testing.assert_array_equal(ds.mot1.values[0], np.linspace(0, 1, 11))
    np.testing.assert_array_equal(
        ds.spectra.values[0, :, 0], src["spectra"]["xspress3_01", "channel00"][::-1]
    )
    np.testing.assert_allclose(ds.x, np.linspace(0, 1, 11))


def test_step_mesh_counts_intervals(tmp_path, rng):
    src = synth(15, rng)
    k = np.arange(15)
    src["scan_data"] = {"scanx": (k % 5) * 0.25, "scany": (k // 5) * 0.5}
    ds = convert_p06(write_scan(tmp_path, 1, "mesh scanx 0 1 4 scany 0 1 2 0.1", src), sort=False)
    assert ds.spectra.shape[:2] == (3, 5)
    np.testing.assert_array_equal(
        ds.spectra.values[:, :, 0], src["spectra"]["xspress3_01", "channel00"].reshape(3, 5, -1)
    )


def test_timescan(tmp_path, rng):
    src = synth(10, rng)
    src["scan_data"] = {"timestamp": 100.0 + np.arange(10) * 0.1}
    ds = convert_p06(write_scan(tmp_path, 1, "timescan 9 0.1", src), sort=True)
    assert ds.spectra.shape[:2] == (1, 10)
    np.testing.assert_array_equal(ds.mot1.values[0], src["scan_data"]["timestamp"])
    assert ds.mot1.attrs["Name"] == "timestamp" and ds.mot2.attrs["Name"] == "timestamp"
    np.testing.assert_array_equal(ds.I0.values[0], src["adc"]["value1"])


def test_short_scan_is_padded_with_warning(tmp_path, rng):
    src = synth(35, rng)  # stopped 5 points before the end of the 4 x 10 map
    scan = write_scan(tmp_path, 1, CMESH, src, split=[20, 15])
    with pytest.warns(XrfdaskWarning, match="35 points, fewer than the 4 x 10"):
        ds = convert_p06(scan, sort=False)
    key = ("xspress3_01", "channel00")
    spectra = ds.spectra.values[:, :, 0].reshape(40, -1)
    np.testing.assert_array_equal(spectra[:35], src["spectra"][key])
    assert not spectra[35:].any()
    present = ds.present.values[:, :, 0].reshape(40)
    assert present[:35].all() and not present[35:].any()
    for name in ("icr", "ocr"):
        flat = ds[name].values[:, :, 0].reshape(40)
        np.testing.assert_array_equal(flat[:35], src[name][key])
        assert not flat[35:].any()
    flat = ds.I0.values.reshape(40)
    np.testing.assert_array_equal(flat[:35], src["adc"]["value1"])
    assert not flat[35:].any()
    # Padded motors continue the grid: they stay at the end when sorting, and y/x stay positions.
    k = np.arange(40)
    np.testing.assert_allclose(ds.mot1.values, as_map((k % 10) * 0.1), atol=1e-12)
    np.testing.assert_allclose(ds.mot2.values, as_map((k // 10) * 0.1), atol=1e-12)
    np.testing.assert_allclose(ds.x, np.arange(10) * 0.1, atol=1e-12)
    with pytest.warns(XrfdaskWarning):
        srt = convert_p06(scan, sort=True)
    np.testing.assert_array_equal(srt.present.values, ds.present.values)
    np.testing.assert_array_equal(srt.spectra.values, ds.spectra.values)


def test_more_points_is_time_triggered(tmp_path, rng):
    src = synth(52, rng)
    src["scan_data"] = {"scanx": rng.uniform(0, 1, 52), "scany": rng.uniform(0, 1, 52)}
    scan = write_scan(tmp_path, 1, CMESH, src, split=[30, 22])
    ds = convert_p06(scan, sort=True)  # sorting is forced off
    assert ds.attrs["time_triggered"] is True
    assert ds.spectra.shape[:3] == (1, 52, 1)
    np.testing.assert_array_equal(
        ds.spectra.values[0, :, 0], src["spectra"]["xspress3_01", "channel00"]
    )
    np.testing.assert_array_equal(ds.mot1.values[0], src["scan_data"]["scanx"])
    np.testing.assert_array_equal(ds.I1.values[0], src["adc"]["value2"])
    np.testing.assert_array_equal(ds.x, np.arange(52))  # not a grid: pixel indices
    assert ds.attrs["fast_axis"].startswith("mot1 (scanx)")
    assert ds.spectra.data.numblocks[1] == 2  # chunks follow the files, not one huge row


def test_readas1d(recipe):
    scan, src = recipe
    ds = convert_p06(scan, readas1d=True)
    assert ds.attrs["time_triggered"] is True and ds.spectra.shape[:2] == (1, 40)
    np.testing.assert_array_equal(ds.icr.values[0, :, 0], src["icr"]["xspress3_01", "channel00"])


def test_merge_two_scans_along_rows(tmp_path, rng):
    a, b = synth(40, rng), synth(40, rng)
    b["scan_data"]["scany"] = b["scan_data"]["scany"] + 0.4
    cmd_b = "cmesh scanx 0 0.9 10 scany 0.4 0.7 3 0.1"
    sa = write_scan(tmp_path, 1, CMESH, a, split=[20, 20])
    sb = write_scan(tmp_path, 2, cmd_b, b, split=[25, 15])
    key = ("xspress3_01", "channel00")
    ds = convert_p06([sa, sb], sort=False)
    assert ds.spectra.shape[:2] == (8, 10) and isinstance(ds.spectra.data, da.Array)
    np.testing.assert_array_equal(ds.spectra.values[:4, :, 0], as_map(a["spectra"][key]))
    np.testing.assert_array_equal(ds.spectra.values[4:, :, 0], as_map(b["spectra"][key]))
    np.testing.assert_array_equal(ds.I0.values[4:], as_map(b["adc"]["value1"]))
    np.testing.assert_allclose(ds.y, np.arange(8) * 0.1)
    assert ds.attrs["cmd"] == f"{CMESH}; {cmd_b}"
    assert ds.attrs["source_path"] == [str(sa), str(sb)]
    # Given in the other order, sorting by mot2 restores the same map.
    rev = convert_p06([sb, sa], sort=True)
    for name in ("spectra", "icr", "ocr", "I0", "I1", "acquisition_time", "mot1", "mot2"):
        np.testing.assert_array_equal(rev[name].values, ds[name].values, err_msg=name)


def test_merge_time_triggered_scans_along_points(tmp_path, rng):
    a, b = synth(40, rng), synth(30, rng)
    sa = write_scan(tmp_path, 1, CMESH, a)
    sb = write_scan(tmp_path, 2, "cmesh scanx 0 0.9 10 scany 0 0.1 1 0.1", b)  # 20 asked, 30 taken
    key = ("xspress3_01", "channel00")
    ds = convert_p06([sa, sb], readas1d=True)
    assert ds.attrs["time_triggered"] is True and ds.spectra.shape[:2] == (1, 70)
    expected = np.concatenate([a["spectra"][key], b["spectra"][key]])
    np.testing.assert_array_equal(ds.spectra.values[0, :, 0], expected)
    np.testing.assert_array_equal(
        ds.mot2.values[0], np.concatenate([a["scan_data"]["scany"], b["scan_data"]["scany"]])
    )
    with pytest.raises(FormatError, match="some are time-triggered"):
        convert_p06([sa, sb])  # the first is a map, the second time-triggered


def test_merge_needs_equal_rows(tmp_path, rng):
    sa = write_scan(tmp_path, 1, CMESH, synth(40, rng))
    src = synth(15, rng)
    src["scan_data"] = {"scanx": np.zeros(15), "scany": np.zeros(15)}
    sb = write_scan(tmp_path, 2, "mesh scanx 0 1 4 scany 0 1 2 0.1", src)
    with pytest.raises(FormatError, match="has 5 along x"):
        convert_p06([sa, sb])


def test_output_path():
    assert p06_output_path("/beam.time.1/raw/scan_00012") == Path("/beam.time.1/scan00012_merge.h5")
    assert p06_output_path(Path("/bt/raw/scan_00012.nxs")) == Path("/bt/scan00012_merge.h5")
    assert p06_output_path(["/bt/raw/scan_00012", "/bt/raw/scan_00015"]) == Path(
        "/bt/scan00012-00015_merge.h5"
    )


# --- bad input ------------------------------------------------------------------------------


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_main_file_and_folders(tmp_path, rng):
    with pytest.raises(FormatError) as exc:
        convert_p06(tmp_path / "raw" / "scan_00009")
    assert "scan_00009.nxs" in one_line(exc)
    scan = write_scan(tmp_path, 1, CMESH, synth(40, rng))
    with pytest.raises(FormatError) as exc:
        convert_p06(scan, ch1=("xspress3_07", "channel00"))
    assert str(scan / "xspress3_07") in one_line(exc)


def edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize(
    ("where", "change", "expect"),
    [
        ("xspress3_01/scan_00001_00001.nxs",
         lambda f: f.__delitem__(f"{XS}/channel00/histogram"),
         f"'{XS}/channel00/histogram' is missing"),
        ("xspress3_01/scan_00001_00001.nxs",
         lambda f: f.__delitem__(f"{XS}/channel00/scaler/allGood"),
         "'entry/instrument/xspress3/channel00/scaler/allGood' is missing"),
        ("xspress3_01/scan_00001_00000.nxs",
         lambda f: (f.__delitem__(f"{XS}/channel00/scaler/allEvent"),
                    f.create_dataset(f"{XS}/channel00/scaler/allEvent", data=np.ones(19))),
         "'entry/instrument/xspress3/channel00/scaler/allEvent' has 19 points"),
        ("adc_01/scan_00001_00000.nxs",
         lambda f: f.__delitem__("entry/data/value2"),
         "'entry/data/value2' is missing"),
        ("adc_01/scan_00001_00000.nxs",
         lambda f: (f.__delitem__("entry/data/value1"),
                    f.create_dataset("entry/data/value1", data=np.ones(21))),
         "'entry/data/value1' has 41 points"),
        ("../scan_00001.nxs",
         lambda f: f.__delitem__("scan/data/scany"),
         "'scan/data/scany' is missing"),
        ("../scan_00001.nxs",
         lambda f: (f.__delitem__("scan/data/scanx"),
                    f.create_dataset("scan/data/scanx", data=np.ones(39))),
         "'scan/data/scanx' has 39 points"),
        ("../scan_00001.nxs",
         lambda f: f["scan/program_name"].attrs.__setitem__(
             "scan_command", "cmesh scanx 0 1 ten scany 0 1 3 0.1"),
         "'scan_command' of 'scan/program_name'"),
        ("../scan_00001.nxs",
         lambda f: f["scan/program_name"].attrs.__setitem__("scan_command", "cmesh scanx 0"),
         "is not a scan command"),
        ("../scan_00001.nxs",
         lambda f: f["scan/program_name"].attrs.__delitem__("scan_command"),
         "attribute 'scan_command' of 'scan/program_name' is missing"),
        ("../scan_00001.nxs",
         lambda f: f.__delitem__("scan/program_name"),
         "'scan/program_name' is missing"),
    ],
)  # fmt: skip
def test_format_errors_name_file_and_dataset(tmp_path, rng, where, change, expect):
    scan = write_scan(tmp_path, 1, CMESH, synth(40, rng), split=[20, 20])
    target = (scan / where).resolve()
    edit(target, change)
    with pytest.raises(FormatError) as exc:
        convert_p06(scan, sort=False)
    text = one_line(exc)
    assert expect in text
    named = str(target) if "has 41" not in expect else str(target.parent)
    assert named in text


def test_pilc_length_mismatch(tmp_path, rng):
    parts, _ = pilc_parts(rng, n=39, extra=(2,))
    scan = write_scan(tmp_path, 1, CMESH, synth(40, rng), pilc=parts)
    with pytest.raises(FormatError) as exc:
        convert_p06(scan)
    text = one_line(exc)
    assert (
        "pilctriggergenerator_03" in text
        and "'entry/data/encoder_2'" in text
        and "39 points" in text
    )


def test_detector_length_mismatch(tmp_path, rng):
    keys = (("xspress3_01", "channel00"), ("xspress3_02", "channel00"))
    src = synth(40, rng, channels=keys)
    scan = write_scan(tmp_path, 1, CMESH, src)
    with h5py.File(scan / "xspress3_02" / "scan_00001_00000.nxs", "r+") as f:
        for name in ("histogram", "scaler/allEvent", "scaler/allGood"):
            data = f[f"{XS}/channel00/{name}"][:-1]
            del f[f"{XS}/channel00/{name}"]
            f[f"{XS}/channel00/{name}"] = data
    with pytest.raises(FormatError, match="39 spectra"):
        convert_p06(scan, ch1=("xspress3_02", "channel00"))


# --- into the uniform layout ----------------------------------------------------------------


def test_writes_and_reads_back_through_the_layout(tmp_path, rng):
    keys = (("xspress3_01", "channel00"), ("xspress3_01", "channel01"))
    src = synth(40, rng, channels=keys)
    scan = write_scan(tmp_path, 1, CMESH, scrambled(src, rng), split=[20, 20])
    ds = convert_p06(scan, ch1=("xspress3_01", "channel01"))
    out = to_h5(ds, p06_output_path(scan))
    assert Path(out) == tmp_path / "scan00001_merge.h5"
    back = open_h5(out)
    for name in RAW_VARIABLES:
        np.testing.assert_array_equal(back[name].values, ds[name].values, err_msg=name)
    assert list(back.detector.values) == ["channel00", "channel01"]
    assert back.mot1.attrs["Name"] == "scanx" and back.attrs["cmd"] == CMESH
    with h5py.File(out) as f:
        assert f["raw/channel00/spectra"].shape == (4, 10, 64)
        np.testing.assert_array_equal(
            f["raw/channel01/sumspec"][()], src["spectra"][keys[1]].sum(0)
        )


def test_no_warning_on_complete_scan(recipe):
    scan, _ = recipe
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert_p06(scan)
