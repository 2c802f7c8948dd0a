"""xrfdask: X-ray fluorescence hyperspectral maps larger than memory, as dask-backed xarray objects."""

from xrfdask.errors import ConfigError, FormatError, TruncatedMapWarning, XrfdaskError, XrfdaskWarning
from xrfdask.io.geopixe import index_geopixe, open_geopixe

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FormatError",
    "TruncatedMapWarning",
    "XrfdaskError",
    "XrfdaskWarning",
    "__version__",
    "index_geopixe",
    "open_geopixe",
]
