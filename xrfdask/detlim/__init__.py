"""Detection limits and elemental yields of reference materials (xrf_proc's ``calc_detlim``).

- :func:`detection_limits` (:mod:`~xrfdask.detlim.limits`): 1 s and 1000 s detection limits and
  elemental yields from a reference map's normalised sum-spectrum areas and backgrounds.
- :func:`detection_limit_maps` (:mod:`~xrfdask.detlim.maps`): the detection limit of every pixel
  of a map, from its own counting time, flux and SNIP background under each line's windows.
"""

from xrfdask.detlim.limits import (
    YIELD_UNIT,
    ReferenceLines,
    concentration_unit,
    detection_limits,
    reference_concentrations,
)
from xrfdask.detlim.maps import detection_limit_maps, line_windows

__all__ = [
    "detection_limits",
    "detection_limit_maps",
    "reference_concentrations",
    "concentration_unit",
    "line_windows",
    "ReferenceLines",
    "YIELD_UNIT",
]
