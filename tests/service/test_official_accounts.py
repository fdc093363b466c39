"""Two ``official`` accounts in one service: one child process each, never cross-wired.

The official package keeps one connection per process (semantics §1), so two official accounts
in one process would share it. With several official accounts in its configuration, the
service runs each account's package in a child process of its own (``ProcessTerminal``) and
passes each account's ``terminal_path`` to ``initialize()``. No Windows here: the simulator's
drop-in module is installed as ``MetaTrader5`` in a folder on ``sys.path`` (inherited by the
``spawn`` children), with one simulated installation per ``terminal64.exe`` path
(:mod:`tests.service.installations`). Everything else is real: ``load_settings``,
``Gateway.build``/``session_for``, child processes, ``SIGKILL``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mt5gate.errors import MT5Error, MT5InitError
from mt5gate.models import OrderRequest, Side
from mt5gate.service.config import ConfigError, ServiceSettings, load_settings
from mt5gate.service.gateway import Gateway, session_for
from mt5gate.session import MT5SessionManager, SessionState
from mt5gate.session.resolve import resolve_terminal
from mt5gate.terminal.process import ProcessTerminal
from tests.service.installations import ENV, listing, write_package

BROKER_A = "C:/Program Files/Broker A MT5/terminal64.exe"
BROKER_B = "C:\\Program Files\\Broker B MT5\\terminal64.exe"
ENV_PASSWORDS = {"A_PASSWORD": "sim-pass-5001", "B_PASSWORD": "sim-pass-5002"}

#: Long enough for a child to start (import mt5gate and numpy) on a loaded machine.
WAIT_S = 90.0


def account(name: str, login: int, path: str | None, *extra: str) -> str:
    """One ``[[accounts]]`` table of an official account (a TOML literal string for the path)."""
    password = f'password_env = "{name[-1].upper()}_PASSWORD"'
    lines = ["[[accounts]]", f'name = "{name}"', 'terminal = "official"', f"login = {login}",
             'server = "MetaQuotes-Demo"', password]  # fmt: skip
    if path is not None:
        lines.append(f"terminal_path = '{path}'")
    return "\n".join([*lines, *extra]) + "\n"


def settings_of(tmp_path: Path, *accounts: str) -> ServiceSettings:
    config = tmp_path / "mt5gate.toml"
    (tmp_path / "data").mkdir(mode=0o700, exist_ok=True)
    config.write_text('[service]\ndata_dir = "data"\n\n' + "\n".join(accounts), encoding="utf-8")
    return load_settings(config, env={})


@pytest.fixture
def installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dropin_reset: None
) -> dict[str, Path]:
    """Broker A's installation (account 5001) and broker B's (5002), importable as
    ``MetaTrader5`` here and in every child process; their brokers' state files."""
    states = {"a": tmp_path / "broker-a.state", "b": tmp_path / "broker-b.state"}
    monkeypatch.setenv(ENV, listing({BROKER_A: (5001, states["a"]), BROKER_B: (5002, states["b"])}))
    monkeypatch.syspath_prepend(str(write_package(tmp_path / "site")))
    sys.modules.pop("MetaTrader5", None)  # dropin_reset puts back whatever was there
    return states


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """``check()``'s value once it stops raising MT5Error (within ``WAIT_S``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        try:
            return await check()
        except MT5Error as error:
            if loop.time() > deadline:
                raise AssertionError(f"{what}: still failing after {WAIT_S:g} s") from error
            await asyncio.sleep(0.2)


async def started(gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not all(runtime.started for runtime in gateway.accounts.values()):
        assert loop.time() < deadline, "the accounts did not connect"
        await asyncio.sleep(0.1)


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended and been reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_two_official_accounts_run_in_two_children(
    tmp_path: Path, installed: dict[str, Path]
) -> None:
    settings = settings_of(tmp_path, account("broker-a", 5001, BROKER_A),
                           account("broker-b", 5002, BROKER_B))  # fmt: skip
    assert [settings.isolated(a) for a in settings.accounts] == [True, True]
    gateway = Gateway.build(settings, ENV_PASSWORDS)
    a, b = gateway.accounts["broker-a"].session, gateway.accounts["broker-b"].session
    assert isinstance(a.terminal, ProcessTerminal)
    assert isinstance(b.terminal, ProcessTerminal)

    async def main() -> tuple[int, int]:
        await gateway.start()
        try:
            await started(gateway)
            return await _isolated_and_recovering(a, b)
        finally:
            await gateway.stop()

    pids = asyncio.run(main())
    assert all(gone(pid) for pid in pids), "the gateway's stop ends every child"
    assert "MetaTrader5" not in sys.modules, "the service's own process never imported it"


async def _isolated_and_recovering(a: MT5SessionManager, b: MT5SessionManager) -> tuple[int, int]:
    """Two children, two logins, two installations; an order on A only; A's child killed:
    B answers all along, A comes back on a new child. Returns the children's last pids."""
    assert isinstance(a.terminal, ProcessTerminal)
    assert isinstance(b.terminal, ProcessTerminal)
    pid_a, pid_b = a.terminal.pid, b.terminal.pid
    assert pid_a is not None
    assert pid_b is not None
    assert len({pid_a, pid_b, os.getpid()}) == 3
    assert (await a.get_account_info()).login == 5001
    assert (await b.get_account_info()).login == 5002
    assert (await a.read("terminal_info")).path == "C:\\Program Files\\Broker A MT5"
    assert (await b.read("terminal_info")).path == "C:\\Program Files\\Broker B MT5"

    placed = await a.place_order(OrderRequest("EURUSD", Side.BUY, 0.01), idempotency_key="a-1")
    assert placed.retcode == 10009
    assert [p.ticket for p in await a.positions()] == [placed.order]
    assert await b.positions() == []

    os.kill(pid_a, signal.SIGKILL)
    assert (await b.get_price("EURUSD")).bid > 0  # B never noticed
    account_a = await eventually(a.get_account_info, "account A after its child was killed")
    assert account_a.login == 5001
    assert a.terminal.pid not in (None, pid_a)
    assert a.terminal.restarts >= 1
    assert [p.ticket for p in await a.positions()] == [placed.order]  # its broker kept it
    assert a.state == SessionState.CONNECTED

    assert b.terminal.pid == pid_b
    assert b.terminal.restarts == 0
    assert (await b.get_account_info()).login == 5002
    assert await b.positions() == []
    assert a.terminal.pid is not None
    return a.terminal.pid, pid_b


