"""Fuzzing of xrfdask's input readers with mutated files (issue 14; not run in CI).

Feeds mutated inputs to the public readers and counts what happens, per input kind:

- ``.GeoPIXE`` maps (default 10,000): :func:`xrfdask.open_geopixe` (random chunking, index cache
  on or off), then every way the package reads the data: the dense spectra, the dask sum over
  pixels, the fast sparse sum the fit uses, pixel totals and weighted sums (dead-time statistics,
  colour maps), the fit's trimmed channel blocks, ``deadtime`` and ``present``; and
  :func:`xrfdask.index_geopixe`. Bases: the shared sample and five small synthetic maps (one,
  two and three detectors, an empty record, saturated counts, repeated ``Detector`` blocks, a
  header without ``Dets`` and ``Chan``, the example map as xrfdask's writer writes it).
  Mutations: bit flips and byte changes anywhere, in the JSON header or in record headers (tag,
  length, x, y, detector, deadtime), channel/count pairs, header fields (Xres, Yres, Chan, Dets,
  Gain... set to wrong types and values, deleted, repeated), the length field, truncation,
  inserted and deleted bytes, duplicated, swapped, deleted, emptied and surplus records, huge
  and zero lengths, empty and near-empty files, and no change at all.
- uniform-layout ``.h5`` files (1,000): :func:`xrfdask.open_h5` of ``raw`` or a result group
  (``fit``, ``norm``, ``quant``, ``detlim``, ``elyield``), every variable computed, the spectra
  summed (dask and the fast chunk path), the stored sum spectrum and the fit's channel blocks.
  Bases: xrf_proc's own groups (``tests/data/xrf_proc_groups.h5``), ``xd.to_h5`` of the example
  map, an h5py-written xrf_proc-style map and a 1-D scan. Mutations: datasets and groups
  deleted, reshaped (axes added, dropped, resized, emptied, transposed, scalar), retyped (float
  with NaN/inf, int8, uint64, bool, strings, complex, compound), filled with NaN/negative/huge
  values, turned into groups (and groups into datasets), dangling/soft/external links, renamed
  channel groups, extra groups, broken attributes (xrfdask's JSON attrs, detector labels,
  energy calibration, motor names), other storage (contiguous, lzf, fletcher32, scale-offset,
  unallocated chunks), and byte-level damage: bit flips, overwritten runs, truncation, junk.
- ``.cnc`` concentration files (1,000): :func:`xrfdask.read_cnc` then the detection limits'
  reference concentrations (``xrfdask.detlim.limits.reference_concentrations``) and
  ``Cnc.to_dataset``. Bases: every shared ``.cnc`` file. Mutations: lines deleted, duplicated,
  swapped; numbers replaced by garbage, negative, NaN, inf, huge, unicode digits; the element
  count changed (to huge too); Z out of range or repeated; truncation; invalid UTF-8, NUL bytes,
  a BOM, CRLF and lone CR line ends, spaces for tabs; empty and binary files.
- PyMca ``.cfg`` configurations (1,000): ``load_config`` + ``validate_config`` (what ``xd.fit``
  runs before anything else), PyMca's own configuration step (``check_with_pymca``), and for about
  40 % of them (half; 15 % with method "full") ``xd.fit`` of a 2-pixel map with the file. Bases:
  the hand-edited shipped ``McaTheory.cfg`` of the tests, ``xd.make_fit_config``'s output, PyMca's
  shipped file as it is. Mutations (mostly in ``[fit]``, ``[detector]``, ``[peaks]``,
  ``[attenuators]``, ``[multilayer]``, ``[concentrations]``, ``[peakshape]``): lines and section
  headers deleted or duplicated, values replaced by garbage, wrong types, lists, NaN/inf, negative
  or perturbed numbers, keys renamed, unknown elements and shells, broken attenuator entries,
  truncation, junk bytes.

Every case is reproducible: case ``i`` of a kind draws everything from
``numpy.random.default_rng([seed, kind, i])``, whatever the number of workers.

Outcomes
--------
``ok``; ``ok+warning:<W>`` (``W`` the XrfdaskWarning subclasses emitted); ``XrfdaskError:<E>``.
Anything else is ``UNEXPECTED:<what>`` and makes the exit status 1:

- ``UNEXPECTED:<ExceptionType>``: another exception escaped (a numpy IndexError, a KeyError,
  h5py's OSError...), listed with where it was raised;
- ``UNEXPECTED:warning:<W>``: a warning that is not an XrfdaskWarning (not documented);
- ``UNEXPECTED:message:<E>``: an XrfdaskError whose message is not one line naming the file
  (``.cfg`` errors name the key instead, so they are exempt from naming the file);
- ``UNEXPECTED:wrong-data``: the reader succeeded with data that is not correct (below);
- ``UNEXPECTED:timeout``: a case ran longer than ``--case-timeout`` seconds.

Informational: ``rejected, reference reads it`` counts XrfdaskErrors on inputs the reference
decoder reads; not a failure by the issue's rule, but listed, since refusing a good file is a
bug too.

What "correct data" means
-------------------------
``.GeoPIXE``: the format has no checksum, so a changed count, deadtime or pair that still obeys
the format *is* the data: no reader can tell. Correct therefore means "exactly what the format
says these bytes hold". A reference decoder in this script (``struct`` and numpy, written from
spec ``geopixe.md`` section 1, sharing no code with xrfdask) walks the mutated bytes: the
header length and JSON (Xres, Yres, Chan, Dets, Gain), the detector count from the records of
the first pixel, then every record in file order: tag ``DP``, length 16 + 4k with k <= Chan,
the x, y and detector its position in the file requires, channels strictly ascending and below
Chan; a record after Xres x Yres x detectors is surplus (an error) and an incomplete trailing
record is dropped. When xrfdask succeeds, its result must equal the reference's exactly: the
sizes (rows present, Xres, detectors, Chan), every spectrum (missing pixels zero), the deadtime
bits, the ``present`` mask, the dask sum and the fast sums, pixel totals, weighted sums, the
fit's channel blocks, and the index's offsets, lengths and deadtimes; a TruncatedMapWarning
must come exactly when the reference finds the map incomplete; and a file whose bytes are those
of its base must give the base's truth (the published dense array of the sample, the synthetic
arrays) with no warning at all. So every record whose bytes were not touched decodes to its true
spectrum at its true place: ReadoutXFM's silent shift after a missing record cannot pass.

``.h5``: the reference is h5py reading the datasets the layout (spec ``xrf_proc.md`` section 1)
maps to each variable: every value xrfdask returns must equal h5py's (NaN equal to NaN) for
every detector, lines matched by name in result groups, and h5py must be able to read what
xrfdask returned; sums equal h5py's (float64, 1e-9 relative; a sum of stored 1e308 values
overflowing to inf is numpy's arithmetic, so overflow warnings are off for the sums); a stored
sum spectrum xrfdask uses must be the one stored. When HDF5 contradicts itself (a damaged chunk
tree listing a chunk its own lookup does not find), h5py's lookup is taken as the truth.

``.cnc``: the reference is a short parser of spec ``xrf_proc.md`` section 2 (tab-separated,
empty fields dropped, n element rows): a successful ``read_cnc`` must equal it in name,
density, mass, thickness, Z, concentrations and errors; the reference concentrations built from
it must be finite where positive (NaN only with the documented warning).

``.cfg``: a configuration has no truth to compare with, so correct means self-consistent: the
normalised configuration validates again to itself and survives its ``.cfg`` text round trip
(``config_to_text``, ``config_from_text``, ``validate_config``) unchanged (but for junk keys
holding '%', which PyMca's own ``ConfigDict`` does not read back as it writes them); it keeps
the file's elements and fit range unless a warning names the key; and ``xd.fit`` returns peak
areas (y, x, detector, line) without inf, for lines of the configuration.

Usage::

    python benchmarks/fuzz_inputs.py                      # the issue's counts, 2 workers
    python benchmarks/fuzz_inputs.py --quick              # 300/60/60/40 cases
    python benchmarks/fuzz_inputs.py --geopixe 500 --h5 0 --cnc 0 --cfg 0 --seed 3 \\
        --workers 1 --keep-failures /tmp/fuzz-failures

Exit status: 0 if every outcome is allowed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XRFDASK_SHARED", REPO.parent / "shared"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.geopixe_files, tests/fit's configurations

KINDS = ("geopixe", "h5", "cnc", "cfg")
DEFAULT_COUNTS = {"geopixe": 10_000, "h5": 1_000, "cnc": 1_000, "cfg": 1_000}
QUICK_COUNTS = {"geopixe": 300, "h5": 60, "cnc": 60, "cfg": 40}
EXAMPLES_SHOWN = 5  # unexpected (and rejected-but-readable) examples printed per outcome


class WrongData(AssertionError):
    """The reader succeeded, but its data is not what the input holds."""


class CaseTimeout(Exception):
    """A case ran past its time limit."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise WrongData(message)


@dataclass
class Case:
    """One mutated input: what it was made from and how, and where it lies."""

    base: str
    mutation: str
    path: str
    data: bytes | None = None  # the input's bytes, kept for --keep-failures
    note: dict[str, Any] = field(default_factory=dict)  # kind-specific (reference result...)


@dataclass
class Result:
    kind: str
    index: int
    base: str
    mutation: str
    outcome: str
    message: str = ""
    where: str = ""
    reference_reads: bool = False  # an XrfdaskError although the reference reads the input
    data: bytes | None = None
    suffix: str = ""
    seconds: float = 0.0


# --- outcome classification ------------------------------------------------------------------


