import dask
import dask.array as da
import numpy as np

from xrfdask.runtime import iter_computed, materialize_globals, parallelism


def test_global_tasks_are_computed_once_and_substituted():
    calls = []

    def whole(*blocks):
        calls.append(1)
        return sum(int(b.sum()) for b in blocks)

    a = da.arange(12, chunks=3)
    total = dask.delayed(whole)(*a.to_delayed(), dask_key_name="xrf-global-total")
    parts = [dask.delayed(np.add)(b, total) for b in a.to_delayed()]
    out = list(iter_computed(parts, window=1))
    assert len(calls) == 1
    np.testing.assert_array_equal(np.concatenate(out), np.arange(12) + 66)
    # Collections without global tasks pass through untouched.
    assert materialize_globals([a])[0] is a


def test_iter_computed_keeps_order_with_any_window():
    blocks = list(da.arange(20, chunks=3).to_delayed())
    for window in (1, 2, 7):
        got = np.concatenate(list(iter_computed(blocks, window=window)))
        np.testing.assert_array_equal(got, np.arange(20))
    assert parallelism() >= 1
