"""BLAS held to one thread while the fit's tasks run, across concurrent tasks.

The fit's linear algebra is small (channels x tens of parameters, ~1 MB slices of pixels in
PyMca's ``lstsq``): BLAS threads do not speed it up, and next to dask's worker threads they
oversubscribe the cores. They spin-wait between calls, so with one other busy process on the
machine ``method="pymca"`` ran at a third of its speed (issue 9).

Why not ``threadpoolctl.threadpool_limits`` around each task:

- OpenBLAS's thread count is process-wide, and each ``threadpool_limits`` restores the count
  it found on exit: with two tasks running, the first to finish restores the default while the
  other still runs, so that task's BLAS calls run multi-threaded again;
- since threadpoolctl 3.7, only one "controlling" thread may change OpenBLAS's count (the
  first to set it, until it clears it); the others silently do nothing, so a limit entered in
  a worker thread after the main thread set one has no effect;
- it scans the loaded libraries on every entry (measured 3.1 ms per task on the 2-core
  development machine, against 8 us here with the controller built once).

:func:`one_blas_thread` counts the tasks inside it: the first sets every BLAS library to one
thread, the last restores what the first found. Distributed's nanny already starts worker
processes with ``OPENBLAS_NUM_THREADS=1`` (``distributed.nanny.pre-spawn-environ``); this covers
the threaded scheduler, workers started without a nanny, and the user's own process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import threadpoolctl
from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_holders = 0
_limiter = None
_controller: ThreadpoolController | None = None


def _release() -> None:
    """Let any thread set OpenBLAS's count next (threadpoolctl >= 3.7 keeps one controller)."""
    clear = getattr(
        getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None
    )
    if clear is not None:
        clear(force=True)


def _blas() -> ThreadpoolController:
    # Built on first use, from a task or a model build: numpy's and scipy's OpenBLAS (two
    # libraries in pip wheels) are loaded by then (xrfdask imports both).
    global _controller
    if _controller is None:
        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with every BLAS library on one thread (re-entrant, thread-safe).

    Usable as a decorator (``@one_blas_thread()``). The thread counts found when the first
    concurrent holder entered are restored when the last one leaves.
    """
    global _holders, _limiter
    with _lock:
        if _holders == 0:
            _release()  # whichever thread set the count last, this one may now
            _limiter = _blas().limit(limits=1)
            _release()  # and the next setter, ours or the caller's own threadpool_limits, too
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _release()
                _limiter.restore_original_limits()
                _release()
                _limiter = None
