import dask.array as da
import pytest

from xrfdask.runtime import connect, current_client, parallelism
from xrfdask.runtime.clusters import CLUSTERS, register_cluster


def _worker_state():
    def state(dask_worker):  # local: pickled by value, for workers that cannot import tests/
        import sys

        warm = getattr(dask_worker, "xrfdask_warm_up", None)
        return warm, "xrfdask.fit.background" in sys.modules

    return state


def test_connect_starts_a_warmed_local_cluster_and_becomes_the_default():
    client = connect(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    try:
        assert current_client() is client
        assert parallelism() == 2
        assert da.arange(10, chunks=3).sum().compute() == 45
        states = client.run(_worker_state())
        assert len(states) == 2
        for warm, imported in states.values():
            # The preload ran in each worker process before it took tasks.
            assert imported and warm is not None and warm["imports"] > 0
        env = client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert set(env.values()) == {None}
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    assert current_client() is None


def test_connect_without_warm_up_and_to_an_existing_scheduler(dask_cluster):
    client = connect(str(dask_cluster))  # a scheduler file: joined as it is, not warmed
    try:
        assert parallelism() == 2
        assert all(w is None for w, _ in client.run(_worker_state()).values())
    finally:
        client.close()


def test_cluster_kinds_are_a_registry():
    assert {"local", "slurm", "pbs"} <= set(CLUSTERS)
    started = {}

    @register_cluster("test-kind")
    def factory(**kwargs):
        started.update(kwargs)
        raise RuntimeError("not a real cluster")

    try:
        with pytest.raises(RuntimeError, match="not a real cluster"):
            connect("test-kind", n_workers=3)
        assert started["n_workers"] == 3 and started["warm"] is True
    finally:
        del CLUSTERS["test-kind"]
