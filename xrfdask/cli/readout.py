"""``xrfdask readout -f FILE ...``: ReadoutXFM's flags and outputs (see io/geopixe/readout.py)."""

from __future__ import annotations

import argparse
import time

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler

DESCRIPTION = (
    "Read a .GeoPIXE map like ReadoutXFM. Outputs go to <dir of FILE>/out_<stem>/ "
    "(or -o DIR, with /out appended unless DIR ends in out or out_<stem>): data/pxstats_*.npy "
    "always, data/dataset.npy and data/dataset.zarr with -e, <stem>_mod.GeoPIXE with -w."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``readout`` parser (ReadoutXFM's short flags)."""
    p = subparsers.add_parser(
        "readout",
        parents=[parents.cluster],
        help="ReadoutXFM-compatible readout: pixel statistics, crop/rewrite, exports",
        description=DESCRIPTION,
    )
    p.add_argument("-f", "--infile", required=True, metavar="FILE", help="the .GeoPIXE map")
    p.add_argument("-o", "--outdir", metavar="DIR", help="output folder")
    p.add_argument(
        "-i", "--index-only", action="store_true", help="pixel statistics only, no spectra decoded"
    )
    p.add_argument(
        "-w", "--write", action="store_true", help="write <stem>_mod.GeoPIXE (cropped with -x/-y)"
    )
    p.add_argument(
        "-x",
        "--xcoords",
        type=int,
        nargs=2,
        metavar=("X0", "X1"),
        help="keep X0 <= x < X1 (with -w)",
    )
    p.add_argument(
        "-y",
        "--ycoords",
        type=int,
        nargs=2,
        metavar=("Y0", "Y1"),
        help="keep Y0 <= y < Y1 (with -w)",
    )
    p.add_argument(
        "-e",
        "--export",
        action="store_true",
        help="export the (y, x, detector, channel) cube to .npy and zarr",
    )
    p.add_argument(
        "-s",
        "--chunksize",
        type=float,
        metavar="MB",
        help="dense size of a band of rows in MiB (default: xrfdask.chunk-size: 16 on threads, "
        "64 on a cluster)",
    )
    p.add_argument(
        "-m",
        "--multiprocess",
        action="store_true",
        help="run on a local multi-process dask cluster",
    )
    return p


def check_args(args: argparse.Namespace) -> None:
    """Reject flag combinations ReadoutXFM would misread, before anything is read."""
    if (args.xcoords or args.ycoords) and not args.write:
        raise UsageError("-x/-y crop the written file: add -w")
    if args.index_only and args.export:
        raise UsageError("-i reads the index only and cannot export spectra with -e")
    for flag, bounds in (("-x", args.xcoords), ("-y", args.ycoords)):
        if bounds is not None:
            lo, hi = bounds
            if lo < 0 or hi <= lo:
                raise UsageError(f"{flag} {lo} {hi}: expected 0 <= {flag[1]}0 < {flag[1]}1")
    if args.chunksize is not None and args.chunksize <= 0:
        raise UsageError(f"-s {args.chunksize:g}: chunk size must be positive (MiB)")
    if args.multiprocess and args.scheduler not in (None, "local"):
        raise UsageError("-m starts a local cluster; it cannot be combined with --scheduler")


def run(args: argparse.Namespace) -> int:
    """Pixel statistics, then (on the cluster asked for) pixel sums, the export and the crop."""
    check_args(args)
    from xrfdask.io.geopixe.index import build_index
    from xrfdask.io.geopixe.readout import readout_layout, write_pixel_stats, write_pixel_sums

    index = build_index(args.infile)
    layout = readout_layout(args.infile, args.outdir)
    t0 = time.perf_counter()
    write_pixel_stats(index, layout)
    seconds = time.perf_counter() - t0
    print(f"indexed {index.n_records:,} records in {seconds:.2f} s -> {layout.data}")

    if args.write:
        x0, x1 = args.xcoords or (0, index.xres)
        y0, y1 = args.ycoords or (0, index.nrows)
        if x0 >= index.xres or y0 >= index.nrows:
            raise UsageError(
                f"crop starts at x={x0}, y={y0}, outside the map's {index.xres} x {index.nrows} "
                "pixels"
            )

    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.runtime import progress

    with scheduler(args, force_local=args.multiprocess):
        ds = open_geopixe(args.infile, chunks=chunks(args))
        if not args.index_only:
            with progress(label="sum "):
                counts = write_pixel_sums(ds, layout)
            print(f"decoded spectra: {counts:,} counts -> {layout.pixel_stats('sum')}")
        if args.export:
            from xrfdask.io.npy import to_npy
            from xrfdask.io.zarrstore import dataset_to_zarr

            with progress(label="npy "):
                to_npy(ds.spectra, layout.cube_npy, overwrite=True)
            with progress(label="zarr "):
                dataset_to_zarr(ds, layout.cube_zarr, overwrite=True)
            print(f"exported {layout.cube_npy} and {layout.cube_zarr}")
        if args.write:
            from xrfdask.io.geopixe.writer import to_geopixe

            crop = ds.isel(x=slice(x0, x1), y=slice(y0, y1))
            with progress(label="write "):
                to_geopixe(crop, layout.modified, overwrite=True)
            print(f"wrote {layout.modified} ({crop.sizes['x']} x {crop.sizes['y']} pixels)")
    return 0
