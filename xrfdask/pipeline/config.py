"""The pipeline's configuration: a versioned TOML file, checked key by key before anything runs.

A configuration names the steps to run, each as a table with its own parameters; a step whose
table is absent does not run. The steps always run in the order of :data:`STEPS` (each reads
what the earlier ones wrote). Paths in a file are relative to the file's folder.

``version`` is required. A file written for an older version is upgraded in memory, with a
message that says what changed (:data:`UPGRADES`, keyed by the version it upgrades from); a newer
version than this xrfdask reads, an unknown table or an unknown key is a :class:`ConfigError`
naming it.
"""

from __future__ import annotations

import copy
import os
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xrfdask.errors import ConfigError, XrfdaskWarning

__all__ = [
    "EXAMPLE_CONFIG",
    "STEPS",
    "VERSION",
    "PipelineConfig",
    "load_config",
]

VERSION = 1

#: The steps, in the order they run; each is a table of the configuration.
STEPS: tuple[str, ...] = (
    "fit",
    "normalise",
    "detection_limits",
    "quantify",
    "tomo",
    "classify",
    "colour",
    "images",
    "export",
)

_ANY = object()  # a value checked by the step itself


@dataclass(frozen=True)
class _Key:
    types: tuple[type, ...] | object
    default: Any = None
    path: bool = False  # a file path (or a list of them), relative to the configuration file


_NUMBER = (int, float)
_SCHEMA: dict[str, dict[str, _Key]] = {
    "output": {
        "path": _Key((str,), path=True),
        "images": _Key((str,), path=True),
        "overwrite": _Key((bool,), False),
    },
    "fit": {
        "method": _Key((str,), "linear"),
        "config": _Key((str,), path=True),
        "elements": _Key((list,)),
        "detector": _Key((int, str)),
        "excitation": _Key(_NUMBER),
    },
    "normalise": {
        "I0norm": _Key(_NUMBER),
        "tmnorm": _Key((bool,), False),
        "regrid": _Key((str,)),
        "errors": _Key((str,), "auto"),
    },
    "detection_limits": {
        "cnc": _Key((str, list), path=True),
        "tilt": _Key(_NUMBER, 90.0),
        "compat": _Key((str,)),
        "plot": _Key((bool,), True),
    },
    "quantify": {
        "references": _Key((str, list), path=True),
        "norm_line": _Key((str,)),
        "absorb": _Key((list,)),
        "matrix": _Key((str,), path=True),
        "density": _Key(_NUMBER),
        "thickness": _Key(_NUMBER),
        "compat": _Key((str,)),
        "compare_cnc": _Key((str,), path=True),
    },
    "tomo": {
        "group": _Key((str,), "norm"),
        "rotation": _Key((str,), "mot1"),
        "centre": _Key(_NUMBER),
        "algorithm": _Key((str,), "fbp"),
        "filter": _Key((str,), "shepp"),
        "signal": _Key((str,)),
        "lines": _Key((list,)),
    },
    "classify": {
        "method": _Key((str,), "pca-kmeans"),
        "n_clusters": _Key((int,), 6),
        "group": _Key((str,), "raw"),
        "n_components": _Key((int,)),
        "seed": _Key((int,), 0),
        "bin": _Key((int,), 8),
        "transform": _Key((str,)),
    },
    "colour": {
        "scheme": _Key((str,), "hsv"),
        "compat": _Key((str,)),
    },
    "images": {
        "groups": _Key((list,)),
        "ncols": _Key((int,), 4),
        "log": _Key((bool,), False),
        "sqrt": _Key((bool,), False),
        "cmap": _Key((str,), "viridis"),
        "correlation": _Key((bool,), True),
        "dpi": _Key((int,), 120),
    },
    "export": {
        "group": _Key((str,)),
        "tiff": _Key((bool,), True),
        "csv": _Key((bool,), True),
    },
}

#: In-memory upgrades of older files: ``{from_version: (function, message)}``. Version 1 is the
#: first; an upgrade is added here whenever a version changes the meaning of a key.
UPGRADES: dict[int, tuple[Callable[[dict], dict], str]] = {}


