"""The ``.cfg`` text of PyMca fit configurations: read, completed with PyMca's defaults, written.

A configuration is PyMca's ``ClassMcaTheory`` dictionary, stored as the INI text of
:class:`PyMca5.PyMcaIO.ConfigDict.ConfigDict`. Values returned here are plain nested ``dict`` and
``list`` values (JSON-serialisable); ``"None"`` strings become ``None``.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from xrfdask.errors import ConfigError

__all__ = ["load_config", "config_to_text", "config_from_text", "pymca_defaults"]


@functools.lru_cache(maxsize=1)
def _defaults_json() -> str:
    # PyMca's defaults: the bundled McaTheory.cfg completed by McaTheory's own configure step.
    # Cached as text so each caller gets a fresh, independent copy.
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

    return json.dumps(_plain(ClassMcaTheory.McaTheory().getConfiguration()))


def pymca_defaults() -> dict[str, Any]:
    """PyMca's default configuration (``McaTheory().getConfiguration()``), as plain dicts."""
    return json.loads(_defaults_json())


def _plain(value: Any) -> Any:
    """Nested plain Python values: dicts, lists, numbers, strings, None ("None" -> None)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value == "None":
        return None
    return value


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Update ``base`` section by section: keys of a section are replaced, others kept."""
    for section, values in update.items():
        if isinstance(values, Mapping) and isinstance(base.get(section), dict):
            base[section].update(copy.deepcopy(_plain(values)))
        else:
            base[section] = copy.deepcopy(_plain(values))
    return base


def _read_cfg_file(path: str) -> dict[str, Any]:
    from PyMca5.PyMcaIO.ConfigDict import ConfigDict

    name = path.split("::")[0]
    if not os.path.isfile(name):
        raise ConfigError(f"{path}: configuration file not found")
    cfg = ConfigDict()
    try:
        cfg.read(path)
    except Exception as exc:  # configparser errors, IOError, h5py errors: all mean unreadable
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not a readable PyMca .cfg file ({detail})") from None
    if not cfg:
        raise ConfigError(f"{path}: no configuration section in the file")
    return _plain(cfg)


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """A complete PyMca fit configuration from a file, a ``ConfigDict`` or a dict.

    Parameters
    ----------
    config : str, path-like, ConfigDict or dict
        A PyMca ``.cfg`` file (also ``"file.h5::/path"``, a cfg stored in HDF5, as PyMca reads
        it), or a configuration dictionary, possibly partial (``{"fit": {"xmin": 100}}``).

    Returns
    -------
    dict
        PyMca's defaults (the bundled ``McaTheory.cfg`` as ``McaTheory().getConfiguration()``
        returns it) updated section by section with ``config``: keys given in a section replace
        the default ones, other keys keep their defaults (so a partial dict is complete).
        Plain nested dicts and lists; ``"None"`` strings become ``None``. Not validated: see
        :func:`validate_config`.

    Raises
    ------
    ConfigError
        A missing or unreadable file (the message names it), or a value that is not a
        configuration.

    Examples
    --------
    >>> cfg = load_config({"fit": {"snipwidth": 40}})
    >>> cfg["fit"]["snipwidth"], cfg["fit"]["stripiterations"]
    (40, 20000)
    """
    if isinstance(config, str | os.PathLike):
        given = _read_cfg_file(os.fspath(config))
    elif isinstance(config, Mapping):
        given = _plain(config)
    else:
        raise ConfigError(
            f"config: expected a .cfg path, a ConfigDict or a dict, got {type(config).__name__}"
        )
    for section, values in given.items():
        if not isinstance(values, dict):
            raise ConfigError(
                f"{section}: expected a configuration section (a dict), got {values!r}"
            )
    return _merge(pymca_defaults(), given)


def _for_writer(value: Any) -> Any:
    """A value ConfigDict writes so that reading it back gives the same value."""
    if isinstance(value, Mapping):
        return {str(k): _for_writer(v) for k, v in value.items()}
    value = _plain(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        items = [_for_writer(v) for v in value]
        if len(items) == 1 and not isinstance(items[0], list):
            # ConfigDict writes a one-item list as a scalar; a trailing comma reads as a list.
            return f"{items[0]},"
        return items
    return value


def config_to_text(config: Mapping[str, Any]) -> str:
    """The ``.cfg`` INI text of a configuration (PyMca's ``ConfigDict`` writer).

    Parameters
    ----------
    config : dict or ConfigDict
        Sections of keys, as :func:`load_config` returns.

    Returns
    -------
    str
        The text PyMca reads (``ConfigDict.read``, ``FastXRFLinearFit.setFitConfigurationFile``)
        and xrf_proc stores in ``fit/channelXX/cfg``. One-item lists are written with a trailing
        comma so they read back as lists; booleans are written as 0/1.

    Raises
    ------
    ConfigError
        If a top-level value is not a section.
    """
    from PyMca5.PyMcaIO.ConfigDict import ConfigDict

    if not isinstance(config, Mapping):
        raise ConfigError(f"config: expected a dict of sections, got {type(config).__name__}")
    for section, values in config.items():
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{section}: expected a configuration section (a dict), got {values!r}"
            )
    return ConfigDict(initdict=_for_writer(config)).tostring()


def config_from_text(text: str) -> dict[str, Any]:
    """Parse ``.cfg`` INI text (as :func:`config_to_text` writes it) into a configuration.

    Parameters
    ----------
    text : str
        The content of a PyMca ``.cfg`` file.

    Returns
    -------
    dict
        Only the sections of the text (not completed with defaults: see :func:`load_config`),
        with ``"None"`` strings as ``None``.

    Raises
    ------
    ConfigError
        If the text is not INI text.
    """
    from PyMca5.PyMcaIO.ConfigDict import ConfigDict

    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise ConfigError(f"config text: expected a string, got {type(text).__name__}")
    cfg = ConfigDict()
    try:
        cfg.readfp(io.StringIO(text))
    except Exception as exc:  # configparser.Error and friends
        detail = " ".join(str(exc).split())
        raise ConfigError(f"config text: not PyMca .cfg text ({detail})") from None
    return _plain(cfg)
