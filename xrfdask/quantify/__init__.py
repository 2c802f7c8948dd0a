"""Reference-based quantification: xrf_proc's ``quant_with_ref`` and ``div_by_cnc`` (spec 6).

- :func:`quantify`: normalised intensities -> concentrations (µg/cm² or µg/g), with reference
  yields, a normalising line, masks, mass fractions and the self-absorption correction.
- :func:`div_by_cnc`: concentrations relative to a reference material's certified ones.

Modules: :mod:`~xrfdask.quantify.references` (yields: loading, norm line, combination,
interpolation), :mod:`~xrfdask.quantify.masks`, :mod:`~xrfdask.quantify.absorption` (Kα/Kβ
ratio, rho t, correction factors), :mod:`~xrfdask.quantify.api`.
"""

from __future__ import annotations

from xrfdask.quantify.api import div_by_cnc, quantify

__all__ = ["quantify", "div_by_cnc"]
