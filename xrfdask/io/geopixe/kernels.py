"""Compiled kernels for ``.GeoPIXE`` pixel records: index walk, block decode, block encode.

A record is a 16-byte header (``DP``, uint32 length L, uint16 x, y, detector, float32 deadtime)
followed by (L - 16) / 4 pairs of uint16 (channel, count); see spec ``geopixe.md`` 1.3.

Records of a map come in raster order with the detectors of a pixel interleaved, so record number
``k`` belongs to pixel ``k // ndet`` and detector ``k % ndet``. Every kernel checks each record's
own x, y and detector fields against that expected position: a missing, duplicated or stray record
is reported, never silently shifted (the original tool placed data by counting).

The kernels never raise: they return a status code and the offending position, and the Python
caller turns that into a :class:`~xrfdask.errors.FormatError` naming the file and byte offset.
All release the GIL so dask threads decode blocks in parallel.
"""

from __future__ import annotations

import numpy as np

from xrfdask._jit import jit

__all__ = [
    "OK",
    "TRUNCATED",
    "BAD_TAG",
    "BAD_LENGTH",
    "MISPLACED",
    "SURPLUS",
    "BAD_CHANNEL",
    "UNSORTED_CHANNEL",
    "BAD_COUNT",
    "NEED_MORE",
    "index_records",
    "decode_records",
    "sum_records",
    "total_records",
    "weighted_records",
    "binned_records",
    "labelled_records",
    "encoded_lengths",
    "encode_records",
]

# Status codes shared by the kernels.
OK = 0
TRUNCATED = 1  # the data ends inside a record
BAD_TAG = 2  # a record does not start with "DP"
BAD_LENGTH = 3  # L < 16, L - 16 not a multiple of 4, or longer than Chan pairs allow
MISPLACED = 4  # x, y or detector differ from the record's expected position
SURPLUS = 5  # more records than Xres * Yres * ndet
BAD_CHANNEL = 6  # channel index >= Chan
UNSORTED_CHANNEL = 7  # channels not strictly ascending within a record
BAD_COUNT = 8  # (writer) a count is negative, above 65535 or not an integer
NEED_MORE = 9  # (index) the window ends before the file: continue with the next window

_TAG_WORD = 0x5044  # b"DP" read as a little-endian uint16


@jit
def _u16(buf, i):
    return np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8)


@jit
def _u32(buf, i):
    return _u16(buf, i) | (_u16(buf, i + 2) << 16)


@jit
def index_records(
    buf, base, pos, size, k, xres, ndet, nchan, n_expected, offsets, lengths, dt_bits
):
    """Walk record headers through one window of a file, resumably.

    Parameters
    ----------
    buf : uint8 array
        File bytes [base, base + len(buf)) (a memory-mapped window).
    base : int
        File offset of ``buf[0]``.
    pos : int
        File offset of the next record to read.
    size : int
        File size (to tell the end of the file from the end of the window).
    k : int
        Number of that record.
    xres, ndet, nchan : int
        Map width, detectors per pixel and channels.
    n_expected : int
        Records of a complete map, Xres * Yres * ndet; any further record is surplus.
    offsets, lengths, dt_bits : arrays of uint64, uint32, uint32
        Filled per record; long enough for every record the file can hold.

    Returns
    -------
    (k, status, pos, a, b, c)
        ``k`` records indexed so far; ``status`` OK at the end of the file, NEED_MORE when the
        window ends first (call again with a window starting at ``pos``), or an error; ``pos`` the
        offset where the walk stopped; ``a, b, c`` details (x, y, detector for MISPLACED; L for
        BAD_LENGTH/TRUNCATED).
    """
    window_end = base + buf.shape[0]
    max_length = 16 + 4 * nchan
    while pos < size:
        if k == n_expected:
            return k, SURPLUS, pos, 0, 0, 0
        if pos + 16 > window_end:
            if window_end < size:
                return k, NEED_MORE, pos, 0, 0, 0
            return k, TRUNCATED, pos, size - pos, 0, 0
        i = pos - base
        if buf[i] != 68 or buf[i + 1] != 80:
            return k, BAD_TAG, pos, _u16(buf, i), 0, 0
        length = _u32(buf, i + 2)
        x = _u16(buf, i + 6)
        y = _u16(buf, i + 8)
        d = _u16(buf, i + 10)
        if length < 16 or (length - 16) % 4 != 0 or length > max_length:
            return k, BAD_LENGTH, pos, length, 0, 0
        pixel = k // ndet
        if d != k % ndet or x != pixel % xres or y != pixel // xres:
            return k, MISPLACED, pos, x, y, d
        if pos + length > size:
            return k, TRUNCATED, pos, length, 0, 0
        offsets[k] = pos
        lengths[k] = length
        dt_bits[k] = _u32(buf, i + 12)
        pos += length
        k += 1
    return k, OK, pos, 0, 0, 0


