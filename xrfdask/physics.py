"""X-ray physics shared by configuration, the example map and (later) quantification.

Atomic data come from xraylib; the element and shell tables are PyMca's, because a PyMca fit
configuration can only name what PyMca knows.

- :func:`element_symbol`: canonical symbol of an element PyMca knows (``"FE"`` -> ``"Fe"``).
- :func:`pymca_shells`: the line groups PyMca builds for an element (``K``, ``Ka``, ``L1``...).
- :func:`iupac_lines`: every single xraylib line (``KL3``, ``L3M5``...) with its levels.
- :func:`group_lines`: energies and relative intensities of a group's significant lines, under an
  excitation, or from the radiative rates when the excitation does not reach the edge (what
  PyMca falls back to).
- :func:`edge_energy`: the absorption edge a group needs.
- :func:`fwhm`: PyMca's detector resolution.

For detection limits and quantification (xrf_proc's formulas, spec sections 5-6):

- :func:`line_element`, :func:`line_family`: ``"Pb L3"`` -> ``"Pb"``, ``"L"``; None for scatter.
- :func:`alpha1_energy`: the energy of the family's α1 line (KL3, L3M5, M5N7), as xrf_proc takes it.
- :func:`mass_attenuation`, :func:`composition_attenuation`: total mass-attenuation coefficients
  (cm²/g) of an element or a composition (a ``.cnc``). ``source="pymca"`` uses PyMca's tables, as
  xrf_proc's ``calc_detlim`` does; ``"xraylib"`` xraylib's ``CS_Total``, as its self-absorption
  correction does. Results compare with xrf_proc only with the same source.
- :func:`radiative_rate`: xraylib's line radiative rate (Kα1/Kβ1 ratios).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import numpy as np
import xraylib

__all__ = [
    "SHELLS",
    "SUBSHELLS",
    "EDGE",
    "element_symbol",
    "pymca_elements",
    "pymca_shells",
    "iupac_lines",
    "group_levels",
    "group_lines",
    "radiative_group_lines",
    "edge_energy",
    "fwhm",
    "ALPHA1",
    "line_element",
    "line_family",
    "line_energy",
    "alpha1_energy",
    "mass_attenuation",
    "composition_attenuation",
    "radiative_rate",
]

#: Shell groups PyMca accepts in ``[peaks]`` (an element offers those of its ``rays`` only).
SHELLS: tuple[str, ...] = (
    "K", "Ka", "Kb", "L", "L1", "L2", "L3", "M", "M1", "M2", "M3", "M4", "M5",
)  # fmt: skip
#: Groups that contain each other: fitting both counts the same lines twice.
SUBSHELLS = {"K": ("Ka", "Kb"), "L": ("L1", "L2", "L3"), "M": ("M1", "M2", "M3", "M4", "M5")}
#: The absorption edge that must lie below the excitation energy for a group to be excited (the
#: lowest one for composite groups).
EDGE = {
    "K": "K", "Ka": "K", "Kb": "K", "L": "L3", "L1": "L1", "L2": "L2", "L3": "L3",
    "M": "M5", "M1": "M1", "M2": "M2", "M3": "M3", "M4": "M4", "M5": "M5",
}  # fmt: skip

EV_PER_PAIR_KEV = 0.00385  # PyMca's energy per electron-hole pair in Si (keV)
FWHM_PER_SIGMA = 2.3548
LINE_FRACTION = 0.01  # lines weaker than this share of their group's strongest are ignored


def element_symbol(name: Any) -> str | None:
    """The canonical element symbol of ``name`` ("FE" -> "Fe"), or None if PyMca lacks it."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 2:
        return None
    sym = name.strip()
    sym = sym[0].upper() + sym[1:].lower()
    try:
        z = xraylib.SymbolToAtomicNumber(sym)
    except ValueError:
        return None
    return sym if z > 0 and sym in pymca_elements() else None


@functools.lru_cache(maxsize=1)
def pymca_elements() -> frozenset[str]:
    """Element symbols PyMca's ``Elements`` table knows."""
    from PyMca5.PyMcaPhysics.xrf import Elements

    return frozenset(Elements.ElementList)


