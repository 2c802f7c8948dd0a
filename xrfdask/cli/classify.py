"""``xrfdask classify FILE``: :func:`xrfdask.classify` of a raw map or an element-map group."""

from __future__ import annotations

import argparse
import os
import time

from xrfdask.cli.common import Parents, UsageError, chunks, detector_label, scheduler

DESCRIPTION = (
    "Classify the pixels of FILE (.GeoPIXE, .h5 or .zarr) by their detector-summed spectra "
    "(default) or, with --group fit|norm|quant, by their element maps. Writes xrf_proc's "
    "kmeans/ and PCA/ groups into OUT (.h5 or .zarr; default FILE, not for .GeoPIXE) and, with "
    "--readout DIR, ReadoutXFM's embeddings/ files."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``classify`` parser."""
    from xrfdask.classify import METHODS

    p = subparsers.add_parser(
        "classify",
        parents=[parents.cluster],
        help="PCA / k-means / UMAP / HDBSCAN classes of a map: kmeans/ and PCA/ groups",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help="the map")
    p.add_argument("--group", choices=("fit", "norm", "quant"), help="classify element maps")
    p.add_argument("--method", choices=METHODS, default="pca-kmeans", help="(default %(default)s)")
    p.add_argument("-n", "--n-clusters", type=int, default=6, help="classes (default 6)")
    p.add_argument("--components", type=int, help="dimensions clustered (see xd.classify)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bin", type=int, default=8, help="channels per feature (default 8)")
    p.add_argument("--transform", choices=("sqrt", "log"), help="transform of the spectra")
    p.add_argument("--detector", help="element maps: the detector (default sum or the first)")
    p.add_argument("-o", "--output", metavar="OUT", help=".h5 or .zarr to write (default FILE)")
    p.add_argument("--readout", metavar="DIR", help="also write ReadoutXFM's files into DIR")
    p.add_argument("--plots", metavar="DIR", help="also draw the class plots into DIR")
    p.add_argument("--overwrite", action="store_true", help="replace existing groups")
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    return p


def run(args: argparse.Namespace) -> int:
    """Open, classify, write."""
    from xrfdask.classify import classify
    from xrfdask.io.convert import file_format, open_map, write_map

    out = args.output or args.file
    if args.output is None and file_format(args.file) == "geopixe":
        raise UsageError(f"{args.file}: a .GeoPIXE file holds no results: pass -o OUT.h5")
    with scheduler(args):
        ds = open_map(args.file, group=args.group or "raw", chunks=chunks(args))
        t0 = time.perf_counter()
        detector = detector_label(ds, args.detector)
        cls = classify(ds, args.method, args.n_clusters, n_components=args.components,
                       seed=args.seed, bin=args.bin, transform=args.transform,
                       detector=detector).persist()  # fmt: skip
        groups = "kmeans/ and PCA/" if "scores" in cls else "kmeans/"
        write_map(cls, out, overwrite=args.overwrite)
        if args.readout:
            from xrfdask.io.readout_classes import write_readoutxfm_classes

            write_readoutxfm_classes(cls, os.path.join(args.readout, "embeddings"))
        if args.plots:
            from xrfdask.plot import classes

            classes(cls, args.plots)
        seconds = time.perf_counter() - t0
    sizes = ", ".join(str(int(v)) for v in cls["class_size"].values)
    print(
        f"{args.method}: {int(cls['n_clusters'])} classes of {sizes} pixels in {seconds:.1f} s "
        f"-> {out} ({groups})"
    )
    return 0
