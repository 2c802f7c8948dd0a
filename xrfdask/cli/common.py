"""What every subcommand shares: the parser class, the dask-cluster options, one-line errors.

A command module (``xrfdask/cli/<name>.py``) has::

    def register(subparsers, parents: Parents) -> argparse.ArgumentParser: ...  # its parser
    def run(args: argparse.Namespace) -> int: ...                            # API calls only

``run`` raises :class:`UsageError` for options that cannot work together; :func:`run_command`
turns every expected error into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from xrfdask.errors import XrfdaskError, XrfdaskWarning
from xrfdask.io.convert import UnsupportedFormatError

__all__ = [
    "Parents",
    "Parser",
    "UsageError",
    "chunks",
    "detector_label",
    "cluster_options",
    "connect_arguments",
    "make_parents",
    "run_command",
    "scheduler",
]

# Bad input to a command: one line, exit status 1 (tracebacks are for bugs).
_INPUT_ERRORS = (
    XrfdaskError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    PermissionError,
)


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A combination of options that cannot work together (exit status 2)."""


@dataclass(frozen=True)
class Parents:
    """Option groups that several commands share, for ``add_parser(..., parents=[...])``."""

    cluster: argparse.ArgumentParser
    """``--scheduler``, ``--workers``, ``--threads-per-worker``, ``--memory-limit``,
    ``--dashboard-address``, a batch job's ``--cores``, ``--walltime``, ``--queue``, ``--adapt``
    and TLS (``--tls``, ``--tls-ca-file``, ``--tls-cert``, ``--tls-key``): for commands that
    compute (read with :func:`scheduler`)."""


def make_parents() -> Parents:
    """The shared option groups, made once per command line."""
    return Parents(cluster=cluster_options())


