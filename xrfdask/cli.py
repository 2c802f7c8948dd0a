"""The ``xrfdask`` command. Every subcommand is a thin call into the Python API.

    xrfdask info FILE
    xrfdask readout -f FILE [-o DIR] [-i] [-w] [-x X0 X1] [-y Y0 Y1] [-e] [-s MB] [-m]
    xrfdask convert IN OUT [--group G] [--overwrite]
    xrfdask convert --id15 FILE --scan 1.1 --dim ROWS COLS [OUT]
    xrfdask convert --p06 SCANDIR [OUT]
    xrfdask fit FILE [--config CFG] [--elements Fe Cu ...] [--method linear|pymca|full]
                [--detector N|sum] -o OUT.h5|OUT.zarr
    xrfdask demo [--out DIR]

Errors from bad input print one line (``xrfdask: error: …``) and exit with status 1; bad
command lines exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from xrfdask.errors import XrfdaskError, XrfdaskWarning

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, pointing at --help."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A combination of options that cannot work together."""


def _cluster_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("dask cluster")
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing scheduler (tcp://host:port or a scheduler file), 'local' for a "
        "new local cluster, 'slurm'/'pbs' via dask-jobqueue; default: threads in this process",
    )
    group.add_argument("--workers", type=int, metavar="N", help="workers of a local cluster")
    group.add_argument("--threads-per-worker", type=int, metavar="N")
    group.add_argument("--memory-limit", metavar="SIZE", default="auto", help="per worker, e.g. 4GiB")
    group.add_argument(
        "--dashboard-address", metavar="HOST:PORT", default="127.0.0.1:8787",
        help="dashboard of a local cluster (default %(default)s)",
    )  # fmt: skip
    return parent


