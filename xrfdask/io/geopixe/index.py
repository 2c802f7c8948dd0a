"""The record index of a ``.GeoPIXE`` file: each pixel record's start, length and deadtime.

Built by one compiled pass over the record headers (bodies are never decoded) and cached beside
the file (``<file>.xrfidx.npz``) or, when that folder is not writable, in the user cache directory.
A cache is used only if the file's size, modification time and header are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from xrfdask._jit import cache_root
from xrfdask.errors import FormatError, TruncatedMapWarning, XrfdaskWarning
from xrfdask.io.geopixe import kernels
from xrfdask.io.geopixe.header import GeoPixeHeader, read_header

__all__ = ["GeoPixeIndex", "build_index", "index_geopixe", "cache_dir"]

_CACHE_VERSION = 1
_CACHE_SUFFIX = ".xrfidx.npz"
_MAX_DETECTORS = 256
_INDEX_WINDOW = 64 * 2**20  # bytes mapped at a time by the index walk (records are < 263 kB)


@dataclass(frozen=True, eq=False)
class GeoPixeIndex:
    """Where every pixel record of a ``.GeoPIXE`` file lies.

    Records are numbered in file order; record ``k`` belongs to pixel ``k // ndet`` (row-major) and
    detector ``k % ndet``. Only the first ``n_records`` exist: a map whose scan stopped early has
    fewer than ``Xres * Yres * ndet``.
    """

    path: str
    header: GeoPixeHeader
    ndet: int
    offsets: np.ndarray  # uint64, byte offset of each record
    lengths: np.ndarray  # uint32, record length in bytes (16-byte header included)
    deadtime: np.ndarray  # float32, percent
    file_size: int
    mtime_ns: int
    dropped_offset: int | None  # start of an incomplete trailing record that was dropped

    @property
    def xres(self) -> int:
        return self.header.xres

    @property
    def nchan(self) -> int:
        return self.header.nchan

    @property
    def n_records(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def n_expected(self) -> int:
        """Records a complete map holds: Xres * Yres * ndet."""
        return self.header.xres * self.header.yres * self.ndet

    @property
    def nrows(self) -> int:
        """Rows holding at least one record (the rows of the opened map)."""
        per_row = self.xres * self.ndet
        return -(-self.n_records // per_row)

    @property
    def complete(self) -> bool:
        return self.n_records == self.n_expected

    def record_number(self, y: int, x: int, detector: int = 0) -> int:
        return (y * self.xres + x) * self.ndet + detector

    def byte_range(self, y0: int, y1: int, x0: int, x1: int) -> tuple[int, int, int, int]:
        """Records and bytes covering rows [y0, y1) and columns [x0, x1).

        Returns ``(k0, k1, start, stop)``: records k0 .. k1-1 lie back to back in bytes
        [start, stop). ``k0 == k1`` when none of them exist (beyond a truncated end).
        """
        k0 = min(self.record_number(y0, x0), self.n_records)
        k1 = min(self.record_number(y1 - 1, x1 - 1, self.ndet - 1) + 1, self.n_records)
        if k1 <= k0:
            return k0, k0, 0, 0
        start = int(self.offsets[k0])
        stop = int(self.offsets[k1 - 1]) + int(self.lengths[k1 - 1])
        return k0, k1, start, stop

    def present(self, nrows: int | None = None) -> np.ndarray:
        """Boolean (rows, Xres, ndet): True where a record exists."""
        nrows = self.nrows if nrows is None else nrows
        mask = np.zeros(nrows * self.xres * self.ndet, dtype=bool)
        mask[: self.n_records] = True
        return mask.reshape(nrows, self.xres, self.ndet)

    def deadtime_map(self, nrows: int | None = None) -> np.ndarray:
        """Float32 (rows, Xres, ndet) deadtime in percent; 0 where a record is missing."""
        nrows = self.nrows if nrows is None else nrows
        out = np.zeros(nrows * self.xres * self.ndet, dtype=np.float32)
        out[: self.n_records] = self.deadtime
        return out.reshape(nrows, self.xres, self.ndet)

    def summary(self) -> dict:
        """Facts about the map known from the index alone (nothing decoded)."""
        header = self.header
        complete_pixels = self.n_records // self.ndet
        dt = self.deadtime.reshape(-1)
        det = np.arange(self.n_records) % self.ndet
        deadtime = {}
        for d in range(self.ndet):
            values = dt[det == d]
            if values.size:
                deadtime[d] = (float(values.min()), float(values.max()), float(values.mean()))
        return {
            "path": self.path,
            "file_size": self.file_size,
            "header_length": header.length,
            "timestamp": header.file_header.get("Timestamp"),
            "dwell_ms": header.dwell_ms,
            "xres": header.xres,
            "yres": header.yres,
            "rows_present": self.nrows,
            "width_mm": header.width_mm,
            "height_mm": header.height_mm,
            "ndet": self.ndet,
            "header_dets": header.dets,
            "detector_blocks": len(header.detectors),
            "nchan": self.nchan,
            "gain_ev": header.gain_ev,
            "tube": {
                k: header.source.get(k) for k in ("Elt", "KV", "UA (µA)") if k in header.source
            },
            "n_records": self.n_records,
            "n_expected": self.n_expected,
            "missing_pixels": header.xres * header.yres - complete_pixels,
            "dropped_offset": self.dropped_offset,
            "dense_bytes": header.xres * header.yres * self.ndet * self.nchan * 2,
            "deadtime": deadtime,
        }

    def to_dataset(self) -> xr.Dataset:
        """The per-record table as an :class:`xarray.Dataset` on a ``record`` dimension."""
        k = np.arange(self.n_records, dtype=np.int64)
        pixel = k // self.ndet
        data = {
            "offset": ("record", self.offsets),
            "length": ("record", self.lengths),
            "x": ("record", (pixel % self.xres).astype(np.uint16)),
            "y": ("record", (pixel // self.xres).astype(np.uint16)),
            "detector": ("record", (k % self.ndet).astype(np.uint16)),
            "deadtime": ("record", self.deadtime, {"units": "percent"}),
        }
        attrs = {
            "source_path": self.path,
            "file_size": self.file_size,
            "header_length": self.header.length,
            "Xres": self.header.xres,
            "Yres": self.header.yres,
            "ndet": self.ndet,
            "Chan": self.nchan,
            "n_records": self.n_records,
            "n_expected": self.n_expected,
            "complete": int(self.complete),
        }
        return xr.Dataset(data, attrs=attrs)


def index_geopixe(path: str | os.PathLike, *, cache: bool = True) -> xr.Dataset:
    """Index the pixel records of a ``.GeoPIXE`` file, without decoding any spectrum.

    Parameters
    ----------
    path : str or path-like
        The file.
    cache : bool, default True
        Reuse (and store) the cached index beside the file or in the user cache directory.

    Returns
    -------
    xarray.Dataset
        One entry per record on dimension ``record``: ``offset``, ``length``, ``x``, ``y``,
        ``detector``, ``deadtime`` (percent).

    Raises
    ------
    FormatError
        If the header or any record header is broken (see :func:`build_index`).
    """
    return build_index(path, cache=cache).to_dataset()


def build_index(path: str | os.PathLike, *, cache: bool = True) -> GeoPixeIndex:
    """Build (or load from cache) the :class:`GeoPixeIndex` of a file.

    A record that is cut off by the end of the file is dropped with a
    :class:`~xrfdask.errors.TruncatedMapWarning`. Every other inconsistency (bad tag, impossible
    length, a record whose x, y or detector is not the next expected one, surplus records) raises
    :class:`~xrfdask.errors.FormatError` naming the byte offset.
    """
    # Absolute: read tasks reopen the file by path, on workers whose working folder may differ.
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot open ({exc.strerror})") from None
    header = read_header(path)
    key = _cache_key(header, st)
    if cache:
        loaded = _load_cache(path, header, st, key)
        if loaded is not None:
            _warn_detectors(loaded)
            _warn_truncation(loaded)
            return loaded
    index = _walk(path, header, st)
    _warn_detectors(index)
    _warn_truncation(index)
    if cache:
        _store_cache(index, key)
    return index


def _count_detectors(f, size: int, header: GeoPixeHeader, path: str) -> int:
    """Detectors per pixel: the records of the first pixel (x = y = 0), checked against 'Dets'."""
    pos = header.data_start
    starts: list[int] = []
    at_eof = False  # the file ends inside the first pixel: a truncated map, not fewer detectors
    while len(starts) <= _MAX_DETECTORS:
        if pos + 16 > size:
            at_eof = True
            break
        f.seek(pos)
        tag, length, x, y, det = struct.unpack("<2sI3H", f.read(12))
        if tag != b"DP" or (x, y) != (0, 0) or det != len(starts) or length < 16:
            break
        if pos + length > size:
            at_eof = True
            break
        starts.append(pos)
        pos += length
    found = len(starts)
    dets = header.dets
    if found == 0:
        return dets or 1  # the index walk reports what is wrong with the first record
    if dets is None:
        return found
    if found > dets:
        raise FormatError(
            f"{path}: record at offset {starts[dets]} holds (x=0, y=0, detector={dets}), outside "
            f"the header's Dets = {dets}"
        )
    if found < dets and not at_eof:
        return found  # warned by build_index (_warn_detectors), from the cache too
    return dets


def _walk(path: str, header: GeoPixeHeader, st: os.stat_result) -> GeoPixeIndex:
    with open(path, "rb") as f:
        ndet = _count_detectors(f, st.st_size, header, path)
        n_expected = header.xres * header.yres * ndet
        # Records take at least 16 bytes: never allocate more than the file can hold (a corrupt
        # header may claim billions of pixels).
        capacity = min(n_expected, (st.st_size - header.data_start) // 16 + 1)
        offsets = np.empty(capacity, dtype=np.uint64)
        lengths = np.empty(capacity, dtype=np.uint32)
        dt_bits = np.empty(capacity, dtype=np.uint32)
        n, pos, status = 0, header.data_start, kernels.NEED_MORE
        while status == kernels.NEED_MORE:
            n, status, pos, a, b, c = _walk_window(
                f, pos, st.st_size, n, header, ndet, n_expected, offsets, lengths, dt_bits
            )
    dropped = None
    if status == kernels.TRUNCATED:
        dropped = int(pos)
    elif status != kernels.OK:
        raise FormatError(_describe(path, header, ndet, n, status, pos, a, b, c))
    if n == 0:
        raise FormatError(f"{path}: no complete pixel record after the header (offset {pos})")
    return GeoPixeIndex(
        path=path,
        header=header,
        ndet=ndet,
        offsets=offsets[:n].copy(),
        lengths=lengths[:n].copy(),
        deadtime=dt_bits[:n].view(np.float32).copy(),
        file_size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        dropped_offset=dropped,
    )


def _walk_window(f, pos, size, k, header, ndet, n_expected, offsets, lengths, dt_bits):
    """Index the records of one memory-mapped window starting near ``pos``.

    Windows keep the resident memory bounded: mapping the whole file would make every page of it
    count towards the process's memory while the walk runs.
    """
    base = pos - pos % mmap.ALLOCATIONGRANULARITY
    length = min(_INDEX_WINDOW, size - base)
    mm = mmap.mmap(f.fileno(), length, offset=base, access=mmap.ACCESS_READ)
    buf = None
    try:
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        buf = np.frombuffer(mm, dtype=np.uint8)
        result = kernels.index_records(
            buf, base, pos, size, k, header.xres, ndet, header.nchan, n_expected,
            offsets, lengths, dt_bits,
        )  # fmt: skip
    finally:
        # Drop the view first: closing a map still exported to numpy raises BufferError, which
        # would hide the error (or interrupt) that brought us here.
        buf = None
        try:
            mm.close()
        except BufferError:
            pass  # a view survived in a traceback; the map is unmapped when it is collected
    return result


def _describe(path, header, ndet, k, status, pos, a, b, c) -> str:
    """One-line message for a failed index walk at record ``k``, byte offset ``pos``."""
    pixel, det = divmod(int(k), ndet)
    ey, ex = divmod(pixel, header.xres)
    where = f"{path}: record at offset {pos}"
    if status == kernels.BAD_TAG:
        return f"{where} starts with {a.to_bytes(2, 'little')!r}, expected 'DP'"
    if status == kernels.BAD_LENGTH:
        return (
            f"{where} has length {a}, expected 16 + 4k bytes with at most Chan = {header.nchan} "
            "channel pairs"
        )
    if status == kernels.SURPLUS:
        return (
            f"{where} is surplus: the header's Xres x Yres x detectors = {header.xres} x "
            f"{header.yres} x {ndet} records all precede it"
        )
    if status == kernels.MISPLACED:
        x, y, d = int(a), int(b), int(c)
        found = f"(x={x}, y={y}, detector={d})"
        expected = f"(x={ex}, y={ey}, detector={det})"
        if x >= header.xres or y >= header.yres or d >= ndet:
            return (
                f"{where} holds {found}, outside the header's Xres={header.xres}, "
                f"Yres={header.yres}, {ndet} detector(s)"
            )
        if (y, x, d) < (ey, ex, det):
            return f"{where} holds {found}, expected {expected}: duplicated or out-of-order record"
        return f"{where} holds {found}, expected {expected}: a record is missing or out of order"
    return f"{where}: unexpected index status {status}"


def _warn_detectors(index: GeoPixeIndex) -> None:
    dets = index.header.dets
    if dets is not None and index.ndet < dets:
        warnings.warn(
            f"{index.path}: header says Dets = {dets} but each pixel holds {index.ndet} detector "
            f"record(s); reading {index.ndet}",
            XrfdaskWarning,
            stacklevel=3,
        )


def _warn_truncation(index: GeoPixeIndex) -> None:
    if index.dropped_offset is not None:
        warnings.warn(
            f"{index.path}: file ends inside the record at offset {index.dropped_offset}; "
            f"it was dropped ({index.n_records} of {index.n_expected} records read)",
            TruncatedMapWarning,
            stacklevel=3,
        )
    elif not index.complete:
        warnings.warn(
            f"{index.path}: map ends after {index.n_records} of {index.n_expected} records "
            f"(scan stopped early); missing pixels read as zero, see the 'present' variable",
            TruncatedMapWarning,
            stacklevel=3,
        )


# --- cache -------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """User cache directory for indexes of files in read-only folders.

    ``$XRFDASK_CACHE_DIR`` if set, else the platform's user cache (``~/.cache/xrfdask``).
    """
    return cache_root()


def _cache_key(header: GeoPixeHeader, st: os.stat_result) -> str:
    digest = hashlib.sha256(header.raw).hexdigest()
    return json.dumps(
        {
            "version": _CACHE_VERSION,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "header": digest,
        }
    )


def _cache_paths(path: str) -> list[Path]:
    beside = Path(path + _CACHE_SUFFIX)
    name = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:32] + _CACHE_SUFFIX
    return [beside, cache_dir() / "index" / name]


def _writable(folder: Path) -> bool:
    """Writable, and meant to be: root may write anywhere, but a folder without any write
    permission bit is read-only by intent (shared data, archives)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(stat.S_IMODE(mode) & 0o222)


