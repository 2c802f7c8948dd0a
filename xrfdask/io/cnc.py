"""Concentration (``.cnc``) files of reference materials: xrf_proc's format (spec section 2).

A tab-separated text file::

    Standard_Name
    NIST 613
    Density(mg/cm^3)   Mass(mg)   Sample_thickness(micron)
    2490.945   360   960
    Number of elements
    70
    Z   Cert conc(ppm)   Standard_error(ppm)
    1   23.33   0
    ...                      (exactly n rows; anything after them is notes)

Empty fields are dropped before fields are taken (``3670<TAB><TAB>1.771<TAB>100`` is density 3670,
mass 1.771, thickness 100), as xrf_proc's reader does. Beyond it, the concentration unit is read
from the header of the element table (``ppm`` for almost every file; the AXO thin-film standard
says ``ng/mm^2``), so a user of such a file is told rather than given infinite yields.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from xrfdask.errors import FormatError, XrfdaskWarning

__all__ = ["Cnc", "read_cnc"]

#: The heaviest element with X-ray data: xraylib's cross sections end at Cf (98), PyMca's
#: attenuation tables at Fm (100); no reference material certifies anything heavier than U.
_MAX_Z = 98


@dataclass(frozen=True)
class Cnc:
    """A reference material's certified composition, in the units of the file.

    Attributes
    ----------
    path : str
        The file read (empty for a material built in memory).
    name : str
        The material, e.g. ``"NIST 613"``.
    density : float
        mg/cm³ (0 when the file gives none, as thin films do).
    mass : float
        mg.
    thickness : float
        µm.
    z : numpy.ndarray
        Atomic numbers (int), in file order.
    conc : numpy.ndarray
        Certified concentrations, in :attr:`unit` (``"ppm"``, i.e. µg/g, for almost every file).
    err : numpy.ndarray
        Their standard errors, in the same unit.
    unit : str
        The concentration unit named in the file's header (``"ppm"`` or, e.g., ``"ng/mm^2"``).
    """

    path: str
    name: str
    density: float
    mass: float
    thickness: float
    z: np.ndarray = field(repr=False)
    conc: np.ndarray = field(repr=False)
    err: np.ndarray = field(repr=False)
    unit: str = "ppm"

    @property
    def basename(self) -> str:
        """The file name with its extension (xrf_proc's group key: ``detlim/nist613.cnc``)."""
        return os.path.basename(self.path) if self.path else f"{self.name}.cnc"

    @property
    def symbols(self) -> list[str]:
        """Element symbols, in file order."""
        import xraylib

        return [xraylib.AtomicNumberToSymbol(int(z)) for z in self.z]

    @property
    def density_g_cm3(self) -> float:
        """Density in g/cm³."""
        return self.density * 1e-3

    @property
    def thickness_cm(self) -> float:
        """Thickness in cm."""
        return self.thickness * 1e-4

    @property
    def mass_fractions(self) -> np.ndarray:
        """Concentrations as mass fractions (ppm / 10⁶); meaningful when :attr:`unit` is ppm."""
        return self.conc / 1e6

    def concentration(self, element: str | int) -> tuple[float, float] | None:
        """(concentration, error) of an element given by symbol or Z; None if not certified."""
        if isinstance(element, str):
            import xraylib

            try:
                element = xraylib.SymbolToAtomicNumber(element)
            except ValueError:
                return None
        hits = np.flatnonzero(self.z == int(element))
        if hits.size == 0:
            return None
        return float(self.conc[hits[0]]), float(self.err[hits[0]])

    def to_dataset(self):
        """The composition as an ``xarray.Dataset`` on an ``element`` dim (symbols)."""
        import xarray as xr

        return xr.Dataset(
            {
                "z": ("element", self.z),
                "concentration": ("element", self.conc, {"units": self.unit}),
                "concentration_error": ("element", self.err, {"units": self.unit}),
            },
            coords={"element": self.symbols},
            attrs={
                "name": self.name,
                "path": self.path,
                "density_mg_cm3": self.density,
                "mass_mg": self.mass,
                "thickness_um": self.thickness,
            },
        )


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.split("\t") if f.strip()]


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{where}: {what} {text!r} is not a number") from None
    if not np.isfinite(value):
        raise FormatError(f"{where}: {what} {text!r} is not finite")
    return value


