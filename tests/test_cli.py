"""The ``mt5gate`` command's entry point: ``main(argv)`` returns the exit status of typer's app
(usage, unknown commands) and of the front ends it runs (the demo)."""

from __future__ import annotations

import sys

import pytest

from mt5gate.cli import main


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2  # no command: the help, as a usage error (on stderr, as click says one)
    bare = capsys.readouterr()
    assert "Usage: mt5gate [OPTIONS] COMMAND [ARGS]..." in bare.err
    assert "price" in bare.err
    assert main(["--help"]) == 0
    helped = capsys.readouterr()
    assert "Usage: mt5gate [OPTIONS] COMMAND [ARGS]..." in helped.out
    assert "SIMULATED demo account" in helped.out
    assert main(["-h"]) == 0
    assert "Usage: mt5gate" in capsys.readouterr().out
    assert main(["nonsense"]) == 2
    unknown = capsys.readouterr()
    assert "No such command 'nonsense'" in unknown.err
    assert unknown.out == ""


def test_main_reads_sys_argv_without_arguments(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["mt5gate", "errors", "10019"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("10019 TRADE_RETCODE_NO_MONEY")


def test_a_command_exit_status_is_returned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "no_such_code"]) == 2  # an unknown code is a usage error
    assert "no MT5 code matches" in capsys.readouterr().err


def test_demo_runs_through_the_dispatcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--virtual-time"]) == 0
    assert "SIMULATED" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``mt5gate --version`` answers before typer is imported, and typer's app (which lists the
    option in its help) answers the same."""
    from importlib.metadata import version

    from typer.testing import CliRunner

    from mt5gate.cli.app import app

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mt5gate {version('mt5gate')}\n"
    through_typer = CliRunner().invoke(app, ["--version"])
    assert through_typer.exit_code == 0
    assert through_typer.stdout == f"mt5gate {version('mt5gate')}\n"
    assert "--version" in CliRunner().invoke(app, ["--help"]).stdout


def test_version_without_an_installed_distribution(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source tree that was never installed says its package's ``__version__``."""
    import importlib.metadata

    import mt5gate

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mt5gate {mt5gate.__version__}\n"
