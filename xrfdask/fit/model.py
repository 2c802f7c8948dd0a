"""The linear model of a map, built once from its global sum spectrum with PyMca's own code.

PyMca's fast fit (``FastXRFLinearFit.fitMultipleSpectra``) configures ``McaTheory``, runs
``setData`` + ``estimate`` on a reference spectrum (``ysum``) and takes the derivatives with
respect to every free parameter as a fixed design matrix. Doing that on the **global** sum spectrum
(one dask reduction over the whole map) is what makes a chunked fit give the same numbers as a
whole-map fit. :func:`build_model` repeats exactly those steps, through PyMca's functions, and
keeps what the per-block solvers need: the trimmed channel range, the design matrix, its SVD and
pseudo-inverse, the weights, the background settings and the parameter names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrfdask.errors import ConfigError
from xrfdask.fit.blas import one_blas_thread
from xrfdask.fit.pymcalib import PYMCA_LOCK, config_key, fast_fit, line_label

__all__ = ["LinearModel", "build_model", "check_with_pymca", "line_label"]


@dataclass(eq=False)
class LinearModel:
    """Everything a block solver needs, computed once per detector (picklable, a few hundred kB).

    Attributes
    ----------
    detector : label of the detector (or "sum") this model was built for
    config : dict, the PyMca configuration as used (after PyMca's own adjustments)
    xmin, xmax : int, trimmed channel range [xmin, xmax)
    derivatives : (channels, free) float64 design matrix ``A``
    free_names : PyMca names of the free parameters; the first ``n_free_bkg`` are background
    weight_policy : 0 no weights, 1 average weights from the sum spectrum, 2 per pixel
    sigma_b : (channels, 1) weights of policy 1 (None otherwise)
    svd : (U, s, Vh) of the weighted design matrix (policies 0 and 1)
    pinv : (free, channels) pseudo-inverse of the weighted design matrix
    sigma : (free,) parameter uncertainties of policies 0 and 1 (the same for every pixel)
    npixels : pixels of the whole map (PyMca's refit threshold is 0.25 % of them)
    """

    detector: Any
    config: dict
    xmin: int
    xmax: int
    derivatives: np.ndarray
    free_names: list[str]
    n_free_bkg: int
    weight_policy: int
    lstsq_weight: int
    sigma_b: np.ndarray | None
    anchors: list[int] | None
    svd: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    pinv: np.ndarray | None
    sigma: np.ndarray | None
    npixels: int
    sum_spectrum: np.ndarray = field(repr=False)
    result_dtype: np.dtype = np.dtype(np.float32)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for cache in ("_reduced_solver", "weights", "projection", "state_matrix"):
            state.pop(cache, None)  # per-process caches, rebuilt where needed
        return state

    @functools.cached_property
    def weights(self) -> np.ndarray | None:
        """(channels, 1) divisors of the weighted fit (policy 1), None when unweighted."""
        return None if self.sigma_b is None else pymca_weights(self.sigma_b)

    @functools.cached_property
    def projection(self) -> np.ndarray:
        """(free, channels) float64 matrix taking a background-free spectrum to its parameters.

        The pseudo-inverse with the policy-1 weights folded in: ``pinv @ (y / w)`` for every
        pixel becomes one product, ``projection @ y``.
        """
        matrix = self.pinv if self.weights is None else self.pinv / self.weights.T
        return np.ascontiguousarray(matrix, dtype=np.float64)

    @functools.cached_property
    def state_matrix(self) -> np.ndarray:
        """(free, channels) float64 ``(U / w).T``, which takes a spectrum to its refit state."""
        u = self.svd[0] if self.weights is None else self.svd[0] / self.weights
        return np.ascontiguousarray(u.T, dtype=np.float64)

    @property
    def n_free(self) -> int:
        return len(self.free_names)

    @property
    def peak_slice(self) -> slice:
        """Free parameters that are peak areas (PyMca's refit looks only at these)."""
        return slice(self.n_free_bkg, self.n_free)

    @property
    def line_names(self) -> list[str]:
        return [line_label(n) for n in self.free_names[self.n_free_bkg :]]

    @property
    def strip(self) -> bool:
        return bool(self.config["fit"]["stripflag"])

    @property
    def snip_width(self) -> int:
        return int(self.config["fit"]["snipwidth"])

    @property
    def filter_width(self) -> int:
        return int(self.config["fit"]["stripfilterwidth"])

    @property
    def lstsq_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of PyMca's ``lstsq`` as ``fitMultipleSpectra`` sets them."""
        return {
            "svd": self.weight_policy != 2,
            "sigma_b": self.sigma_b,
            "weight": self.lstsq_weight,
        }


_UINT16 = np.dtype(np.uint16)  # the default data dtype (GeoPIXE counts)


# The model's linear algebra is small (channels x tens of parameters): BLAS threads do not speed
# it up, and after a call they spin for a while on the cores dask's workers need next (measured:
# +0.1 s of CPU per fit, 2 threads at 1.69x one instead of 1.76x).
@one_blas_thread()
def build_model(
    config: dict,
    sum_spectrum: np.ndarray,
    *,
    npixels: int,
    weight: int | None = None,
    data_dtype: np.dtype = _UINT16,
    detector: Any = 0,
) -> LinearModel:
    """Configure PyMca on the global sum spectrum and extract the linear model.

    Parameters
    ----------
    config : dict
        A complete PyMca configuration (``xrfdask.fit.config.load_config``).
    sum_spectrum : (channels,) array
        The global sum spectrum of the detector (the reference ``ysum``).
    npixels : int
        Spectra in the map.
    weight : {None, 0, 1, 2}
        PyMca's ``weight`` argument; None takes ``fit.fitweight`` from the configuration.
    data_dtype : numpy dtype
        dtype of the spectra (PyMca computes in float32 for integer data of <= 4 bytes).
    detector : label
        Recorded in the model.

    Returns
    -------
    LinearModel
    """
    from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit  # on first use: heavy

    nchan = sum_spectrum.shape[0]
    x = np.arange(nchan, dtype=np.float64)
    yref = np.asarray(sum_spectrum, dtype=np.float64)
    with PYMCA_LOCK, np.errstate(all="ignore"):  # PyMca's configuration: module-level tables
        try:
            fast, used, lstsq_weight, policy = fast_fit(config_key(config), weight, npixels)
            fast._mcaTheory.setData(x=x, y=yref, xmin=used["fit"]["xmin"], xmax=used["fit"]["xmax"])
            derivatives, free_names, _, n_free_bkg = fast._fitCreateModel(dtype=np.float64)
            anchors = fast._fitBkgAnchorList(config=used)
            xmin, xmax = fast._fitMcaTrimInfo(x=x)
        except Exception as exc:  # noqa: BLE001 - PyMca's arithmetic (OverflowError...)
            raise ConfigError(
                f"PyMca cannot build the peak model ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}); check the detector and peak shape values"
            ) from None
    if not np.all(np.isfinite(derivatives)):
        raise ConfigError(
            "PyMca's peak model is not finite; check the detector (noise, fano, gain) and "
            "peak shape values"
        )
    sigma_b = None
    if policy == 1:
        sigma_b = (1 + np.sqrt(yref[xmin:xmax]) / npixels).reshape(-1, 1)
    svd = pinv = sigma = None
    if policy in (0, 1):
        weighted = derivatives if sigma_b is None else derivatives / pymca_weights(sigma_b)
        u, s, vh = np.linalg.svd(weighted, full_matrices=False)
        m, n = weighted.shape
        cutoff = (max(m, n) if sigma_b is None else n) * np.finfo(np.float64).eps
        inv_s = np.where(s < cutoff, 0.0, 1.0 / np.where(s == 0, 1.0, s))
        pinv = (vh.T * inv_s) @ u.T
        sigma = np.sqrt(np.sum((vh.T * inv_s) ** 2, axis=1))
        svd = (u, s, vh)
    return LinearModel(
        detector=detector,
        config=used,
        xmin=int(xmin),
        xmax=int(xmax),
        derivatives=derivatives,
        free_names=list(free_names),
        n_free_bkg=int(n_free_bkg),
        weight_policy=int(policy),
        lstsq_weight=int(lstsq_weight),
        sigma_b=sigma_b,
        anchors=anchors,
        svd=svd,
        pinv=pinv,
        sigma=sigma,
        npixels=int(npixels),
        sum_spectrum=yref,
        result_dtype=np.dtype(FastXRFLinearFit._fitDtypeResult(np.empty(0, dtype=data_dtype))),
    )


def check_with_pymca(config: dict, *, weight: int | None, npixels: int) -> None:
    """Configure PyMca now (cached for the fit): what it rejects becomes a :class:`ConfigError`."""
    try:
        with PYMCA_LOCK:
            fast_fit(config_key(config), weight, npixels)
    except Exception as exc:  # noqa: BLE001 - PyMca raises KeyError, ValueError... on bad entries
        detail = " ".join(str(exc).split())  # one line: PyMca's messages hold newlines
        raise ConfigError(
            f"PyMca rejects the configuration ({type(exc).__name__}: {detail}); check the "
            "attenuators, multilayer and materials sections"
        ) from None


def pymca_weights(w: np.ndarray) -> np.ndarray:
    """PyMca's weights (``lstsq`` with ``sigma_b``): |w| with zeros replaced by 1."""
    w = np.abs(w)
    return w + (w == 0)
