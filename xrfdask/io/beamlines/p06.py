"""DESY PETRA III P06 (NeXus + xspress3 chunk files) scans to raw maps, after xrf_proc's
``ConvP06Nxs`` (spec xrf_proc.md 9.2).

A scan ``<bt>/raw/scan_00001`` is a main file ``scan_00001.nxs`` (scan command, ``scan/data``
motors) and a folder ``scan_00001/`` holding one sub-folder per device: xspress3 chunk files
(``entry/instrument/xspress3/channelNN/histogram`` and count rates), ADC counters (``adc_01``)
and, optionally, PiLC trigger files with encoder positions. Points are concatenated over the
chunk files, then reshaped row-major to (rows, columns) read from the scan command; the command's
first motor (``mot1``) varies along the columns (``x``).

Differences from the original, fixing its pitfalls (spec 12, items 23 and 27): the logbook is
parsed with :func:`ast.literal_eval`, never ``eval``; sorting permutes every variable with one
permutation; padded pixels of a stopped scan are flagged (``present``) and get motor positions
extrapolated from the recorded grid, so they stay where the scan would have put them instead of
sorting to the front; one PiLC folder is chosen (the highest numbered one holding files); lengths
that do not match raise :class:`~xrfdask.errors.FormatError` instead of being padded silently.
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError, FormatError, XrfdaskWarning
from xrfdask.io.beamlines.grid import assign_motor_coords, points_to_map, sort_map
from xrfdask.io.h5layout.stores import H5Reader
from xrfdask.model import MAP_DIMS, PIXEL_DIMS, RAW_DIMS, with_attrs

__all__ = ["convert_p06", "p06_output_path"]

PathLike = str | os.PathLike
ChannelSpec = Sequence[Any]

_XSPRESS = "entry/instrument/xspress3"
_ADC_DIRS = ("adc_01", "adc01")
_PILC_DIRS = tuple(f"pilctriggergenerator_0{k}" for k in range(5, 0, -1))
_COMMAND = "scan/program_name"
# Encoders of P06's scan stage, named differently from the motors of the scan command.
_ENCODER_ALIASES = {"scanz": "scanw", "scany": "scanu", "scanx": "scanv"}
_ADC_PER_FILE = ("value1", "value2", "exposuretime")
_ADC_SINGLE = ("Value1", "Value2", "ExposureTime")
_ADC_VARS = ("I0", "I1", "acquisition_time")
_Motor = tuple[str, np.ndarray, str]  # name, positions, where they come from (for errors)


def convert_p06(
    scanid: PathLike | Sequence[PathLike],
    *,
    sort: bool = True,
    ch0: ChannelSpec = ("xspress3_01", "channel00"),
    ch1: ChannelSpec | None = None,
    readas1d: bool = False,
) -> xr.Dataset:
    """Convert P06 scans to a raw map (lazy: the histograms stay in the chunk files).

    Parameters
    ----------
    scanid : path or list of paths
        Scan path without extension, such as ``<bt>/raw/scan_00001`` (a trailing ``.nxs`` is
        ignored), or several scans to merge: their rows are concatenated (points, for
        time-triggered 1-D scans).
    sort : bool, default True
        Sort each row by ``mot1``, then each column by ``mot2`` (every variable the same way).
        Ignored for time-triggered (1-D) data.
    ch0 : sequence, default ("xspress3_01", "channel00")
        Detector ``"channel00"``: ``(device_dir, channel)``; ``(device_dir, [channels...])`` sums
        the channels (spectra, icr and ocr); ``([dev1, dev2...], [spec1, spec2...])``, each spec a
        channel or a list of channels, sums across devices.
    ch1 : sequence, optional
        Detector ``"channel01"``, same forms as ``ch0``.
    readas1d : bool, default False
        Keep the points as one row (time-triggered data) whatever the command says.

    Returns
    -------
    xarray.Dataset
        ``spectra`` (y, x, detector, channel) as stored (dask), ``icr``, ``ocr``, ``present``
        (y, x, detector; False on padded pixels), ``I0``, ``I1``, ``acquisition_time`` (y, x) when
        the scan has ADC files, ``mot1``, ``mot2`` (y, x) with attribute ``Name``; coordinates
        ``y``, ``x`` (motor positions on a regular grid, else pixel indices), ``detector``,
        ``channel``; attrs ``cmd``, ``source_format="P06"``, ``source_path``, ``time_triggered``,
        ``fast_axis``.

    Raises
    ------
    FormatError
        A missing file, folder or dataset, lengths that do not match between spectra, counters
        and motors, or a scan command that cannot be parsed; the message names the file and the
        dataset path.
    ConfigError
        A malformed ``ch0``/``ch1`` specification.

    Warns
    -----
    XrfdaskWarning
        A scan with fewer points than its command asks for: spectra and counters are padded with
        zeros (``present`` False) and motors extrapolated from the recorded positions.

    Notes
    -----
    Rows x columns come from the command (tokens ``type mot1 start end n mot2 start end n
    time``): continuous scans (``c...``) count points along the row, step scans intervals
    (``n + 1``), ``timescan n`` gives ``n + 1`` points, ``cnt`` one; rows are ``token 8 + 1``. More
    points than rows x columns, or ``readas1d``, gives one row (``time_triggered=True``).
    """
    scans = _scan_list(scanid)
    detectors = [_parse_channels(ch0, "ch0")]
    if ch1 is not None:
        detectors.append(_parse_channels(ch1, "ch1"))
    maps = []
    for base in scans:  # a plain loop: the padding warning's stacklevel points at the caller
        maps.append(_scan_map(_read_scan(base, detectors), readas1d))
    ds = _merge(maps)
    time_triggered = bool(ds.attrs["time_triggered"])
    if sort and not time_triggered:
        ds = sort_map(ds, "mot1", "mot2")
    ds = assign_motor_coords(ds)
    # P06's convention (spec 1.2): the command's first motor is the fast one, even when its
    # positions are too irregular to serve as the x coordinate.
    ds.attrs.setdefault("fast_axis", f"mot1 ({ds['mot1'].attrs['Name']}) varies along x")
    ds.attrs["cmd"] = "; ".join(m.attrs["cmd"] for m in maps)
    ds.attrs["source_format"] = "P06"
    paths = [str(base) for base in scans]
    ds.attrs["source_path"] = paths[0] if len(paths) == 1 else paths
    ds.attrs["time_triggered"] = time_triggered
    return ds


def p06_output_path(scanid: PathLike | Sequence[PathLike]) -> Path:
    """xrf_proc's output name for a scan: ``<bt>/scan<NNNNN>_merge.h5``.

    ``<bt>`` is the scan path without its last two components (``raw/scan_00001``); the number
    is what follows the last ``_`` of the scan name. Several scans give
    ``scan<first>-<last>_merge.h5`` beside the first. Built with pathlib, so folders with dots
    are kept whole.
    """
    scans = _scan_list(scanid)
    numbers = [base.name.rsplit("_", 1)[-1] for base in scans]
    name = f"scan{numbers[0]}" if len(scans) == 1 else f"scan{numbers[0]}-{numbers[-1]}"
    return scans[0].parent.parent / f"{name}_merge.h5"


# --- arguments ----------------------------------------------------------------------------------


def _scan_list(scanid: PathLike | Sequence[PathLike]) -> list[Path]:
    items = [scanid] if isinstance(scanid, str | os.PathLike) else list(scanid)
    if not items:
        raise ValueError("scanid: give at least one scan path")
    out = []
    for item in items:
        base = Path(os.fspath(item))
        out.append(base.with_suffix("") if base.suffix == ".nxs" else base)
    return out


def _parse_channels(spec: ChannelSpec, what: str) -> list[tuple[str, list[str]]]:
    """``(device, channel)``, ``(device, [channels])`` or ``([devices], [specs])`` as a list of
    (device, channels) pairs, everything in it summed."""
    if isinstance(spec, str) or not isinstance(spec, Sequence) or len(spec) != 2:
        raise ConfigError(
            f"{what}={spec!r}: expected (device_dir, channel or [channels]) "
            "or ([devices], [channel specs])"
        )
    devices, channels = spec
    if isinstance(devices, str):
        pairs = [(devices, channels)]
    elif (
        isinstance(devices, Sequence)
        and isinstance(channels, Sequence)
        and not isinstance(channels, str)
        and len(devices) == len(channels)
    ):
        pairs = list(zip(devices, channels, strict=True))
    else:
        raise ConfigError(
            f"{what}={spec!r}: a list of devices needs a list of channel specs of the same length"
        )
    out = []
    for device, chans in pairs:
        names = (
            [chans]
            if isinstance(chans, str)
            else list(chans)
            if isinstance(chans, Sequence)
            else None
        )
        if not isinstance(device, str) or not names or not all(isinstance(c, str) for c in names):
            raise ConfigError(
                f"{what}={spec!r}: device {device!r} with channels {chans!r} "
                "is not a device name and channel name(s)"
            )
        out.append((device, names))
    return out


# --- reading one scan ---------------------------------------------------------------------------


@dataclass
class _Points:
    """One scan as points (before reshaping): spectra lazy, everything else small numpy."""

    base: Path
    tokens: list[str]
    shape: tuple[int, int]
    spectra: list[da.Array]  # per detector, (points, channels)
    icr: list[np.ndarray]
    ocr: list[np.ndarray]
    counters: dict[str, np.ndarray] = field(default_factory=dict)
    motors: dict[str, _Motor] = field(default_factory=dict)


def _read_scan(base: Path, detectors: list[list[tuple[str, list[str]]]]) -> _Points:
    main = base.parent / f"{base.name}.nxs"
    if not main.is_file():
        raise FormatError(f"{main}: no such file (the main file of scan {base})")
    if not base.is_dir():
        raise FormatError(f"{base}: no such folder (the device files of scan {base})")
    with H5Reader(main) as h5:
        tokens = _read_command(h5)
        shape = _scan_shape(tokens, h5.path)
        spectra, icr, ocr, first_files = [], [], [], None
        for spec in detectors:
            s, i, o, files = _read_detector(base, spec)
            first_files = first_files or files
            spectra.append(s)
            icr.append(i)
            ocr.append(o)
        n = spectra[0].shape[0]
        if n == 0:
            raise FormatError(f"{base / detectors[0][0][0]}: the histograms hold no points")
        for k, s in enumerate(spectra[1:], start=1):
            if s.shape != spectra[0].shape:
                raise FormatError(
                    f"{base}: detector channel{k:02d} has {s.shape[0]} spectra "
                    f"of {s.shape[1]} channels, "
                    f"channel00 has {n} of {spectra[0].shape[1]}"
                )
        counters = _read_adc(base, first_files, n)
        motors = _read_motors(h5, base, tokens, n)
    return _Points(base, tokens, shape, spectra, icr, ocr, counters, motors)


def _read_command(h5: H5Reader) -> list[str]:
    """The scan command's tokens (attribute ``scan_command`` of ``scan/program_name``)."""
    where = f"{h5.path}: attribute 'scan_command' of '{_COMMAND}'"
    if not h5.has(_COMMAND):
        raise FormatError(f"{h5.path}: '{_COMMAND}' is missing (it holds the scan command)")
    value = h5.attrs(_COMMAND).get("scan_command")
    if value is None:
        raise FormatError(f"{where} is missing")
    text = " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    # The original str()-ifies arrays and strips their brackets and quotes the same way.
    tokens = re.sub(r"[\[\]'\"]", "", text).split()
    if not tokens:
        raise FormatError(f"{where} is empty")
    return tokens


