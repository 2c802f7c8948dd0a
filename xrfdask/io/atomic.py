"""Write outputs under a temporary name and rename them into place only when complete.

A reader never sees a half-written file, and a failure leaves the previous file (if any) as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, *, overwrite: bool = False, directory: bool = False
) -> Iterator[str]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        The final output (a file, or a directory such as a zarr store with ``directory=True``).
    overwrite : bool, default False
        Allow replacing an existing ``path``; otherwise :class:`FileExistsError` is raised before
        anything is written.
    directory : bool, default False
        Create a temporary directory instead of a file.

    Yields
    ------
    str
        The temporary path to write (it already exists, empty).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if directory:
        tmp = tempfile.mkdtemp(dir=folder, prefix=".tmp-", suffix=name)
    else:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=name)
        os.close(fd)
    try:
        yield tmp
        # mkstemp/mkdtemp make private 0600/0700 entries; outputs are meant to be shared.
        os.chmod(tmp, 0o755 if directory else 0o644)
        if directory and os.path.lexists(path):
            _replace_directory(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _replace_directory(tmp: str, path: str) -> None:
    """Swap directory ``tmp`` into ``path``; the old ``path`` is moved aside before it is deleted.

    ``os.replace`` cannot replace a non-empty directory. Deleting the old one first would lose it
    if the process died in between; renaming it aside keeps it until the new one is in place.
    """
    aside = tempfile.mkdtemp(
        dir=os.path.dirname(tmp), prefix=".old-", suffix=os.path.basename(path)
    )
    os.rmdir(aside)  # only the unique name is wanted
    os.replace(path, aside)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)
        raise
    if os.path.isdir(aside) and not os.path.islink(aside):
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.unlink(aside)
