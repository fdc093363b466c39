"""Running the ``mt5gate`` command in process, each test in its own data directory.

Nothing of mt5gate is replaced: every command builds the real simulator (on the real clock,
with its state file in the test's data directory), or reaches a real bridge on loopback. Orders
use BTCUSD, which the simulated broker trades around the clock, so they work on any day.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from typer.testing import CliRunner, Result

from mt5gate.cli.app import app
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.config import demo_accounts
from tests.bridge.conftest import TOKEN, ServedBridge

#: A symbol the simulated broker trades 24/7 (forex is closed at weekends).
SYMBOL: Final = "BTCUSD"
#: Said on stderr by every command on a simulated account.
BANNER: Final = "SIMULATED terminal (mt5gate.sim)"
#: The simulator's demo accounts (``mt5gate.sim.config.demo_accounts``).
HEDGING_PASSWORD: Final = "sim-pass-5001"
NETTING_PASSWORD: Final = "sim-pass-5002"
#: The password of account 5001 on the simulator behind :func:`bridge` (a value that nothing
#: prints by chance, so a leak is found by searching for it).
BRIDGE_PASSWORD: Final = "Zebra-Quokka-7431-secret"

TWO_SIM_ACCOUNTS: Final = """\
[[accounts]]
name = "first"
terminal = "sim"
login = 5001
server = "MetaQuotes-Demo"
password_env = "CLI_TEST_FIRST_PASSWORD"

[[accounts]]
name = "second"
terminal = "sim"
login = 5002
server = "MetaQuotes-Demo"
password_env = "CLI_TEST_SECOND_PASSWORD"
"""


@dataclass(frozen=True)
class Cli:
    """The ``mt5gate`` command, run in process in a temporary directory (the cwd) with its own
    data directory (``$MT5GATE_DATA_DIR``)."""

    home: Path
    data_dir: Path

    def run(self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None,
            ) -> Result:  # fmt: skip
        """``mt5gate ARGS`` (stdin ``input``, extra environment ``env``); stdout and stderr
        apart in the result."""
        return CliRunner().invoke(app, list(args), input=input, env=dict(env or {}),
                                  catch_exceptions=False)  # fmt: skip

    def ok(self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None,
           ) -> Result:  # fmt: skip
        """``run``, which must exit 0."""
        result = self.run(*args, input=input, env=env)
        assert result.exit_code == 0, explain(result)
        return result

    def json(self, *args: str, env: Mapping[str, str] | None = None) -> Any:
        """``mt5gate ARGS --json``, which must exit 0; its stdout parsed."""
        return json.loads(self.ok(*args, "--json", env=env).stdout)

    def buy(self, volume: str = "0.01", *extra: str) -> dict[str, Any]:
        """Buy ``volume`` lots of :data:`SYMBOL` at market (``--yes``): the order's result."""
        result: dict[str, Any] = self.json("order", "buy", SYMBOL, volume, "--yes", *extra)
        assert result["retcode"] == 10009, result
        return result

    def positions(self, *extra: str) -> list[dict[str, Any]]:
        """The open positions (``positions --json``)."""
        found: list[dict[str, Any]] = self.json("positions", *extra)
        return found

    def write(self, name: str, text: str, mode: int = 0o600) -> Path:
        """A file in the home directory."""
        path = self.home / name
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path


def explain(result: Result) -> str:
    """What a failed assertion on ``result`` shows."""
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def flat(text: str) -> str:
    """``text`` with box drawing and line breaks gone, so a message rich wrapped reads whole."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in ``text``: the cells of each ``│ a │ b │`` line."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.lstrip().startswith("│")
    ]


def fields(text: str) -> dict[str, str]:
    """The two-column tables in ``text`` (name, value) as a dict."""
    return {row[0]: row[1] for row in table_rows(text) if len(row) == 2}


def assert_error(result: Result, code: int, *parts: str, prompted: bool = False) -> None:
    """``result`` failed with ``code``: one ``error:`` line (containing each of ``parts``) and
    one ``hint:`` line on stderr, nothing on stdout, no traceback. After a prompt
    (``prompted``) stdout may hold what CliRunner echoes of the input (and the prompt's last
    space, which ``click.confirm(err=True)`` writes to stdout)."""
    assert result.exit_code == code, explain(result)
    assert (result.stdout.strip() in ("", "n", "y")) if prompted else (result.stdout == ""), (
        explain(result)
    )
    assert "Traceback" not in result.stderr, explain(result)
    # After a prompt, the answer's newline is the user's (in CliRunner, and from a pipe, the
    # prompt's line is not ended): the error follows the prompt on its line.
    lines = [line.rpartition("[y/N]:")[2] if prompted else line
             for line in result.stderr.splitlines()]  # fmt: skip
    errors = [line for line in lines if line.startswith("error: ")]
    hints = [line for line in lines if line.startswith("hint: ")]
    assert len(errors) == 1, explain(result)
    assert len(hints) == 1, explain(result)
    for part in parts:
        assert part in errors[0], explain(result)


def assert_simulated(result: Result) -> None:
    """The SIMULATED banner is on stderr, once, and not on stdout."""
    assert result.stderr.count(BANNER) == 1, explain(result)
    assert BANNER not in result.stdout, explain(result)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The command in ``tmp_path`` (the cwd) with its data in ``tmp_path/data``; no
    ``MT5GATE_*`` variable from the environment leaks in (config, journal, password...)."""
    for name in list(os.environ):
        if name.startswith("MT5GATE_") or name in ("COLUMNS", "LINES"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MT5GATE_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path, data_dir)


@pytest.fixture
def two_accounts(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``--config`` file with two simulated accounts, ``first`` (login 5001, hedging) and
    ``second`` (5002, netting), their passwords in the environment."""
    monkeypatch.setenv("CLI_TEST_FIRST_PASSWORD", HEDGING_PASSWORD)
    monkeypatch.setenv("CLI_TEST_SECOND_PASSWORD", NETTING_PASSWORD)
    return cli.write("accounts.toml", TWO_SIM_ACCOUNTS)


@dataclass(frozen=True)
class Bridge:
    """A real bridge on loopback serving a simulator (virtual clock, a Tuesday at 10:00, so
    forex trades), whose account 5001 has the password :data:`BRIDGE_PASSWORD`."""

    url: str
    token_file: Path
    sim: SimTerminal


@pytest.fixture
def bridge(cli: Cli) -> Iterator[Bridge]:
    """A :class:`Bridge` and its token file (mode 600) in the test's home."""
    accounts = tuple(
        dataclasses.replace(a, password=BRIDGE_PASSWORD) if a.login == 5001 else a
        for a in demo_accounts()
    )
    sim = SimTerminal(SimConfig(accounts=accounts, history_days=1),
                      clock=VirtualClock(server_ms(2026, 1, 6, 10)))  # fmt: skip
    served = ServedBridge(sim, terminal_kind="sim")
    try:
        token_file = cli.write("bridge-token", TOKEN + "\n")
        yield Bridge(f"bridge://127.0.0.1:{served.port}", token_file, sim)
    finally:
        served.close()
