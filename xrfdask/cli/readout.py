"""``xrfdask readout -f FILE ...``: ReadoutXFM's flags and outputs (see io/geopixe/readout.py)."""

from __future__ import annotations

import argparse
import time
import warnings

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler
from xrfdask.errors import XrfdaskWarning

DESCRIPTION = (
    "Read a .GeoPIXE map like ReadoutXFM. Outputs go to <dir of FILE>/out_<stem>/ "
    "(or -o DIR, with /out appended unless DIR ends in out or out_<stem>): data/pxstats_*.npy "
    "always, data/dataset.npy and data/dataset.zarr with -e, <stem>_mod.GeoPIXE with -w; "
    "-a: dead-time statistics (printed) and plots in plots/, the colour map in "
    "embeddings/colourmap_*.txt and plots/colours.png; -c: classes in embeddings/ and plots/; "
    "-dt [V]: the written file's dead times predicted (or V %), implies -w."
)
PREDICT = -1.0  # -dt without a value: predict from the spectra


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
        "-a",
        "--analyse",
        action="store_true",
        help="dead-time statistics and plots, and the colour map",
    )
    p.add_argument(
        "-c",
        "--classify",
        nargs="?",
        const="hdbscan",
        metavar="METHOD",
        help="classify the spectra (default METHOD hdbscan, ReadoutXFM's; or kmeans, "
        "pca-kmeans, umap-kmeans)",
    )
    p.add_argument(
        "-n",
        "--n-clusters",
        type=int,
        default=6,
        help="classes of the k-means methods of -c (default 6)",
    )
    p.add_argument(
        "-dt",
        "--deadtime",
        nargs="?",
        const=PREDICT,
        type=float,
        metavar="V",
        help="rewrite the dead times: predicted from each spectrum's count rate, or the "
        "constant V (0-100 %%); implies -w",
    )
    p.add_argument(
        "--dt-model",
        choices=("readoutxfm", "fit", "linear"),
        default="readoutxfm",
        help="dead-time prediction of -dt (default %(default)s: ReadoutXFM's cubic)",
    )
    p.add_argument(
        "--colours",
        choices=("hsv", "hsv_white"),
        default="hsv",
        help="colour scheme of -a (default %(default)s: ReadoutXFM's; hsv_white: xfmkit's)",
    )
    p.add_argument(
        "--compat",
        choices=("readoutxfm",),
        help="-a writes the original's colour numbers (green and blue swapped, the brightest "
        "value wrapped to 0)",
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
    """Reject flag combinations ReadoutXFM would misread, before anything is read; apply its
    implied flags (``-dt`` writes, so implies ``-w``; ``-c`` and ``-dt`` prediction need the
    spectra, so switch ``-i`` off, with a warning where ReadoutXFM is silent)."""
    from xrfdask.classify import METHODS

    dt = args.deadtime
    if dt is not None and dt != PREDICT and not 0.0 <= dt <= 100.0:
        raise UsageError(f"-dt {dt:g}: a dead time is a percentage, 0 <= V <= 100")
    if args.classify is not None and args.classify not in METHODS:
        raise UsageError(f"-c {args.classify}: expected one of {', '.join(METHODS)}")
    if args.n_clusters < 1:
        raise UsageError(f"-n {args.n_clusters}: expected at least 1 class")
    if args.compat and not args.analyse:
        raise UsageError("--compat sets the colour numbers of -a: add -a")
    if args.compat and args.colours != "hsv":
        raise UsageError("--compat readoutxfm is ReadoutXFM's hsv scheme, not --colours hsv_white")
    if dt is not None:
        args.write = True
    if (args.xcoords or args.ycoords) and not args.write:
        raise UsageError("-x/-y crop the written file: add -w")
    if args.index_only and args.export:
        raise UsageError("-i reads the index only and cannot export spectra with -e")
    if args.index_only and (args.classify or dt == PREDICT):
        flag = "-c" if args.classify else "-dt"
        warnings.warn(f"{flag} needs the spectra: -i switched off", XrfdaskWarning, stacklevel=2)
        args.index_only = False
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
    """Pixel statistics, then (on the cluster asked for) record sums, dead times, analysis,
    classes, the export and the rewrite."""
    check_args(args)
    from xrfdask.io.geopixe.index import build_index
    from xrfdask.io.geopixe.readout import readout_layout, write_pixel_stats

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
        counts = None
        if not args.index_only:
            from xrfdask.deadtime import pixel_counts
            from xrfdask.io.geopixe.readout import write_pixel_sums

            with progress(label="sum "):
                counts = pixel_counts(ds).compute()  # eager-ok: (y, x, detector), small
            total = write_pixel_sums(ds, layout, counts=counts)
            print(f"decoded spectra: {total:,} counts -> {layout.pixel_stats('sum')}")
        if args.deadtime is not None:
            ds = _rewrite_deadtimes(ds, args, layout)
        if args.analyse:
            _analyse(ds, counts, args, layout)
        if args.classify:
            _classify(ds, args, layout)
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


def _rewrite_deadtimes(ds, args: argparse.Namespace, layout):
    """``-dt [V]``: the map with the dead times to write, in memory, and pxstats_dtmod.npy."""
    from xrfdask.deadtime import fill_deadtime, predict_deadtime
    from xrfdask.io.geopixe.readout import write_pixel_deadtimes
    from xrfdask.runtime import progress

    if args.deadtime == PREDICT:
        ds = predict_deadtime(ds, args.dt_model)
        how = f"predicted ({args.dt_model})"
    else:
        ds = fill_deadtime(ds, args.deadtime)
        how = f"set to {args.deadtime:g} %"
    with progress(label="dead time "):
        ds["deadtime"] = ds["deadtime"].compute()  # eager-ok: (y, x, detector), written twice
    path = write_pixel_deadtimes(ds, layout)
    print(f"dead times {how} -> {path}")
    return ds


def _analyse(ds, counts, args: argparse.Namespace, layout) -> None:
    """``-a``: dead-time statistics on stdout and their plots; the colour map (spectra read)."""
    from xrfdask.deadtime import deadtime_stats, missing_deadtime
    from xrfdask.plot import deadtime
    from xrfdask.runtime import progress

    measured = ds.assign(deadtime=ds["deadtime_measured"]) if "deadtime_measured" in ds else ds
    stats = deadtime_stats(measured, counts=False)
    means = ", ".join(
        f"{float(m):.2f} % (detector {d})"
        for d, m in zip(stats["detector"].values, stats["mean"].values, strict=True)
    )
    print(f"mean dead time: {means}, {float(stats['overall_mean']):.2f} % overall")
    for d in missing_deadtime(measured):
        print(f"detector {d}: no dead time measured (every record holds 0.0)")
    plotted = ds if counts is not None else ds.drop_vars("spectra")
    plots = deadtime(plotted, layout.plots, counts=counts)
    print(f"dead-time plots: {len(plots)} -> {layout.plots}")
    if args.index_only:
        print("-i: no colour map (it needs the spectra)")
        return
    from xrfdask.colour import colour_map
    from xrfdask.io.geopixe.readout import write_colour_files

    colour = colour_map(ds, args.colours, compat=args.compat)
    with progress(label="colours "):
        write_colour_files(colour, layout)
    print(
        f"colour map ({args.colours}, scatter {colour.attrs['elastic_kev']:.2f} keV) -> "
        f"{layout.embeddings / 'colourmap_*.txt'} and {layout.plots / 'colours.png'}"
    )


def _classify(ds, args: argparse.Namespace, layout) -> None:
    """``-c``: classes of the detector-summed spectra, ReadoutXFM's files and plots."""
    from xrfdask.classify import classify
    from xrfdask.io.readout_classes import write_readoutxfm_classes
    from xrfdask.plot import classes
    from xrfdask.runtime import progress

    with progress(label="classes "):
        cls = classify(ds, args.classify, args.n_clusters).persist()
        write_readoutxfm_classes(cls, layout.embeddings)
    classes(cls, layout.plots)
    sizes = ", ".join(str(int(v)) for v in cls["class_size"].values)
    print(f"{args.classify}: {cls.sizes['class']} classes of {sizes} pixels -> {layout.embeddings}")
