"""``xrfdask images FILE``: xrf_proc's overview images of a result group, as PNG files.

Calls :func:`xrfdask.plot.overview` (and, on request, :func:`~xrfdask.plot.correlation`,
:func:`~xrfdask.plot.rgb`, :func:`~xrfdask.plot.spectrum`); matplotlib draws off-screen (Agg).
"""

from __future__ import annotations

import argparse
import os

from xrfdask.cli.common import Parents, UsageError, scheduler

DESCRIPTION = (
    "Draw xrf_proc's collated overview of FILE's element maps (one panel per line, colour bars, "
    "scale bar; one PNG per detector, named <stem>[_log][_sqrt]_ch<i>_<group>_overview.png) and "
    "optionally their correlation matrix, an RGB composite of three lines and the sum spectrum "
    "with its fit. FILE is a uniform-layout .h5 or .zarr (a .GeoPIXE map: --spectrum only)."
)
GROUPS = ("fit", "norm", "quant", "rel_dif")


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``images`` parser."""
    p = subparsers.add_parser(
        "images",
        parents=[parents.cluster],
        help="overview images of element maps (xrf_proc's hdf_overview_images), as PNG",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help="the .h5 or .zarr file")
    p.add_argument("--group", choices=GROUPS, help="the result group (default norm, else fit)")
    p.add_argument("--detector", help="a detector number or label, or 'sum' (default: each)")
    p.add_argument("--lines", nargs="+", metavar="LINE", help="lines to draw ('Fe K' ...)")
    p.add_argument("--ncols", type=int, default=4, help="panels per row (default 4)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--log", action="store_true", help="log10 of the maps")
    scale.add_argument("--sqrt", action="store_true", help="square root of the maps")
    p.add_argument("--clim", type=float, nargs=2, metavar=("LO", "HI"),
                   help="colour limits as fractions of each image's range, e.g. 0 0.8")  # fmt: skip
    p.add_argument("--pixel-size", type=float, metavar="UM",
                   help="pixel size in µm (default from the map's coordinates)")  # fmt: skip
    p.add_argument("--scale-bar", type=float, metavar="UM", help="scale-bar length in µm")
    p.add_argument("--rotate", type=float, default=0, metavar="DEG",
                   help="rotate counter-clockwise (multiples of 90)")  # fmt: skip
    p.add_argument("--flip", action="store_true", help="flip up/down after rotating")
    p.add_argument("--cmap", default="viridis", metavar="NAME", help="colour map (%(default)s)")
    p.add_argument("--dpi", type=int, default=150, help="resolution (default %(default)s)")
    p.add_argument("--correlation", action="store_true", help="also the correlation matrix")
    p.add_argument("--rgb", nargs=3, metavar=("L1", "L2", "L3"), help="also an RGB composite")
    p.add_argument("--spectrum", action="store_true",
                   help="also the sum spectrum with the fit (raw/ and fit/ of FILE)")  # fmt: skip
    p.add_argument("-o", "--output", metavar="DIR", help="folder of the PNGs (default FILE's)")
    return p


def _names(args: argparse.Namespace) -> tuple[str, str]:
    """(output folder, file stem)."""
    folder = args.output or os.path.dirname(os.path.abspath(args.file))
    stem = os.path.splitext(os.path.basename(os.path.normpath(args.file)))[0]
    return folder, stem


def _open_group(path: str, group: str | None, chunks_arg):
    """The result group asked for, or the first of norm and fit that FILE holds."""
    from xrfdask.errors import FormatError
    from xrfdask.io.convert import open_map

    if group is not None:
        return group, open_map(path, group=group, chunks=chunks_arg)
    for candidate in ("norm", "fit"):
        try:
            return candidate, open_map(path, group=candidate, chunks=chunks_arg)
        except FormatError:
            continue
    raise UsageError(f"{path}: no norm/ or fit/ group: pass --group, or fit the map first")


def run(args: argparse.Namespace) -> int:
    """Open FILE's group, draw the overview and what else is asked, print the files."""
    from xrfdask.cli.fit import detector_arg
    from xrfdask.errors import FormatError
    from xrfdask.io.convert import file_format, open_map
    from xrfdask.plot import correlation, overview, rgb, spectrum

    folder, stem = _names(args)
    geopixe = file_format(args.file) == "geopixe"
    if geopixe and not args.spectrum:
        raise UsageError(
            f"{args.file}: a .GeoPIXE file holds no element maps: fit it first (xrfdask fit) "
            "or pass --spectrum"
        )
    if geopixe and (args.group or args.correlation or args.rgb):
        raise UsageError(f"{args.file}: a .GeoPIXE file has only --spectrum to draw")
    detector = detector_arg(args.detector)
    os.makedirs(folder, exist_ok=True)
    written: list[str] = []
    with scheduler(args):
        result = group = None
        if not geopixe:
            group, result = _open_group(args.file, args.group, "auto")
            written += overview(
                result, os.path.join(folder, stem), detector=detector, lines=args.lines,
                ncols=args.ncols, pixel_size=args.pixel_size, scale_bar=args.scale_bar,
                log=args.log, sqrt=args.sqrt, clim=args.clim, rotate=args.rotate, flip=args.flip,
                cmap=args.cmap, dpi=args.dpi,
            )  # fmt: skip
        tag = "sum" if detector == "sum" else f"ch{detector}" if isinstance(detector, int) else (
            "ch0" if detector is None else str(detector))  # fmt: skip
        if args.correlation:
            path = os.path.join(folder, f"{stem}_{tag}_{group}_correlation.png")
            correlation(result, path, lines=args.lines, detector=detector, dpi=args.dpi)
            written.append(path)
        if args.rgb:
            names = "_".join(n.replace(" ", "-") for n in args.rgb)
            path = os.path.join(folder, f"{stem}_{tag}_{group}_rgb_{names}.png")
            rgb(result, args.rgb, path, detector=detector, clim=args.clim, dpi=args.dpi)
            written.append(path)
        if args.spectrum:
            raw = open_map(args.file, chunks="auto")
            fit = result if group == "fit" else None
            if not geopixe and fit is None:
                try:
                    fit = open_map(args.file, group="fit", chunks="auto")
                except FormatError:  # no fit/: the spectrum alone
                    fit = None
            path = os.path.join(folder, f"{stem}_{tag}_sumspectrum.png")
            spectrum(raw, path, fit=fit, detector=detector, dpi=args.dpi)
            written.append(path)
    for path in written:
        print(path)
    return 0