def _integer(token: str) -> int:
    value = float(token)
    if not value.is_integer() or value < 0:
        raise ValueError(token)
    return int(value)


def _scan_shape(tokens: list[str], path: str) -> tuple[int, int]:
    """(rows, columns) of the command: continuous scans count points, step scans intervals."""
    kind = tokens[0]
    try:
        if kind == "cnt":
            xdim = 1
        elif kind == "timescan":
            xdim = _integer(tokens[1]) + 1
        elif kind.startswith("c"):
            xdim = _integer(tokens[4])
        else:
            xdim = _integer(tokens[4]) + 1
        ydim = _integer(tokens[8]) + 1 if len(tokens) > 7 else 1
    except (IndexError, ValueError):
        raise FormatError(
            f"{path}: attribute 'scan_command' of '{_COMMAND}' = {' '.join(tokens)!r} "
            "is not a scan command "
            "('<type> <mot1> <start> <end> <n> [<mot2> <start> <end> <n>] <time>')"
        ) from None
    if xdim < 1:
        raise FormatError(
            f"{path}: attribute 'scan_command' of '{_COMMAND}' = {' '.join(tokens)!r} "
            "asks for 0 points per row"
        )
    return ydim, xdim


def _find(h5: H5Reader, group: str, name: str) -> str | None:
    """Path of ``group/name``, matching the name case-insensitively (allEvent / allevent)."""
    exact = f"{group}/{name}"
    if h5.has(exact):
        return exact
    if not h5.is_group(group):
        return None
    for key in h5.keys(group):
        if key.lower() == name.lower():
            return f"{group}/{key}"
    return None


