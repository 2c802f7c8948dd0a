"""parse_scan_command: mesh commands in every form files hold them, and what is not a mesh."""

from __future__ import annotations

import numpy as np
import pytest

from xrfdask.errors import ConfigError
from xrfdask.regrid import parse_scan_command

MESH = "cdmesh samx -1.5 1.5 31 samy 0 2 21 0.05"


@pytest.mark.parametrize(
    "cmd",
    [
        MESH,
        MESH.encode(),
        np.bytes_(MESH.encode()),
        np.array(MESH.encode()),
        "b'" + MESH + "'",
        'b"' + MESH + '"',
        "  cdmesh  samx\t-1.5 1.5 31   samy 0 2 21 0.05\n",
    ],
    ids=["str", "bytes", "np.bytes_", "0-d array", "b'' repr", 'b"" repr', "whitespace"],
)
def test_every_form_gives_the_same_mesh(cmd):
    c = parse_scan_command(cmd)
    assert (c.kind, c.motor1, c.motor2) == ("cdmesh", "samx", "samy")
    assert (c.start1, c.end1, c.n1, c.start2, c.end2, c.n2, c.time) == (
        -1.5, 1.5, 31, 0.0, 2.0, 21, 0.05
    )  # fmt: skip
    assert c.relative and c.shape == (21, 31)
    assert c.text == MESH


def test_axes_are_the_commands_points():
    c = parse_scan_command("cmesh hrx 0 3 4 hry 10 12 3 0.1")
    cols, rows = c.axes()
    np.testing.assert_array_equal(cols, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(rows, [10.0, 11.0, 12.0])
    assert not c.relative


@pytest.mark.parametrize(
    ("kind", "relative"), [("mesh", False), ("cmesh", False), ("dmesh", True), ("cdmesh", True)]
)
def test_relative_meshes(kind, relative):
    assert parse_scan_command(f"{kind} a 0 1 2 b 0 1 2 1").relative is relative


def test_time_is_optional_and_counts_may_be_written_as_floats():
    c = parse_scan_command("mesh a 0 1 10.0 b 0 1 5")
    assert (c.n1, c.n2, c.time) == (10, 5, None)


@pytest.mark.parametrize(
    ("cmd", "says"),
    [
        ("dscan samx -1 1 20 0.1", "1-D scan ('dscan')"),
        ("b'timescanc 100 0.1'", "1-D scan ('timescanc')"),
        ("ascan samx 0 1 10 samy 0 1 10 0.1", "1-D scan ('ascan')"),
        ("cmesh samx 0 1 10 samy 0 1", "8 tokens"),
        ("", "empty"),
        ("cmesh samx 0 1 ten samy 0 1 5 0.1", "n1 'ten' is not a number"),
        ("cmesh samx 0 one 10 samy 0 1 5 0.1", "end1 'one' is not a number"),
        ("cmesh samx 0 1 10.5 samy 0 1 5 0.1", "n1 '10.5' is not a positive integer"),
        ("cmesh samx 0 1 10 samy 0 1 0 0.1", "n2 '0' is not a positive integer"),
        ("cmesh samx 0 nan 10 samy 0 1 5 0.1", "end1 'nan' is not a number"),
        (b"\xff\xfe", "not UTF-8"),
        (3.5, "expected a string"),
    ],
)
def test_what_is_not_a_mesh_is_a_one_line_error(cmd, says):
    with pytest.raises(ConfigError) as err:
        parse_scan_command(cmd)
    assert says in str(err.value)
    assert "\n" not in str(err.value)
