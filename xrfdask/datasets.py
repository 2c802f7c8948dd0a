"""A deterministic, physically shaped example XRF map, generated in memory.

The map imitates a thin section of a mineralised rock scanned on an IXRF ATLAS-like instrument
(Mo tube at 50 kV, polycapillary optic, silicon drift detectors). It comes as a raw map
:class:`xarray.Dataset` (the data model of :func:`xrfdask.open_geopixe`), as the truth behind it,
or written as a ``.GeoPIXE`` file.

The sample is a silicate matrix crossed by a calcite vein, with Fe-Ti oxide and K-feldspar
grains, small sphalerite, galena and arsenopyrite inclusions, an As halo and smooth gradients.
The phases are laid out in normalised map coordinates, so any ``shape`` samples the same sample.
The layout is fixed; ``seed`` only drives the counting noise.

Physics (xraylib 4.3 for every atomic quantity):

- Excitation by the Mo K lines (Kα1, Kα2, Kβ1, Kβ3, Kβ2 weighted by their radiative rates); the
  tube continuum is not used for excitation.
- Thin-sample fluorescence: the photon rate of an element's line group is ``flux *
  areal_density * solid_angle / 4π * c * Σ_lines CS_FluorLine_Kissel_Cascade(Z, line, E0) *
  efficiency(E_line)``, linear in the mass fraction ``c`` (no matrix absorption, no secondary
  fluorescence). Groups: K lines for K to Sr, L and M lines for Pb (``"Pb L"``, ``"Pb M"``);
  lines weaker than 1e-4 of their group's strongest are dropped.
- Detector efficiency: Be window (``WThick``) transmission times photo-absorption in the Si
  crystal (``Thick``). No air path, no dead layer.
- Peak shape: Gaussians with PyMca's width ``FWHM(E) = sqrt(noise² + 2.3548² * fano * 0.00385
  * E)`` keV (fano 0.114, noise about 0.10 keV, slightly different for each detector), evaluated
  at the channel energies (``E = channel * gain``, no offset). No tails, steps or pile-up.
- Si Kα escape peaks at ``E - 1.74`` keV for every peak above the Si K edge, with the Reed-Ware
  escape probability (0.3 % at Fe Kα, 1.6 % just above the edge); the photopeak loses what the
  escape peak gains.
- Scatter at 90° (header ``Scat (°)``): Rayleigh at the Mo K line energies and Compton at
  ``E / (1 + E/511 (1 - cos θ))`` with an extra Doppler width (FWHM 2.6 % of the energy), both
  from ``DCS_Rayl``/``DCS_Compt`` of the pixel's composition (the undetected remainder is a light
  O, Si, Al, C, Mg matrix) plus a constant share from the glass slide under the section.
- Continuum: a Kramers spectrum ``(kV - E) / E`` with self-absorption in the Mo anode (an
  effective 0.5 µm path) and the tube's Be window, scattered by the sample and seen through the
  detector efficiency, so it falls to zero at the kV limit and is cut off below about 1.5 keV.
  Its level follows the pixel's scatter. It is smooth (not convolved with the detector
  response) and has no escape peaks.
- A lower-level discriminator at 0.25 keV: channels below it are empty (escape peaks of lines
  just above the Si K edge would land there); those photons still count in the input rate.
- Counting: the expected input count rate (ICR) of each pixel and detector is the total photon
  rate of all components (including photons above the last channel). A paralysable dead time
  ``OCR = ICR exp(-ICR τ)`` with τ = 1 µs gives the live fraction ``OCR/ICR``, which scales the
  expected spectrum, and the deadtime ``100 (1 - OCR/ICR)`` % written in the records (about
  5-40 % over the default map). Counts are Poisson draws from
  ``numpy.random.default_rng(seed)``.

Because the live fraction is what the deadtime records, ``area / (1 - deadtime/100)`` of a line
group is exactly proportional to the element's concentration in expectation.
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
import xraylib

from xrfdask.physics import fwhm, iupac_lines

__all__ = [
    "example_dataset",
    "example_truth",
    "example_geopixe",
    "example_reference",
    "quantification_map",
    "quantification_lines",
    "ELEMENTS",
    "LINE_GROUPS",
]

# --------------------------------------------------------------------------------------------
# Instrument (written into the .GeoPIXE header and used by the model)

_NCHAN = 4096
_GAIN_EV = 10.0
_KEV_PER_CHANNEL = _GAIN_EV / 1000.0
_TUBE = "Mo"
_KV = 50.0
_SCATTER_DEG = 90.0
_TAU_S = 1.0e-6  # paralysable dead time per event
_FANO = 0.114
_NOISE_KEV = 0.100  # electronic noise FWHM of detector 0
_BE_UM = 12.5  # detector window
_SI_MM = 0.45  # detector crystal
_AREA_MM2 = 50.0
_DISTANCE_MM = 30.0  # sample to detector
_TUBE_BE_UM = 125.0
_ANODE_PATH_UM = 0.5  # effective self-absorption path of the continuum in the Mo anode
# Flux in the Mo K lines (photons/s) times the section's areal density (g/cm²): tuned so the
# deadtime spans about 5-40 % over the map.
_FLUX_X_RHOT = 2.4e9 * 0.005
# Scattered continuum photons per Mo K line photon (polycapillary-filtered tube).
_CONTINUUM_RATIO = 0.4
# The glass slide under the section scatters but adds no fluorescence of the listed elements:
# its effective scattering mass relative to the section's, as light matrix.
_SUBSTRATE_SCATTER = 2.0
_LLD_KEV = 0.25  # lower-level discriminator: nothing is recorded below it
_COMPTON_DOPPLER = 0.026  # Doppler broadening FWHM / energy for a light matrix
_TIMESTAMP = "01/15/2024 at 09:30 am"

#: Element symbols of the map, in the order of ``concentration``'s ``element`` axis.
ELEMENTS: tuple[str, ...] = ("K", "Ca", "Ti", "Mn", "Fe", "Ni", "Cu", "Zn", "As", "Sr", "Pb")
#: PyMca group names of ``expected_counts``'s ``line`` axis, each with its element.
LINE_GROUPS: tuple[tuple[str, str], ...] = tuple((f"{e} K", e) for e in ELEMENTS[:-1]) + (
    ("Pb L", "Pb"),
    ("Pb M", "Pb"),
)
# The undetected light remainder of each pixel, by mass (it scatters but does not fluoresce).
_MATRIX = {"O": 0.50, "Si": 0.28, "Al": 0.08, "C": 0.07, "Mg": 0.07}

# Mineral phases other than the silicate matrix (whose composition varies over the map, see
# _phases): mass fractions of the detected elements in ppm.
_PHASES: dict[str, dict[str, float]] = {
    "calcite": {"Ca": 380000.0, "Sr": 8000.0, "Mn": 1500.0, "Fe": 3000.0},
    "oxide": {"Fe": 550000.0, "Ti": 40000.0, "Mn": 5000.0, "Ni": 600.0, "Zn": 400.0},
    "sphalerite": {"Zn": 550000.0, "Fe": 60000.0, "Cu": 8000.0, "Mn": 2000.0},
    "galena": {"Pb": 750000.0, "Cu": 1000.0},
    "arsenopyrite": {"As": 400000.0, "Fe": 300000.0, "Ni": 2000.0},
    "feldspar": {"K": 120000.0, "Ca": 3000.0, "Sr": 900.0, "Pb": 60.0},
}


# --------------------------------------------------------------------------------------------
# Public API


def example_dataset(
    *,
    shape: tuple[int, int] = (48, 64),
    n_detectors: int = 2,
    seed: int = 0,
    dwell_ms: float = 100.0,
    pixel_mm: float = 0.025,
) -> xr.Dataset:
    """The example raw map, in memory.

    Parameters
    ----------
    shape : (int, int), default (48, 64)
        Rows and columns (y, x). The sample is laid out in normalised coordinates, so a smaller
        shape is a coarser view of the same sample.
    n_detectors : int, default 2
        Number of detectors; they differ slightly in solid angle (0.94-1.06) and noise.
    seed : int, default 0
        Seed of the Poisson counting noise (``numpy.random.default_rng``).
    dwell_ms : float, default 100.0
        Dwell time per pixel; counts scale with it, the deadtime does not.
    pixel_mm : float, default 0.025
        Pixel pitch.

    Returns
    -------
    xarray.Dataset
        numpy-backed: ``spectra`` (y, x, detector, channel) uint16 with 4096 channels of 10 eV,
        ``deadtime`` (y, x, detector) float32 percent, coordinates ``y``, ``x`` (mm, pixel
        centres), ``detector``, ``channel``, ``energy`` (keV) and attrs ``geopixe_header``,
        ``dwell_ms``, ``tube_element``, ``tube_kv`` and the other instrument attributes
        (:mod:`xrfdask.instrument`), as :func:`xrfdask.open_geopixe` returns.

    Raises
    ------
    ValueError
        For a bad shape, detector count, dwell time or pitch.

    Examples
    --------
    >>> ds = example_dataset(shape=(8, 10))
    >>> ds.spectra.shape
    (8, 10, 2, 4096)
    """
    model = _model(shape, n_detectors, dwell_ms)
    coords = _coords(model, pixel_mm)
    ny, nx = model.shape
    rng = np.random.default_rng(seed)
    spectra = np.empty((ny * nx, n_detectors, _NCHAN), dtype=np.uint16)
    for d in range(n_detectors):  # one detector at a time bounds the float64 temporaries
        counts = rng.poisson(model.expected_spectra(d))
        if counts.max(initial=0) > np.iinfo(np.uint16).max:  # only at absurd dwell times
            raise ValueError(f"dwell_ms={dwell_ms}: a channel exceeds 65535 counts")
        spectra[:, d, :] = counts
    dims3 = ("y", "x", "detector")
    data_vars = {
        "spectra": (
            dims3 + ("channel",),
            spectra.reshape(ny, nx, n_detectors, _NCHAN),
            {"long_name": "counts per channel", "units": "counts"},
        ),
        "deadtime": (
            dims3,
            model.deadtime.astype(np.float32),
            {"long_name": "detector deadtime", "units": "percent"},
        ),
    }
    from xrfdask.io.geopixe.reader import instrument_attrs  # keeps `import xrfdask.datasets` light

    header = _header(model, pixel_mm)
    attrs = {
        "geopixe_header": header,
        "dwell_ms": float(dwell_ms),
        "tube_element": _TUBE,
        "tube_kv": _KV,
    }
    attrs.update(instrument_attrs(header, n_detectors))  # as open_geopixe gives them
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def example_truth(
    *,
    shape: tuple[int, int] = (48, 64),
    n_detectors: int = 2,
    seed: int = 0,
    dwell_ms: float = 100.0,
    pixel_mm: float = 0.025,
) -> xr.Dataset:
    """The truth behind :func:`example_dataset` with the same arguments.

    Parameters
    ----------
    shape, n_detectors, seed, dwell_ms, pixel_mm
        As for :func:`example_dataset`. ``seed`` does not change the truth (it drives only the
        counting noise); it is accepted so the same arguments can be passed to both.

    Returns
    -------
    xarray.Dataset
        - ``concentration`` (element, y, x): mass fraction in **ppm** (µg/g).
        - ``phase_fraction`` (phase, y, x): mass fraction of each mineral phase.
        - ``expected_counts`` (y, x, detector, line): expected counts (before Poisson noise,
          after deadtime loss) in the photopeaks of each line group: escape peaks excluded,
          Gaussian tails beyond the channel range included. ``line`` holds PyMca group names
          (``"Fe K"``, ``"Pb L"``, ...) with coordinates ``line_element`` and ``line_energy``
          (keV of the group's strongest line). ``expected_counts / live_fraction /
          concentration`` of a group is the same in every pixel (``group_sensitivity``).
        - ``expected_escape`` (y, x, detector, line): the group's Si escape peak counts.
        - ``expected_scatter`` (y, x, detector, scatter): ``"Rayleigh"`` and ``"Compton"``
          photopeak counts of the Mo K lines.
        - ``expected_continuum`` (y, x, detector): scattered tube continuum counts.
        - ``expected_total`` (y, x, detector): expected counts in the recorded channels (the
          sum of the expected spectrum).
        - ``expected_sum_spectrum`` (detector, channel): the expected spectrum summed over the
          map.
        - ``icr``, ``ocr`` (y, x, detector): input and output count rates, counts/s;
          ``live_fraction = ocr / icr``; ``deadtime`` (percent, float64; the file holds it as
          float32).
        - ``group_sensitivity`` (detector, line): expected photopeak counts per ppm at a live
          fraction of 1.
        - attrs: ``tau_s``, ``deadtime_model``, ``excitation_keV`` and ``excitation_weight``
          (Mo K lines), ``scatter_angle_deg``, ``noise_keV`` (per detector, FWHM), ``fano``,
          ``solid_angle_factor`` (per detector), ``concentration_units``.
    """
    del seed  # the truth does not depend on the counting noise
    model = _model(shape, n_detectors, dwell_ms)
    coords = _coords(model, pixel_mm)
    ny, nx = model.shape
    phys = _physics(model.n_detectors)
    ng = len(LINE_GROUPS)
    recorded = model.amplitude * model.live_fraction[:, :, None]  # (pix, det, component)
    fluor = recorded[:, :, :ng]
    photo = fluor * phys.photopeak_fraction
    scatter = recorded[:, :, ng : ng + 2] * phys.scatter_photopeak
    total = np.einsum("pdk,dk->pd", recorded, phys.basis.sum(axis=2))
    icr = np.array(model.icr)

    def grid(a: np.ndarray) -> np.ndarray:  # (pix, ...) -> (y, x, ...), an owned copy
        return np.array(a).reshape((ny, nx) + a.shape[1:])

    def maps(a: np.ndarray) -> np.ndarray:  # (pix, k) -> (k, y, x)
        return np.ascontiguousarray(a.T).reshape(-1, ny, nx)

    dims3 = ("y", "x", "detector")
    data_vars: dict[str, Any] = {
        "concentration": (
            ("element", "y", "x"),
            maps(model.concentration),
            {"long_name": "true concentration (mass fraction)", "units": "ppm"},
        ),
        "phase_fraction": (
            ("phase", "y", "x"),
            maps(model.phase_fraction),
            {"long_name": "mass fraction of each mineral phase", "units": "1"},
        ),
        "expected_counts": (
            dims3 + ("line",),
            grid(photo),
            {"long_name": "expected photopeak counts of each line group", "units": "counts"},
        ),
        "expected_escape": (
            dims3 + ("line",),
            grid(fluor - photo),
            {"long_name": "expected Si escape peak counts of each line group", "units": "counts"},
        ),
        "expected_scatter": (
            dims3 + ("scatter",),
            grid(scatter),
            {"long_name": "expected scatter photopeak counts", "units": "counts"},
        ),
        "expected_continuum": (
            dims3,
            grid(recorded[:, :, ng + 2]),
            {"long_name": "expected continuum counts", "units": "counts"},
        ),
        "expected_total": (
            dims3,
            grid(total),
            {"long_name": "expected counts in the recorded channels", "units": "counts"},
        ),
        "expected_sum_spectrum": (
            ("detector", "channel"),
            model.expected_sum_spectrum(),
            {"long_name": "expected spectrum summed over the map", "units": "counts"},
        ),
        "icr": (dims3, grid(icr), {"long_name": "input count rate", "units": "counts/s"}),
        "ocr": (
            dims3,
            grid(icr * model.live_fraction),
            {"long_name": "output count rate", "units": "counts/s"},
        ),
        "live_fraction": (dims3, grid(model.live_fraction), {"units": "1"}),
        "deadtime": (dims3, model.deadtime, {"long_name": "detector deadtime", "units": "percent"}),
        "group_sensitivity": (
            ("detector", "line"),
            model.sensitivity * phys.photopeak_fraction,
            {"long_name": "photopeak counts per ppm at live fraction 1", "units": "counts/ppm"},
        ),
    }
    coords.update(
        element=("element", list(ELEMENTS)),
        line=("line", [g for g, _ in LINE_GROUPS]),
        line_element=("line", [e for _, e in LINE_GROUPS]),
        line_energy=("line", phys.group_energy.copy(), {"units": "keV"}),
        scatter=("scatter", ["Rayleigh", "Compton"]),
        phase=("phase", ["silicate", *_PHASES]),
    )
    attrs = {
        "description": "truth behind xrfdask.datasets.example_dataset",
        "concentration_units": "ppm",
        "tau_s": _TAU_S,
        "deadtime_model": "paralysable: ocr = icr * exp(-icr * tau_s); "
        "deadtime = 100 * (1 - ocr / icr)",
        "excitation_keV": [float(e) for e in phys.excitation_energy],
        "excitation_weight": [float(w) for w in phys.excitation_weight],
        "scatter_angle_deg": _SCATTER_DEG,
        "noise_keV": [float(v) for v in phys.noise],
        "fano": _FANO,
        "solid_angle_factor": [float(v) for v in phys.solid_angle_factor],
        "dwell_ms": float(dwell_ms),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def example_geopixe(
    dest: str | os.PathLike,
    *,
    shape: tuple[int, int] = (48, 64),
    n_detectors: int = 2,
    seed: int = 0,
    overwrite: bool = True,
    dwell_ms: float = 100.0,
    pixel_mm: float = 0.025,
) -> pathlib.Path:
    """Write the example map as a ``.GeoPIXE`` file.

    Parameters
    ----------
    dest : str or path-like
        A directory (created if needed; the file is ``dest/example.GeoPIXE``) or a path ending
        in ``.GeoPIXE``.
    shape, n_detectors, seed, dwell_ms, pixel_mm
        As for :func:`example_dataset`.
    overwrite : bool, default True
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written. The same arguments always give byte-identical files.

    Raises
    ------
    FileExistsError
        If the file exists and ``overwrite`` is False.
    """
    from xrfdask.io.geopixe.writer import to_geopixe  # keeps `import xrfdask.datasets` light

    path = pathlib.Path(dest)
    if path.suffix.lower() == ".geopixe":
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        path.mkdir(parents=True, exist_ok=True)
        path = path / "example.GeoPIXE"
    if path.exists() and not overwrite:  # before spending seconds on the simulation
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    ds = example_dataset(
        shape=shape, n_detectors=n_detectors, seed=seed, dwell_ms=dwell_ms, pixel_mm=pixel_mm
    )
    to_geopixe(ds, path, overwrite=overwrite)
    return path


#: The reference material's section, as its ``.cnc`` file states it (xrf_proc's units).
REFERENCE_DENSITY_MG_CM3 = 2650.0
REFERENCE_THICKNESS_UM = 30.0


def example_reference(
    dest: str | os.PathLike,
    *,
    shape: tuple[int, int] = (48, 64),
    n_detectors: int = 2,
    seed: int = 1,
    dwell_ms: float = 100.0,
) -> tuple[pathlib.Path, pathlib.Path]:
    """A reference material for the example map: a map of it and its concentration file.

    The reference is the example section scanned again under the same conditions (another
    counting-noise ``seed``), whose **mean** composition is certified: ``reference.cnc`` lists
    every element of :data:`ELEMENTS` at its map-mean concentration (ppm, from
    :func:`example_truth`), density :data:`REFERENCE_DENSITY_MG_CM3` and thickness
    :data:`REFERENCE_THICKNESS_UM`. Because the example's fluorescence is linear in
    concentration (a thin section, the same areal density everywhere), the yields computed from
    this map's sums are the true yields, so the example map quantified against it (with the
    same density and thickness) recovers :func:`example_truth`'s concentrations.

    Parameters
    ----------
    dest : str or path-like
        A directory (created if needed): ``dest/reference.GeoPIXE`` and ``dest/reference.cnc``.
    shape, n_detectors, seed, dwell_ms
        As for :func:`example_dataset`.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The map and the ``.cnc`` file.
    """
    folder = pathlib.Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    kwargs = {"shape": shape, "n_detectors": n_detectors, "dwell_ms": dwell_ms}
    path = example_geopixe(folder / "reference.GeoPIXE", seed=seed, **kwargs)
    mean = example_truth(**kwargs)["concentration"].mean(("y", "x"))
    rows = [
        f"{xraylib.SymbolToAtomicNumber(str(e))}\t{float(c):.6g}\t0"
        for e, c in zip(mean["element"].values, mean.values, strict=True)
    ]
    text = "\n".join(
        [
            "Standard_Name\t\t",
            "xrfdask example reference (mean composition of the example section)\t\t",
            "Density(mg/cm^3)\tMass(mg)\tSample_thickness(micron)",
            f"{REFERENCE_DENSITY_MG_CM3:g}\t0\t{REFERENCE_THICKNESS_UM:g}",
            "Number of elements\t\t",
            f"{len(rows)}\t\t",
            "Z\tCert conc(ppm)\tStandard_error(ppm)",
            *rows,
            "",
        ]
    )
    cnc = folder / "reference.cnc"
    cnc.write_text(text)
    return path, cnc


# --------------------------------------------------------------------------------------------
# Atomic physics and detector response (independent of the map; cached)


@dataclass(frozen=True)
class _Physics:
    excitation_energy: np.ndarray  # (j,) keV, Mo K lines
    excitation_weight: np.ndarray  # (j,) photon fractions, sum 1
    group_cs: np.ndarray  # (group,) Σ_lines σ_fluor * efficiency, cm²/g (over 4π)
    group_energy: np.ndarray  # (group,) keV of the strongest line
    photopeak_fraction: np.ndarray  # (group,) share of a group's photons in its photopeaks
    scatter_photopeak: np.ndarray  # (2,) the same for Rayleigh, Compton
    scatter_dcs: np.ndarray  # (element + matrix, 2) efficiency-weighted DCS, cm²/g/sr
    continuum_dcs: np.ndarray  # (element + matrix,) continuum per Mo K photon, cm²/g/sr
    basis: np.ndarray  # (det, component, channel): recorded counts per channel per photon
    noise: np.ndarray  # (det,) keV FWHM
    solid_angle_factor: np.ndarray  # (det,)


def _efficiency(energy: np.ndarray) -> np.ndarray:
    """Detector efficiency: Be window transmission times photo-absorption in the Si crystal."""
    energy = np.atleast_1d(np.asarray(energy, dtype=float))
    out = np.zeros_like(energy)
    ok = energy > 0.2
    mu_be = np.array([xraylib.CS_Total(4, e) for e in energy[ok]])
    mu_si = np.array([xraylib.CS_Photo(14, e) for e in energy[ok]])
    window = np.exp(-mu_be * xraylib.ElementDensity(4) * _BE_UM * 1e-4)
    out[ok] = window * -np.expm1(-mu_si * xraylib.ElementDensity(14) * _SI_MM * 0.1)
    return out


def _escape_fraction(energy: np.ndarray) -> np.ndarray:
    """Si Kα escape probability (Reed & Ware 1972) for normally incident photons."""
    energy = np.atleast_1d(np.asarray(energy, dtype=float))
    out = np.zeros_like(energy)
    edge = xraylib.EdgeEnergy(14, xraylib.K_SHELL)
    mu_ka = xraylib.CS_Photo(14, xraylib.LineEnergy(14, xraylib.KA_LINE))
    jump = xraylib.JumpFactor(14, xraylib.K_SHELL)
    pre = 0.5 * xraylib.FluorYield(14, xraylib.K_SHELL) * (1 - 1 / jump)
    for i, e in enumerate(energy):
        if e > edge:
            r = xraylib.CS_Photo(14, e) / mu_ka
            out[i] = pre * (1 - math.log1p(r) / r)
    return out


def _peaks(
    energy: np.ndarray, area: np.ndarray, extra_fwhm: np.ndarray, noise: float
) -> np.ndarray:
    """Gaussians of total ``area`` (photons) with their Si escape peaks, as counts per channel."""
    e_ch = np.arange(_NCHAN) * _KEV_PER_CHANNEL
    esc = _escape_fraction(energy)
    centres = np.concatenate([energy, energy - xraylib.LineEnergy(14, xraylib.KA_LINE)])
    areas = np.concatenate([area * (1 - esc), area * esc])
    extra = np.concatenate([extra_fwhm, np.zeros_like(extra_fwhm)])  # escape: detector width
    keep = areas > 0
    centres, areas, extra = centres[keep], areas[keep], extra[keep]
    sigma = np.sqrt(fwhm(centres, noise, _FANO) ** 2 + extra**2) / (2 * math.sqrt(2 * math.log(2)))
    z = (e_ch[None, :] - centres[:, None]) / sigma[:, None]
    density = np.exp(-0.5 * z * z) / (sigma[:, None] * math.sqrt(2 * math.pi))  # per keV
    return (areas[:, None] * density).sum(axis=0) * _KEV_PER_CHANNEL


def _group_lines(z: int, shell: str, exc_e: np.ndarray, exc_w: np.ndarray):
    """Energies and detected rates (cm²/g over 4π) of every line of a shell group."""
    energies, rates = [], []
    for line in [m for level, _, m in iupac_lines() if level[0] == shell]:
        try:
            e_line = xraylib.LineEnergy(z, line)
            cs = sum(
                w * xraylib.CS_FluorLine_Kissel_Cascade(z, line, e0)
                for w, e0 in zip(exc_w, exc_e, strict=True)
            )
        except ValueError:  # xraylib: no such line for this element
            continue
        if cs > 0 and e_line > 0:
            energies.append(e_line)
            rates.append(cs)
    e = np.array(energies)
    r = np.array(rates) * _efficiency(e)
    keep = r >= 1e-4 * r.max()
    return e[keep], r[keep]


@functools.lru_cache(maxsize=8)
def _physics(n_detectors: int) -> _Physics:
    if isinstance(n_detectors, bool) or not isinstance(n_detectors, int) or n_detectors < 1:
        raise ValueError(f"n_detectors={n_detectors!r}: expected a positive integer")
    mo = xraylib.SymbolToAtomicNumber(_TUBE)
    exc_lines = (xraylib.KL3_LINE, xraylib.KL2_LINE, xraylib.KM3_LINE, xraylib.KM2_LINE,
                 xraylib.KN3_LINE)  # fmt: skip
    exc_e = np.array([xraylib.LineEnergy(mo, ln) for ln in exc_lines])
    exc_w = np.array([xraylib.RadRate(mo, ln) for ln in exc_lines])
    exc_w /= exc_w.sum()

    groups = [
        _group_lines(xraylib.SymbolToAtomicNumber(symbol), label.split()[1], exc_e, exc_w)
        for label, symbol in LINE_GROUPS
    ]
    group_cs = np.array([r.sum() for _, r in groups])
    group_energy = np.array([e[np.argmax(r)] for e, r in groups])
    photopeak = np.array([np.sum(r * (1 - _escape_fraction(e))) / r.sum() for e, r in groups])

    # Scatter: Rayleigh at E0, Compton at the shifted energy, each seen through the efficiency.
    theta = math.radians(_SCATTER_DEG)
    compton_e = exc_e / (1 + exc_e / 510.99895 * (1 - math.cos(theta)))
    ray_w = exc_w * _efficiency(exc_e)  # relative peak areas within each component
    com_w = exc_w * _efficiency(compton_e)
    zs = [xraylib.SymbolToAtomicNumber(s) for s in (*ELEMENTS, *_MATRIX)]
    scatter_dcs = np.array(
        [
            [
                sum(w * xraylib.DCS_Rayl(z, e, theta) for w, e in zip(ray_w, exc_e, strict=True)),
                sum(w * xraylib.DCS_Compt(z, e, theta) for w, e in zip(com_w, exc_e, strict=True)),
            ]
            for z in zs
        ]
    )
    scatter_photopeak = np.array(
        [
            np.sum(ray_w * (1 - _escape_fraction(exc_e))) / ray_w.sum(),
            np.sum(com_w * (1 - _escape_fraction(compton_e))) / com_w.sum(),
        ]
    )

    # Continuum: Kramers (kV - E)/E through the anode and tube window, scattered, detected.
    e_fine = np.linspace(0.5, _KV, 1000)

    def transmission(z: int, um: float) -> np.ndarray:
        mu = np.array([xraylib.CS_Total(z, e) for e in e_fine])
        return np.exp(-mu * xraylib.ElementDensity(z) * um * 1e-4)

    kramers = (_KV - e_fine) / e_fine
    kramers *= transmission(4, _TUBE_BE_UM) * transmission(mo, _ANODE_PATH_UM)
    kramers /= np.trapezoid(kramers, e_fine)  # photons per keV, per continuum photon
    dcs_fine = np.array(
        [
            [xraylib.DCS_Rayl(z, e, theta) + xraylib.DCS_Compt(z, e, theta) for e in e_fine]
            for z in zs
        ]
    )  # (Z, E)
    seen = kramers * _efficiency(e_fine)
    # Level per element; one shape for every pixel (the light matrix's: the DCS shape hardly
    # changes with composition, and one shape keeps the spectrum linear in the components).
    continuum_dcs = _CONTINUUM_RATIO * np.trapezoid(dcs_fine * seen, e_fine, axis=1)
    light_w = np.array(list(_MATRIX.values()))  # eager-ok: dict
    density = seen * (light_w @ dcs_fine[len(ELEMENTS) :])
    density /= np.trapezoid(density, e_fine)
    e_ch = np.arange(_NCHAN) * _KEV_PER_CHANNEL
    continuum = np.interp(e_ch, e_fine, density, left=0.0, right=0.0) * _KEV_PER_CHANNEL

    # Detectors differ slightly in solid angle and noise; fixed, so results are reproducible.
    idx = np.arange(n_detectors)
    solid = 1.0 + 0.06 * np.cos(2.3 * idx + 0.5)  # within 0.94-1.06
    noise = _NOISE_KEV + 0.006 * np.sin(1.7 * idx)

    ng = len(LINE_GROUPS)
    basis = np.empty((n_detectors, ng + 3, _NCHAN))
    for d in range(n_detectors):
        for g, (e, r) in enumerate(groups):
            basis[d, g] = _peaks(e, r / r.sum(), np.zeros_like(e), noise[d])
        basis[d, ng] = _peaks(exc_e, ray_w / ray_w.sum(), np.zeros_like(exc_e), noise[d])
        basis[d, ng + 1] = _peaks(compton_e, com_w / com_w.sum(), _COMPTON_DOPPLER * compton_e,
                                  noise[d])  # fmt: skip
        basis[d, ng + 2] = continuum
    basis[:, :, : int(round(_LLD_KEV / _KEV_PER_CHANNEL))] = 0.0  # below the discriminator
    physics = _Physics(
        excitation_energy=exc_e,
        excitation_weight=exc_w,
        group_cs=group_cs,
        group_energy=group_energy,
        photopeak_fraction=photopeak,
        scatter_photopeak=scatter_photopeak,
        scatter_dcs=scatter_dcs,
        continuum_dcs=continuum_dcs,
        basis=basis,
        noise=noise,
        solid_angle_factor=solid,
    )
    for a in vars(physics).values():  # eager-ok: dict
        a.flags.writeable = False  # cached and shared
    return physics


# --------------------------------------------------------------------------------------------
# The sample and the map model


def _blob(u: np.ndarray, v: np.ndarray, u0: float, v0: float, su: float, sv: float,
          angle: float = 0.0) -> np.ndarray:  # fmt: skip
    """A smooth elliptical grain profile, 1 at its centre, with a flattish top."""
    c, s = math.cos(angle), math.sin(angle)
    a = (c * (u - u0) + s * (v - v0)) / su
    b = (-s * (u - u0) + c * (v - v0)) / sv
    return np.exp(-0.5 * (a * a + b * b) ** 1.5)


def _halo(u: np.ndarray, v: np.ndarray, u0: float, v0: float, width: float) -> np.ndarray:
    return np.exp(-((u - u0) ** 2 + (v - v0) ** 2) / (2 * width**2))


def _phases(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase mass fractions (pix, phase) and the silicate matrix composition (pix, element) ppm."""
    # A wavy calcite vein across the map, with a thinner branch.
    centre = 0.62 + 0.10 * np.sin(2 * math.pi * (0.9 * u + 0.1))
    vein = 0.85 * np.exp(-0.5 * ((v - centre) / 0.07) ** 4)
    branch = 0.55 * np.exp(-0.5 * ((u - (0.25 + 0.35 * v)) / 0.035) ** 2) * (v > centre)
    calcite = np.maximum(vein, branch)
    oxide = (
        0.80 * _blob(u, v, 0.22, 0.28, 0.09, 0.12, 0.5)
        + 0.60 * _blob(u, v, 0.70, 0.20, 0.05, 0.07, -0.3)
        + 0.35 * _blob(u, v, 0.85, 0.85, 0.06, 0.05)
    )
    sphalerite = 0.55 * _blob(u, v, 0.48, 0.40, 0.035, 0.05) + 0.30 * _blob(
        u, v, 0.12, 0.80, 0.03, 0.04
    )
    galena = 0.30 * _blob(u, v, 0.58, 0.80, 0.03, 0.035) + 0.10 * _blob(
        u, v, 0.35, 0.12, 0.025, 0.03
    )
    arsenopyrite = 0.12 * _blob(u, v, 0.90, 0.45, 0.025, 0.03)
    feldspar = 0.75 * _blob(u, v, 0.45, 0.15, 0.10, 0.07, 0.2) + 0.60 * _blob(
        u, v, 0.08, 0.55, 0.05, 0.09
    )
    minor = np.stack([calcite, oxide, sphalerite, galena, arsenopyrite, feldspar], axis=1)
    total = minor.sum(axis=1, keepdims=True)
    minor *= np.minimum(1.0, 0.97 / np.maximum(total, 1e-12))  # leave some silicate everywhere
    fractions = np.column_stack([1.0 - minor.sum(axis=1), minor])

    # The silicate matrix: smooth gradients, and halos around the Zn, As and Pb minerals.
    host = np.empty((u.size, len(ELEMENTS)))
    col = {e: i for i, e in enumerate(ELEMENTS)}
    host[:, col["K"]] = 15000 + 25000 * u
    host[:, col["Ca"]] = 8000 + 12000 * v
    host[:, col["Ti"]] = 2500 + 3000 * (1 - u) * v
    host[:, col["Mn"]] = 500 + 300 * np.cos(3 * u + 2 * v)
    host[:, col["Fe"]] = 25000 + 20000 * (0.5 + 0.5 * np.sin(2 * math.pi * (1.3 * u - 0.7 * v)))
    host[:, col["Ni"]] = 50 + 100 * v
    host[:, col["Cu"]] = 40 + 250 * _halo(u, v, 0.50, 0.45, 0.10)
    host[:, col["Zn"]] = 80 + 1500 * _halo(u, v, 0.48, 0.40, 0.09)
    host[:, col["As"]] = 10 + 2500 * _halo(u, v, 0.90, 0.45, 0.12)
    host[:, col["Sr"]] = 200 + 600 * u + 300 * v
    host[:, col["Pb"]] = 20 + 3000 * _halo(u, v, 0.58, 0.80, 0.10)
    return fractions, host


