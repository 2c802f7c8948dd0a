"""Fast paths that a reader offers through the arrays it returns.

Processing code (the fit, later normalisation and classification) works on any dask array of
spectra. Some readers can do better than the generic path for the arrays they made themselves:
the ``.GeoPIXE`` reader sums the sparse records without decoding dense blocks, or decodes them
straight into the trimmed float blocks a fit needs; an HDF5 file may already hold each
detector's sum spectrum. A reader registers those paths here, keyed by the name prefix of its
read layer, and processing asks for them by array, so no processing module imports a reader
(as dask-image's ``dispatch/`` picks an implementation by array type).

Every path answers ``None`` unless the array is exactly the reader's own (not sliced, not
transformed), so a caller always keeps its generic path as the fallback.

Registered paths (each optional):

``sum_spectrum(data) -> dask.array | None``
    (detector, channel) float64 sum over all pixels, as a lazy array.
``stored_sum_spectrum(data) -> (numpy array, str) | None``
    (detector, channel) sum spectra the file already holds, and where they come from
    (``"raw/channel00/sumspec, ..."``), read now (a few kB).
``channel_blocks(data, lo, hi, dtype) -> dict | None``
    A task per block of pixels ``(i, j)`` returning the (detector, pixels, channel lo..hi-1)
    block in ``dtype`` (a new array), the form the fit's solvers take.
``pixel_totals(data) -> dask.array | None``
    (y, x, detector) int64 total counts of every spectrum, lazily, in the data's blocks.
``pixel_weighted_sums(data, weights) -> dask.array | None``
    (y, x, n) float64: each pixel's detector-summed spectrum times ``weights`` (channel, n),
    lazily (the colour map's weighted sums).
``pixel_binned_sums(data, bins) -> dask.array | None``
    (y, x, n bins) float64: each pixel's detector-summed spectrum summed into bins, ``bins``
    (channel,) the bin of each channel, -1 to leave it out (classification's features).
``class_sum_spectra(data, labels, n_classes) -> dask.array | None``
    (class, channel) float64 sum spectra (detectors summed) of the pixels of each class,
    ``labels`` a lazy (y, x) integer array (classification's class spectra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da

__all__ = [
    "PATHS",
    "register",
    "source",
    "lookup",
    "sum_spectrum",
    "stored_sum_spectrum",
    "channel_blocks",
    "pixel_totals",
    "pixel_weighted_sums",
    "pixel_binned_sums",
    "class_sum_spectra",
]

PATHS = (
    "sum_spectrum",
    "stored_sum_spectrum",
    "channel_blocks",
    "pixel_totals",
    "pixel_weighted_sums",
    "pixel_binned_sums",
    "class_sum_spectra",
)
_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {}


def register(prefix: str, **paths: Callable[..., Any]) -> None:
    """Offer fast paths for the dask arrays whose name starts with ``prefix``.

    Parameters
    ----------
    prefix : str
        Name prefix of the reader's read layer (``"geopixe-read-"``).
    **paths : callable
        Implementations of the paths named in :data:`PATHS`.
    """
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise TypeError(f"unknown fast path(s) {sorted(unknown)}; expected {PATHS}")
    _REGISTRY.setdefault(prefix, {}).update(paths)


def source(data: Any) -> str | None:
    """The registered prefix of the reader that made ``data`` (``"geopixe-read-"``), or None."""
    if not isinstance(data, da.Array):
        return None
    return next((prefix for prefix in _REGISTRY if data.name.startswith(prefix)), None)


def lookup(data: Any, path: str) -> Callable[..., Any] | None:
    """The implementation of ``path`` for ``data``, or None (no reader offers it)."""
    prefix = source(data)
    return None if prefix is None else _REGISTRY[prefix].get(path)


def sum_spectrum(data: Any) -> da.Array | None:
    """A fast lazy (detector, channel) sum over pixels, or None."""
    impl = lookup(data, "sum_spectrum")
    return None if impl is None else impl(data)


def stored_sum_spectrum(data: Any) -> tuple[Any, str] | None:
    """The (detector, channel) sum spectra stored with the data and their source, or None."""
    impl = lookup(data, "stored_sum_spectrum")
    return None if impl is None else impl(data)


def channel_blocks(data: Any, lo: int, hi: int, dtype: Any) -> dict[tuple[int, int], Any] | None:
    """Tasks reading each block of pixels as (detector, pixels, channels lo..hi-1), or None."""
    impl = lookup(data, "channel_blocks")
    return None if impl is None else impl(data, lo, hi, dtype)


def pixel_totals(data: Any) -> da.Array | None:
    """Lazy (y, x, detector) total counts of every spectrum without dense blocks, or None."""
    impl = lookup(data, "pixel_totals")
    return None if impl is None else impl(data)


def pixel_weighted_sums(data: Any, weights: Any) -> da.Array | None:
    """Lazy (y, x, n) sums over channels and detectors of every count times ``weights``
    (channel, n) float64, without dense blocks, or None."""
    impl = lookup(data, "pixel_weighted_sums")
    return None if impl is None else impl(data, weights)


def pixel_binned_sums(data: Any, bins: Any) -> da.Array | None:
    """Lazy (y, x, n bins) binned detector-summed spectra without dense blocks, or None."""
    impl = lookup(data, "pixel_binned_sums")
    return None if impl is None else impl(data, bins)


def class_sum_spectra(data: Any, labels: Any, n_classes: int) -> da.Array | None:
    """Lazy (class, channel) sum spectra of the pixels of each class (``labels`` (y, x)),
    detectors summed, without dense blocks, or None."""
    impl = lookup(data, "class_sum_spectra")
    return None if impl is None else impl(data, labels, n_classes)


def block_arguments(data: Any, prefixes: str | tuple[str, ...], kind: type) -> dict | None:
    """The ``kind`` argument of each task of a reader's own read layer, by (row, column) block.

    Readers put a small description of each block (a :class:`BlockSpec`, an HDF5 selection) in
    their read tasks; their fast paths read the blocks their own way from it. None unless
    ``data`` is exactly such an array (its name starts with one of ``prefixes``, it is not
    sliced or transformed, and every task has a ``kind`` argument).
    """
    if not isinstance(data, da.Array) or not data.name.startswith(prefixes):
        return None
    layer = data.__dask_graph__().layers.get(data.name)
    if layer is None:
        return None
    found = {}
    for key, task in dict(layer).items():  # eager-ok: graph tasks, no data
        args = getattr(task, "args", None)
        if args is None and isinstance(task, tuple):
            args = task[1:]
        arg = next((a for a in (args or ()) if isinstance(a, kind)), None)
        if arg is None or len(key) != data.ndim + 1:
            return None
        found[key[1], key[2]] = arg
    return found
