"""``xrfdask demo``: the main job on the embedded example map (write, summarise, fit, draw)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xrfdask.cli.common import Parents, scheduler


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``demo`` parser."""
    p = subparsers.add_parser(
        "demo", parents=[parents.cluster], help="run the main job on the embedded example map"
    )
    p.add_argument(
        "--out",
        default="xrfdask-demo",
        metavar="DIR",
        help="output folder (default %(default)s)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """The example map into DIR, its summary, a zarr copy, a linear fit and the element maps."""
    from xrfdask import datasets
    from xrfdask.fit import fit, make_fit_config
    from xrfdask.io.geopixe.index import build_index
    from xrfdask.io.geopixe.reader import open_geopixe
    from xrfdask.io.geopixe.summary import format_summary
    from xrfdask.io.h5layout import open_zarr, to_zarr
    from xrfdask.plot import element_maps
    from xrfdask.runtime import progress

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = datasets.example_geopixe(out)
    print(f"wrote the example map {path}\n")
    print(format_summary(build_index(path).summary()), "\n")
    with scheduler(args):
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
        seconds = time.perf_counter() - t0
        npx = ds.sizes["y"] * ds.sizes["x"] * ds.sizes["detector"]
        print(f"fitted {npx:,} spectra in {seconds:.1f} s -> {store}/fit")
        png = element_maps(open_zarr(store, group="fit"), out / "element_maps.png")
    print(f"element maps -> {png}")
    return 0
