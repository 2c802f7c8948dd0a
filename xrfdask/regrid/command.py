"""The scan command of a mesh, parsed explicitly (spec xrf_proc.md 4.6 and 12.10).

xrf_proc splits ``str(cmd)`` on spaces, so its tokens depend on h5py returning ``bytes`` (the
``b'cdmesh`` it compares with); here the command is decoded first, whatever its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xrfdask.errors import ConfigError

__all__ = ["ScanCommand", "parse_scan_command"]

MESH_FORM = "'<type> <mot1> <start1> <end1> <n1> <mot2> <start2> <end2> <n2> <time>'"

#: Scan types of one motor (or none): never a mesh, whatever follows them. xrf_proc's own list of
#: 1-D types (spec 4.2) is {timescanc, dscan, ascan, c}; the others are their usual relatives.
ONE_D_TYPES = frozenset(
    {"c", "cnt", "ct", "timescan", "timescanc", "ascan", "dscan", "ascanc", "dscanc", "cscan"}
)


@dataclass(frozen=True)
class ScanCommand:
    """A mesh scan command: ``<type> <mot1> <start1> <end1> <n1> <mot2> <start2> <end2> <n2>
    <time>``.

    ``motor1`` is the first (fast) motor: its ``n1`` positions span the columns (``x``) of the
    grid, ``motor2``'s ``n2`` positions its rows (``y``). ``time`` is None when absent.
    """

    kind: str
    motor1: str
    start1: float
    end1: float
    n1: int
    motor2: str
    start2: float
    end2: float
    n2: int
    time: float | None
    text: str

    @property
    def relative(self) -> bool:
        """A relative mesh (``dmesh``, ``cdmesh``): positions relative to where the scan began."""
        return self.kind.lower().removeprefix("c").startswith("d")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid: (n2, n1)."""
        return self.n2, self.n1

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The command's column (``motor1``) and row (``motor2``) positions, as xrf_proc spaces
        them: ``n`` points from start to end, endpoints included."""
        return (
            np.linspace(self.start1, self.end1, num=self.n1),
            np.linspace(self.start2, self.end2, num=self.n2),
        )


def _text(cmd: Any) -> str:
    """The command as text: str, bytes, numpy scalars and 0-d arrays, and ``b'...'`` reprs."""
    if isinstance(cmd, np.ndarray):
        if cmd.size != 1:
            raise ConfigError(
                f"scan command: expected one string, got an array of shape {cmd.shape}"
            )
        cmd = cmd.reshape(()).item()
    if isinstance(cmd, bytes | bytearray | np.bytes_):
        try:
            cmd = bytes(cmd).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"scan command {bytes(cmd)!r} is not UTF-8 text") from None
    if not isinstance(cmd, str):
        raise ConfigError(f"scan command: expected a string, got {type(cmd).__name__}")
    text = cmd.strip()
    # str(bytes) of h5py 3 strings, as files written from such a str hold them
    for quote in ("'", '"'):
        if len(text) >= 3 and text.startswith("b" + quote) and text.endswith(quote):
            text = text[2:-1].strip()
            break
    return text


def _number(token: str, what: str, text: str) -> float:
    try:
        value = float(token)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise ConfigError(
            f"scan command {text!r}: {what} {token!r} is not a number (expected {MESH_FORM})"
        )
    return value


def _count(token: str, what: str, text: str) -> int:
    value = _number(token, what, text)
    if not value.is_integer() or value < 1:
        raise ConfigError(f"scan command {text!r}: {what} {token!r} is not a positive integer")
    return int(value)


def parse_scan_command(cmd: str | bytes | Any) -> ScanCommand:
    """Parse a mesh scan command.

    Parameters
    ----------
    cmd : str, bytes, numpy string scalar or 0-d array
        The command as a file holds it (the root ``cmd`` of the uniform layout, a raw map's
        ``attrs["cmd"]``); a ``"b'...'"`` repr (what ``str()`` of h5py 3's bytes gives) is
        tolerated. Tokens are separated by any whitespace.

    Returns
    -------
    ScanCommand
        The mesh's type, motors, ranges, point counts and time per point.

    Raises
    ------
    ConfigError
        When ``cmd`` is not a mesh: a 1-D scan type (``dscan``, ``timescanc``, ...), fewer than
        nine tokens, or a range or count that is not a number.
    """
    tokens = _text(cmd).split()
    text = " ".join(tokens)
    if not tokens:
        raise ConfigError(f"scan command is empty; expected a mesh {MESH_FORM}")
    kind = tokens[0]
    if kind.lower() in ONE_D_TYPES:
        raise ConfigError(f"scan command {text!r} is a 1-D scan ({kind!r}), not a mesh {MESH_FORM}")
    if len(tokens) < 9:
        raise ConfigError(
            f"scan command {text!r} is not a mesh: {len(tokens)} tokens, expected {MESH_FORM}"
        )
    time = None
    if len(tokens) > 9:
        try:
            time = float(tokens[9])
        except ValueError:
            time = None
    return ScanCommand(
        kind=kind,
        motor1=tokens[1],
        start1=_number(tokens[2], "start1", text),
        end1=_number(tokens[3], "end1", text),
        n1=_count(tokens[4], "n1", text),
        motor2=tokens[5],
        start2=_number(tokens[6], "start2", text),
        end2=_number(tokens[7], "end2", text),
        n2=_count(tokens[8], "n2", text),
        time=time,
        text=text,
    )
