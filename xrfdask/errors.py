"""Exceptions raised by xrfdask.

Every error caused by bad input (a damaged file, a wrong shape, a bad configuration) is one of
these, and its message names the file and the place (byte offset, dataset path or key) and what was
expected, in one line.
"""

from __future__ import annotations

__all__ = ["XrfdaskError", "FormatError", "ConfigError", "XrfdaskWarning", "TruncatedMapWarning"]


class XrfdaskError(Exception):
    """Base class of every xrfdask error."""


class FormatError(XrfdaskError, ValueError):
    """A file does not follow its format (truncated header, corrupt record, missing dataset...)."""


class ConfigError(XrfdaskError, ValueError):
    """A processing configuration is invalid (wrong type, unknown element, range outside data)."""


class XrfdaskWarning(UserWarning):
    """Base class of the warnings xrfdask emits about unusual but readable input."""


class TruncatedMapWarning(XrfdaskWarning):
    """A map ended early (scan stopped): its incomplete tail was dropped, missing pixels flagged."""
