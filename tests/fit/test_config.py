"""PyMca fit configurations: loading, validation, generation and the .cfg text, with real PyMca."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
from PyMca5.PyMcaIO.ConfigDict import ConfigDict
from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

from xrfdask.datasets import ELEMENTS, example_dataset, example_truth
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.fit.config import (
    config_from_text,
    config_to_text,
    load_config,
    make_fit_config,
    validate_config,
)
from xrfdask.instrument import INSTRUMENT_ATTRS

NCHAN = 4096
SHAPE = (6, 8)
MAJORS = ("Ca K", "Fe K", "Zn K", "Sr K")
THIN = {"Density": 2.65, "CompoundList": ["Si1O2"], "CompoundFraction": [1.0]}


@pytest.fixture(scope="module")
def ds():
    return example_dataset(shape=SHAPE, n_detectors=2)


@pytest.fixture(scope="module")
def cfg(ds):
    return make_fit_config(ds, list(ELEMENTS))


@pytest.fixture(scope="module")
def truth():
    return example_truth(shape=SHAPE, n_detectors=1)


def valid_config() -> dict:
    """A small, valid hand-written configuration (one excitation energy, no matrix)."""
    return {
        "fit": {
            "xmin": 100, "xmax": 2000, "energy": 17.44, "stripflag": 1, "stripalgorithm": 1,
            "snipwidth": 30, "fitweight": 0, "linearfitflag": 1, "scatterflag": 1,
        },
        "detector": {"zero": 0.0, "gain": 0.01, "noise": 0.1, "fano": 0.114},
        "peaks": {"Fe": "K", "Pb": ["L", "M"]},
    }  # fmt: skip


def no_tube(ds):
    """The map as an h5 source would give it: no tube attributes, no GeoPIXE header."""
    out = ds.copy()
    out.attrs = {
        k: v for k, v in ds.attrs.items() if k not in INSTRUMENT_ATTRS and k != "geopixe_header"
    }
    return out


def pymca_fit_sum(config: dict, spectrum: np.ndarray) -> dict:
    """Group areas of PyMca's full (non-linear) fit of one spectrum."""
    theory = ClassMcaTheory.McaTheory()
    theory.setConfiguration(copy.deepcopy(config))  # PyMca keeps (and edits) what it is given
    theory.setData(x=np.arange(spectrum.size), y=spectrum)
    theory.estimate()
    digest = theory.startfit(digest=1)[1]
    return {g: digest[g]["fitarea"] for g in digest["groups"]}


# ---------------------------------------------------------------------------------------------
# load_config


def test_load_partial_dict_is_completed_with_pymca_defaults():
    cfg = load_config({"fit": {"snipwidth": 40}, "peaks": {"Fe": "K"}})
    defaults = ClassMcaTheory.McaTheory().getConfiguration()
    assert cfg["fit"]["snipwidth"] == 40
    assert cfg["fit"]["stripiterations"] == defaults["fit"]["stripiterations"]
    assert cfg["detector"] == dict(defaults["detector"])
    assert cfg["peaks"] == {"Fe": "K"}
    assert set(defaults) <= set(cfg)
    assert type(cfg) is dict and all(type(v) is dict for v in cfg.values())


def test_load_empty_dict_equals_pymca_defaults():
    defaults = ClassMcaTheory.McaTheory().getConfiguration()
    cfg = load_config({})
    assert cfg["fit"] == {k: v for k, v in defaults["fit"].items()}
    assert cfg["attenuators"] == dict(defaults["attenuators"])
    assert set(cfg["materials"]) == set(defaults["materials"])


def test_load_returns_independent_copies():
    a = load_config({})
    a["fit"]["xmin"] = -1
    a["attenuators"]["Matrix"][0] = 1
    b = load_config({})
    assert b["fit"]["xmin"] != -1 and b["attenuators"]["Matrix"][0] == 0


