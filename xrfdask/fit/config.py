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

import copy
import functools
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xraylib

from xrfdask.errors import ConfigError

__all__ = [
    "load_config",
    "validate_config",
    "make_fit_config",
    "config_to_text",
    "config_from_text",
    "METHODS",
    "SHELLS",
]

#: Fit methods known to :func:`validate_config` (see :func:`xrfdask.fit`).
METHODS: tuple[str, ...] = ("linear", "pymca", "full")
#: Shell groups PyMca accepts in ``[peaks]`` (an element offers those of its ``rays`` only).
SHELLS: tuple[str, ...] = (
    "K", "Ka", "Kb", "L", "L1", "L2", "L3", "M", "M1", "M2", "M3", "M4", "M5",
)  # fmt: skip

# Groups that contain each other: fitting both would count the same lines twice.
_SUBSHELLS = {"K": ("Ka", "Kb"), "L": ("L1", "L2", "L3"), "M": ("M1", "M2", "M3", "M4", "M5")}
# The absorption edge that must lie below the excitation energy for a group to be excited (the
# lowest one for composite groups).
_EDGE = {
    "K": "K", "Ka": "K", "Kb": "K", "L": "L3", "L1": "L1", "L2": "L2", "L3": "L3",
    "M": "M5", "M1": "M1", "M2": "M2", "M3": "M3", "M4": "M4", "M5": "M5",
}  # fmt: skip

_FIT_INTS = ("xmin", "xmax", "snipwidth", "stripfilterwidth", "stripwidth", "stripiterations",
             "linpolorder", "exppolorder", "maxiter")  # fmt: skip
_FIT_FLAGS = ("use_limit", "stripflag", "escapeflag", "sumflag", "scatterflag", "linearfitflag",
              "stripanchorsflag", "strategyflag")  # fmt: skip
_DETECTOR_NUMBERS = ("zero", "gain", "noise", "fano", "sum")
_DETECTOR_FLAGS = ("fixedzero", "fixedgain", "fixednoise", "fixedfano", "fixedsum")

_EV_PER_PAIR_KEV = 0.00385  # PyMca's energy per electron-hole pair in Si (keV)
_FWHM_PER_SIGMA = 2.3548

# make_fit_config defaults (why: see the docstring and the module tests).
_FIT_START_KEV = 1.0  # below ~1 keV the detector window and discriminator make the data useless
_START_MARGIN_KEV = 0.5  # room below the lowest line for its low-energy side and the background
_END_FWHM = 3.0  # the range ends this many FWHM above the highest Rayleigh peak
_SNIP_FWHM = 1.6  # SNIP width in FWHM at mid-range: 30 channels for 10 eV channels, as PyMca's
# Thin SiO2 matrix (rho*t = 0.265 mg/cm²): PyMca needs a matrix for several excitation energies;
# this thin one barely changes line ratios (a thin-sample approximation).
_THIN_MATRIX = ("Si1O2", 2.65, 1.0e-4)
_LINE_FRACTION = 0.01  # lines weaker than this share of their group's strongest are ignored


# ---------------------------------------------------------------------------------------------
# Reading and writing


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


# ---------------------------------------------------------------------------------------------
# Validation


