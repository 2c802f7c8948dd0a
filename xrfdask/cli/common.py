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
    "cluster_options",
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
    ``--dashboard-address``: for commands that compute (read with :func:`scheduler`)."""


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
        help="run on an existing scheduler (tcp://host:port or a scheduler file), 'local' for a "
        "new local cluster, 'slurm'/'pbs' via dask-jobqueue; default: threads in this process",
    )
    group.add_argument("--workers", type=int, metavar="N", help="workers of a local cluster")
    group.add_argument("--threads-per-worker", type=int, metavar="N")
    group.add_argument(
        "--memory-limit", metavar="SIZE", default="auto", help="per worker, e.g. 4GiB"
    )
    group.add_argument(
        "--dashboard-address",
        metavar="HOST:PORT",
        default="127.0.0.1:8787",
        help="dashboard of a local cluster (default %(default)s)",
    )
    return parent


@contextlib.contextmanager
def scheduler(args: argparse.Namespace, *, force_local: bool = False) -> Iterator[Any]:
    """Run the block on the scheduler the cluster options ask for (threads when none).

    Yields the ``distributed.Client``, or None for threads. A local cluster started here is
    closed at the end of the block.
    """
    address = getattr(args, "scheduler", None)
    if address is None and not force_local:
        yield None
        return
    from xrfdask.runtime import connect

    client = connect(
        None if address in (None, "local") else address,
        n_workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
        dashboard_address=args.dashboard_address,
    )
    print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr)
    try:
        yield client
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None and address in (None, "local"):
            cluster.close()


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
