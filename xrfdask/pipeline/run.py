"""``xd.process``: a raw map through the configured steps, skipping those already up to date."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xrfdask.errors import XrfdaskError
from xrfdask.pipeline import provenance
from xrfdask.pipeline.config import _SCHEMA, PipelineConfig, load_config
from xrfdask.pipeline.steps import Context, inputs_of, run_step, stored_fingerprint

__all__ = ["PipelineError", "ProcessReport", "StepReport", "process"]


class PipelineError(XrfdaskError):
    """A step failed; the steps before it are written and readable."""

    def __init__(self, step: str, message: str):
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step


@dataclass
class StepReport:
    """One step of a run."""

    step: str
    status: str  # "ran", "up to date"
    seconds: float
    written: list[str] = field(default_factory=list)


@dataclass
class ProcessReport:
    """What :func:`~xrfdask.process` did: per step, its status, time and outputs."""

    path: str
    output: str
    images: str
    steps: list[StepReport]

    def __str__(self) -> str:
        width = max(len(s.step) for s in self.steps)
        lines = [f"{self.path} -> {self.output} (images and exports: {self.images})"]
        for s in self.steps:
            where = "; ".join(os.path.relpath(w) if os.path.exists(w) else w for w in s.written)
            lines.append(
                f"  {s.step:{width}s}  {s.status:10s} {s.seconds:7.2f} s"
                + (f"  {where}" if where and len(where) < 160 else "")
                + (f"  {len(s.written)} files" if len(where) >= 160 else "")
            )
        total = sum(s.seconds for s in self.steps)
        lines.append(f"  {'total':{width}s}  {'':10s} {total:7.2f} s")
        return "\n".join(lines)


def default_output(path: str | os.PathLike) -> str:
    """The map itself for ``.h5``/``.zarr`` input; ``<stem>.h5`` beside a ``.GeoPIXE`` map."""
    from xrfdask.io.convert import file_format

    path = os.fspath(path)
    if file_format(path) == "geopixe":
        return os.fspath(Path(path).with_suffix(".h5"))
    return path


def process(
    path: str | os.PathLike,
    config: str | os.PathLike | Mapping[str, Any] | PipelineConfig,
    *,
    output: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    force: bool = False,
    chunks: Any = "auto",
    verbose: bool = False,
) -> ProcessReport:
    """Run a raw map through the steps a configuration names (fit, normalise, detection limits,
    quantify, classify, colour, images, export), writing each result as it is done.

    Parameters
    ----------
    path : str or path-like
        The raw map: ``.GeoPIXE``, or an ``.h5``/``.zarr`` file of the uniform layout.
    config : path, mapping or PipelineConfig
        A versioned TOML file (``xrfdask process --example-config`` prints one) or its tables.
    output : path, optional
        The ``.h5`` or ``.zarr`` file for the groups; default the configuration's
        ``[output] path``, else the map itself (``.h5``/``.zarr``), else ``<stem>.h5`` beside a
        ``.GeoPIXE`` map. Its ``raw/`` group is never written or changed.
    images : path, optional
        Folder for PNGs and exports; default ``[output] images``, else ``<output stem>_images``.
    force : bool, default False
        Redo every step, even those up to date.
    chunks : "auto" or a size
        Band size of the raw map's chunks.
    verbose : bool, default False
        A progress bar per step (dask's, or distributed's on a cluster).

    Returns
    -------
    ProcessReport
        Per step: "ran" or "up to date", seconds and what it wrote; ``str()`` is a summary.

    Raises
    ------
    PipelineError
        When a step fails: it names the step and why; the steps before it are written.
    ConfigError
        For a configuration that cannot run (checked before anything is written).

    Notes
    -----
    Each step stores its parameters, the xrfdask version and the fingerprints of its inputs in
    its group's attributes (``xrfdask_process``); a re-run redoes a step only when that record
    differs from what it would write now, so changing one step's parameters redoes that step
    and the steps that read its result, and nothing else.
    """
    from xrfdask.io.convert import file_format, open_map
    from xrfdask.runtime import progress

    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such map")
    out = os.fspath(output or cfg.output.get("path") or default_output(path))
    if file_format(out) == "geopixe":
        raise XrfdaskError(f"{out}: results go to an .h5 or .zarr file")
    folder = images or cfg.output.get("images") or Path(out).with_name(Path(out).stem + "_images")
    ds = open_map(path, chunks=chunks)
    ctx = Context(path, out, Path(folder), ds, {"raw": provenance.map_fingerprint(ds, path)}, {})
    reports = []
    for step, params in cfg.steps.items():
        t0 = time.perf_counter()
        try:
            inputs = {
                name: _input_fingerprint(name, step, ctx) for name in inputs_of(step, params, ctx)
            }
            keyed = _with_file_fingerprints(step, params)
            record = provenance.record(step, keyed, inputs, 0.0)
            current = None if force else stored_fingerprint(step, params, ctx)
            if current == record["fingerprint"]:
                ctx.fingerprints[step] = current
                reports.append(StepReport(step, "up to date", time.perf_counter() - t0))
                continue
            with progress(label=f"{step} ", enabled=verbose):
                written = run_step(step, params, ctx, record)
        except PipelineError:
            raise
        except (XrfdaskError, ValueError, OSError, KeyError) as exc:
            raise PipelineError(step, str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc
        ctx.fingerprints[step] = record["fingerprint"]
        reports.append(StepReport(step, "ran", time.perf_counter() - t0, written))
    return ProcessReport(path, out, os.fspath(folder), reports)


def _input_fingerprint(name: str, step: str, ctx: Context) -> str:
    if name in ctx.fingerprints:
        return ctx.fingerprints[name]
    # Written by an earlier run (or another tool): its own record, else what it holds now.
    group = {"fit": "fit", "normalise": "norm", "quantify": "quant"}.get(name, name)
    from xrfdask.io.convert import open_map

    try:
        result = open_map(ctx.out, group=group)
    except (XrfdaskError, ValueError, OSError, KeyError):
        raise XrfdaskError(
            f"needs {group}/ in {ctx.out}: add the [{name}] step to the configuration"
        ) from None
    record = provenance.stored(result.attrs)
    fp = record["fingerprint"] if record else provenance.map_fingerprint(result, ctx.out)
    ctx.fingerprints[name] = fp
    return fp


def _with_file_fingerprints(step: str, params: dict) -> dict:
    """The parameters, with every file they name keyed by its content (an edited cfg, cnc or
    reference redoes the step)."""
    out = dict(params)
    for key, spec in _SCHEMA[step].items():
        value = params.get(key)
        if not spec.path or not value:
            continue
        paths = [value] if isinstance(value, str) else value
        for p in paths:
            if not os.path.exists(p):
                raise FileNotFoundError(f"[{step}] {key}: {p}: no such file")
        out[key] = [[p, provenance.file_fingerprint(p)] for p in paths]
    return out
