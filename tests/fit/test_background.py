"""The compiled background against PyMca's own per-spectrum code (``_fitBkgSubtract``)."""

from __future__ import annotations

import numpy as np
import pytest
from PyMca5.PyMcaMath.fitting import SpecfitFuns
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

from xrfdask.fit.background import snip_background, subtract_background

N_CHANNELS = 300

# Anchor lists as a caller may pass them; PyMca sorts them (``_fitBkgAnchorList``) and skips
# those outside (last anchor, n).
ANCHORS = {
    "none": None,
    "empty": [],
    "pymca-default": [0, N_CHANNELS - 1],
    "sorted": [40, 150, 220],
    "messy": [220, 0, 150, 150, -3, N_CHANNELS, 1000, 40, 41],
    "first-channel": [1],
    "numpy": np.array([298, 7], dtype=np.int32),
}


def pymca_background(
    spectra: np.ndarray, snip_width: float, filter_width: float = 1, anchors=None
) -> np.ndarray:
    """Background of each row from PyMca's ``_fitBkgSubtract`` itself, in float64 as PyMca."""
    chunk = np.array(spectra, dtype=np.float64).T.copy()  # PyMca's (channels, pixels) layout
    background = np.full_like(chunk, np.nan)
    anchorslist = sorted(int(a) for a in anchors) if anchors is not None else []
    config = {"fit": {"snipwidth": snip_width, "stripfilterwidth": filter_width}}
    FastXRFLinearFit._fitBkgSubtract(
        chunk, config=config, anchorslist=anchorslist, fitmodel=background
    )
    return background.T


def poisson_spectra(n_pixels: int, n_channels: int = N_CHANNELS, seed: int = 0) -> np.ndarray:
    """Counts: a decaying continuum plus a few Gaussian peaks, Poisson noise, a few odd pixels."""
    rng = np.random.default_rng(seed)
    ch = np.arange(n_channels)
    scale = rng.uniform(0.05, 5.0, (n_pixels, 1))
    model = scale * (40 * np.exp(-ch / (0.4 * n_channels)) + 3)
    for _ in range(6):
        centre = rng.uniform(0, n_channels, (n_pixels, 1))
        sigma = rng.uniform(1.5, 6, (n_pixels, 1))
        model += (
            scale
            * rng.uniform(5, 2000, (n_pixels, 1))
            * np.exp(-0.5 * ((ch - centre) / sigma) ** 2)
        )
    counts = rng.poisson(model).astype(np.float64)
    counts[0] = 0.0  # an empty pixel
    counts[1, n_channels // 2 :] = 0.0  # counts stop half-way
    counts[2] = rng.poisson(0.3, n_channels)  # nearly empty: mostly zeros and ones
    return counts


@pytest.fixture(scope="module")
def spectra() -> np.ndarray:
    return poisson_spectra(24)


@pytest.mark.parametrize("anchors", list(ANCHORS.values()), ids=list(ANCHORS))
@pytest.mark.parametrize("filter_width", [1, 3, 7, 10])
@pytest.mark.parametrize("snip_width", [1, 7, 30, 60])
def test_float64_matches_pymca(spectra, snip_width, filter_width, anchors):
    expected = pymca_background(spectra, snip_width, filter_width, anchors)
    got = snip_background(spectra, snip_width, filter_width=filter_width, anchors=anchors)
    assert got.dtype == np.float64 and got.shape == spectra.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "anchors", [None, ANCHORS["pymca-default"], ANCHORS["messy"]], ids=["none", "default", "messy"]
)
@pytest.mark.parametrize("filter_width", [1, 3, 7, 10])
@pytest.mark.parametrize("snip_width", [1, 7, 30, 60])
def test_float32_close_to_float64_truth(spectra, snip_width, filter_width, anchors):
    x32 = spectra.astype(np.float32)
    expected = pymca_background(x32, snip_width, filter_width, anchors)
    got = snip_background(x32, snip_width, filter_width=filter_width, anchors=anchors)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("n_channels", [1, 2, 3, 4, 5, 6, 7, 8, 12, 20, 61])
