"""Regridding snake and time-triggered scans onto their regular motor grid (xrf_proc 4.5, 4.6).

:func:`regrid` maps raw maps and results; :func:`parse_scan_command` reads a mesh command.
"""

from __future__ import annotations

from xrfdask.regrid.api import regrid
from xrfdask.regrid.command import ScanCommand, parse_scan_command

__all__ = ["ScanCommand", "parse_scan_command", "regrid"]