@dataclass(frozen=True)
class _Model:
    shape: tuple[int, int]
    n_detectors: int
    dwell_ms: float
    concentration: np.ndarray  # (pix, element) ppm
    phase_fraction: np.ndarray  # (pix, phase)
    amplitude: np.ndarray  # (pix, det, component): photons per dwell, before deadtime
    sensitivity: np.ndarray  # (det, group): photons per dwell per ppm
    icr: np.ndarray  # (pix, det) counts/s
    live_fraction: np.ndarray  # (pix, det)

    @property
    def deadtime(self) -> np.ndarray:
        """(y, x, det) percent."""
        ny, nx = self.shape
        return (100.0 * (1.0 - self.live_fraction)).reshape(ny, nx, self.n_detectors)

    def expected_sum_spectrum(self) -> np.ndarray:
        """(det, channel) expected recorded counts summed over the map."""
        amp = (self.amplitude * self.live_fraction[:, :, None]).sum(axis=0)  # (det, component)
        return np.einsum("dk,dkc->dc", amp, _physics(self.n_detectors).basis)

    def expected_spectra(self, det: int) -> np.ndarray:
        """(pix, channel) expected recorded counts of one detector."""
        amp = self.amplitude[:, det, :] * self.live_fraction[:, det, None]
        return np.maximum(amp @ _physics(self.n_detectors).basis[det], 0.0)