def test_one_official_account_runs_inline_by_default(
    tmp_path: Path, installed: dict[str, Path]
) -> None:
    """A lone official account keeps the package in the service's process (one account cannot
    cross-wire), and its terminal_path still reaches ``initialize()``."""
    settings = settings_of(tmp_path, account("broker-a", 5001, BROKER_A))
    (only,) = settings.accounts
    assert settings.isolated(only) is False
    session = session_for(only, settings, ENV_PASSWORDS)
    assert session.terminal is sys.modules["MetaTrader5"]

    async def main() -> tuple[int, str]:
        async with session:
            return (await session.get_account_info()).login, (
                await session.read("terminal_info")
            ).path

    assert asyncio.run(main()) == (5001, "C:\\Program Files\\Broker A MT5")


def test_isolate_process_puts_a_lone_account_in_a_child(
    tmp_path: Path, installed: dict[str, Path]
) -> None:
    """``isolate = "process"``: a child for one account too (its hung calls can be killed);
    the session stops the child it started when it closes."""
    settings = settings_of(tmp_path, account("broker-b", 5002, BROKER_B, 'isolate = "process"'))
    session = session_for(settings.accounts[0], settings, ENV_PASSWORDS)
    terminal = session.terminal
    assert isinstance(terminal, ProcessTerminal)

    async def main() -> int:
        async with session:
            assert (await session.get_account_info()).login == 5002
            assert terminal.pid is not None
            assert terminal.pid != os.getpid()
            return terminal.pid

    pid = asyncio.run(main())
    assert gone(pid)
    assert not terminal.alive
    assert "MetaTrader5" not in sys.modules


def test_a_path_naming_no_installation_fails_to_connect(
    tmp_path: Path, installed: dict[str, Path]
) -> None:
    """A terminal_path that is not installed fails as the package does (-10003), in the child:
    the session reports it; nothing attaches to some other terminal."""
    missing = "D:/MT5/Broker C/terminal64.exe"
    settings = settings_of(tmp_path, account("broker-a", 5001, missing, 'isolate = "process"'))
    session = session_for(settings.accounts[0], settings, ENV_PASSWORDS)

    async def main() -> MT5Error:
        try:
            with pytest.raises(MT5Error) as failed:
                await session.connect()
            return failed.value
        finally:
            await session.close()

    error = asyncio.run(main())
    assert error.code == -10003
    assert "x64 not found" in str(error)