def test_load_real_cfg_file_written_by_configdict(tmp_path):
    written = ConfigDict()
    written["fit"] = {"xmin": 120, "xmax": 1900, "energy": [17.44, 19.6], "snipwidth": 25}
    written["detector"] = {"gain": 0.01, "zero": 0.0}
    written["peaks"] = {"Fe": "K", "Pb": ["L", "M"]}
    written["attenuators"] = {"Matrix": [1, "Si1O2", 2.65, 1e-4, 45.0, 45.0, 1, 90.0]}
    path = tmp_path / "fit.cfg"
    written.write(str(path))

    for source in (path, str(path), written):
        cfg = load_config(source)
        assert cfg["fit"]["xmin"] == 120 and cfg["fit"]["snipwidth"] == 25
        assert cfg["fit"]["energy"] == [17.44, 19.6]
        assert cfg["fit"]["stripiterations"] == 20000  # from the defaults
        assert cfg["peaks"] == {"Fe": "K", "Pb": ["L", "M"]}
        assert cfg["attenuators"]["Matrix"] == [1, "Si1O2", 2.65, 1e-4, 45.0, 45.0, 1, 90.0]
        assert cfg["attenuators"]["kapton"] == [0, "-", 0.0, 0.0]  # default entry kept
        assert cfg["detector"]["noise"] == 0.1


def test_load_missing_file_names_it(tmp_path):
    missing = tmp_path / "nowhere.cfg"
    with pytest.raises(ConfigError, match="nowhere.cfg"):
        load_config(missing)


def test_load_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "garbage.cfg"
    bad.write_text("this is not an ini file\n= = =\n")
    with pytest.raises(ConfigError, match="garbage.cfg") as info:
        load_config(bad)
    assert "\n" not in str(info.value)
    empty = tmp_path / "empty.cfg"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty.cfg"):
        load_config(str(empty))


def test_load_unreadable_path(tmp_path):
    folder = tmp_path / "folder.cfg"  # exists but cannot be read as a file (even by root)
    folder.mkdir()
    with pytest.raises(ConfigError, match="folder.cfg"):
        load_config(folder)


def test_load_rejects_non_configurations():
    with pytest.raises(ConfigError, match="config"):
        load_config(42)
    with pytest.raises(ConfigError, match="fit"):
        load_config({"fit": 3})


def test_load_pymca_bundled_steel_cfg():
    import PyMca5

    path = os.path.join(os.path.dirname(PyMca5.__file__), "PyMcaData", "Steel.cfg")
    cfg = load_config(path)
    assert cfg["peaks"]["W"] == ["L1", "L2", "L3"]
    assert cfg["fit"]["energy"][0] == 16.0 and cfg["fit"]["energy"][1] is None  # "None" -> None
    assert validate_config(path, nchan=2048, method="full")["peaks"]["Fe"] == ["Ka", "Kb"]
    with pytest.raises(ConfigError, match="fit.stripalgorithm"):  # a strip (not SNIP) background
        validate_config(path, nchan=2048, method="pymca")


# ---------------------------------------------------------------------------------------------
# validate_config


def test_valid_config_passes_and_is_normalised():
    cfg = valid_config()
    cfg["fit"].update(xmin=100.0, use_limit=0, snipwidth=30.0)
    cfg["peaks"] = {"FE": "K", "pb": ["L", "M"]}
    out = validate_config(cfg, nchan=NCHAN, method="linear")
    assert out["fit"]["xmin"] == 100 and type(out["fit"]["xmin"]) is int
    assert type(out["fit"]["snipwidth"]) is int
    assert out["fit"]["use_limit"] == 1
    assert out["fit"]["energy"] == [17.44]
    assert out["fit"]["energyweight"] == [1.0] and out["fit"]["energyflag"] == [1]
    assert out["peaks"] == {"Fe": "K", "Pb": ["L", "M"]}
    assert cfg["fit"]["use_limit"] == 0  # the input is not modified
    for method in ("pymca", "full"):
        validate_config(cfg, nchan=NCHAN, method=method)


def _set(section, key, value):
    def edit(cfg):
        cfg[section][key] = value

    return edit


def _two_energies(cfg):
    cfg["fit"].update(
        energy=[17.44, 19.6], energyweight=[0.8, 0.2], energyflag=[1, 1], energyscatter=[1, 1]
    )


def _no_flagged_energy(cfg):
    cfg["fit"].update(energy=[17.44], energyweight=[1.0], energyflag=[0], energyscatter=[1])