@functools.lru_cache(maxsize=4)
def _model_cached(shape: tuple[int, int], n_detectors: int, dwell_ms: float) -> _Model:
    ny, nx = shape
    phys = _physics(n_detectors)
    iy, ix = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    u = ((ix + 0.5) / nx).ravel()
    v = ((iy + 0.5) / ny).ravel()
    fractions, host = _phases(u, v)
    phase_ppm = np.array([[_PHASES[p].get(e, 0.0) for e in ELEMENTS] for p in _PHASES])
    conc = fractions[:, :1] * host + fractions[:, 1:] @ phase_ppm  # (pix, element) ppm

    # Scattering mass (g per g of section): detected elements, light remainder, glass slide.
    mass = conc * 1e-6
    light = np.clip(1.0 - mass.sum(axis=1), 0.0, None) + _SUBSTRATE_SCATTER
    light_w = np.array(list(_MATRIX.values()))  # eager-ok: dict
    weights = np.column_stack([mass, light[:, None] * light_w])

    dwell_s = dwell_ms / 1000.0
    omega = _AREA_MM2 / _DISTANCE_MM**2 * phys.solid_angle_factor  # sr, (det,)
    exposure = _FLUX_X_RHOT * dwell_s  # photons * g/cm² per dwell
    ng = len(LINE_GROUPS)
    group_element = [ELEMENTS.index(e) for _, e in LINE_GROUPS]
    # Fluorescence is isotropic (cross-sections over 4π); scatter DCS are per sr.
    sensitivity = exposure * omega[:, None] / (4 * math.pi) * phys.group_cs * 1e-6  # per ppm
    amplitude = np.empty((ny * nx, n_detectors, ng + 3))
    amplitude[:, :, :ng] = conc[:, None, group_element] * sensitivity
    scatter = weights @ phys.scatter_dcs  # (pix, 2) cm²/g/sr
    amplitude[:, :, ng : ng + 2] = exposure * omega[:, None] * scatter[:, None, :]
    amplitude[:, :, ng + 2] = exposure * omega * (weights @ phys.continuum_dcs)[:, None]

    icr = amplitude.sum(axis=2) / dwell_s  # every photon reaching the detector
    live = np.exp(-icr * _TAU_S)  # paralysable: ocr / icr
    for a in (conc, fractions, amplitude, sensitivity, icr, live):
        a.flags.writeable = False  # cached and shared
    return _Model(
        (ny, nx), n_detectors, dwell_ms, conc, fractions, amplitude, sensitivity, icr, live
    )