@jit(inline="always")
def _check_header(words, pos, k, xres, ndet, nchan):
    """Check the 8-word header of record ``k`` at word ``pos``.

    Returns (status, end, detector, x, y), ``end`` being the first word after the record.
    """
    nwords = words.shape[0]
    if pos + 8 > nwords:
        return TRUNCATED, pos, 0, 0, 0
    if words[pos] != _TAG_WORD:
        return BAD_TAG, pos, 0, 0, 0
    length = np.int64(words[pos + 1]) | (np.int64(words[pos + 2]) << 16)
    if length < 16 or length % 4 != 0 or length > 16 + 4 * nchan:
        return BAD_LENGTH, pos, 0, 0, 0
    end = pos + length // 2
    if end > nwords:
        return TRUNCATED, pos, 0, 0, 0
    pixel = k // ndet
    d = k % ndet
    x = np.int64(words[pos + 3])
    y = np.int64(words[pos + 4])
    if np.int64(words[pos + 5]) != d or x != pixel % xres or y != pixel // xres:
        return MISPLACED, pos, 0, 0, 0
    return OK, end, d, x, y


@jit(inline="always")
def _put_pairs(words, pos, end, nchan, spectrum, lo, add):
    """Write (``add``: add) the (channel, count) pairs of words ``pos .. end-1`` into ``spectrum``.

    Channel ``c`` goes to ``spectrum[c - lo]``; channels outside ``spectrum`` are checked and
    skipped (a trimmed fit range). Returns (status, word): channels must be below ``nchan`` and
    strictly increasing.
    """
    previous = -1
    # Two loops on purpose: whole spectra skip the window test. Measured on the dense decode
    # (bench_geopixe_read): a window test per pair cost 25 %; one loop with a loop-invariant
    # test, or the channel checks in a shared inline helper, still 10-15 %.
    if lo == 0 and spectrum.shape[0] >= nchan:
        for p in range(pos, end, 2):
            channel = np.int64(words[p])
            if channel >= nchan:
                return BAD_CHANNEL, p
            if channel <= previous:
                return UNSORTED_CHANNEL, p
            previous = channel
            if add:
                spectrum[channel] += words[p + 1]
            else:
                spectrum[channel] = words[p + 1]
        return OK, end
    size = spectrum.shape[0]
    for p in range(pos, end, 2):
        channel = np.int64(words[p])
        if channel >= nchan:
            return BAD_CHANNEL, p
        if channel <= previous:
            return UNSORTED_CHANNEL, p
        previous = channel
        i = channel - lo
        if 0 <= i < size:
            if add:
                spectrum[i] += words[p + 1]
            else:
                spectrum[i] = words[p + 1]
    return OK, end


@jit
def decode_records(words, k0, k1, xres, ndet, nchan, y0, x0, out, lo):
    """Decode records ``k0 .. k1-1`` into a dense block (or its channels ``lo ..``).

    Parameters
    ----------
    words : uint16 array
        The bytes of records k0 .. k1-1, read as one contiguous range starting at record k0 and
        viewed as little-endian uint16 (every record length is a multiple of 4, so every record
        starts on a word boundary).
    k0, k1 : int
        Record numbers in the range.
    xres, ndet, nchan : int
        Map width, detectors per pixel, channels.
    y0, x0 : int
        Map position of ``out[0, 0]``.
    out : array (rows, columns, ndet, n), zero-filled
        Records whose pixel falls inside are decoded into it; others are checked and skipped.
        Any dtype and strides: the fit decodes straight into float32 (detector, pixel, channel)
        blocks through a transposed view.
    lo : int
        Channel stored at ``out[..., 0]``; channels outside ``lo .. lo + n - 1`` are checked
        and skipped.

    Returns
    -------
    (status, k, word)
        ``k`` is the record and ``word`` the uint16 index (byte offset / 2) where a problem was
        found; ``status`` is OK when every record decoded.
    """
    nrows = out.shape[0]
    ncols = out.shape[1]
    pos = 0
    for k in range(k0, k1):
        status, end, d, x, y = _check_header(words, pos, k, xres, ndet, nchan)
        if status != OK:
            return status, k, pos
        row = y - y0
        col = x - x0
        if 0 <= row < nrows and 0 <= col < ncols:
            status, p = _put_pairs(words, pos + 8, end, nchan, out[row, col, d], lo, False)
            if status != OK:
                return status, k, p
        pos = end
    return OK, k1, pos


