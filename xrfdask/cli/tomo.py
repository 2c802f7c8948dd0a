"""``xrfdask tomo FILE``: :func:`xrfdask.tomo.reconstruct` of a tomography scan's element maps."""

from __future__ import annotations

import argparse
import time

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler

DESCRIPTION = (
    "Reconstruct the element maps of an XRF tomography scan in FILE (.h5 or .zarr; rows = "
    "projection angles of the rotation motor, columns = translation), one task per line, and "
    "write xrf_proc's tomo/channelXX/{rotation_center, ims, ims_stddev, names} and, when raw/ "
    "holds I0 and I1, tomo/I1/ into OUT (default FILE)."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``tomo`` parser."""
    from xrfdask.tomo import ALGORITHMS, FILTERS

    p = subparsers.add_parser(
        "tomo",
        parents=[parents.cluster],
        help="tomographic reconstruction of element maps: tomo/ group",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help="the scan (.h5 or .zarr)")
    p.add_argument("--group", default="norm", choices=("fit", "norm", "quant"),
                   help="element maps to reconstruct (default %(default)s)")  # fmt: skip
    p.add_argument("--rotation", default="mot1", choices=("mot1", "mot2"),
                   help="motor holding the angles, varying along rows (default mot1)")  # fmt: skip
    p.add_argument("--centre", type=float, help="centre of rotation, 0-based column")
    p.add_argument(
        "--signal", help='line the centre is found on, e.g. "Sr K" (default: most counts)'
    )
    p.add_argument("--algorithm", choices=ALGORITHMS, default="fbp", help="(default fbp)")
    p.add_argument("--filter", choices=sorted(FILTERS), default="shepp", help="(default shepp)")
    p.add_argument("--iterations", type=int, default=10, help="SART passes (default 10)")
    p.add_argument("--lines", nargs="+", metavar="LINE", help="lines to reconstruct (default all)")
    p.add_argument("--limit-rotation-range", type=int, nargs=2, metavar=("FIRST", "STOP"),
                   help="rows (angles) kept: FIRST..STOP-1")  # fmt: skip
    p.add_argument("--translation-shift", type=float, metavar="PIXELS",
                   help="drift across the scan, in translation pixels")  # fmt: skip
    p.add_argument(
        "--interp-tr", action="store_true", help="regrid onto a uniform translation grid"
    )
    p.add_argument("--no-errors", action="store_true", help="skip the uncertainty maps")
    p.add_argument("--no-transmission", action="store_true", help="skip tomo/I1 (I1/I0)")
    p.add_argument("-o", "--output", metavar="OUT", help=".h5 or .zarr to write (default FILE)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing tomo/ group")
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    return p


def run(args: argparse.Namespace) -> int:
    """Open the element maps and the raw map's motors, reconstruct, write."""
    from xrfdask.io.convert import file_format, open_map, write_map
    from xrfdask.tomo import reconstruct

    if file_format(args.file) == "geopixe":
        raise UsageError(f"{args.file}: a .GeoPIXE map is not a tomography scan: use .h5/.zarr")
    out = args.output or args.file
    with scheduler(args):
        maps = open_map(args.file, group=args.group, chunks=chunks(args))
        raw = open_map(args.file, group="raw", chunks=chunks(args))
        t0 = time.perf_counter()
        rec = reconstruct(
            maps,
            args.rotation,
            args.centre,
            args.algorithm,
            None if args.filter == "none" else args.filter,
            args.lines,
            not args.no_errors,
            motors=raw,
            signal=args.signal,
            limit_rotation_range=args.limit_rotation_range,
            translation_shift=args.translation_shift,
            interp_tr=args.interp_tr,
            iterations=args.iterations,
            transmission=False if args.no_transmission else None,
        )
        write_map(rec, out, group="tomo", overwrite=args.overwrite)
        seconds = time.perf_counter() - t0
    centre = float(rec["rotation_center"].values.reshape(-1)[0])
    how = "given"
    if "centre_figure_of_merit" in rec.attrs:
        how = (
            f"found on {rec.attrs['centre_signal']}, figure of merit "
            f"{rec.attrs['centre_figure_of_merit']:.2f}"
        )
    extra = " and tomo/I1" if "transmission" in rec else ""
    print(
        f"tomo: {rec.sizes['line']} lines x {rec.sizes.get('detector', 1)} detector(s), "
        f"{rec.sizes['ty']} x {rec.sizes['tx']} px, centre {centre:.2f} ({how}), "
        f"{args.algorithm} in {seconds:.1f} s -> {out} (tomo/{extra})"
    )
    return 0
