"""What ``mt5gate`` imports: each command loads what it uses and no more (issue 18).

A command-line tool pays for every module it imports on every run, so ``mt5gate --help`` must
not load the gateway, and a read on the simulator must not load the HTTP service, the Telegram
bot or the fleet. Timings vary with the machine; the set of loaded modules does not, so these
tests check ``sys.modules`` in a fresh interpreter (``bench/cli_bench.py`` has the times).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import mt5gate
import mt5gate.bot
from mt5gate.cli.options import SideChoice
from mt5gate.models import Side

#: Run ``mt5gate ARGS`` in-process, then print the top of every loaded module's name as JSON.
_PROBE: Final = """
import contextlib, io, json, sys
from mt5gate.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

#: Never needed by a command that runs on its own account (they belong to ``serve`` and ``bot``;
#: the metrics are the service's).
_FRONT_ENDS: Final = ("telegram", "fastapi", "uvicorn", "starlette", "httpx", "pydantic_settings",
                      "prometheus_client", "mt5gate.metrics", "mt5gate.bot.app",
                      "mt5gate.service.app", "mt5gate.fleet", "mt5gate.service.fleet",
                      "mt5gate.cli.remote")  # fmt: skip
#: The help is plain text: typer formats it with rich (and markdown-it) only when asked to.
_RICH_HELP: Final = ("rich", "markdown_it", "typer.rich_utils")
#: Not needed to print the help either: the gateway itself, and what it is built on.
_GATEWAY: Final = ("numpy", "pandas", "pydantic", "asyncio", "mt5gate.models", "mt5gate.session",
                   "mt5gate.sim", "mt5gate.service", "mt5gate.orders", "mt5gate.health",
                   "mt5gate.errors", "mt5gate.cli.reads", "mt5gate.cli.running",
                   "mt5gate.cli.target", "mt5gate.cli.reference")  # fmt: skip


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The modules loaded once ``mt5gate ARGS`` ran in a fresh interpreter (data in tmp)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT5GATE_")}
    env["MT5GATE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["code"] == 0, done.stderr
    return set(answer["modules"])


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages count with their submodules) are among ``modules``."""
    return [n for n in names if n in modules or any(m.startswith(f"{n}.") for m in modules)]


def test_help_loads_neither_the_gateway_nor_the_front_ends(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert present(modules, _FRONT_ENDS + _GATEWAY + _RICH_HELP) == []


def test_version_loads_not_even_typer(tmp_path: Path) -> None:
    assert present(loaded(tmp_path, "--version"), ("typer", "click", *_RICH_HELP, *_GATEWAY)) == []


@pytest.mark.parametrize("command", [["order", "limit", "--help"], ["history", "--help"]])
def test_a_commands_help_loads_no_more(tmp_path: Path, command: list[str]) -> None:
    """(typer itself loads pydantic to build a command's parameters: not ours to avoid.)"""
    ours = tuple(n for n in _GATEWAY if n != "pydantic")
    assert present(loaded(tmp_path, *command), _FRONT_ENDS + ours + _RICH_HELP) == []


def test_a_read_loads_no_front_end(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "price", "EURUSD")
    assert "mt5gate.sim.terminal" in modules  # it did run, on the simulator
    assert present(modules, _FRONT_ENDS) == []


def test_the_package_exports_on_first_use() -> None:
    """``import mt5gate`` loads none of its API; each name is imported when first used."""
    code = "import mt5gate, sys; print('mt5gate.session' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.split() == ["False", "False"]
    from mt5gate.session import MT5SessionManager

    assert mt5gate.MT5SessionManager is MT5SessionManager
    assert set(mt5gate.__all__) <= set(dir(mt5gate))
    assert all(getattr(mt5gate, name) is not None for name in mt5gate.__all__)
    assert all(getattr(mt5gate.bot, name) is not None for name in mt5gate.bot.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = mt5gate.nothing


def test_the_command_lines_sides_are_the_models() -> None:
    assert [(s.name, s.value) for s in SideChoice] == [(s.name, s.value) for s in Side]
