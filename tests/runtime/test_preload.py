import subprocess
import sys

CODE = """
import sys, numba
from numba.core.registry import CPUDispatcher
import xrfdask.io.geopixe.kernels as k
from xrfdask.runtime.preload import load_cached_kernels, warm_up
import numpy as np
# Compile (and cache) one specialisation, as a first run would.
k._u16(np.zeros(4, np.uint8), 0)
print("compiled", len(k._u16.overloads))
"""

CHECK = """
import sys
from xrfdask.runtime.preload import warm_up
import xrfdask.io.geopixe.kernels as k
times = warm_up()
stats = k._u16.stats
print(len(k._u16.overloads), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()),
      int(times["n_kernels"]), "xrfdask.fit.background" in sys.modules)
"""


def test_warm_up_loads_the_cached_kernels_in_a_fresh_process():
    run = lambda code: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert run(CODE)[-1] == "1"
    n_u16, hits, misses, n_total, imported = map(eval, run(CHECK))
    # What the other process compiled is loaded from numba's cache before any call, not
    # compiled; the fit's modules are imported.
    assert n_u16 >= 1 and hits == n_u16 and misses == 0
    assert n_total >= n_u16 and imported
