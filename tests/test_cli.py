"""The ``mt5gate`` command's entry point: ``main(argv)`` returns the exit status of typer's app
(usage, unknown commands) and of the front ends it runs (the demo)."""

from __future__ import annotations

import sys

import pytest

from mt5gate.cli import main


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2  # no command: the help, as a usage error
    bare = capsys.readouterr()
    assert "Usage: mt5gate [OPTIONS] COMMAND [ARGS]..." in bare.out
    assert "price" in bare.out
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
    assert main(["errors", "no_such_code"]) == 1
    assert "no MT5 code matches" in capsys.readouterr().err


def test_demo_runs_through_the_dispatcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--virtual-time"]) == 0
    assert "SIMULATED" in capsys.readouterr().out