@functools.lru_cache(maxsize=256)
def pymca_shells(symbol: str) -> tuple[str, ...]:
    """The groups PyMca can build for this element (its ``"K xrays"`` -> ``"K"``)."""
    from PyMca5.PyMcaPhysics.xrf import Elements

    return tuple(r[: -len(" xrays")] for r in Elements.Element[symbol]["rays"])


@functools.lru_cache(maxsize=1)
def iupac_lines() -> tuple[tuple[str, str, int], ...]:
    """Every single xraylib line macro as (initial level, final level, macro): KL3 -> K, L3.

    In the order of the macro names (``dir(xraylib)``), so sums over lines are reproducible.
    """
    pattern = re.compile(r"^(K|L[1-3]|M[1-5])([K-Q][1-7])_LINE$")
    out = []
    for name in sorted(dir(xraylib)):
        m = pattern.match(name)
        if m:
            out.append((m.group(1), m.group(2), getattr(xraylib, name)))
    return tuple(out)


def group_levels(shell: str) -> tuple[str, ...]:
    """The initial vacancy levels of a PyMca group (``"L"`` -> L1, L2, L3)."""
    if shell == "K":
        return ("K",)
    if shell in ("L", "M"):
        return tuple(f"{shell}{i}" for i in range(1, 4 if shell == "L" else 6))
    return (shell,) if shell not in ("Ka", "Kb") else ("K",)


def _group_macros(shell: str):
    levels = group_levels(shell)
    for level, final, macro in iupac_lines():
        if level not in levels:
            continue
        if (shell == "Ka" and final[0] != "L") or (shell == "Kb" and final[0] == "L"):
            continue  # Kα: K-L transitions; Kβ: K-M, K-N...
        yield macro


