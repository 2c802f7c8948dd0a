"""The ``xrfdask`` command. Every subcommand is a thin call into the Python API.

    xrfdask info FILE
    xrfdask readout -f FILE [-o DIR] [-i] [-w] [-x X0 X1] [-y Y0 Y1] [-e] [-a] [-c [M]] [-dt [V]]
    xrfdask convert IN OUT [--group G] [--overwrite]
    xrfdask convert --id15 FILE --scan 1.1 --dim ROWS COLS [OUT]
    xrfdask convert --p06 SCANDIR [OUT]
    xrfdask fit FILE [--config CFG] [--elements Fe Cu ...] [--method linear|pymca|full]
                [--detector N|sum] -o OUT.h5|OUT.zarr
    xrfdask normalise FILE [--I0norm V] [--tmnorm] [--regrid snake|time] [-o OUT]
    xrfdask detlim FILE --cnc CNC [CNC ...] [--tilt DEG] [-o OUT] [--png [FILE.png]] [--overwrite]
    xrfdask quantify FILE --ref REF.h5 [--ref ...] [--norm-line Rayl] [--absorb Fe --matrix CNC]
                [--density D --thickness T] [--overwrite]
    xrfdask classify FILE [--group fit|norm|quant] [--method ...] [-n K] [-o OUT]
    xrfdask process FILE --config TOML [-o OUT] [--force] | --example-config
    xrfdask images FILE [--group fit|norm|quant|rel_dif] [--log|--sqrt] [--correlation] [-o DIR]
    xrfdask export FILE [--group ...] [--tiff DIR] [--csv OUT] [--class-csv OUT]
    xrfdask demo [--out DIR]

Errors from bad input print one line (``xrfdask: error: …``) and exit with status 1; bad
command lines exit with status 2.

One module per subcommand, ``xrfdask/cli/<name>.py``, with ``register(subparsers, parents)``
and ``run(args) -> int`` (see :mod:`xrfdask.cli.common`); a new command is its module and its
name in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from types import ModuleType

from xrfdask.cli.common import Parser, make_parents, run_command

__all__ = ["COMMANDS", "build_parser", "main"]

#: The subcommands, in the order ``xrfdask --help`` lists them; each is a module of this package.
COMMANDS: tuple[str, ...] = (
    "info", "readout", "convert", "fit", "normalise", "detlim", "quantify", "classify", "process",
    "images", "export", "tomo", "demo",
)  # fmt: skip


def command(name: str) -> ModuleType:
    """The module of subcommand ``name`` (``xrfdask.cli.<name>``)."""
    return importlib.import_module(f"{__name__}.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The ``xrfdask`` parser with every subcommand of :data:`COMMANDS`."""
    from xrfdask import __version__

    parser = Parser(
        prog="xrfdask",
        description="XRF hyperspectral maps larger than memory: read, convert, fit, export.",
    )
    parser.add_argument("--version", action="version", version=f"xrfdask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    parents = make_parents()
    for name in COMMANDS:
        command(name).register(sub, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xrfdask`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(command(args.command).run, args, prog=f"xrfdask {args.command}")