BAD_CASES = [
    # (id, edit, method, key in the message)
    ("xmin-string", _set("fit", "xmin", "ten"), "linear", "fit.xmin"),
    ("xmin-above-xmax", _set("fit", "xmin", 2000), "linear", "fit.xmin"),
    ("xmax-bool", _set("fit", "xmax", True), "linear", "fit.xmax"),
    ("stripfilterwidth-string", _set("fit", "stripfilterwidth", "x"), "full",
     "fit.stripfilterwidth"),
    ("energy-negative", _set("fit", "energy", -17.4), "full", "fit.energy"),
    ("energy-zero", _set("fit", "energy", 0.0), "full", "fit.energy"),
    ("energy-none-in-list", _set("fit", "energy", [None, None]), "full", "fit.energy"),
    ("energyweight-short", lambda c: c["fit"].update(energy=[17.4, 19.6], energyweight=[1.0]),
     "full", "fit.energyweight"),
    ("two-energies-no-matrix", _two_energies, "full", "attenuators.Matrix"),
    ("gain-string", _set("detector", "gain", "x"), "full", "detector.gain"),
    ("gain-zero", _set("detector", "gain", 0.0), "full", "detector.gain"),
    ("zero-list", _set("detector", "zero", [0.0]), "full", "detector.zero"),
    ("noise-none", _set("detector", "noise", None), "full", "detector.noise"),
    ("fano-string", _set("detector", "fano", "0.1"), "full", "detector.fano"),
    ("detele-unknown", _set("detector", "detele", "Xx"), "full", "detector.detele"),
    ("unknown-element", _set("peaks", "Xx", "K"), "full", "peaks.Xx"),
    ("unknown-shell", _set("peaks", "Fe", "Q"), "full", "peaks.Fe"),
    ("shell-pymca-lacks", _set("peaks", "Fe", "M"), "full", "peaks.Fe"),
    ("shell-not-string", _set("peaks", "Fe", 3), "full", "peaks.Fe"),
    ("strip-not-snip-linear", lambda c: c["fit"].update(stripflag=1, stripalgorithm=0), "linear",
     "fit.stripalgorithm"),
    ("strip-not-snip-pymca", lambda c: c["fit"].update(stripflag=1, stripalgorithm=0), "pymca",
     "fit.stripalgorithm"),
    ("strategy-linear", _set("fit", "strategyflag", 1), "linear", "fit.strategyflag"),
    ("strategy-pymca", _set("fit", "strategyflag", 1), "pymca", "fit.strategyflag"),
    ("individual-weights-linear", _set("fit", "fitweight", 2), "linear", "fit.fitweight"),
    ("attenuator-unknown-material",
     lambda c: c.setdefault("attenuators", {}).update(window=[1, "Xx9", 1.0, 1e-3, 1.0]),
     "full", "attenuators.window"),
    ("attenuator-short", lambda c: c.setdefault("attenuators", {}).update(window=[1, "Be1"]),
     "full", "attenuators.window"),
    ("matrix-angle-string",
     lambda c: c.setdefault("attenuators", {}).update(Matrix=[0, "-", 0.0, 0.0, "a", 45.0]),
     "full", "attenuators.Matrix"),
    ("section-not-dict", lambda c: c.update(fit=[1, 2]), "full", "fit"),
    ("nothing-to-fit", lambda c: c.update(peaks={}) or c["fit"].update(scatterflag=0), "full",
     "peaks"),
    ("exp-continuum-linear", lambda c: c["fit"].update(continuum=5, stripflag=0), "linear",
     "fit.continuum"),
    ("exp-continuum-pymca", lambda c: c["fit"].update(continuum=5, stripflag=0), "pymca",
     "fit.continuum"),
    # Found by benchmarks/fuzz_inputs.py: a text delta reached PyMca's model (TypeError), and a
    # matrix seen at 0 degrees made PyMca divide 0 by 0 (RuntimeWarning, NaN areas).
    ("deltagain-string", _set("detector", "deltagain", "--"), "linear", "detector.deltagain"),
    ("energy-1e-300", _set("fit", "energy", 1e-300), "linear", "fit.energy[0]"),  # exp overflow
    ("fano-1e308", _set("detector", "fano", 1e308), "linear", "detector.fano"),  # overflow
    ("noise-1e200", _set("detector", "noise", 1e200), "linear", "detector.noise"),  # OverflowError
    ("peakshape-string", lambda c: c.setdefault("peakshape", {}).update(lt_sloperatio="1e"),
     "linear", "peakshape.lt_sloperatio"),  # a numpy UFuncTypeError in PyMca's model
    ("matrix-grazing-angles",
     lambda c: c.setdefault("attenuators", {}).update(Matrix=[1, "Si1O2", 2.65, 0.01, 0.0, 0.0]),
     "linear", "attenuators.Matrix (incident angle)"),
    ("matrix-outgoing-angle",
     lambda c: c.setdefault("attenuators", {}).update(Matrix=[1, "Si1O2", 2.65, 0.01, 45, 180]),
     "linear", "attenuators.Matrix (outgoing angle)"),
]  # fmt: skip