def _nxs_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.nxs") if p.is_file())


def _read_detector(
    base: Path, spec: list[tuple[str, list[str]]]
) -> tuple[da.Array, np.ndarray, np.ndarray, list[str]]:
    """One detector: spectra (lazy), icr and ocr summed over its channels and devices."""
    total_s = total_i = total_o = None
    first_names: list[str] = []
    for device, channels in spec:
        folder = base / device
        if not folder.is_dir():
            raise FormatError(f"{folder}: no such folder (device '{device}' of scan {base})")
        files = _nxs_files(folder)
        if not files:
            raise FormatError(f"{folder}: no .nxs files (device '{device}' of scan {base})")
        first_names = first_names or [f.name for f in files]
        parts_s, parts_i, parts_o = [], [], []
        for path in files:
            with H5Reader(path) as h5:
                s, i, o = _read_chunk(h5, channels)
            parts_s.append(s)
            parts_i.append(i)
            parts_o.append(o)
        s = da.concatenate(parts_s, axis=0)
        i, o = np.concatenate(parts_i), np.concatenate(parts_o)
        if total_s is not None and s.shape != total_s.shape:
            raise FormatError(
                f"{folder}: {s.shape[0]} spectra of {s.shape[1]} channels, "
                "but the devices summed with it "
                f"have {total_s.shape[0]} of {total_s.shape[1]}"
            )
        total_s = s if total_s is None else total_s + s
        total_i = i if total_i is None else total_i + i
        total_o = o if total_o is None else total_o + o
    return total_s, total_i, total_o, first_names