def _model(shape: tuple[int, int], n_detectors: int, dwell_ms: float) -> _Model:
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape={shape!r}: expected (rows, columns)") from None
    if not (0 < ny <= 65536 and 0 < nx <= 65536):
        raise ValueError(f"shape={shape!r}: rows and columns must be 1..65536")
    if isinstance(n_detectors, np.integer):
        n_detectors = int(n_detectors)
    if not dwell_ms > 0:
        raise ValueError(f"dwell_ms={dwell_ms!r}: expected a positive dwell time")
    return _model_cached((ny, nx), n_detectors, float(dwell_ms))


# --------------------------------------------------------------------------------------------
# Coordinates and the .GeoPIXE header


def _coords(model: _Model, pixel_mm: float) -> dict[str, Any]:
    if not pixel_mm > 0:
        raise ValueError(f"pixel_mm={pixel_mm!r}: expected a positive pitch")
    ny, nx = model.shape
    centre = "position (pixel centre)"
    return {
        "y": ("y", (np.arange(ny) + 0.5) * pixel_mm, {"units": "mm", "long_name": f"y {centre}"}),
        "x": ("x", (np.arange(nx) + 0.5) * pixel_mm, {"units": "mm", "long_name": f"x {centre}"}),
        "detector": ("detector", np.arange(model.n_detectors)),
        "channel": ("channel", np.arange(_NCHAN)),
        "energy": (
            "channel",
            np.arange(_NCHAN) * _KEV_PER_CHANNEL,
            {"units": "keV", "long_name": "photon energy"},
        ),
    }


