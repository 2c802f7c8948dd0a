"""Beamline files to raw maps: ESRF ID15 (BLISS HDF5) and PETRA III P06 (NeXus/xspress3)."""