def _read_chunk(h5: H5Reader, channels: list[str]) -> tuple[da.Array, np.ndarray, np.ndarray]:
    """One xspress3 chunk file: the channels' histograms (lazy) and count rates, summed."""
    total_s = total_i = total_o = None
    for channel in channels:
        group = f"{_XSPRESS}/{channel}"
        hist = f"{group}/histogram"
        if not h5.has(hist):
            raise FormatError(f"{h5.path}: dataset '{hist}' is missing")
        shape = h5.shape(hist)
        if len(shape) != 2:
            raise FormatError(
                f"{h5.path}: dataset '{hist}' has shape {shape}, expected (points, channels)"
            )
        s = h5.lazy_banded(hist, 0)
        rates = []
        for name in ("allEvent", "allGood"):
            p = _find(h5, f"{group}/scaler", name)
            if p is None:
                raise FormatError(f"{h5.path}: dataset '{group}/scaler/{name}' is missing")
            rate = np.asarray(h5.read(p), dtype=np.float64).reshape(-1)
            if rate.shape[0] != shape[0]:
                raise FormatError(
                    f"{h5.path}: dataset '{p}' has {rate.shape[0]} points, '{hist}' has {shape[0]}"
                )
            rates.append(rate)
        if total_s is not None and s.shape[1] != total_s.shape[1]:
            raise FormatError(
                f"{h5.path}: dataset '{hist}' has {s.shape[1]} channels, "
                f"the channels summed with it {total_s.shape[1]}"
            )
        if total_s is not None and s.shape[0] != total_s.shape[0]:
            raise FormatError(
                f"{h5.path}: dataset '{hist}' has {s.shape[0]} points, "
                f"the channels summed with it {total_s.shape[0]}"
            )
        total_s = s if total_s is None else total_s + s
        total_i = rates[0] if total_i is None else total_i + rates[0]
        total_o = rates[1] if total_o is None else total_o + rates[1]
    return total_s, total_i, total_o


