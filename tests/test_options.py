"""The band size of ``chunks="auto"``: 16 MiB on threads, larger on a distributed cluster."""

from __future__ import annotations

import dask
from dask.utils import parse_bytes
from distributed import Client, LocalCluster

import xrfdask as xd
from xrfdask.options import chunk_budget


def test_auto_band_size_follows_the_scheduler(example_path):
    assert chunk_budget() == parse_bytes("16MiB")
    threads = xd.open_geopixe(example_path).spectra.data.chunks[0]
    with (
        dask.config.set({"xrfdask.distributed-chunk-size": "4MiB"}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        assert chunk_budget() == parse_bytes("4MiB")
        on_cluster = xd.open_geopixe(example_path).spectra.data.chunks[0]
    with dask.config.set({"xrfdask.chunk-size": "4MiB"}):
        four_mib = xd.open_geopixe(example_path).spectra.data.chunks[0]
    assert on_cluster == four_mib != threads  # 64 rows of 786 KiB: bands of 16 rows, or of 4
    assert chunk_budget() == parse_bytes("16MiB")  # back on threads


def test_explicit_band_size_wins_on_a_cluster():
    with (
        dask.config.set({"xrfdask.chunk-size": "2MiB"}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        assert chunk_budget() == parse_bytes("2MiB")