def _fail(key: str, message: str) -> None:
    raise ConfigError(f"{key}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_int(key: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not _is_number(value) or float(value) != int(value):
        _fail(key, f"expected an integer, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        _fail(key, f"expected an integer >= {minimum}, got {out}")
    return out


def _as_float(
    key: str, value: Any, *, minimum: float | None = None, positive: bool = False
) -> float:
    if not _is_number(value):
        _fail(key, f"expected a number, got {value!r}")
    out = float(value)
    if positive and out <= 0:
        _fail(key, f"expected a positive number, got {out:g}")
    if minimum is not None and out < minimum:
        _fail(key, f"expected a number >= {minimum:g}, got {out:g}")
    return out


def _as_flag(key: str, value: Any, allowed: Sequence[int] = (0, 1)) -> int:
    if isinstance(value, bool):
        value = int(value)
    if not _is_number(value) or float(value) != int(value) or int(value) not in allowed:
        choices = "/".join(str(a) for a in allowed)
        _fail(key, f"expected {choices}, got {value!r}")
    return int(value)


def _section(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    section = cfg.get(name)
    if not isinstance(section, dict):
        _fail(name, f"expected a configuration section, got {section!r}")
    return section


def _symbol(name: Any) -> str | None:
    """The canonical element symbol of ``name`` ("FE" -> "Fe"), or None if it is no element."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 2:
        return None
    sym = name.strip()
    sym = sym[0].upper() + sym[1:].lower()
    try:
        z = xraylib.SymbolToAtomicNumber(sym)
    except ValueError:
        return None
    return sym if z > 0 and sym in _pymca_elements() else None


@functools.lru_cache(maxsize=1)
def _pymca_elements() -> frozenset[str]:
    from PyMca5.PyMcaPhysics.xrf import Elements

    return frozenset(Elements.ElementList)


@functools.lru_cache(maxsize=256)
def _pymca_shells(symbol: str) -> tuple[str, ...]:
    # The groups PyMca can build for this element ("K xrays" -> "K").
    from PyMca5.PyMcaPhysics.xrf import Elements

    return tuple(r[: -len(" xrays")] for r in Elements.Element[symbol]["rays"])


@functools.lru_cache(maxsize=1)
def _iupac_lines() -> tuple[tuple[str, str, int], ...]:
    """Every single xraylib line macro as (initial level, final level, macro): KL3 -> K, L3."""
    pattern = re.compile(r"^(K|L[1-3]|M[1-5])([K-Q][1-7])_LINE$")
    out = []
    for name in dir(xraylib):
        m = pattern.match(name)
        if m:
            out.append((m.group(1), m.group(2), getattr(xraylib, name)))
    return tuple(out)


def _group_levels(shell: str) -> tuple[str, ...]:
    if shell == "K":
        return ("K",)
    if shell in ("L", "M"):
        return tuple(f"{shell}{i}" for i in range(1, 4 if shell == "L" else 6))
    return (shell,) if shell not in ("Ka", "Kb") else ("K",)


@functools.lru_cache(maxsize=1024)
def _group_lines(z: int, shell: str, excitation: tuple[tuple[float, float], ...]) -> tuple:
    """(energy keV, relative intensity) of the significant lines of a group under excitation."""
    levels = _group_levels(shell)
    lines = []
    for level, final, macro in _iupac_lines():
        if level not in levels:
            continue
        if (shell == "Ka" and final[0] != "L") or (shell == "Kb" and final[0] == "L"):
            continue  # Kα: K-L transitions; Kβ: K-M, K-N...
        try:
            energy = xraylib.LineEnergy(z, macro)
        except ValueError:  # no such line for this element
            continue
        rate = 0.0
        for e, w in excitation:
            try:
                rate += w * xraylib.CS_FluorLine_Kissel_Cascade(z, macro, e)
            except ValueError:  # xraylib raises below the edge
                pass
        if energy > 0 and rate > 0:
            lines.append((energy, rate))
    if not lines:
        return ()
    top = max(r for _, r in lines)
    return tuple((e, r / top) for e, r in lines if r >= _LINE_FRACTION * top)


def _edge_energy(z: int, shell: str) -> float:
    try:
        return xraylib.EdgeEnergy(z, getattr(xraylib, f"{_EDGE[shell]}_SHELL"))
    except ValueError:
        return math.inf


def _fwhm(energy: float, noise: float, fano: float) -> float:
    """PyMca's detector resolution (keV): FWHM² = noise² + 2.3548² fano ε E."""
    return math.sqrt(noise**2 + _FWHM_PER_SIGMA**2 * fano * _EV_PER_PAIR_KEV * max(energy, 0.0))


def _check_fit(fit: dict[str, Any]) -> None:
    for key in _FIT_INTS:
        if key in fit:
            minimum = 1 if key in ("snipwidth", "stripfilterwidth", "stripwidth") else 0
            fit[key] = _as_int(f"fit.{key}", fit[key], minimum=minimum)
    for key in _FIT_FLAGS:
        if key in fit:
            fit[key] = _as_flag(f"fit.{key}", fit[key])
    fit["use_limit"] = 1  # xmin/xmax are always honoured (as xrf_proc does)
    fit["stripalgorithm"] = _as_flag("fit.stripalgorithm", fit.get("stripalgorithm", 0))
    fit["fitweight"] = _as_flag("fit.fitweight", fit.get("fitweight", 0), (0, 1, 2))
    fit["hypermetflag"] = _as_flag("fit.hypermetflag", fit.get("hypermetflag", 1), tuple(range(16)))
    fit["continuum"] = _as_flag("fit.continuum", fit.get("continuum", 0), tuple(range(6)))
    if fit.get("fitfunction") is not None:
        fit["fitfunction"] = _as_flag("fit.fitfunction", fit["fitfunction"])
    for key in ("deltachi", "deltaonepeak", "stripconstant"):
        if key in fit:
            fit[key] = _as_float(f"fit.{key}", fit[key], minimum=0.0)
    if fit.get("stripanchorsflag"):
        anchors = fit.get("stripanchorslist", [])
        anchors = anchors if isinstance(anchors, list) else [anchors]
        fit["stripanchorslist"] = [_as_int("fit.stripanchorslist", a, minimum=0) for a in anchors]


def _check_energies(cfg: dict[str, Any]) -> list[tuple[float, float]]:
    """Normalise fit.energy & co. to lists; return the enabled (energy, weight) pairs."""
    fit = cfg["fit"]
    energy = fit.get("energy")
    if energy is None or energy == "":
        _fail("fit.energy", "no positive excitation energy (energy = None)")
    if not isinstance(energy, list):
        # A scalar energy: PyMca discards the companion lists and uses one line of weight 1.
        energy = [energy]
        fit["energyweight"], fit["energyflag"], fit["energyscatter"] = [1.0], [1], [1]
    n = len(energy)
    companions = {}
    for key, default in (("energyweight", 1.0), ("energyflag", 1), ("energyscatter", 1)):
        values = fit.get(key, [default] * n)
        values = values if isinstance(values, list) else [values]
        if len(values) < n:
            _fail(f"fit.{key}", f"{len(values)} values for {n} excitation energies")
        companions[key] = values
    energies, weights, flags, scatters = [], [], [], []
    enabled = []
    for i, e in enumerate(energy):
        flag = _as_flag(f"fit.energyflag[{i}]", companions["energyflag"][i])
        scatter = _as_flag(f"fit.energyscatter[{i}]", companions["energyscatter"][i])
        weight = companions["energyweight"][i]
        if e is not None:
            e = _as_float(f"fit.energy[{i}]", e, positive=True)
            weight = _as_float(f"fit.energyweight[{i}]", weight, minimum=0.0)
            if flag:
                enabled.append((e, weight))
        energies.append(e)
        weights.append(weight)
        flags.append(flag)
        scatters.append(scatter)
    if not enabled:
        shown = ", ".join(str(e) for e in energy[:4]) + (", ..." if n > 4 else "")
        _fail("fit.energy", f"no positive excitation energy enabled (energy = {shown})")
    if sum(w for _, w in enabled) <= 0:
        _fail("fit.energyweight", "the enabled excitation energies all have weight 0")
    fit["energy"], fit["energyweight"] = energies, weights
    fit["energyflag"], fit["energyscatter"] = flags, scatters
    return enabled


def _check_detector(det: dict[str, Any], escape: bool) -> None:
    for key in _DETECTOR_NUMBERS:
        if key in det or key in ("zero", "gain", "noise", "fano"):
            det[key] = _as_float(f"detector.{key}", det.get(key))
    if det["gain"] <= 0:
        _fail("detector.gain", f"expected a positive gain (keV per channel), got {det['gain']:g}")
    for key in ("noise", "fano"):
        if det[key] < 0:
            _fail(f"detector.{key}", f"expected a number >= 0, got {det[key]:g}")
    for key in _DETECTOR_FLAGS:
        if key in det:
            det[key] = _as_flag(f"detector.{key}", det[key])
    if escape and _symbol(det.get("detele")) is None:
        detele = det.get("detele")
        _fail("detector.detele", f"expected the detector's element symbol, got {detele!r}")


def _check_material(cfg: dict[str, Any], key: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or name.strip() == "-":
        _fail(key, f"enabled without a material (got {name!r})")
    if name in cfg.get("materials", {}):
        return
    from PyMca5.PyMcaPhysics.xrf import Elements

    if name in Elements.Material.keys():
        return
    try:
        xraylib.CompoundParser(name)
    except ValueError:
        _fail(key, f"{name!r} is neither a chemical formula nor a material in [materials]")


def _check_attenuators(cfg: dict[str, Any], n_energies: int) -> None:
    attenuators = _section(cfg, "attenuators")
    for name, entry in attenuators.items():
        key = f"attenuators.{name}"
        if not isinstance(entry, list) or len(entry) < 4:
            _fail(key, f"expected [use, material, density, thickness, ...], got {entry!r}")
        entry[0] = _as_flag(key, entry[0])
        is_matrix = name.upper() == "MATRIX"
        if is_matrix and len(entry) >= 6:
            entry[4] = _as_float(f"{key} (incident angle)", entry[4])
            entry[5] = _as_float(f"{key} (outgoing angle)", entry[5])
            if len(entry) >= 8:
                entry[6] = _as_flag(f"{key} (scattering angle flag)", entry[6])
                entry[7] = _as_float(f"{key} (scattering angle)", entry[7])
        if not entry[0]:
            continue
        entry[2] = _as_float(f"{key} (density)", entry[2], minimum=0.0)
        entry[3] = _as_float(f"{key} (thickness)", entry[3], minimum=0.0)
        if is_matrix:
            if len(entry) < 6:
                _fail(
                    key,
                    "expected [use, material, density, thickness, alpha_in, alpha_out], "
                    f"got {entry!r}",
                )
            if str(entry[1]).upper() == "MULTILAYER":
                layers = cfg.get("multilayer") or {}
                used = [v for v in layers.values() if isinstance(v, list) and v and v[0]]  # eager-ok: dict
                if not used:
                    _fail(key, "MULTILAYER matrix without any layer in use in [multilayer]")
                continue
        elif len(entry) > 4:
            funny = _as_float(f"{key} (funny factor)", entry[4], minimum=0.0)
            if funny > 1.0:
                _fail(key, f"the open fraction (funny factor) must be within 0-1, got {funny:g}")
        _check_material(cfg, key, entry[1])
    if n_energies > 1:
        matrix = attenuators.get("Matrix")
        if not (isinstance(matrix, list) and matrix and matrix[0]):
            _fail(
                "attenuators.Matrix",
                f"{n_energies} excitation energies need a sample matrix in use (PyMca: "
                "'Multiple energies require a matrix definition'); set Matrix = 1, <formula>, ...",
            )


def _check_peaks(
    cfg: dict[str, Any], excitation: list[tuple[float, float]], energy_range: tuple[float, float]
) -> None:
    peaks = cfg.get("peaks")
    if not isinstance(peaks, dict):
        _fail("peaks", f"expected a section of element = shells, got {peaks!r}")
    if not peaks:
        _fail("peaks", "no element to fit (the [peaks] section is empty)")
    emax = max(e for e, _ in excitation)
    exc = tuple(excitation)
    lo, hi = energy_range
    normalized: dict[str, Any] = {}
    for name, value in peaks.items():
        sym = _symbol(name)
        if sym is None:
            _fail(f"peaks.{name}", f"{name!r} is not an element symbol")
        key = f"peaks.{sym}"
        if sym in normalized:
            _fail(key, "element given twice")
        shells = value if isinstance(value, list) else [value]
        if not shells or not all(isinstance(s, str) and s.strip() for s in shells):
            _fail(key, f"expected shells such as 'K' or ['L', 'M'], got {value!r}")
        shells = [s.strip() for s in shells]
        z = xraylib.SymbolToAtomicNumber(sym)
        offered = _pymca_shells(sym)
        for shell in shells:
            if shell not in SHELLS:
                _fail(key, f"unknown shell {shell!r}: expected one of {', '.join(SHELLS)}")
            if shell not in offered:
                have = ", ".join(offered) or "none"
                _fail(key, f"PyMca has no {shell} lines for {sym} (it offers {have})")
            if shells.count(shell) > 1:
                _fail(key, f"shell {shell!r} given twice")
            overlap = [s for s in _SUBSHELLS.get(shell, ()) if s in shells]
            if overlap:
                _fail(key, f"{shell!r} and {overlap[0]!r} overlap (the same lines counted twice)")
            edge = _edge_energy(z, shell)
            if edge >= emax:
                _fail(
                    key,
                    f"{sym} {shell} cannot be excited: its edge {edge:.3f} keV is above the "
                    f"highest excitation energy {emax:.3f} keV",
                )
            lines = _group_lines(z, shell, exc)
            if lines and not any(lo <= e <= hi for e, _ in lines):
                found = ", ".join(f"{e:.2f}" for e, _ in sorted(lines)[:4])
                _fail(
                    key,
                    f"no {sym} {shell} line ({found} keV) within the fit range "
                    f"{lo:.2f}-{hi:.2f} keV",
                )
        normalized[sym] = shells[0] if len(shells) == 1 else shells
    cfg["peaks"] = normalized


def validate_config(config: Any, *, nchan: int, method: str) -> dict[str, Any]:
    """Check a configuration for spectra of ``nchan`` channels and a fit method, up front.

    Only the configuration and ``nchan`` are looked at, so every error surfaces before any
    computation on the map.

    Parameters
    ----------
    config : dict, ConfigDict, str or path-like
        A configuration (completed with PyMca's defaults by :func:`load_config` first).
    nchan : int
        Number of channels of the spectra.
    method : {"linear", "pymca", "full"}
        ``"linear"`` (xrfdask's engine) and ``"pymca"`` (``FastXRFLinearFit``) need a SNIP
        background (or none) and no fit strategy; ``fitweight`` 2 (individual pixel weights)
        is for ``"pymca"`` and ``"full"`` only.

    Returns
    -------
    dict
        The normalised configuration: ``fit.use_limit`` 1, integers cast (``100.0`` -> 100),
        flags 0/1, ``fit.energy``/``energyweight``/``energyflag``/``energyscatter`` as lists of
        equal length, element symbols capitalised (``"FE"`` -> ``"Fe"``), one shell as a string
        and several as a list.

    Raises
    ------
    ConfigError
        Naming the key (``"fit.xmin"``, ``"peaks.Xx"``, ``"fit.stripalgorithm"``...): a wrong
        type, an unknown element or shell, no peaks, a fit range outside the spectrum (including
        spectra shorter than the configured range), no positive excitation energy, several
        excitation energies without a matrix, a shell that the excitation cannot excite or
        whose lines all lie outside the fit range, or an option the method does not support.
    """
    if method not in METHODS:
        raise ConfigError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(nchan, bool) or not isinstance(nchan, int | np.integer) or nchan < 2:
        raise ConfigError(f"nchan: expected the number of channels (>= 2), got {nchan!r}")
    nchan = int(nchan)
    cfg = load_config(config)
    fit = _section(cfg, "fit")
    det = _section(cfg, "detector")
    _check_fit(fit)

    # Fit range: channels of the spectra, inclusive as PyMca's setData uses them.
    for key in ("xmin", "xmax"):
        if key not in fit:
            _fail(f"fit.{key}", "missing")
    xmin, xmax = fit["xmin"], fit["xmax"]
    if xmin < 0:
        _fail("fit.xmin", f"negative channel {xmin}")
    if xmax >= nchan:
        _fail(
            "fit.xmax",
            f"channel {xmax} is beyond the spectra's last channel {nchan - 1} (the spectra have "
            f"{nchan} channels, shorter than the configured range {xmin}-{xmax})",
        )
    if xmin >= xmax:
        _fail("fit.xmin", f"xmin {xmin} is not below xmax {xmax}")

    if method in ("linear", "pymca"):
        if fit.get("stripflag") and fit["stripalgorithm"] != 1:
            _fail(
                "fit.stripalgorithm",
                f"method {method!r} needs the SNIP background (stripalgorithm = 1) when "
                f"stripflag = 1, got {fit['stripalgorithm']}",
            )
        if fit.get("strategyflag"):
            _fail("fit.strategyflag", f"fit strategies are not supported by method {method!r}")
    if method == "linear" and fit["fitweight"] == 2:
        _fail(
            "fit.fitweight",
            "individual pixel weights (2) are supported by methods 'pymca' and 'full' only",
        )

    _check_detector(det, bool(fit.get("escapeflag")))
    excitation = _check_energies(cfg)
    _check_attenuators(cfg, len(excitation))
    # A group is useful only if one of its lines lies in the fit range (with room for its width).
    zero, gain = det["zero"], det["gain"]
    e_lo, e_hi = zero + gain * xmin, zero + gain * xmax
    margin = 2 * _fwhm(e_hi, det["noise"], det["fano"])
    _check_peaks(cfg, excitation, (e_lo - margin, e_hi + margin))
    return cfg


# ---------------------------------------------------------------------------------------------
# Generation


def _calibration(ds: Any, detector: Mapping[str, Any], label: Any) -> tuple[float, float]:
    """(zero, gain) in keV: from ``detector`` if given, else a line through ``energy``."""
    if "zero" in detector and "gain" in detector:
        return (
            _as_float("detector.zero", detector["zero"]),
            _as_float("detector.gain", detector["gain"], positive=True),
        )
    if "energy" not in ds.coords and "energy" not in getattr(ds, "data_vars", {}):
        raise ConfigError(
            "energy: the map has no 'energy' coordinate; give the calibration as "
            "detector={'zero': ..., 'gain': ...} (keV, keV per channel)"
        )
    energy = ds["energy"]
    if "detector" in energy.dims:  # a per-detector calibration: the chosen detector's
        energy = energy.isel(detector=0) if label is None else energy.sel(detector=label)
    if energy.dims != ("channel",):
        raise ConfigError(f"energy: expected a coordinate on 'channel', got dims {energy.dims}")
    e = np.asarray(energy.values, dtype=float)
    if str(energy.attrs.get("units", "keV")).strip() == "eV":
        e = e / 1000.0
    channel = ds["channel"].values if "channel" in ds.coords else np.arange(e.size)
    channel = np.asarray(channel, dtype=float)
    ok = np.isfinite(e)
    if ok.sum() < 2:
        raise ConfigError("energy: fewer than two finite values: cannot derive the calibration")
    gain, zero = np.polyfit(channel[ok], e[ok], 1)
    if not gain > 0:
        raise ConfigError(f"energy: does not increase with channel (gain {gain:g} keV/channel)")
    # Round off the least-squares noise (8e-16 keV for an exact 0) so the .cfg text stays clean.
    return round(float(zero), 9), float(f"{gain:.12g}")


def _header(ds: Any) -> dict[str, Any]:
    header = ds.attrs.get("geopixe_header")
    if isinstance(header, bytes):
        header = header.decode("utf-8", "replace")
    if isinstance(header, str):
        try:
            header = json.loads(header)
        except ValueError:
            return {}
    return header if isinstance(header, dict) else {}


def _header_number(block: Mapping[str, Any], name: str) -> float | None:
    # Header keys carry units ("Scat (°)"): match on the name before the unit.
    for key, value in block.items():
        if str(key).split(" (")[0].strip() == name and _is_number(value):
            return float(value)
    return None


def _tube_lines(element: Any, kv: float | None) -> list[tuple[float, float]]:
    """Characteristic lines of the tube anode: K (Kα, Kβ) if ``kv`` excites them, else L."""
    sym = _symbol(element)
    if sym is None:
        raise ConfigError(f"tube_element: {element!r} is not an element symbol")
    z = xraylib.SymbolToAtomicNumber(sym)
    k_edge = xraylib.EdgeEnergy(z, xraylib.K_SHELL)
    if kv is None or kv > k_edge:
        # Kα and Kβ at their rate-weighted mean energies; weights from the radiative rates.
        pairs = [(xraylib.KA_LINE, xraylib.KA_LINE), (xraylib.KB_LINE, xraylib.KB_LINE)]
        lines = [(xraylib.LineEnergy(z, ln), xraylib.RadRate(z, rate)) for ln, rate in pairs]
    else:
        l3_edge = xraylib.EdgeEnergy(z, xraylib.L3_SHELL)
        if kv <= l3_edge:
            raise ConfigError(
                f"tube_kv: {kv:g} kV excites neither the K ({k_edge:.2f} keV) nor the L3 "
                f"({l3_edge:.2f} keV) edge of the {sym} anode; pass excitation_energy"
            )
        # L lines, weighted by their fluorescence cross sections at two thirds of the voltage
        # (a rough stand-in for the bremsstrahlung that excites them).
        e_exc = max(2.0 * kv / 3.0, 1.01 * l3_edge)
        lines = []
        for ln in (xraylib.LA_LINE, xraylib.LB_LINE):
            try:
                cs = xraylib.CS_FluorLine_Kissel_Cascade(z, ln, e_exc)
                lines.append((xraylib.LineEnergy(z, ln), cs))
            except ValueError:
                continue
    lines = [(e, w) for e, w in lines if e > 0 and w > 0 and (kv is None or e < kv)]
    if not lines:
        raise ConfigError(f"tube_element: no characteristic line of {sym} below {kv} kV")
    total = sum(w for _, w in lines)
    return [(e, w / total) for e, w in lines]


def _excitation(ds: Any, excitation_energy: Any) -> list[tuple[float, float]]:
    """Excitation lines (energy keV, weight), strongest first for PyMca's Scatter Peak000."""
    kv = ds.attrs.get("tube_kv")
    kv = float(kv) if _is_number(kv) and kv > 0 else None
    if excitation_energy is None:
        tube = ds.attrs.get("tube_element")
        if not tube:
            raise ConfigError(
                "excitation_energy: the map has no X-ray tube attributes (tube_element); pass "
                "excitation_energy=<keV> (a number, a list, or (energy, weight) pairs)"
            )
        lines = _tube_lines(tube, kv)
    else:
        items = excitation_energy
        if _is_number(items):
            items = [items]
        if isinstance(items, np.ndarray):
            items = items.tolist()
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise ConfigError(
                f"excitation_energy: expected keV as a number or a list, got {excitation_energy!r}"
            )
        lines = []
        for item in items:
            if isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
                e, w = item
            else:
                e, w = item, 1.0
            e = _as_float("excitation_energy", e, positive=True)
            w = _as_float("excitation_energy (weight)", w, positive=True)
            if kv is not None and e > kv:
                raise ConfigError(
                    f"excitation_energy: {e:g} keV is above the tube voltage {kv:g} kV"
                )
            lines.append((e, w))
        total = sum(w for _, w in lines)
        lines = [(e, w / total) for e, w in lines]
    return sorted(lines, key=lambda ew: -ew[1])


def _choose_shells(
    symbol: Any, excitation: list[tuple[float, float]], lo: float, hi: float
) -> list[str]:
    """K for light and medium elements; L, plus M when inside the range, for heavy ones."""
    sym = _symbol(symbol)
    if sym is None:
        raise ConfigError(f"elements: {symbol!r} is not an element symbol")
    z = xraylib.SymbolToAtomicNumber(sym)
    emax = max(e for e, _ in excitation)
    exc = tuple(excitation)
    offered = _pymca_shells(sym)

    def usable(shell: str) -> bool:
        if shell not in offered or _edge_energy(z, shell) >= emax:
            return False
        lines = _group_lines(z, shell, exc)
        if not lines:
            return False
        strongest = max(lines, key=lambda el: el[1])[0]
        return lo <= strongest <= hi

    if usable("K"):
        return ["K"]
    shells = [s for s in ("L", "M") if usable(s)]
    if not shells:
        raise ConfigError(
            f"elements: {sym} has no K, L or M line that {emax:.2f} keV excites within "
            f"{lo:.2f}-{hi:.2f} keV"
        )
    return shells


def _peak_line_energies(peaks: Mapping[str, Any], excitation: list[tuple[float, float]]) -> list:
    """Energies of the significant lines of every group in ``peaks`` (bad entries skipped:
    validation reports them)."""
    exc = tuple(excitation)
    out = []
    for sym, shells in peaks.items():
        for shell in shells if isinstance(shells, list) else [shells]:
            if isinstance(shell, str) and shell.strip() in SHELLS:
                z = xraylib.SymbolToAtomicNumber(sym)
                out.extend(e for e, _ in _group_lines(z, shell.strip(), exc))
    return out


def _matrix_entry(
    matrix: Any, needed: bool, angles: tuple[float, float, float | None]
) -> list[Any]:
    """PyMca's ``attenuators.Matrix`` entry; the scattering angle places the Compton peak."""
    alpha_in, alpha_out, scatter = angles
    angle = [1, scatter] if scatter is not None else [0, alpha_in + alpha_out]
    tail = [alpha_in, alpha_out] + angle
    if matrix is None:
        matrix = _THIN_MATRIX if needed else False
    if matrix is False:
        return [0, "MULTILAYER", 0.0, 0.0] + tail
    if isinstance(matrix, str):
        return [1, matrix, _THIN_MATRIX[1], _THIN_MATRIX[2]] + tail
    if isinstance(matrix, Sequence) and len(matrix) == 3:
        formula, density, thickness = matrix
        return [
            1,
            formula,
            _as_float("matrix (density)", density, positive=True),
            _as_float("matrix (thickness)", thickness, positive=True),
        ] + tail
    if isinstance(matrix, Sequence) and len(matrix) >= 6:
        return list(matrix)  # a full PyMca entry: taken as given, angles included
    raise ConfigError(
        "matrix: expected None, False, a formula, (formula, density g/cm³, thickness cm) or a "
        f"PyMca Matrix entry, got {matrix!r}"
    )


def _detector_attenuators(block: Mapping[str, Any]) -> tuple[dict[str, list[Any]], str | None]:
    """Crystal, dead layer and Be window from a GeoPIXE ``Detector`` block (efficiency)."""
    out: dict[str, list[Any]] = {}
    z = _header_number(block, "Elt")
    detele = None
    if z is not None and 1 <= z <= 98:
        detele = xraylib.AtomicNumberToSymbol(int(z))
        rho = xraylib.ElementDensity(int(z))
        thick_mm = _header_number(block, "Thick")
        if thick_mm:
            out["Detector"] = [1, f"{detele}1", rho, thick_mm / 10.0, 1.0]
        dead_um = _header_number(block, "DLThick")
        if dead_um:
            out["deadlayer"] = [1, f"{detele}1", rho, dead_um * 1e-4, 1.0]
    window_um = _header_number(block, "WThick")
    if _header_number(block, "Win") == 1 and window_um:  # 1: beryllium
        out["window"] = [1, "Be1", xraylib.ElementDensity(4), window_um * 1e-4, 1.0]
    return out, detele


def _detector_block(ds: Any, header: dict[str, Any], detector: Any) -> Mapping[str, Any]:
    blocks = header.get("Detector")
    if isinstance(blocks, Mapping):
        blocks = [blocks]
    if not isinstance(blocks, list) or not blocks:
        return {}
    if detector is None:
        return blocks[0] if isinstance(blocks[0], Mapping) else {}
    for block in blocks:
        if isinstance(block, Mapping) and block.get("Idx") == detector:
            return block
    labels = list(ds["detector"].values) if "detector" in ds.coords else []
    if detector in labels and labels.index(detector) < len(blocks):
        return blocks[labels.index(detector)]
    return {}


def make_fit_config(
    ds: Any,
    elements: Sequence[str] | Mapping[str, str | Sequence[str]] | str,
    *,
    detector: Any = None,
    excitation_energy: float | Sequence[float] | Sequence[tuple[float, float]] | None = None,
    fit_range: tuple[float, float] | None = None,
    snip_width: int | None = None,
    noise: float = 0.1,
    fano: float = 0.114,
    escape: bool = True,
    scatter: bool = True,
    matrix: Any = None,
    **overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """A sensible PyMca configuration for a raw map and a list of elements.

    Only coordinates and attributes of ``ds`` are read (never the spectra), so this is cheap on
    a lazy map.

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map (``channel`` dimension, ``energy`` coordinate in keV; GeoPIXE maps also have
        ``tube_element``, ``tube_kv`` and ``geopixe_header`` attributes).
    elements : sequence of str, or dict
        Element symbols; the shells are chosen: K when the excitation reaches the K edge and a
        K line falls in the fit range, otherwise L, plus M when its lines are in the range (Pb
        under a Mo tube: ``["L", "M"]``). A dict ``{"Pb": "L"}`` gives the shells explicitly.
    detector : label or dict, optional
        A label of the ``detector`` coordinate: its GeoPIXE ``Detector`` block gives the
        crystal, dead layer and window (detector efficiency, hence line ratios); None takes the
        first block. A dict updates the ``[detector]`` section instead (the ``detector``
        keyword cannot be an override): ``{"zero": 0.0, "gain": 0.01}`` supplies the
        calibration of a map without an ``energy`` coordinate.
    excitation_energy : float, list of float, or list of (energy, weight), optional
        Excitation line(s) in keV. Default: the tube anode's Kα and Kβ (xraylib mean energies,
        weights from the radiative rates; L lines when ``tube_kv`` is below the K edge).
        Required for maps without a tube (synchrotron h5 maps).
    fit_range : (float, float), optional
        (start, end) in keV. Default: from ``max(1 keV, lowest line - 0.5 keV)`` to 3 FWHM above
        the highest Rayleigh peak (or the highest line when ``scatter`` is False), within the
        spectrum.
    snip_width : int, optional
        SNIP width in channels. Default: 1.6 FWHM at mid-range (30 for 10 eV channels).
    noise, fano : float
        Detector electronic noise (FWHM, keV) and Fano factor, fixed in the fit.
    escape, scatter : bool
        Fit Si escape peaks (``escapeflag``, ``detele``) and the Rayleigh/Compton peaks.
    matrix : None, False, str, (formula, density, thickness) or list
        Sample matrix. None: a thin SiO2 layer when PyMca needs one (several excitation
        energies), none otherwise. A formula: a thin layer of it (2.65 g/cm³ x 1 µm). A
        3-tuple: that layer (g/cm³, cm). A full PyMca Matrix entry is taken as given.
    **overrides : dict
        Section updates applied last, e.g. ``fit={"snipwidth": 40}``, ``peaks={"Pb": "L"}``.

    Returns
    -------
    dict
        A complete configuration that passes :func:`validate_config` for ``"full"`` and
        configures PyMca (``FastXRFLinearFit().setFitConfiguration``) without error: linear fit,
        no weights, Gaussian peaks, SNIP background (``stripfilterwidth`` 1, no anchors, no
        continuum), fixed zero/gain/noise/fano, no pile-up, no strategy, ``use_limit`` 1.

    Raises
    ------
    ConfigError
        Unknown element, no excitation energy for a map without a tube, no calibration, an
        element with no line in the range, a bad override, or an invalid result.

    Examples
    --------
    >>> from xrfdask.datasets import example_dataset
    >>> cfg = make_fit_config(example_dataset(shape=(2, 2)), ["Fe", "Pb"])
    >>> cfg["peaks"]
    {'Fe': 'K', 'Pb': ['L', 'M']}
    """
    if "channel" not in ds.dims:
        raise ConfigError(
            f"ds: expected a raw map with a 'channel' dimension, got dims {tuple(ds.dims)}"
        )
    nchan = int(ds.sizes["channel"])
    det_update = dict(detector) if isinstance(detector, Mapping) else {}
    det_label = None if isinstance(detector, Mapping) else detector
    labels = list(ds["detector"].values) if "detector" in ds.coords else []
    if det_label is not None and labels and det_label not in labels:
        raise ConfigError(f"detector: {det_label!r} is not a label of the map's detectors")
    for name, value in overrides.items():
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{name}: an override is a dict of keys for section [{name}], got {value!r}"
            )
    noise = _as_float("noise", noise, minimum=0.0)
    fano = _as_float("fano", fano, minimum=0.0)

    zero, gain = _calibration(ds, det_update, det_label)
    excitation = _excitation(ds, excitation_energy)
    header = _header(ds)
    source = header.get("X-ray Source")
    source = source if isinstance(source, Mapping) else {}
    alpha_in = _header_number(source, "Incid") or 45.0
    alpha_out = _header_number(source, "Take") or 45.0
    scatter_angle = _header_number(source, "Scat")

    def fwhm(e: float) -> float:
        return _fwhm(e, noise, fano)

    e_first, e_last = zero, zero + gain * (nchan - 1)
    kv = ds.attrs.get("tube_kv")
    if fit_range is not None:
        if not (isinstance(fit_range, Sequence) and len(fit_range) == 2):
            raise ConfigError(f"fit_range: expected (start_keV, end_keV), got {fit_range!r}")
        lo = _as_float("fit_range", fit_range[0])
        hi = _as_float("fit_range", fit_range[1])
        if lo >= hi:
            raise ConfigError(f"fit_range: start {lo:g} keV is not below end {hi:g} keV")
    else:
        lo = max(_FIT_START_KEV, e_first)
        e_top = max(e for e, _ in excitation)
        hi = min(e_top + _END_FWHM * fwhm(e_top), e_last)
        if _is_number(kv) and kv > 0:
            hi = min(hi, float(kv))

    # Shells: a dict gives them; otherwise chosen from the excitation and the range.
    if isinstance(elements, str):
        elements = [elements]
    if isinstance(elements, Mapping):
        peaks = {}
        for name, shells in elements.items():
            sym = _symbol(name)
            if sym is None:
                raise ConfigError(f"peaks.{name}: {name!r} is not an element symbol")
            peaks[sym] = shells
    else:
        if not isinstance(elements, Sequence) or not elements:
            raise ConfigError(
                f"elements: expected a non-empty list of element symbols, got {elements!r}"
            )
        peaks = {}
        for name in elements:
            shells = _choose_shells(name, excitation, lo, hi)
            peaks[_symbol(name)] = shells[0] if len(shells) == 1 else shells

    line_energies = _peak_line_energies(peaks, excitation)
    if fit_range is None and line_energies:
        if not scatter:  # no scatter peaks to fit: end above the highest element line
            top = max(line_energies)
            hi = min(hi, top + 4 * fwhm(top))
        # Start below the lowest line (not at 1 keV when all lines are far above it).
        low = min(line_energies)
        lo = max(lo, low - max(_START_MARGIN_KEV, 3 * fwhm(low)))
    xmin = max(0, math.ceil((lo - zero) / gain - 1e-9))
    xmax = math.floor((hi - zero) / gain + 1e-9)
    if fit_range is None:
        xmax = min(xmax, nchan - 1)

    if snip_width is None:
        mid = zero + gain * (xmin + xmax) / 2.0
        snip = max(1, round(_SNIP_FWHM * fwhm(mid) / gain))
    else:
        snip = _as_int("snip_width", snip_width, minimum=1)

    # Scatter peaks only for excitation lines whose Rayleigh peak lies in the range.
    e_hi = zero + gain * xmax
    energy_scatter = [int(scatter and e <= e_hi + fwhm(e)) for e, _ in excitation]

    cfg = pymca_defaults()
    cfg["fit"].update(
        energy=[e for e, _ in excitation],
        energyweight=[w for _, w in excitation],
        energyflag=[1] * len(excitation),
        energyscatter=energy_scatter,
        scatterflag=int(scatter and any(energy_scatter)),
        xmin=xmin, xmax=xmax, use_limit=1,
        stripflag=1, stripalgorithm=1, snipwidth=snip, stripfilterwidth=1,
        stripanchorsflag=0, stripanchorslist=[0, 0, 0, 0], continuum=0,
        linearfitflag=1, fitweight=0, hypermetflag=1, fitfunction=0,
        escapeflag=int(bool(escape)), sumflag=0, strategyflag=0,
    )  # fmt: skip
    cfg["detector"].update(
        zero=zero, gain=gain, noise=noise, fano=fano, detele="Si",
        fixedzero=1, fixedgain=1, fixednoise=1, fixedfano=1,
    )  # fmt: skip
    cfg["peaks"] = peaks

    block = _detector_block(ds, header, det_label)
    absorbers, detele = _detector_attenuators(block)
    cfg["attenuators"].update(absorbers)
    if detele:
        cfg["detector"]["detele"] = detele
    cfg["attenuators"]["Matrix"] = _matrix_entry(
        matrix, len(excitation) > 1, (alpha_in, alpha_out, scatter_angle)
    )
    cfg["detector"].update(_plain(det_update))
    for name, values in overrides.items():
        if name == "peaks":  # peaks are per element: an override replaces that element's shells
            cfg["peaks"].update(_plain(values))
        else:
            _merge(cfg, {name: values})
    return validate_config(cfg, nchan=nchan, method="full")
