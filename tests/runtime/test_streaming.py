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


def test_iter_computed_counts_steps_on_one_bar_inside_progress(capsys):
    from xrfdask.runtime import progress

    blocks = list(da.arange(10, chunks=2).to_delayed())
    with progress(label="write "):
        got = np.concatenate(list(iter_computed(blocks, window=2)))
        total = da.arange(10, chunks=2).sum().compute()
    np.testing.assert_array_equal(got, np.arange(10))
    assert total == 45
    err = capsys.readouterr().err
    assert "write [" in err and "5/5" in err and "100%" in err
    # Outside progress(): silent.
    list(iter_computed(blocks, window=3))
    assert capsys.readouterr().err == ""
