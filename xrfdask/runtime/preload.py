"""What a worker loads before its first task: xrfdask's modules and its compiled kernels.

A fresh worker process otherwise pays, inside its first tasks, for importing the modules the
tasks name (the fit, PyMca's fit theory for the sum spectra, the zarr writer) and for loading
every numba kernel from numba's cache (numba's own set-up comes with the first one). Measured on
the 1.3 GB bench map (2 workers): 1-2 s in the first tasks of each worker.

Used as a ``distributed`` preload (``LocalCluster(preload=["xrfdask.runtime.preload"])``,
``dask worker --preload xrfdask.runtime.preload``): :func:`dask_setup` runs in the worker before
it registers with the scheduler, so this counts as start-up. :class:`WarmUp` does the same as a
worker plugin, for clusters started elsewhere (``client.register_plugin(WarmUp())``).
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Iterable

try:  # a WorkerPlugin when distributed is there (it is a dependency)
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover
    WorkerPlugin = object  # type: ignore[assignment,misc]

__all__ = ["WarmUp", "dask_setup", "load_cached_kernels", "warm_up"]

logger = logging.getLogger("xrfdask.runtime")

#: Modules the tasks of a fit and of the writers name; missing ones are skipped (layouts move).
TASK_MODULES = (
    "xrfdask",
    "xrfdask.fit.api",
    "xrfdask.fit.engines.linear",
    "xrfdask.fit.engines.pymca",
    "xrfdask.fit.background",
    "xrfdask.fit.project",
    "xrfdask.io.geopixe.kernels",
    "xrfdask.io.h5layout.zarrwrite",
    "PyMca5.PyMcaPhysics.xrf.ClassMcaTheory",  # the full fits of the sum spectra
)


def load_cached_kernels(prefix: str = "xrfdask") -> int:
    """Load from numba's cache every compiled specialisation of the kernels in loaded modules.

    Only what the cache holds for this machine and this source is loaded (nothing is compiled):
    the specialisations that earlier runs used. Returns how many were loaded.
    """
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return 0
    loaded = 0
    seen: set[int] = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == prefix or name.startswith(prefix + ".")):
            continue
        for obj in list(vars(module).values()):  # eager-ok: dict
            if not isinstance(obj, CPUDispatcher) or id(obj) in seen:
                continue
            seen.add(id(obj))
            loaded += _load_overloads(obj)
    return loaded


def _load_overloads(dispatcher) -> int:
    # numba's cache index: keys (signature, codegen magic, source hashes) -> cached overload.
    # An entry whose key matches this process's is loaded by compile(sig) without compiling.
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is None:  # cache=False
        return 0
    try:
        index = cache_file._load_index()
        codegen = dispatcher.targetctx.codegen()
        sigs = [key[0] for key in index if cache._index_key(key[0], codegen) == key]
    except Exception as exc:  # noqa: BLE001 - numba internals changed: skip, tasks load lazily
        logger.debug("numba cache of %s not read: %s", dispatcher.__name__, exc)
        return 0
    for sig in sigs:
        if sig not in dispatcher.overloads:
            dispatcher.compile(sig)
    return len(sigs)


def warm_up(modules: Iterable[str] = TASK_MODULES) -> dict[str, float]:
    """Import ``modules`` and load the cached kernels; returns the seconds each step took."""
    t0 = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            logger.debug("preload: %s not imported: %s", name, exc)
    t1 = time.perf_counter()
    n = load_cached_kernels()
    t2 = time.perf_counter()
    logger.debug("preload: imports %.2f s, %d kernels loaded in %.2f s", t1 - t0, n, t2 - t1)
    return {"imports": t1 - t0, "kernels": t2 - t1, "n_kernels": float(n)}


def dask_setup(worker) -> None:
    """distributed's preload hook: warm the worker up before it takes tasks.

    Then the kernels not in numba's cache yet compile in a background thread, shared out
    between the workers (:mod:`xrfdask.runtime.compile_ahead`): a fresh install's first run.
    """
    worker.xrfdask_warm_up = warm_up()
    from xrfdask.runtime import compile_ahead

    worker.xrfdask_compile_ahead = compile_ahead.start()


class WarmUp(WorkerPlugin):
    """A worker plugin that runs :func:`warm_up` on every worker, and on those that join later."""

    name = "xrfdask-warm-up"

    def setup(self, worker) -> None:
        dask_setup(worker)
