"""``xrfdask fit FILE -o OUT``: :func:`xrfdask.fit` of a map, peak areas into OUT's fit/ group."""

from __future__ import annotations

import argparse
import time

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler
from xrfdask.fit.engines import METHODS

DESCRIPTION = (
    "Fit every spectrum of FILE (.GeoPIXE, uniform-layout .h5 or .zarr) with a PyMca "
    "configuration (--config) or one built from an element list (--elements), and write the "
    "peak areas to OUT's fit/ group (added beside raw/ when OUT exists)."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``fit`` parser."""
    p = subparsers.add_parser(
        "fit",
        parents=[parents.cluster],
        help="fit the spectra of a map: peak-area maps into the fit/ group of an .h5 or .zarr",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help="the map")
    p.add_argument("--config", metavar="CFG", help="PyMca .cfg file")
    p.add_argument(
        "--elements",
        nargs="+",
        metavar="EL",
        help="elements to fit (builds a configuration; with --config, replaces its peaks)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="linear",
        help="default %(default)s",
    )
    p.add_argument(
        "--detector",
        default=None,
        help="a detector number or label, or 'sum' (default: every detector)",
    )
    p.add_argument(
        "--excitation",
        type=float,
        metavar="KEV",
        help="excitation energy (needed for h5 maps without a tube)",
    )
    p.add_argument(
        "--calibration",
        type=float,
        nargs=2,
        metavar=("ZERO", "GAIN"),
        help="energy = ZERO + GAIN x channel, keV (maps without an energy coordinate)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.h5 or OUT.zarr")
    p.add_argument("--png", metavar="FILE.png", help="also draw the element maps")
    p.add_argument("--overwrite", action="store_true", help="replace an existing fit group")
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    return p


def detector_arg(value: str | None) -> int | str | None:
    """``--detector``: a number becomes an int (a GeoPIXE detector), a label stays a string."""
    if value is not None and value != "sum" and value.lstrip("-").isdigit():
        return int(value)
    return value


def run(args: argparse.Namespace) -> int:
    """Open FILE, build or load the configuration, :func:`~xrfdask.fit` it, write OUT's fit/."""
    from xrfdask.io.convert import file_format, open_map, write_map

    if not args.config and not args.elements:
        raise UsageError("give --config CFG or --elements EL ... (or both)")
    if file_format(args.output) == "geopixe":
        raise UsageError(f"{args.output}: fit results go to an .h5 or .zarr file")
    detector = detector_arg(args.detector)
    from xrfdask.fit import fit, load_config, make_fit_config
    from xrfdask.runtime import progress

    with scheduler(args):
        ds = open_map(args.file, chunks=chunks(args))
        if args.elements:
            # --config with --elements: the file's options, the listed elements' peaks.
            overrides = {}
            if args.config:
                base = load_config(args.config)
                overrides = {k: v for k, v in base.items() if k != "peaks"}
            calibration = None
            if args.calibration:
                calibration = {"zero": args.calibration[0], "gain": args.calibration[1]}
            config = make_fit_config(
                ds,
                args.elements,
                excitation_energy=args.excitation,
                detector=calibration,
                **overrides,
            )
        else:
            config = args.config
        t0 = time.perf_counter()
        with progress(label="fit "):
            result = fit(ds, config, method=args.method, detector=detector)
            write_map(result, args.output, group="fit", overwrite=args.overwrite)
        seconds = time.perf_counter() - t0
        npx = ds.sizes["y"] * ds.sizes["x"] * result.sizes["detector"]
        lines = ", ".join(map(str, result.line.values))
        print(f"fitted {npx:,} spectra ({lines}) in {seconds:.1f} s -> {args.output} (fit/)")
        if args.png:
            from xrfdask.plot import element_maps

            stored = open_map(args.output, group="fit")
            print(f"element maps -> {element_maps(stored, args.png)}")
    return 0