@dataclass(frozen=True)
class PipelineConfig:
    """A checked configuration: the steps to run with their parameters (defaults filled in)."""

    steps: dict[str, dict[str, Any]]
    output: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"
    """The file it came from (for messages)."""

    def params(self, step: str) -> dict[str, Any]:
        """The parameters of ``step`` (a copy)."""
        return copy.deepcopy(self.steps[step])


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> PipelineConfig:
    """Read and check a pipeline configuration.

    Parameters
    ----------
    config : path or mapping
        A TOML file, or the same tables as a dict (paths then relative to the working folder).

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ConfigError
        Naming the file and the table or key that is wrong.
    """
    if isinstance(config, Mapping):
        raw, source, base = copy.deepcopy(dict(config)), "<dict>", Path.cwd()
    else:
        source = os.fspath(config)
        try:
            with open(source, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{source}: no such pipeline configuration") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from None
        base = Path(source).resolve().parent
    raw = _upgrade(raw, source)
    unknown = sorted(set(raw) - set(_SCHEMA) - {"version"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown table or key {unknown[0]!r}; expected version and tables "
            f"{', '.join(('output',) + STEPS)}"
        )
    checked = {name: _check_table(name, raw.get(name, {}), source, base) for name in raw}
    checked.pop("version", None)
    output = checked.pop("output", None) or _check_table("output", {}, source, base)
    if not checked:
        raise ConfigError(f"{source}: no step to run; add a table such as [fit]")
    steps = {name: checked[name] for name in STEPS if name in checked}
    return PipelineConfig(steps, output, source)


def _upgrade(raw: dict[str, Any], source: str) -> dict[str, Any]:
    version = raw.get("version")
    if version is None:
        raise ConfigError(f"{source}: no 'version' key; this xrfdask reads version = {VERSION}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{source}: version = {version!r}; expected an integer 1..{VERSION}")
    if version > VERSION:
        raise ConfigError(
            f"{source}: version {version} is newer than this xrfdask reads ({VERSION}); "
            "upgrade xrfdask"
        )
    while version < VERSION:
        upgrade, message = UPGRADES[version]
        raw = upgrade(raw)
        warnings.warn(
            f"{source}: version {version} upgraded to {version + 1}: {message}",
            XrfdaskWarning,
            stacklevel=3,
        )
        version += 1
        raw["version"] = version
    return raw


def _check_table(name: str, table: Any, source: str, base: Path) -> Any:
    if name == "version":
        return table
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: '{name}' must be a table ([{name}])")
    schema = _SCHEMA[name]
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise ConfigError(
            f"{source}: [{name}] has an unknown key {unknown[0]!r}; expected {', '.join(schema)}"
        )
    out = {}
    for key, spec in schema.items():
        if key not in table:
            out[key] = copy.deepcopy(spec.default)
            continue
        value = table[key]
        if spec.types is not _ANY and (
            not isinstance(value, spec.types) or isinstance(value, bool) != (bool in spec.types)
        ):
            kinds = " or ".join(t.__name__ for t in spec.types)
            raise ConfigError(f"{source}: [{name}] {key} = {value!r}; expected {kinds}")
        if spec.path:
            value = _resolve(value, base)
        out[key] = value
    return out


def _resolve(value: Any, base: Path) -> Any:
    if isinstance(value, list):
        return [_resolve(v, base) for v in value]
    return os.fspath(base / value) if not os.path.isabs(value) else value


#: ``xrfdask process --example-config``: every table, commented.
EXAMPLE_CONFIG = """\
# xrfdask pipeline configuration: `xrfdask process MAP --config pipeline.toml`.
# Steps run in this order; a step whose table is absent (or commented out) is skipped.
# Paths are relative to this file. Re-running skips the steps whose inputs and parameters have
# not changed (--force redoes them all).
version = 1

[output]
# path = "scan.h5"          # .h5 or .zarr; default: the map (.h5/.zarr), or <stem>.h5
# images = "scan_images"    # folder for the PNGs and exports; default <output stem>_images/

[fit]                       # fit/: peak areas (PyMca groups "Fe K", "Pb L", ...)
method = "linear"           # "linear" (compiled), "pymca" (FastXRFLinearFit), "full" (McaTheory)
elements = ["K", "Ca", "Ti", "Mn", "Fe", "Cu", "Zn", "Sr", "Pb"]
# config = "my_pymca.cfg"   # a PyMca configuration instead of elements

[normalise]                 # norm/: areas per I0 (and per second with tmnorm)
# I0norm = 1e6
# tmnorm = false
# regrid = "snake"          # or "time": onto the regular motor grid

# [detection_limits]        # detlim/ and elyield/ of a reference material's map
# cnc = ["nist613.cnc"]
# tilt = 90

# [quantify]                # quant/: concentrations against references (their elyield/)
# references = ["nist613.h5"]
# norm_line = "Rayl"
# absorb = ["Fe"]           # self-absorption from the Ka/Kb ratio, with
# matrix = "matrix.cnc"
# density = 2.65            # g/cm3 with thickness (cm): concentrations in ug/g
# thickness = 0.003
# compare_cnc = "nist613.cnc"   # rel_dif/: quant / certified

# [tomo]                    # tomo/: a tomography scan's element maps (rows = angles)
# group = "norm"
# rotation = "mot1"         # the motor holding the angles (degrees)
# centre = 255.5            # default: found on 'signal' (default: the line with most counts)
# algorithm = "fbp"         # or "sart"

[classify]                  # kmeans/ and PCA/
method = "pca-kmeans"       # "kmeans", "umap-kmeans", "hdbscan"
n_clusters = 6
group = "raw"               # the spectra; or "fit", "norm", "quant": element maps

[colour]                    # colours.png: the spectra as one colour image
scheme = "hsv"              # or "hsv_white"

[images]                    # overview images of the groups, correlation plot
# groups = ["norm"]         # default: the last of fit, norm, quant written
ncols = 4
log = false
correlation = true

[export]                    # element maps as TIFF (one per line) and xrf_proc's CSV
# group = "quant"           # default: the last of fit, norm, quant written
tiff = true
csv = true
"""