@jit
def sum_records(words, k0, k1, xres, ndet, nchan, y0, nrows, x0, ncols, out):
    """Add the counts of records ``k0 .. k1-1`` inside the block to ``out`` (detector, channel).

    The same walk and checks as :func:`decode_records`, without building the dense block: a sum
    spectrum costs a pass over the sparse pairs only.
    """
    pos = 0
    for k in range(k0, k1):
        status, end, d, x, y = _check_header(words, pos, k, xres, ndet, nchan)
        if status != OK:
            return status, k, pos
        if 0 <= y - y0 < nrows and 0 <= x - x0 < ncols:
            status, p = _put_pairs(words, pos + 8, end, nchan, out[d], 0, True)
            if status != OK:
                return status, k, p
        pos = end
    return OK, k1, pos


@jit
def total_records(words, k0, k1, xres, ndet, nchan, y0, x0, out):
    """Add each record's total counts to ``out[row, col, detector]`` (rows, columns, ndet).

    The same walk and checks as :func:`decode_records`, with no spectrum built: a pixel's
    counts per detector cost one pass over its sparse pairs.
    """
    nrows = out.shape[0]
    ncols = out.shape[1]
    pos = 0
    for k in range(k0, k1):
        status, end, d, x, y = _check_header(words, pos, k, xres, ndet, nchan)
        if status != OK:
            return status, k, pos
        row = y - y0
        col = x - x0
        if 0 <= row < nrows and 0 <= col < ncols:
            previous = -1
            total = 0
            for p in range(pos + 8, end, 2):
                channel = np.int64(words[p])
                if channel >= nchan:
                    return BAD_CHANNEL, k, p
                if channel <= previous:
                    return UNSORTED_CHANNEL, k, p
                previous = channel
                total += np.int64(words[p + 1])
            out[row, col, d] += total
        pos = end
    return OK, k1, pos


@jit
def weighted_records(words, k0, k1, xres, ndet, nchan, y0, x0, weights, out):
    """Add each record's weighted counts to ``out[row, col, :]`` (rows, columns, n weights).

    ``weights`` is (nchan, n) float64: a pixel gets ``sum over detectors and channels of
    count * weights[channel]``, the weighted sum of its detector-summed spectrum, from the sparse
    pairs (no dense spectrum). The same walk and checks as :func:`decode_records`.
    """
    nrows = out.shape[0]
    ncols = out.shape[1]
    nw = out.shape[2]
    pos = 0
    for k in range(k0, k1):
        status, end, d, x, y = _check_header(words, pos, k, xres, ndet, nchan)
        if status != OK:
            return status, k, pos
        row = y - y0
        col = x - x0
        if 0 <= row < nrows and 0 <= col < ncols:
            # Three sums (a colour) at a time, in registers, two pairs per step with their own
            # accumulators: one chain of float additions would wait on its own latency.
            for w0 in range(0, nw, 3):
                w1 = min(w0 + 1, nw - 1)
                w2 = min(w0 + 2, nw - 1)
                a0 = a1 = a2 = b0 = b1 = b2 = 0.0
                previous = -1
                p = pos + 8
                while p < end:
                    channel = np.int64(words[p])
                    if channel >= nchan:
                        return BAD_CHANNEL, k, p
                    if channel <= previous:
                        return UNSORTED_CHANNEL, k, p
                    count = np.float64(words[p + 1])
                    a0 += count * weights[channel, w0]
                    a1 += count * weights[channel, w1]
                    a2 += count * weights[channel, w2]
                    if p + 2 >= end:
                        break
                    previous = channel
                    channel = np.int64(words[p + 2])
                    if channel >= nchan:
                        return BAD_CHANNEL, k, p + 2
                    if channel <= previous:
                        return UNSORTED_CHANNEL, k, p + 2
                    previous = channel
                    count = np.float64(words[p + 3])
                    b0 += count * weights[channel, w0]
                    b1 += count * weights[channel, w1]
                    b2 += count * weights[channel, w2]
                    p += 4
                out[row, col, w0] += a0 + b0
                if w0 + 1 < nw:
                    out[row, col, w1] += a1 + b1
                if w0 + 2 < nw:
                    out[row, col, w2] += a2 + b2
        pos = end
    return OK, k1, pos


