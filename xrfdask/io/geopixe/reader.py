"""Open a ``.GeoPIXE`` file as a lazy raw-map :class:`xarray.Dataset`.

Opening reads the header and the record index only. The spectra are a dask array whose every task
(``geopixe-read-…`` on the dashboard) reads one contiguous byte range, the records of a band of
whole rows, and decodes it with a compiled kernel that places each record by its own x, y and
detector fields.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from xrfdask.chunks import band_rows, bands, budget_bytes, normalize
from xrfdask.chunks import bounds as _bounds
from xrfdask.errors import FormatError
from xrfdask.io import fastpaths
from xrfdask.io.geopixe import kernels
from xrfdask.io.geopixe.index import GeoPixeIndex, build_index
from xrfdask.model import PIXEL_DIMS, RAW_DIMS, with_attrs

__all__ = [
    "open_geopixe",
    "read_block",
    "read_block_channels",
    "BlockSpec",
    "plan_chunks",
    "Chunks",
]

Chunks = int | str | dict[str, Any] | None


@dataclass(frozen=True)
class BlockSpec:
    """Everything one read task needs: a byte range and where its records go.

    Small and picklable, so graphs stay light on a distributed scheduler (no index arrays).
    """

    path: str
    file_size: int
    mtime_ns: int
    start: int  # bytes [start, stop) hold records k0 .. k1-1
    stop: int
    k0: int
    k1: int
    y0: int  # the block covers rows [y0, y0 + nrows) and columns [x0, x0 + ncols)
    nrows: int
    x0: int
    ncols: int
    xres: int
    ndet: int
    nchan: int

    @classmethod
    def of(cls, index: GeoPixeIndex, ya: int, yb: int, xa: int, xb: int) -> BlockSpec:
        """The read task for map rows [ya, yb) and columns [xa, xb) of an indexed file."""
        k0, k1, start, stop = index.byte_range(ya, yb, xa, xb)
        return cls(
            path=index.path, file_size=index.file_size, mtime_ns=index.mtime_ns,
            start=start, stop=stop, k0=k0, k1=k1, y0=ya, nrows=yb - ya, x0=xa,
            ncols=xb - xa, xres=index.xres, ndet=index.ndet, nchan=index.nchan,
        )  # fmt: skip


def read_block(spec: BlockSpec) -> np.ndarray:
    """Read and decode one block of a ``.GeoPIXE`` map.

    The byte range is read in windows of 1 MiB and decoded by
    :func:`~xrfdask.io.geopixe.kernels.decode_records`.

    Returns
    -------
    numpy.ndarray
        uint16 (rows, columns, detector, channel); pixels without a record are zero.
    """
    out = np.zeros((spec.nrows, spec.ncols, spec.ndet, spec.nchan), dtype=np.uint16)
    if spec.k1 > spec.k0:
        _walk_block(spec, kernels.decode_records, spec.y0, spec.x0, out, 0)
    return out


def read_block_channels(spec: BlockSpec, lo: int, hi: int, dtype: Any = np.float32) -> np.ndarray:
    """Read one block's channels ``lo .. hi-1`` as (detector, pixel, channel) in ``dtype``.

    What a fit consumes: one contiguous (pixels, channels) matrix per detector, decoded from
    the sparse records in one pass, with none of the dense uint16 block, its per-detector slice
    or the trimmed float copy (bench_fit's stage timings: 0.035 s per 10,000 spectra, against
    0.10-0.14 s for those three). Every record is checked as by :func:`read_block`.
    """
    out = np.zeros((spec.ndet, spec.nrows, spec.ncols, hi - lo), dtype=dtype)
    if spec.k1 > spec.k0:
        _walk_block(spec, kernels.decode_records, spec.y0, spec.x0, out.transpose(1, 2, 0, 3), lo)
    return out.reshape(spec.ndet, spec.nrows * spec.ncols, hi - lo)


def sum_blocks(specs: list[BlockSpec]) -> np.ndarray:
    """The (detector, channel) sum of the spectra of blocks of one map, from the sparse records."""
    out = np.zeros((specs[0].ndet, specs[0].nchan), dtype=np.float64)
    for spec in specs:
        if spec.k1 > spec.k0:
            _walk_block(spec, kernels.sum_records, spec.y0, spec.nrows, spec.x0, spec.ncols, out)
    return out


def total_block(spec: BlockSpec) -> np.ndarray:
    """(rows, columns, detector) total counts of one block, from the sparse records (int64)."""
    out = np.zeros((spec.nrows, spec.ncols, spec.ndet), dtype=np.int64)
    if spec.k1 > spec.k0:
        _walk_block(spec, kernels.total_records, spec.y0, spec.x0, out)
    return out


def _pixel_totals(spectra: da.Array) -> da.Array | None:
    """(y, x, detector) total counts, one ``geopixe-total`` task per block, or None."""
    specs = block_specs(spectra)
    if specs is None:
        return None
    name = f"geopixe-total-{dask.base.tokenize(spectra.name)}"
    dsk = {(name, i, j, 0): (total_block, spec) for (i, j), spec in specs.items()}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(graph, name, spectra.chunks[:3], dtype=np.int64)


def weighted_block(spec: BlockSpec, weights: np.ndarray) -> np.ndarray:
    """(rows, columns, n) weighted sums of each pixel's detector-summed spectrum, ``weights``
    (channel, n), from the sparse records (float64)."""
    out = np.zeros((spec.nrows, spec.ncols, weights.shape[1]), dtype=np.float64)
    if spec.k1 > spec.k0:
        _walk_block(spec, kernels.weighted_records, spec.y0, spec.x0, weights, out)
    return out


def _pixel_weighted_sums(spectra: da.Array, weights: np.ndarray) -> da.Array | None:
    """(y, x, n) weighted sums over channels and detectors, one task per block, or None."""
    specs = block_specs(spectra)
    if specs is None or weights.shape[0] != spectra.shape[3]:
        return None
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    token = dask.base.tokenize(spectra.name, weights)
    name, wname = f"geopixe-weighted-{token}", f"geopixe-weights-{token}"
    dsk: dict = {wname: weights}  # one copy of the weights in the graph, not one per task
    dsk.update({(name, i, j, 0): (weighted_block, spec, wname) for (i, j), spec in specs.items()})
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks = (*spectra.chunks[:2], (weights.shape[1],))
    return da.Array(graph, name, chunks, dtype=np.float64)


def binned_block(spec: BlockSpec, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """(rows, columns, n_bins) binned detector-summed spectra of one block, ``bins`` (channel,)
    the bin of each channel (-1: left out), from the sparse records (float64)."""
    out = np.zeros((spec.nrows, spec.ncols, n_bins), dtype=np.float64)
    if spec.k1 > spec.k0:
        _walk_block(spec, kernels.binned_records, spec.y0, spec.x0, bins, out)
    return out


def _pixel_binned_sums(spectra: da.Array, bins: np.ndarray) -> da.Array | None:
    """(y, x, n bins) binned detector-summed spectra, one task per block, or None."""
    specs = block_specs(spectra)
    if specs is None or bins.shape != (spectra.shape[3],):
        return None
    bins = np.ascontiguousarray(bins, dtype=np.int64)
    n_bins = int(bins.max()) + 1
    if n_bins < 1:
        return None
    token = dask.base.tokenize(spectra.name, bins)
    name, bname = f"geopixe-binned-{token}", f"geopixe-bins-{token}"
    dsk: dict = {bname: bins}
    dsk.update(
        {(name, i, j, 0): (binned_block, spec, bname, n_bins) for (i, j), spec in specs.items()}
    )
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(graph, name, (*spectra.chunks[:2], (n_bins,)), dtype=np.float64)


def labelled_block(spec: BlockSpec, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(1, 1, n_classes, channel) sum spectra by class of one block (detectors summed),
    ``labels`` the block's (rows, columns) classes, from the sparse records (float64)."""
    out = np.zeros((n_classes, spec.nchan), dtype=np.float64)
    if spec.k1 > spec.k0:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        _walk_block(spec, kernels.labelled_records, spec.y0, spec.x0, labels, out)
    return out[None, None]


