"""``xrfdask normalise FILE``: :func:`xrfdask.normalise` of FILE's fit/, written as its norm/."""

from __future__ import annotations

import argparse
import time

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler

DESCRIPTION = (
    "Normalise the fitted peak areas of FILE (an .h5 or .zarr holding raw/ and fit/, as "
    "'xrfdask fit' or xrf_proc writes them) to the incident flux (raw/I0; for a lab map the tube "
    "charge), and optionally to the acquisition time, as xrf_proc's norm_xrf_batch does, and "
    "write norm/ into FILE (or OUT). Pixels without beam or counts are masked, never left "
    "un-normalised. --regrid puts snake or time-triggered scans on their regular grid."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``normalise`` parser."""
    p = subparsers.add_parser(
        "normalise",
        parents=[parents.cluster],
        help="normalise fit/ to I0 (and time): the norm/ group of an .h5 or .zarr",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help=".h5 or .zarr with raw/ and fit/")
    p.add_argument("--I0norm", type=float, metavar="V", help="I0 value to normalise to")
    p.add_argument("--tmnorm", action="store_true", help="also divide by the acquisition time")
    p.add_argument("--regrid", choices=("snake", "time"), help="regrid the scan (see xd.regrid)")
    p.add_argument(
        "--errors",
        choices=("auto", "fit", "poisson", "xrf_proc"),
        default="auto",
        help="per-pixel errors: the fit's, counting statistics, or xrf_proc's sqrt(area) "
        "(default %(default)s)",
    )
    p.add_argument("-o", "--output", metavar="OUT", help="write norm/ here instead of FILE")
    p.add_argument("--overwrite", action="store_true", help="replace an existing norm group")
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    return p


def run(args: argparse.Namespace) -> int:
    """Open FILE's raw/ and fit/, :func:`~xrfdask.normalise`, write norm/."""
    from xrfdask.io.convert import file_format, open_map, write_map
    from xrfdask.normalise import normalise
    from xrfdask.runtime import progress

    if file_format(args.file) == "geopixe":
        raise UsageError(f"{args.file}: fit it first ('xrfdask fit {args.file} -o OUT.h5')")
    out = args.output or args.file
    with scheduler(args):
        raw = open_map(args.file, chunks=chunks(args))
        fit = open_map(args.file, group="fit", chunks=chunks(args))
        t0 = time.perf_counter()
        with progress(label="normalise "):
            nrm = normalise(
                raw, fit, I0norm=args.I0norm, tmnorm=args.tmnorm, errors=args.errors,
                regrid=args.regrid,
            )  # fmt: skip
            write_map(nrm, out, group="norm", overwrite=args.overwrite)
        seconds = time.perf_counter() - t0
    per = "I0 x s" if args.tmnorm else "I0"
    print(
        f"normalised {nrm.sizes['line']} lines x {nrm.sizes['detector']} detector(s) to "
        f"{nrm.attrs['I0']:g} {per} ({nrm.attrs['I0_source']}) in {seconds:.1f} s -> {out} (norm/)"
    )
    return 0