def _read_adc(base: Path, names: list[str], n: int) -> dict[str, np.ndarray]:
    """I0, I1 and acquisition time: per chunk file (same names as xspress3's), else the single
    file of the ADC folder. No ADC folder: none of them."""
    folder = next((base / d for d in _ADC_DIRS if (base / d).is_dir()), None)
    if folder is None:
        return {}
    if (folder / names[-1]).is_file():
        files, keys = [folder / name for name in names], _ADC_PER_FILE
    else:
        files, keys = _nxs_files(folder), _ADC_SINGLE
        if not files:
            raise FormatError(f"{folder}: no .nxs files (ADC counters of scan {base})")
    parts: dict[str, list[np.ndarray]] = {var: [] for var in _ADC_VARS}
    for path in files:
        if not path.is_file():
            raise FormatError(
                f"{path}: no such file (ADC counters for the xspress3 file of the same name)"
            )
        with H5Reader(path) as h5:
            for var, key in zip(_ADC_VARS, keys, strict=True):
                p = _find(h5, "entry/data", key)
                if p is None:
                    raise FormatError(f"{path}: dataset 'entry/data/{key}' is missing")
                parts[var].append(np.asarray(h5.read(p), dtype=np.float64).reshape(-1))
    out = {var: np.concatenate(arrays) for var, arrays in parts.items()}
    for var, key in zip(_ADC_VARS, keys, strict=True):
        if out[var].shape[0] != n:
            where = files[0] if len(files) == 1 else folder
            raise FormatError(
                f"{where}: dataset 'entry/data/{key}' has {out[var].shape[0]} points in all, "
                f"the scan has {n} spectra"
            )
    return out


# --- motors -------------------------------------------------------------------------------------


@dataclass
class _Encoders:
    """PiLC encoder positions, counter == 1 points only, by index, with their ``Name``."""

    folder: Path
    values: dict[int, np.ndarray]
    names: dict[int, str]

    def _motor(self, k: int) -> _Motor:
        return (
            self.names[k],
            self.values[k],
            f"{self.folder}: 'entry/data/encoder_{k}' (points with counter == 1)",
        )

    def named(self, name: str) -> _Motor | None:
        return next((self._motor(k) for k, n in self.names.items() if n == name), None)

    def index(self, k: int) -> _Motor | None:
        return self._motor(k) if k in self.values else None


def _read_pilc(base: Path) -> _Encoders | None:
    """The trigger files of the highest numbered ``pilctriggergenerator_0K`` folder with files."""
    for name in _PILC_DIRS:
        files = _nxs_files(base / name) if (base / name).is_dir() else []
        if files:
            break
    else:
        return None
    values: dict[int, list[np.ndarray]] = {}
    names: dict[int, str] = {}
    for i, path in enumerate(files):
        with H5Reader(path) as h5:
            if not h5.has("entry/data/counter"):
                raise FormatError(f"{path}: dataset 'entry/data/counter' is missing")
            keep = np.asarray(h5.read("entry/data/counter")).reshape(-1) == 1
            if i == 0:
                present = [k for k in range(10) if h5.has(f"entry/data/encoder_{k}")]
                names = {
                    k: str(h5.attrs(f"entry/data/encoder_{k}").get("Name", f"encoder_{k}"))
                    for k in present
                }
                values = {k: [] for k in present}
            for k in values:
                p = f"entry/data/encoder_{k}"
                if not h5.has(p):
                    raise FormatError(
                        f"{path}: dataset '{p}' is missing (the first trigger file has it)"
                    )
                enc = np.asarray(h5.read(p), dtype=np.float64).reshape(-1)
                if enc.shape != keep.shape:
                    raise FormatError(
                        f"{path}: dataset '{p}' has {enc.shape[0]} points, "
                        f"'entry/data/counter' has {keep.shape[0]}"
                    )
                values[k].append(enc[keep])
    return _Encoders(files[0].parent, {k: np.concatenate(v) for k, v in values.items()}, names)