# What PyMca fits although it is questionable: a warning naming the key, then PyMca's fit.
WARN_CASES = [
    ("xmin-fraction", _set("fit", "xmin", 10.5), "linear", "fit.xmin"),
    ("xmin-negative", _set("fit", "xmin", -5), "linear", "fit.xmin"),
    ("xmax-beyond-spectrum", _set("fit", "xmax", 5000), "linear", "fit.xmax"),
    ("xmax-is-nchan", _set("fit", "xmax", NCHAN), "pymca", "fit.xmax"),
    ("snipwidth-fraction", _set("fit", "snipwidth", 2.5), "linear", "fit.snipwidth"),
    ("snipwidth-zero", _set("fit", "snipwidth", 0), "linear", "fit.snipwidth"),
    ("stripflag-2", _set("fit", "stripflag", 2), "full", "fit.stripflag"),
    ("escapeflag-string", _set("fit", "escapeflag", "yes"), "full", "fit.escapeflag"),
    ("hypermetflag", _set("fit", "hypermetflag", 99), "full", "fit.hypermetflag"),
    ("fitweight-3", _set("fit", "fitweight", 3), "full", "fit.fitweight"),
    ("energy-none", _set("fit", "energy", None), "full", "fit.energy"),
    ("energy-string", _set("fit", "energy", "Mo"), "full", "fit.energy"),
    ("energy-not-flagged", _no_flagged_energy, "full", "fit.energy"),
    ("fixedgain-3", _set("detector", "fixedgain", 3), "full", "detector.fixedgain"),
    ("no-peaks", lambda c: c.update(peaks={}), "full", "peaks"),
    ("overlapping-shells", _set("peaks", "Fe", ["K", "Ka"]), "full", "peaks.Fe"),
    ("not-excited", _set("peaks", "Pb", "K"), "full", "peaks.Pb"),
    ("lines-outside-range", lambda c: c["fit"].update(xmin=1000, xmax=2000), "full", "peaks.Fe"),
    ("noise-negative", _set("detector", "noise", -0.1), "full", "detector.noise"),
    ("energyweight-zero", lambda c: c["fit"].update(energy=[17.44], energyweight=[0.0],
     energyflag=[1], energyscatter=[1]), "full", "fit.energyweight"),
    ("nothing-excited-Zr", lambda c: c["peaks"].update(Zr="K"), "linear", "peaks.Zr"),
]  # fmt: skip


@pytest.mark.parametrize(
    "edit, method, key", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_validate_errors_name_the_key(edit, method, key):
    cfg = valid_config()
    edit(cfg)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, nchan=NCHAN, method=method)
    message = str(info.value)
    assert message.startswith(key), message  # "fit.energy[0]: ...", "attenuators.Matrix (...)"
    assert "\n" not in message


def pymca_parameters(config: dict) -> tuple[list[str], np.ndarray]:
    """PyMca's fast fit of a small random map with ``config`` as PyMca reads it."""
    y = np.random.default_rng(1).poisson(30.0, size=(2, 3, NCHAN)).astype(np.float64)
    fast = FastXRFLinearFit()
    fast.setFitConfiguration(copy.deepcopy(config))
    out = fast.fitMultipleSpectra(y=y, save=False, weight=0, refit=False)
    return list(out.labels("parameters")), np.asarray(out["parameters"])


@pytest.mark.parametrize(
    "edit, method, key", [c[1:] for c in WARN_CASES], ids=[c[0] for c in WARN_CASES]
)
def test_validate_warns_where_pymca_fits_anyway(edit, method, key):
    """PyMca fits these (checked here): xrfdask warns naming the key, and its normalised
    configuration makes PyMca fit exactly as the configuration as given does."""
    cfg = valid_config()
    edit(cfg)
    with pytest.warns(XrfdaskWarning) as record:
        out = validate_config(cfg, nchan=NCHAN, method=method)
    messages = [str(w.message) for w in record]
    assert any(m.startswith(f"{key}: ") and "PyMca" in m for m in messages), messages
    assert all("\n" not in m for m in messages)
    labels, params = pymca_parameters(load_config(cfg))
    ours, again = pymca_parameters(out)
    assert ours == labels
    np.testing.assert_allclose(again, params, rtol=1e-9, atol=1e-9)