def cluster_options() -> argparse.ArgumentParser:
    """The dask-cluster options, as a parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("dask cluster")
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing scheduler (tcp://host:port, tls://host:port or a scheduler "
        "file), 'local' for a new local cluster, 'slurm'/'pbs'/'sge'/'lsf' for batch jobs via "
        "dask-jobqueue (settings not given here from jobqueue.yaml), 'kubernetes' via "
        "dask-kubernetes; default: threads in this process",
    )
    group.add_argument(
        "--workers", type=int, metavar="N", help="workers of a local cluster, or batch jobs"
    )
    group.add_argument("--threads-per-worker", type=int, metavar="N")
    group.add_argument(
        "--memory-limit",
        metavar="SIZE",
        default="auto",
        help="per worker, e.g. 4GiB (a batch job's memory)",
    )
    group.add_argument(
        "--dashboard-address",
        metavar="HOST:PORT",
        default="127.0.0.1:8787",
        help="dashboard of a cluster started here (default %(default)s: reach it from another "
        "machine through an SSH tunnel)",
    )
    group.add_argument("--cores", type=int, metavar="N", help="cores of one batch job")
    group.add_argument("--walltime", metavar="HH:MM:SS", help="time limit of one batch job")
    group.add_argument("--queue", metavar="NAME", help="queue or partition of the batch jobs")
    group.add_argument(
        "--adapt",
        nargs="?",
        const=True,
        default=False,
        type=_adapt_range,
        metavar="MIN:MAX",
        help="scale with the work: between MIN and MAX workers (jobs), or 0 and --workers",
    )
    group.add_argument(
        "--tls",
        action="store_true",
        help="TLS with temporary self-signed certificates, for a cluster started here",
    )
    group.add_argument("--tls-ca-file", metavar="PEM", help="CA certificate, for TLS")
    group.add_argument("--tls-cert", metavar="PEM", help="certificate, for TLS")
    group.add_argument("--tls-key", metavar="PEM", help="private key, for TLS")
    return parent


def _adapt_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX, e.g. 0:8, not {text!r}") from None
    return low, high


def connect_arguments(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """The :func:`xrfdask.connect` call the cluster options ask for: (scheduler, keywords).

    ``--scheduler slurm --workers 8 --memory-limit 16GiB`` is
    ``connect("slurm", workers=8, memory="16GiB")``: for a batch system, ``--memory-limit`` is a
    job's memory, and only the options given are passed (dask-jobqueue's configuration,
    ``jobqueue.yaml``, fills in the rest).
    """
    from xrfdask.runtime.clusters import JOBQUEUE

    address = getattr(args, "scheduler", None)
    target = None if address in (None, "local") else address
    kwargs: dict[str, Any] = {"workers": args.workers}
    if address in JOBQUEUE:
        if args.memory_limit not in (None, "auto"):
            kwargs["memory"] = args.memory_limit
        for key in ("threads_per_worker", "cores", "walltime", "queue"):
            if getattr(args, key, None) is not None:
                kwargs[key] = getattr(args, key)
    else:
        batch = [f"--{key}" for key in ("cores", "walltime", "queue") if getattr(args, key, None)]
        if batch:
            raise UsageError(f"{', '.join(batch)} need --scheduler slurm, pbs, sge or lsf")
        kwargs["threads_per_worker"] = args.threads_per_worker
        kwargs["memory_limit"] = args.memory_limit
    kwargs["dashboard_address"] = args.dashboard_address
    if getattr(args, "adapt", False):
        kwargs["adapt"] = args.adapt
    security = _security(args)
    if security is not None:
        kwargs["security"] = security
    return target, kwargs


def _security(args: argparse.Namespace):
    files = {key: getattr(args, key, None) for key in ("tls_ca_file", "tls_cert", "tls_key")}
    given = [v for v in files.values() if v]  # eager-ok: three option values
    if getattr(args, "tls", False):
        if given:
            raise UsageError("give --tls or --tls-ca-file/--tls-cert/--tls-key, not both")
        return True
    if not given:
        return None
    if len(given) < len(files):
        raise UsageError("TLS needs all of --tls-ca-file, --tls-cert and --tls-key")
    from distributed.security import Security

    cert, key = files["tls_cert"], files["tls_key"]
    return Security(
        tls_ca_file=files["tls_ca_file"],
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        require_encryption=True,
    )


@contextlib.contextmanager
def scheduler(args: argparse.Namespace, *, force_local: bool = False) -> Iterator[Any]:
    """Run the block on the scheduler the cluster options ask for (threads when none).

    Yields the ``distributed.Client``, or None for threads. A cluster started here (local,
    batch jobs, pods) is closed at the end of the block.
    """
    address = getattr(args, "scheduler", None)
    if address is None and not force_local:
        yield None
        return
    from xrfdask.runtime import connect
    from xrfdask.runtime.clusters import CLUSTERS

    target, kwargs = connect_arguments(args)
    client = connect(target, **kwargs)
    print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr)
    try:
        yield client
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None and (address is None or address in CLUSTERS):
            cluster.close()  # started here: its workers, jobs or pods go too


def chunks(args: argparse.Namespace) -> str:
    """The ``chunks=`` of a reader from ``-s/--chunksize MB`` (``"auto"`` without it)."""
    return f"{args.chunksize}MiB" if args.chunksize else "auto"


def run_command(
    run: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str
) -> int:
    """Call a command's ``run(args)``; expected errors become one line on stderr.

    Returns
    -------
    int
        ``run``'s status; 2 for a usage error (options, or a path of the wrong format); 1 for bad
        input (xrfdask errors, ValueError, missing or existing files); 130 when interrupted.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", XrfdaskWarning)
            warnings.showwarning = _show_warning
            return run(args) or 0
    except (UsageError, UnsupportedFormatError) as exc:
        print(f"{prog}: error: {exc} (see {prog} --help)", file=sys.stderr)
        return 2
    except _INPUT_ERRORS as exc:
        message = str(exc).replace("pass overwrite=True", "use --overwrite")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def detector_label(ds: Any, value: str | None) -> Any:
    """``--detector`` as the label type of the map's detectors: ``"0"`` is ``0`` where the
    labels are integers (a ``.GeoPIXE`` map), a name (``channel00``, ``sum``) stays a name."""
    if value is not None and "detector" in ds.coords and ds["detector"].dtype.kind in "iu":
        if value.lstrip("-").isdigit():
            return int(value)
    return value