def _header(model: _Model, pixel_mm: float) -> dict[str, Any]:
    """The JSON header (keys as in spec geopixe.md 1.2), fixed so files are reproducible."""
    ny, nx = model.shape
    seconds = round(ny * nx * model.dwell_ms / 1000.0 + ny * 0.5)  # dwell plus row flyback
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    file_header = {
        "Timestamp": _TIMESTAMP,
        "Duration (H:M:S)": f"{h}:{m:02d}:{s:02d}",
        "Dwell (mS)": float(model.dwell_ms),
        "Xres": nx,
        "Yres": ny,
        "Width (mm)": float(nx * pixel_mm),
        "Height (mm)": float(ny * pixel_mm),
        "Dets": model.n_detectors,
        "Chan": _NCHAN,
        "Gain (eV)": _GAIN_EV,
        # The vendor's definition: mean deadtime of the detectors at the first pixel.
        "Deadtime (%)": round(float(model.deadtime[0, 0].mean()), 2),
    }
    source = {
        "KV": _KV,
        "UA (µA)": 200.0,
        "Elt": _TUBE,
        "Anode (µm)": 0.0,
        "WType": 1,
        "WThick (µm)": _TUBE_BE_UM,
        "TType": 1,
        "TModel": 1,
        "OType": 2,
        "Spot (µm)": 25.0,
        "Filter": "None",
        "Incid (°)": 45.0,
        "Take (°)": 45.0,
        "Scat (°)": _SCATTER_DEG,
        "TTS (mm)": 125.0,
        "TTO (mm)": 0.0,
        "OLen (mm)": 0.0,
        "OTS (mm)": 0.0,
        "STD (mm)": _DISTANCE_MM,
    }
    solid = _physics(model.n_detectors).solid_angle_factor
    detectors = [
        {
            "Idx": d,
            "Type": 5,  # SDD
            "Elt": 14,
            "Area (mm²)": round(_AREA_MM2 * float(solid[d]), 3),
            "Coll (mm)": 3.1,
            "Thick (mm)": _SI_MM,
            "DLThick (µm)": 0.04,
            "Contact": 13,
            "CThick (nm)": 0.1,
            "Ice (nm)": 0.0,
            "Win": 1,  # Be
            "WThick (µm)": _BE_UM,
            "WCoat": 0,
            "WCThick (nm)": 0.0,
            "GThick (µm)": 0.0,
            "GArea (%)": 0.0,
            "G2Elt": 0,
            "G2Thick (µm)": 0.0,
            "G2Area (%)": 0.0,
            "Alpha (°)": 0.0,
            "Azim (°)": round(360.0 * d / model.n_detectors, 3),
        }
        for d in range(model.n_detectors)
    ]
    return {"File Header": file_header, "X-ray Source": source, "Detector": detectors}


