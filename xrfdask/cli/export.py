"""``xrfdask export FILE``: element maps as TIFF, xrf_proc's CSV table, class spectra as CSV."""

from __future__ import annotations

import argparse

from xrfdask.cli.common import Parents, UsageError, detector_label, scheduler

DESCRIPTION = (
    "Export a result group of FILE (.h5 or .zarr): --tiff DIR writes one float32 TIFF per line "
    "(and detector), --csv OUT xrf_proc's XProcH5toCSV table (FileID;RowID;<lines by Z>;Compt;"
    "Rayl, one row per pixel), --class-csv OUT the class spectra of its kmeans/ group. The group "
    "defaults to the first of quant, norm, fit the file has."
)
GROUPS = ("fit", "norm", "quant", "rel_dif", "kmeans")


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``export`` parser."""
    p = subparsers.add_parser(
        "export",
        parents=[parents.cluster],
        help="element maps as TIFF, xrf_proc's CSV table, class spectra as CSV",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help="a .h5 or .zarr file with result groups")
    p.add_argument("--group", choices=GROUPS, help="(default: quant, norm or fit)")
    p.add_argument("--variable", help="another variable of the group (e.g. normalised_error)")
    p.add_argument("--detector", metavar="D", help="one detector: 0, 1, channel00, sum...")
    p.add_argument("--lines", nargs="+", metavar="LINE", help="TIFF: these lines only ('Fe K')")
    p.add_argument("--tiff", metavar="DIR", help="write <variable>_<detector>_<line>.tif files")
    p.add_argument("--csv", metavar="OUT", help="write xrf_proc's CSV table (one detector)")
    p.add_argument("--file-id", metavar="ID", help="the CSV's FileID column (default FILE)")
    p.add_argument("--class-csv", metavar="OUT", help="write the kmeans/ class spectra")
    p.add_argument("--sums", action="store_true", help="class CSV: sums, not means per pixel")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return p


def run(args: argparse.Namespace) -> int:
    """Open the group(s), write the exports asked for."""
    from xrfdask.io.export import class_spectra_to_csv, open_result, to_csv, to_tiff

    if not (args.tiff or args.csv or args.class_csv):
        raise UsageError("nothing to export: pass --tiff DIR, --csv OUT and/or --class-csv OUT")
    written = []
    with scheduler(args):
        if args.tiff or args.csv:
            result = open_result(args.file, group=args.group)
            detector = detector_label(result, args.detector)
            if args.tiff:
                written += to_tiff(result, args.tiff, variable=args.variable, detector=detector,
                                   lines=args.lines, overwrite=args.overwrite)  # fmt: skip
            if args.csv:
                written.append(to_csv(result, args.csv, variable=args.variable, detector=detector,
                                      file_id=args.file_id or args.file,
                                      overwrite=args.overwrite))  # fmt: skip
        if args.class_csv:
            cls = open_result(args.file, group="kmeans")
            # --detector picks element maps; the class table only with --group kmeans.
            class_detector = detector_label(cls, args.detector) if args.group == "kmeans" else None
            written.append(class_spectra_to_csv(cls, args.class_csv, mean=not args.sums,
                                                detector=class_detector,
                                                overwrite=args.overwrite))  # fmt: skip
    print(f"{args.file} -> {len(written)} file(s): " + ", ".join(written[:3])
          + (", ..." if len(written) > 3 else ""))  # fmt: skip
    return 0