def _where(tb) -> str:
    """Innermost frame of the traceback inside xrfdask (else the innermost), as file:line func."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return "?"
    inside = [f for f in frames if f"{os.sep}xrfdask{os.sep}" in f.filename]
    frame = (inside or frames)[-1]
    name = frame.filename
    for root in (str(REPO) + os.sep, sys.prefix + os.sep):
        if name.startswith(root):
            name = name[len(root) :]
    return f"{name}:{frame.lineno} {frame.name}"


def attempt(run, file_name: str | None) -> tuple[str, str, str]:
    """Run ``run()`` and classify what happened: (outcome, message, where)."""
    from xrfdask.errors import XrfdaskError, XrfdaskWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run(caught)
        except XrfdaskError as exc:
            message = str(exc)
            name = type(exc).__name__
            if "\n" in message.strip() or (file_name and file_name not in message):
                return f"UNEXPECTED:message:{name}", message, _where(exc.__traceback__)
            others = [w for w in caught if not issubclass(w.category, XrfdaskWarning)]
            if others:
                w = others[0]
                return (
                    f"UNEXPECTED:warning:{w.category.__name__}",
                    str(w.message),
                    f"{w.filename}:{w.lineno}",
                )
            return f"XrfdaskError:{name}", message, _where(exc.__traceback__)
        except WrongData as exc:
            return "UNEXPECTED:wrong-data", str(exc), _where(exc.__traceback__)
        except CaseTimeout as exc:
            return "UNEXPECTED:timeout", str(exc), _where(exc.__traceback__)
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            message = " ".join(str(exc).split())[:300]
            return f"UNEXPECTED:{type(exc).__name__}", message, _where(exc.__traceback__)
    others = [w for w in caught if not issubclass(w.category, XrfdaskWarning)]
    if others:
        w = others[0]
        return (
            f"UNEXPECTED:warning:{w.category.__name__}",
            " ".join(str(w.message).split())[:300],
            f"{w.filename}:{w.lineno}",
        )
    names = sorted({w.category.__name__ for w in caught})
    return ("ok+warning:" + ",".join(names) if names else "ok"), "", ""


# --- .GeoPIXE ---------------------------------------------------------------------------------

_RECORD = struct.Struct("<2sI3HI")  # tag, length, x, y, detector, deadtime (float32 bits)


class RefError(Exception):
    """The reference decoder finds the input broken."""


class _Dups(list):
    """A JSON key given more than once in one object (its values, in order)."""


def _keep_dups(pairs):
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            previous = out[key]
            out[key] = (
                previous + [value] if isinstance(previous, _Dups) else _Dups([previous, value])
            )
        else:
            out[key] = value
    return out


def _has_dups(obj, top=True) -> bool:
    """A repeated key anywhere but the top-level ``Detector`` (xrfdask warns about those)."""
    if isinstance(obj, dict):
        return any(
            (isinstance(v, _Dups) and not (top and k == "Detector")) or _has_dups(v, False)
            for k, v in obj.items()
        )
    if isinstance(obj, list):
        return any(_has_dups(v, False) for v in obj)
    return False


def _integer(value, lo, hi) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RefError(f"not an integer: {value!r}")
    if value != int(value) or not lo <= value <= hi:
        raise RefError(f"{value!r} outside {lo}..{hi}")
    return int(value)


@dataclass
class RefMap:
    """What a ``.GeoPIXE`` file holds, by the reference decoder."""

    xres: int
    yres: int
    chan: int
    ndet: int
    gain_ev: float
    offsets: list[int]
    lengths: list[int]
    dt_bits: list[int]
    pairs: list[tuple[np.ndarray, np.ndarray]]  # (channels, counts) of each record
    dropped: bool  # an incomplete trailing record was dropped
    dets_warning: bool  # fewer detector records per pixel than the header's Dets
    dup_warning: bool  # a repeated header key other than Detector
    bad_body: str | None = None  # a record whose channels break the format (found on decoding)
    bad_record: int | None = None  # its number

    @property
    def n(self) -> int:
        return len(self.offsets)

    @property
    def n_expected(self) -> int:
        return self.xres * self.yres * self.ndet

    @property
    def nrows(self) -> int:
        return -(-self.n // (self.xres * self.ndet))

    @property
    def incomplete(self) -> bool:
        return self.dropped or self.n < self.n_expected

    def dense_size(self) -> int:
        return self.nrows * self.xres * self.ndet * self.chan

    def dense(self) -> np.ndarray:
        out = np.zeros((self.nrows * self.xres, self.ndet, self.chan), dtype=np.uint16)
        for k, (ch, ct) in enumerate(self.pairs):
            out[k // self.ndet, k % self.ndet, ch] = ct
        return out.reshape(self.nrows, self.xres, self.ndet, self.chan)

    def present(self) -> np.ndarray:
        mask = np.zeros(self.nrows * self.xres * self.ndet, dtype=bool)
        mask[: self.n] = True
        return mask.reshape(self.nrows, self.xres, self.ndet)

    def deadtime_bits(self) -> np.ndarray:
        out = np.zeros(self.nrows * self.xres * self.ndet, dtype=np.uint32)
        out[: self.n] = self.dt_bits
        return out.reshape(self.nrows, self.xres, self.ndet)

    def sums(self) -> np.ndarray:
        out = np.zeros((self.ndet, self.chan), dtype=np.float64)
        for k, (ch, ct) in enumerate(self.pairs):
            out[k % self.ndet, ch] += ct
        return out

    def totals(self) -> np.ndarray:
        out = np.zeros(self.nrows * self.xres * self.ndet, dtype=np.int64)
        for k, (_, ct) in enumerate(self.pairs):
            out[k] = int(ct.sum(dtype=np.int64))
        return out.reshape(self.nrows, self.xres, self.ndet)


def ref_header(data: bytes) -> tuple[int, dict, bool]:
    """(H, File Header fields, repeated keys) of a ``.GeoPIXE`` file, or RefError."""
    if len(data) < 2:
        raise RefError("no header length")
    (h,) = struct.unpack_from("<H", data, 0)
    if 2 + h > len(data):
        raise RefError("header runs past the end")
    try:
        fields = json.loads(data[2 : 2 + h].decode("utf-8"), object_pairs_hook=_keep_dups)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RefError(f"header JSON: {exc}") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("File Header"), dict):
        raise RefError("no File Header object")
    if data[2 + h : 2 + h + 2] != b"DP":
        raise RefError("no record after the header")
    return h, fields, _has_dups(fields)


def ref_decode(data: bytes, ndet: int | None = None) -> RefMap:
    """Decode a ``.GeoPIXE`` file from spec geopixe.md section 1 (``ndet``: take this count)."""
    h, fields, dups = ref_header(data)
    fh = fields["File Header"]
    xres = _integer(fh.get("Xres"), 1, 65536)
    yres = _integer(fh.get("Yres"), 1, 65536)
    chan = _integer(fh.get("Chan", 4096), 1, 65536)
    dets = fh.get("Dets")
    if dets is not None:
        dets = _integer(dets, 1, 65536)  # a record's detector field is a uint16
    gain = fh.get("Gain (eV)", 10.0)
    try:  # a number, or a string holding one ("10.0"): both say the gain
        gain = float(gain) if not isinstance(gain, bool) else None
    except (TypeError, ValueError):
        gain = None
    if gain is None or not (math.isfinite(gain) and 0 < gain <= 1e12):
        raise RefError(f"gain {fh.get('Gain (eV)')!r}")
    size, start = len(data), 2 + h
    # Detectors: the records of the first pixel (x = y = 0, detector 0, 1, ...).
    found, pos, at_eof = 0, start, False
    while found <= 256:
        if pos + 16 > size:
            at_eof = True
            break
        tag, length, x, y, d, _ = _RECORD.unpack_from(data, pos)
        if tag != b"DP" or (x, y) != (0, 0) or d != found or length < 16:
            break
        if pos + length > size:
            at_eof = True
            break
        found += 1
        pos += length
    dets_warning = False
    if ndet is None:
        if found == 0:
            ndet = dets or 1
        elif dets is None:
            ndet = found
        elif found > dets:
            raise RefError("more detector records than Dets")
        elif found < dets and not at_eof:
            ndet, dets_warning = found, True
        else:
            ndet = dets
    else:  # the reader's count: must be one the rule allows
        allowed = {found} if found else {dets or 1}
        if dets is not None and (at_eof or found == 0):
            allowed.add(dets)
        if ndet not in allowed or (dets is not None and found > dets):
            raise RefError(f"{ndet} detectors; the records of pixel (0, 0) give {allowed}")
        dets_warning = dets is not None and found < dets and not at_eof
    n_expected = xres * yres * ndet
    offsets, lengths, dt_bits, pairs = [], [], [], []
    pos, k, dropped, bad_body, bad_record = start, 0, False, None, None
    while pos < size:
        if k == n_expected:
            raise RefError(f"surplus record at {pos}")
        if pos + 16 > size:
            dropped = True
            break
        tag, length, x, y, d, bits = _RECORD.unpack_from(data, pos)
        if tag != b"DP":
            raise RefError(f"tag at {pos}")
        if length < 16 or (length - 16) % 4 or length > 16 + 4 * chan:
            raise RefError(f"length {length} at {pos}")
        pixel = k // ndet
        if (x, y, d) != (pixel % xres, pixel // xres, k % ndet):
            raise RefError(f"record at {pos} holds ({x}, {y}, {d})")
        if pos + length > size:
            dropped = True
            break
        body = np.frombuffer(data, dtype="<u2", count=(length - 16) // 2, offset=pos + 16)
        channels, counts = body[0::2].astype(np.int64), body[1::2].astype(np.uint16)
        if channels.size and (channels.max() >= chan or np.any(np.diff(channels) <= 0)):
            if bad_body is None:
                bad_body, bad_record = f"channels of the record at {pos}", k
            channels, counts = channels[:0], counts[:0]
        offsets.append(pos)
        lengths.append(length)
        dt_bits.append(bits)
        pairs.append((channels, counts))
        pos += length
        k += 1
    if k == 0:
        raise RefError("no complete record")
    return RefMap(
        xres, yres, chan, ndet, float(gain), offsets, lengths, dt_bits, pairs, dropped,
        dets_warning, dups, bad_body, bad_record,
    )  # fmt: skip


@dataclass
class GeoBase:
    name: str
    data: bytes
    truth: np.ndarray  # (y, x, detector, channel) uint16
    weight: float


def _synthetic_bases() -> list[GeoBase]:
    from tests import geopixe_files as gf

    bases = []
    spectra, deadtime = gf.random_map((4, 5, 2, 48), seed=7, density=0.4)
    bases.append(GeoBase("small-2det", gf.build(spectra, deadtime)[0], spectra, 3.0))
    spectra, _ = gf.random_map((3, 4, 1, 32), seed=11, density=0.5)
    data = gf.build(spectra, np.zeros((3, 4, 1), np.float32))[0]
    bases.append(GeoBase("small-1det-dt0", data, spectra, 2.0))
    spectra, deadtime = gf.random_map((2, 3, 3, 64), seed=13, density=0.3)
    spectra[0, 1, 2, :] = 0  # an empty record (L = 16)
    spectra[1, 2, 0, [3, 40]] = 65535  # saturated channels
    fields = gf.header_fields(3, 2, 3, 64)
    detectors = [{"Idx": d, "Type": 5, "Elt": 14, "Thick (mm)": 0.45} for d in range(3)]
    data = gf.build(spectra, deadtime, fields=fields, detectors=detectors)[0]
    bases.append(GeoBase("small-3det-empty-record", data, spectra, 2.0))
    spectra, deadtime = gf.random_map((2, 2, 2, 4096), seed=17, density=0.01)
    fields = gf.header_fields(2, 2, 2, 4096)
    del fields["File Header"]["Dets"], fields["File Header"]["Chan"]
    data = gf.build(spectra, deadtime, fields=fields)[0]
    bases.append(GeoBase("small-no-dets-no-chan", data, spectra, 1.0))
    return bases


def geopixe_bases(workdir: Path) -> list[GeoBase]:
    import xrfdask as xd

    sample = (SHARED / "data" / "ts2_01_sub_export.GeoPIXE").read_bytes()
    dense = np.load(SHARED / "data" / "ts2_01_sub_export_data.npy").reshape(10, 20, 2, 4096)
    bases = [GeoBase("sample", sample, dense, 3.0)]
    bases += _synthetic_bases()
    path = xd.datasets.example_geopixe(workdir / "example.GeoPIXE", shape=(5, 6))
    example = xd.datasets.example_dataset(shape=(5, 6))
    bases.append(GeoBase("example-writer", path.read_bytes(), example.spectra.values, 1.0))
    for base in bases:  # the reference decoder must reproduce every truth
        ref = ref_decode(base.data)
        assert not ref.incomplete and np.array_equal(ref.dense(), base.truth), base.name
    return bases


def _lenient_records(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(start of records, [(offset, length)]) following lengths while they look like records."""
    if len(data) < 2:
        return 0, []
    start = 2 + struct.unpack_from("<H", data, 0)[0]
    pos, records = start, []
    while pos + 16 <= len(data) and data[pos : pos + 2] == b"DP":
        length = struct.unpack_from("<I", data, pos + 2)[0]
        if length < 16 or pos + length > len(data):
            break
        records.append((pos, length))
        pos += length
    return start, records


# fmt: off
_GARBAGE_JSON = [
    0, -1, 1, 2, 65535, 65536, 65537, 2**31, 2**63, 1.5, 0.0, 1e308, -1e308, "20", "", None, True,
    False, [], {}, [1, 2], {"a": 1}, float("nan"), float("inf"), "Infinity", "NaN", 1e-300,
]
# fmt: on
# fmt: off
_HEADER_KEYS = [
    "Xres", "Yres", "Chan", "Dets", "Gain (eV)", "Width (mm)", "Height (mm)", "Dwell (mS)",
    "Deadtime (%)", "Timestamp",
]
# fmt: on


def _header_fields_of(data: bytes, base: GeoBase) -> tuple[int, dict]:
    """(current H, header dict) from the mutated bytes, else from the base."""
    try:
        h, fields, _ = ref_header(data)
        if not _has_dups(fields) and not isinstance(fields.get("Detector"), _Dups):
            return h, fields
    except RefError:
        pass
    h = struct.unpack_from("<H", base.data, 0)[0]
    if len(data) >= 2:
        cur = struct.unpack_from("<H", data, 0)[0]
        h = cur if 2 + cur <= len(data) else h
    return h, json.loads(base.data[2 : 2 + struct.unpack_from("<H", base.data, 0)[0]])


def _splice_header(data: bytes, h_old: int, text: bytes, fix_length: bool, rng) -> bytes:
    length = len(text) if fix_length else int(rng.integers(0, 65536))
    return struct.pack("<H", min(length, 65535)) + text + data[2 + h_old :]


