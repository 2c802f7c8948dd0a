"""BLAS on one thread while any of the fit's tasks runs, whatever the others do."""

import threading

from threadpoolctl import threadpool_info, threadpool_limits

from xrfdask.fit.blas import one_blas_thread


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_one_thread_inside_and_restored_after():
    with threadpool_limits(limits=2, user_api="blas"):  # a default the limit must change
        before = blas_threads()
        assert before and all(n == 2 for n in before), before
        with one_blas_thread():
            assert blas_threads() == [1] * len(before)
            with one_blas_thread():  # re-entrant
                assert blas_threads() == [1] * len(before)
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == before


def test_overlapping_tasks_keep_the_limit_until_the_last_leaves():
    """threadpool_limits per task would restore 2 threads when the first task ends."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with one_blas_thread():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    @one_blas_thread()
    def second():
        first_in.wait(10)
        second_in.set()
        first_out.wait(10)
        seen["after the first left"] = blas_threads()

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert first_out.is_set() and second_in.is_set()
        assert seen["after the first left"] == [1] * len(before)
        assert blas_threads() == before
