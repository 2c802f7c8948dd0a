"""The ``xrfdask`` command run in this process, its output captured."""

from __future__ import annotations

import pytest

from xrfdask.cli import main


@pytest.fixture
def run(capsys):
    """``run(*argv)`` runs ``xrfdask ARGV...`` and returns (exit status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
