"""A ``.GeoPIXE`` map described in a few lines from its record index (``xrfdask info``)."""

from __future__ import annotations

from typing import Any

from dask.utils import format_bytes

__all__ = ["format_summary"]

_TUBE_FIELDS = (("Elt", " tube"), ("KV", " kV"), ("UA (µA)", " µA"))


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for :meth:`~xrfdask.io.geopixe.GeoPixeIndex.summary`.

    Parameters
    ----------
    summary : dict
        The facts known from the index alone (nothing decoded).

    Returns
    -------
    str
        One fact a line (file, header, map, dwell, detectors, channels, source, records, missing
        pixels, sizes, deadtime per detector), without a trailing newline.

    Examples
    --------
    >>> from xrfdask.io.geopixe import build_index
    >>> print(format_summary(build_index("map.GeoPIXE").summary()))  # doctest: +SKIP
    """
    s = summary
    lines = [f"file            {s['path']}  ({s['file_size']:,} bytes)"]
    stamp = f", recorded {s['timestamp']}" if s.get("timestamp") else ""
    lines.append(f"header          {s['header_length']} bytes of JSON{stamp}")
    size = ""
    if s["width_mm"] and s["height_mm"]:
        pitch_um = 1000 * s["width_mm"] / s["xres"]
        size = f", {s['width_mm']:.4g} x {s['height_mm']:.4g} mm, pixel {pitch_um:.3g} µm"
    lines.append(f"map             {s['xres']} x {s['yres']} pixels (x by y){size}")
    if s["dwell_ms"] is not None:
        lines.append(f"dwell           {s['dwell_ms']:g} ms per pixel")
    dets = f"{s['ndet']}"
    if s["header_dets"] is not None and s["header_dets"] != s["ndet"]:
        dets += f" (header Dets {s['header_dets']})"
    lines.append(f"detectors       {dets}; {s['detector_blocks']} Detector block(s) in the header")
    top = (s["nchan"] - 1) * s["gain_ev"] / 1000
    lines.append(f"channels        {s['nchan']} x {s['gain_ev']:g} eV (0 - {top:.2f} keV)")
    tube = s["tube"]
    if tube:
        parts = [f"{v}{unit}" for key, unit in _TUBE_FIELDS if (v := tube.get(key)) is not None]
        lines.append("source          " + " ".join(parts))
    state = "complete" if s["n_records"] == s["n_expected"] else "incomplete: scan stopped early"
    lines.append(f"records         {s['n_records']:,} of {s['n_expected']:,} ({state})")
    lines.append(f"missing pixels  {s['missing_pixels']:,}")
    if s["dropped_offset"] is not None:
        lines.append(f"dropped         incomplete record at offset {s['dropped_offset']:,}")
    dense, file = format_bytes(s["dense_bytes"]), format_bytes(s["file_size"])
    lines.append(f"dense size      {dense} as uint16 (file {file})")
    for det, (lo, hi, mean) in s["deadtime"].items():
        line = f"deadtime det {det:<3}{lo:.2f} - {hi:.2f} % (mean {mean:.2f} %)"
        if lo == hi == 0:  # every record at 0.0: not measured (spec 4.3's rule)
            line += "  not measured: every record 0.0 (xd.predict_deadtime fills it)"
        lines.append(line)
    return "\n".join(lines)
