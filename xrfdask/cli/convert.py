"""``xrfdask convert``: between .GeoPIXE, .h5 and .zarr; ID15 and P06 scans to .h5/.zarr."""

from __future__ import annotations

import argparse
import time

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler

DESCRIPTION = (
    "Convert IN to OUT, formats from the extensions (.GeoPIXE, .h5/.hdf5, .zarr). "
    "With --id15 or --p06 the input is a beamline scan and OUT defaults to xrf_proc's name."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``convert`` parser."""
    p = subparsers.add_parser(
        "convert",
        parents=[parents.cluster],
        help="convert between .GeoPIXE, uniform-layout .h5 and .zarr; beamline files to .h5/.zarr",
        description=DESCRIPTION,
    )
    p.add_argument(
        "paths", nargs="*", metavar="IN OUT", help="input and output (only OUT with --id15/--p06)"
    )
    p.add_argument(
        "--group", default=None, help="layout group to copy between .h5/.zarr (default raw)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (or group)")
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    beam = p.add_argument_group("beamline input")
    beam.add_argument(
        "--id15",
        metavar="FILE",
        action="append",
        help="ESRF ID15 BLISS file (repeat with one --scan each to stitch across files)",
    )
    beam.add_argument(
        "--scan", action="append", metavar="N.1", help="ID15 scan entry (repeat to stitch)"
    )
    beam.add_argument("--dim", type=int, nargs=2, metavar=("ROWS", "COLS"), help="ID15 scan shape")
    beam.add_argument("--mot1", default="hry", help="ID15 first motor (default %(default)s)")
    beam.add_argument("--mot2", default="hrz", help="ID15 second motor (default %(default)s)")
    beam.add_argument(
        "--p06",
        metavar="SCANDIR",
        action="append",
        help="PETRA III P06 scan path without extension (repeat to merge)",
    )
    beam.add_argument("--no-sort", action="store_true", help="keep the recorded point order")
    return p


def check_args(args: argparse.Namespace) -> None:
    """Reject path and beamline options that do not go together."""
    beamline = args.id15 or args.p06
    if args.id15 and args.p06:
        raise UsageError("--id15 and --p06 are different beamlines: give one")
    if beamline:
        if len(args.paths) > 1:
            raise UsageError(f"with --id15/--p06 give only OUT, not {len(args.paths)} paths")
        if args.group not in (None, "raw"):
            raise UsageError("beamline files convert to the raw group: drop --group")
    elif len(args.paths) != 2:
        raise UsageError("give IN and OUT (or --id15/--p06 with OUT)")
    if args.id15 and (not args.scan or not args.dim):
        raise UsageError("--id15 needs --scan N.1 and --dim ROWS COLS")


def run(args: argparse.Namespace) -> int:
    """:func:`~xrfdask.io.convert.convert` of IN, or of the beamline scan, to OUT."""
    check_args(args)
    from xrfdask.io.convert import convert
    from xrfdask.runtime import progress

    with scheduler(args):
        if args.id15:
            from xrfdask.io.beamlines.id15 import convert_id15, id15_output_path

            files = args.id15 if len(args.id15) > 1 else args.id15[0]
            scans = args.scan if len(args.scan) > 1 else args.scan[0]
            source = convert_id15(
                files,
                scans,
                tuple(args.dim),
                mot1_name=args.mot1,
                mot2_name=args.mot2,
                sort=not args.no_sort,
            )
            target = args.paths[0] if args.paths else str(id15_output_path(files, scans))
        elif args.p06:
            from xrfdask.io.beamlines.p06 import convert_p06, p06_output_path

            scans = args.p06 if len(args.p06) > 1 else args.p06[0]
            source = convert_p06(scans, sort=not args.no_sort)
            target = args.paths[0] if args.paths else str(p06_output_path(scans))
        else:
            source, target = args.paths
        t0 = time.perf_counter()
        with progress(label="convert "):
            out = convert(
                source, target, group=args.group, overwrite=args.overwrite, chunks=chunks(args)
            )
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
    return 0
