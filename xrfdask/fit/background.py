"""Compiled per-pixel background of PyMca's fast linear fit: Savitzky-Golay smoothing, then SNIP.

For every spectrum (already trimmed to the fit range) PyMca's
``FastXRFLinearFit._fitBkgSubtract`` computes

1. ``background = SpecfitFuns.SavitskyGolay(spectrum, stripfilterwidth)``;
2. SNIP (``SpecfitFuns.snip1d(segment, snipwidth, 0)``) on each segment between anchors;
3. ``spectrum -= background``.

This module reproduces those steps, bit for bit in float64, for a whole block of pixels in one
compiled call that releases the GIL. The C sources followed are PyMca5 5.9.7's
``PyMcaMath/fitting/specfit/SpecfitFuns.c`` (``SavitskyGolay``, ``snip1d``), ``smoothnd.c``
(``smooth1d``) and ``snip1d.c`` (``snip1d_multiple``):

Savitzky-Golay, ``npoints = int(width)`` (+1 when even), ``m = npoints // 2``
    Nothing happens when ``npoints < 3`` or the spectrum is shorter than ``npoints``. Otherwise
    the first ``m`` channels, and the ``m`` channels ``[n-m-1, n-1)``, are each smoothed
    ``npoints // 3 + 1`` times by PyMca's ``smooth1d`` (a 1-2-1 filter that needs at least 3
    points, so only from ``npoints >= 7`` on); then every ``i`` in ``[m, n-m)`` becomes
    ``sum_j coeff[m+j] * d[i+j] / den`` with ``den = (2m-1)(2m+1)(2m+3)`` and
    ``coeff[m±j] = 3 (3m² + 3m - 1 - 5j²)``, where ``d`` is the edge-smoothed copy, unless that sum
    is ``<= 0``, in which case channel ``i`` keeps ``d[i]``. (Older PyMca releases did not smooth
    the edges; 5.9.x does, and it is the installed 5.9.x this module is tested against.)
SNIP of width ``w = int(snipwidth)``
    For ``p = w, w-1, ..., 1``: ``d[i] = min(d[i], (d[i-p] + d[i+p]) / 2)`` for ``p <= i < L-p``,
    all ``i`` computed from the values before pass ``p``. Run separately on each segment
    ``[a_k, a_{k+1})``, the anchors being those of the sorted list with ``last < a < n``.

Speed (see ``python -m xrfdask.fit.background``): a pixel's two ping-pong buffers (about 27 kB
for 1700 float64 channels) stay in L1 cache through all ``w`` passes, each pass is one
contiguous, branch-free loop that LLVM vectorises along the channels, and float32 spectra are
stripped in float32 (twice the SIMD lanes). The Savitzky-Golay stage, a small part of the cost,
is always computed in float64, so its ``<= 0`` test decides as PyMca's does. A (channel, pixel)
block layout, with the inner loop over 8-64 pixels, was measured too: it was 10-20 % slower here,
since its buffers only fit in L2.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import numpy as np

from xrfdask._jit import copy, jit

__all__ = ["snip_background", "subtract_background"]


@jit
def _smooth1d(d, lo, size):
    """PyMca's ``smooth1d`` on ``d[lo:lo+size]`` in place: 1-2-1 weights, one-sided at both ends."""
    if size < 3:
        return
    prev = d[lo]
    for i in range(lo, lo + size - 1):
        nxt = 0.25 * (prev + 2.0 * d[i] + d[i + 1])  # same operation order as the C code
        prev = d[i]
        d[i] = nxt
    d[lo + size - 1] = 0.25 * prev + 0.75 * d[lo + size - 1]


