import os
import shutil
import subprocess
import sys

import pytest

from xrfdask.cli import COMMANDS, build_parser, command, main


def test_console_script_and_module_entry_points(sample_path):
    exe = shutil.which("xrfdask", path=os.path.dirname(sys.executable)) or "xrfdask"
    for cmd in (
        [exe, "--version"],
        [sys.executable, "-m", "xrfdask", "--version"],
        [sys.executable, "-m", "xrfdask.cli", "--version"],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert result.returncode == 0 and result.stdout.startswith("xrfdask "), result.stderr
    result = subprocess.run(
        [exe, "info", str(sample_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "400 of 400" in result.stdout


def test_every_command_is_a_module_with_register_and_run():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert list(subparsers.choices) == list(COMMANDS)
    for name in COMMANDS:
        module = command(name)
        assert module.__name__ == f"xrfdask.cli.{name}"
        assert callable(module.register) and callable(module.run)


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(capsys, name):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: xrfdask {name} ")


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: xrfdask ") and all(name in out for name in COMMANDS)


def test_bad_command_line_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("xrfdask: error: argument COMMAND: invalid choice: 'nope'")
    assert err.endswith("(see xrfdask --help)\n") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        main(["readout"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "xrfdask readout: error: the following arguments are required: -f/--infile "
        "(see xrfdask readout --help)\n"
    )


def test_cluster_options_are_shared(capsys):
    parser = build_parser()
    for name in ("readout", "convert", "fit", "demo"):
        extra = ["-f", "m.GeoPIXE"] if name == "readout" else ["m.GeoPIXE", "-o", "o.h5"]
        extra = [] if name in ("convert", "demo") else extra
        args = parser.parse_args([name, *extra, "--scheduler", "local", "--workers", "3"])
        assert (args.scheduler, args.workers, args.memory_limit) == ("local", 3, "auto")
        assert args.dashboard_address == "127.0.0.1:8787"
    assert not hasattr(parser.parse_args(["info", "m.GeoPIXE"]), "scheduler")
