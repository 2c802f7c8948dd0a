"""``xrfdask info FILE``: a .GeoPIXE map summarised from its record index (no spectra decoded)."""

from __future__ import annotations

import argparse

from xrfdask.cli.common import Parents


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``info`` parser."""
    parser = subparsers.add_parser("info", help="summarise a .GeoPIXE file from its index (fast)")
    parser.add_argument("file", help="a .GeoPIXE file")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print :func:`~xrfdask.io.geopixe.summary.format_summary` of the file's index."""
    from xrfdask.io.geopixe.index import build_index
    from xrfdask.io.geopixe.summary import format_summary

    print(format_summary(build_index(args.file).summary()))
    return 0
