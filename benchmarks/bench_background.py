"""Benchmark: SNIP background subtraction, spectra/s on one thread, against PyMca's loop.

The baseline is ``FastXRFLinearFit._fitBkgSubtract``'s per-spectrum loop (SavitskyGolay then
snip1d per anchor segment, PyMca5 C functions called once per spectrum); xrfdask runs the same
arithmetic (bit-exact, see tests/fit/test_background.py) as one numba kernel over the block.

    python benchmarks/bench_background.py
"""

from __future__ import annotations

import numpy as np
from _timing import best_of

from xrfdask.fit.background import subtract_background


def _pymca_loop(chunk: np.ndarray, snip_width: int, filter_width: int, anchors: list[int]) -> None:
    """``FastXRFLinearFit._fitBkgSubtract`` on a (channels, pixels) chunk, minus its config dict."""
    from PyMca5.PyMcaMath.fitting import SpecfitFuns

    for k in range(chunk.shape[1]):
        bkg = SpecfitFuns.SavitskyGolay(chunk[:, k], filter_width)
        last = 0
        for anchor in anchors:
            if last < anchor < bkg.size:
                bkg[last:anchor] = SpecfitFuns.snip1d(bkg[last:anchor], snip_width, 0)
                last = anchor
        if last < bkg.size:
            bkg[last:] = SpecfitFuns.snip1d(bkg[last:], snip_width, 0)
        chunk[:, k] -= bkg


def main(n_pixels: int = 8192, n_channels: int = 1700, snip_width: int = 30) -> None:
    """Print spectra/s on one thread: PyMca's per-spectrum loop, then ``subtract_background``."""
    rng = np.random.default_rng(0)
    ch = np.arange(n_channels)
    model = 200 * np.exp(-ch / 600) + 5000 * np.exp(-0.5 * ((ch - 700) / 8) ** 2)
    data = rng.poisson(model, (n_pixels, n_channels)).astype(np.float64)
    anchors = [0, n_channels - 1]  # PyMca's anchor list when none are configured
    print(f"{n_pixels} spectra of {n_channels} channels, snip width {snip_width}, one thread")
    for filter_width in (1, 7):
        n_ref = 1000
        chunk = data[:n_ref].T.copy()  # PyMca's (channels, pixels) layout
        args = (snip_width, filter_width, anchors)
        t = best_of(lambda chunk=chunk, args=args: _pymca_loop(chunk.copy(), *args))
        print(f"filter width {filter_width}: PyMca loop      {n_ref / t:9.0f} spectra/s")
        for dtype in (np.float64, np.float32):
            x = data.astype(dtype)
            y = x.copy()
            kwargs = dict(filter_width=filter_width, anchors=anchors)
            subtract_background(y[:4], snip_width, **kwargs)  # compile, or load the cache

            def refill(x=x, y=y):
                y[...] = x

            def run(y=y, kwargs=kwargs):
                refill()
                subtract_background(y, snip_width, **kwargs)

            t = best_of(run) - best_of(refill)
            name = np.dtype(dtype).name
            print(f"filter width {filter_width}: xrfdask {name:7s} {n_pixels / t:9.0f} spectra/s")


if __name__ == "__main__":
    main()