@jit
def _savitzky_golay(row, dst, work, acc, coeff, den, m, repeats):
    """``SpecfitFuns.SavitskyGolay`` of ``row`` into ``dst``; ``work``, ``acc``: float64 scratch.

    The caller guarantees ``3 <= 2m+1 <= row.size``.
    """
    n = row.size
    for i in range(n):
        work[i] = row[i]
    for _ in range(repeats):
        _smooth1d(work, 0, m)
    for _ in range(repeats):
        _smooth1d(work, n - m - 1, m)
    # The weighted sums, accumulated in PyMca's order (j = -m..m, from 0) so float64 results are
    # bit-identical to the C loop, in contiguous sweeps over the channels that LLVM vectorises;
    # each sweep adds up to 4 terms, so acc goes through L1 about npoints/4 times, not npoints.
    k = n - 2 * m
    c0 = coeff[0]
    c1 = coeff[1]
    c2 = coeff[2]
    w0 = work[0:k]
    w1 = work[1 : 1 + k]
    w2 = work[2 : 2 + k]
    for i in range(k):
        acc[i] = c0 * w0[i] + c1 * w1[i] + c2 * w2[i]  # npoints >= 3
    j = 3
    while j + 4 <= 2 * m + 1:
        c0 = coeff[j]
        c1 = coeff[j + 1]
        c2 = coeff[j + 2]
        c3 = coeff[j + 3]
        w0 = work[j : j + k]
        w1 = work[j + 1 : j + 1 + k]
        w2 = work[j + 2 : j + 2 + k]
        w3 = work[j + 3 : j + 3 + k]
        for i in range(k):
            acc[i] = acc[i] + c0 * w0[i] + c1 * w1[i] + c2 * w2[i] + c3 * w3[i]
        j += 4
    if j < 2 * m + 1:  # npoints - 3 is even: 2 terms left
        c0 = coeff[j]
        c1 = coeff[j + 1]
        w0 = work[j : j + k]
        w1 = work[j + 1 : j + 1 + k]
        for i in range(k):
            acc[i] = acc[i] + c0 * w0[i] + c1 * w1[i]
    for i in range(m):
        dst[i] = work[i]
    for i in range(k):
        s = acc[i]
        dst[m + i] = s / den if s > 0.0 else work[m + i]
    for i in range(n - m, n):
        dst[i] = work[i]


@jit
def _snip_pass(src, dst, lo, hi, p, half):
    """SNIP pass ``p`` of ``src[lo:hi]``: reads ``src`` only, writes ``dst[lo+p:hi-p]``."""
    k = hi - lo - 2 * p
    # Non-negative slice offsets (rather than ``src[i - p]``) spare numba's wraparound checks,
    # which would keep LLVM from vectorising the loop.
    left = src[lo : lo + k]
    mid = src[lo + p : lo + p + k]
    right = src[lo + 2 * p : lo + 2 * p + k]
    out = dst[lo + p : lo + p + k]
    for i in range(k):
        c = mid[i]
        v = (left[i] + right[i]) * half
        out[i] = c if c < v else v  # C's MIN(x, y), including what it does with NaN


@jit
def _emit(row, res, orow, lo, hi, subtract):
    """``orow[lo:hi] = res`` or ``row - res``; element by element, so ``orow`` may be ``row``."""
    if subtract:
        for i in range(lo, hi):
            orow[i] = row[i] - res[i]
    else:
        for i in range(lo, hi):
            orow[i] = res[i]


