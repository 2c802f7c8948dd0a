"""``xrfdask demo``: the whole pipeline on the embedded example map, with an HTML report.

Writes, into DIR: the example map and a reference material's map with its ``.cnc``; the two
pipeline configurations (``reference.toml``, ``example.toml``: copy them for your own maps);
``reference.h5`` (fit, norm, detlim, elyield) and ``example.h5`` (fit, norm, quant, kmeans, PCA);
``example_images/`` (overview, correlation, colours, classes, detection limits, TIFF and CSV
exports) and ``report.html``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xrfdask.cli.common import Parents, scheduler

REFERENCE_TOML = """\
# The reference material: fit, normalise, detection limits and yields from its .cnc.
version = 1

[fit]
elements = {elements}

[normalise]

[detection_limits]
cnc = "reference.cnc"
"""

EXAMPLE_TOML = """\
# The sample: fit, normalise, quantify against the reference, classify, draw, export.
version = 1

[fit]
elements = {elements}

[normalise]

[quantify]
references = ["reference.h5"]
density = {density:g}       # g/cm3 and cm, the section's: concentrations in ug/g
thickness = {thickness:g}

[classify]
method = "pca-kmeans"
n_clusters = 6

[colour]

[images]

[export]
"""


def register(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """Add the ``demo`` parser."""
    p = subparsers.add_parser(
        "demo",
        parents=[parents.cluster],
        help="run the whole pipeline on the embedded example map (report.html)",
    )
    p.add_argument(
        "--out",
        default="xrfdask-demo",
        metavar="DIR",
        help="output folder (default %(default)s)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Write the example and reference maps, run both pipelines, compare with the truth."""
    from xrfdask import datasets
    from xrfdask.io.geopixe.index import build_index
    from xrfdask.io.geopixe.summary import format_summary
    from xrfdask.pipeline import process

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample = datasets.example_geopixe(out)
    reference, cnc = datasets.example_reference(out)
    print(f"wrote the example map {sample} and a reference material {reference} ({cnc.name})\n")
    print(format_summary(build_index(sample).summary()), "\n")
    elements = "[" + ", ".join(f'"{e}"' for e in datasets.ELEMENTS) + "]"
    (out / "reference.toml").write_text(REFERENCE_TOML.format(elements=elements))
    (out / "example.toml").write_text(
        EXAMPLE_TOML.format(
            elements=elements,
            density=datasets.REFERENCE_DENSITY_MG_CM3 / 1000.0,
            thickness=datasets.REFERENCE_THICKNESS_UM * 1e-4,
        )
    )
    t0 = time.perf_counter()
    with scheduler(args):
        ref = process(reference, out / "reference.toml", verbose=True)
        print(ref, "\n")
        result = process(sample, out / "example.toml", verbose=True)
        print(result, "\n")
    fit_step = next(s for s in result.steps if s.step == "fit")
    npx = 64 * 48 * 2
    print(f"fitted {npx:,} spectra in {fit_step.seconds:.1f} s -> {result.output} (fit/)")
    report = _report(out, ref, result, time.perf_counter() - t0)
    print(f"report -> {report}")
    return 0


def _report(out: Path, ref, result, seconds: float) -> str:
    """Tables against the truth, and the images: ``report.html``."""
    import numpy as np

    from xrfdask import datasets
    from xrfdask.io.convert import open_map
    from xrfdask.pipeline.report import Section, write_report

    truth = datasets.example_truth()["concentration"].mean(("y", "x"))
    quant = open_map(result.output, group="quant")
    detlim = open_map(ref.output, group="detlim")
    label = quant["detector"].values[0]  # eager-ok: a label
    rows = []
    for element in datasets.ELEMENTS:
        line = "Pb L" if element == "Pb" else f"{element} K"
        true = float(truth.sel(element=element))
        found = float(quant["sum_concentration"].sel(detector=label, line=line))  # eager-ok
        dl = float(detlim["detection_limit_1s"].sel(detector=label, line=line))  # eager-ok
        rows.append((line, true, found, f"{100 * (found / true - 1):+.1f} %", dl))
    print("map-average concentrations (ug/g) against the truth:")
    for line, true, found, diff, _ in rows:
        print(f"  {line:5s} {true:12.1f} {found:12.1f}  {diff}")
    cls = open_map(result.output, group="kmeans")
    sizes = np.bincount(np.asarray(cls["labels"].values).reshape(-1))  # eager-ok: small labels
    images = Path(result.images)
    steps = [(s.step, s.status, s.seconds) for s in ref.steps + result.steps]
    sections = [
        Section(
            "What ran",
            [
                "The example map (a thin section scanned on an IXRF ATLAS-like instrument, "
                "64 x 48 pixels, 2 detectors) and a reference material of known mean composition "
                f"went through xrfdask's pipeline in {seconds:.1f} s "
                "(configurations: reference.toml, example.toml)."
            ],
            [(("step", "status", "seconds"), steps)],
        ),
        Section(
            "Concentrations against the truth",
            [f"Map averages from the sum spectra, detector {label}, against the reference."],
            [
                (
                    ("line", "true (ug/g)", "xrfdask (ug/g)", "difference", "1 s det. limit (ppm)"),
                    rows,
                )
            ],  # fmt: skip
            sorted(images.glob("*_overview.png")),
        ),
        Section("Correlations", images=sorted(images.glob("correlation_*.png"))),
        Section(
            "Classes",
            [f"pca-kmeans, {len(sizes)} classes."],
            [(("class", "pixels"), list(enumerate(sizes.tolist())))],
            sorted((images / "classes").glob("*.png")),
        ),
        Section("Colours of the spectra", images=[images / "colours.png"]),
        Section(
            "Detection limits of the reference",
            images=sorted(Path(ref.images).glob("detection_limits_*.png")),
        ),
    ]
    return write_report(out / "report.html", "xrfdask demo", sections)
