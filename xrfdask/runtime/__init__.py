"""Where graphs run: cluster selection, bounded streaming of results, progress reporting.

Library functions build graphs and leave the choice of scheduler to dask: threads by default, or
the active ``distributed`` client. Writers that must put results in one file, in order, pull them
through :func:`iter_computed`, which keeps only a few blocks in flight so memory stays bounded by
chunk size, whatever the map size.

- :mod:`~xrfdask.runtime.clusters`: :func:`connect` (a new ``LocalCluster``, a scheduler address
  or file, a dask-jobqueue cluster), :func:`current_client`, :func:`parallelism`;
- :mod:`~xrfdask.runtime.streaming`: :func:`iter_computed`, :func:`materialize_globals`;
- :mod:`~xrfdask.runtime.reporting`: :func:`progress` (dask's and tqdm's bars, ``logging``);
- :mod:`~xrfdask.runtime.preload`: what a worker loads before its first task.
"""

from xrfdask.runtime.clusters import connect, current_client, parallelism
from xrfdask.runtime.reporting import progress
from xrfdask.runtime.streaming import GLOBAL_PREFIX, iter_computed, materialize_globals

__all__ = [
    "GLOBAL_PREFIX",
    "connect",
    "current_client",
    "iter_computed",
    "materialize_globals",
    "parallelism",
    "progress",
]