@jit
def binned_records(words, k0, k1, xres, ndet, nchan, y0, x0, bins, out):
    """Add each record's counts to ``out[row, col, bins[channel]]`` (rows, columns, n bins).

    ``bins`` is (nchan,) int64: the bin of each channel, -1 for channels left out (outside an
    energy window, or the remainder after the last whole bin). A pixel gets its detector-summed
    spectrum binned, from the sparse pairs (no dense spectrum). The same walk and checks as
    :func:`decode_records`.
    """
    nrows = out.shape[0]
    ncols = out.shape[1]
    pos = 0
    for k in range(k0, k1):
        status, end, d, x, y = _check_header(words, pos, k, xres, ndet, nchan)
        if status != OK:
            return status, k, pos
        row = y - y0
        col = x - x0
        if 0 <= row < nrows and 0 <= col < ncols:
            previous = -1
            for p in range(pos + 8, end, 2):
                channel = np.int64(words[p])
                if channel >= nchan:
                    return BAD_CHANNEL, k, p
                if channel <= previous:
                    return UNSORTED_CHANNEL, k, p
                previous = channel
                b = bins[channel]
                if b >= 0:
                    out[row, col, b] += words[p + 1]
        pos = end
    return OK, k1, pos


@jit
def labelled_records(words, k0, k1, xres, ndet, nchan, y0, x0, labels, out):
    """Add each record's counts to ``out[labels[row, col], channel]`` (classes, channels).

    The per-class sum spectra of a classified block (detectors summed), from the sparse pairs.
    A label below 0 or beyond ``out`` leaves the pixel out. The same walk and checks as
    :func:`decode_records`.
    """
    nrows = labels.shape[0]
    ncols = labels.shape[1]
    nclass = out.shape[0]
    pos = 0
    for k in range(k0, k1):
        status, end, d, x, y = _check_header(words, pos, k, xres, ndet, nchan)
        if status != OK:
            return status, k, pos
        row = y - y0
        col = x - x0
        if 0 <= row < nrows and 0 <= col < ncols:
            c = labels[row, col]
            if 0 <= c < nclass:
                status, p = _put_pairs(words, pos + 8, end, nchan, out[c], 0, True)
                if status != OK:
                    return status, k, p
        pos = end
    return OK, k1, pos


@jit
def encoded_lengths(spectra, emit, lengths):
    """Record length (bytes) of each (row, column, detector) of a dense block.

    ``emit`` is 1 for a record carrying the spectrum, 2 for an empty record (pixel not present),
    0 for no record at all (missing tail of a truncated map); ``lengths`` receives 16 + 4 * nonzero
    channels, 16 or 0 accordingly. Returns (status, row, column, detector, channel) where status is
    BAD_COUNT if a count cannot be stored as uint16.
    """
    nrows, ncols, ndet, nchan = spectra.shape
    for r in range(nrows):
        for c in range(ncols):
            for d in range(ndet):
                mode = emit[r, c, d]
                if mode == 0:
                    lengths[r, c, d] = 0
                    continue
                if mode == 2:
                    lengths[r, c, d] = 16
                    continue
                nonzero = 0
                for ch in range(nchan):
                    v = spectra[r, c, d, ch]
                    if v != 0:
                        if not (v > 0 and v <= 65535 and v == np.floor(v)):
                            return BAD_COUNT, r, c, d, ch
                        nonzero += 1
                lengths[r, c, d] = 16 + 4 * nonzero
    return OK, 0, 0, 0, 0


@jit
def encode_records(spectra, emit, lengths, dt_bits, y_first, x_first, channel_numbers, words):
    """Write the records of a dense block, in raster order with detectors interleaved.

    ``lengths`` come from :func:`encoded_lengths`; ``words`` (uint16) has room for all of them;
    ``y_first``, ``x_first`` are the map row and column of ``spectra[0, 0]``; ``channel_numbers``
    maps array positions to the channel indices stored in the file.
    """
    nrows, ncols, ndet, nchan = spectra.shape
    pos = 0
    for r in range(nrows):
        for c in range(ncols):
            for d in range(ndet):
                length = lengths[r, c, d]
                if length == 0:
                    continue
                words[pos] = _TAG_WORD
                words[pos + 1] = length & 0xFFFF
                words[pos + 2] = length >> 16
                words[pos + 3] = x_first + c
                words[pos + 4] = y_first + r
                words[pos + 5] = d
                if emit[r, c, d] == 1:
                    bits = dt_bits[r, c, d]
                    words[pos + 6] = bits & 0xFFFF
                    words[pos + 7] = bits >> 16
                    p = pos + 8
                    for ch in range(nchan):
                        v = spectra[r, c, d, ch]
                        if v != 0:
                            words[p] = channel_numbers[ch]
                            words[p + 1] = np.uint16(v)
                            p += 2
                else:
                    words[pos + 6] = 0
                    words[pos + 7] = 0
                pos += length // 2
    return pos
