"""``xrfdask process FILE --config pipeline.toml``: :func:`xrfdask.process`."""

from __future__ import annotations

import argparse
import sys

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler

DESCRIPTION = (
    "Run a raw map (.GeoPIXE, .h5 or .zarr) through the steps a pipeline configuration names "
    "(fit, normalise, detection_limits, quantify, classify, colour, images, export), writing "
    "each group of the uniform layout into OUT as it is done. Steps already up to date (same "
    "parameters, same inputs) are skipped. --example-config prints a commented configuration."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``process`` parser."""
    p = subparsers.add_parser(
        "process",
        parents=[parents.cluster],
        help="the whole pipeline from a TOML configuration, resumable",
        description=DESCRIPTION,
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="the raw map")
    p.add_argument("--config", metavar="TOML", help="the pipeline configuration")
    p.add_argument("-o", "--output", metavar="OUT", help=".h5 or .zarr for the groups")
    p.add_argument("--images", metavar="DIR", help="folder for the images and exports")
    p.add_argument("--force", action="store_true", help="redo every step, even those up to date")
    p.add_argument(
        "--example-config", action="store_true", help="print a commented configuration and exit"
    )
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    return p


def run(args: argparse.Namespace) -> int:
    """Print the example, or check the configuration, then run the pipeline and summarise."""
    from xrfdask.pipeline import EXAMPLE_CONFIG, load_config, process

    if args.example_config:
        sys.stdout.write(EXAMPLE_CONFIG)
        return 0
    if not args.file or not args.config:
        raise UsageError("give FILE and --config TOML (or --example-config)")
    config = load_config(args.config)  # checked before a cluster starts
    with scheduler(args):
        report = process(
            args.file,
            config,
            output=args.output,
            images=args.images,
            force=args.force,
            chunks=chunks(args),
            verbose=True,
        )
    print(report)
    return 0