def _mut_geopixe(data: bytearray, base: GeoBase, rng) -> tuple[bytearray, str]:
    """One mutation of a .GeoPIXE file's bytes: (new bytes, description)."""
    size = len(data)
    start, records = _lenient_records(bytes(data))
    ops = (
        "bitflip byte header_json_byte length_field record_field record_field record_field pair "
        "truncate insert delete dup_record swap_records del_record surplus header_value "
        "header_value header_text tiny_file noop empty_record"
    ).split()
    op = ops[int(rng.integers(len(ops)))]
    if op == "bitflip" and size:
        pos = int(rng.integers(size))
        bit = int(rng.integers(8))
        data[pos] ^= 1 << bit
        return data, f"bitflip({pos}:{bit})"
    if op == "byte" and size:
        pos = int(rng.integers(size))
        n = int(rng.choice([1, 1, 2, 4, 8]))
        for p in range(pos, min(size, pos + n)):
            data[p] = int(rng.integers(256))
        return data, f"bytes({pos}+{n})"
    if op == "header_json_byte" and start > 2 and start <= size:
        pos = int(rng.integers(2, start))
        value = int(rng.choice([ord(c) for c in '{}[]",:0123456789.-eE \t\n\\a']))
        if rng.random() < 0.3:
            value = int(rng.integers(256))
        data[pos] = value
        return data, f"header_byte({pos}={value})"
    if op == "length_field" and size >= 2:
        h = struct.unpack_from("<H", data, 0)[0]
        new = int(
            rng.choice(
                [
                    h - 1,
                    h + 1,
                    h - 2,
                    h + 2,
                    h + 4,
                    h - 16,
                    h + 16,
                    0,
                    1,
                    65535,
                    int(rng.integers(65536)),
                ]
            )
        )
        new = min(max(new, 0), 65535)
        struct.pack_into("<H", data, 0, new)
        return data, f"header_length({h}->{new})"
    if (
        op in ("record_field", "pair", "dup_record", "swap_records", "del_record", "empty_record")
        and records
    ):
        k = int(rng.integers(len(records)))
        pos, length = records[k]
        if op == "record_field":
            which = str(rng.choice(["tag", "length", "x", "y", "det", "deadtime"]))
            if which == "tag":
                new = bytes(rng.choice([b"PD", b"DQ", b"\x00\x00", b"dp", b"DP"]))
                data[pos : pos + 2] = new
                return data, f"record{k}.tag={new!r}"
            if which == "length":
                chan = 4096 if base.truth.shape[3] == 4096 else base.truth.shape[3]
                choices = [
                    0,
                    1,
                    15,
                    16,
                    17,
                    length - 4,
                    length + 4,
                    length - 1,
                    length + 2,
                    length * 2,
                    16 + 4 * chan,
                    16 + 4 * chan + 4,
                    0xFFFFFFFF,
                    0x80000000,
                    0xFFFFFFF0,
                    int(rng.integers(2**32)),
                ]
                new = int(choices[int(rng.integers(len(choices)))]) % 2**32
                struct.pack_into("<I", data, pos + 2, new)
                return data, f"record{k}.length({length}->{new})"
            offset = {"x": 6, "y": 8, "det": 10}.get(which)
            if offset is not None:
                old = struct.unpack_from("<H", data, pos + offset)[0]
                new = int(
                    rng.choice(
                        [
                            old + 1,
                            old - 1,
                            0,
                            1,
                            2,
                            0xFFFF,
                            int(rng.integers(65536)),
                            old + 20,
                            old - 20,
                        ]
                    )
                )
                new %= 65536
                struct.pack_into("<H", data, pos + offset, new)
                return data, f"record{k}.{which}({old}->{new})"
            value = float(rng.choice([np.nan, np.inf, -np.inf, -1.0, 100.0, 1e30, 0.0, 150.0]))
            if rng.random() < 0.3:
                struct.pack_into("<I", data, pos + 12, int(rng.integers(2**32)))
                return data, f"record{k}.deadtime=bits"
            struct.pack_into("<f", data, pos + 12, value)
            return data, f"record{k}.deadtime={value}"
        if op == "pair":
            npairs = (length - 16) // 4
            if npairs == 0:
                return data, f"record{k}.pair(none)"
            j = int(rng.integers(npairs))
            p = pos + 16 + 4 * j
            channel, count = struct.unpack_from("<HH", data, p)
            chan = base.truth.shape[3]
            if rng.random() < 0.6:
                prev = struct.unpack_from("<H", data, p - 4)[0] if j else 0
                new = int(
                    rng.choice(
                        [
                            chan,
                            chan + 1,
                            0xFFFF,
                            prev,
                            max(prev - 1, 0),
                            channel + 1,
                            int(rng.integers(65536)),
                        ]
                    )
                )
                struct.pack_into("<H", data, p, new % 65536)
                return data, f"record{k}.pair{j}.channel({channel}->{new})"
            new = int(rng.choice([0, 1, 65535, int(rng.integers(65536))]))
            struct.pack_into("<H", data, p + 2, new)
            return data, f"record{k}.pair{j}.count({count}->{new})"
        record = bytes(data[pos : pos + length])
        if op == "dup_record":
            where = records[int(rng.integers(len(records)))][0] if rng.random() < 0.3 else pos
            data[where:where] = record
            return data, f"duplicate_record({k}@{where})"
        if op == "swap_records":
            j = (
                min(k + 1, len(records) - 1)
                if rng.random() < 0.6
                else int(rng.integers(len(records)))
            )
            if j == k:
                return data, "swap_records(same)"
            (a, la), (b, lb) = sorted([records[k], records[j]])
            ra, rb = bytes(data[a : a + la]), bytes(data[b : b + lb])
            data[b : b + lb] = ra
            data[a : a + la] = rb
            return data, f"swap_records({k},{j})"
        if op == "del_record":
            del data[pos : pos + length]
            return data, f"delete_record({k})"
        # empty_record: same place, no pairs (L = 16)
        data[pos : pos + length] = record[:2] + struct.pack("<I", 16) + record[6:16]
        return data, f"empty_record({k})"
    if op == "truncate":
        mode = str(rng.choice(["any", "boundary", "record_header", "json"]))
        if mode == "boundary" and records:
            cut = records[int(rng.integers(len(records)))][0]
        elif mode == "record_header" and records:
            cut = records[int(rng.integers(len(records)))][0] + int(rng.integers(1, 16))
        elif mode == "json" and start > 2:
            cut = int(rng.integers(0, start))
        else:
            cut = int(rng.integers(size + 1))
        del data[cut:]
        return data, f"truncate({mode}@{cut})"
    if op == "insert":
        n = int(rng.choice([1, 2, 3, 4, 16, int(rng.integers(1, 65))]))
        pos = (
            records[int(rng.integers(len(records)))][0]
            if records and rng.random() < 0.5
            else (int(rng.integers(size + 1)))
        )
        data[pos:pos] = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        return data, f"insert({pos}+{n})"
    if op == "delete" and size:
        n = int(rng.choice([1, 2, 3, 4, 16, int(rng.integers(1, 65))]))
        pos = (
            records[int(rng.integers(len(records)))][0]
            if records and rng.random() < 0.5
            else (int(rng.integers(size)))
        )
        del data[pos : pos + n]
        return data, f"delete({pos}+{n})"
    if op == "surplus":
        how = str(rng.choice(["copy_last", "junk", "next_row", "zeros"]))
        if how == "copy_last" and records:
            p, length = records[-1]
            data += data[p : p + length]
        elif how == "next_row" and records:
            p, length = records[-1]
            rec = bytearray(data[p : p + length])
            y = struct.unpack_from("<H", rec, 8)[0]
            struct.pack_into("<HHH", rec, 6, 0, y + 1, 0)
            data += rec
        elif how == "zeros":
            data += bytes(int(rng.integers(1, 40)))
        else:
            data += bytes(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8))
        return data, f"surplus({how})"
    if op in ("header_value", "header_text"):
        h, fields = _header_fields_of(bytes(data), base)
        if op == "header_value":
            fields = copy.deepcopy(fields)
            fh = fields.get("File Header")
            target = str(rng.choice(["file_header", "file_header", "file_header", "blocks"]))
            if target == "blocks" or not isinstance(fh, dict):
                key = str(rng.choice(["X-ray Source", "Detector", "File Header"]))
                value = _GARBAGE_JSON[int(rng.integers(len(_GARBAGE_JSON)))]
                if rng.random() < 0.3:
                    fields.pop(key, None)
                    desc = f"header.del({key})"
                else:
                    fields[key] = value
                    desc = f"header.{key}={value!r}"
            else:
                key = _HEADER_KEYS[int(rng.integers(len(_HEADER_KEYS)))]
                if rng.random() < 0.15:
                    fh.pop(key, None)
                    desc = f"header.del({key})"
                else:
                    old = fh.get(key)
                    near = (
                        [old + 1, old - 1, old * 2, float(old), old + 0.5]
                        if isinstance(old, int | float) and not isinstance(old, bool)
                        else []
                    )
                    pool = _GARBAGE_JSON + near
                    value = pool[int(rng.integers(len(pool)))]
                    fh[key] = value
                    desc = f"header.{key}({old!r}->{value!r})"
            text = json.dumps(fields, indent="\t").encode()
            return bytearray(_splice_header(bytes(data), h, text, rng.random() < 0.9, rng)), desc
        text = json.dumps(fields, indent="\t")
        how = str(rng.choice(["dup_key", "delete_char", "insert_char", "unicode", "bom"]))
        if how == "dup_key":
            key = _HEADER_KEYS[int(rng.integers(len(_HEADER_KEYS)))]
            i = text.find('"File Header": {')
            if i >= 0:
                i += len('"File Header": {')
                text = text[:i] + f'\n\t\t"{key}": 7,' + text[i:]
        elif how == "delete_char" and text:
            i = int(rng.integers(len(text)))
            text = text[:i] + text[i + 1 :]
        elif how == "insert_char":
            i = int(rng.integers(len(text) + 1))
            text = text[:i] + str(rng.choice(list('{}[]",:0-\\'))) + text[i:]
        elif how == "unicode":
            i = int(rng.integers(len(text) + 1))
            text = (
                text[:i]
                + str(rng.choice(["\u00b5", "\u00b0", "\ufeff", "\x00", "\ud7ff"]))
                + (text[i:])
            )
        else:
            text = "\ufeff" + text
        raw = text.encode("utf-8", errors="surrogatepass")
        return bytearray(_splice_header(bytes(data), h, raw, rng.random() < 0.9, rng)), (
            f"header_text({how})"
        )
    if op == "tiny_file":
        how = str(rng.choice(["empty", "one", "length_only", "header_only", "header_dp"]))
        h = struct.unpack_from("<H", base.data, 0)[0]
        header = base.data[: 2 + h]
        new = {
            "empty": b"",
            "one": base.data[:1],
            "length_only": base.data[:2],
            "header_only": header,
            "header_dp": header + b"DP",
        }[how]
        return bytearray(new), f"tiny({how})"
    if op == "noop" and size:
        pos = int(rng.integers(size))
        data[pos] = data[pos]
        return data, "noop"
    return data, f"{op}(skipped)"


def _geopixe_case(rng, workdir: Path, bases: list[GeoBase], stem: str) -> Case:
    weights = np.array([b.weight for b in bases])
    base = bases[int(rng.choice(len(bases), p=weights / weights.sum()))]
    data = bytearray(base.data)
    descs = []
    for _ in range(int(rng.choice([1, 1, 1, 1, 1, 1, 2, 2, 2, 3]))):
        data, desc = _mut_geopixe(data, base, rng)
        descs.append(desc)
    path = workdir / f"{stem}.GeoPIXE"
    data = bytes(data)
    path.write_bytes(data)
    return Case(base.name, "+".join(descs), str(path), data, {"base": base})


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> None:
    expect(got.shape == want.shape, f"{name}: shape {got.shape}, reference {want.shape}")
    if not np.array_equal(got, want, equal_nan=got.dtype.kind in "fc" and want.dtype.kind in "fc"):
        bad = np.argwhere(~np.isclose(got, want, rtol=0, atol=0, equal_nan=True))
        expect(False, f"{name}: differs from the reference at {bad[:3].tolist()}")