def test_validate_huge_hypermetflag_keeps_pymcas_four_bits():
    # Found by benchmarks/fuzz_inputs.py: 10**20 reached PyMca, whose C long overflowed.
    cfg = valid_config()
    cfg["fit"]["hypermetflag"] = 10**20 + 3
    with pytest.warns(XrfdaskWarning, match=r"^fit\.hypermetflag: "):
        out = validate_config(cfg, nchan=NCHAN, method="full")
    assert out["fit"]["hypermetflag"] == (10**20 + 3) & 15
    assert pymca_parameters(out)[0]  # PyMca configures and fits


def test_validate_zr_k_under_mo_k_alpha_is_a_radiative_rate_group():
    """Zr K (edge 17.998 keV) under 17.479 keV: PyMca fits it with the radiative-rate ratios."""
    cfg = valid_config()
    cfg["fit"]["energy"] = 17.479
    cfg["peaks"] = {"Fe": "K", "Zr": "K"}
    with pytest.warns(XrfdaskWarning, match=r"^peaks\.Zr: Zr K cannot be excited.*'Zr K' area"):
        out = validate_config(cfg, nchan=NCHAN, method="linear")
    assert out["peaks"] == {"Fe": "K", "Zr": "K"}
    assert "Zr K" in pymca_parameters(out)[0]


def test_validate_spectra_shorter_than_the_range():
    # The same configuration is fine for 4096 channels; for 1024, PyMca fits up to the last one.
    validate_config(valid_config(), nchan=NCHAN, method="linear")
    with pytest.warns(XrfdaskWarning, match=r"^fit\.xmax: .*1024 channels.*last channel"):
        out = validate_config(valid_config(), nchan=1024, method="linear")
    assert out["fit"]["xmax"] == 1023


def test_validate_method_specific_options_are_fine_elsewhere():
    cfg = valid_config()
    cfg["fit"].update(stripalgorithm=0, strategyflag=1, fitweight=2)
    validate_config(cfg, nchan=NCHAN, method="full")
    cfg["fit"].update(stripalgorithm=1, strategyflag=0, fitweight=2)
    validate_config(cfg, nchan=NCHAN, method="pymca")  # pymca: individual weights are fine
    cfg["fit"].update(stripflag=0, stripalgorithm=0, fitweight=0)
    validate_config(cfg, nchan=NCHAN, method="linear")  # no background: no SNIP needed


def test_validate_bad_method_and_nchan():
    with pytest.raises(ConfigError, match="^method:"):
        validate_config(valid_config(), nchan=NCHAN, method="fast")
    with pytest.raises(ConfigError, match="^nchan:"):
        validate_config(valid_config(), nchan=0, method="linear")


def test_validate_accepts_a_path(tmp_path):
    path = tmp_path / "ok.cfg"
    path.write_text(config_to_text(valid_config()))
    assert validate_config(path, nchan=NCHAN, method="pymca")["peaks"]["Fe"] == "K"


# ---------------------------------------------------------------------------------------------
# config_to_text / config_from_text


def test_text_round_trip_of_generated_config(cfg, tmp_path):
    assert json.loads(json.dumps(cfg)) == cfg  # plain values (the fit module hashes it as JSON)
    text = config_to_text(cfg)
    assert "[fit]" in text and "[peaks]" in text and "[materials.Kapton]" in text
    assert config_from_text(text) == cfg
    # PyMca reads the same text into the same values.
    path = tmp_path / "fit.cfg"
    path.write_text(text)
    read = ConfigDict()
    read.read(str(path))
    assert read["fit"]["energy"] == cfg["fit"]["energy"]
    assert read["peaks"]["Pb"] == ["L", "M"]
    assert load_config(path) == cfg


def test_text_round_trip_of_awkward_values():
    cfg = {
        "fit": {"energy": [17.44], "energyweight": [1.0], "flag": True, "none": None,
                "list_none": [17.4, None], "tiny": 1e-8, "np": np.float64(0.1), "ints": (1, 2),
                "text": "a b", "empty": ""},
        "peaks": {"Fe": ["K"], "Pb": ["L", "M"]},
        "materials": {"Thin": THIN},
        "multilayer": {},
    }  # fmt: skip
    back = config_from_text(config_to_text(cfg))
    assert back["fit"]["energy"] == [17.44] and back["fit"]["energyweight"] == [1.0]
    assert back["fit"]["flag"] == 1 and back["fit"]["none"] is None
    assert back["fit"]["list_none"] == [17.4, None]
    assert back["fit"]["tiny"] == 1e-8 and back["fit"]["np"] == 0.1
    assert back["fit"]["ints"] == [1, 2]
    assert back["fit"]["text"] == "a b" and back["fit"]["empty"] == ""
    assert back["peaks"] == {"Fe": ["K"], "Pb": ["L", "M"]}
    assert back["materials"]["Thin"] == THIN
    assert back["multilayer"] == {}


