"""The ``mt5gate`` dispatcher: usage, unknown commands, and a real subcommand."""

from __future__ import annotations

import pytest

from mt5gate.cli import main


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "usage: mt5gate" in capsys.readouterr().out
    assert main(["nonsense"]) == 2
    assert "unknown command 'nonsense'" in capsys.readouterr().err


def test_demo_runs_through_the_dispatcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--virtual-time"]) == 0
    assert "SIMULATED" in capsys.readouterr().out
