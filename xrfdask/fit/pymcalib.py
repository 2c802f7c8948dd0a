"""PyMca as the fit uses it: one lock, configured objects cached per process, one-spectrum fits.

Configuring PyMca (escape ratios, fluorescence rates) is most of its set-up time, and its fit
objects keep state in the instance and in module-level element tables. So every module of the
fit goes through here: :data:`PYMCA_LOCK` around each use, :func:`config_key` as the hashable,
picklable form of a configuration, :func:`fast_fit` (a configured ``FastXRFLinearFit``, for the
linear model) and :func:`theory` (a configured ``McaTheory``, for the full fits), each cached
per process and configuration.

PyMca is imported on first use, not with :mod:`xrfdask`: opening and converting maps do not
need it.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

import numpy as np

__all__ = [
    "PYMCA_LOCK",
    "config_key",
    "fast_fit",
    "theory",
    "fit_spectrum",
    "fit_sum_spectrum",
    "line_label",
]

# McaTheory keeps fit state in the instance and configuring it touches PyMca's module-level
# element tables: one fit at a time per process (the fit holds the GIL anyway; for parallel
# full fits, use process workers).
PYMCA_LOCK = threading.RLock()


_SCATTER_NAMES = {"Scatter Peak": "Rayl", "Scatter Compton": "Compt"}


def line_label(name: str) -> str:
    """PyMca parameter name -> the layout's line name (``Scatter Peak000`` -> ``Rayl``)."""
    for prefix, short in _SCATTER_NAMES.items():
        if name.startswith(prefix):
            index = name[len(prefix) :]
            return short if index == "000" else f"{short}{index}"
    return name


def config_key(config: dict) -> str:
    """A hashable, picklable form of a configuration (for the per-process caches)."""
    return json.dumps(
        config, sort_keys=True, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)
    )


@functools.lru_cache(maxsize=8)
def fast_fit(key: str, weight: int | None, npixels: int) -> tuple[Any, dict, int, int]:
    """A configured ``FastXRFLinearFit`` per configuration and weighting, in this process.

    Returns ``(fast, used configuration, lstsq weight, weight policy)`` as PyMca's
    ``_fitConfigure`` decides them. The detectors of a map, and later fits with the same
    settings, share it. Call with :data:`PYMCA_LOCK` held.
    """
    from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

    fast = FastXRFLinearFit()
    fast.setFitConfiguration(json.loads(key))
    _, used, lstsq_weight, policy, _, _ = fast._fitConfigure(weight=weight, nSpectra=npixels)
    return fast, used, lstsq_weight, policy


@functools.lru_cache(maxsize=8)
def theory(config_json: str):
    """One configured ``McaTheory`` per process and configuration (configuring is slow).

    Honours ``xmin``/``xmax`` (``use_limit`` 1), as xrf_proc does. Call with
    :data:`PYMCA_LOCK` held.
    """
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

    configured = ClassMcaTheory.McaTheory()
    config = json.loads(config_json)
    config["fit"]["use_limit"] = 1
    configured.setConfiguration(config)
    return configured


def fit_spectrum(configured, x: np.ndarray, y: np.ndarray, xmin: int, xmax: int) -> dict[str, Any]:
    """``McaTheory`` setData / estimate / startfit on one spectrum: PyMca's digested result.

    Floating-point warnings inside PyMca are silenced (a degenerate model, e.g. a parameter
    bounded to a range of 1e-300, makes its optimiser take sin(inf)): callers judge the result,
    whose areas are then not finite.
    """
    with np.errstate(all="ignore"):
        configured.setData(x=x, y=y, xmin=xmin, xmax=xmax)
        configured.estimate()
        _, result = configured.startfit(digest=1)
    return result


def fit_with_config(config: dict, counts: np.ndarray) -> dict[str, Any]:
    """PyMca's full fit of one spectrum over the configuration's fit range, with the process's
    configured ``McaTheory`` for ``config`` (under PyMca's lock): the digested result."""
    y = np.asarray(counts, dtype=np.float64)
    with PYMCA_LOCK:
        configured = theory(config_key(config))
        xmin, xmax = int(configured.config["fit"]["xmin"]), int(configured.config["fit"]["xmax"])
        return fit_spectrum(configured, np.arange(y.size, dtype=np.float64), y, xmin, xmax)


def fit_sum_spectrum(
    config: dict, sum_spectrum: np.ndarray
) -> dict[str, tuple[float, float, float]]:
    """Full fit of a sum spectrum: per line (area, uncertainty, background in the 3-sigma windows).

    The background is PyMca's ``statistics - fitarea`` (spec xrf_proc.md 3.4), the I_b that
    detection limits use. Uses the process's configured theory for this configuration.
    """
    result = fit_with_config(config, sum_spectrum)
    return {
        line_label(g): (
            float(result[g]["fitarea"]),
            float(result[g]["sigmaarea"]),
            float(result[g]["statistics"] - result[g]["fitarea"]),
        )
        for g in result["groups"]
    }
