"""Sphinx configuration of xrfdask's documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``pip install -e
".[docs]"``). The notebooks of ``notebooks/`` are copied into ``docs/notebooks/`` at each build
and rendered as stored (code, no outputs); ``XRFDASK_DOCS_EXECUTE=1`` executes them during the
build (about a minute) so their figures and printed results appear too.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))  # the checkout's package, even without an editable install

import xrfdask  # noqa: E402

project = "xrfdask"
author = "xrfdask developers"
copyright = "xrfdask developers"
version = release = xrfdask.__version__

extensions = [
    "myst_nb",  # Markdown pages (MyST) and the notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # numpydoc-style docstrings
    "sphinxarg.ext",  # the command-line reference, from xrfdask.cli.build_parser
]

exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]
root_doc = "index"
language = "en"
smartquotes_action = "qe"  # keep "--option" as typed (no en dashes), curly quotes and ellipses

# -- API reference --------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # the docstrings' Parameters sections say what a parameter takes
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
add_module_names = False

# -- MyST and notebooks ---------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
_execute = os.environ.get("XRFDASK_DOCS_EXECUTE", "0").strip().lower() not in {"", "0", "no"}
nb_execution_mode = "cache" if _execute else "off"  # cache: re-run only changed notebooks
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_in_temp = True
nb_merge_streams = True

# -- HTML -----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"xrfdask {release}"
html_static_path: list[str] = []
html_show_sourcelink = False


def _copy_notebooks() -> None:
    """Copy ``notebooks/*.ipynb`` into ``docs/notebooks/`` (unchanged copies are left alone)."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    sources = sorted((REPO / "notebooks").glob("*.ipynb"))
    for source in sources:
        dest = target / source.name
        if not dest.exists() or not filecmp.cmp(source, dest, shallow=False):
            shutil.copyfile(source, dest)
    names = {s.name for s in sources}
    for stale in target.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()


def _api_names(index: Path) -> set[str]:
    """Full names of the autosummary entries of the API reference (``xrfdask.fit``, ...)."""
    names: set[str] = set()
    module, inside = "", False
    for line in index.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(".. currentmodule::"):
            module, inside = stripped.split("::", 1)[1].strip(), False
        elif stripped.startswith(".. autosummary::"):
            inside = True
        elif inside and line.startswith("   ") and stripped and not stripped.startswith(":"):
            names.add(f"{module}.{stripped.lstrip('~')}" if module else stripped)
        elif inside and stripped and not line.startswith(" "):
            inside = False
    return names


def _remove_stale_stubs() -> None:
    """Delete autosummary stubs of names no longer in the API reference (a warning otherwise)."""
    generated = DOCS / "api" / "generated"
    if not generated.is_dir():
        return
    keep = _api_names(DOCS / "api" / "index.rst")
    for stub in generated.glob("*.rst"):
        if stub.stem not in keep:
            stub.unlink(missing_ok=True)


_copy_notebooks()
_remove_stale_stubs()