def _class_sum_spectra(spectra: da.Array, labels: da.Array, n_classes: int) -> da.Array | None:
    """(n_classes, channel) sum spectra by class, one task per block and a tree of sums."""
    specs = block_specs(spectra)
    if specs is None or labels.shape != spectra.shape[:2]:
        return None
    labels = labels.rechunk(spectra.chunks[:2])
    token = dask.base.tokenize(spectra.name, labels.name, n_classes)
    name = f"geopixe-class-sums-{token}"
    dsk = {
        (name, i, j, 0, 0): (labelled_block, spec, (labels.name, i, j), n_classes)
        for (i, j), spec in specs.items()
    }
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=(labels,))
    blocks = tuple((1,) * len(c) for c in spectra.chunks[:2])
    parts = da.Array(graph, name, (*blocks, (n_classes,), (spectra.shape[3],)), dtype=np.float64)
    return parts.sum(axis=(0, 1))


_WINDOW = 1 << 20  # bytes read at a time: the window stays in the core's L2 cache while decoded
_buffers = threading.local()  # one reusable window per thread (no fresh pages per task)


def _walk_block(spec: BlockSpec, kernel, *args) -> None:
    """Read the block's byte range window by window and run a record kernel over it.

    A window ending inside a record makes the kernel stop there (TRUNCATED at that record),
    and the next window starts with it. Reading into a small reused buffer rather than
    memory-mapping the range: the same speed on one thread, 8 % faster on two (no page faults
    or unmapping shared between threads, and the window is decoded while in cache).
    """
    _check_unchanged(spec)
    size = max(_WINDOW, 16 + 4 * spec.nchan)  # at least the longest record: every window progresses
    buf = getattr(_buffers, "window", None)
    if buf is None or buf.size != size:
        buf = _buffers.window = np.empty(size, dtype=np.uint8)
    view = memoryview(buf)
    message = None
    try:
        f = open(spec.path, "rb", buffering=0)
    except OSError as exc:
        raise FormatError(f"{spec.path}: cannot read ({exc.strerror})") from None
    with f:
        offset, k = spec.start, spec.k0
        while k < spec.k1:
            f.seek(offset)
            n = f.readinto(view[: min(size, spec.stop - offset)]) or 0
            words = buf[: n - n % 2].view(np.uint16)
            status, k_stop, word = kernel(
                words, k, spec.k1, spec.xres, spec.ndet, spec.nchan, *args
            )
            if status == kernels.OK:
                return
            if status == kernels.TRUNCATED and k_stop > k and offset + n < spec.stop:
                offset, k = (
                    offset + 2 * int(word),
                    int(k_stop),
                )  # the window ended inside record k_stop
                continue
            message = _describe_decode(
                spec, status, k_stop, offset + 2 * int(word), buf[: n - n % 2], int(word)
            )
            break
    if message is not None:
        raise FormatError(message)