def test_text_errors():
    with pytest.raises(ConfigError, match="config text"):
        config_from_text("no section header\nkey = 1\n")
    with pytest.raises(ConfigError, match="xmin"):
        config_to_text({"xmin": 3})


# ---------------------------------------------------------------------------------------------
# make_fit_config


def test_make_config_for_the_mo_tube_map(cfg, ds):
    fit, det = cfg["fit"], cfg["detector"]
    e0, e1 = fit["energy"]
    assert e0 == pytest.approx(17.48, abs=0.05)  # Mo Kα (rate-weighted Kα1/Kα2: 17.443)
    assert e1 == pytest.approx(19.6, abs=0.1)  # Mo Kβ
    w0, w1 = fit["energyweight"]
    assert w0 + w1 == pytest.approx(1.0) and w0 > 4 * w1
    assert fit["energyflag"] == [1, 1] and fit["energyscatter"] == [1, 1]
    assert det["zero"] == pytest.approx(0.0, abs=1e-9) and det["gain"] == pytest.approx(0.01)
    assert cfg["peaks"]["Fe"] == "K" and cfg["peaks"]["Sr"] == "K"
    assert cfg["peaks"]["Pb"] == ["L", "M"]
    assert set(cfg["peaks"]) == set(ELEMENTS)
    # Range: from ~1-2 keV (below Pb M at 2.3 keV) to just above the Kβ Rayleigh peak.
    assert 100 <= fit["xmin"] <= 200 and fit["use_limit"] == 1
    assert 1965 + 10 < fit["xmax"] < 2100
    assert 25 <= fit["snipwidth"] <= 35
    expected = dict(stripflag=1, stripalgorithm=1, stripfilterwidth=1, stripanchorsflag=0,
                    continuum=0,
                    linearfitflag=1, fitweight=0, hypermetflag=1, escapeflag=1, scatterflag=1,
                    sumflag=0, strategyflag=0)  # fmt: skip
    assert {k: fit[k] for k in expected} == expected
    assert det["detele"] == "Si" and det["noise"] == 0.1 and det["fano"] == 0.114
    assert all(det[f"fixed{k}"] == 1 for k in ("zero", "gain", "noise", "fano"))
    matrix = cfg["attenuators"]["Matrix"]
    assert matrix[:2] == [1, "Si1O2"] and matrix[4:] == [45.0, 45.0, 1, 90.0]
    # The detector efficiency from the GeoPIXE header: 0.45 mm Si, 12.5 µm Be.
    crystal, window = cfg["attenuators"]["Detector"], cfg["attenuators"]["window"]
    assert crystal[:2] == [1, "Si1"] and crystal[2:4] == pytest.approx([2.33, 0.045], abs=0.01)
    assert window[:2] == [1, "Be1"] and window[2:4] == pytest.approx([1.848, 12.5e-4], rel=0.01)
    for method in ("linear", "pymca", "full"):
        assert validate_config(cfg, nchan=NCHAN, method=method) == cfg


def test_make_config_reads_the_instrument_attributes_only(ds, cfg):
    """The readers' format-neutral attributes, not a format's header, describe the instrument."""
    assert ds.attrs["detector_crystal"] == ["Si", "Si"]
    assert ds.attrs["detector_crystal_thickness_mm"] == [0.45, 0.45]
    assert ds.attrs["detector_window"] == ["Be", "Be"]
    assert ds.attrs["scatter_angle_deg"] == 90.0
    neutral = ds.copy()
    neutral.attrs = {k: v for k, v in ds.attrs.items() if k != "geopixe_header"}
    assert make_fit_config(neutral, list(ELEMENTS)) == cfg
    thicker = ds.copy()
    thicker.attrs = dict(ds.attrs, detector_window_thickness_um=[25.0, 50.0])
    windows = [
        make_fit_config(thicker, ["Fe"], detector=d)["attenuators"]["window"] for d in (0, 1)
    ]
    assert windows[0][3] == pytest.approx(25e-4) and windows[1][3] == pytest.approx(50e-4)
    json.dumps({k: ds.attrs[k] for k in INSTRUMENT_ATTRS if k in ds.attrs})  # serialisable


def test_make_config_reads_no_spectra(ds):
    lazy = ds.chunk({"y": 2})
    assert make_fit_config(lazy, ["Fe"])["peaks"] == {"Fe": "K"}