def build_parser() -> argparse.ArgumentParser:
    from xrfdask import __version__

    parser = _Parser(
        prog="xrfdask",
        description="XRF hyperspectral maps larger than memory: read, convert, fit, export.",
    )
    parser.add_argument("--version", action="version", version=f"xrfdask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    cluster = _cluster_options()

    info = sub.add_parser("info", help="summarise a .GeoPIXE file from its index (fast)")
    info.add_argument("file", help="a .GeoPIXE file")

    ro = sub.add_parser(
        "readout",
        parents=[cluster],
        help="ReadoutXFM-compatible readout: pixel statistics, crop/rewrite, exports",
        description="Read a .GeoPIXE map like ReadoutXFM. Outputs go to <dir of FILE>/out_<stem>/ "
        "(or -o DIR, with /out appended unless DIR ends in out or out_<stem>): data/pxstats_*.npy "
        "always, data/dataset.npy and data/dataset.zarr with -e, <stem>_mod.GeoPIXE with -w.",
    )
    ro.add_argument("-f", "--infile", required=True, metavar="FILE", help="the .GeoPIXE map")
    ro.add_argument("-o", "--outdir", metavar="DIR", help="output folder")
    ro.add_argument("-i", "--index-only", action="store_true", help="pixel statistics only, no spectra decoded")
    ro.add_argument("-w", "--write", action="store_true", help="write <stem>_mod.GeoPIXE (cropped with -x/-y)")
    ro.add_argument("-x", "--xcoords", type=int, nargs=2, metavar=("X0", "X1"), help="keep X0 <= x < X1 (with -w)")
    ro.add_argument("-y", "--ycoords", type=int, nargs=2, metavar=("Y0", "Y1"), help="keep Y0 <= y < Y1 (with -w)")
    ro.add_argument("-e", "--export", action="store_true", help="export the (y, x, detector, channel) cube to .npy and zarr")
    ro.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dense size of a band of rows in MiB (default: xrfdask.chunk-size, 16)")
    ro.add_argument("-m", "--multiprocess", action="store_true", help="run on a local multi-process dask cluster")

    conv = sub.add_parser(
        "convert",
        parents=[cluster],
        help="convert between .GeoPIXE, uniform-layout .h5 and .zarr; beamline files to .h5/.zarr",
        description="Convert IN to OUT, formats from the extensions (.GeoPIXE, .h5/.hdf5, .zarr). "
        "With --id15 or --p06 the input is a beamline scan and OUT defaults to xrf_proc's name.",
    )
    conv.add_argument("paths", nargs="*", metavar="IN OUT", help="input and output (only OUT with --id15/--p06)")
    conv.add_argument("--group", default=None, help="layout group to copy between .h5/.zarr (default raw)")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing output (or group)")
    conv.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")
    beam = conv.add_argument_group("beamline input")
    beam.add_argument("--id15", metavar="FILE", action="append", help="ESRF ID15 BLISS file (repeat with one --scan each to stitch across files)")
    beam.add_argument("--scan", action="append", metavar="N.1", help="ID15 scan entry (repeat to stitch)")
    beam.add_argument("--dim", type=int, nargs=2, metavar=("ROWS", "COLS"), help="ID15 scan shape")
    beam.add_argument("--mot1", default="hry", help="ID15 first motor (default %(default)s)")
    beam.add_argument("--mot2", default="hrz", help="ID15 second motor (default %(default)s)")
    beam.add_argument("--p06", metavar="SCANDIR", action="append", help="PETRA III P06 scan path without extension (repeat to merge)")
    beam.add_argument("--no-sort", action="store_true", help="keep the recorded point order")

    fitp = sub.add_parser(
        "fit",
        parents=[cluster],
        help="fit the spectra of a map: peak-area maps into the fit/ group of an .h5 or .zarr",
        description="Fit every spectrum of FILE (.GeoPIXE, uniform-layout .h5 or .zarr) with a PyMca "
        "configuration (--config) or one built from an element list (--elements), and write the "
        "peak areas to OUT's fit/ group (added beside raw/ when OUT exists).",
    )
    fitp.add_argument("file", metavar="FILE", help="the map")
    fitp.add_argument("--config", metavar="CFG", help="PyMca .cfg file")
    fitp.add_argument("--elements", nargs="+", metavar="EL", help="elements to fit (builds a configuration; with --config, replaces its peaks)")
    fitp.add_argument("--method", choices=("linear", "pymca", "full"), default="linear", help="default %(default)s")
    fitp.add_argument("--detector", default=None, help="a detector number or label, or 'sum' (default: every detector)")
    fitp.add_argument("--excitation", type=float, metavar="KEV", help="excitation energy (needed for h5 maps without a tube)")
    fitp.add_argument("--calibration", type=float, nargs=2, metavar=("ZERO", "GAIN"), help="energy = ZERO + GAIN x channel, keV (maps without an energy coordinate)")
    fitp.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.h5 or OUT.zarr")
    fitp.add_argument("--png", metavar="FILE.png", help="also draw the element maps")
    fitp.add_argument("--overwrite", action="store_true", help="replace an existing fit group")
    fitp.add_argument("-s", "--chunksize", type=float, metavar="MB", help="dask chunk size in MiB")

    demo = sub.add_parser("demo", parents=[cluster], help="run the main job on the embedded example map")
    demo.add_argument("--out", default="xrfdask-demo", metavar="DIR", help="output folder (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xrfdask`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"info": _cmd_info, "readout": _cmd_readout, "convert": _cmd_convert, "fit": _cmd_fit, "demo": _cmd_demo}[args.command]
    prog = f"xrfdask {args.command}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", XrfdaskWarning)
            warnings.showwarning = _show_warning
            return handler(args) or 0
    except UsageError as exc:
        print(f"{prog}: error: {exc} (see {prog} --help)", file=sys.stderr)
        return 2
    except (XrfdaskError, ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError) as exc:
        message = str(exc).replace("pass overwrite=True", "use --overwrite")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _scheduler(args, *, force_local: bool = False):
    """Run the block on the scheduler the options ask for (threads when none)."""
    address = getattr(args, "scheduler", None)
    if address is None and not force_local:
        yield None
        return
    from xrfdask.runtime import connect

    client = connect(
        None if address in (None, "local") else address,
        n_workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
        dashboard_address=args.dashboard_address,
    )
    print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr)
    try:
        yield client
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None and address in (None, "local"):
            cluster.close()


# --- info ------------------------------------------------------------------------------------