@pytest.mark.parametrize("snip_width", [0, 1, 7, 30, 60])
@pytest.mark.parametrize("filter_width", [1, 5, 7, 10, 21])
def test_short_spectra(n_channels, snip_width, filter_width):
    # Shorter than 2*width+1 (SNIP passes that reach no channel) and than the filter.
    x = poisson_spectra(5, n_channels, seed=n_channels)
    for anchors in (None, [0, n_channels - 1], [n_channels // 2]):
        expected = pymca_background(x, snip_width, filter_width, anchors)
        got = snip_background(x, snip_width, filter_width=filter_width, anchors=anchors)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_single_channel_and_empty_shapes():
    one = np.array([[7.0], [0.0]])
    np.testing.assert_array_equal(snip_background(one, 30, filter_width=7, anchors=[0, 0]), one)
    for shape in [(0, 50), (3, 0), (0, 0)]:
        empty = np.zeros(shape)
        assert snip_background(empty, 30, filter_width=7).shape == shape
        assert subtract_background(empty, 30).shape == shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_zero_spectra(dtype):
    x = np.zeros((4, 200), dtype=dtype)
    bkg = snip_background(x, 30, filter_width=7, anchors=[0, 100, 199])
    assert bkg.dtype == dtype
    np.testing.assert_array_equal(bkg, 0.0)
    np.testing.assert_array_equal(subtract_background(x, 30, filter_width=7), 0.0)


def test_hand_computed_snip():
    d = np.array([[0.0, 8, 8, 0, 6, 2, 4]])
    # Width 2. Pass p=2, i in [2, 5), from the input:
    #   i=2: min(8, (0+6)/2=3) = 3;  i=3: min(0, (8+2)/2=5) = 0;  i=4: min(6, (8+4)/2=6) = 6
    #   -> [0, 8, 3, 0, 6, 2, 4]
    # Pass p=1, i in [1, 6), all from the values after pass 2 (not updated in place):
    #   i=1: min(8, (0+3)/2) = 1.5;  i=2: min(3, (8+0)/2=4) = 3 (in place it would be 0.75)
    #   i=3: min(0, (3+6)/2) = 0;    i=4: min(6, (0+2)/2=1) = 1;  i=5: min(2, (6+4)/2=5) = 2
    np.testing.assert_array_equal(snip_background(d, 2), [[0, 1.5, 3, 0, 1, 2, 4]])
    # Anchor 3 splits [0, 3) and [3, 7); a 3-channel segment only has pass p=1 at its middle:
    #   [0, 8, 8] -> [0, min(8, (0+8)/2=4), 8];  [0, 6, 2, 4] -> [0, min(6, 1), min(2, 5), 4]
    np.testing.assert_array_equal(snip_background(d, 2, anchors=[3]), [[0, 4, 8, 0, 1, 2, 4]])
    np.testing.assert_array_equal(subtract_background(d.copy(), 2), d - [[0, 1.5, 3, 0, 1, 2, 4]])
    # Width 2 with PyMca's default anchors [0, n-1]: [0, 6) stripped, channel 6 alone.
    np.testing.assert_array_equal(
        snip_background(d, 2, anchors=[0, 6]), pymca_background(d, 2, 1, [0, 6])
    )


def test_hand_computed_savitzky_golay():
    # 7 points: m = 3, den = 5*7*9 = 315, coeff(j) = 3 (35 - 5j²) = [-30, 45, 90, 105, 90, 45, -30]
    # Before the weighted sums, channels [0, 3) and [n-4, n-1) = [3, 6) are each smoothed
    # 7//3 + 1 = 3 times by smooth1d: y[i] = (y[i-1] + 2 y[i] + y[i+1]) / 4 from left to right
    # (y[i-1] the value before its update, y[-1] = y[0]), last y = (prev + 3 y) / 4.
    d = np.array([[0.0, 0, 0, 0, 0, 8, 0]])
    # [3, 6) = [0, 0, 8] -> [0, 2, 6] -> [0.5, 2.5, 5] -> [1, 2.625, 4.375]; channel 6 untouched.
    # Channel 3: (105*1 + 90*2.625 + 45*4.375 - 30*0) / 315 = 538.125 / 315 > 0.
    expected = [[0, 0, 0, 538.125 / 315, 2.625, 4.375, 0]]
    np.testing.assert_allclose(snip_background(d, 0, filter_width=7), expected, rtol=1e-15)
    np.testing.assert_allclose(
        snip_background(d, 0, filter_width=6), expected, rtol=1e-15
    )  # even: +1
    # [0, 3) = [10, 0, 0] -> [7.5, 2.5, 0] -> [6.25, 3.125, 0.625] -> [5.46875, 3.28125, 1.25].
    # Channel 3: -30*5.46875 + 45*3.28125 + 90*1.25 - 30*20 = -503.90625 <= 0: keeps its value 0.
    d = np.array([[10.0, 0, 0, 0, 0, 0, 20]])
    np.testing.assert_array_equal(
        snip_background(d, 0, filter_width=7), [[5.46875, 3.28125, 1.25, 0, 0, 0, 20]]
    )
    # The same numbers are PyMca's.
    np.testing.assert_array_equal(
        SpecfitFuns.SavitskyGolay(d[0], 7), [5.46875, 3.28125, 1.25, 0, 0, 0, 20]
    )
    # 3 points: coeff = [0, 15, 0] / 15, the identity; 5 points: too few edge channels to smooth.
    x = poisson_spectra(3, 40)
    np.testing.assert_array_equal(snip_background(x, 0, filter_width=3), x)
    np.testing.assert_array_equal(
        snip_background(x, 0, filter_width=5)[:, [0, 1, -2, -1]], x[:, [0, 1, -2, -1]]
    )


def test_block_independence():
    x = poisson_spectra(97, seed=3)
    kwargs = dict(filter_width=7, anchors=[0, 120, N_CHANNELS - 1])
    whole = snip_background(x, 30, **kwargs)
    rng = np.random.default_rng(1)
    for _ in range(5):
        cuts = np.sort(rng.choice(np.arange(1, len(x)), size=rng.integers(1, 12), replace=False))
        parts = [snip_background(block, 30, **kwargs) for block in np.split(x, cuts)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    order = rng.permutation(len(x))
    np.testing.assert_array_equal(snip_background(x[order], 30, **kwargs), whole[order])
    singles = np.concatenate([snip_background(x[i : i + 1], 30, **kwargs) for i in range(len(x))])
    np.testing.assert_array_equal(singles, whole)
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        ref = subtract_background(xd.copy(), 30, **kwargs)
        parts = [subtract_background(block.copy(), 30, **kwargs) for block in np.array_split(xd, 7)]
        np.testing.assert_array_equal(np.concatenate(parts), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subtract_in_place_matches_pymca(spectra, dtype):
    x = spectra.astype(dtype)
    anchors = [0, N_CHANNELS - 1]
    bkg = snip_background(x, 30, filter_width=10, anchors=anchors)
    y = x.copy()
    assert subtract_background(y, 30, filter_width=10, anchors=anchors) is y
    np.testing.assert_array_equal(y, x - bkg)
    # PyMca's own subtraction, in float64 on the same input.
    chunk = x.astype(np.float64).T.copy()
    config = {"fit": {"snipwidth": 30, "stripfilterwidth": 10}}
    FastXRFLinearFit._fitBkgSubtract(chunk, config=config, anchorslist=anchors)
    scale = np.abs(x).max()
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, chunk.T, rtol=0, atol=rtol * scale)


def test_exact_float32_equals_pymca_bit_for_bit():
    # PyMca strips float32 spectra in float64 and subtracts in place: float32(y - background).
    x = poisson_spectra(150).astype(np.float32)
    anchors = [0, 120, N_CHANNELS - 1]
    chunk = x.T.copy()
    config = {"fit": {"snipwidth": 30, "stripfilterwidth": 10}}
    FastXRFLinearFit._fitBkgSubtract(chunk, config=config, anchorslist=anchors)
    y = x.copy()  # more than one 64-row slice, and a partial one
    assert subtract_background(y, 30, filter_width=10, anchors=anchors, exact=True) is y
    np.testing.assert_array_equal(y, chunk.T)
    one = x[3].copy()
    subtract_background(one, 30, filter_width=10, anchors=anchors, exact=True)
    np.testing.assert_array_equal(one, chunk.T[3])
    # Without exact, float32 is stripped in float32: close, not equal.
    fast = x.copy()
    subtract_background(fast, 30, filter_width=10, anchors=anchors)
    assert not np.array_equal(fast, y)


def test_out_argument_and_layouts(spectra):
    expected = snip_background(spectra, 7, filter_width=7)
    out = np.empty_like(spectra)
    assert snip_background(spectra, 7, filter_width=7, out=out) is out
    np.testing.assert_array_equal(out, expected)
    inplace = spectra.copy()
    assert snip_background(inplace, 7, filter_width=7, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    # In place without smoothing (SNIP's first pass then reads the input row) and with anchors.
    kwargs = dict(anchors=[0, 100, N_CHANNELS - 1])
    inplace = spectra.copy()
    snip_background(inplace, 30, out=inplace, **kwargs)
    np.testing.assert_array_equal(inplace, snip_background(spectra, 30, **kwargs))
    # An out overlapping the input other than exactly: rows reversed.
    flipped = spectra.copy()
    snip_background(flipped, 30, out=flipped[::-1], **kwargs)
    np.testing.assert_array_equal(flipped[::-1], snip_background(spectra, 30, **kwargs))
    # Non-contiguous input, a single 1-D spectrum, float widths truncated like PyMca's (int) cast.
    np.testing.assert_array_equal(
        snip_background(np.asfortranarray(spectra), 7, filter_width=7), expected
    )
    np.testing.assert_array_equal(snip_background(spectra[::2], 7, filter_width=7), expected[::2])
    np.testing.assert_array_equal(snip_background(spectra[5], 7, filter_width=7), expected[5])
    np.testing.assert_array_equal(snip_background(spectra, 7.9, filter_width=7.5), expected)
    strided = np.zeros((spectra.shape[0], 2 * spectra.shape[1]))
    view = strided[:, ::2]
    view[...] = spectra
    subtract_background(view, 7, filter_width=7)
    np.testing.assert_array_equal(view, spectra - expected)
    np.testing.assert_array_equal(strided[:, 1::2], 0.0)


def test_bad_arguments(spectra):
    with pytest.raises(TypeError):
        snip_background(spectra.astype(np.int32), 30)
    with pytest.raises(TypeError):
        snip_background(spectra.tolist(), 30)
    with pytest.raises(ValueError):
        snip_background(spectra[None], 30)
    with pytest.raises(ValueError):
        snip_background(spectra, 30, out=np.empty(spectra.shape, np.float32))
    with pytest.raises(ValueError):
        snip_background(spectra, 30, out=np.empty((1, N_CHANNELS)))
    with pytest.raises(TypeError):
        snip_background(spectra, 30, anchors=[10.5])
    frozen = spectra.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        subtract_background(frozen, 30)
    # A read-only input is fine when only the background is asked for.
    np.testing.assert_array_equal(snip_background(frozen, 30), snip_background(spectra, 30))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_values_follow_pymca():
    x = poisson_spectra(3, 80, seed=5)
    x[0, 30] = np.nan
    x[1, 50] = np.inf
    x[2, 10] = -np.inf
    for filter_width in (1, 7):
        expected = pymca_background(x, 7, filter_width, [0, 40])
        got = snip_background(x, 7, filter_width=filter_width, anchors=[0, 40])
        np.testing.assert_array_equal(got, expected)


def _savgol_transliterated(data: np.ndarray, width: float) -> np.ndarray:
    """PyMca 5.9's C ``SavitskyGolay`` and ``smooth1d`` line by line, minus its 101-point cap."""

    def smooth1d(d, lo, size):
        if size < 3:
            return
        prev = d[lo]
        for i in range(lo, lo + size - 1):
            nxt = 0.25 * (prev + 2 * d[i] + d[i + 1])
            prev = d[i]
            d[i] = nxt
        d[lo + size - 1] = 0.25 * prev + 0.75 * d[lo + size - 1]

    output = np.array(data, dtype=np.float64)
    n = output.size
    npoints = int(width)
    if npoints % 2 == 0:
        npoints += 1
    if npoints < 3 or n < npoints:
        return output
    m = npoints // 2
    den = float((2 * m - 1) * (2 * m + 1) * (2 * m + 3))
    coeff = [float(3 * (3 * m * m + 3 * m - 1 - 5 * (j - m) ** 2)) for j in range(npoints)]
    for _ in range(npoints // 3 + 1):
        smooth1d(output, 0, m)
    for _ in range(npoints // 3 + 1):
        smooth1d(output, n - m - 1, m)
    data = output.copy()
    for i in range(m, n - m):
        dhelp = 0.0
        for j in range(-m, m + 1):
            dhelp += coeff[m + j] * data[i + j]
        if dhelp > 0.0:
            output[i] = dhelp / den
    return output


@pytest.mark.parametrize("filter_width", [7, 10, 51, 101, 151])
def test_wide_filters_follow_the_c_formula(filter_width):
    # PyMca overflows a 101-coefficient stack buffer beyond 101 points (it crashes at 151), so
    # wide filters are checked against a line-by-line transliteration, itself checked against
    # PyMca where PyMca is safe.
    x = poisson_spectra(3, 400, seed=filter_width)
    expected = np.array([_savgol_transliterated(row, filter_width) for row in x])
    if filter_width <= 101:
        np.testing.assert_array_equal(
            expected, [SpecfitFuns.SavitskyGolay(row, filter_width) for row in x]
        )
    got = snip_background(x, 0, filter_width=filter_width)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
