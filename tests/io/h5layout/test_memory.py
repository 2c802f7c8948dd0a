"""Converting to the layout streams: peak memory does not grow with the map (4x map, same peak)."""

import pytest

from xrfdask.testing import peak_rss_of, write_tiled_geopixe

MiB = 2**20
JOB = """
import dask, xrfdask as xd
dask.config.set({{"xrfdask.chunk-size": "16MiB"}})
xd.{writer}(xd.open_geopixe(r"{path}", cache=False), r"{path}.{ext}", overwrite=True)
"""


@pytest.fixture(scope="module")
def maps(tmp_path_factory, sample_path):
    folder = tmp_path_factory.mktemp("convert-memory")
    return [write_tiled_geopixe(sample_path, folder / f"{ny}.GeoPIXE", ny, 200) for ny in (40, 160)]


@pytest.mark.slow
@pytest.mark.parametrize(("writer", "ext"), [("to_h5", "h5"), ("to_zarr", "zarr")])
def test_conversion_memory_is_bounded(maps, writer, ext):
    small, big = (peak_rss_of(JOB.format(writer=writer, path=p, ext=ext))[0] for p in maps)
    assert big - small < 48 * MiB, (
        f"{writer}: peak grew from {small / MiB:.0f} to {big / MiB:.0f} MiB"
    )
