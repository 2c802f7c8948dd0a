"""``xd.colour_map``: a map's spectra as one colour image (ReadoutXFM's ``-a`` colour map).

Every pixel's detector-summed spectrum ``s`` is weighted by three per-channel curves ``R``, ``G``,
``B`` (spec ``geopixe.md`` 5.1): ``r = sum(s R) / C``, ``g = sum(s G) / C``, ``b = sum(s B) / C``
for ``C`` channels, and the three maps are divided by their one common maximum. The curves:

``"hsv"`` (ReadoutXFM HEAD, spec 5.2)
    matplotlib's ``hsv`` colormap resampled to ``k`` entries over channels ``0 .. k-1``, where
    ``k`` is the channel nearest the tube's scatter energy + 3 keV; pure red above. The hue runs
    red, yellow, green, cyan, blue, magenta, red from 0 keV to the scatter peak + 3 keV.
``"hsv_white"`` (xfmkit HEAD, spec 5.3)
    magenta below 1 keV, then magenta, red, yellow, green, cyan, blue, magenta, white up to the
    scatter energy, white above.

The scatter energy is the tube anode's Kα (xraylib, rate-weighted Kα1/Kα2) from the map's
``tube_element``, or ``elastic=``; channels are found by nearest energy, never by float
equality (xfmkit's search fails for a Cu tube). Two faults of every original version are fixed:
green and blue are not swapped, and the brightest value does not wrap to black in the uint8
image. ``compat="readoutxfm"`` reproduces the original's ``colourmap_{red,green,blue}.txt`` values
(its constants, the swap and the wrap included) for comparisons with old outputs.

One pass over the spectra: per block, the summed spectrum's three weighted sums; the maximum is
a reduction of those small (y, x, 3) sums, computed in the same graph. A ``.GeoPIXE`` map is
weighted straight from its sparse records (the reader's ``pixel_weighted_sums`` fast path: no
dense block, faster than a plain decode); other arrays block by block.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.errors import ConfigError

__all__ = ["SCHEMES", "colour_map", "colour_weights", "scatter_energy"]

SCHEMES = ("hsv", "hsv_white")
ELASTIC_READOUTXFM = 17.44  # keV: ReadoutXFM's constant (a Mo tube), used by compat only
HSV_OFFSET_KEV = 3.0  # "hsv": the hue wraps to red this far above the scatter peak
WHITE_LOW_KEV = 1.0  # "hsv_white": magenta below (xfmkit's channel 100 at 10 eV)
_WHITE_ANCHORS = (0.0, 0.143, 0.286, 0.429, 0.571, 0.714, 0.857, 1.0)
_WHITE_COLOURS = ((1, 0, 1), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 1, 1), (0, 0, 1), (1, 0, 1),
                  (1, 1, 1))  # fmt: skip


def scatter_energy(ds: xr.Dataset, elastic: float | None = None) -> float:
    """The elastic-scatter energy (keV): ``elastic``, else the tube anode's Kα from xraylib."""
    if elastic is not None:
        if not np.isfinite(elastic) or elastic <= 0:
            raise ConfigError(f"colour_map: elastic={elastic!r} must be a positive energy (keV)")
        return float(elastic)
    element = ds.attrs.get("tube_element")
    if not isinstance(element, str) or not element.strip():
        raise ConfigError(
            "colour_map: the map names no tube element (attrs['tube_element']): pass elastic= "
            "the scatter energy in keV"
        )
    import xraylib

    try:
        z = xraylib.SymbolToAtomicNumber(element.strip())
        lines = [(xraylib.LineEnergy(z, m), xraylib.RadRate(z, m))
                 for m in (xraylib.KL3_LINE, xraylib.KL2_LINE)]  # fmt: skip
    except ValueError:
        raise ConfigError(
            f"colour_map: no K alpha energy for tube element {element!r}: pass elastic="
        ) from None
    total = sum(rate for _, rate in lines)
    return float(sum(e * rate for e, rate in lines) / total)


def _nearest(energy: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(energy - value)))


def colour_weights(energy: np.ndarray, scheme: str = "hsv", elastic: float = 17.44) -> np.ndarray:
    """The (channel, 3) R, G, B weight curves of ``scheme`` on an energy axis (keV).

    Parameters
    ----------
    energy : numpy.ndarray
        Energy of every channel (keV), increasing.
    scheme : {"hsv", "hsv_white"}
    elastic : float
        The scatter energy (keV); see :func:`scatter_energy`.
    """
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap

    energy = np.asarray(energy, dtype=np.float64)
    n = energy.size
    weights = np.zeros((n, 3))
    if scheme == "hsv":
        k = max(2, _nearest(energy, elastic + HSV_OFFSET_KEV))
        # matplotlib's own resampled table, as ReadoutXFM builds it (integer lookups 0..k-1).
        weights[:k] = colormaps["hsv"].resampled(k)(np.arange(k))[:, :3]
        weights[k:] = (1.0, 0.0, 0.0)
    elif scheme == "hsv_white":
        lo, hi = _nearest(energy, WHITE_LOW_KEV), _nearest(energy, elastic)
        if hi - lo < 2:
            raise ConfigError(
                f"colour_map: the scatter energy {elastic:g} keV is not above "
                f"{WHITE_LOW_KEV:g} keV on this energy axis"
            )
        cmap = LinearSegmentedColormap.from_list(
            "hsv_white", list(zip(_WHITE_ANCHORS, _WHITE_COLOURS, strict=True)), N=hi
        )
        weights[:lo] = (1.0, 0.0, 1.0)
        weights[lo:hi] = cmap(np.linspace(0.0, 1.0, hi - lo))[:, :3]
        weights[hi:] = (1.0, 1.0, 1.0)
    else:
        raise ConfigError(f"colour_map: scheme={scheme!r}; expected one of {SCHEMES}")
    return weights


