"""Fitting spectra to peak-area maps, chunk by chunk, with results independent of the chunking.

:func:`fit` runs xrfdask's linear engine (``"linear"``), PyMca's fast fit (``"pymca"``) or PyMca's
per-pixel nonlinear fit (``"full"``) on any dask scheduler, through the registry of
:mod:`xrfdask.fit.engines`; :func:`make_fit_config` builds a PyMca configuration from an element
list and the map's own metadata.
"""

from xrfdask.fit.api import METHODS, fit
from xrfdask.fit.config import (
    config_from_text,
    config_to_text,
    load_config,
    make_fit_config,
    validate_config,
)

__all__ = [
    "METHODS",
    "config_from_text",
    "config_to_text",
    "fit",
    "load_config",
    "make_fit_config",
    "validate_config",
]
