"""xrfdask's settings, in dask's configuration under the ``xrfdask`` namespace.

``xrfdask.chunk-size`` is the dense size of a band of rows when maps are read with
``chunks="auto"``. Its default, ``"auto"``, depends on where the graphs will run, as seen when
the map is opened:

- threads (dask's default scheduler): 16 MiB. Measured on the benchmarks: decoding and fitting
  bands of 16-32 MiB run 20-50 % faster than 128 MiB ones, because freed blocks are reused by the
  allocator instead of being mapped and page-faulted afresh for every band; 16 MiB bands fit 5 %
  faster per core than 32 MiB ones and balance better over workers (a 0.5 GB map: 2 threads
  1.77x one, against 1.66x with 32 MiB bands, where the last of 15 bands runs alone);
- a ``distributed`` client: ``xrfdask.distributed-chunk-size``, 64 MiB. Each distributed task
  costs the scheduler a round trip, and on a small machine the scheduler shares the cores with
  the workers: ``xrfdask fit`` of a 1.3 GB map on a fresh 2-worker local cluster took 1.53x the
  time of 2 threads with 16 MiB bands and 1.07x with 64 MiB ones (benchmarks/bench_cluster.py).

Set either like any dask option: ``dask.config.set({"xrfdask.chunk-size": "64MiB"})`` or the
environment variable ``DASK_XRFDASK__CHUNK_SIZE=64MiB``.
"""

from __future__ import annotations

import dask
from dask.utils import parse_bytes

__all__ = ["DEFAULTS", "chunk_budget"]

DEFAULTS = {"xrfdask": {"chunk-size": "auto", "distributed-chunk-size": "64MiB"}}
dask.config.update_defaults(DEFAULTS)

THREADS_CHUNK_SIZE = "16MiB"  # the "auto" band on the threaded scheduler (see above)


def chunk_budget() -> int:
    """Bytes per band of rows for ``chunks="auto"`` (``xrfdask.chunk-size``)."""
    value = dask.config.get("xrfdask.chunk-size")
    if value in (None, "auto"):
        # Imported here: options is loaded first of all xrfdask modules (by xrfdask/__init__).
        from xrfdask.runtime.clusters import current_client

        on_cluster = current_client() is not None
        value = (
            dask.config.get("xrfdask.distributed-chunk-size") if on_cluster else THREADS_CHUNK_SIZE
        )
    return parse_bytes(value)