def format_summary(summary: dict) -> str:
    """Human-readable lines for :meth:`GeoPixeIndex.summary`."""
    s = summary
    lines = [f"file            {s['path']}  ({s['file_size']:,} bytes)"]
    stamp = f", recorded {s['timestamp']}" if s.get("timestamp") else ""
    lines.append(f"header          {s['header_length']} bytes of JSON{stamp}")
    size = ""
    if s["width_mm"] and s["height_mm"]:
        pitch_um = 1000 * s["width_mm"] / s["xres"]
        size = f", {s['width_mm']:.4g} x {s['height_mm']:.4g} mm, pixel {pitch_um:.3g} µm"
    lines.append(f"map             {s['xres']} x {s['yres']} pixels (x by y){size}")
    if s["dwell_ms"] is not None:
        lines.append(f"dwell           {s['dwell_ms']:g} ms per pixel")
    dets = f"{s['ndet']}"
    if s["header_dets"] is not None and s["header_dets"] != s["ndet"]:
        dets += f" (header Dets {s['header_dets']})"
    lines.append(f"detectors       {dets}; {s['detector_blocks']} Detector block(s) in the header")
    top = (s["nchan"] - 1) * s["gain_ev"] / 1000
    lines.append(f"channels        {s['nchan']} x {s['gain_ev']:g} eV (0 - {top:.2f} keV)")
    tube = s["tube"]
    if tube:
        lines.append(
            "source          "
            + " ".join(f"{v}{u}" for k, u in (("Elt", " tube"), ("KV", " kV"), ("UA (µA)", " µA")) if (v := tube.get(k)) is not None)
        )
    state = "complete" if s["n_records"] == s["n_expected"] else "incomplete: scan stopped early"
    lines.append(f"records         {s['n_records']:,} of {s['n_expected']:,} ({state})")
    lines.append(f"missing pixels  {s['missing_pixels']:,}")
    if s["dropped_offset"] is not None:
        lines.append(f"dropped         incomplete record at offset {s['dropped_offset']:,}")
    lines.append(f"dense size      {_bytes(s['dense_bytes'])} as uint16 (file {_bytes(s['file_size'])})")
    for det, (lo, hi, mean) in s["deadtime"].items():
        lines.append(f"deadtime det {det:<3}{lo:.2f} - {hi:.2f} % (mean {mean:.2f} %)")
    return "\n".join(lines)


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def _cmd_info(args) -> int:
    from xrfdask.io.geopixe.index import build_index

    print(format_summary(build_index(args.file).summary()))
    return 0


# --- readout ---------------------------------------------------------------------------------


def readout_dir(infile: str, outdir: str | None) -> Path:
    """ReadoutXFM's output folder: ``<dir>/out_<stem>`` or ``-o`` with ``/out`` appended unless it
    already ends in ``out`` or ``out_<stem>``."""
    stem = Path(infile).stem
    if outdir is None:
        return Path(infile).resolve().parent / f"out_{stem}"
    out = Path(outdir)
    return out if out.name in ("out", f"out_{stem}") else out / "out"


def _check_readout_args(args) -> None:
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


def _cmd_readout(args) -> int:
    _check_readout_args(args)
    import numpy as np

    from xrfdask.io.geopixe.index import build_index

    infile = args.infile
    index = build_index(infile)
    odir = readout_dir(infile, args.outdir)
    data_dir = odir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    # Pixel statistics from the index alone, (pixels, detectors) as ReadoutXFM writes them.
    npx = index.nrows * index.xres
    table = index.to_dataset()
    stats = {
        "pxstats_pxlen": ("length", np.uint32),
        "pxstats_xidx": ("x", np.uint16),
        "pxstats_yidx": ("y", np.uint16),
        "pxstats_det": ("detector", np.uint16),
        "pxstats_dt": ("deadtime", np.float32),
    }
    for name, (var, dtype) in stats.items():
        values = np.zeros(npx * index.ndet, dtype=dtype)
        values[: index.n_records] = table[var].values
        np.save(data_dir / f"{name}.npy", values.reshape(npx, index.ndet))
    np.save(data_dir / "pxstats_present.npy", index.present().reshape(npx, index.ndet))
    print(f"indexed {index.n_records:,} records in {time.perf_counter() - t0:.2f} s -> {data_dir}")

    if args.write:
        x0, x1 = args.xcoords or (0, index.xres)
        y0, y1 = args.ycoords or (0, index.nrows)
        if x0 >= index.xres or y0 >= index.nrows:
            raise UsageError(
                f"crop starts at x={x0}, y={y0}, outside the map's {index.xres} x {index.nrows} pixels"
            )

    chunks = f"{args.chunksize}MiB" if args.chunksize else "auto"
    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.runtime import progress

    with _scheduler(args, force_local=args.multiprocess):
        ds = open_geopixe(infile, chunks=chunks)
        if not args.index_only:
            with progress(label="sum "):
                total = ds.spectra.sum("channel", dtype=np.uint32).compute()  # eager-ok: per-pixel sums
            np.save(data_dir / "pxstats_sum.npy", total.values.reshape(npx, index.ndet))
            print(f"decoded spectra: {int(total.sum()):,} counts -> {data_dir / 'pxstats_sum.npy'}")
        if args.export:
            from xrfdask.io.npy import to_npy
            from xrfdask.io.zarrstore import dataset_to_zarr

            with progress(label="npy "):
                to_npy(ds.spectra, data_dir / "dataset.npy", overwrite=True)
            with progress(label="zarr "):
                dataset_to_zarr(ds, data_dir / "dataset.zarr", overwrite=True)
            print(f"exported {data_dir / 'dataset.npy'} and {data_dir / 'dataset.zarr'}")
        if args.write:
            from xrfdask.io.geopixe.writer import to_geopixe

            crop = ds.isel(x=slice(x0, x1), y=slice(y0, y1))
            target = odir / f"{Path(infile).stem}_mod.GeoPIXE"
            with progress(label="write "):
                to_geopixe(crop, target, overwrite=True)
            print(f"wrote {target} ({crop.sizes['x']} x {crop.sizes['y']} pixels)")
    return 0


