"""Read, validate and generate PyMca fit configurations.

A fit configuration is PyMca's ``ClassMcaTheory`` dictionary: sections (``fit``, ``detector``,
``peaks``, ``attenuators``, ``materials``, ...) of keys, stored on disk as the ``.cfg`` INI text of
:class:`PyMca5.PyMcaIO.ConfigDict.ConfigDict` (what xrf_proc keeps in ``fit/channelXX/cfg``).

- :func:`load_config` completes a file, ``ConfigDict`` or dict with PyMca's bundled defaults.
- :func:`validate_config` checks it against a spectrum length and a fit method before any
  computation, so a bad key fails in a second with a :class:`~xrfdask.errors.ConfigError` naming
  it (``"fit.xmin"``, ``"peaks.Xx"``), not after an hour of fitting.
- :func:`make_fit_config` writes a sensible configuration for a raw map and a list of elements:
  calibration from the ``energy`` coordinate, excitation from the tube, shells, fit range and
  SNIP width from the detector resolution.
- :func:`config_to_text` and :func:`config_from_text` convert to and from the ``.cfg`` text.

Configurations returned here are plain nested ``dict``/``list`` values (JSON-serialisable);
``"None"`` strings read from ``.cfg`` text become ``None``.
"""

from __future__ import annotations

from xrfdask.fit.config.generate import make_fit_config
from xrfdask.fit.config.text import config_from_text, config_to_text, load_config, pymca_defaults
from xrfdask.fit.config.validate import METHODS, validate_config
from xrfdask.physics import SHELLS

__all__ = [
    "load_config",
    "validate_config",
    "make_fit_config",
    "config_to_text",
    "config_from_text",
    "pymca_defaults",
    "METHODS",
    "SHELLS",
]