def _significant(lines: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    if not lines:
        return ()
    top = max(r for _, r in lines)
    return tuple((e, r / top) for e, r in lines if r >= LINE_FRACTION * top)


@functools.lru_cache(maxsize=1024)
def group_lines(z: int, shell: str, excitation: tuple[tuple[float, float], ...]) -> tuple:
    """(energy keV, relative intensity) of the significant lines of a group under excitation.

    ``excitation`` is ((energy keV, weight), ...). Empty when no energy reaches the group's edges.
    """
    lines = []
    for macro in _group_macros(shell):
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
    return _significant(lines)


@functools.lru_cache(maxsize=1024)
def radiative_group_lines(z: int, shell: str) -> tuple:
    """(energy keV, relative intensity) of a group's significant lines from the radiative rates.

    What PyMca uses for a group that the excitation cannot excite (or with no excitation energy):
    line ratios within each vacancy level, independent of the excitation.
    """
    lines = []
    for macro in _group_macros(shell):
        try:
            energy = xraylib.LineEnergy(z, macro)
            rate = xraylib.RadRate(z, macro)
        except ValueError:
            continue
        if energy > 0 and rate > 0:
            lines.append((energy, rate))
    return _significant(lines)


def edge_energy(z: int, shell: str) -> float:
    """The edge (keV) a group needs (``EDGE``); inf when xraylib has none."""
    try:
        return xraylib.EdgeEnergy(z, getattr(xraylib, f"{EDGE[shell]}_SHELL"))
    except ValueError:
        return math.inf


def fwhm(energy: Any, noise: float, fano: float) -> Any:
    """PyMca's detector resolution (keV): FWHM² = noise² + 2.3548² fano ε E (ε = 3.85 eV/pair).

    A float for a scalar ``energy``, an array for an array.
    """
    if np.ndim(energy) == 0:
        return math.sqrt(noise**2 + FWHM_PER_SIGMA**2 * fano * EV_PER_PAIR_KEV * max(energy, 0.0))
    return np.sqrt(noise**2 + FWHM_PER_SIGMA**2 * fano * EV_PER_PAIR_KEV * np.maximum(energy, 0.0))


#: The α1 line of each family (IUPAC), whose energy xrf_proc uses for a line group.
ALPHA1 = {"K": "KL3", "L": "L3M5", "M": "M5N7"}


def line_element(line: str) -> str | None:
    """The element of a PyMca line group (``"Fe K"`` -> ``"Fe"``); None for scatter (``Compt``)."""
    parts = str(line).split()
    if len(parts) < 2:
        return None
    return element_symbol(parts[0])


def line_family(line: str) -> str | None:
    """``"K"``, ``"L"`` or ``"M"``: the first letter of the group (``"Pb L3"`` -> ``"L"``).

    As xrf_proc: K and L by their letter, anything else of an element is M. None for scatter.
    """
    if line_element(line) is None:
        return None
    letter = str(line).split()[1][:1].upper()
    return letter if letter in ("K", "L") else "M"


def line_energy(element: str | int, iupac: str, source: str = "pymca") -> float:
    """Energy (keV) of one line (``"KL3"``, ``"L3M5"``...) of an element; 0 if it has none."""
    symbol = element if isinstance(element, str) else xraylib.AtomicNumberToSymbol(int(element))
    if source == "pymca":
        from PyMca5.PyMcaPhysics import Elements

        return float(Elements.getxrayenergy(symbol, iupac) or 0.0)
    if source == "xraylib":
        try:
            return float(
                xraylib.LineEnergy(
                    xraylib.SymbolToAtomicNumber(symbol), getattr(xraylib, f"{iupac}_LINE")
                )
            )
        except ValueError:
            return 0.0
    raise ValueError(f"source must be 'pymca' or 'xraylib', not {source!r}")


def alpha1_energy(line: str, source: str = "pymca") -> float:
    """Energy (keV) of the α1 line of a line group's family (``"Fe K"`` -> Fe KL3)."""
    element, family = line_element(line), line_family(line)
    if element is None:
        raise ValueError(f"{line!r} is not an element's line group")
    return line_energy(element, ALPHA1[family], source)


def mass_attenuation(element: str | int, energy: Any, source: str = "pymca") -> Any:
    """Total mass-attenuation coefficient (cm²/g) of an element at ``energy`` (keV)."""
    symbol = element if isinstance(element, str) else xraylib.AtomicNumberToSymbol(int(element))
    energies = np.atleast_1d(np.asarray(energy, dtype=float))
    if source == "pymca":
        out = np.asarray(_pymca_total(symbol, tuple(energies.tolist())))
    elif source == "xraylib":
        z = xraylib.SymbolToAtomicNumber(symbol)
        out = np.array([xraylib.CS_Total(z, float(e)) for e in energies])
    else:
        raise ValueError(f"source must be 'pymca' or 'xraylib', not {source!r}")
    return float(out[0]) if np.ndim(energy) == 0 else out.reshape(np.shape(energy))


@functools.lru_cache(maxsize=4096)
def _pymca_total(symbol: str, energies: tuple[float, ...]) -> tuple[float, ...]:
    from PyMca5.PyMcaPhysics import Elements

    return tuple(float(v) for v in Elements.getmassattcoef(symbol, list(energies))["total"])


def composition_attenuation(cnc, energy: Any, source: str = "pymca") -> Any:
    """Σ_i w_i μ_i(E) of a composition: ``cnc`` a :class:`~xrfdask.io.cnc.Cnc` (w = ppm / 10⁶)."""
    total = np.zeros(np.shape(energy)) if np.ndim(energy) else 0.0
    for z, w in zip(cnc.z, cnc.mass_fractions, strict=True):
        total = total + w * mass_attenuation(int(z), energy, source)
    return total


def radiative_rate(element: str | int, iupac: str) -> float:
    """xraylib's radiative rate of one line (``"KL3"``); 0 if the element has none."""
    z = element if isinstance(element, int) else xraylib.SymbolToAtomicNumber(element)
    try:
        return float(xraylib.RadRate(int(z), getattr(xraylib, f"{iupac}_LINE")))
    except ValueError:
        return 0.0