def _weighted_sums(block: np.ndarray, weights: np.ndarray, log: bool) -> np.ndarray:
    """(y, x, 3) weighted sums of one (y, x, detector, channel) block's summed spectra."""
    summed = block.sum(axis=2, dtype=np.float64)
    if log:
        summed = np.log(summed, out=np.zeros_like(summed), where=summed > 0)
    return (summed @ weights) / block.shape[-1]


def _pixel_sums(data, weights: np.ndarray, log: bool) -> da.Array:
    """(y, x, 3) weighted sums / channels, lazily: from a reader's sparse records when it offers
    them (no dense decode, ``log`` False only), else one task per block of dense spectra."""
    from xrfdask.io import fastpaths

    fast = None if log else fastpaths.pixel_weighted_sums(data, weights)
    if fast is not None:
        return fast / data.shape[-1]
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(max(1, data.shape[0] // 4), -1, -1, -1))
    data = data.rechunk({2: -1, 3: -1})
    return data.map_blocks(
        _weighted_sums,
        weights,
        log,
        dtype=np.float64,
        drop_axis=[2, 3],
        new_axis=[2],
        chunks=(data.chunks[0], data.chunks[1], (3,)),
    )


def colour_map(
    ds: xr.Dataset,
    scheme: str = "hsv",
    *,
    elastic: float | None = None,
    log: bool = False,
    compat: str | None = None,
) -> xr.Dataset:
    """The map as a colour image: each spectrum weighted by three energy curves (lazy).

    Parameters
    ----------
    ds : xarray.Dataset
        A raw map (``spectra`` (y, x, detector, channel) with an ``energy`` coordinate).
    scheme : {"hsv", "hsv_white"}, default "hsv"
        ReadoutXFM's hue ramp up to the scatter peak + 3 keV, or xfmkit's ramp ending in white
        at the scatter peak (see the module).
    elastic : float, optional
        Scatter energy (keV); default the tube anode's Kα (``attrs["tube_element"]``).
    log : bool, default False
        Weight ln(counts) instead of counts (the originals' ``RGBLOG``).
    compat : {None, "readoutxfm"}
        ``"readoutxfm"``: ReadoutXFM's numbers exactly: its 17.44 keV scatter energy, its
        channel order (the "green" map holds the blue-weighted sum and vice versa) and its
        uint8 image in which the brightest value wraps to 0.

    Returns
    -------
    xarray.Dataset
        ``rgb`` (y, x, band) float64 in [0, 1] (the three sums over their common maximum) and
        ``image`` (y, x, band) uint8, ``band`` = red, green, blue; ``weights`` (channel, band).
        attrs: ``scheme``, ``elastic_kev``, ``log``, ``compat``.
    """
    if "spectra" not in ds:
        raise ConfigError("colour_map: the dataset has no 'spectra' variable (a raw map is needed)")
    if "energy" not in ds.coords:
        raise ConfigError("colour_map: the map has no 'energy' coordinate (a calibration)")
    if compat not in (None, "readoutxfm"):
        raise ConfigError(f"colour_map: compat={compat!r}; expected None or 'readoutxfm'")
    if compat == "readoutxfm" and scheme != "hsv":
        raise ConfigError("colour_map: compat='readoutxfm' is ReadoutXFM's 'hsv' scheme")
    scatter = ELASTIC_READOUTXFM if compat == "readoutxfm" else scatter_energy(ds, elastic)
    energy = np.asarray(ds["energy"].values, dtype=np.float64)  # eager-ok: 1-D coordinate
    weights = colour_weights(energy, scheme, scatter)
    spectra = ds["spectra"].transpose("y", "x", "detector", "channel")
    sums = _pixel_sums(spectra.data, weights, log)
    if compat == "readoutxfm":
        sums = sums[..., [0, 2, 1]]  # the original stores (r, b, g)
    peak = sums.max()
    rgb = sums / da.where(peak > 0, peak, 1.0)
    scaled = rgb * 256.0
    if compat == "readoutxfm":
        image = scaled.astype(np.int64).astype(np.uint8)  # 256 wraps to 0, as the original
    else:
        image = da.minimum(scaled, 255.0).astype(np.uint8)
    # The colour dim is "band": xarray forbids a 3-D variable named like one of its dims (rgb).
    dims = ("y", "x", "band")
    coords = {"y": ds["y"], "x": ds["x"], "band": ["red", "green", "blue"]}
    return xr.Dataset(
        {
            "rgb": (dims, rgb, {"long_name": "colour", "scheme": scheme}),
            "image": (dims, image, {"long_name": "colour image (uint8)"}),
            "weights": (("channel", "band"), weights, {"long_name": "weight curves"}),
        },
        coords={**coords, "channel": ds["channel"]},
        attrs={"scheme": scheme, "elastic_kev": scatter, "log": bool(log), "compat": str(compat)},
    )