# --------------------------------------------------------------------------------------------
# Reference and sample maps for quantification (issue 10's truth tests)

_Q_EXCITATION_KEV = 20.0
_Q_GAIN_KEV = 0.0125
_Q_NCHAN = 2048


def quantification_map(
    concentrations: dict[str, Any],
    *,
    shape: tuple[int, int] = (8, 8),
    areal_density: float = 0.01,
    i0: float = 1e5,
    sensitivity: float = 1e-5,
    layer: tuple[float, dict[str, float]] | None = None,
    background: float = 2.0,
    noise: float = _NOISE_KEV,
    seed: int = 0,
) -> xr.Dataset:
    """A small synchrotron-like raw map generated from chosen concentrations (one detector).

    The physics is simple and stated, so tests can recover what went in:

    - monochromatic excitation at 20 keV; thin sample of ``areal_density`` (g/cm²): an element's
      areal concentration is c_A = c [ppm] x areal_density [µg/cm²];
    - each K line l of an element (xraylib, every line of the K shell) gives, in expectation,
      ``I0 x sensitivity x c_A x CS_FluorLine_Kissel_Cascade(Z, l, 20 keV) x exp(-rho t mu(E_l))``
      photons, the exponential being the exit-path transmission of an optional absorbing
      ``layer`` = (rho t [g/cm²], {symbol: mass fraction}) (xraylib ``CS_Total``), no incidence
      term: the model of xrf_proc's self-absorption correction (spec 6.5);
    - Gaussian peaks of PyMca's FWHM (``noise``, Fano 0.114) on 2048 channels of 12.5 eV
      (zero 0), a Rayleigh peak at 20 keV and a Compton peak at 19.25 keV (both proportional to
      I0), a flat background of ``background`` counts per channel at I0 = 1e5;
    - I0 varies by +-20 % over the map; the live fraction (0.80-0.95) scales the recorded counts,
      ``ocr`` = recorded counts per second (dwell 1 s) and ``icr = ocr / live``; Poisson counts
      from ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    concentrations : dict
        Symbol -> ppm (a number, or a (y, x) array for a gradient).

    Returns
    -------
    xarray.Dataset
        ``spectra`` (y, x, detector, channel) float64 counts, ``icr``, ``ocr`` (y, x, detector),
        ``I0``, ``acquisition_time`` (y, x), coordinate ``energy`` (keV); attrs
        ``excitation_keV``, ``areal_density``. An element's true yield (dead-time-corrected
        counts per I0 count per µg/cm², no layer) is ``sensitivity`` times the sum of the
        cross-sections of :func:`quantification_lines`.
    """
    ny, nx = shape
    rng = np.random.default_rng(seed)
    energy = np.arange(_Q_NCHAN) * _Q_GAIN_KEV
    yy, xx = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    flux = i0 * (1.0 + 0.2 * np.sin(2.1 * yy + 1.3 * xx))
    live = 0.875 + 0.075 * np.cos(1.7 * yy - 2.3 * xx)
    expected = np.zeros((ny, nx, _Q_NCHAN))

    def gauss(centre: float, extra: float = 0.0) -> np.ndarray:
        sigma = math.hypot(fwhm(centre, noise, _FANO), extra) / (2 * math.sqrt(2 * math.log(2)))
        z = (energy - centre) / sigma
        return np.exp(-0.5 * z * z) / (sigma * math.sqrt(2 * math.pi)) * _Q_GAIN_KEV

    for symbol, conc in concentrations.items():
        c_a = np.broadcast_to(np.asarray(conc, dtype=float), shape) * areal_density
        spectrum = np.zeros(_Q_NCHAN)
        for e_line, cs in quantification_lines(symbol):
            spectrum += cs * _transmission(e_line, layer) * gauss(e_line)
        expected += (flux * sensitivity * c_a)[:, :, None] * spectrum
    compton = _Q_EXCITATION_KEV / (1 + _Q_EXCITATION_KEV / 510.99895)
    scatter = 1e-2 * gauss(_Q_EXCITATION_KEV) + 5e-2 * gauss(compton, 0.026 * compton)
    expected += flux[:, :, None] * (scatter + background / 1e5)
    counts = rng.poisson(expected * live[:, :, None]).astype(np.float64)
    ocr = counts.sum(-1)
    dims = ("y", "x", "detector")
    return xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), counts[:, :, None, :]),
            "icr": (dims, (ocr / live)[:, :, None]),
            "ocr": (dims, ocr[:, :, None]),
            "I0": (("y", "x"), flux),
            "acquisition_time": (("y", "x"), np.ones(shape)),
        },
        coords={
            "y": np.arange(ny, dtype=float),
            "x": np.arange(nx, dtype=float),
            "detector": ["channel00"],
            "channel": np.arange(_Q_NCHAN),
            "energy": ("channel", energy, {"units": "keV"}),
        },
        attrs={"excitation_keV": _Q_EXCITATION_KEV, "areal_density": areal_density},
    )


def quantification_lines(symbol: str) -> list[tuple[float, float]]:
    """(energy keV, cross-section cm²/g) of the K lines :func:`quantification_map` emits."""
    z = xraylib.SymbolToAtomicNumber(symbol)
    out = []
    for level, _, macro in iupac_lines():
        if level != "K":
            continue
        try:
            e = xraylib.LineEnergy(z, macro)
            cs = xraylib.CS_FluorLine_Kissel_Cascade(z, macro, _Q_EXCITATION_KEV)
        except ValueError:
            continue
        if e > 0 and cs > 0:
            out.append((e, cs))
    return out


def _transmission(energy: float, layer: tuple[float, dict[str, float]] | None) -> float:
    if layer is None:
        return 1.0
    rho_t, composition = layer
    mu = sum(
        w * xraylib.CS_Total(xraylib.SymbolToAtomicNumber(s), energy)
        for s, w in composition.items()
    )
    return math.exp(-rho_t * mu)
