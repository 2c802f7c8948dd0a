"""xrfdask: X-ray fluorescence hyperspectral maps larger than memory, as dask-backed xarray objects.

>>> import xrfdask as xd
>>> ds = xd.open_geopixe("map.GeoPIXE")          # doctest: +SKIP

See :func:`open_geopixe`, :func:`to_geopixe`, :func:`index_geopixe`, :func:`connect` and the
example map in :mod:`xrfdask.datasets`.
"""

from __future__ import annotations

import importlib
from typing import Any

import xrfdask.accessor  # noqa: F401  (registers ds.xrf and da.xrf)
import xrfdask.options  # noqa: F401  (registers the xrfdask.* dask settings)
from xrfdask.classify import classify  # binds the function over its module's name
from xrfdask.errors import (
    ConfigError,
    FormatError,
    TruncatedMapWarning,
    XrfdaskError,
    XrfdaskWarning,
)
from xrfdask.fit import fit, make_fit_config
from xrfdask.io.beamlines.id15 import convert_id15
from xrfdask.io.beamlines.p06 import convert_p06
from xrfdask.io.export import to_csv, to_tiff
from xrfdask.io.geopixe import index_geopixe, open_geopixe
from xrfdask.io.geopixe.writer import to_geopixe
from xrfdask.io.h5layout import FileLockedError, open_h5, open_zarr, to_h5, to_zarr
from xrfdask.io.npy import to_npy
from xrfdask.normalise import normalise  # binds the function over its module's name
from xrfdask.quantify import div_by_cnc, quantify
from xrfdask.regrid import parse_scan_command, regrid
from xrfdask.runtime import connect, progress

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FileLockedError",
    "FormatError",
    "TruncatedMapWarning",
    "XrfdaskError",
    "XrfdaskWarning",
    "__version__",
    "classify",
    "colour_map",
    "connect",
    "convert_id15",
    "convert_p06",
    "datasets",
    "deadtime_stats",
    "detection_limit_maps",
    "detection_limits",
    "div_by_cnc",
    "fill_deadtime",
    "fit",
    "index_geopixe",
    "open_geopixe",
    "open_h5",
    "make_fit_config",
    "normalise",
    "open_zarr",
    "parse_scan_command",
    "predict_deadtime",
    "plot",
    "process",
    "progress",
    "quantify",
    "read_cnc",
    "regrid",
    "testing",
    "to_csv",
    "to_geopixe",
    "to_h5",
    "to_npy",
    "to_tiff",
    "to_zarr",
    "tomo",
]

_LAZY_MODULES = {"datasets", "plot", "testing", "tomo"}  # imported on first use (xraylib, ...)
#: Functions of modules that import xraylib or PyMca: loaded on first use, so ``import xrfdask``
#: stays light.
_LAZY_FUNCTIONS = {
    "colour_map": "xrfdask.colour",
    "deadtime_stats": "xrfdask.deadtime",
    "fill_deadtime": "xrfdask.deadtime",
    "process": "xrfdask.pipeline",
    "predict_deadtime": "xrfdask.deadtime",
    "detection_limit_maps": "xrfdask.detlim",
    "detection_limits": "xrfdask.detlim",
    "read_cnc": "xrfdask.io.cnc",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"xrfdask.{name}")
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(_LAZY_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'xrfdask' has no attribute {name!r}")
