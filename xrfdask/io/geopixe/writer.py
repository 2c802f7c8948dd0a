"""Write a raw map as a ``.GeoPIXE`` file, streaming block by block.

The header follows ReadoutXFM's rewrite rules (spec ``geopixe.md`` 3.2): ``Xres``/``Yres`` become
the map's size and ``Width``/``Height`` ``new_res * (old_size / old_res)``; nothing else changes.
Records are written in raster order with detectors interleaved, storing only non-zero channels,
with x and y counted from the map's origin (so a crop is re-based to 0, 0). An unmodified map
is written back with byte-identical records.

Bands of rows are encoded by dask tasks (``geopixe-encode``) and appended to a temporary file in
order, a few at a time; the file is renamed to its final name only once complete.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import FormatError, XrfdaskWarning
from xrfdask.io.atomic import atomic_output
from xrfdask.io.geopixe import kernels
from xrfdask.io.geopixe.header import dump_header
from xrfdask.model import check_not_empty
from xrfdask.runtime import iter_computed

__all__ = ["to_geopixe", "encode_band"]

_UNITS_TO_MM = {"mm": 1.0, "um": 1e-3, "µm": 1e-3, "micron": 1e-3, "m": 1e3, "nm": 1e-6}


def to_geopixe(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Write a raw map as a ``.GeoPIXE`` file.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map: ``spectra`` (y, x, detector, channel) with integer counts 0..65535; optional
        ``deadtime`` (y, x, detector, percent; 0 written where absent) and ``present`` (False
        pixels are written as empty records, or omitted at the end of the map as in a scan that
        stopped early). Crops (``.isel``/``.sel``) and edited deadtimes are written as such; a
        channel selection keeps its channel numbers (the header's channel count is the highest
        selected channel + 1).
    path : str or path-like
        Output file.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FormatError
        If a count cannot be stored as uint16 or the map is not on a regular grid.

    Notes
    -----
    The map is encoded band by band (x-blocks when a row is over the chunk budget) as dask tasks
    and appended in order, so memory is bounded by the chunk size. The file appears at ``path``
    only once complete (written under a temporary name, then renamed).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    check_not_empty(ds, path)
    spectra = _spectra(ds)
    ny, nx, ndet, nchan = spectra.shape
    channel_numbers = _channel_numbers(ds, nchan)
    header = dump_header(
        _header_fields(ds, ny, nx, ndet, int(channel_numbers[-1]) + 1 if nchan else 0)
    )
    emit = _emit_mask(ds, (ny, nx, ndet))
    deadtime = _deadtime(ds, spectra)

    bands = _encode_tasks(spectra, deadtime, emit, channel_numbers)
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        f.write(len(header).to_bytes(2, "little"))
        f.write(header)
        for payload in iter_computed(bands):
            f.write(payload)
    return path


def _spectra(ds: xr.Dataset) -> da.Array:
    if "spectra" not in ds:
        raise FormatError("to_geopixe: the dataset has no 'spectra' variable")
    spectra = ds["spectra"].transpose("y", "x", "detector", "channel")
    data = spectra.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(max(1, len(ds.y) // 8), -1, -1, -1))
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise FormatError(f"to_geopixe: spectra have dtype {data.dtype}, expected counts")
    return data


def _header_fields(ds: xr.Dataset, ny: int, nx: int, ndet: int, nchan: int) -> dict[str, Any]:
    """The header to write; ``nchan`` is one past the highest channel number stored."""
    source = ds.attrs.get("geopixe_header")
    fields = copy.deepcopy(source) if isinstance(source, dict) else _new_header(ds, ndet, nchan)
    fh = fields.setdefault("File Header", {})
    if not isinstance(fh.get("Chan"), int) or fh["Chan"] < nchan:
        fh["Chan"] = nchan  # a selection of channels keeps their numbers: Chan must cover them
    for dim, n, res_key, size_key in (
        ("x", nx, "Xres", "Width (mm)"),
        ("y", ny, "Yres", "Height (mm)"),
    ):
        old_res, old_size = fh.get(res_key), fh.get(size_key)
        pitch = _coordinate_pitch(ds, dim)
        fh[res_key] = n
        if isinstance(old_res, int | float) and isinstance(old_size, int | float) and old_res > 0:
            header_pitch = old_size / old_res
            if pitch is None or np.isclose(pitch, header_pitch, rtol=1e-9, atol=0):
                fh[size_key] = n * (old_size / old_res)  # ReadoutXFM's exact float expression
                continue
        if pitch is not None:
            fh[size_key] = n * pitch
    if isinstance(source, dict):
        _select_detectors(fields, ds, ndet)
    return fields


def _new_header(ds: xr.Dataset, ndet: int, nchan: int) -> dict[str, Any]:
    """A minimal header for a map that did not come from a .GeoPIXE file."""
    gain_ev = 10.0
    if "energy" in ds.coords and ds.sizes["channel"] > 1:
        energy = np.asarray(ds["energy"].values, dtype=float)  # eager-ok: 1-D coordinate
        channel = np.asarray(ds["channel"].values, dtype=float)  # eager-ok: 1-D coordinate
        # keV per channel *number* (a strided selection of channels keeps the calibration).
        gain_ev = float((energy[-1] - energy[0]) / (channel[-1] - channel[0]) * 1000.0)
        offset = energy[0] - channel[0] * gain_ev / 1000.0
        if abs(offset) > 1e-6:
            warnings.warn(
                f"to_geopixe: energy calibration offset {offset:.4g} keV cannot be stored in a "
                ".GeoPIXE header (energy = channel x gain); it is dropped",
                XrfdaskWarning,
                stacklevel=4,
            )
    fh: dict[str, Any] = {"Xres": 0, "Yres": 0, "Dets": ndet, "Chan": nchan, "Gain (eV)": gain_ev}
    dwell = ds.attrs.get("dwell_ms")
    if dwell is not None:
        fh["Dwell (mS)"] = float(dwell)
    fh["Deadtime (%)"] = 0
    fields: dict[str, Any] = {"File Header": fh}
    if "tube_element" in ds.attrs or "tube_kv" in ds.attrs:
        fields["X-ray Source"] = {
            k: v
            for k, v in (("KV", ds.attrs.get("tube_kv")), ("Elt", ds.attrs.get("tube_element")))
            if v is not None
        }
    return fields


def _coordinate_pitch(ds: xr.Dataset, dim: str) -> float | None:
    """Pixel pitch in mm from the coordinate, None if it cannot tell; error if irregular."""
    if dim not in ds.coords or ds.sizes[dim] < 2:
        return None
    coord = ds[dim]
    units = str(coord.attrs.get("units", "mm"))
    if units == "pixel":
        return None
    scale = _UNITS_TO_MM.get(units)
    if scale is None:
        return None
    values = np.asarray(coord.values, dtype=float)  # eager-ok: 1-D coordinate
    steps = np.diff(values)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise FormatError(
            f"to_geopixe: the '{dim}' coordinate is not evenly spaced; "
            "a .GeoPIXE map is a regular grid"
        )
    return abs(float(steps.mean())) * scale


def _select_detectors(fields: dict[str, Any], ds: xr.Dataset, ndet: int) -> None:
    """Keep the Detector blocks (and Dets) of the detectors the map still holds."""
    fh = fields["File Header"]
    blocks = fields.get("Detector")
    labels = ds["detector"].values if "detector" in ds.coords else np.arange(ndet)
    old_dets = fh.get("Dets")
    if old_dets == ndet and np.array_equal(labels, np.arange(ndet)):
        return
    if (
        isinstance(blocks, list)
        and len(blocks) == old_dets
        and np.issubdtype(labels.dtype, np.integer)
    ):
        fields["Detector"] = [blocks[int(i)] for i in labels if 0 <= int(i) < len(blocks)]
    if "Dets" in fh:
        fh["Dets"] = ndet


def _channel_numbers(ds: xr.Dataset, nchan: int) -> np.ndarray:
    if "channel" not in ds.coords:
        return np.arange(nchan, dtype=np.uint16)
    channels = np.asarray(ds["channel"].values)  # eager-ok: 1-D coordinate
    if not np.issubdtype(channels.dtype, np.integer) or np.any(np.diff(channels) <= 0):
        raise FormatError(
            "to_geopixe: the 'channel' coordinate must hold ascending integer channels"
        )
    if channels[0] < 0 or channels[-1] > 65535:
        raise FormatError("to_geopixe: channel numbers must lie in 0..65535")
    return channels.astype(np.uint16)


def _emit_mask(ds: xr.Dataset, shape: tuple[int, int, int]) -> np.ndarray:
    """Per record: 1 write the spectrum, 2 write an empty record, 0 write nothing (missing tail)."""
    if "present" not in ds:
        return np.ones(shape, dtype=np.int8)
    present = np.asarray(
        ds["present"].transpose("y", "x", "detector").values, dtype=bool
    )  # eager-ok: per-pixel mask
    emit = np.where(present, 1, 2).astype(np.int8)
    flat = emit.reshape(-1)
    last = np.flatnonzero(flat == 1)
    flat[(last[-1] + 1) if last.size else 0 :] = 0
    if np.any(flat == 2):
        warnings.warn(
            f"to_geopixe: {int(np.sum(flat == 2))} record(s) marked not present inside the map are "
            "written as empty spectra",
            XrfdaskWarning,
            stacklevel=3,
        )
    return emit


def _deadtime(ds: xr.Dataset, spectra: da.Array) -> da.Array:
    ny, nx, ndet, _ = spectra.shape
    chunks = spectra.chunks[:3]
    if "deadtime" not in ds:
        return da.zeros((ny, nx, ndet), dtype=np.float32, chunks=chunks)
    data = ds["deadtime"].transpose("y", "x", "detector").data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=chunks)
    return data.astype(np.float32)


def _encode_tasks(spectra: da.Array, deadtime: da.Array, emit: np.ndarray, channel_numbers):
    """``geopixe-encode`` tasks in file order: one per band of whole rows, or, when one row is
    over the chunk budget (x split), one per x-block of single rows (still contiguous records)."""
    split_x = len(spectra.chunks[1]) > 1
    if split_x:
        spectra = spectra.rechunk({0: 1, 1: max(spectra.chunks[1]), 2: -1, 3: -1})
    else:
        spectra = spectra.rechunk({1: -1, 2: -1, 3: -1})
    deadtime = deadtime.rechunk((spectra.chunks[0], spectra.chunks[1], -1))
    s_blocks = spectra.to_delayed(optimize_graph=False)
    d_blocks = deadtime.to_delayed(optimize_graph=False)
    y_edges = np.cumsum((0,) + spectra.chunks[0])
    x_edges = np.cumsum((0,) + spectra.chunks[1])
    encode = dask.delayed(encode_band, pure=True)
    tasks = []
    for i in range(len(spectra.chunks[0])):
        for j in range(len(spectra.chunks[1])):  # raster order: rows, then x-blocks of a row
            y0, y1, x0, x1 = (
                int(y_edges[i]),
                int(y_edges[i + 1]),
                int(x_edges[j]),
                int(x_edges[j + 1]),
            )
            s, d = s_blocks[i, j, 0, 0], d_blocks[i, j, 0]
            block_emit = emit[y0:y1, x0:x1]
            token = dask.base.tokenize(s.key, d.key, block_emit, channel_numbers, y0, x0)
            key = f"geopixe-encode-{token}"
            tasks.append(encode(s, d, block_emit, y0, channel_numbers, x0, dask_key_name=key))
    return tasks


def encode_band(
    spectra: np.ndarray,
    deadtime: np.ndarray,
    emit: np.ndarray,
    y_first: int,
    channel_numbers: np.ndarray,
    x_first: int = 0,
) -> np.ndarray:
    """Encode a block of pixels (whole rows, or an x-block of one row) as ``.GeoPIXE`` records.

    Parameters
    ----------
    spectra : array (rows, x, detector, channel) of integer counts
    deadtime : float32 array (rows, x, detector), percent
    emit : int8 array (rows, x, detector): 1 record with spectrum, 2 empty record, 0 none
    y_first : int
        Map row of ``spectra[0]`` (written in the records' y field).
    channel_numbers : uint16 array (channel,)
        Channel index stored for each position of the channel axis.
    x_first : int
        Map column of ``spectra[:, 0]``.

    Returns
    -------
    numpy.ndarray
        uint8: the records, back to back.
    """
    spectra = np.ascontiguousarray(spectra)
    lengths = np.empty(spectra.shape[:3], dtype=np.int64)
    status, r, c, d, ch = kernels.encoded_lengths(spectra, emit, lengths)
    if status != kernels.OK:
        value = spectra[r, c, d, ch]
        raise FormatError(
            f"to_geopixe: pixel (x={x_first + c}, y={y_first + r}, detector={d}) "
            f"holds {value} counts in "
            f"channel {int(channel_numbers[ch])}; .GeoPIXE stores integers 0..65535"
        )
    total = int(lengths.sum())
    words = np.empty(total // 2, dtype=np.uint16)
    dt_bits = np.ascontiguousarray(deadtime, dtype=np.float32).view(np.uint32)
    kernels.encode_records(
        spectra, emit, lengths, dt_bits, y_first, x_first, channel_numbers, words
    )
    return words.view(np.uint8)
