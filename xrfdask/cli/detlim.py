"""``xrfdask detlim FILE --cnc CNC``: detection limits and yields of a reference map's norm/."""

from __future__ import annotations

import argparse
import os

from xrfdask.cli.common import Parents, UsageError
from xrfdask.errors import FormatError

DESCRIPTION = (
    "Detection limits (1 s and 1000 s) and elemental yields of a reference-material map: reads "
    "FILE's norm/ group (and raw/I0, raw/acquisition_time when norm/ does not record the totals) "
    "and the certified composition CNC, and writes detlim/<cnc> and elyield/<cnc> into FILE "
    "(or OUT). Several --cnc are kept side by side."
)


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``detlim`` parser."""
    p = subparsers.add_parser(
        "detlim",
        help="detection limits and elemental yields of a reference map (detlim/, elyield/)",
        description=DESCRIPTION,
    )
    p.add_argument("file", metavar="FILE", help="an .h5 or .zarr holding norm/ (and raw/)")
    p.add_argument(
        "--cnc",
        required=True,
        nargs="+",
        metavar="CNC",
        help="concentration file(s) of the reference material (xrf_proc's .cnc)",
    )
    p.add_argument(
        "--tilt",
        type=float,
        default=90.0,
        metavar="DEG",
        help="angle between beam and sample surface (default %(default)s)",
    )
    p.add_argument(
        "--compat",
        choices=("xrf_proc",),
        help="xrf_proc's detection-limit errors (full background error where sqrt(B) has half)",
    )
    p.add_argument(
        "-o", "--output", metavar="OUT", help="write to OUT.h5 or OUT.zarr instead of FILE"
    )
    p.add_argument(
        "--png",
        nargs="?",
        const=True,
        metavar="FILE.png",
        help="also plot the limits against Z (default: <OUT stem>_ch<k>_DL.png per detector)",
    )
    p.add_argument(
        "--maps",
        metavar="FILE.png",
        help="also draw FILE's per-pixel 1 s detection-limit maps for the first CNC (from the "
        "raw/ spectra and the fit/ configuration; one PNG per detector)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing detlim/elyield")
    return p


def _png_paths(png, out: str, labels: list) -> list[str]:
    """One PNG per detector, named as xrf_proc names them (``<stem>_ch<k>_DL.png``)."""
    if png is True:
        stem = os.path.splitext(out.rstrip("/"))[0]
        return [f"{stem}_ch{k}_DL.png" for k in range(len(labels))]
    if len(labels) == 1:
        return [png]
    stem, ext = os.path.splitext(png)
    return [f"{stem}_ch{k}{ext or '.png'}" for k in range(len(labels))]


def run(args: argparse.Namespace) -> int:
    """Open FILE's norm/ (and raw/), compute the limits per CNC, write them, plot them."""
    from xrfdask.detlim import detection_limits
    from xrfdask.io.convert import file_format, open_map, write_map

    out = args.output or args.file
    for path in (args.file, out):
        if file_format(path) == "geopixe":
            raise UsageError(f"{path}: detection limits read and write an .h5 or .zarr file")
    if not os.path.exists(args.file):
        raise FileNotFoundError(f"{args.file}: no such file")
    nrm = open_map(args.file, group="norm")
    raw = None
    if "I0_total" not in nrm or "time_total" not in nrm or nrm.attrs.get("TmNorm") == "True":
        try:
            raw = open_map(args.file, group="raw")
        except FormatError as exc:
            if "I0_total" in nrm and "time_total" in nrm:
                raw = None  # only I0_total_raw of a TmNorm result is then unknown
            else:
                raise FormatError(
                    f"{args.file}: norm/ does not record the I0 and time totals and raw/ cannot "
                    f"give them ({exc})"
                ) from None
    results = [
        detection_limits(nrm, cnc, args.tilt, raw=raw, compat=args.compat) for cnc in args.cnc
    ]
    for dl in results:
        write_map(dl, out, overwrite=args.overwrite)
        cnc = dl.attrs["cnc"]
        print(
            f"{cnc}: detection limits and yields of {dl.sizes['line']} lines "
            f"({', '.join(map(str, dl.line.values))}) -> {out} (detlim/{cnc}, elyield/{cnc})"
        )
    if args.maps:
        _draw_maps(args, nrm, raw, results[0])
    if args.png:
        from xrfdask.plot import detection_limits as plot

        labels = list(results[0]["detector"].values)
        for label, png in zip(labels, _png_paths(args.png, out, labels), strict=True):
            plot(results, png, detector=label)
            print(f"detection limits plot -> {png}")
    return 0


def _draw_maps(args: argparse.Namespace, nrm, raw, dl) -> None:
    """Per-pixel detection limits of FILE itself (the fit's configuration from its fit/)."""
    from xrfdask.detlim import detection_limit_maps
    from xrfdask.io.convert import open_map
    from xrfdask.plot import element_maps
    from xrfdask.runtime import progress

    fit = open_map(args.file, group="fit")
    config = fit.attrs.get("config")
    if not config and "config" in fit:
        config = str(fit["config"].values.reshape(-1)[0])  # eager-ok: the cfg text or path
    raw = raw if raw is not None else open_map(args.file, group="raw")
    maps = detection_limit_maps(raw, nrm, dl, config=config)
    labels = list(dl["detector"].values)
    with progress(label="detection-limit maps "):
        for label, png in zip(labels, _png_paths(args.maps, args.maps, labels), strict=True):
            element_maps(maps, png, variable="detection_limit_1s", detector=label)
            print(f"1 s detection-limit maps ({dl.attrs['cnc']}) -> {png}")