def _load_cache(path: str, header: GeoPixeHeader, st, key: str) -> GeoPixeIndex | None:
    for candidate in _cache_paths(path):
        try:
            with np.load(candidate, allow_pickle=False) as z:
                if str(z["key"]) != key:
                    continue
                dropped = int(z["dropped_offset"])
                return GeoPixeIndex(
                    path=path,
                    header=header,
                    ndet=int(z["ndet"]),
                    offsets=z["offsets"],
                    lengths=z["lengths"],
                    deadtime=z["deadtime"],
                    file_size=st.st_size,
                    mtime_ns=st.st_mtime_ns,
                    dropped_offset=None if dropped < 0 else dropped,
                )
        except (OSError, KeyError, ValueError, EOFError):
            continue  # absent, unreadable or stale: rebuild
    return None


def _store_cache(index: GeoPixeIndex, key: str) -> None:
    payload = {
        "key": np.array(key),
        "ndet": np.array(index.ndet),
        "offsets": index.offsets,
        "lengths": index.lengths,
        "deadtime": index.deadtime,
        "dropped_offset": np.array(-1 if index.dropped_offset is None else index.dropped_offset),
    }
    for target in _cache_paths(index.path):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not _writable(target.parent):
                continue
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=_CACHE_SUFFIX)
        except OSError:
            continue  # folder not writable: try the next place
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **payload)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            return
        except OSError:
            if os.path.exists(tmp):
                os.unlink(tmp)
