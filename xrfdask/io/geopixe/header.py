"""The JSON header of a ``.GeoPIXE`` file: read, validate, and write back.

Layout (spec ``geopixe.md`` 1.1): a little-endian uint16 ``H``, then ``H`` bytes of UTF-8 JSON,
then the first pixel record (tag ``DP``) at offset ``2 + H``.

Instrument files repeat the ``"Detector"`` key once per detector. A plain ``json.loads`` keeps only
the last one, so the header is parsed with an object-pairs hook that keeps every block: in the
parsed dictionary ``"Detector"`` is always a list of blocks in file order. Writing turns that list
back into repeated keys, with the same formatting as ReadoutXFM's writer (``json.dumps`` with a tab
indent), so a header written by that tool is reproduced byte for byte.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

from xrfdask.errors import FormatError, XrfdaskWarning

__all__ = ["GeoPixeHeader", "read_header", "parse_header_text", "dump_header", "MAX_HEADER_BYTES"]

#: A header length is a uint16, so the JSON text is at most this long.
MAX_HEADER_BYTES = 65535
#: The tag that starts every pixel record.
RECORD_TAG = b"DP"
#: Key whose repeated occurrences are kept as a list (one block per detector).
DETECTOR_KEY = "Detector"

_DEFAULT_CHAN = 4096
_DEFAULT_GAIN_EV = 10.0


@dataclass(frozen=True)
class GeoPixeHeader:
    """A parsed ``.GeoPIXE`` header.

    Attributes
    ----------
    fields : dict
        The JSON header; ``fields["Detector"]`` is a list of detector blocks in file order.
    length : int
        ``H``, the number of bytes of JSON text.
    raw : bytes
        The JSON text exactly as stored.
    """

    fields: dict[str, Any]
    length: int
    raw: bytes = field(repr=False)

    @property
    def data_start(self) -> int:
        """Byte offset of the first pixel record (``2 + H``)."""
        return 2 + self.length

    @property
    def file_header(self) -> dict[str, Any]:
        return self.fields.get("File Header", {})

    @property
    def xres(self) -> int:
        return int(self.file_header["Xres"])

    @property
    def yres(self) -> int:
        return int(self.file_header["Yres"])

    @property
    def nchan(self) -> int:
        return int(self.file_header.get("Chan", _DEFAULT_CHAN))

    @property
    def gain_ev(self) -> float:
        return float(self.file_header.get("Gain (eV)", _DEFAULT_GAIN_EV))

    @property
    def dets(self) -> int | None:
        """The header's ``Dets`` field, or None when absent."""
        value = self.file_header.get("Dets")
        return None if value is None else int(value)

    @property
    def width_mm(self) -> float | None:
        return _plausible_float(self.file_header.get("Width (mm)"))

    @property
    def height_mm(self) -> float | None:
        return _plausible_float(self.file_header.get("Height (mm)"))

    @property
    def dwell_ms(self) -> float | None:
        return _plausible_float(self.file_header.get("Dwell (mS)"))

    @property
    def source(self) -> dict[str, Any]:
        """The ``"X-ray Source"`` block (tube element ``Elt``, ``KV``, ...), or an empty dict."""
        return self.fields.get("X-ray Source", {})

    @property
    def detectors(self) -> list[dict[str, Any]]:
        """The detector blocks, in file order (one per detector in instrument files)."""
        return list(self.fields.get(DETECTOR_KEY, []))


def _plausible_float(value: Any) -> float | None:
    """A finite, sane-sized float or None: instruments leave garbage like 2.35e30 in fields."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or abs(number) > 1e12:
        return None
    return number


def read_header(path: str | os.PathLike) -> GeoPixeHeader:
    """Read and validate the header of a ``.GeoPIXE`` file.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    GeoPixeHeader

    Raises
    ------
    FormatError
        If the length field, the JSON text or its required keys are broken, or the first record
        does not start with ``DP`` at offset ``2 + H``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
        if len(head) < 2:
            raise FormatError(
                f"{path}: file is {len(head)} bytes long, too short for a GeoPIXE header"
            )
        if head == RECORD_TAG:
            raise FormatError(
                f"{path}: offset 0 holds a pixel record tag 'DP' instead of a header length: "
                "the file has no JSON header"
            )
        (length,) = struct.unpack("<H", head)
        raw = f.read(length)
        if len(raw) < length:
            raise FormatError(
                f"{path}: header length {length} at offset 0 runs past the end of the file "
                f"({2 + len(raw)} bytes)"
            )
        tag = f.read(2)
    fields = parse_header_text(raw, path)
    header = GeoPixeHeader(fields=fields, length=length, raw=raw)
    _validate(header, path)
    if tag != RECORD_TAG:
        what = "the end of the file" if not tag else f"bytes {tag!r}"
        raise FormatError(
            f"{path}: expected the first pixel record 'DP' at offset {2 + length} (2 + header "
            f"length {length}), found {what}"
        )
    return header


