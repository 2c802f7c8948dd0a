"""Readers and writers: ``.GeoPIXE``, the uniform HDF5 layout, zarr, beamline files."""
