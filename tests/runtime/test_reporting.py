import logging
import time

import dask
import dask.array as da
from distributed import Client, LocalCluster

from xrfdask.runtime import progress
from xrfdask.runtime.reporting import whole_bars_paused


def _slow(x):
    time.sleep(1.2)
    return x


def test_whole_computations_show_dask_bar_and_steps_pause_it(capsys):
    with progress(label="sum "):
        dask.delayed(_slow)(1).compute(scheduler="threads")
        err = capsys.readouterr().err
        assert "100% Completed" in err  # dask's own bar, for a computation over its 1 s minimum
        with whole_bars_paused():
            dask.delayed(_slow)(2).compute(scheduler="threads")
        assert capsys.readouterr().err == ""
        dask.delayed(_slow)(3).compute(scheduler="threads")  # registered again after the pause
        assert "100% Completed" in capsys.readouterr().err
    with progress(enabled=False):
        dask.delayed(_slow)(4).compute(scheduler="threads")
    assert capsys.readouterr().err == ""


def test_on_a_cluster_the_dashboard_link_is_logged(caplog):
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster:
        with Client(cluster) as client, caplog.at_level(logging.INFO, logger="xrfdask.runtime"):
            with progress(label="fit "):
                assert da.ones(4, chunks=2).sum().compute() == 4
    assert f"fit dashboard: {client.dashboard_link}" in caplog.text