def _unit(header: str) -> str:
    """The unit in ``Cert conc(<unit>)`` of the element table's header (ppm if none)."""
    found = re.search(r"conc[^()\t]*\(([^)]*)\)", header, flags=re.IGNORECASE)
    return found.group(1).strip() if found and found.group(1).strip() else "ppm"


def read_cnc(path: str | os.PathLike | Cnc) -> Cnc:
    """Read a concentration file (xrf_proc's ``.cnc``; spec section 2).

    Parameters
    ----------
    path : str, path-like or Cnc
        The file; a :class:`Cnc` is returned as it is.

    Returns
    -------
    Cnc
        Name, density (mg/cm³), mass (mg), thickness (µm), Z, concentrations and errors (in the
        unit the file names, ppm for almost all files).

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        A malformed file: too few lines, a non-numeric value, fewer element rows than announced,
        an unknown or repeated Z, a negative concentration; the message names the file and the
        line.

    Warns
    -----
    XrfdaskWarning
        An element row after the announced count: ignored, as xrf_proc ignores it.
    """
    if isinstance(path, Cnc):
        return path
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such concentration file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a folder, not a concentration file") from None

    def line(k: int, what: str) -> str:
        if k >= len(lines):
            raise FormatError(f"{path}: ends at line {len(lines)}, expected {what} on line {k + 1}")
        return lines[k]

    name = line(1, "the material name").strip()
    props = _fields(line(3, "density, mass and thickness"))
    where = f"{path}, line 4"
    if len(props) < 3:
        raise FormatError(f"{where}: expected density, mass and thickness, found {props}")
    names = ("density", "mass", "thickness")
    density, mass, thickness = (_number(v, where, w) for v, w in zip(props[:3], names, strict=True))
    count = _fields(line(5, "the number of elements"))
    where = f"{path}, line 6"
    if not count:
        raise FormatError(f"{where}: expected the number of elements, found an empty line")
    n = _number(count[0], where, "number of elements")
    if n != int(n) or n < 0:
        raise FormatError(f"{where}: the number of elements {count[0]!r} is not a count")
    n = int(n)
    unit = _unit(line(6, "the element table's header"))
    # Lists, not arrays of n: a corrupt count (1e12) fails at the first missing row instead of
    # allocating terabytes.
    z: list[int] = []
    conc: list[float] = []
    err: list[float] = []
    for i in range(n):
        k = 7 + i
        if k >= len(lines) or not _fields(lines[k]):
            raise FormatError(
                f"{path}, line {k + 1}: the file announces {n} elements (line 6) but has only {i} "
                "element rows"
            )
        row = _fields(lines[k])
        where = f"{path}, line {k + 1}"
        if len(row) < 2:
            raise FormatError(f"{where}: expected Z, concentration and error, found {row}")
        zi = _number(row[0], where, "Z")
        if zi != int(zi) or not 1 <= zi <= _MAX_Z:
            raise FormatError(
                f"{where}: Z {row[0]!r} is not an element with X-ray data (1 to {_MAX_Z})"
            )
        z.append(int(zi))
        conc.append(_number(row[1], where, "concentration"))
        err.append(_number(row[2], where, "error") if len(row) > 2 else 0.0)
        if conc[i] < 0 or err[i] < 0:
            raise FormatError(f"{where}: negative concentration or error ({row[1]}, {err[i]})")
    follow = 7 + n
    if follow < len(lines):
        extra = _fields(lines[follow])
        if extra and len(extra) >= 2 and all(_is_number(v) for v in extra[:3]):
            # xrf_proc reads exactly n rows; a shipped file (sarm69.cnc) has one more. Keep its
            # numbers (results compare with xrf_proc's) and say so.
            warnings.warn(
                f"{path}, line {follow + 1}: an element row after the {n} announced on line 6 "
                f"is ignored, as xrf_proc ignores it; correct the count to use it",
                XrfdaskWarning,
                stacklevel=2,
            )
    repeated = np.unique(z, return_counts=True)
    if (repeated[1] > 1).any():
        twice = ", ".join(str(v) for v in repeated[0][repeated[1] > 1])
        raise FormatError(f"{path}: Z {twice} listed more than once")
    as_arrays = np.asarray(z, dtype=np.int64), np.asarray(conc, dtype=float), np.asarray(err)
    return Cnc(path, name, density, mass, thickness, *as_arrays, unit)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
