"""Figures: overview images of element maps (more plots arrive with their issues)."""

from xrfdask.plot.detlim import detection_limits
from xrfdask.plot.maps import element_maps

__all__ = ["element_maps", "detection_limits"]