def check_geopixe(case: Case, rng, caught: list) -> None:
    """Open and read a mutated .GeoPIXE file every way; compare with the reference decoder."""
    import dask

    import xrfdask as xd
    from xrfdask.errors import FormatError
    from xrfdask.io import fastpaths
    from xrfdask.io.geopixe.reader import read_block_channels

    base: GeoBase = case.note["base"]
    cache = rng.random() < 0.15  # each case has its own file name: no stale cached index
    path = case.path
    chunk_mode = str(rng.choice(["auto", "rows", "rows", "xy"]))
    chunks: Any = "auto"
    index = xd.index_geopixe(path, cache=cache)
    nrows_seen = (
        int(index.attrs["n_records"]) // max(1, int(index.attrs["ndet"]) * int(index.attrs["Xres"]))
        + 1
    )
    if chunk_mode == "rows":
        chunks = int(rng.integers(1, max(2, min(nrows_seen, 12) + 1)))
    elif chunk_mode == "xy":
        xres = int(index.attrs["Xres"])
        chunks = {"y": int(rng.integers(1, 4)), "x": int(rng.integers(1, max(2, xres + 1)))}
    ds = xd.open_geopixe(path, chunks=chunks, cache=cache)
    if cache:
        again = xd.open_geopixe(path, chunks=chunks, cache=True)  # from the cached index
        expect(np.array_equal(again.present.values, ds.present.values), "cached index differs")
    ndet, nchan = ds.sizes["detector"], ds.sizes["channel"]
    try:
        ref = ref_decode(case.data, ndet=ndet)
    except RefError as exc:
        raise WrongData(f"xrfdask opened a file the reference rejects ({exc})") from None
    expect(
        (ds.sizes["y"], ds.sizes["x"], ndet, nchan) == (ref.nrows, ref.xres, ref.ndet, ref.chan),
        f"sizes {dict(ds.sizes)}, reference rows {ref.nrows} x {ref.xres} x {ref.ndet} x "
        f"{ref.chan}",
    )
    _compare("present", ds.present.values, ref.present())
    _compare("deadtime bits", ds.deadtime.values.view(np.uint32), ref.deadtime_bits())
    _compare("index offsets", index.offset.values.astype(np.int64), np.array(ref.offsets))
    _compare("index lengths", index.length.values.astype(np.int64), np.array(ref.lengths))
    _compare(
        "index deadtime bits",
        index.deadtime.values.view(np.uint32),
        np.array(ref.dt_bits, dtype=np.uint32),
    )
    names = {w.category.__name__ for w in caught}
    truncated = "TruncatedMapWarning" in names
    expect(
        truncated == ref.incomplete,
        f"TruncatedMapWarning {truncated}, map incomplete {ref.incomplete} ({ref.n} of "
        f"{ref.n_expected} records, dropped {ref.dropped})",
    )
    if ref.dets_warning or ref.dup_warning:  # documented: fewer records than Dets, repeated keys
        expect("XrfdaskWarning" in names, "no warning about the header's Dets or repeated keys")
    data = ds.spectra.data
    small = ref.dense_size() <= 2**24
    dense = ref.dense() if small else None
    reads = []  # (what, compute, expected or a check): every way the package reads the data
    if small:
        reads.append(("spectra", lambda: ds.spectra.values, dense))
    else:  # a huge (mutated) geometry: the first pixels, and the sparse paths
        n = min(ref.xres, 4)
        first = np.zeros((n, ndet, nchan), np.uint16)
        for k, (ch, ct) in enumerate(ref.pairs[: n * ndet]):
            first[k // ndet, k % ndet, ch] = ct
        # (blocks holding a broken record may or may not be among those these pixels need)
        reads.append(
            (
                "spectra (first pixels, either)",
                lambda: ds.spectra.isel(y=0, x=slice(0, n)).values,
                first,
            )
        )
    if small or rng.random() < 0.2:
        reads.append(
            ("dask sum", lambda: ds.spectra.sum(("y", "x"), dtype=np.float64).values, ref.sums())
        )
    fast = fastpaths.sum_spectrum(data)
    expect(fast is not None, "no fast sum path for open_geopixe's spectra")
    reads.append(("fast sum", fast.compute, ref.sums()))
    reads.append(("pixel totals", fastpaths.pixel_totals(data).compute, ref.totals()))
    weights = rng.random((nchan, 2))
    weighted = fastpaths.pixel_weighted_sums(data, weights)
    bad_block = None  # the (row, column) block holding a record with broken channels
    if small:
        expected = np.einsum("yxdc,cn->yxn", dense.astype(np.float64), weights)

        def check_weighted(got, expected=expected):
            expect(np.allclose(got, expected, rtol=1e-9, atol=1e-9), "pixel weighted sums differ")

        reads.append(("pixel weighted sums", weighted.compute, check_weighted))
        lo = int(rng.integers(0, nchan))
        hi = int(rng.integers(lo + 1, nchan + 1))
        tasks = fastpaths.channel_blocks(data, lo, hi, np.float32)
        y_edges = np.cumsum((0,) + data.chunks[0])
        x_edges = np.cumsum((0,) + data.chunks[1])
        if ref.bad_record is not None:
            pixel = ref.bad_record // ndet
            y, x = divmod(pixel, ref.xres)
            bad_block = (
                int(np.searchsorted(y_edges, y, side="right")) - 1,
                int(np.searchsorted(x_edges, x, side="right")) - 1,
            )
        for (i, j), (func, *args) in tasks.items():
            expect(func is read_block_channels, "unexpected channel-block task")
            part = dense[y_edges[i] : y_edges[i + 1], x_edges[j] : x_edges[j + 1]]
            block = part[..., lo:hi].transpose(2, 0, 1, 3).reshape(ndet, -1, hi - lo)
            what = f"channel block {(i, j)}"
            if (i, j) == bad_block:
                what = f"channel block {(i, j)} (broken)"
            reads.append((what, lambda f=func, a=args: f(*a), block.astype(np.float32)))
        summed = dense.sum(axis=2, dtype=np.float64)  # detectors summed: (y, x, channel)
        if hasattr(fastpaths, "pixel_binned_sums"):  # classification's features
            bins = rng.integers(-1, 4, nchan)
            bins[int(rng.integers(nchan))] = 3
            binned = fastpaths.pixel_binned_sums(data, bins)
            want_bins = np.stack([summed[..., bins == b].sum(axis=-1) for b in range(4)], -1)
            reads.append(("pixel binned sums", binned.compute, want_bins))
        if hasattr(fastpaths, "class_sum_spectra"):  # classification's class spectra
            import dask.array as da

            labels = rng.integers(0, 3, summed.shape[:2])
            lazy = da.from_array(labels, chunks=(max(1, labels.shape[0] // 2), -1))
            sums_by_class = fastpaths.class_sum_spectra(data, lazy, 3)
            want_classes = np.stack([summed[labels == c].sum(axis=0) for c in range(3)])
            reads.append(("class sum spectra", sums_by_class.compute, want_classes))
    else:
        reads.append(("pixel weighted sums", weighted.compute, lambda got: None))
    with dask.config.set(scheduler="synchronous"):
        if ref.bad_body:  # every read of the broken record must refuse the file
            error = None
            for what, compute, want in reads:
                if what.startswith("channel block") and "(broken)" not in what:
                    got = compute()  # other blocks read as usual
                    _compare(what, np.asarray(got), want)
                    continue
                try:
                    got = compute()
                except FormatError as exc:
                    error = error or exc
                    continue
                if "(first pixels, either)" in what:  # its blocks missed the broken record
                    _compare(what, np.asarray(got), want)
                    continue
                raise WrongData(f"{what} read a file with a broken record ({ref.bad_body})")
            raise error
        for what, compute, want in reads:
            got = compute()
            if callable(want):
                want(got)
            else:
                _compare(what, np.asarray(got), want)
    if case.data == base.data:
        expect(not caught, f"an unchanged file warns: {sorted(names)}")
        _compare("unchanged file", ds.spectra.values, base.truth)


def reference_reads_geopixe(case: Case) -> bool:
    try:
        return ref_decode(case.data).bad_body is None
    except RefError:
        return False


# --- uniform-layout .h5 -----------------------------------------------------------------------


@dataclass
class H5Base:
    name: str
    data: bytes
    groups: list[str]  # groups opened (drawn uniformly: repeats weigh)
    weight: float


def h5_bases(workdir: Path) -> list[H5Base]:
    import h5py

    import xrfdask as xd

    bases = [
        H5Base(
            "xrf_proc-groups",
            (REPO / "tests" / "data" / "xrf_proc_groups.h5").read_bytes(),
            ["raw", "raw", "raw", "fit", "norm", "quant", "detlim", "elyield"],
            3.0,
        )
    ]
    path = workdir / "example.h5"
    xd.to_h5(xd.datasets.example_dataset(shape=(4, 5)), path, overwrite=True)
    bases.append(H5Base("to_h5-example", path.read_bytes(), ["raw"], 2.0))
    rng = np.random.default_rng(5)
    path = workdir / "plain.h5"
    with h5py.File(path, "w") as f:  # as xrf_proc's converters write: h5py, gzip 4, auto chunks
        f["cmd"] = "cdmesh hrz -1 1 4 hry -1 1 3 0.1"
        f["mot1"] = np.tile(np.linspace(-1, 1, 4), (3, 1))
        f["mot1"].attrs["Name"] = "hrz"
        f["mot2"] = np.tile(np.linspace(-1, 1, 3)[:, None], (1, 4))
        f["mot2"].attrs["Name"] = "hry"
        f["raw/I0"] = rng.uniform(1e5, 2e5, (3, 4))
        f["raw/I1"] = rng.uniform(1e3, 2e3, (3, 4))
        f["raw/acquisition_time"] = np.full((3, 4), 0.1)
        for d in range(2):
            spectra = rng.poisson(5, (3, 4, 256)).astype(np.uint32)
            g = f"raw/channel{d:02d}"
            f.create_dataset(
                f"{g}/spectra", data=spectra, compression="gzip", compression_opts=4, chunks=True
            )
            f[f"{g}/icr"] = rng.uniform(1e4, 2e4, (3, 4))
            f[f"{g}/ocr"] = rng.uniform(5e3, 1e4, (3, 4))
            f[f"{g}/sumspec"] = spectra.sum(axis=(0, 1)).astype(np.float64)
            f[f"{g}/maxspec"] = spectra.max(axis=(0, 1)).astype(np.float64)
    bases.append(H5Base("h5py-xrf_proc-style", path.read_bytes(), ["raw"], 2.0))
    path = workdir / "scan1d.h5"
    with h5py.File(path, "w") as f:  # a 1-D scan: N x C spectra, contiguous float64
        f["raw/channel00/spectra"] = rng.gamma(2.0, 3.0, (7, 64))
        f["raw/channel00/icr"] = rng.uniform(1e4, 2e4, 7)
        f["raw/channel00/ocr"] = rng.uniform(5e3, 1e4, 7)
        f["raw/I0"] = rng.uniform(1e5, 2e5, 7)
        f["mot1"] = np.linspace(0, 1, 7)
    bases.append(H5Base("scan-1d", path.read_bytes(), ["raw"], 1.0))
    return bases


def _h5_nodes(f) -> list[tuple[str, bool]]:
    import h5py

    out: list[tuple[str, bool]] = []
    f.visititems(lambda name, obj: out.append((name, isinstance(obj, h5py.Dataset))))
    return out


def _reshaped(value: np.ndarray, rng) -> tuple[np.ndarray, str]:
    shape = value.shape
    how = str(rng.choice(["drop_axis", "add_axis", "resize", "empty", "scalar", "transpose"]))
    if how == "drop_axis" and shape:
        new = shape[1:] if rng.random() < 0.5 else shape[:-1]
    elif how == "add_axis":
        new = shape + (2,) if rng.random() < 0.5 else (2,) + shape
    elif how == "resize" and shape:
        axis = int(rng.integers(len(shape)))
        new = tuple(
            max(0, n + int(rng.choice([-1, 1, 2]))) if a == axis else n for a, n in enumerate(shape)
        )
    elif how == "empty" and shape:
        axis = int(rng.integers(len(shape)))
        new = tuple(0 if a == axis else n for a, n in enumerate(shape))
    elif how == "transpose" and len(shape) > 1:
        new = shape[::-1]
    else:
        new, how = (), "scalar"
    if value.dtype.kind in "biufc" and value.size:
        out = np.resize(value, new)
    else:
        out = np.zeros(new, dtype=value.dtype if value.dtype.kind in "biufc" else np.float64)
    return out, f"{how}{shape}->{new}"


def _retyped(value: np.ndarray, rng) -> tuple[Any, str]:
    import h5py

    kinds = (
        "float32-nan float64-inf float16 int8 uint8 int64-negative uint64-huge bool S8 vlen-str "
        "complex64 compound >u4 >f8"
    ).split()
    how = kinds[int(rng.integers(len(kinds)))]
    numeric = value.dtype.kind in "biuf"
    base = value.astype(np.float64) if numeric else np.zeros(value.shape)
    if how == "float32-nan":
        out = base.astype(np.float32)
        if out.size:
            out.flat[int(rng.integers(out.size))] = np.nan
    elif how == "float64-inf":
        out = base.copy()
        if out.size:
            out.flat[int(rng.integers(out.size))] = np.inf
    elif how == "float16":
        out = base.astype(np.float16)
    elif how in ("int8", "uint8"):
        out = np.nan_to_num(base).astype(np.int64).astype(how)
    elif how == "int64-negative":
        out = -np.nan_to_num(base).astype(np.int64) - 1
    elif how == "uint64-huge":
        out = np.nan_to_num(base).astype(np.uint64) + np.uint64(2**63)
    elif how == "bool":
        out = base != 0
    elif how == "S8":
        out = np.full(value.shape, b"abc", dtype="S8")
    elif how == "vlen-str":
        out = np.full(value.shape, "x\u00b5", dtype=h5py.string_dtype())
    elif how == "complex64":
        out = base.astype(np.complex64)
    elif how == "compound":
        out = np.zeros(value.shape, dtype=[("a", "<f4"), ("b", "<i2")])
    else:
        out = np.nan_to_num(base).astype(how)
    return out, how


def _replace(f, name: str, value, **kwargs) -> None:
    del f[name]
    f.create_dataset(name, data=value, **kwargs)


# fmt: off
_ATTR_VALUES = {
    "xrfdask_attrs": ["{", "null", "[]", '"x"', '{"dwell_ms": "abc"}', 5, np.array([1, 2]),
                      '{"geopixe_header": 3}', '{"cmd": 7}'],
    "xrfdask_detectors": ["[0]", "[0, 1, 2]", '{"a": 1}', "[[1], [2]]", "junk", "[null, null]",
                          '["a", "a"]', 3, "[0.5, 1.5]", "[true, false]"],
    "energy_gain_keV": ["abc", np.nan, np.inf, -1.0, np.array([1.0, 2.0]), 0.0, 1e300],
    "energy_offset_keV": ["abc", np.nan, np.array([1.0, 2.0]), -1e300],
    "xrfdask_spectra_storage_bytes": ["x", -1, 1.5, 0, np.array([1, 2])],
    "Name": [5, b"\xff\xfe", "", np.array([1, 2])],
    "TmNorm": ["maybe", 1, np.array([1, 2]), "True", "False"],
    "NPixels": ["x", -1],
    "Unit": [5, "ppm"],
}
# fmt: on


_REFILTERS = (
    "contiguous tiny_chunks gzip9 lzf shuffle fletcher32 scaleoffset unallocated fillvalue"
).split()


def _mut_h5_structure(path: Path, group: str, rng) -> str:
    """One structural change of the layout, through h5py: its description."""
    import h5py

    with h5py.File(path, "r+") as f:
        nodes = _h5_nodes(f)
        if not nodes:
            return "structure(none)"
        inside = [n for n in nodes if n[0].startswith(group) or n[0] in ("mot1", "mot2", "cmd")]
        pool = inside if inside and rng.random() < 0.85 else nodes
        name, is_dataset = pool[int(rng.integers(len(pool)))]
        datasets = [n for n in pool if n[1]] or [n for n in nodes if n[1]]
        ops = (
            "delete reshape reshape retype retype values swap_kind attr attr rename extra "
            "refilter link names"
        ).split()
        op = ops[int(rng.integers(len(ops)))]
        if op in ("reshape", "retype", "values", "refilter") and not is_dataset and datasets:
            name, is_dataset = datasets[int(rng.integers(len(datasets)))]
        if op == "delete":
            del f[name]
            return f"delete({name})"
        if op == "reshape" and is_dataset:
            new, how = _reshaped(np.asarray(f[name][()]), rng)
            _replace(f, name, new)
            return f"reshape({name}: {how})"
        if op == "retype" and is_dataset:
            new, how = _retyped(np.asarray(f[name][()]), rng)
            _replace(f, name, new)
            return f"retype({name}: {how})"
        if op == "values" and is_dataset:
            value = np.asarray(f[name][()])
            if value.dtype.kind == "f" and value.size:
                bad = rng.choice([np.nan, np.inf, -np.inf, -1.0, 1e308, 0.0])
                value.flat[rng.integers(value.size, size=max(1, value.size // 10))] = bad
                _replace(f, name, value)
                return f"values({name}={bad})"
            if value.dtype.kind in "iu" and value.size:
                info = np.iinfo(value.dtype)
                bad = int(rng.choice([info.max, info.min, 0]))
                value.flat[rng.integers(value.size, size=max(1, value.size // 10))] = bad
                _replace(f, name, value)
                return f"values({name}={bad})"
            return f"values({name}: skipped)"
        if op == "swap_kind":
            del f[name]
            if is_dataset:
                f.create_group(name)["child"] = np.arange(3)
                return f"dataset_to_group({name})"
            f[name] = 1.0
            return f"group_to_dataset({name})"
        if op == "attr":
            special = [(n, k) for n, _ in nodes for k in f[n].attrs if k in _ATTR_VALUES]
            special += [("", k) for k in f.attrs if k in _ATTR_VALUES]
            if special and rng.random() < 0.8:
                node, key = special[int(rng.integers(len(special)))]
            else:
                node, key = name, str(rng.choice(list(_ATTR_VALUES)))
            obj = f[node] if node else f
            if key in obj.attrs and rng.random() < 0.25:
                del obj.attrs[key]
                return f"attr({node}.{key}: deleted)"
            values = _ATTR_VALUES[key]
            value = values[int(rng.integers(len(values)))]
            obj.attrs[key] = value
            return f"attr({node}.{key}={value!r})"
        if op == "rename":
            groups = [n for n, d in nodes if not d and n.split("/")[-1].startswith("channel")]
            if not groups:
                return "rename(none)"
            old = groups[int(rng.integers(len(groups)))]
            parent = old.rpartition("/")[0]
            new_leaf = str(
                rng.choice(
                    [
                        "channel1",
                        "sum",
                        "channelXX",
                        "channel00 ",
                        "chan00",
                        "channel99",
                        "channel_a",
                    ]
                )
            )
            new = f"{parent}/{new_leaf}" if parent else new_leaf
            if new in f:
                return f"rename({old}: exists)"
            f.move(old, new)
            return f"rename({old}->{new})"
        if op == "extra":
            where = group if group in f and isinstance(f[group], h5py.Group) else "raw"
            how = str(rng.choice(["empty_channel", "odd_channel", "dataset_channel", "other"]))
            try:
                if how == "empty_channel":
                    f.create_group(f"{where}/channel07")
                elif how == "odd_channel":
                    f[f"{where}/channel08/spectra"] = np.ones((2, 2, 3), np.uint16)
                    f[f"{where}/channel08/ims"] = np.ones((2, 2, 3))
                elif how == "dataset_channel":
                    f[f"{where}/channel09"] = np.arange(4)
                else:
                    f[f"{where}/other"] = np.arange(4)
            except (ValueError, TypeError, KeyError):
                return f"extra({how}: impossible)"
            return f"extra({where}: {how})"
        if op == "refilter" and is_dataset:
            value = f[name][()]
            shape = np.shape(value)
            how = str(rng.choice(_REFILTERS))
            kwargs: dict[str, Any] = {}
            if not shape:
                how = "contiguous"
            elif how == "tiny_chunks":
                kwargs = {"chunks": tuple(1 for _ in shape[:-1]) + (max(1, shape[-1] // 3),)}
            elif how == "gzip9":
                kwargs = {"compression": "gzip", "compression_opts": 9, "chunks": True}
            elif how == "lzf":
                kwargs = {"compression": "lzf", "chunks": True}
            elif how == "shuffle":
                kwargs = {"compression": "gzip", "shuffle": True, "chunks": True}
            elif how == "fletcher32":
                kwargs = {"fletcher32": True, "chunks": True}
            elif how == "scaleoffset" and np.asarray(value).dtype.kind in "iu":
                kwargs = {"scaleoffset": 0, "chunks": True}
            elif how in ("unallocated", "fillvalue") and np.asarray(value).dtype.kind in "biuf":
                dset_kwargs = {"chunks": tuple(max(1, n // 2) for n in shape)} if all(shape) else {}
                del f[name]
                dset = f.create_dataset(
                    name,
                    shape=shape,
                    dtype=np.asarray(value).dtype,
                    fillvalue=7 if how == "fillvalue" else None,
                    **dset_kwargs,
                )
                if all(shape):  # write only the first half of the first axis
                    dset[: shape[0] // 2] = np.asarray(value)[: shape[0] // 2]
                return f"refilter({name}: {how})"
            try:
                _replace(f, name, value, **kwargs)
            except (ValueError, TypeError):
                return f"refilter({name}: {how} impossible)"
            return f"refilter({name}: {how})"
        if op == "link":
            how = str(rng.choice(["dangling", "external", "other_dataset"]))
            del f[name]
            if how == "dangling":
                f[name] = h5py.SoftLink("/nowhere/at/all")
            elif how == "external":
                f[name] = h5py.ExternalLink("missing-file.h5", "/data")
            else:
                others = [n for n, d in nodes if d and n != name and n in f]
                if not others:
                    f[name] = h5py.SoftLink("/nowhere")
                else:
                    f[name] = h5py.SoftLink("/" + others[int(rng.integers(len(others)))])
            return f"link({name}: {how})"
        if op == "names":
            names = [n for n, d in nodes if d and n.endswith(("/names", "/el_id"))]
            if not names:
                return "names(none)"
            target = names[int(rng.integers(len(names)))]
            current = [
                v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(f[target][()])
            ]
            how = str(
                rng.choice(
                    ["duplicate", "empty", "non_utf8", "shorter", "longer", "ints", "scalar"]
                )
            )
            if how == "duplicate" and len(current) > 1:
                current[1] = current[0]
                new: Any = [c.encode() for c in current]
            elif how == "empty":
                new = [b""] * len(current)
            elif how == "non_utf8":
                new = [b"\xff\xfe" + c.encode() for c in current]
            elif how == "shorter":
                new = [c.encode() for c in current[:-1]]
            elif how == "longer":
                new = [c.encode() for c in current] + [b"Xx K"]
            elif how == "ints":
                new = np.arange(len(current))
            else:
                new = current[0].encode() if current else b""
            _replace(f, target, new)
            return f"names({target}: {how})"
    return f"{op}({name}: skipped)"


def _mut_h5_bytes(data: bytes, rng) -> tuple[bytes, str]:
    out = bytearray(data)
    how = str(rng.choice(["bitflips", "bitflips", "run", "truncate", "zero", "junk", "append"]))
    if not out and how in ("bitflips", "run", "truncate"):
        how = "junk"
    if how == "bitflips":
        n = int(rng.integers(1, 9))
        for pos in rng.integers(len(out), size=n):
            out[int(pos)] ^= 1 << int(rng.integers(8))
        return bytes(out), f"bitflips({n})"
    if how == "run":
        pos, n = int(rng.integers(len(out))), int(rng.integers(1, 64))
        out[pos : pos + n] = bytes(rng.integers(0, 256, len(out[pos : pos + n]), dtype=np.uint8))
        return bytes(out), f"bytes({pos}+{n})"
    if how == "truncate":
        cut = int(rng.integers(len(out)))
        return bytes(out[:cut]), f"truncate({cut})"
    if how == "zero":
        return b"", "empty_file"
    if how == "junk":
        return bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8)), "junk"
    return bytes(out) + bytes(rng.integers(0, 256, 100, dtype=np.uint8)), "append(100)"


def _h5_case(rng, workdir: Path, bases: list[H5Base], stem: str) -> Case:
    weights = np.array([b.weight for b in bases])
    base = bases[int(rng.choice(len(bases), p=weights / weights.sum()))]
    group = base.groups[int(rng.integers(len(base.groups)))]
    path = workdir / f"{stem}.h5"
    path.write_bytes(base.data)
    descs = []
    for _ in range(int(rng.choice([1, 1, 1, 1, 1, 2, 2, 3]))):
        if rng.random() < 0.2:
            data, desc = _mut_h5_bytes(path.read_bytes(), rng)
            path.write_bytes(data)
        else:
            try:
                desc = _mut_h5_structure(path, group, rng)
            except (OSError, KeyError, ValueError, RuntimeError) as exc:  # damaged by bytes
                desc = f"structure(impossible: {type(exc).__name__})"
        descs.append(desc)
    return Case(
        f"{base.name}:{group}", "+".join(descs), str(path), path.read_bytes(), {"group": group}
    )


def _as_text_list(value) -> list[str] | None:
    value = np.asarray(value)
    if value.dtype.kind not in "SOU":
        return None
    items = value.reshape(-1).tolist()
    return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in items]


def _same(name: str, got, want) -> None:
    got, want = np.asarray(got), np.asarray(want)
    expect(got.shape == want.shape, f"{name}: shape {got.shape}, h5py reads {want.shape}")
    if got.dtype.kind in "SUO" or want.dtype.kind in "SUO":
        expect(_as_text_list(got) == _as_text_list(want), f"{name}: text differs from h5py's")
        return
    try:
        common = np.result_type(got.dtype, want.dtype)
    except TypeError:
        expect(False, f"{name}: dtype {got.dtype}, h5py reads {want.dtype}")
    equal_nan = common.kind in "fc"
    expect(
        np.array_equal(got.astype(common), want.astype(common), equal_nan=equal_nan),
        f"{name}: values differ from h5py's",
    )


def _fit_dtype(dtype) -> Any:
    """The dtype the fit reads spectra of ``dtype`` in (PyMca's: float32 for small ints)."""
    from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

    return np.dtype(FastXRFLinearFit._fitDtypeResult(np.empty(0, dtype=dtype)))


def _h5_read(f, path: str) -> np.ndarray:
    try:
        return np.asarray(f[path][()])
    except Exception as exc:  # noqa: BLE001 - h5py cannot read what xrfdask returned
        raise WrongData(f"xrfdask returned '{path}', which h5py cannot read ({exc})") from None


def _check_h5_raw(ds, f, rng) -> None:
    import dask
    import h5py

    from xrfdask.io import fastpaths

    raw = f["raw"]
    channels = [
        k
        for k in raw.keys()
        if (k.startswith("channel") or k == "sum") and isinstance(raw.get(k), h5py.Group)
    ]
    expect(
        ds.sizes["detector"] == len(channels),
        f"{ds.sizes['detector']} detectors, groups {channels}",
    )
    spectra = []
    for d, ch in enumerate(channels):
        stored = _h5_read(f, f"raw/{ch}/spectra")
        spectra.append(stored[None] if stored.ndim == 2 else stored)
        _same(f"raw/{ch}/spectra", ds.spectra.isel(detector=d).values, spectra[-1])
        for name in ("icr", "ocr", "deadtime", "present"):
            if name in ds:
                stored = _h5_read(f, f"raw/{ch}/{name}")
                _same(
                    f"raw/{ch}/{name}",
                    ds[name].isel(detector=d).values,
                    stored[None] if stored.ndim == 1 else stored,
                )
        for name in ("sumspec", "maxspec"):
            if name in ds:
                _same(
                    f"raw/{ch}/{name}",
                    ds[name].isel(detector=d).values,
                    _h5_read(f, f"raw/{ch}/{name}"),
                )
    for name in ("I0", "I1", "acquisition_time"):
        if name in ds:
            stored = _h5_read(f, f"raw/{name}")
            _same(f"raw/{name}", ds[name].values, stored[None] if stored.ndim == 1 else stored)
    for name in ("mot1", "mot2"):
        if name in ds:
            stored = _h5_read(f, name)
            _same(name, ds[name].values, stored[None] if stored.ndim == 1 else stored)
    # Sums of huge stored values (1e308) overflow to inf: numpy's arithmetic on the data, not
    # the reader's business, so its overflow warnings are off here.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.stack([s.sum(axis=(0, 1), dtype=np.float64) for s in spectra])
    data = ds.spectra.data
    with dask.config.set(scheduler="synchronous"), np.errstate(over="ignore", invalid="ignore"):
        got = ds.spectra.sum(("y", "x"), dtype=np.float64, skipna=False).values
        expect(np.allclose(got, total, rtol=1e-9, atol=0, equal_nan=True), "dask sum differs")
        fast = fastpaths.sum_spectrum(data)
        if fast is not None:
            got = fast.compute()
            expect(np.allclose(got, total, rtol=1e-9, atol=0, equal_nan=True), "fast sum differs")
        stored = fastpaths.stored_sum_spectrum(data)
        if stored is not None:
            want = np.stack([_h5_read(f, f"raw/{ch}/sumspec") for ch in channels])
            _same("stored sum spectrum", stored[0], want.astype(np.float64))
        nchan = ds.sizes["channel"]
        if nchan:
            lo = int(rng.integers(0, nchan))
            hi = int(rng.integers(lo + 1, nchan + 1))
            dtype = _fit_dtype(data.dtype)
            tasks = fastpaths.channel_blocks(data, lo, hi, dtype)
            dense = np.stack(spectra, axis=2)
            y_edges = np.cumsum((0,) + data.chunks[0])
            x_edges = np.cumsum((0,) + data.chunks[1])
            for (i, j), task in (tasks or {}).items():
                func, *args = task
                block = func(*args)
                part = dense[y_edges[i] : y_edges[i + 1], x_edges[j] : x_edges[j + 1], :, lo:hi]
                want = part.transpose(2, 0, 1, 3).reshape(part.shape[2], -1, hi - lo)
                _same(f"channel block {(i, j)}", block, want.astype(dtype))


def _check_h5_result(ds, f, group: str) -> None:
    import h5py

    from xrfdask.io.h5layout.schema import result_schema

    sch = result_schema(group)
    node = f[group]
    if sch.subgrouped:
        subs = [k for k in node.keys() if isinstance(node.get(k), h5py.Group)]
        group = f"{group}/{subs[0]}"
        node = f[group]
    channels = [
        k
        for k in node.keys()
        if (k.startswith("channel") or k == "sum") and isinstance(node.get(k), h5py.Group)
    ]
    expect(
        ds.sizes.get("detector", 0) == len(channels), f"detectors {dict(ds.sizes)} for {channels}"
    )
    relative = str(ds.attrs.get("normalised_error_stored", "")).startswith("relative")
    for d, ch in enumerate(channels):
        base = f"{group}/{ch}"
        names_node = f.get(f"{base}/names")
        names = _as_text_list(names_node[()]) if isinstance(names_node, h5py.Dataset) else None
        for fld in sch.fields:
            p = f"{base}/{fld.path}"
            if fld.kind != "array" or not isinstance(f.get(p), h5py.Dataset):
                continue
            if fld.var not in ds or (relative and fld.var == "normalised_error"):
                continue
            stored = _h5_read(f, p)
            got = ds[fld.var]
            if "detector" in got.dims:
                got = got.isel(detector=d)
            dims = fld.dims
            if stored.ndim == len(dims) - 1 and "y" in dims:
                axis = 0 if dims[0] == "absorber" else dims.index("y")
                stored = np.expand_dims(stored, axis)
            if "line" in dims:
                if (
                    names is None
                    or len(set(names)) != len(names)
                    or len(names) != stored.shape[dims.index("line")]
                ):
                    continue
                got = got.sel(line=names)
            _same(p, got.transpose(*dims).values, stored)


def check_h5(case: Case, rng, caught: list) -> None:
    import h5py

    import xrfdask as xd

    group = case.note["group"]
    chunks = ["auto", "auto", 4096, "64KiB"][int(rng.integers(4))]
    ds = xd.open_h5(case.path, group=group, chunks=chunks)
    for name in list(ds.data_vars) + list(ds.coords):  # everything computes
        np.asarray(ds[name].values)
    try:
        f = h5py.File(case.path, "r")
    except Exception as exc:  # noqa: BLE001
        raise WrongData(f"xrfdask read a file h5py cannot open ({exc})") from None
    with f:
        if group == "raw":
            _check_h5_raw(ds, f, rng)
        else:
            _check_h5_result(ds, f, group)


# --- .cnc ---------------------------------------------------------------------------------------


def cnc_bases(workdir: Path) -> list[tuple[str, bytes]]:
    files = sorted((SHARED / "data" / "cnc").glob("*.cnc"))
    return [(p.name, p.read_bytes()) for p in files]


# fmt: off
_CNC_GARBAGE = [
    "", "abc", "-1", "-0.5", "nan", "NaN", "inf", "-inf", "1e999", "0", "1e-400", "0x10", "1_000",
    "\u0663", "\u00bd", " ", "1,5", "--1", "+5", "1e5", "True", "1e18", "26.5", "0.0", "119", "200",
    "-3", "\x00", "1e308",
]
# fmt: on


def _mut_cnc(text: str, rng) -> tuple[str, str]:
    lines = text.split("\n")
    n = len(lines)
    ops = (
        "delete_line dup_line swap_lines number number number count z negative truncate junk nul "
        "bom crlf cr spaces empty binary extra_rows blank_line"
    ).split()
    op = ops[int(rng.integers(len(ops)))]
    k = int(rng.integers(n)) if n else 0
    if op == "delete_line" and n:
        del lines[k]
        return "\n".join(lines), f"delete_line({k + 1})"
    if op == "dup_line" and n:
        lines.insert(k, lines[k])
        return "\n".join(lines), f"duplicate_line({k + 1})"
    if op == "swap_lines" and n > 1:
        j = int(rng.integers(n))
        lines[k], lines[j] = lines[j], lines[k]
        return "\n".join(lines), f"swap_lines({k + 1},{j + 1})"
    if op in ("number", "negative", "z"):
        rows = [i for i, line in enumerate(lines) if any(c.isdigit() for c in line)]
        if op == "z":
            rows = [i for i in rows if i >= 7] or rows
        if not rows:
            return text, f"{op}(none)"
        i = rows[int(rng.integers(len(rows)))]
        fields = lines[i].split("\t")
        numeric = [j for j, v in enumerate(fields) if v.strip()]
        if not numeric:
            return text, f"{op}(none)"
        j = numeric[0] if op == "z" else numeric[int(rng.integers(len(numeric)))]
        if op == "negative":
            value = "-" + fields[j].strip()
        elif op == "z":
            value = str(rng.choice(["0", "119", "-1", "26.5", "118", "104", "3", "92", "1e3"]))
        else:
            value = _CNC_GARBAGE[int(rng.integers(len(_CNC_GARBAGE)))]
        fields[j] = value
        lines[i] = "\t".join(fields)
        return "\n".join(lines), f"{op}(line {i + 1}, field {j}={value!r})"
    if op == "count" and n > 5:
        fields = [v for v in lines[5].split("\t") if v.strip()]
        old = int(float(fields[0])) if fields and fields[0].strip().isdigit() else 0
        value = str(
            rng.choice(
                [old + 1, old - 1, 0, -1, 10**9, 10**18, old + 50, 2**63, f"{old}.5", "1e12"]
            )
        )
        lines[5] = value + "\t"
        return "\n".join(lines), f"count({old}->{value})"
    if op == "truncate":
        cut = int(rng.integers(len(text) + 1))
        return text[:cut], f"truncate({cut})"
    if op == "junk":
        pos = int(rng.integers(len(text) + 1))
        junk = bytes(rng.integers(128, 256, int(rng.integers(1, 8)), dtype=np.uint8))
        return text[:pos] + junk.decode("latin-1") + text[pos:], f"junk({pos})"
    if op == "nul":
        pos = int(rng.integers(len(text) + 1))
        return text[:pos] + "\x00" + text[pos:], f"nul({pos})"
    if op == "bom":
        return "\ufeff" + text, "bom"
    if op == "crlf":
        return text.replace("\n", "\r\n"), "crlf"
    if op == "cr":
        return text.replace("\n", "\r"), "cr"
    if op == "spaces":
        return text.replace("\t", " "), "spaces_for_tabs"
    if op == "empty":
        return "", "empty_file"
    if op == "binary":
        return bytes(rng.integers(0, 256, 200, dtype=np.uint8)).decode("latin-1"), "binary"
    if op == "extra_rows" and n > 7:
        lines.insert(8, lines[7])
        return "\n".join(lines), "extra_row(after the table's first)"
    if op == "blank_line" and n:
        lines.insert(k, "")
        return "\n".join(lines), f"blank_line({k + 1})"
    return text, f"{op}(skipped)"


def _cnc_case(rng, workdir: Path, bases, stem: str) -> Case:
    name, data = bases[int(rng.integers(len(bases)))]
    text = data.decode("utf-8")
    descs = []
    latin = False
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
        text, desc = _mut_cnc(text, rng)
        latin = latin or desc.startswith(("junk", "binary"))
        descs.append(desc)
    raw = text.encode("latin-1", errors="replace") if latin else text.encode("utf-8")
    path = workdir / f"{stem}.cnc"
    path.write_bytes(raw)
    return Case(name, "+".join(descs), str(path), raw)


def ref_cnc(data: bytes) -> dict[str, Any]:
    """Spec xrf_proc.md section 2, with the checks the spec implies (numbers, counts, Z)."""
    lines = data.decode("utf-8", errors="replace").splitlines()

    def fields(line: str) -> list[str]:
        return [v.strip() for v in line.split("\t") if v.strip()]

    def number(text: str) -> float:
        value = float(text)  # ValueError: not a number
        if not math.isfinite(value):
            raise ValueError(text)
        return value

    try:
        name = lines[1].strip()
        density, mass, thickness = (number(v) for v in fields(lines[3])[:3])
        count = number(fields(lines[5])[0])
        if count != int(count) or count < 0:
            raise ValueError(count)
        z, conc, err = [], [], []
        for line in lines[7 : 7 + int(count)]:
            row = fields(line)
            zi = number(row[0])
            if zi != int(zi) or not 1 <= zi <= 98:  # elements with X-ray data (xraylib: to Cf)
                raise ValueError(zi)
            z.append(int(zi))
            conc.append(number(row[1]))
            err.append(number(row[2]) if len(row) > 2 else 0.0)
            if conc[-1] < 0 or err[-1] < 0:
                raise ValueError("negative")
        if len(z) != int(count) or len(set(z)) != len(z):
            raise ValueError("rows")
    except (IndexError, ValueError, TypeError, OverflowError) as exc:
        raise RefError(f"{type(exc).__name__}: {exc}") from None
    return {
        "name": name,
        "density": density,
        "mass": mass,
        "thickness": thickness,
        "z": z,
        "conc": conc,
        "err": err,
    }


# fmt: off
_DETLIM_LINES = [
    "Fe K", "Ca K", "Sr K", "Pb L", "Zn K", "Compt", "Rayl", "Si K", "U L", "Ba L", "Au M", "H K",
]
# fmt: on


def check_cnc(case: Case, rng, caught: list) -> None:
    import xrfdask as xd
    from xrfdask.detlim.limits import reference_concentrations

    cnc = xd.read_cnc(case.path)
    try:
        ref = ref_cnc(case.data)
    except RefError as exc:
        raise WrongData(f"read_cnc read a file the reference rejects ({exc})") from None
    got = {
        "name": cnc.name,
        "density": cnc.density,
        "mass": cnc.mass,
        "thickness": cnc.thickness,
        "z": cnc.z.tolist(),
        "conc": cnc.conc.tolist(),
        "err": cnc.err.tolist(),
    }
    for key, value in ref.items():
        expect(got[key] == value, f"{key}: {got[key]!r}, reference {value!r}")
    cnc.to_dataset()
    lines = [str(v) for v in rng.choice(_DETLIM_LINES, size=int(rng.integers(1, 8)), replace=False)]
    before = len(caught)
    refs = reference_concentrations(lines, cnc, tilt=float(rng.choice([90.0, 45.0, 10.0])))
    expect(bool(np.all(np.isfinite(refs.conc)) and np.all(refs.conc > 0)), "conc not positive")
    unexplained = ~np.isfinite(refs.areal)
    if unexplained.any():
        expect(len(caught) > before, "NaN areal concentrations without a warning")


def reference_reads_cnc(case: Case) -> bool:
    try:
        ref_cnc(case.data)
    except RefError:
        return False
    return True


# --- PyMca .cfg ---------------------------------------------------------------------------------

# fmt: off
_IMPORTANT_SECTIONS = {
    "fit", "detector", "peaks", "attenuators", "multilayer", "concentrations", "peakshape", "tube",
    "materials",
}
# fmt: on


def cfg_bases(workdir: Path) -> list[tuple[str, bytes]]:
    import PyMca5
    from PyMca5.PyMcaIO.ConfigDict import ConfigDict

    import xrfdask as xd
    from xrfdask.fit.config import config_to_text

    shipped_path = os.path.join(os.path.dirname(PyMca5.__file__), "PyMcaData", "McaTheory.cfg")
    shipped = ConfigDict()
    shipped.read(shipped_path)
    edited = copy.deepcopy(dict(shipped))  # the tests' hand-edited file (test_user_configs)
    edited["fit"].update(
        xmin=120,
        xmax=1900,
        use_limit=1,
        energy=17.44,
        stripflag=1,
        stripalgorithm=1,
        snipwidth=30,
        stripfilterwidth=1,
        fitweight=0,
        scatterflag=1,
        escapeflag=0,
    )
    edited["detector"].update(zero=0.0, gain=0.01, noise=0.1, fano=0.114)
    edited["peaks"] = {"Ca": "K", "Fe": "K", "Zn": "K", "Sr": "K"}
    several = copy.deepcopy(edited)
    several["fit"].update(
        energy=[17.44, 19.6, 15.0],
        energyweight=[0.7, 0.2, 0.1],
        energyflag=[1, 1, 1],
        energyscatter=[1, 1, 0],
    )
    several["attenuators"]["Matrix"] = [1, "Si1O2", 2.65, 0.001, 45.0, 45.0]
    several["peaks"] = {"Fe": "K", "Zn": "K", "Pb": ["L", "M"], "W": ["L1", "L2", "L3"]}
    ds = xd.datasets.example_dataset(shape=(2, 3), n_detectors=1)
    made = xd.make_fit_config(ds, ["Ca", "Fe", "Zn", "Sr", "Pb"])
    with open(shipped_path, "rb") as fh:
        shipped_text = fh.read()
    return [
        ("tests-hand-edited", config_to_text(edited).encode()),
        ("several-energies", config_to_text(several).encode()),
        ("make_fit_config", config_to_text(made).encode()),
        ("pymca-shipped", shipped_text),
    ]


# fmt: off
_CFG_GARBAGE = [
    "", "abc", "-1", "0", "1e308", "nan", "inf", "-inf", "None", "1, 2, 3", "[1]", "Fe", "K, L",
    "-5.5", "1e-300", "0.5", "2", "65536", "True", "%(x)s", "\u00e9", "1,", ",", "0x10", "1e", "--",
    "[", "{", "1 2", "17.44, abc", "-17.44", "1e30", "3.5", "99999999999999999999",
]
# fmt: on
# fmt: off
_CFG_PEAKS = [
    "Xx = K", "Fe = Q", "Fe = K, K", "H = K", "U = M", "Og = K", "fe = k", "Pb = L, L3",
    "Ca = K, L", "Ca = ", "Zn = K, M", "Sr = L1", "K = K", "Tc = K", "C = K", "Pb = L, M", "Fe = 1",
]
# fmt: on
# fmt: off
_CFG_ATTENUATORS = [
    "Matrix = 1, MULTILAYER, 1.0, 0.1, 45.0, 45.0", "atmosphere = 1, Qq2, 1, 1, 1",
    "window = 1, Be1, -1, 0.001, 1.0", "Matrix = 1, SiO2, 2.65", "Filter 0 = 1, Al, 2.7, 0.01, 2.0",
    "Matrix = 1, Si1O2, 2.65, 0.01, 0, 0", "Matrix = 1, Si1O2, 2.65, 0.01, 45, 45, 1, 0",
    "Detector = 1, Si1, 2.33, -0.045, 1.0", "BeamFilter0 = 1, Kapton, 1, 1, 1",
    "window = 1, , 1.848, 0.0025, 1.0", "Matrix = 1, Water, 1.0, 0.1, 45, 45", "window = 1",
    "Matrix = 0, Si1O2",
]
# fmt: on


_CFG_FIT_KEYS = (
    "xmin xmax energy stripalgorithm continuum fitweight hypermetflag snipwidth linpolorder "
    "strategyflag stripanchorsflag"
).split()


def _numbers_perturbed(value: str, rng) -> str:
    parts = [p.strip() for p in value.split(",")]
    out = []
    for p in parts:
        try:
            x = float(p)
        except ValueError:
            out.append(p)
            continue
        how = str(rng.choice(["neg", "x10", "x0.1", "+1", "-1", "zero", "round", "same"]))
        x = {
            "neg": -x,
            "x10": x * 10,
            "x0.1": x * 0.1,
            "+1": x + 1,
            "-1": x - 1,
            "zero": 0.0,
            "round": float(round(x)),
            "same": x,
        }[how]
        out.append(repr(x) if not x.is_integer() else str(int(x)))
    return ", ".join(out)


def _mut_cfg(text: str, rng) -> tuple[str, str]:
    lines = text.split("\n")
    section, sections = "", []
    for line in lines:
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].split(".")[0]
        sections.append(section)
    weights = np.array(
        [10.0 if sec in _IMPORTANT_SECTIONS - {"materials"} else 1.0 for sec in sections]
    )
    k = int(rng.choice(len(lines), p=weights / weights.sum())) if lines else 0
    ops = (
        "delete_line delete_line dup_line garbage garbage garbage perturb perturb perturb "
        "rename_key delete_section dup_section peak peak attenuator attenuator truncate junk "
        "empty crlf add_key add_key"
    ).split()
    op = ops[int(rng.integers(len(ops)))]
    line = lines[k] if lines else ""
    if op == "delete_line" and lines:
        del lines[k]
        return "\n".join(lines), f"delete_line({line.strip()[:40]!r})"
    if op == "dup_line" and lines:
        lines.insert(k, line)
        return "\n".join(lines), f"duplicate_line({line.strip()[:40]!r})"
    if op in ("garbage", "perturb", "rename_key") and "=" in line:
        key, _, value = line.partition("=")
        if op == "garbage":
            new = _CFG_GARBAGE[int(rng.integers(len(_CFG_GARBAGE)))]
            lines[k] = f"{key.strip()} = {new}"
            return "\n".join(lines), f"[{sections[k]}] {key.strip()} = {new!r}"
        if op == "perturb":
            new = _numbers_perturbed(value, rng)
            lines[k] = f"{key.strip()} = {new}"
            return "\n".join(
                lines
            ), f"[{sections[k]}] {key.strip()} = {new!r} (was {value.strip()!r})"
        new_key = key.strip()[:-1] if len(key.strip()) > 1 else "x"
        lines[k] = f"{new_key} = {value.strip()}"
        return "\n".join(lines), f"[{sections[k]}] rename({key.strip()}->{new_key})"
    if op in ("delete_section", "dup_section"):
        heads = [i for i, s in enumerate(lines) if s.strip().startswith("[")]
        if heads:
            important = [i for i in heads if sections[i] in _IMPORTANT_SECTIONS]
            i = (important or heads)[int(rng.integers(len(important or heads)))]
            if op == "delete_section":
                end = next((j for j in heads if j > i), len(lines))
                name = lines[i].strip()
                if rng.random() < 0.5:
                    del lines[i:end]
                    return "\n".join(lines), f"delete_section({name})"
                del lines[i]
                return "\n".join(lines), f"delete_section_header({name})"
            lines.insert(i, lines[i])
            return "\n".join(lines), f"duplicate_section_header({lines[i].strip()})"
    if op in ("peak", "attenuator", "add_key"):
        target = {"peak": "[peaks]", "attenuator": "[attenuators]", "add_key": "[fit]"}[op]
        heads = [i for i, s in enumerate(lines) if s.strip() == target]
        if op == "peak":
            new = _CFG_PEAKS[int(rng.integers(len(_CFG_PEAKS)))]
        elif op == "attenuator":
            new = _CFG_ATTENUATORS[int(rng.integers(len(_CFG_ATTENUATORS)))]
        else:
            key = str(rng.choice(_CFG_FIT_KEYS))
            new = f"{key} = {_CFG_GARBAGE[int(rng.integers(len(_CFG_GARBAGE)))]}"
        key = new.partition("=")[0].strip()
        if heads:  # set the key: replace its line in the section, else add one
            end = next(
                (i for i in range(heads[0] + 1, len(lines)) if lines[i].strip().startswith("[")),
                len(lines),
            )
            same = [
                i for i in range(heads[0] + 1, end) if lines[i].partition("=")[0].strip() == key
            ]
            if same:
                lines[same[0]] = new
            else:
                lines.insert(heads[0] + 1, new)
        else:
            lines += [target, new]
        return "\n".join(lines), f"{target} {new!r}"
    if op == "truncate":
        cut = int(rng.integers(len(text) + 1))
        return text[:cut], f"truncate({cut})"
    if op == "junk":
        pos = int(rng.integers(len(text) + 1))
        junk = bytes(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8))
        return text[:pos] + junk.decode("latin-1") + text[pos:], f"junk({pos})"
    if op == "empty":
        return "", "empty_file"
    if op == "crlf":
        return text.replace("\n", "\r\n"), "crlf"
    return text, f"{op}(skipped)"


# fmt: off
_CFG_WEIGHTS = {
    "tests-hand-edited": 3.0,
    "several-energies": 2.0,
    "make_fit_config": 3.0,
    "pymca-shipped": 1.0,
}
# fmt: on


def _cfg_case(rng, workdir: Path, bases, stem: str) -> Case:
    weights = np.array([_CFG_WEIGHTS[name] for name, _ in bases])
    name, data = bases[int(rng.choice(len(bases), p=weights / weights.sum()))]
    text = data.decode("utf-8")
    descs = []
    latin = False
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
        text, desc = _mut_cfg(text, rng)
        latin = latin or desc.startswith("junk")
        descs.append(desc)
    raw = text.encode("latin-1", errors="replace") if latin else text.encode("utf-8")
    path = workdir / f"{stem}.cfg"
    path.write_bytes(raw)
    return Case(name, " + ".join(descs), str(path), raw)


def _canonical(cfg: dict) -> str:
    """The configuration as sorted JSON. Keys holding '%' are left out: PyMca's ConfigDict writes
    them with '%%' but reads them back as written (it unescapes values only), and PyMca has no
    such key, so they are junk either way."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if "%" not in str(k)}
        return value

    return json.dumps(plain(cfg), sort_keys=True, default=str)


_FIT_MAPS: dict[int, Any] = {}


def _fit_map(nchan: int):
    """A 1 x 2 pixel, one-detector map with ``nchan`` channels (the example's first channels)."""
    if nchan not in _FIT_MAPS:
        import xrfdask as xd

        ds = xd.datasets.example_dataset(shape=(1, 2), n_detectors=1)
        _FIT_MAPS[nchan] = ds.isel(channel=slice(0, nchan))
    return _FIT_MAPS[nchan]


def check_cfg(case: Case, rng, caught: list) -> None:
    import dask
    from PyMca5.PyMcaIO.ConfigDict import ConfigDict

    import xrfdask as xd
    from xrfdask.fit.config import config_from_text, config_to_text, load_config, validate_config
    from xrfdask.fit.model import check_with_pymca

    method = str(rng.choice(["linear", "linear", "pymca", "full"]))
    nchan = int(rng.choice([4096] * 6 + [2048, 1024, 300, 2]))
    cfg = validate_config(load_config(case.path), nchan=nchan, method=method)
    again = validate_config(copy.deepcopy(cfg), nchan=nchan, method=method)
    expect(
        _canonical(again) == _canonical(cfg), "validating the normalised configuration changes it"
    )
    text = config_to_text(cfg)
    back = validate_config(config_from_text(text), nchan=nchan, method=method)
    expect(
        _canonical(back) == _canonical(cfg), "the .cfg text round trip changes the configuration"
    )
    messages = " ".join(str(w.message) for w in caught)
    given = ConfigDict()
    given.read(case.path)
    fit_given = given.get("fit", {})
    for key in ("xmin", "xmax"):
        value = fit_given.get(key)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and f"fit.{key}" not in (messages)
        ):
            expect(
                cfg["fit"][key] == value, f"fit.{key} {cfg['fit'][key]} but the file says {value}"
            )
    if isinstance(given.get("peaks"), dict):
        wanted = {str(k).strip().capitalize() for k in given["peaks"]}
        expect(set(cfg["peaks"]) == wanted, f"peaks {sorted(cfg['peaks'])}, file {sorted(wanted)}")
    check_with_pymca(cfg, weight=None, npixels=2)
    if rng.random() < (0.15 if method == "full" else 0.5) and nchan >= 2:
        with dask.config.set(scheduler="synchronous"):
            result = xd.fit(_fit_map(nchan), case.path, method=method)
            area = result.peak_area.values
            error = result.peak_area_error.values
            sums = result.sum_area.values
        lines = [str(v) for v in result.line.values]
        expect(area.shape == (1, 2, 1, len(lines)), f"peak_area shape {area.shape}")
        expect(not np.isinf(area).any() and not np.isinf(error).any(), "infinite peak areas")
        expect(sums.shape == (1, len(lines)), f"sum_area shape {sums.shape}")
        elements = {str(e) for e in cfg["peaks"]}
        for line in lines:
            element = line.split()[0]
            expect(
                line.startswith(("Compt", "Rayl")) or element in elements,
                f"line {line!r} not in the configuration",
            )


# --- driver -------------------------------------------------------------------------------------

MAKERS = {"geopixe": _geopixe_case, "h5": _h5_case, "cnc": _cnc_case, "cfg": _cfg_case}
CHECKS = {"geopixe": check_geopixe, "h5": check_h5, "cnc": check_cnc, "cfg": check_cfg}
REFERENCE = {
    "geopixe": reference_reads_geopixe,
    "h5": lambda case: False,
    "cnc": reference_reads_cnc,
    "cfg": lambda case: False,
}
BASES = {"geopixe": geopixe_bases, "h5": h5_bases, "cnc": cnc_bases, "cfg": cfg_bases}
SUFFIX = {"geopixe": ".GeoPIXE", "h5": ".h5", "cnc": ".cnc", "cfg": ".cfg"}

_STATE: dict[str, Any] = {}


def _on_alarm(signum, frame):
    raise CaseTimeout(f"case ran past {_STATE['timeout']} s")


def _init_worker(seed: int, root: str, timeout: float, memory_gb: float) -> None:
    workdir = tempfile.mkdtemp(prefix=f"worker{os.getpid()}-", dir=root)
    os.environ["XRFDASK_CACHE_DIR"] = os.path.join(workdir, "cache")
    import dask

    dask.config.set(scheduler="synchronous")
    signal.signal(signal.SIGALRM, _on_alarm)
    if memory_gb > 0:
        import resource

        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _STATE.update(seed=seed, workdir=Path(workdir), timeout=timeout, bases={})


def _bases(kind: str):
    if kind not in _STATE["bases"]:
        folder = _STATE["workdir"] / f"bases-{kind}"
        folder.mkdir(exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _STATE["bases"][kind] = BASES[kind](folder)
    return _STATE["bases"][kind]


def run_case(kind: str, index: int) -> Result:
    rng = np.random.default_rng([_STATE["seed"], KINDS.index(kind), index])
    workdir: Path = _STATE["workdir"]
    stem = f"case{index}"
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # the mutations' own casts (inf in float16...)
            case = MAKERS[kind](rng, workdir, _bases(kind), stem)
    except Exception as exc:  # noqa: BLE001 - a bug of the fuzzer itself: reported as such
        outcome = f"UNEXPECTED:fuzzer:{type(exc).__name__}"
        return Result(kind, index, "?", "?", outcome, str(exc), _where(exc.__traceback__))
    name = None if kind == "cfg" else os.path.basename(case.path)
    signal.setitimer(signal.ITIMER_REAL, _STATE["timeout"])
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # PyMca prints ("Needed 10 iterations")
            outcome, message, where = attempt(lambda caught: CHECKS[kind](case, rng, caught), name)
    except CaseTimeout as exc:  # the alarm fired outside the reader (classification)
        outcome, message, where = "UNEXPECTED:timeout", str(exc), ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    reads = outcome.startswith("XrfdaskError") and REFERENCE[kind](case)
    keep = outcome.startswith("UNEXPECTED") or reads
    result = Result(
        kind, index, case.base, case.mutation, outcome, message, where,
        reference_reads=reads, data=case.data if keep else None, suffix=SUFFIX[kind],
        seconds=time.perf_counter() - start,
    )  # fmt: skip
    for leftover in workdir.glob(f"{stem}*"):
        leftover.unlink()
    for leftover in workdir.glob("*.xrfidx.npz"):
        leftover.unlink()
    return result


def run_batch(batch: tuple[str, int, int]) -> list[Result]:
    kind, start, stop = batch
    return [run_case(kind, i) for i in range(start, stop)]


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def report(
    results: dict[str, list[Result]],
    counts: dict[str, int],
    wall: dict[str, float],
    keep: str | None,
) -> int:
    """Print the table and the examples; save failures; return the number of unexpected cases."""
    unexpected = 0
    print()
    print(f"{'kind':<8} {'cases':>6} {'wall s':>7}  {'outcome':<58} {'count':>6}")
    for kind in KINDS:
        if not counts.get(kind):
            continue
        table = collections.Counter(r.outcome for r in results[kind])
        first = True
        for outcome, n in sorted(
            table.items(), key=lambda t: (t[0].startswith("UNEXPECTED"), t[0])
        ):
            head = f"{kind:<8} {len(results[kind]):>6} {wall[kind]:>7.1f}" if first else " " * 23
            print(f"{head}  {outcome:<58} {n:>6}")
            first = False
            if outcome.startswith("UNEXPECTED"):
                unexpected += n
        reads = sum(r.reference_reads for r in results[kind])
        if reads:
            print(" " * 23 + f"  {'(of the errors: rejected, reference reads it)':<58} {reads:>6}")
    shown = collections.Counter()
    lines = []
    for kind in KINDS:
        for r in sorted(results.get(kind, []), key=lambda r: r.index):
            label = (
                r.outcome
                if r.outcome.startswith("UNEXPECTED")
                else ("rejected-reference-reads" if r.reference_reads else None)
            )
            if label is None or shown[(kind, label)] >= EXAMPLES_SHOWN:
                continue
            shown[(kind, label)] += 1
            lines.append(
                f"{label} {kind} case {r.index} [{r.base}] {r.mutation}: {r.message[:240]!r} "
                f"at {r.where}"
            )
            if keep and r.data is not None:
                folder = Path(keep) / kind / _safe(label)
                folder.mkdir(parents=True, exist_ok=True)
                stem = f"case{r.index}-{_safe(r.base)}"
                (folder / f"{stem}{r.suffix}").write_bytes(r.data)
                (folder / f"{stem}.txt").write_text(
                    f"kind {kind}\ncase {r.index}\nbase {r.base}\nmutation {r.mutation}\n"
                    f"outcome {r.outcome}\nmessage {r.message}\nwhere {r.where}\n"
                )
    if lines:
        print(f"\nExamples (first {EXAMPLES_SHOWN} per outcome):")
        for line in lines:
            print("  " + line)
    return unexpected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    for kind in KINDS:
        parser.add_argument(
            f"--{kind}", type=int, default=None, help=f"cases (default {DEFAULT_COUNTS[kind]:,})"
        )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run: " + ", ".join(f"{k} {v}" for k, v in QUICK_COUNTS.items()),
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--keep-failures",
        metavar="DIR",
        default=None,
        help="save the first inputs of each unexpected outcome there",
    )
    parser.add_argument("--case-timeout", type=float, default=120.0)
    parser.add_argument(
        "--memory-gb", type=float, default=8.0, help="address-space limit per worker (0: none)"
    )
    parser.add_argument("--batch", type=int, default=25)
    args = parser.parse_args(argv)
    defaults = QUICK_COUNTS if args.quick else DEFAULT_COUNTS
    counts = {k: getattr(args, k) if getattr(args, k) is not None else defaults[k] for k in KINDS}
    root = tempfile.mkdtemp(prefix="xrfdask-fuzz-")
    print(
        f"fuzz_inputs: seed {args.seed}, workers {args.workers}, "
        + ", ".join(f"{k} {counts[k]:,}" for k in KINDS),
        flush=True,
    )
    results: dict[str, list[Result]] = {k: [] for k in KINDS}
    wall: dict[str, float] = {}
    init = (args.seed, root, args.case_timeout, args.memory_gb)
    started = time.perf_counter()
    try:
        if args.workers > 1:
            pool = mp.get_context("spawn").Pool(args.workers, _init_worker, init)
        else:
            _init_worker(*init)
            pool = None
        for kind in KINDS:
            n = counts[kind]
            if not n:
                continue
            batches = [(kind, a, min(n, a + args.batch)) for a in range(0, n, args.batch)]
            t0 = last = time.perf_counter()
            done = 0
            iterator = pool.imap_unordered(run_batch, batches) if pool else map(run_batch, batches)
            for batch in iterator:
                results[kind].extend(batch)
                done += len(batch)
                now = time.perf_counter()
                if now - last > 15 or done == n:
                    bad = sum(r.outcome.startswith("UNEXPECTED") for r in results[kind])
                    print(
                        f"  [{now - started:6.0f} s] {kind}: {done:,}/{n:,}, unexpected {bad}",
                        flush=True,
                    )
                    last = now
            wall[kind] = time.perf_counter() - t0
        if pool:
            pool.close()
            pool.join()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    unexpected = report(results, counts, wall, args.keep_failures)
    total = time.perf_counter() - started
    print(f"\nwall time {total:.0f} s; unexpected outcomes: {unexpected}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
