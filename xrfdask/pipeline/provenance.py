"""What a pipeline step records, and how a re-run knows a step is up to date.

Every step's result carries ``attrs["xrfdask_process"]`` (JSON): the step, its parameters, the
xrfdask version, the fingerprints of its inputs and its own ``fingerprint``, a hash of all of
those. Files named in the parameters (a PyMca ``.cfg``, a ``.cnc``, a reference map) enter the
fingerprint by their content or their own recorded fingerprint, so editing one redoes the steps
that read it. A step is up to date when its group (or, for steps that write files, the
folder's manifest) holds the fingerprint it would compute now.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

__all__ = ["file_fingerprint", "fingerprint", "map_fingerprint", "record"]

KEY = "xrfdask_process"


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def file_fingerprint(path: str | os.PathLike) -> str:
    """A file's content hash (small files: configurations, cnc), or its size and mtime for a
    large one (over 64 MiB); a folder (zarr) by its entries' sizes and mtimes."""
    path = os.fspath(path)
    if os.path.isdir(path):
        entries = []
        for root, _, files in os.walk(path):
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size,
                                st.st_mtime_ns))  # fmt: skip
        return _digest(sorted(entries))
    st = os.stat(path)
    if st.st_size > 64 * 2**20:
        return _digest([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:24]


def map_fingerprint(ds: Any, path: str | os.PathLike) -> str:
    """The raw map's fingerprint: a ``.GeoPIXE`` file by its size, mtime and header; a raw group
    of the uniform layout by its attributes, shapes and stored sum spectra (the file itself
    changes as results are added to it)."""
    from xrfdask.io.convert import file_format

    if file_format(path) == "geopixe":
        st = os.stat(path)
        return _digest([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    shapes = {name: [list(v.shape), str(v.dtype)] for name, v in ds.data_vars.items()}
    small = {}
    if "sumspec" in ds:
        small["sumspec"] = ds["sumspec"].values.tolist()  # eager-ok: (detector, channel), small
    return _digest([ds.attrs, shapes, small])


def fingerprint(step: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """The fingerprint of a step run with these parameters on inputs of these fingerprints."""
    from xrfdask import __version__

    return _digest([step, params, inputs, __version__])


def record(step: str, params: dict[str, Any], inputs: dict[str, str], seconds: float) -> dict:
    """What a step stores in its result's ``attrs[KEY]`` (as JSON) and in manifests."""
    from xrfdask import __version__

    return {
        "step": step,
        "params": params,
        "inputs": inputs,
        "xrfdask_version": __version__,
        "fingerprint": fingerprint(step, params, inputs),
        "seconds": round(seconds, 3),
    }


def stored(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The record in a result's attributes, or None."""
    value = attrs.get(KEY)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None
