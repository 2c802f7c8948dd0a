"""Compiled kernels that undo HDF5's chunk filters and place the chunks, without the GIL.

A task reading a band of an HDF5 map through Python handles each stored chunk in a few Python
calls: the inflate and the copy release the GIL, but the bookkeeping between them holds it, and
on 2 threads every hand-over of the GIL between those calls costs a wait. Here one call of a
numba kernel (``nogil``) does a whole band: for each stored chunk it inflates the bytes with
libdeflate, undoes the byte shuffle, and copies the part the selection wants into the output
(casting to its dtype) or adds it to a per-channel sum. Python only lists the chunks (numpy, no
loop per chunk) and reads their bytes with ``os.preadv`` (a few calls a band).

libdeflate is the copy inside the ``deflate`` package's extension module, whose C functions are
exported: :data:`AVAILABLE` is False when they cannot be found (another build of the package),
and the readers then keep to the Python path of :mod:`~xrfdask.io.h5layout.h5chunks`.

Measured on xrf_proc's 200 x 150 x 4096 uint32 map (gzip 4, chunks 13 x 10 x 256), read + sum of
the 16 bands on 2 threads against 1 (``ThreadPoolExecutor``, medians of 7): 1.8x here against
1.5x through the Python path; 0.31 s against 0.35 s on one thread.
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np
from numba import types

from xrfdask._jit import jit

__all__ = ["AVAILABLE", "MESSAGES", "place_into", "sum_into", "supports"]

# Status codes of the kernels (the first element of what they return), with what they mean.
OK, BAD_DATA, SHORT_OUTPUT, WRONG_SIZE, NO_MEMORY = 0, 1, 2, 3, 4
MESSAGES = {
    BAD_DATA: "corrupt gzip chunk (libdeflate: bad data)",
    SHORT_OUTPUT: "corrupt gzip chunk (libdeflate: it inflates to fewer bytes than a chunk)",
    WRONG_SIZE: "a stored chunk does not hold the bytes of one chunk",
    NO_MEMORY: "libdeflate could not allocate its decompressor",
}

_SYMBOLS = (
    "libdeflate_alloc_decompressor",
    "libdeflate_free_decompressor",
    "libdeflate_zlib_decompress",
)


def _bind() -> bool:
    """Make libdeflate's functions known to numba's linker; False if they cannot be found."""
    try:
        from deflate import _deflate

        library = ctypes.CDLL(_deflate.__file__)
        addresses = [
            ctypes.cast(getattr(library, name), ctypes.c_void_p).value for name in _SYMBOLS
        ]
    except (ImportError, OSError, AttributeError):
        return False
    for name, address in zip(_SYMBOLS, addresses, strict=True):
        llvm.add_symbol(name, address)
    return True


AVAILABLE = _bind()

# Pointers travel as intp: on the 64-bit platforms numba supports, a pointer and a 64-bit integer
# are passed the same way. ``libdeflate_zlib_decompress`` with a NULL ``actual_out_nbytes_ret``
# must fill the output exactly, else it returns SHORT_OUTPUT.
_alloc = types.ExternalFunction(_SYMBOLS[0], types.intp())
_free = types.ExternalFunction(_SYMBOLS[1], types.void(types.intp))
_inflate = types.ExternalFunction(
    _SYMBOLS[2],
    types.int32(types.intp, types.intp, types.uintp, types.intp, types.uintp, types.intp),
)

_KINDS = frozenset("iuf")


def supports(stored: np.dtype, out: np.ndarray | None = None) -> bool:
    """Whether the kernels read ``stored`` data (into ``out``): native-order numbers only."""
    if not AVAILABLE:
        return False
    for dtype in (stored,) if out is None else (stored, out.dtype):
        if dtype.kind not in _KINDS or not dtype.isnative or dtype.itemsize not in (1, 2, 4, 8):
            return False
        if dtype.kind == "f" and dtype.itemsize < 4:
            return False
    return True


@jit
def _unpack(  # pragma: no cover - compiled
    decompressor, buf, start, size, mask, deflate_bit, shuffle_bit, raw, decoded_bytes, itemsize
):
    """One stored chunk's bytes into ``decoded_bytes`` (the chunk as its dtype); a status code."""
    nbytes = decoded_bytes.size
    deflated = deflate_bit >= 0 and (mask >> deflate_bit) & 1 == 0
    shuffled = shuffle_bit >= 0 and (mask >> shuffle_bit) & 1 == 0 and itemsize > 1
    target = raw if shuffled else decoded_bytes
    if deflated:
        result = _inflate(
            decompressor, buf.ctypes.data + start, size, target.ctypes.data, nbytes, 0
        )
        if result == 1:
            return BAD_DATA
        if result != 0:
            return SHORT_OUTPUT
    else:
        if size != nbytes:
            return WRONG_SIZE
        for k in range(nbytes):
            target[k] = buf[start + k]
    if shuffled:  # HDF5's shuffle stores byte b of every element together: put them back
        n = nbytes // itemsize
        for b in range(itemsize):
            plane = raw[b * n : (b + 1) * n]
            for j in range(n):
                decoded_bytes[j * itemsize + b] = plane[j]
    return OK


@jit
def _overlap(origin, chunks, lo, hi):  # pragma: no cover - compiled
    """[a, b) on each of the 3 axes, shared by a chunk starting at ``origin`` and the selection."""
    a0, b0 = max(lo[0], origin[0]), min(hi[0], origin[0] + chunks[0])
    a1, b1 = max(lo[1], origin[1]), min(hi[1], origin[1] + chunks[1])
    a2, b2 = max(lo[2], origin[2]), min(hi[2], origin[2] + chunks[2])
    return a0, b0, a1, b1, a2, b2


