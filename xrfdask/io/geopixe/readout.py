"""ReadoutXFM's outputs for a ``.GeoPIXE`` map: where they go, and its pixel-statistics files.

The folder is ``<dir of the map>/out_<stem>/``, or ``-o DIR`` with ``/out`` appended unless DIR
already ends in ``out`` or ``out_<stem>``. Inside::

    data/pxstats_{pxlen,xidx,yidx,det,dt,present}.npy   from the record index, (pixels, detectors)
    data/pxstats_sum.npy                                 counts per record (records read)
    data/pxstats_dtmod.npy                               the dead times written (``-dt``)
    data/dataset.npy, data/dataset.zarr                  the (y, x, detector, channel) cube
    embeddings/colourmap_{red,green,blue}.txt            the colour map (``-a``)
    embeddings/{embedding_2d,categories,classavg}.npy    the classification (``-c``)
    plots/*.png                                          dead-time plots, colours.png (``-a``);
                                                         class map and spectra (``-c``)
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
    "write_colour_files",
    "write_pixel_deadtimes",
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
    def plots(self) -> Path:
        """The ``plots/`` sub-folder: dead-time plots, the colour image, class plots."""
        return self.folder / "plots"

    @property
    def embeddings(self) -> Path:
        """The ``embeddings/`` sub-folder: colour-map values and classification files."""
        return self.folder / "embeddings"

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


def write_pixel_sums(
    ds: xr.Dataset, layout: ReadoutLayout, *, counts: xr.DataArray | None = None
) -> int:
    """Write the counts of each record to ``data/pxstats_sum.npy``.

    Parameters
    ----------
    ds : xarray.Dataset
        The raw map, from :func:`~xrfdask.open_geopixe`.
    layout : ReadoutLayout
        Its ``data/`` folder must exist (:func:`write_pixel_stats` makes it).
    counts : xarray.DataArray, optional
        The (y, x, detector) totals when already computed; default
        :func:`xrfdask.deadtime.pixel_counts` of ``ds``, computed here: for a ``.GeoPIXE`` map
        from the sparse records (every record read and checked, no dense spectrum built).

    Returns
    -------
    int
        The total counts of the map.
    """
    if counts is None:
        from xrfdask.deadtime import pixel_counts

        counts = pixel_counts(ds).compute()  # eager-ok: per-pixel sums
    values = np.asarray(counts.transpose("y", "x", "detector").values, dtype=np.uint32)
    path = _save(layout.pixel_stats("sum"), values.reshape(-1, ds.sizes["detector"]))
    log.info("pixel sums of %s -> %s", ds.attrs.get("source_path", "the map"), path)
    return int(values.sum(dtype=np.uint64))


def write_pixel_deadtimes(ds: xr.Dataset, layout: ReadoutLayout) -> Path:
    """Write the dead times a rewrite stores (``ds.deadtime``: measured, predicted or filled) to
    ``data/pxstats_dtmod.npy``, (pixels, detectors) float32 like ``pxstats_dt.npy`` (0 where a
    pixel has no record).

    ``ds.deadtime`` is computed here when lazy (a prediction: one pass over the records).
    """
    dt = ds["deadtime"].transpose("y", "x", "detector")
    values = np.asarray(dt.values, dtype=np.float32)  # eager-ok: (y, x, detector), small
    values = np.where(np.isfinite(values), values, np.float32(0.0))
    return _save(layout.pixel_stats("dtmod"), values.reshape(-1, values.shape[-1]))


#: ``embeddings/colourmap_<band>.txt``: ReadoutXFM's colour-map files, one value per pixel.
COLOUR_FILES = ("red", "green", "blue")


def write_colour_files(colour: xr.Dataset, layout: ReadoutLayout) -> list[Path]:
    """Write a :func:`xrfdask.colour_map` result as ReadoutXFM does (spec ``geopixe.md`` 5.1).

    ``embeddings/colourmap_{red,green,blue}.txt``: each band's values over the common maximum,
    one pixel a line in row-major order, ``%.18e`` (numpy's ``savetxt`` default); and
    ``plots/colours.png``, the uint8 image at 150 dpi. Computes the colour map (one pass over
    the spectra). With ``compat="readoutxfm"`` the files hold the original's numbers, its
    green/blue swap included.

    Returns
    -------
    list of Path
        The files written.
    """
    from xrfdask.io.atomic import atomic_output
    from xrfdask.plot.colour import colour_image

    colour = colour.compute()  # eager-ok: (y, x, 3) per-pixel colours, not spectra
    layout.embeddings.mkdir(parents=True, exist_ok=True)
    written = []
    for band in COLOUR_FILES:
        path = layout.embeddings / f"colourmap_{band}.txt"
        with atomic_output(path, overwrite=True) as tmp:
            np.savetxt(tmp, colour["rgb"].sel(band=band).values.reshape(-1))
        written.append(path)
    written.append(Path(colour_image(colour, layout.plots / "colours.png")))
    return written


def _save(path: Path, values: np.ndarray) -> Path:
    np.save(path, values)
    return path