def test_make_config_without_tube_needs_excitation_energy(ds):
    h5 = no_tube(ds)
    with pytest.raises(ConfigError, match="^excitation_energy:"):
        make_fit_config(h5, ["Fe", "Zn"])
    cfg = make_fit_config(h5, ["Fe", "Zn", "Pb"], excitation_energy=17.0)
    assert cfg["fit"]["energy"] == [17.0] and cfg["fit"]["energyweight"] == [1.0]
    assert cfg["attenuators"]["Matrix"][0] == 0  # one energy: PyMca needs no matrix
    assert cfg["attenuators"]["Matrix"][4:] == [45.0, 45.0, 0, 90.0]  # default geometry
    assert cfg["attenuators"]["Detector"][0] == 0  # no header: no efficiency
    assert cfg["peaks"]["Pb"] == ["L", "M"]
    ClassMcaTheory.McaTheory().setConfiguration(copy.deepcopy(cfg))
    pairs = make_fit_config(h5, ["Fe"], excitation_energy=[(17.48, 3.0), (19.6, 1.0)])
    assert pairs["fit"]["energy"] == [17.48, 19.6] and pairs["fit"]["energyweight"] == [0.75, 0.25]
    assert pairs["attenuators"]["Matrix"][:2] == [1, "Si1O2"]  # several energies: thin matrix


def test_make_config_calibration(ds):
    bare = no_tube(ds).drop_vars("energy")
    with pytest.raises(ConfigError, match="^energy:"):
        make_fit_config(bare, ["Fe"], excitation_energy=17.0)
    calibration = {"zero": -0.02, "gain": 0.0101}
    cfg = make_fit_config(bare, ["Fe"], excitation_energy=17.0, detector=calibration)
    assert cfg["detector"]["zero"] == -0.02 and cfg["detector"]["gain"] == 0.0101
    shifted = ds.assign_coords(energy=("channel", 0.05 + 0.0099 * ds.channel.values))
    cfg = make_fit_config(shifted, ["Fe"])
    assert cfg["detector"]["zero"] == pytest.approx(0.05)
    assert cfg["detector"]["gain"] == pytest.approx(0.0099)


def test_make_config_with_fit_range(ds):
    cfg = make_fit_config(ds, ["Fe", "Pb"], fit_range=(2.0, 15.0))
    assert (cfg["fit"]["xmin"], cfg["fit"]["xmax"]) == (200, 1500)
    assert cfg["peaks"] == {"Fe": "K", "Pb": ["L", "M"]}
    cfg = make_fit_config(ds, ["Fe", "Pb"], fit_range=(3.0, 15.0))
    assert cfg["peaks"]["Pb"] == "L"  # Pb M (2.3 keV) is below the range
    with pytest.raises(ConfigError, match=r"^fit\.xmax:"):
        make_fit_config(ds, ["Fe"], fit_range=(1.0, 45.0))  # beyond the 40.95 keV spectrum
    with pytest.raises(ConfigError, match="Sr"):
        make_fit_config(ds, ["Fe", "Sr"], fit_range=(2.0, 9.0))
    with pytest.raises(ConfigError, match="^fit_range:"):
        make_fit_config(ds, ["Fe"], fit_range=(9.0, 2.0))


def test_make_config_overrides_and_options(ds):
    cfg = make_fit_config(
        ds, ["Fe", "Pb"], snip_width=25, noise=0.12, escape=False,
        fit={"snipwidth": 40, "maxiter": 20}, peaks={"Pb": "L"}, concentrations={"flux": 1e9},
    )  # fmt: skip
    assert cfg["fit"]["snipwidth"] == 40 and cfg["fit"]["maxiter"] == 20
    assert cfg["peaks"] == {"Fe": "K", "Pb": "L"}
    assert cfg["concentrations"]["flux"] == 1e9 and cfg["concentrations"]["time"] == 1.0
    assert cfg["detector"]["noise"] == 0.12 and cfg["fit"]["escapeflag"] == 0
    assert make_fit_config(ds, ["Fe"], snip_width=25)["fit"]["snipwidth"] == 25
    no_scatter = make_fit_config(ds, ["Fe", "Sr", "Pb"], scatter=False)
    assert no_scatter["fit"]["scatterflag"] == 0
    assert no_scatter["fit"]["xmax"] * 0.01 < 17.0  # ends below the scatter peaks
    explicit = make_fit_config(ds, {"Fe": ["Ka", "Kb"], "pb": "M"})
    assert explicit["peaks"] == {"Fe": ["Ka", "Kb"], "Pb": "M"}
    with pytest.raises(ConfigError, match="^fit:"):
        make_fit_config(ds, ["Fe"], fit=5)
    with pytest.raises(ConfigError, match="Xx"):
        make_fit_config(ds, ["Fe", "Xx"])
    with pytest.raises(ConfigError, match="^peaks.Fe:"):
        make_fit_config(ds, ["Fe"], peaks={"Fe": "M"})