@jit
def _buffers(chunks, fill, shuffle_bit):  # pragma: no cover - compiled
    """A kernel's scratch: one decoded chunk (its bytes, and as a block of ``fill``'s dtype),
    and the inflated bytes before the unshuffle (empty without the shuffle filter)."""
    decoded = np.empty(chunks[0] * chunks[1] * chunks[2], fill.dtype)
    decoded_bytes = decoded.view(np.uint8)
    block = decoded.reshape((chunks[0], chunks[1], chunks[2]))
    raw = np.empty(decoded_bytes.size if shuffle_bit >= 0 else 0, np.uint8)
    return decoded_bytes, block, raw


@jit
def place_into(  # pragma: no cover - compiled
    buf, starts, sizes, masks, origins, chunks, lo, hi, fill, itemsize, deflate_bit, shuffle_bit,
    out,
):  # fmt: skip
    """Place the selection ``[lo, hi)`` of a 3-D dataset, from its stored chunks, into ``out``.

    Two ways to call it. Data read in its stored dtype travels as bytes, so one compiled version
    serves every dtype: ``fill`` is the fill value's bytes, ``out`` the output's byte view, and
    the last axis counts bytes (``chunks[2]``, ``lo[2]``, ``hi[2]``, ``origins[:, 2]`` are the
    element counts times ``itemsize``). Data cast on the way (the fit reads counts as float32)
    is typed: ``fill`` is one element of the stored dtype, ``out`` of the output dtype, the last
    axis counts elements; one compiled version per pair of types.

    Parameters
    ----------
    buf : uint8 array
        The stored bytes of the chunks; chunk ``i`` is ``buf[starts[i]:starts[i] + sizes[i]]``,
        ``starts[i] < 0`` for a chunk never written (``fill`` there).
    starts, sizes, masks : int64 arrays
        Per chunk: position in ``buf``, stored size, HDF5 filter mask.
    origins : int64 array (chunks, 3)
        Each chunk's first element in the dataset.
    chunks, lo, hi : int64 arrays of 3
        The chunk shape; the selection's start and stop.
    fill : 1-D array
        The fill value, as above; its dtype is the dtype chunks are decoded to.
    itemsize : int
        Bytes per stored element (the shuffle's byte planes).
    deflate_bit, shuffle_bit : int
        Positions of the filters in the pipeline (their filter-mask bits), -1 when absent.
    out : 3-D array of ``hi - lo``
        Written, cast to its dtype.

    Returns
    -------
    (status, chunk)
        ``OK`` or a code of :data:`MESSAGES`, and the chunk it concerns.
    """
    decoded_bytes, block, raw = _buffers(chunks, fill, shuffle_bit)
    decompressor = _alloc()
    if decompressor == 0:
        return NO_MEMORY, 0
    for i in range(starts.size):
        a0, b0, a1, b1, a2, b2 = _overlap(origins[i], chunks, lo, hi)
        if starts[i] < 0:
            for y in range(a0 - lo[0], b0 - lo[0]):
                for x in range(a1 - lo[1], b1 - lo[1]):
                    row = out[y, x, a2 - lo[2] : b2 - lo[2]]
                    for c in range(row.size):
                        row[c] = fill[c % fill.size]  # whole elements: rows start on one
            continue
        status = _unpack(
            decompressor, buf, starts[i], sizes[i], masks[i], deflate_bit, shuffle_bit, raw,
            decoded_bytes, itemsize,
        )  # fmt: skip
        if status != OK:
            _free(decompressor)
            return status, i
        for y in range(a0, b0):
            for x in range(a1, b1):
                # 1-D views from 0: a loop numba vectorises (no negative-index checks)
                dst = out[y - lo[0], x - lo[1], a2 - lo[2] : b2 - lo[2]]
                src = block[y - origins[i, 0], x - origins[i, 1], a2 - origins[i, 2] :]
                for c in range(dst.size):
                    dst[c] = src[c]
    _free(decompressor)
    return OK, 0


@jit
def sum_into(  # pragma: no cover - compiled
    buf, starts, sizes, masks, origins, chunks, lo, hi, fill, itemsize, deflate_bit, shuffle_bit,
    out,
):  # fmt: skip
    """Add the selection's sum over its first two axes to ``out`` (float64, ``hi[2] - lo[2]``).

    Arguments as :func:`place_into`'s typed call (elements along the last axis).
    """
    decoded_bytes, block, raw = _buffers(chunks, fill, shuffle_bit)
    decompressor = _alloc()
    if decompressor == 0:
        return NO_MEMORY, 0
    for i in range(starts.size):
        a0, b0, a1, b1, a2, b2 = _overlap(origins[i], chunks, lo, hi)
        acc = out[a2 - lo[2] : b2 - lo[2]]
        if starts[i] < 0:
            value = np.float64(fill[0]) * (b0 - a0) * (b1 - a1)
            for c in range(acc.size):
                acc[c] += value
            continue
        status = _unpack(
            decompressor, buf, starts[i], sizes[i], masks[i], deflate_bit, shuffle_bit, raw,
            decoded_bytes, itemsize,
        )  # fmt: skip
        if status != OK:
            _free(decompressor)
            return status, i
        for y in range(a0 - origins[i, 0], b0 - origins[i, 0]):
            for x in range(a1 - origins[i, 1], b1 - origins[i, 1]):
                src = block[y, x, a2 - origins[i, 2] :]
                for c in range(acc.size):
                    acc[c] += src[c]
    _free(decompressor)
    return OK, 0
