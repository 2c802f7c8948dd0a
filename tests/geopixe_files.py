"""Test-side .GeoPIXE builder, written from the format description with ``struct``.

Independent of xrfdask's writer, so reader tests do not check the package against itself.
Slow (a Python loop per record): for small maps only.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

RECORD = struct.Struct("<2sI3Hf")


def header_fields(
    xres: int, yres: int, ndet: int, nchan: int = 4096, gain: float = 10.0, **extra
) -> dict:
    fh = {
        "Timestamp": "01/01/2026 at 09:00 am",
        "Dwell (mS)": 50.0,
        "Xres": xres,
        "Yres": yres,
        "Width (mm)": 0.025 * xres,
        "Height (mm)": 0.025 * yres,
        "Dets": ndet,
        "Chan": nchan,
        "Gain (eV)": gain,
        "Deadtime (%)": 0,
    }
    fh.update(extra)
    return {"File Header": fh, "X-ray Source": {"KV": 50.0, "Elt": "Mo"}}


def header_bytes(fields: dict, detectors: list[dict] | None = None) -> bytes:
    """Header text; repeated Detector blocks are spliced in as instruments write them."""
    text = json.dumps(fields, indent="\t")
    if detectors:
        blocks = ",\n".join(
            '\t"Detector": ' + json.dumps(d, indent="\t").replace("\n", "\n\t") for d in detectors
        )
        text = text[: text.rindex("\n}")] + ",\n" + blocks + "\n}"
    return text.encode("utf-8")


def record_bytes(x: int, y: int, det: int, dt: float, spectrum: np.ndarray) -> bytes:
    channels = np.flatnonzero(spectrum)
    body = np.empty(2 * channels.size, dtype="<u2")
    body[0::2] = channels
    body[1::2] = spectrum[channels]
    return RECORD.pack(b"DP", 16 + body.nbytes, x, y, det, dt) + body.tobytes()


def build(
    spectra: np.ndarray, deadtime: np.ndarray, fields: dict | None = None, detectors=None
) -> tuple[bytes, list[int]]:
    """File bytes for dense spectra (y, x, det, chan) and the start offset of every record."""
    ny, nx, nd, nc = spectra.shape
    fields = fields or header_fields(nx, ny, nd, nc)
    head = header_bytes(fields, detectors)
    out = [struct.pack("<H", len(head)), head]
    offsets = []
    pos = 2 + len(head)
    for y in range(ny):
        for x in range(nx):
            for d in range(nd):
                rec = record_bytes(x, y, d, float(deadtime[y, x, d]), spectra[y, x, d])
                offsets.append(pos)
                out.append(rec)
                pos += len(rec)
    return b"".join(out), offsets


def random_map(shape=(4, 5, 2, 64), seed=0, density=0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    spectra = rng.poisson(40, size=shape).astype(np.uint16)
    spectra[rng.random(shape) > density] = 0
    deadtime = rng.uniform(1, 60, size=shape[:3]).astype(np.float32)
    return spectra, deadtime


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