@jit
def _snip_segments(row, orow, a, b, bounds, snip_width, half, subtract, smoothed):
    """SNIP of one row, segment by segment, into ``orow``; ``a`` holds the smoothed row if
    ``smoothed``, and ``a``, ``b`` are the two ping-pong buffers."""
    for s in range(bounds.size - 1):
        lo = bounds[s]
        hi = bounds[s + 1]
        p = min(snip_width, (hi - lo - 1) // 2)  # wider passes touch no channel
        # Where the current values are: 0 the input row, 1 buffer a, 2 buffer b. Passes
        # ping-pong between a and b instead of copying back. Pass p writes only [lo+p, hi-p)
        # and later passes have smaller p, so a buffer is valid once its two p-wide edges hold
        # the input.
        state = 1 if smoothed else 0
        if p > 0:
            if state == 0:
                # The first pass reads the row itself: no separate copy of the input.
                # copy(), not slice assignments: see xrfdask._jit.copy (compile time).
                copy(row, a, lo, lo + p)
                copy(row, a, hi - p, hi)
                copy(row, b, lo, lo + p)
                copy(row, b, hi - p, hi)
                _snip_pass(row, b, lo, hi, p, half)
                state = 2
                p -= 1
            else:
                copy(a, b, lo, lo + p)
                copy(a, b, hi - p, hi)
            while p > 0:
                if state == 1:
                    _snip_pass(a, b, lo, hi, p, half)
                    state = 2
                else:
                    _snip_pass(b, a, lo, hi, p, half)
                    state = 1
                p -= 1
        # Segments are written as soon as done: later ones only read their own channels.
        if state == 0:
            _emit(row, row, orow, lo, hi, subtract)
        elif state == 1:
            _emit(row, a, orow, lo, hi, subtract)
        else:
            _emit(row, b, orow, lo, hi, subtract)


@jit
def _snip_kernel(spectra, out, bounds, snip_width, half, subtract):
    """SNIP background (or ``spectra - background``) of every row, without smoothing.

    A kernel of its own, so that the usual configurations (``stripfilterwidth`` below 3) never
    compile the Savitzky-Golay code: about 1.2 s less on a fresh install, on every worker.
    """
    npix, n = spectra.shape
    if npix == 0 or n == 0:
        return
    a = np.empty(n, dtype=out.dtype)
    b = np.empty(n, dtype=out.dtype)
    for r in range(npix):
        _snip_segments(spectra[r], out[r], a, b, bounds, snip_width, half, subtract, False)


@jit
def _background_kernel(spectra, out, bounds, snip_width, coeff, den, m, repeats, half, subtract):
    """Savitzky-Golay smoothing, then SNIP, of every row into ``out`` (``m > 0``)."""
    npix, n = spectra.shape
    if npix == 0 or n == 0:
        return
    a = np.empty(n, dtype=out.dtype)
    b = np.empty(n, dtype=out.dtype)
    work = np.empty(n, dtype=np.float64)
    acc = np.empty(max(n - 2 * m, 1), dtype=np.float64)
    for r in range(npix):
        row = spectra[r]
        _savitzky_golay(row, a, work, acc, coeff, den, m, repeats)
        _snip_segments(row, out[r], a, b, bounds, snip_width, half, subtract, True)


def _segment_bounds(anchors: Iterable[int] | None, n: int) -> np.ndarray:
    """Segment limits ``[0, a1, ..., n]`` as ``_fitBkgSubtract`` walks the sorted anchors."""
    bounds = [0]
    if anchors is not None:
        last = 0
        for anchor in sorted(operator.index(a) for a in anchors):
            if last < anchor < n:  # PyMca skips anchors at 0, repeated, or at/after the end
                bounds.append(anchor)
                last = anchor
    bounds.append(n)
    return np.asarray(bounds, dtype=np.int64)


def _savgol_setup(filter_width: float, n: int) -> tuple[np.ndarray, float, int, int]:
    """``(coeff, den, m, repeats)`` of PyMca's Savitzky-Golay filter; ``m == 0``: no smoothing."""
    npoints = int(filter_width)  # C: (int) dpoints, truncation toward zero
    if npoints % 2 == 0:
        npoints += 1
    if npoints < 3 or n < npoints:
        return np.zeros(1), 1.0, 0, 0
    m = npoints // 2
    j = np.arange(-m, m + 1)
    coeff = (3 * (3 * m * m + 3 * m - 1 - 5 * j * j)).astype(np.float64)
    den = float((2 * m - 1) * (2 * m + 1) * (2 * m + 3))
    return coeff, den, m, npoints // 3 + 1


def _check_spectra(spectra: np.ndarray) -> None:
    if not isinstance(spectra, np.ndarray):
        raise TypeError(f"spectra must be a numpy array, not {type(spectra).__name__}")
    if spectra.dtype not in (np.float32, np.float64):
        raise TypeError(f"spectra must be float32 or float64, not {spectra.dtype}")
    if spectra.ndim not in (1, 2):
        raise ValueError(
            f"spectra must be (pixels, channels) or one spectrum, got shape {spectra.shape}"
        )


def _run(
    spectra: np.ndarray,
    out: np.ndarray,
    snip_width: float,
    filter_width: float,
    anchors,
    subtract: bool,
) -> None:
    s2 = spectra[np.newaxis] if spectra.ndim == 1 else spectra  # views, never copies
    o2 = out[np.newaxis] if out.ndim == 1 else out
    n = s2.shape[1]
    coeff, den, m, repeats = _savgol_setup(filter_width, n)
    bounds = _segment_bounds(anchors, n)
    width = max(int(snip_width), 0)  # C: (int) width0; no pass when <= 0
    half = out.dtype.type(0.5)
    if m > 0:
        _background_kernel(s2, o2, bounds, width, coeff, den, m, repeats, half, subtract)
    else:
        _snip_kernel(s2, o2, bounds, width, half, subtract)


def snip_background(
    spectra: np.ndarray,
    snip_width: float,
    *,
    filter_width: float = 1,
    anchors: Iterable[int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """PyMca fast-fit background of every spectrum: Savitzky-Golay smoothing, then piecewise SNIP.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(pixels, channels)`` float32 or float64 spectra, already trimmed to the fit range (a
        single 1-D spectrum is accepted too). Not modified unless it is also ``out``.
    snip_width : float
        PyMca's ``config["fit"]["snipwidth"]``, truncated to an integer; ``<= 0`` means no SNIP.
    filter_width : float, optional
        PyMca's ``config["fit"]["stripfilterwidth"]``, truncated to an integer (+1 when even);
        below 3 (the default 1) or wider than the spectrum means no smoothing.
    anchors : iterable of int, optional
        Channel indices (in the trimmed spectrum) at which SNIP restarts, as PyMca's
        ``_fitBkgAnchorList`` returns them. Sorted before use; anchors ``<= 0``, repeated, or
        ``>= channels`` are skipped, as ``_fitBkgSubtract`` does. None or empty: one segment.
        PyMca itself never passes an empty list: without configured anchors it uses
        ``[0, channels - 1]``, which makes the last channel a segment of its own; pass that list
        to reproduce it.
    out : numpy.ndarray, optional
        Where to write the result: same shape and dtype as ``spectra``; may be ``spectra`` itself.

    Returns
    -------
    numpy.ndarray
        The background, same shape and dtype as ``spectra`` (``out`` when given). float64 input
        gives PyMca's numbers exactly; float32 input is stripped in float32 (within about 1e-6
        relative of the float64 result).

    Notes
    -----
    Each pixel's background depends on that pixel only, so results do not depend on how pixels
    are grouped into blocks. PyMca's C code overflows a fixed 101-coefficient buffer for
    ``filter_width > 101``; here such widths follow the same formula.
    """
    _check_spectra(spectra)
    src = np.ascontiguousarray(spectra)
    if out is None:
        out = np.empty_like(src)
    elif (
        not isinstance(out, np.ndarray) or out.shape != spectra.shape or out.dtype != spectra.dtype
    ):
        raise ValueError(
            f"out must be an array of shape {spectra.shape} and dtype {spectra.dtype}, "
            f"got {getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out).__name__)}"
        )
    if out is not src and np.may_share_memory(out, src):
        src = src.copy()  # a row is read after earlier rows were written: only out is src is safe
    _run(src, out, snip_width, filter_width, anchors, subtract=False)
    return out


def subtract_background(
    spectra: np.ndarray,
    snip_width: float,
    *,
    filter_width: float = 1,
    anchors: Iterable[int] | None = None,
    exact: bool = False,
) -> np.ndarray:
    """Subtract PyMca's fast-fit background in place: ``spectra -= snip_background(spectra, ...)``.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(pixels, channels)`` float32 or float64 spectra, trimmed to the fit range; overwritten.
    snip_width, filter_width, anchors
        As for :func:`snip_background`.
    exact : bool, optional
        For float32 spectra: compute the background in float64 and subtract it as PyMca's
        ``_fitBkgSubtract`` does (``float32(float64(y) - background)``), so the result equals
        PyMca's bit for bit; about twice the cost of the float32 stripping. float64 spectra are
        always exact.

    Returns
    -------
    numpy.ndarray
        ``spectra`` itself, background-free. Without ``exact`` the background is never
        materialised for the whole block: each pixel's is subtracted as soon as it is computed;
        with it, float64 copies of 64-pixel slices are.
    """
    _check_spectra(spectra)
    if not spectra.flags.writeable:
        raise ValueError("spectra is read-only; subtract_background works in place")
    if exact and spectra.dtype != np.float64:
        s2 = spectra[np.newaxis] if spectra.ndim == 1 else spectra
        for start in range(0, s2.shape[0], 64):  # 64 rows: the float64 copy stays in L2 cache
            part = s2[start : start + 64]
            wide = part.astype(np.float64)
            _run(wide, wide, snip_width, filter_width, anchors, subtract=False)
            part -= wide  # float64 arithmetic, cast back to float32: PyMca's in-place subtraction
        return spectra
    _run(spectra, spectra, snip_width, filter_width, anchors, subtract=True)
    return spectra
