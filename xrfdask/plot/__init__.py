"""Figures: element-map overviews, correlation matrices, spectra, RGB composites, detection
limits, dead time and classes."""

from xrfdask.plot.classes import classes
from xrfdask.plot.colour import colour_image
from xrfdask.plot.correlation import correlation
from xrfdask.plot.deadtime import deadtime
from xrfdask.plot.detlim import detection_limits
from xrfdask.plot.maps import element_maps
from xrfdask.plot.overview import overview
from xrfdask.plot.rgb import rgb
from xrfdask.plot.spectrum import spectrum

__all__ = [
    "classes",
    "colour_image",
    "correlation",
    "deadtime",
    "detection_limits",
    "element_maps",
    "overview",
    "rgb",
    "spectrum",
]
