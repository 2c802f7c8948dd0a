"""The pipeline's steps: what each reads, what it writes, and how it runs.

Each step reads its inputs from the output file (what the earlier steps wrote, so a re-run that
skips them reads the same thing), runs the public function of its job, and writes its group(s)
with its provenance record in the attributes; steps that draw or export write files into the
images folder and record themselves in that folder's manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from xrfdask.errors import ConfigError, FormatError
from xrfdask.model import ELEMENT_GROUPS
from xrfdask.pipeline import provenance

__all__ = ["Context", "STEP_TYPES", "inputs_of", "run_step", "stored_fingerprint"]

MANIFEST = "xrfdask-process.json"  # the images folder's record of its file steps


@dataclass
class Context:
    """What the steps of one run share."""

    path: str  # the raw map
    out: str  # the .h5 or .zarr file the groups go to
    images: Path  # the folder for PNGs and exports
    ds: xr.Dataset  # the raw map, lazy
    fingerprints: dict[str, str]  # step or "raw" -> fingerprint, as the run goes
    written: dict[str, list[str]]  # step -> what it wrote


def _open(ctx: Context, group: str) -> xr.Dataset:
    from xrfdask.io.convert import open_map

    return open_map(ctx.out, group=group)


def _write(ctx: Context, result: xr.Dataset, group: str | None, record: dict) -> str:
    from xrfdask.io.convert import write_map

    result.attrs[provenance.KEY] = json.dumps(record, default=str)
    write_map(result, ctx.out, group=group, overwrite=True)
    if group is None and "cnc" in result.attrs:
        group = f"detlim/{result.attrs['cnc']}/, elyield/{result.attrs['cnc']}"
    elif group is None:
        group = "kmeans/, PCA" if "scores" in result else "kmeans"
    return f"{ctx.out} ({group}/)"


def _cnc_names(params: dict) -> list[str]:
    cnc = params["cnc"]
    return [os.path.basename(c) for c in ([cnc] if isinstance(cnc, str) else cnc)]


def _element_group(ctx: Context, wanted: str | None, step: str) -> str:
    """The group a drawing or export step uses: the one asked for, else the last written."""
    if wanted:
        return wanted
    for group in ELEMENT_GROUPS:
        if group in ctx.fingerprints or _has_group(ctx, group):
            return group
    raise ConfigError(f"[{step}]: no fit/, norm/ or quant/ to use: add [fit] (or name 'group')")


def _has_group(ctx: Context, group: str) -> bool:
    try:
        _open(ctx, group)
    except (FormatError, ValueError, FileNotFoundError, KeyError):
        return False
    return True


# -- what each step reads -------------------------------------------------------------------

_GROUP_OF_STEP = {"fit": "fit", "norm": "normalise", "quant": "quantify"}


def inputs_of(step: str, params: dict, ctx: Context) -> list[str]:
    """The steps (or ``"raw"``) whose results ``step`` reads."""
    if step == "fit":
        return ["raw"]
    if step == "normalise":
        return ["raw", "fit"]
    if step == "detection_limits":
        return ["raw", "normalise"]
    if step == "quantify":
        return ["raw", "normalise"]
    if step == "tomo":
        return ["raw", _GROUP_OF_STEP.get(params["group"], params["group"])]
    if step == "classify":
        group = params["group"]
        return ["raw"] if group == "raw" else [_GROUP_OF_STEP.get(group, group)]
    if step == "colour":
        return ["raw"]
    if step in ("images", "export"):
        groups = params.get("groups") or [params.get("group")]
        if groups == [None]:
            groups = [_element_group(ctx, None, step)]
        return [_GROUP_OF_STEP.get(g, g) for g in groups]
    raise ConfigError(f"unknown step {step!r}")


# -- whether a step is up to date -------------------------------------------------------------


def stored_fingerprint(step: str, params: dict, ctx: Context) -> str | None:
    """The fingerprint the output holds for ``step`` (None when missing or unreadable)."""
    if step in ("colour", "images", "export"):
        manifest = _manifest(ctx)
        entry = manifest.get(step) or {}
        files = entry.get("files", [])
        if not files or not all(os.path.exists(ctx.images / f) for f in files):
            return None
        return entry.get("fingerprint")
    if step == "detection_limits":
        groups = [f"detlim/{n}" for n in _cnc_names(params)]
    elif step == "quantify":
        groups = ["quant"] + (["rel_dif"] if params.get("compare_cnc") else [])
    else:
        groups = [{"fit": "fit", "normalise": "norm", "classify": "kmeans", "tomo": "tomo"}[step]]
    found = set()
    for group in groups:
        try:
            record = provenance.stored(_open(ctx, group).attrs)
        except (FormatError, ValueError, FileNotFoundError, KeyError, OSError):
            return None
        if record is None:
            return None
        found.add(record.get("fingerprint"))
    return found.pop() if len(found) == 1 else None


def _manifest(ctx: Context) -> dict:
    try:
        with open(ctx.images / MANIFEST) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _record_files(ctx: Context, step: str, record: dict, files: list[str]) -> None:
    from xrfdask.io.atomic import atomic_output

    manifest = _manifest(ctx)
    manifest[step] = {**record, "files": [os.path.relpath(f, ctx.images) for f in files]}
    with atomic_output(ctx.images / MANIFEST, overwrite=True) as tmp, open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, default=str)


# -- running a step ---------------------------------------------------------------------------


def run_step(step: str, params: dict, ctx: Context, record: dict) -> list[str]:
    """Run ``step``; returns what it wrote."""
    return STEP_TYPES[step](params, ctx, record)


def _fit(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.fit import fit, load_config, make_fit_config

    if not params["config"] and not params["elements"]:
        raise ConfigError("[fit]: give 'elements' or 'config'")
    config: Any = params["config"]
    if params["elements"]:
        overrides = {}
        if params["config"]:
            overrides = {k: v for k, v in load_config(params["config"]).items() if k != "peaks"}
        config = make_fit_config(
            ctx.ds, params["elements"], excitation_energy=params["excitation"], **overrides
        )
    result = fit(ctx.ds, config, method=params["method"], detector=params["detector"])
    return [_write(ctx, result, "fit", record)]


def _normalise(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.normalise import normalise

    nrm = normalise(
        ctx.ds,
        _open(ctx, "fit"),
        params["I0norm"],
        params["tmnorm"],
        errors=params["errors"],
        regrid=params["regrid"],
    )
    return [_write(ctx, nrm, "norm", record)]


def _detection_limits(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.detlim import detection_limits

    nrm = _open(ctx, "norm")
    cncs = [params["cnc"]] if isinstance(params["cnc"], str) else params["cnc"]
    results = [
        detection_limits(nrm, cnc, params["tilt"], raw=ctx.ds, compat=params["compat"])
        for cnc in cncs
    ]
    written = [_write(ctx, dl, None, record) for dl in results]
    if params["plot"]:
        from xrfdask.plot import detection_limits as plot

        ctx.images.mkdir(parents=True, exist_ok=True)
        for label in results[0]["detector"].values:
            png = ctx.images / f"detection_limits_{label}.png"
            plot(results, png, detector=label)
            written.append(str(png))
    return written


def _quantify(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.quantify import div_by_cnc, quantify

    if not params["references"]:
        raise ConfigError("[quantify]: give 'references' (maps with elyield/ groups)")
    if bool(params["absorb"]) != bool(params["matrix"]):
        raise ConfigError("[quantify]: give 'absorb' and 'matrix' together")
    refs = [params["references"]] if isinstance(params["references"], str) else params["references"]
    for ref in refs:
        if not os.path.exists(ref):
            raise FileNotFoundError(f"{ref}: no such reference file")
    q = quantify(
        _open(ctx, "norm"),
        refs,
        norm_line=params["norm_line"],
        absorb=(params["absorb"], params["matrix"]) if params["absorb"] else None,
        density=params["density"],
        thickness=params["thickness"],
        compat=params["compat"],
        raw=ctx.ds if params["absorb"] else None,
        file=ctx.out,
    )
    written = [_write(ctx, q, "quant", record)]
    if params["compare_cnc"]:
        written.append(_write(ctx, div_by_cnc(_open(ctx, "quant"), params["compare_cnc"]),
                              "rel_dif", record))  # fmt: skip
    return written


def _tomo(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.tomo import reconstruct

    rec = reconstruct(
        _open(ctx, params["group"]),
        params["rotation"],
        params["centre"],
        params["algorithm"],
        params["filter"],
        params["lines"],
        motors=ctx.ds,
        signal=params["signal"],
    )
    return [_write(ctx, rec, "tomo", record)]


def _classify(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.classify import classify

    source = ctx.ds if params["group"] == "raw" else _open(ctx, params["group"])
    cls = classify(
        source,
        params["method"],
        params["n_clusters"],
        n_components=params["n_components"],
        seed=params["seed"],
        bin=params["bin"],
        transform=params["transform"],
    ).persist()  # written as two groups and drawn: computed once
    written = [_write(ctx, cls, None, record)]
    from xrfdask.plot import classes

    written += classes(cls, ctx.images / "classes")
    return written


def _colour(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.colour import colour_map
    from xrfdask.plot import colour_image

    colour = colour_map(ctx.ds, params["scheme"], compat=params["compat"])
    files = [colour_image(colour, ctx.images / "colours.png")]
    _record_files(ctx, "colour", record, files)
    return files


def _images(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask import plot

    files: list[str] = []
    groups = params["groups"] or [_element_group(ctx, None, "images")]
    for group in groups:
        result = _open(ctx, group)
        stem = ctx.images / Path(ctx.out).stem  # xrf_proc's names: <stem>_ch0_norm_overview
        options = {k: params[k] for k in ("ncols", "log", "sqrt", "cmap", "dpi")}
        files += plot.overview(result, stem, **options)
        if params["correlation"]:
            png = ctx.images / f"correlation_{group}.png"
            plot.correlation(result, png, dpi=params["dpi"])
            files.append(png)
    files = [os.fspath(f) for f in files]
    _record_files(ctx, "images", record, files)
    return files


def _export(params: dict, ctx: Context, record: dict) -> list[str]:
    from xrfdask.io import export

    group = _element_group(ctx, params["group"], "export")
    result = _open(ctx, group)
    files: list[str] = []
    if params["tiff"]:
        files += export.to_tiff(result, ctx.images / f"tiff_{group}", overwrite=True)
    if params["csv"]:  # xrf_proc's CSV holds one detector: a file each
        labels = list(result["detector"].values) if "detector" in result.dims else [None]
        for label in labels:
            name = f"{group}.csv" if len(labels) == 1 else f"{group}_{label}.csv"
            written = export.to_csv(result, ctx.images / name, detector=label, overwrite=True)
            files.append(os.fspath(written))
    _record_files(ctx, "export", record, files)
    return files


STEP_TYPES = {
    "fit": _fit,
    "normalise": _normalise,
    "detection_limits": _detection_limits,
    "quantify": _quantify,
    "tomo": _tomo,
    "classify": _classify,
    "colour": _colour,
    "images": _images,
    "export": _export,
}