# --- convert ---------------------------------------------------------------------------------

_FORMATS = {".geopixe": "geopixe", ".h5": "h5", ".hdf5": "h5", ".zarr": "zarr"}


def file_format(path: str) -> str:
    """'geopixe', 'h5' or 'zarr' from a path's extension."""
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix not in _FORMATS:
        raise UsageError(f"{path}: unknown format {suffix or '(no extension)'}; use .GeoPIXE, .h5 or .zarr")
    return _FORMATS[suffix]


def open_map(path: str, *, group: str | None = None, chunks="auto"):
    """A group (default: the raw map) of a .GeoPIXE, .h5 or .zarr path, format from the extension."""
    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.io.h5layout import open_h5, open_zarr

    kind = file_format(path)
    if kind == "geopixe":
        if group not in (None, "raw"):
            raise UsageError(f"{path}: a .GeoPIXE file holds a raw map only, not a {group!r} group")
        return open_geopixe(path, chunks=chunks)
    return (open_h5 if kind == "h5" else open_zarr)(path, group=group or "raw", chunks=chunks)


def convert(source, target: str, *, group: str | None = None, overwrite: bool = False, chunks="auto") -> str:
    """Convert a map (a path, or a raw-map Dataset) to ``target``; the function behind ``xrfdask convert``."""
    from xrfdask.io.geopixe.writer import to_geopixe
    from xrfdask.io.h5layout import to_h5, to_zarr

    ds = open_map(os.fspath(source), group=group, chunks=chunks) if isinstance(source, str | os.PathLike) else source
    out_kind = file_format(target)
    if out_kind == "geopixe":
        if "spectra" not in ds:
            raise UsageError(f"{target}: a .GeoPIXE file holds raw maps, not the '{group}' group")
        return to_geopixe(ds, target, overwrite=overwrite)
    writer = to_h5 if out_kind == "h5" else to_zarr
    return writer(ds, target, group=group, overwrite=overwrite)