def block_specs(spectra: Any) -> dict[tuple[int, int], BlockSpec] | None:
    """The read task of every (row block, column block) of :func:`open_geopixe`'s spectra.

    None unless ``spectra`` is exactly that array (not sliced or transformed), so that callers
    can read its blocks their own way (:func:`sum_spectrum`, the fit's trimmed reads) and fall
    back to the generic dask path otherwise.
    """
    return fastpaths.block_arguments(spectra, "geopixe-read-", BlockSpec)


def sum_spectrum(spectra: da.Array, fan_in: int = 8, tasks: int | None = None) -> da.Array | None:
    """A fast (detector, channel) sum over pixels of spectra read straight from a ``.GeoPIXE`` file.

    Returns None unless ``spectra`` is exactly :func:`open_geopixe`'s array (not sliced or
    transformed): then the read tasks are replaced by ``geopixe-sum`` tasks that add the sparse
    records without decoding dense blocks (several times faster), and the partial sums are added
    in a tree of ``fan_in`` parts per task.

    Each sum task covers consecutive blocks: ``tasks`` of them (default: four per worker
    thread of the current scheduler, at most one per block), since a block's sum takes only a
    few milliseconds, the cost of scheduling a task on a distributed cluster. The graph is a
    task dictionary: the dask-array route (stack, then sum) cost a third more on two threads.
    """
    from xrfdask.runtime import parallelism

    specs = block_specs(spectra)
    if specs is None:
        return None
    blocks = list(specs.values())  # eager-ok: a dict of block specs, no data
    ntasks = max(1, min(len(blocks), tasks or 4 * parallelism()))
    edges = np.linspace(0, len(blocks), ntasks + 1).round().astype(int)
    token = dask.base.tokenize(spectra.name, ntasks)
    name, parts = f"geopixe-sum-{token}", f"geopixe-sum-part-{token}"
    dsk: dict[Any, Any] = {
        (parts, 0, n): (sum_blocks, blocks[a:b])
        for n, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    }
    keys, level = list(dsk), 0
    while len(keys) > fan_in:
        level += 1
        groups = [keys[g : g + fan_in] for g in range(0, len(keys), fan_in)]
        keys = [(parts, level, n) for n in range(len(groups))]
        dsk.update((key, (_add, group)) for key, group in zip(keys, groups, strict=True))
    dsk[name, 0, 0] = (_add, keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(graph, name, ((spectra.shape[2],), (spectra.shape[3],)), dtype=np.float64)


def _add(parts: list[np.ndarray]) -> np.ndarray:
    out = parts[0].copy()
    for part in parts[1:]:
        out += part
    return out


def _check_unchanged(spec: BlockSpec) -> None:
    try:
        st = os.stat(spec.path)
    except OSError as exc:
        raise FormatError(f"{spec.path}: cannot read ({exc.strerror})") from None
    if st.st_size != spec.file_size or st.st_mtime_ns != spec.mtime_ns:
        raise FormatError(
            f"{spec.path}: the file changed since it was opened (size {spec.file_size} -> "
            f"{st.st_size}); open it again"
        )


def _describe_decode(
    spec: BlockSpec, status: int, k: int, offset: int, buf: np.ndarray, word: int
) -> str:
    """Message for a kernel's status at record ``k``, file ``offset`` (word ``word`` of ``buf``)."""
    pixel, det = divmod(int(k), spec.ndet)
    y, x = divmod(pixel, spec.xres)
    record = f"record (x={x}, y={y}, detector={det})"
    if status == kernels.BAD_CHANNEL:
        channel = int(buf[2 * word]) | (int(buf[2 * word + 1]) << 8)
        return (
            f"{spec.path}: {record} stores channel {channel} at offset {offset}, but the header "
            f"has Chan = {spec.nchan}"
        )
    if status == kernels.UNSORTED_CHANNEL:
        return (
            f"{spec.path}: {record} has channels out of ascending order at offset {offset}: "
            "corrupt record body"
        )
    return (
        f"{spec.path}: {record} at offset {offset} no longer matches the index (status "
        f"{status}): the file changed since it was opened; open it again"
    )


def plan_chunks(
    index: GeoPixeIndex, chunks: Chunks = "auto"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Row and column chunk sizes for a map.

    Parameters
    ----------
    index : GeoPixeIndex
    chunks : "auto", int, str, dict or None
        ``"auto"``: bands of whole rows of about ``dask.config["xrfdask.chunk-size"]`` (dense
        bytes). An int: rows per chunk. A byte size (``"64MiB"``): bands of about that size.
        ``None`` or ``-1``: one chunk. A dict may give ``"y"`` and ``"x"`` (int, tuple, -1 or
        "auto"); ``detector`` and ``channel`` are always whole.

    Returns
    -------
    (y_chunks, x_chunks)
    """
    nrows, xres = index.nrows, index.xres
    pixel_bytes = index.ndet * index.nchan * 2
    budget = budget_bytes()
    y_spec: Any = "auto"
    x_spec: Any = "auto"
    if chunks is None or (isinstance(chunks, int) and chunks == -1):
        y_spec, x_spec = -1, -1
    elif isinstance(chunks, bool):
        raise ValueError(f"chunks={chunks!r}: expected 'auto', rows per chunk, a size or a dict")
    elif isinstance(chunks, int):
        y_spec, x_spec = chunks, -1
    elif isinstance(chunks, str):
        if chunks != "auto":
            budget = budget_bytes(chunks)
    elif isinstance(chunks, dict):
        unknown = set(chunks) - {"y", "x", "detector", "channel"}
        if unknown:
            raise ValueError(f"chunks: unknown dimension(s) {sorted(unknown)}")
        for dim in ("detector", "channel"):
            if chunks.get(dim, -1) not in (-1, None, "auto"):
                raise ValueError(f"chunks: '{dim}' is always one chunk when reading")
        y_spec = chunks.get("y", "auto")
        x_spec = chunks.get("x", -1 if "y" in chunks else "auto")
    else:
        raise ValueError(f"chunks={chunks!r}: expected 'auto', rows per chunk, a size or a dict")

    # The bands-of-rows rule (xrfdask.chunks): whole rows unless one row alone is over the
    # budget, then bands of one row cut along x; a given x-block width sets the rows per band.
    if x_spec == "auto":
        x_chunks = bands((nrows, xres), pixel_bytes, budget=budget)[1]
    else:
        x_chunks = normalize(x_spec, xres, "x")
    if y_spec == "auto":
        y_spec = band_rows(max(x_chunks) * pixel_bytes, budget)
    y_chunks = normalize(y_spec, nrows, "y")
    return y_chunks, x_chunks


def spectra_array(index: GeoPixeIndex, y_chunks, x_chunks) -> da.Array:
    """The dask array of spectra, one ``geopixe-read`` task per block."""
    token = dask.base.tokenize(
        index.path, index.file_size, index.mtime_ns, index.header.raw, y_chunks, x_chunks
    )
    name = f"geopixe-read-{token}"
    dsk = {}
    for i, (ya, yb) in enumerate(_bounds(y_chunks)):
        for j, (xa, xb) in enumerate(_bounds(x_chunks)):
            dsk[(name, i, j, 0, 0)] = (read_block, BlockSpec.of(index, ya, yb, xa, xb))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks = (y_chunks, x_chunks, (index.ndet,), (index.nchan,))
    meta = np.empty((0, 0, 0, 0), dtype=np.uint16)
    return da.Array(graph, name, chunks, meta=meta)


def raw_map_coords(index: GeoPixeIndex, nrows: int) -> dict[str, Any]:
    """Coordinates of the raw map: pixel-centre positions in mm, detector, channel, energy."""
    header = index.header
    xres, yres = header.xres, header.yres
    coords: dict[str, Any] = {}
    for dim, n, res, size in (
        ("y", nrows, yres, header.height_mm),
        ("x", xres, xres, header.width_mm),
    ):
        if size is not None and size > 0:
            pitch = size / res
            coords[dim] = (
                dim,
                (np.arange(n) + 0.5) * pitch,
                {"units": "mm", "long_name": f"{dim} position (pixel centre)"},
            )
        else:
            coords[dim] = (dim, np.arange(n, dtype=float), {"units": "pixel"})
    coords["detector"] = ("detector", np.arange(index.ndet))
    coords["channel"] = ("channel", np.arange(index.nchan))
    energy = np.arange(index.nchan) * (header.gain_ev / 1000.0)
    coords["energy"] = ("channel", energy, {"units": "keV", "long_name": "photon energy"})
    return coords


def raw_map_attrs(index: GeoPixeIndex) -> dict[str, Any]:
    """Attributes of the raw map: the source, the JSON header as read (the writer needs it), and
    the instrument described once in the format-neutral attributes of :mod:`xrfdask.instrument`."""
    header = index.header
    attrs: dict[str, Any] = {
        "source_format": "GeoPIXE",
        "source_path": os.path.abspath(index.path),
        "geopixe_header": header.fields,
    }
    if header.dwell_ms is not None:
        attrs["dwell_ms"] = header.dwell_ms
    attrs.update(instrument_attrs(header.fields, index.ndet))
    return attrs


def instrument_attrs(fields: dict[str, Any], ndet: int) -> dict[str, Any]:
    """:mod:`xrfdask.instrument` attributes from a GeoPIXE JSON header (``X-ray Source`` and
    ``Detector`` blocks; ``Detector`` block ``Idx`` d, else the d-th block, for detector d)."""
    import xraylib

    def number(block: dict[str, Any], name: str) -> float | None:
        for key, value in block.items():  # keys carry units: "Thick (mm)"
            if str(key).split(" (")[0].strip() == name:
                out = _number(value)
                return out if out is not None and np.isfinite(out) else None
        return None

    out: dict[str, Any] = {}
    tube = fields.get("X-ray Source")
    tube = tube if isinstance(tube, dict) else {}
    if isinstance(tube.get("Elt"), str):
        out["tube_element"] = tube["Elt"]
    names = (("KV", "tube_kv"), ("UA", "tube_current_ua"), ("Incid", "incidence_angle_deg"),
             ("Take", "takeoff_angle_deg"), ("Scat", "scatter_angle_deg"))  # fmt: skip
    for name, key in names:
        value = number(tube, name)
        if value is not None:
            out[key] = value
    blocks = fields.get("Detector")
    blocks = [blocks] if isinstance(blocks, dict) else blocks
    blocks = [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []
    if not blocks:
        return out
    by_idx = {b.get("Idx"): b for b in blocks if isinstance(b.get("Idx"), int)}
    columns: dict[str, list[Any]] = {k: [] for k in (
        "detector_crystal", "detector_crystal_thickness_mm", "detector_dead_layer_um",
        "detector_window", "detector_window_thickness_um", "detector_area_mm2")}  # fmt: skip
    for d in range(ndet):
        block = by_idx.get(d) or (blocks[d] if d < len(blocks) else {})
        z = number(block, "Elt")
        crystal = xraylib.AtomicNumberToSymbol(int(z)) if z is not None and 1 <= z <= 98 else None
        window = "Be" if number(block, "Win") == 1 else None  # GeoPIXE window type 1: beryllium
        columns["detector_crystal"].append(crystal)
        columns["detector_crystal_thickness_mm"].append(number(block, "Thick"))
        columns["detector_dead_layer_um"].append(number(block, "DLThick"))
        columns["detector_window"].append(window)
        columns["detector_window_thickness_um"].append(number(block, "WThick") if window else None)
        columns["detector_area_mm2"].append(number(block, "Area"))
    out.update({k: v for k, v in columns.items() if any(x is not None for x in v)})
    return out


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def open_geopixe(
    path: str | os.PathLike, chunks: Chunks = "auto", *, cache: bool = True
) -> xr.Dataset:
    """Open a ``.GeoPIXE`` map lazily.

    Parameters
    ----------
    path : str or path-like
        The ``.GeoPIXE`` file.
    chunks : "auto", int, str, dict or None, default "auto"
        Chunking of the spectra along ``y`` and ``x`` (see :func:`plan_chunks`): by default bands of
        whole rows of about ``dask.config["xrfdask.chunk-size"]`` of dense spectra (16 MiB on
        threads, 64 MiB on a distributed cluster).
    cache : bool, default True
        Reuse and store the record index beside the file (or in the user cache directory).

    Returns
    -------
    xarray.Dataset
        ``spectra`` (y, x, detector, channel) uint16, ``deadtime`` (y, x, detector) float32
        percent, ``present`` (y, x, detector) bool (False where a scan stopped before the pixel);
        coordinates ``y``, ``x`` (mm, pixel centres), ``detector``, ``channel``, ``energy`` (keV);
        the JSON header in ``attrs["geopixe_header"]`` with every ``Detector`` block kept.

    Raises
    ------
    FormatError
        If the header or a record header is broken; see :func:`xrfdask.index_geopixe`.

    Examples
    --------
    >>> ds = xd.open_geopixe("map.GeoPIXE")                # doctest: +SKIP
    >>> ds.spectra.sum(("y", "x")).values                 # doctest: +SKIP
    """
    index = build_index(path, cache=cache)
    y_chunks, x_chunks = plan_chunks(index, chunks)
    spectra = spectra_array(index, y_chunks, x_chunks)
    nrows = index.nrows
    small_chunks = (y_chunks, x_chunks, (index.ndet,))
    token = dask.base.tokenize(index.path, index.file_size, index.mtime_ns, small_chunks)
    deadtime = da.from_array(
        index.deadtime_map(nrows), chunks=small_chunks, name=f"geopixe-deadtime-{token}"
    )
    present = da.from_array(
        index.present(nrows), chunks=small_chunks, name=f"geopixe-present-{token}"
    )
    data_vars = {
        "spectra": (RAW_DIMS, spectra, with_attrs("spectra")),
        "deadtime": (PIXEL_DIMS, deadtime, with_attrs("deadtime")),
        "present": (PIXEL_DIMS, present, with_attrs("present")),
    }
    return xr.Dataset(data_vars, coords=raw_map_coords(index, nrows), attrs=raw_map_attrs(index))


def _channel_blocks(
    spectra: da.Array, lo: int, hi: int, dtype: Any
) -> dict[tuple[int, int], Any] | None:
    specs = block_specs(spectra)
    if specs is None:
        return None
    return {key: (read_block_channels, spec, lo, hi, dtype) for key, spec in specs.items()}


# The fit and other processing reach these through the array (xrfdask.io.fastpaths), never by
# importing this module.
fastpaths.register(
    "geopixe-read-",
    sum_spectrum=sum_spectrum,
    channel_blocks=_channel_blocks,
    pixel_totals=_pixel_totals,
    pixel_weighted_sums=_pixel_weighted_sums,
    pixel_binned_sums=_pixel_binned_sums,
    class_sum_spectra=_class_sum_spectra,
)
