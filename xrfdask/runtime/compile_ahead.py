"""Compile the fit's kernels ahead of its tasks, shared out between the workers of a cluster.

On a fresh install numba's cache is empty, and every worker process compiles each kernel the
first time a task calls it: on a 2-worker cluster both compile the same four kernels (about 4 s
of CPU each) at the same moment. Here a worker, as it starts, compiles them in a background
thread instead, and the workers share the work through numba's cache: before compiling a kernel a
worker takes a lock file for it beside the cache (``fcntl.flock``, not blocking); a kernel another
worker is compiling is skipped and, once the others are done, loaded from the cache that worker
wrote. Each kernel is warmed by calling it on tiny arrays of the types the tasks pass (checked by
``tests/runtime/test_compile_ahead.py``), so the tasks then find it ready.

The thread does not hold up the worker's start; a task that needs a kernel before the thread has
it waits for numba's compiler lock or compiles it itself, as without this module. With the cache
already filled every warm-up is a cache load (milliseconds).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

logger = logging.getLogger("xrfdask.runtime")

__all__ = ["KERNELS", "compile_ahead", "start"]


def _geopixe_sum() -> None:
    from xrfdask.io.geopixe import kernels

    kernels.sum_records(np.zeros(4, np.uint16), 0, 0, 1, 1, 4, 0, 1, 0, 1, np.zeros((1, 4)))


def _geopixe_decode() -> None:
    from xrfdask.io.geopixe import kernels

    # The fit decodes into float32 (detector, pixel, channel) blocks through a transposed view
    # (non-contiguous: numba's layout "A"; a view of size-1 axes would type as "C").
    out = np.zeros((2, 2, 2, 4), np.float32).transpose(1, 2, 0, 3)
    kernels.decode_records(np.zeros(4, np.uint16), 0, 0, 1, 1, 4, 0, 0, out, 0)


def _background() -> None:
    from xrfdask.fit.background import subtract_background

    subtract_background(np.zeros((1, 8), np.float32), 2, anchors=[0, 7])


def _projection() -> None:
    from xrfdask.fit.project import project

    project(np.zeros((2, 8)), np.zeros((1, 8), np.float32), np.empty((1, 2), np.float32))
    # The refit of pixels with negative areas projects into float64.
    project(np.zeros((2, 8)), np.zeros((1, 8), np.float32))


#: (name, warm-up) of the kernels of a linear fit of integer spectra (``.GeoPIXE`` or HDF5),
#: in the order its tasks first need them.
KERNELS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("geopixe-sum", _geopixe_sum),
    ("geopixe-decode", _geopixe_decode),
    ("background-float32", _background),
    ("projection-float32", _projection),
)


@contextlib.contextmanager
def _lock(folder: str | None, name: str, block: bool) -> Iterator[bool]:
    """Hold the lock file of kernel ``name``; yields False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no sharing, every worker compiles what it needs
        yield True
        return
    if folder is None:
        yield True
        return
    path = os.path.join(folder, f"xrfdask-compile-{name}.lock")
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def compile_ahead(kernels=KERNELS) -> dict[str, float]:
    """Compile (or load from the cache) ``kernels``, sharing the work with other processes.

    Returns the seconds each warm-up took in this process (a cache load is milliseconds).
    """
    from xrfdask._jit import numba_cache_dir

    folder = numba_cache_dir()
    folder = str(folder) if folder is not None else None
    if folder is not None:
        with contextlib.suppress(OSError):
            os.makedirs(folder, exist_ok=True)
    times: dict[str, float] = {}
    later = []
    for name, warm in kernels:  # first pass: what no other process is compiling
        with _lock(folder, name, block=False) as mine:
            if not mine:
                later.append((name, warm))
                continue
            times[name] = _timed(warm)
    for name, warm in later:  # then the others' kernels, from the cache they write
        with _lock(folder, name, block=True):
            times[name] = _timed(warm)
    logger.debug("compile ahead: %s", {k: round(v, 3) for k, v in times.items()})
    return times


def _timed(warm: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    try:
        warm()
    except Exception as exc:  # noqa: BLE001 - a warm-up must never break a worker
        logger.debug("compile ahead: %s failed: %s", getattr(warm, "__name__", warm), exc)
    return time.perf_counter() - t0


def start(kernels=KERNELS) -> threading.Thread:
    """:func:`compile_ahead` in a daemon thread (what a worker's preload calls)."""
    thread = threading.Thread(
        target=compile_ahead, args=(kernels,), name="xrfdask-compile-ahead", daemon=True
    )
    thread.start()
    return thread