def _cmd_convert(args) -> int:
    chunks = f"{args.chunksize}MiB" if args.chunksize else "auto"
    beamline = args.id15 or args.p06
    if args.id15 and args.p06:
        raise UsageError("--id15 and --p06 are different beamlines: give one")
    if beamline:
        if len(args.paths) > 1:
            raise UsageError(f"with --id15/--p06 give only OUT, not {len(args.paths)} paths")
        if args.group not in (None, "raw"):
            raise UsageError("beamline files convert to the raw group: drop --group")
    elif len(args.paths) != 2:
        raise UsageError("give IN and OUT (or --id15/--p06 with OUT)")
    if args.id15 and (not args.scan or not args.dim):
        raise UsageError("--id15 needs --scan N.1 and --dim ROWS COLS")
    with _scheduler(args):
        from xrfdask.runtime import progress

        if args.id15:
            from xrfdask.io.beamlines.id15 import convert_id15, id15_output_path

            files = args.id15 if len(args.id15) > 1 else args.id15[0]
            scans = args.scan if len(args.scan) > 1 else args.scan[0]
            source = convert_id15(files, scans, tuple(args.dim), mot1_name=args.mot1, mot2_name=args.mot2, sort=not args.no_sort)
            target = args.paths[0] if args.paths else str(id15_output_path(files, scans))
        elif args.p06:
            from xrfdask.io.beamlines.p06 import convert_p06, p06_output_path

            scans = args.p06 if len(args.p06) > 1 else args.p06[0]
            source = convert_p06(scans, sort=not args.no_sort)
            target = args.paths[0] if args.paths else str(p06_output_path(scans))
        else:
            source, target = args.paths
        t0 = time.perf_counter()
        with progress(label="convert "):
            out = convert(source, target, group=args.group, overwrite=args.overwrite, chunks=chunks)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
    return 0


# --- fit -------------------------------------------------------------------------------------


def _cmd_fit(args) -> int:
    if not args.config and not args.elements:
        raise UsageError("give --config CFG or --elements EL ... (or both)")
    out_kind = file_format(args.output)
    if out_kind == "geopixe":
        raise UsageError(f"{args.output}: fit results go to an .h5 or .zarr file")
    detector = args.detector
    if detector is not None and detector != "sum" and detector.lstrip("-").isdigit():
        detector = int(detector)
    chunks = f"{args.chunksize}MiB" if args.chunksize else "auto"
    from xrfdask.fit import fit, make_fit_config
    from xrfdask.fit.config import load_config
    from xrfdask.io.h5layout import to_h5, to_zarr
    from xrfdask.runtime import progress

    with _scheduler(args):
        ds = open_map(args.file, chunks=chunks)
        if args.elements:
            overrides = {}
            if args.config:
                base = load_config(args.config)
                overrides = {k: v for k, v in base.items() if k != "peaks"}
            detector_cfg = {"zero": args.calibration[0], "gain": args.calibration[1]} if args.calibration else None
            config = make_fit_config(ds, args.elements, excitation_energy=args.excitation, detector=detector_cfg, **overrides)
        else:
            config = args.config
        t0 = time.perf_counter()
        with progress(label="fit "):
            result = fit(ds, config, method=args.method, detector=detector)
            writer = to_h5 if out_kind == "h5" else to_zarr
            writer(result, args.output, group="fit", overwrite=args.overwrite)
        seconds = time.perf_counter() - t0
        npx = ds.sizes["y"] * ds.sizes["x"] * result.sizes["detector"]
        print(f"fitted {npx:,} spectra ({', '.join(map(str, result.line.values))}) in {seconds:.1f} s -> {args.output} (fit/)")
        if args.png:
            from xrfdask.plot import element_maps

            stored = open_map(args.output, group="fit")
            print(f"element maps -> {element_maps(stored, args.png)}")
    return 0


# --- demo ------------------------------------------------------------------------------------


def _cmd_demo(args) -> int:
    from xrfdask import datasets
    from xrfdask.fit import fit, make_fit_config
    from xrfdask.io.geopixe.index import build_index
    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.io.h5layout import to_zarr
    from xrfdask.plot import element_maps
    from xrfdask.runtime import progress

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = datasets.example_geopixe(out)
    print(f"wrote the example map {path}\n")
    print(format_summary(build_index(path).summary()), "\n")
    with _scheduler(args):
        ds = open_geopixe(path)
        store = out / "example.zarr"
        with progress(label="zarr "):
            to_zarr(ds, store, overwrite=True)
        print(f"exported {store}")
        config = make_fit_config(ds, list(datasets.ELEMENTS))
        t0 = time.perf_counter()
        with progress(label="fit "):
            result = fit(ds, config, method="linear")
            to_zarr(result, store, group="fit", overwrite=True)
        print(f"fitted {ds.sizes['y'] * ds.sizes['x'] * ds.sizes['detector']:,} spectra in {time.perf_counter() - t0:.1f} s -> {store}/fit")
        from xrfdask.io.h5layout import open_zarr

        png = element_maps(open_zarr(store, group="fit"), out / "element_maps.png")
    print(f"element maps -> {png}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