def _read_logbook(base: Path) -> tuple[Path, dict[str, Any]] | None:
    """This scan's entry of ``<bt>/scan_logbook.txt`` (one dict literal per line), if any.

    Lines are parsed with :func:`ast.literal_eval`: anything but literals (a call, a name) is
    rejected, so a logbook cannot run code. Unreadable lines are skipped; the last entry whose
    ``['scan']['scan_prefix']`` is the scan name wins.
    """
    logbook = base.parent.parent / "scan_logbook.txt"
    if not logbook.is_file():
        return None
    found = None
    with open(logbook, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                entry = ast.literal_eval(line)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            scan = entry.get("scan") if isinstance(entry, dict) else None
            if isinstance(scan, dict) and scan.get("scan_prefix") == base.name:
                found = entry
    return (logbook, found) if found is not None else None


def _virtual_motor(
    logbook: tuple[Path, dict[str, Any]] | None, axis: str, name: str, encoders: _Encoders
) -> _Motor | None:
    """``sum_k c_k (enc_k - pivot_k) + pivot_0`` of the logbook's virtual motor of ``axis``."""
    if logbook is None:
        return None
    path, entry = logbook
    try:
        config = entry["axes"][axis]["virtual_motor_config"]
        pivots = [float(p) for p in config["pivot_points"]]
        members = [(str(m), float(v["contribution"])) for m, v in config["real_members"].items()]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    real = [encoders.named(m) for m, _ in members]
    if not members or len(pivots) < len(members) or any(r is None for r in real):
        return None
    if len({r[1].shape for r in real}) > 1:
        return None
    position = np.full(real[0][1].shape, pivots[0])
    for (_, contribution), pivot, (_, values, _) in zip(members, pivots, real, strict=False):
        position = position + contribution * (values - pivot)
    return name, position, f"{path}: virtual motor '{name}' of {encoders.folder}"


def _scan_data(h5: H5Reader, name: str) -> _Motor | None:
    p = f"scan/data/{name}"
    if not name or not h5.has(p):
        return None
    return name, np.asarray(h5.read(p), dtype=np.float64).reshape(-1), f"{h5.path}: dataset '{p}'"


def _read_motors(h5: H5Reader, base: Path, tokens: list[str], n: int) -> dict[str, _Motor]:
    """mot1 and mot2 (name, positions, source) by the precedence of spec 9.2."""
    kind = tokens[0]
    step1d = kind in ("ascan", "dscan")
    two_motors = len(tokens) > 6 and not step1d
    tok1 = tokens[1] if len(tokens) > 1 else ""
    tok5 = tokens[5] if two_motors else ""
    encoders = _read_pilc(base)
    if encoders is None:
        # Positions recorded by the scan itself (step scans, or continuous scans without PiLC);
        # a 1-D command has one motor, used for both.
        wanted = (
            ("timestamp", "timestamp")
            if kind == "timescan"
            else (tok1, tok5 if two_motors else tok1)
        )
        out = {}
        for var, name in zip(("mot1", "mot2"), wanted, strict=True):
            out[var] = _scan_data(h5, name)
            if out[var] is None:
                raise FormatError(
                    f"{h5.path}: dataset 'scan/data/{name}' is missing "
                    f"(motor {var} of '{' '.join(tokens)}')"
                )
    else:
        logbook = _read_logbook(base)

        def candidates(token: str, axis: str, k: int):
            # Encoder of that name, logbook virtual motor, (timescans) encoder k, the main
            # file's positions, the encoder of the stage's other name, encoder k.
            if token:
                yield encoders.named(token)
                yield _virtual_motor(logbook, axis, token, encoders)
            if kind == "timescan":
                yield encoders.index(k)
            if token:
                yield _scan_data(h5, token)
                if token in _ENCODER_ALIASES:
                    yield encoders.named(_ENCODER_ALIASES[token])
            yield encoders.index(k)

        mot1 = next((c for c in candidates(tok1, "axis0", 0) if c is not None), None)
        if mot1 is None:
            raise FormatError(
                f"{encoders.folder}: no encoder for motor '{tok1}' and no 'entry/data/encoder_0'"
            )
        mot2 = mot1
        if not step1d:
            same = (
                c
                for c in candidates(tok5, "axis1", 1)
                if c is not None and c[1].shape == mot1[1].shape
            )
            mot2 = next(same, mot1)  # a 1-D scan without a second encoder: mot2 follows mot1
        out = {"mot1": mot1, "mot2": mot2}
    for name, values, where in out.values():  # eager-ok: dict
        if values.shape[0] != n:
            raise FormatError(
                f"{where} has {values.shape[0]} points for motor '{name}', the scan has {n} spectra"
            )
    return out


# --- points to a map ----------------------------------------------------------------------------


def _pad(array: Any, total: int) -> Any:
    """``array`` (points, ...) zero-padded to ``total`` points (lazily for dask arrays)."""
    missing = total - array.shape[0]
    if missing <= 0:
        return array
    if isinstance(array, da.Array):
        zeros = da.zeros(
            (missing, *array.shape[1:]), dtype=array.dtype, chunks=(missing, *array.chunksize[1:])
        )
        return da.concatenate([array, zeros], axis=0)
    return np.concatenate([array, np.zeros((missing, *array.shape[1:]), dtype=array.dtype)])


def _extrapolate(motor: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """Fill unrecorded pixels of a (rows, columns) motor map from a least-squares plane
    ``a + b * row + c * column`` through the recorded ones: on a grid scan that is where the
    scan would have gone, so padded pixels neither sort to the front nor break the grid."""
    rows, cols = np.indices(motor.shape)
    ok = recorded
    design = np.column_stack([np.ones(ok.sum()), rows[ok], cols[ok]])
    coef, *_ = np.linalg.lstsq(design, motor[ok], rcond=None)
    out = motor.copy()
    out[~ok] = coef[0] + coef[1] * rows[~ok] + coef[2] * cols[~ok]
    return out


def _scan_map(points: _Points, readas1d: bool) -> xr.Dataset:
    """Reshape one scan's points to (rows, columns), padding a short scan; one row if 1-D."""
    n = points.spectra[0].shape[0]
    ndet = len(points.spectra)
    ydim, xdim = points.shape
    spectra = da.stack(points.spectra, axis=1).rechunk({1: -1})  # (points, detector, channel)
    pixel = {
        "icr": np.stack(points.icr, axis=1),
        "ocr": np.stack(points.ocr, axis=1),
        "present": np.ones((n, ndet), dtype=bool),
    }
    per_point = dict(points.counters)
    time_triggered = readas1d or n > ydim * xdim
    if time_triggered:
        # One row, chunks kept along the points (a whole-row chunk could be huge).
        def to_map(a):
            return a[None]

        shape = (1, n)
    else:
        shape = (ydim, xdim)
        if n < ydim * xdim:
            warnings.warn(
                f"{points.base}: {n} points, fewer than the {ydim} x {xdim} = {ydim * xdim} of "
                f"'{' '.join(points.tokens)}' (scan stopped?); "
                "spectra and counters padded with zeros "
                "('present' is False there), motors extrapolated from the recorded positions",
                XrfdaskWarning,
                stacklevel=3,
            )

        def to_map(a):
            return points_to_map(_pad(a, ydim * xdim), shape, str(points.base))

    data_vars: dict[str, Any] = {"spectra": (RAW_DIMS, to_map(spectra), with_attrs("spectra"))}
    for name, values in pixel.items():
        data_vars[name] = (PIXEL_DIMS, to_map(values), with_attrs(name))
    for name, values in per_point.items():
        data_vars[name] = (MAP_DIMS, to_map(values), with_attrs(name))
    recorded = np.asarray(to_map(pixel["present"][:, 0]))
    for var, (name, values, _) in points.motors.items():
        motor = np.asarray(to_map(values), dtype=np.float64)
        if not recorded.all():
            motor = _extrapolate(motor, recorded)
        data_vars[var] = (MAP_DIMS, motor, {"Name": name})
    coords = {
        "detector": [f"channel{k:02d}" for k in range(ndet)],
        "channel": np.arange(spectra.shape[-1]),
    }
    attrs = {
        "cmd": " ".join(points.tokens),
        "source_path": str(points.base),
        "time_triggered": bool(time_triggered),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _merge(maps: list[xr.Dataset]) -> xr.Dataset:
    """Concatenate scans along rows (along the points for time-triggered 1-D scans)."""
    if len(maps) == 1:
        return maps[0]
    triggered = {bool(m.attrs["time_triggered"]) for m in maps}
    if len(triggered) > 1:
        raise FormatError(
            "merging P06 scans: some are time-triggered (1-D) and some are maps; "
            "merge like with like"
        )
    dim = "x" if triggered.pop() else "y"
    across = "y" if dim == "x" else "x"
    first = maps[0]
    for m in maps[1:]:
        for d in (across, "channel"):
            if m.sizes[d] != first.sizes[d]:
                raise FormatError(
                    f"merging P06 scans along {dim}: {m.attrs['source_path']} "
                    f"has {m.sizes[d]} along {d}, "
                    f"{first.attrs['source_path']} has {first.sizes[d]}"
                )
        if set(m.data_vars) != set(first.data_vars):
            raise FormatError(
                f"merging P06 scans: {m.attrs['source_path']} has variables {sorted(m.data_vars)}, "
                f"{first.attrs['source_path']} has {sorted(first.data_vars)}"
            )
    return xr.concat(
        maps,
        dim=dim,
        data_vars="all",
        coords="minimal",
        compat="override",
        join="override",
        combine_attrs="override",
    )
