"""The numba set-up of xrfdask's compiled kernels: one decorator, and where its cache lives.

numba's ``cache=True`` writes compiled kernels next to their module (``__pycache__/*.nbi``,
``*.nbc``) whenever that folder is writable. For a package installed with ``pip install .`` that
folder is in ``site-packages/xrfdask/``, and pip does not know those files: uninstalling the
package (as ``pip install -e .`` does before an editable install) leaves the folders behind, and
an ``xrfdask/`` folder left in site-packages shadows the editable install as an empty namespace
package in every process started outside the repository, such as dask's scheduler and workers.

So xrfdask's kernels cache in a folder of the user's cache instead, found in this order:

1. ``$NUMBA_CACHE_DIR`` when the user set it (numba's own setting, left alone);
2. ``$XRFDASK_CACHE_DIR/numba``;
3. the platform's user cache folder: ``$XDG_CACHE_HOME/xrfdask/numba`` or
   ``~/.cache/xrfdask/numba`` (Linux), ``~/Library/Caches/xrfdask/numba`` (macOS),
   ``%LOCALAPPDATA%\\xrfdask\\numba`` (Windows);
4. when that folder cannot be written: ``<temp dir>/xrfdask-<user>/numba``; when no folder can be
   written, the kernels compile without a cache.

numba keys each entry by the source file's folder (two installs never share entries), the source
file's stamp, the numba version and the CPU, so an upgrade or an edit recompiles, never loads
stale code. The folder is chosen when a kernel is decorated, that is when its module is imported,
in every process from its own environment: dask workers started with the client's environment
use the client's cache.
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
from numba.core import config as _numba_config

__all__ = ["cache_root", "copy", "jit", "numba_cache_dir"]

_lock = threading.Lock()  # numba's CACHE_DIR is swapped while a kernel is decorated
_chosen: list[Path | None] = []  # numba_cache_dir(), decided once per process


def cache_root() -> Path:
    """xrfdask's user cache folder: ``$XRFDASK_CACHE_DIR``, else the platform's user cache."""
    env = os.environ.get("XRFDASK_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(
            os.path.expanduser("~"), "AppData", "Local"
        )
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xrfdask"


def _usable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _temp_fallback() -> Path:
    try:
        user = getpass.getuser()
    except Exception:  # no user name (containers without passwd entries)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"xrfdask-{user}" / "numba"


def numba_cache_dir() -> Path | None:
    """Folder xrfdask's kernels cache in, or None when none can be written.

    ``$NUMBA_CACHE_DIR`` when set; see the module docstring for the order. Decided once per
    process, when the first kernel is decorated.
    """
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    if user_dir:
        return Path(user_dir)
    if not _chosen:
        _chosen.append(_choose())
    return _chosen[0]


def _choose() -> Path | None:
    for candidate in (cache_root() / "numba", _temp_fallback()):
        if _usable(candidate):
            return candidate
    return None


def jit(func: Callable | None = None, **options: Any) -> Any:
    """``numba.njit(cache=True, nogil=True, **options)``, cached in :func:`numba_cache_dir`.

    Use as ``@jit`` or ``@jit(fastmath=True, ...)``. Kernels compile lazily, on first call, for
    the argument types they meet (numba then saves each specialisation in the cache).
    """
    if func is None:
        return lambda f: jit(f, **options)
    options.setdefault("nogil", True)
    folder = numba_cache_dir()
    if folder is None:
        return numba.njit(cache=False, **options)(func)
    with _lock:
        # numba chooses a kernel's cache folder when it is decorated (its locator reads
        # config.CACHE_DIR then); set it only for xrfdask's kernels, not other packages'.
        previous = _numba_config.CACHE_DIR
        _numba_config.CACHE_DIR = str(folder)
        try:
            return numba.njit(cache=True, **options)(func)
        finally:
            _numba_config.CACHE_DIR = previous


@jit
def copy(src, dst, lo, hi):  # pragma: no cover - compiled
    """``dst[lo:hi] = src[lo:hi]`` for 1-D arrays, element by element.

    Kernels use it instead of a slice assignment between arrays, which numba (0.68) compiles with
    a formatted shape-mismatch error: the first such assignment of a run cost 3-4 s of
    compilation (CPU), each further one 0.5-1 s; this loop costs milliseconds.
    """
    for i in range(lo, hi):
        dst[i] = src[i]
