"""Fixtures shared by the HDF5 layout's tests."""

import pytest

from xrfdask.io.h5layout import h5chunks, inflate_kernels


@pytest.fixture
def inflated(monkeypatch):
    """A list that gets one entry per stored chunk decompressed, on either reading path."""
    calls = []
    real = h5chunks.inflate
    monkeypatch.setattr(
        h5chunks, "inflate", lambda raw, size: calls.append(size) or real(raw, size)
    )
    for name in ("place_into", "sum_into"):
        kernel = getattr(inflate_kernels, name)

        def counted(buf, starts, *args, kernel=kernel):
            calls.extend(s for s in starts.tolist() if s >= 0)  # the chunks ever written
            return kernel(buf, starts, *args)

        monkeypatch.setattr(inflate_kernels, name, counted)
    return calls