def test_make_config_matrix_and_detector_choices(ds):
    with pytest.raises(ConfigError, match=r"^attenuators\.Matrix:"):
        make_fit_config(ds, ["Fe"], matrix=False)  # two Mo lines need a matrix
    cfg = make_fit_config(ds, ["Fe"], matrix=("Ca1C1O3", 2.71, 1e-3))
    assert cfg["attenuators"]["Matrix"] == [1, "Ca1C1O3", 2.71, 1e-3, 45.0, 45.0, 1, 90.0]
    assert make_fit_config(ds, ["Fe"], matrix="Al2O3")["attenuators"]["Matrix"][1] == "Al2O3"
    second = make_fit_config(ds, ["Fe"], detector=1)
    assert second["attenuators"]["Detector"][3] == pytest.approx(0.045)
    with pytest.raises(ConfigError, match="^detector:"):
        make_fit_config(ds, ["Fe"], detector=7)


def test_make_config_tube_voltage(ds):
    w_tube = ds.copy()
    w_tube.attrs = dict(ds.attrs, tube_element="W", tube_kv=40.0)
    cfg = make_fit_config(w_tube, ["Fe", "Cu"])
    la, lb = sorted(cfg["fit"]["energy"])  # 40 kV is below the W K edge (69.5 keV): L lines
    assert la == pytest.approx(8.40, abs=0.05) and lb == pytest.approx(9.7, abs=0.1)
    assert cfg["peaks"] == {"Fe": "K", "Cu": "K"}
    assert cfg["fit"]["xmax"] * 0.01 < 10.5
    with pytest.raises(ConfigError, match="^excitation_energy:"):
        make_fit_config(ds, ["Fe"], excitation_energy=60.0)  # above the 50 kV tube
    bad = ds.copy()
    bad.attrs = dict(ds.attrs, tube_element="Qq")
    with pytest.raises(ConfigError, match="^tube_element:"):
        make_fit_config(bad, ["Fe"])


# ---------------------------------------------------------------------------------------------
# The generated configuration drives PyMca


def test_fast_linear_fit_runs_with_the_generated_config(cfg, ds, tmp_path):
    y = ds.spectra.isel(detector=0).values.astype(np.float64)
    fitter = FastXRFLinearFit()
    fitter.setFitConfiguration(copy.deepcopy(cfg))
    out = fitter.fitMultipleSpectra(y=y, ysum=y.sum(axis=(0, 1)), save=False, refit=False)
    labels = out.labels("parameters")
    groups = [f"{el} K" for el in ELEMENTS[:-1]] + ["Pb L", "Pb M"]
    assert set(groups) <= set(labels)
    scatter = {"Scatter Peak000", "Scatter Compton000", "Scatter Peak001", "Scatter Compton001"}
    assert scatter <= set(labels)
    params = out["parameters"]
    assert params.shape == (len(labels),) + SHAPE and np.isfinite(params).all()
    for group in ("Fe K", "Ca K", "Sr K"):
        assert params[labels.index(group)].sum() > 0
    # The stored text configures PyMca the same way.
    path = tmp_path / "fit.cfg"
    path.write_text(config_to_text(cfg))
    fitter = FastXRFLinearFit()
    fitter.setFitConfigurationFile(str(path))
    again = fitter.fitMultipleSpectra(y=y, ysum=y.sum(axis=(0, 1)), save=False, refit=False)
    assert again.labels("parameters") == labels
    np.testing.assert_allclose(again["parameters"], params, rtol=1e-9, atol=1e-9)


def test_sum_spectrum_areas_of_majors_match_the_truth(cfg, truth):
    spectrum = truth.expected_sum_spectrum.isel(detector=0).values
    areas = pymca_fit_sum(cfg, spectrum)
    expected = (truth.expected_counts + truth.expected_escape).isel(detector=0).sum(("y", "x"))
    for group in MAJORS:
        ratio = areas[group] / float(expected.sel(line=group))
        assert ratio == pytest.approx(1.0, abs=0.05), f"{group}: fitted/true = {ratio:.4f}"