# ------------------------------------------------------------------------ configuration


def _refused(tmp_path: Path, *accounts: str) -> str:
    with pytest.raises(ConfigError) as refused:
        settings_of(tmp_path, *accounts)
    return str(refused.value)


def test_two_accounts_on_one_installation_are_refused(tmp_path: Path) -> None:
    """Case and slashes do not make another installation: the package lower-cases the path."""
    same = "c:\\program files\\broker a mt5\\TERMINAL64.EXE"
    message = _refused(tmp_path, account("broker-a", 5001, BROKER_A),
                       account("broker-b", 5002, same))  # fmt: skip
    assert message.startswith(f"{tmp_path / 'mt5gate.toml'}: accounts: ")
    assert "'broker-a' and 'broker-b' are official accounts on one terminal installation" in message
    assert "cross-wire inside the terminal itself" in message
    assert "terminal_path" in message


def test_two_official_accounts_without_paths_are_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, account("broker-a", 5001, None), account("broker-b", 5002, None))
    assert "neither has a terminal_path" in message
    assert "cross-wire inside the terminal itself" in message


def test_two_inline_official_accounts_are_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, account("broker-a", 5001, BROKER_A, 'isolate = "inline"'),
                       account("broker-b", 5002, BROKER_B, 'isolate = "inline"'))  # fmt: skip
    assert 'at most one official account may have isolate = "inline"' in message
    assert "one connection per" in message


def test_one_inline_account_beside_a_child(tmp_path: Path) -> None:
    """One account may stay in the service's process while the other goes to a child."""
    settings = settings_of(tmp_path, account("broker-a", 5001, BROKER_A, 'isolate = "inline"'),
                           account("broker-b", 5002, BROKER_B))  # fmt: skip
    assert [settings.isolated(a) for a in settings.accounts] == [False, True]
    assert settings.accounts[0].terminal_path == BROKER_A


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("terminal_path = 'C:/MT5/terminal64.exe'",
         'accounts[0]: terminal_path is for terminal = "official" only'),
        ('isolate = "process"', 'accounts[0]: isolate is for terminal = "official" only'),
    ],
)  # fmt: skip
def test_official_only_fields_elsewhere_are_refused(
    tmp_path: Path, extra: str, message: str
) -> None:
    text = f'[[accounts]]\nname = "demo"\nterminal = "sim"\n{extra}\n'
    assert message in _refused(tmp_path, text)


@pytest.mark.parametrize(
    "path",
    ["terminal64.exe", "MT5/terminal64.exe", "/opt/mt5/terminal64.exe", "C:/MT5/",
     "C:/Program Files/MetaTrader 5", "C:terminal64.exe", "C:/MT5/terminal64.exe\n", ""],
)  # fmt: skip
def test_a_terminal_path_must_name_an_executable(tmp_path: Path, path: str) -> None:
    text = account("broker-a", 5001, None) + f"terminal_path = {path!r}\n".replace("'", '"')
    message = _refused(tmp_path, text)
    assert "accounts[0].terminal_path: " in message
    assert "terminal64.exe" in message


def test_a_bad_isolate_value_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, account("broker-a", 5001, BROKER_A, 'isolate = "thread"'))
    assert "accounts[0].isolate: must be 'auto', 'process' or 'inline'" in message


def test_unc_and_backslash_paths_are_accepted(tmp_path: Path) -> None:
    unc = "\\\\fileserver\\mt5\\a\\terminal64.exe"
    settings = settings_of(tmp_path, account("a-unc", 5001, unc), account("b-dos", 5002, BROKER_B))
    assert settings.accounts[0].terminal_path == unc


def test_isolation_is_for_the_official_package_only() -> None:
    with pytest.raises(MT5InitError, match="isolate=True is for terminal='official' only") as e:
        resolve_terminal("bridge://user:hunter2@127.0.0.1:1", isolate=True)
    assert "hunter2" not in str(e.value)
