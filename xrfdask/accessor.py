"""``ds.xrf`` and ``da.xrf``: the public functions as methods, one-line delegations only.

>>> import xrfdask as xd
>>> fit = ds.xrf.fit(config)                      # doctest: +SKIP  (xd.fit(ds, config))
>>> nrm = ds.xrf.normalise(fit)                   # doctest: +SKIP  (xd.normalise(ds, fit))
>>> nrm.xrf.to_tiff("maps/")                      # doctest: +SKIP  (xd.to_tiff(nrm, "maps/"))
>>> nrm.xrf.plot.element_maps("maps.png")         # doctest: +SKIP  (xd.plot.element_maps(nrm, ...))

``obj.xrf.<name>(*args, **kwargs)`` is ``xrfdask.<name>(obj, *args, **kwargs)`` (through
``obj.pipe``), and ``obj.xrf.plot.<name>(...)`` is ``xrfdask.plot.<name>(obj, ...)`` for every
name of ``xrfdask.plot.__all__``, resolved when used, so plots added later need no change here.
Nothing is imported until a method is used: ``import xrfdask`` stays light. Each method carries
its function's docstring and signature (without the first parameter), looked up on first access.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

import xarray as xr

__all__ = ["DATAARRAY_METHODS", "DATASET_METHODS", "XrfDataArrayAccessor", "XrfDatasetAccessor"]

#: The public functions of :mod:`xrfdask` that take a Dataset first, as ``ds.xrf.<name>``.
DATASET_METHODS = (
    "fit", "make_fit_config", "normalise", "regrid", "quantify", "detection_limits",
    "detection_limit_maps", "div_by_cnc", "classify", "colour_map", "deadtime_stats",
    "predict_deadtime", "fill_deadtime", "to_h5", "to_zarr", "to_geopixe", "to_tiff", "to_csv",
)  # fmt: skip
#: The public functions of :mod:`xrfdask` that take a DataArray first, as ``da.xrf.<name>``.
DATAARRAY_METHODS = ("classify", "regrid", "to_npy", "to_tiff", "to_csv")


def _function(name: str, module: str = "xrfdask") -> Any:
    """``<module>.<name>``, imported on first use."""
    return getattr(importlib.import_module(module), name)


def _bound(obj: xr.Dataset | xr.DataArray, function: Any) -> Any:
    """``function`` with ``obj`` as its first argument: its docstring, its other parameters."""

    @functools.wraps(function)
    def method(*args: Any, **kwargs: Any) -> Any:
        return obj.pipe(function, *args, **kwargs)

    try:
        signature = inspect.signature(function)
        rest = list(signature.parameters.values())[1:]  # eager-ok: a dict, not data
        method.__signature__ = signature.replace(parameters=rest)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        pass
    return method


class _Delegate:
    """A method ``obj.xrf.<name>(...)`` that calls ``xrfdask.<name>(obj, ...)``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"``obj.xrf.{name}(...)`` is :func:`xrfdask.{name}` ``(obj, ...)``."

    def __get__(self, accessor: Any, owner: type | None = None) -> Any:
        if accessor is None:
            return self
        return _bound(accessor._obj, _function(self.name))


class PlotAccessor:
    """``obj.xrf.plot.<name>(...)`` is ``xrfdask.plot.<name>(obj, ...)``, any of its ``__all__``."""

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in _plot_names():
            raise AttributeError(f"xrfdask.plot has no plot {name!r}; it has {_plot_names()}")
        return _bound(self._obj, _function(name, "xrfdask.plot"))

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_plot_names()})


def _plot_names() -> list[str]:
    return list(importlib.import_module("xrfdask.plot").__all__)


class _Accessor:
    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    @property
    def plot(self) -> PlotAccessor:
        """``obj.xrf.plot.<name>(...)`` is ``xrfdask.plot.<name>(obj, ...)``."""
        return PlotAccessor(self._obj)


def _accessor_class(name: str, methods: tuple[str, ...], what: str) -> type:
    namespace = {"__doc__": f"xrfdask's functions as methods of a {what} (``obj.xrf``)."}
    namespace.update({method: _Delegate() for method in methods})
    return type(name, (_Accessor,), namespace)


XrfDatasetAccessor = xr.register_dataset_accessor("xrf")(
    _accessor_class("XrfDatasetAccessor", DATASET_METHODS, "Dataset")
)
XrfDataArrayAccessor = xr.register_dataarray_accessor("xrf")(
    _accessor_class("XrfDataArrayAccessor", DATAARRAY_METHODS, "DataArray")
)
