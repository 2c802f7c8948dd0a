"""The fit engines :func:`xrfdask.fit` dispatches to, by ``method=`` name.

- ``"linear"``: xrfdask's engine (:mod:`.linear`), the compiled SNIP and a fixed projection;
- ``"pymca"``: PyMca's ``FastXRFLinearFit`` steps per block (:mod:`.pymca`);
- ``"full"``: PyMca's per-pixel nonlinear fit (:mod:`.full`).

A new engine (a GPU one, say) is one module: a subclass of :class:`~.base.Engine` (or of
:class:`~.blocks.SolveEngine`, which only needs a per-block solve), registered with
:func:`register`, here for a built-in engine or by the module that defines it.
"""

from __future__ import annotations

from xrfdask.errors import ConfigError
from xrfdask.fit.engines.base import Engine
from xrfdask.fit.engines.full import FullEngine
from xrfdask.fit.engines.linear import LinearEngine
from xrfdask.fit.engines.pymca import PymcaEngine

__all__ = ["METHODS", "Engine", "get", "methods", "register"]

_ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Make ``engine`` available as ``fit(..., method=engine.name)``; returns it.

    Raises
    ------
    ValueError
        Another engine is registered under that name.
    """
    known = _ENGINES.get(engine.name)
    if known is not None and known is not engine:
        raise ValueError(
            f"a fit engine named {engine.name!r} is already registered ({type(known).__name__})"
        )
    _ENGINES[engine.name] = engine
    return engine


def methods() -> tuple[str, ...]:
    """The names of the registered engines, in registration order."""
    return tuple(_ENGINES)


def get(method: str) -> Engine:
    """The engine registered as ``method``.

    Raises
    ------
    ConfigError
        No engine has that name (the message lists those that exist).
    """
    engine = _ENGINES.get(method) if isinstance(method, str) else None
    if engine is None:
        raise ConfigError(f"method={method!r}: expected one of {', '.join(_ENGINES)}")
    return engine


for _engine in (LinearEngine(), PymcaEngine(), FullEngine()):
    register(_engine)

#: The built-in methods, ``("linear", "pymca", "full")`` (:func:`methods` also lists engines
#: registered later).
METHODS: tuple[str, ...] = methods()