def parse_header_text(raw: bytes | str, path: str = "<header>") -> dict[str, Any]:
    """Parse header JSON, keeping every repeated ``"Detector"`` block.

    Parameters
    ----------
    raw : bytes or str
        The JSON text (bytes are decoded as UTF-8).
    path : str
        File name used in error messages.

    Returns
    -------
    dict
        The header; the top-level ``"Detector"`` entry is always a list of blocks.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"{path}: header text is not UTF-8 (bad byte at offset {2 + exc.start})"
            ) from None
    else:
        text = raw
    try:
        fields = json.loads(text, object_pairs_hook=_keep_repeated_keys)
    except json.JSONDecodeError as exc:
        # exc.pos counts characters; for the (ASCII) headers seen in practice it equals bytes.
        offset = 2 + len(text[: exc.pos].encode("utf-8"))
        raise FormatError(f"{path}: header JSON is broken at offset {offset}: {exc.msg}") from None
    if not isinstance(fields, dict):
        raise FormatError(f"{path}: header JSON is a {type(fields).__name__}, expected an object")
    detectors = fields.get(DETECTOR_KEY)
    if isinstance(detectors, _Repeated):
        fields[DETECTOR_KEY] = list(detectors)
    elif detectors is not None:
        fields[DETECTOR_KEY] = [detectors]
    _warn_other_repeats(fields, path)
    return fields


class _Repeated(list):
    """Marks a list made from a key that occurred more than once in one JSON object."""


def _keep_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            previous = out[key]
            if not isinstance(previous, _Repeated):
                previous = _Repeated([previous])
            previous.append(value)
            out[key] = previous
        else:
            out[key] = value
    return out


def _warn_other_repeats(obj: Any, path: str, where: str = "") -> None:
    """Repeated keys other than the top-level Detector are kept as lists, with a warning."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, _Repeated):
                warnings.warn(
                    f"{path}: header key {where}{key!r} occurs {len(value)} times; all values are "
                    "kept as a list",
                    XrfdaskWarning,
                    stacklevel=4,
                )
            _warn_other_repeats(value, path, f"{where}{key}/")
    elif isinstance(obj, list):
        for item in obj:
            _warn_other_repeats(item, path, where)


def _validate(header: GeoPixeHeader, path: str) -> None:
    fh = header.fields.get("File Header")
    if not isinstance(fh, dict):
        raise FormatError(f"{path}: header has no 'File Header' object")
    for key in ("Xres", "Yres"):
        value = fh.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)  # int(nan), int(inf) raise
            or value != int(value)
        ):
            raise FormatError(
                f"{path}: header 'File Header/{key}' is {value!r}, expected an integer"
            )
        if not 0 < int(value) <= 65536:
            raise FormatError(f"{path}: header 'File Header/{key}' is {value}, expected 1..65536")
    chan = fh.get("Chan", _DEFAULT_CHAN)
    if (
        isinstance(chan, bool)
        or not isinstance(chan, int | float)
        or not 0 < chan <= 65536
        or chan != int(chan)  # 4096.5 channels: not a channel count
    ):
        raise FormatError(
            f"{path}: header 'File Header/Chan' is {chan!r}, expected an integer 1..65536"
        )
    gain = fh.get("Gain (eV)", _DEFAULT_GAIN_EV)
    if isinstance(gain, bool) or _plausible_float(gain) is None or float(gain) <= 0:
        raise FormatError(f"{path}: header 'File Header/Gain (eV)' is {gain!r}, expected > 0")
    dets = fh.get("Dets")
    if dets is not None and (
        isinstance(dets, bool)
        or not isinstance(dets, int | float)
        or not math.isfinite(dets)
        or dets != int(dets)  # 2.0 is 2, as for Xres and Yres
        or not 1 <= dets <= 65536  # a record's detector field is a uint16
    ):
        raise FormatError(
            f"{path}: header 'File Header/Dets' is {dets!r}, expected an integer 1..65536"
        )


def dump_header(fields: dict[str, Any]) -> bytes:
    """Serialise a header the way ReadoutXFM's writer does.

    The output equals ``json.dumps(fields, indent="\\t")`` encoded as UTF-8, except that a
    ``"Detector"`` list is written as one repeated ``"Detector"`` key per block, as instruments do.

    Parameters
    ----------
    fields : dict
        A header as returned by :func:`parse_header_text`.

    Returns
    -------
    bytes
        The JSON text (no length prefix).
    """
    pairs: list[tuple[str, Any]] = []
    for key, value in fields.items():
        if key == DETECTOR_KEY and isinstance(value, list):
            pairs.extend((key, block) for block in value)
        else:
            pairs.append((key, value))
    text = _encode_pairs(pairs, 0)
    raw = text.encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise FormatError(
            f"header is {len(raw)} bytes of JSON; a GeoPIXE header holds at most {MAX_HEADER_BYTES}"
        )
    return raw


def _encode(value: Any, level: int) -> str:
    if isinstance(value, dict):
        return _encode_pairs(list(value.items()), level)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = "\t" * (level + 1)
        items = [inner + _encode(item, level + 1) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + "\t" * level + "]"
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalars picked up from edited attrs
    return json.dumps(value)


def _encode_pairs(pairs: list[tuple[str, Any]], level: int) -> str:
    if not pairs:
        return "{}"
    inner = "\t" * (level + 1)
    items = [
        inner + json.dumps(str(key)) + ": " + _encode(value, level + 1) for key, value in pairs
    ]
    return "{\n" + ",\n".join(items) + "\n" + "\t" * level + "}"
