"""Concentration files: every shipped file reads, values as the spec's format gives them."""

import glob
import os

import numpy as np
import pytest

import xrfdask as xd
from tests.conftest import SHARED
from xrfdask.errors import FormatError, XrfdaskWarning
from xrfdask.io.cnc import Cnc, read_cnc

CNC = str(SHARED / "data" / "cnc")
FILES = sorted(glob.glob(os.path.join(CNC, "*.cnc")))


def test_the_shared_files_are_there():
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_every_shipped_file_reads(path):
    if os.path.basename(path) == "sarm69.cnc":
        with pytest.warns(XrfdaskWarning, match=r"sarm69.cnc, line 34: an element row after"):
            cnc = read_cnc(path)
    else:
        cnc = read_cnc(path)
    assert cnc.name and cnc.name == cnc.name.strip()
    assert len(cnc.z) == len(cnc.conc) == len(cnc.err) > 0
    assert (cnc.z >= 1).all() and (cnc.conc >= 0).all()
    assert cnc.basename == os.path.basename(path)


def test_nist613_values_as_in_the_file():
    cnc = xd.read_cnc(os.path.join(CNC, "nist613.cnc"))
    assert cnc.name == "NIST 613"
    assert (cnc.density, cnc.mass, cnc.thickness) == (2490.945, 360.0, 960.0)
    assert cnc.density_g_cm3 == pytest.approx(2.490945) and cnc.thickness_cm == pytest.approx(0.096)
    assert len(cnc.z) == 70 and cnc.unit == "ppm"
    assert cnc.z[:3].tolist() == [1, 3, 4]
    assert cnc.conc[1] == 40.2 and cnc.err[1] == 1.3
    assert cnc.concentration("Li") == (40.2, 1.3) and cnc.concentration(3) == (40.2, 1.3)
    assert cnc.concentration("U") is not None and cnc.concentration("Tc") is None
    assert cnc.conc.sum() == pytest.approx(1e6, rel=1e-3)
    ds = cnc.to_dataset()
    assert ds.concentration.sel(element="Li") == 40.2 and ds.attrs["density_mg_cm3"] == 2490.945


def test_empty_fields_are_dropped_and_the_unit_is_read():
    kl2 = read_cnc(os.path.join(CNC, "kl2-g.cnc"))  # "3670<TAB><TAB>1.771<TAB>100"
    assert (kl2.density, kl2.mass, kl2.thickness) == (3670.0, 1.771, 100.0)
    axo = read_cnc(os.path.join(CNC, "axo.cnc"))
    assert axo.unit == "ng/mm^2" and axo.density == 0 and axo.thickness == 0.2
    assert read_cnc(axo) is axo


def _write(tmp_path, body: str):
    path = tmp_path / "bad.cnc"
    path.write_text(body)
    return path


HEAD = "Standard_Name\t\nX\t\nDensity(mg/cm^3)\tMass(mg)\tSample_thickness(micron)\n"


@pytest.mark.parametrize(
    "body, message",
    [
        (HEAD + "1\t2\t3\nNumber of elements\n3\nZ\tCert conc(ppm)\tErr\n26\t10\t1\n29\t5\t1\n",
         r"bad.cnc, line 10: the file announces 3 elements \(line 6\) but has only 2"),
        (HEAD + "1\tx\t3\nNumber of elements\n1\nZ\tCert conc(ppm)\tErr\n26\t10\t1\n",
         r"bad.cnc, line 4: mass 'x' is not a number"),
        (HEAD + "1\t2\t3\nNumber of elements\n1\nZ\tCert conc(ppm)\tErr\n200\t10\t1\n",
         r"bad.cnc, line 8: Z '200' is not an element"),
        (HEAD + "1\t2\t3\nNumber of elements\n1\nZ\tCert conc(ppm)\tErr\n26\tten\t1\n",
         r"bad.cnc, line 8: concentration 'ten' is not a number"),
        (HEAD + "1\t2\nNumber of elements\n1\n", r"bad.cnc, line 4: expected density, mass"),
        (HEAD, r"bad.cnc: ends at line 3, expected density"),
        (HEAD + "1\t2\t3\nNumber of elements\n2\nZ\tCert conc(ppm)\tErr\n26\t10\t1\n26\t5\t1\n",
         r"bad.cnc: Z 26 listed more than once"),
        # Found by benchmarks/fuzz_inputs.py: a corrupt count was allocated before the rows were
        # read (MemoryError, numpy's ValueError), and Z 99-118 passed, then failed in xraylib
        # (ValueError) or PyMca (OSError) when the composition was used.
        (HEAD + "1\t2\t3\nNumber of elements\n1e12\nZ\tCert conc(ppm)\tErr\n26\t10\t1\n",
         r"bad.cnc, line 9: the file announces 1000000000000 elements \(line 6\) but has only 1"),
        (HEAD + "1\t2\t3\nNumber of elements\n9223372036854775808\nZ\tCert conc(ppm)\n26\t10\n",
         r"bad.cnc, line 9: the file announces 9223372036854775808 elements"),
        (HEAD + "1\t2\t3\nNumber of elements\n1\nZ\tCert conc(ppm)\tErr\n104\t10\t1\n",
         r"bad.cnc, line 8: Z '104' is not an element with X-ray data \(1 to 98\)"),
    ],
    ids=["too-few-rows", "mass", "unknown-z", "conc", "props", "short", "repeated", "huge-count",
         "count-past-int64", "z-without-data"],
)  # fmt: skip
def test_malformed_files_name_the_file_and_line(tmp_path, body, message):
    with pytest.raises(FormatError, match=message):
        read_cnc(_write(tmp_path, body))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cnc: no such concentration file"):
        read_cnc(tmp_path / "nope.cnc")


def test_a_cnc_built_in_memory():
    cnc = Cnc("", "mix", 1000.0, 0.0, 10.0, np.array([26, 8]), np.array([7e5, 3e5]), np.zeros(2))
    assert cnc.basename == "mix.cnc" and cnc.symbols == ["Fe", "O"]
    np.testing.assert_allclose(cnc.mass_fractions, [0.7, 0.3])
