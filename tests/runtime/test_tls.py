"""TLS: a cluster started by ``xd.connect(security=...)`` computes over ``tls://`` on 127.0.0.1
and turns away clients without its certificates."""

from __future__ import annotations

import dask.array as da
import pytest
from distributed import Client
from distributed.comm.core import CommClosedError

pytest.importorskip("cryptography", reason="Security.temporary() needs it (the test extra)")

from distributed.security import Security  # noqa: E402

from xrfdask.cli.common import connect_arguments  # noqa: E402
from xrfdask.runtime import connect  # noqa: E402


@pytest.fixture(scope="module")
def tls_client():
    client = connect(
        n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0", security=True
    )
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def test_a_tls_cluster_computes(tls_client):
    address = tls_client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    assert tls_client.security.require_encryption
    assert all(w.startswith("tls://127.0.0.1:") for w in tls_client.scheduler_info()["workers"])
    assert da.arange(100, chunks=10).sum().compute() == 4950


def test_a_client_with_the_certificates_joins(tls_client):
    client = connect(tls_client.scheduler.address, security=tls_client.security)
    try:
        assert client.submit(sum, [1, 2, 3]).result() == 6
    finally:
        client.close()


def test_clients_without_the_certificates_are_refused(tls_client):
    address = tls_client.scheduler.address
    # No TLS at all: the client cannot even speak to a tls:// address.
    with pytest.raises(TypeError, match="TLS expects a `ssl_context`"):
        Client(address, timeout=5, set_as_default=False)
    # Certificates of another authority: the scheduler refuses the handshake.
    with pytest.raises(CommClosedError, match="TLS certificate does not match"):
        Client(address, security=Security.temporary(), timeout=5, set_as_default=False)
    # Plain TCP to the TLS port: the connection is reset.
    with pytest.raises(OSError):
        Client(address.replace("tls://", "tcp://"), timeout=5, set_as_default=False)
    # Temporary certificates cannot join an existing scheduler: they are made for a new one.
    with pytest.raises(ValueError, match="security=True makes new certificates"):
        connect(address, security=True)


def test_cli_tls_files_make_a_security(tmp_path):
    from xrfdask.cli import build_parser

    pems = {}
    for name in ("ca.pem", "cert.pem", "key.pem"):
        pems[name] = tmp_path / name
        pems[name].write_text("")
    args = build_parser().parse_args(
        ["process", "m.GeoPIXE", "--config", "p.toml", "--scheduler", "tls://127.0.0.1:8786"]
        + ["--tls-ca-file", str(pems["ca.pem"]), "--tls-cert", str(pems["cert.pem"])]
        + ["--tls-key", str(pems["key.pem"])]
    )
    target, kwargs = connect_arguments(args)
    security = kwargs["security"]
    assert target == "tls://127.0.0.1:8786" and security.require_encryption
    assert security.tls_ca_file == str(pems["ca.pem"])
    assert (security.tls_client_cert, security.tls_client_key) == (
        str(pems["cert.pem"]),
        str(pems["key.pem"]),
    )
