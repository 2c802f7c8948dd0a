"""``xrfdask quantify FILE --ref REF.h5``: :func:`xrfdask.quantify` of FILE's norm/ into quant/."""

from __future__ import annotations

import argparse
import time

from xrfdask.cli.common import Parents, UsageError, chunks, scheduler

DESCRIPTION = (
    "Quantify the normalised map of FILE (an .h5 or .zarr holding norm/, as 'xrfdask normalise' "
    "or xrf_proc writes it) with the elemental yields of one or more reference files (their "
    "elyield/ and norm/, as 'xrfdask detlim' or xrf_proc's calc_detlim writes them), and write "
    "quant/ into FILE (or OUT): concentrations in ug/cm2, or in ug/g (ppm) with --density and "
    "--thickness. --absorb corrects self-absorption from the K-alpha/K-beta ratio of the raw "
    "spectra (FILE's raw/)."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``quantify`` parser."""
    p = subparsers.add_parser(
        "quantify",
        parents=[parents.cluster],
        help="concentrations from norm/ and reference yields: the quant/ group",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help=".h5 or .zarr with norm/ (and raw/ for --absorb)")
    p.add_argument(
        "--ref", action="append", required=True, metavar="REF", help="reference file (repeatable)"
    )
    p.add_argument("--norm-line", metavar="LINE", help="normalise to this line (Rayl, Compt)")
    p.add_argument("--absorb", nargs="+", metavar="EL", help="absorber elements (K-alpha/K-beta)")
    p.add_argument("--matrix", metavar="CNC", help="matrix composition for --absorb (.cnc)")
    p.add_argument(
        "--calibration",
        type=float,
        nargs=2,
        metavar=("ZERO", "GAIN"),
        help="energy = ZERO + GAIN x channel (keV) for --absorb (default: the map's energy)",
    )
    p.add_argument(
        "--density", metavar="D", help="g/cm3, or with a unit ('2491 mg/cm3'): with --thickness"
    )
    p.add_argument("--thickness", metavar="T", help="cm, or with a unit ('960 um'): with --density")
    p.add_argument("--composition", metavar="CNC", help="cap the thickness at the escape depth")
    p.add_argument(
        "--mask",
        metavar="M",
        help="k-means cluster ('kmeans/CLR2', an id) or a 2-D dataset of FILE",
    )
    p.add_argument("--compat", choices=("xrf_proc",), help="the original's formulas")
    p.add_argument("-o", "--output", metavar="OUT", help="write quant/ here instead of FILE")
    p.add_argument("--overwrite", action="store_true", help="replace an existing quant group")
    p.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    return p


def _mask(value: str | None):
    return int(value) if value is not None and value.isdigit() else value


def _fit_calibration(path: str) -> dict | None:
    """The fit configurations of FILE's fit/ per detector (the calibration the fit used), when
    they are stored as .cfg text (xrfdask writes the text; xrf_proc a path, not used)."""
    from xrfdask.io.convert import open_map

    try:
        fit = open_map(path, group="fit")
    except (ValueError, KeyError, OSError):
        return None
    if "config" not in fit or "detector" not in fit["config"].dims:
        return None
    labels = fit["detector"].values.tolist()
    texts = {d: str(v) for d, v in zip(labels, fit["config"].values, strict=True)}
    if not all("[detector]" in t for t in texts.values()):  # eager-ok: dict
        return None
    return texts


def run(args: argparse.Namespace) -> int:
    """Open FILE's norm/ (and raw/), :func:`~xrfdask.quantify`, write quant/."""
    from xrfdask.io.convert import file_format, open_map, write_map
    from xrfdask.quantify import quantify
    from xrfdask.runtime import progress

    if file_format(args.file) == "geopixe":
        raise UsageError(f"{args.file}: fit and normalise it first into an .h5 or .zarr")
    if (args.density is None) != (args.thickness is None):
        raise UsageError("give --density and --thickness together")
    if bool(args.absorb) != bool(args.matrix):
        raise UsageError("give --absorb EL ... and --matrix CNC together")
    out = args.output or args.file
    with scheduler(args):
        nrm = open_map(args.file, group="norm", chunks=chunks(args))
        raw = open_map(args.file, chunks=chunks(args)) if args.absorb else None
        calibration = tuple(args.calibration) if args.calibration else None
        if args.absorb and calibration is None:
            calibration = _fit_calibration(args.file)
        t0 = time.perf_counter()
        with progress(label="quantify "):
            q = quantify(
                nrm,
                args.ref,
                norm_line=args.norm_line,
                absorb=(args.absorb, args.matrix) if args.absorb else None,
                mask=_mask(args.mask),
                density=args.density,
                thickness=args.thickness,
                composition=args.composition,
                compat=args.compat,
                raw=raw,
                file=args.file,
                calibration=calibration,
            )
            write_map(q, out, group="quant", overwrite=args.overwrite)
        seconds = time.perf_counter() - t0
    lines = ", ".join(map(str, q.line.values))
    print(
        f"quantified {lines} ({q.attrs['unit']}) with {len(args.ref)} reference(s) in "
        f"{seconds:.1f} s -> {out} (quant/)"
    )
    return 0
