"""Figures: overview images of element maps (more plots arrive with their issues)."""

from xrfdask.plot.classes import classes
from xrfdask.plot.colour import colour_image
from xrfdask.plot.deadtime import deadtime
from xrfdask.plot.detlim import detection_limits
from xrfdask.plot.maps import element_maps

__all__ = ["classes", "colour_image", "deadtime", "detection_limits", "element_maps"]
