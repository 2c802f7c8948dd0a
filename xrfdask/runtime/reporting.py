"""Progress reporting: dask's bar for whole computations, tqdm's for step-wise writers.

Inside :func:`progress`, a computation on a local scheduler shows dask's
``dask.diagnostics.ProgressBar``; a writer that computes its result step by step
(:func:`~xrfdask.runtime.iter_computed`) shows one tqdm bar counting the steps instead of one
dask bar per step. On a distributed cluster the dashboard shows the tasks; its link is logged
(``logging``, logger ``xrfdask.runtime``) and the step bar still counts bands.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from xrfdask.runtime.clusters import current_client

__all__ = ["progress", "step_bar", "whole_bars_paused"]

logger = logging.getLogger("xrfdask.runtime")


@dataclass
class _Report:
    label: str
    whole: Any = None  # the dask ProgressBar registered by progress(), on local schedulers


_REPORT: contextvars.ContextVar[_Report | None] = contextvars.ContextVar(
    "xrfdask_progress", default=None
)


@contextlib.contextmanager
def progress(enabled: bool = True, *, label: str = "") -> Iterator[None]:
    """Report progress of the graphs computed inside the block, on stderr.

    Local schedulers: dask's text ``ProgressBar`` for whole computations (those over a second),
    and one tqdm bar for step-wise writers (:func:`~xrfdask.runtime.iter_computed`). On a
    distributed cluster the dashboard link is logged (INFO, logger ``xrfdask.runtime``) and the
    step-wise bar still counts bands.

    Parameters
    ----------
    enabled : bool
        False: report nothing (the block runs as it is).
    label : str
        Put before each bar (``"fit "``).
    """
    if not enabled:
        yield
        return
    report = _Report(label)
    token = _REPORT.set(report)
    try:
        client = current_client()
        if client is not None:
            logger.info("%sdashboard: %s", label, client.dashboard_link)
            yield
            return
        from dask.diagnostics import ProgressBar

        report.whole = ProgressBar(out=sys.stderr, minimum=1.0)
        with report.whole:
            yield
    finally:
        _REPORT.reset(token)


@contextlib.contextmanager
def whole_bars_paused() -> Iterator[None]:
    """Hide the whole-computation bar of :func:`progress` in the block (a step bar reports)."""
    report = _REPORT.get()
    bar = report.whole if report is not None else None
    if bar is None:
        yield
        return
    bar.unregister()
    try:
        yield
    finally:
        bar.register()


@contextlib.contextmanager
def step_bar(total: int) -> Iterator[tqdm]:
    """A tqdm bar of ``total`` steps on stderr inside :func:`progress`; a silent one outside."""
    report = _REPORT.get()
    bar = tqdm(
        total=total,
        disable=report is None,
        file=sys.stderr,
        ascii=" #",
        bar_format=f"{report.label if report else ''}[{{bar:30}}] {{percentage:3.0f}}% "
        "{n_fmt}/{total_fmt} | {elapsed}",
    )
    try:
        yield bar
    finally:
        bar.close()
