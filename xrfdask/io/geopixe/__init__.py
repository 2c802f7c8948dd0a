"""The IXRF/CSIRO ``.GeoPIXE`` format: header, record index, lazy reader and streaming writer."""

from xrfdask.io.geopixe.header import GeoPixeHeader, dump_header, read_header
from xrfdask.io.geopixe.index import GeoPixeIndex, build_index, index_geopixe
from xrfdask.io.geopixe.reader import open_geopixe

__all__ = [
    "GeoPixeHeader",
    "GeoPixeIndex",
    "build_index",
    "dump_header",
    "index_geopixe",
    "open_geopixe",
    "read_header",
]
