"""ReadoutXFM's outputs for a ``.GeoPIXE`` map: where they go, and its pixel-statistics files.

The folder is ``<dir of the map>/out_<stem>/``, or ``-o DIR`` with ``/out`` appended unless DIR
already ends in ``out`` or ``out_<stem>``. Inside::

    data/pxstats_{pxlen,xidx,yidx,det,dt,present}.npy   from the record index, (pixels, detectors)
    data/pxstats_sum.npy                                 counts per record (spectra decoded)
    data/dataset.npy, data/dataset.zarr                  the (y, x, detector, channel) cube
    <stem>_mod.GeoPIXE                                   the map rewritten (cropped)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from xrfdask.io.geopixe.index import GeoPixeIndex

__all__ = [
    "PIXEL_STATS",
    "ReadoutLayout",
    "readout_dir",
    "readout_layout",
    "write_pixel_stats",
    "write_pixel_sums",
]

log = logging.getLogger(__name__)

#: ``pxstats_<name>.npy`` written from the index: the per-record field and its stored dtype.
PIXEL_STATS: dict[str, tuple[str, type[np.generic]]] = {
    "pxlen": ("length", np.uint32),
    "xidx": ("x", np.uint16),
    "yidx": ("y", np.uint16),
    "det": ("detector", np.uint16),
    "dt": ("deadtime", np.float32),
}


@dataclass(frozen=True)
class ReadoutLayout:
    """The output paths of ReadoutXFM for one input map (nothing is created)."""

    folder: Path
    """``out_<stem>/`` or the ``-o`` folder."""
    stem: str
    """The input file's name without its extension."""

    @property
    def data(self) -> Path:
        """The ``data/`` sub-folder: pixel statistics and the exported cube."""
        return self.folder / "data"

    def pixel_stats(self, name: str) -> Path:
        """``data/pxstats_<name>.npy``."""
        return self.data / f"pxstats_{name}.npy"

    @property
    def cube_npy(self) -> Path:
        """``data/dataset.npy``: the (y, x, detector, channel) cube (``-e``)."""
        return self.data / "dataset.npy"

    @property
    def cube_zarr(self) -> Path:
        """``data/dataset.zarr``: the raw map as a zarr store (``-e``)."""
        return self.data / "dataset.zarr"

    @property
    def modified(self) -> Path:
        """``<stem>_mod.GeoPIXE``: the rewritten, optionally cropped, map (``-w``)."""
        return self.folder / f"{self.stem}_mod.GeoPIXE"


def readout_layout(
    infile: str | os.PathLike, outdir: str | os.PathLike | None = None
) -> ReadoutLayout:
    """ReadoutXFM's output paths for ``infile``, with its ``-o`` folder rule.

    Parameters
    ----------
    infile : str or path-like
        The ``.GeoPIXE`` map.
    outdir : str or path-like, optional
        ReadoutXFM's ``-o``: ``/out`` is appended unless its last component is ``out`` or
        ``out_<stem>``. Default: ``out_<stem>`` beside ``infile``.

    Returns
    -------
    ReadoutLayout
    """
    stem = Path(infile).stem
    if outdir is None:
        return ReadoutLayout(Path(infile).resolve().parent / f"out_{stem}", stem)
    out = Path(outdir)
    folder = out if out.name in ("out", f"out_{stem}") else out / "out"
    return ReadoutLayout(folder, stem)


def readout_dir(infile: str | os.PathLike, outdir: str | os.PathLike | None) -> Path:
    """ReadoutXFM's output folder: ``<dir>/out_<stem>`` or ``-o`` with ``/out`` appended unless it
    already ends in ``out`` or ``out_<stem>`` (see :func:`readout_layout`)."""
    return readout_layout(infile, outdir).folder


def write_pixel_stats(index: GeoPixeIndex, layout: ReadoutLayout) -> list[Path]:
    """Write ReadoutXFM's pixel statistics from the record index alone (no spectra decoded).

    Each ``data/pxstats_<name>.npy`` of :data:`PIXEL_STATS` is a (pixels, detectors) array over the
    rows present, in record order, zero where a truncated map has no record;
    ``pxstats_present.npy`` flags the records present.

    Parameters
    ----------
    index : GeoPixeIndex
        From :func:`~xrfdask.io.geopixe.build_index`.
    layout : ReadoutLayout
        Its ``data/`` folder is created when missing.

    Returns
    -------
    list of Path
        The files written.
    """
    layout.data.mkdir(parents=True, exist_ok=True)
    npx = index.nrows * index.xres
    table = index.to_dataset()
    written = []
    for name, (var, dtype) in PIXEL_STATS.items():
        values = np.zeros(npx * index.ndet, dtype=dtype)
        values[: index.n_records] = table[var].values
        written.append(_save(layout.pixel_stats(name), values.reshape(npx, index.ndet)))
    present = index.present().reshape(npx, index.ndet)
    written.append(_save(layout.pixel_stats("present"), present))
    log.info("pixel statistics of %s -> %s", index.path, layout.data)
    return written


def write_pixel_sums(ds: xr.Dataset, layout: ReadoutLayout) -> int:
    """Decode the spectra and write the counts of each record to ``data/pxstats_sum.npy``.

    Parameters
    ----------
    ds : xarray.Dataset
        The raw map, from :func:`~xrfdask.open_geopixe`; its (y, x, detector) sums (small) are
        computed here.
    layout : ReadoutLayout
        Its ``data/`` folder must exist (:func:`write_pixel_stats` makes it).

    Returns
    -------
    int
        The total counts of the map.
    """
    total = ds.spectra.sum("channel", dtype=np.uint32).compute()  # eager-ok: per-pixel sums
    path = _save(layout.pixel_stats("sum"), total.values.reshape(-1, ds.sizes["detector"]))
    log.info("pixel sums of %s -> %s", ds.attrs.get("source_path", "the map"), path)
    return int(total.sum())


def _save(path: Path, values: np.ndarray) -> Path:
    np.save(path, values)
    return path
