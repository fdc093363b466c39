"""Lifecycle, accounts and the state file of the simulated terminal (semantics §2)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mt5gate.constants import TradeRetcode
from mt5gate.sim import AccountConfig, SimConfig, VirtualClock
from mt5gate.sim.state import StateFileError
from mt5gate.sim.terminal import SimTerminal
from tests.sim.conftest import LOGIN, PASSWORD, SERVER, TUESDAY_10, market_request

ACCOUNTS = (
    AccountConfig(login=7001, password="main-pw", investor_password="look-only"),
    AccountConfig(login=7002, password="otp-pw", otp_required=True),
)


def make(clock: VirtualClock | None = None, **config: object) -> SimTerminal:
    settings = SimConfig(history_days=1, **config)  # type: ignore[arg-type]
    return SimTerminal(settings, clock=clock or VirtualClock(TUESDAY_10))


def test_detached_until_initialize() -> None:
    terminal = make()
    assert terminal.account_info() is None
    assert terminal.last_error() == (-10004, "No IPC connection")
    assert terminal.login(LOGIN, password=PASSWORD) is False
    assert "detached" in repr(terminal)
    assert terminal.initialize()
    assert terminal.last_error() == (1, "Success")
    assert "attached" in repr(terminal)


def test_initialize_twice_with_same_credentials_is_fine() -> None:
    terminal = make()
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)


def test_wrong_password_is_minus_6_and_password_not_echoed() -> None:
    terminal = make()
    assert terminal.initialize(login=LOGIN, password="wrong-secret", server=SERVER) is False
    assert terminal.last_error() == (-6, "Terminal: Authorization failed")
    assert "wrong-secret" not in repr(terminal)
    assert PASSWORD not in repr(terminal.config)


def test_unknown_server_times_out() -> None:
    terminal = make()
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server="Nowhere-Live") is False
    assert terminal.last_error() == (-10005, "IPC timeout")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"login": "5001"}, "login"),
        ({"login": LOGIN, "password": 123}, "password"),
        ({"login": LOGIN, "server": 1}, "server"),
        ({"timeout": "60"}, "timeout"),
        ({"path": 5}, "path"),
    ],
)
def test_initialize_argument_types(kwargs: dict[str, object], field: str) -> None:
    terminal = make()
    assert terminal.initialize(**kwargs) is False  # type: ignore[arg-type]
    assert terminal.last_error() == (-2, f'Invalid "{field}" argument')


def test_investor_login_cannot_trade() -> None:
    terminal = make(accounts=ACCOUNTS)
    assert terminal.initialize(login=7001, password="look-only")
    info = terminal.account_info()
    assert info is not None
    assert info.trade_allowed is False
    assert terminal.initialize(login=7001, password="main-pw")
    info = terminal.account_info()
    assert info is not None
    assert info.trade_allowed is True


def test_otp_account_is_minus_7() -> None:
    terminal = make(accounts=ACCOUNTS)
    assert terminal.initialize(login=7002, password="otp-pw") is False
    assert terminal.last_error()[0] == -7


def test_login_switches_account_and_failed_login_logs_out() -> None:
    terminal = make()
    assert terminal.initialize()
    assert terminal.login(5002, password="sim-pass-5002")
    info = terminal.account_info()
    assert info is not None
    assert (info.login, info.margin_mode) == (5002, 0)
    assert terminal.login(5002, password="nope") is False
    assert terminal.account_info() is None


def test_version_and_terminal_info() -> None:
    terminal = make()
    terminal.initialize()
    assert terminal.version() == (500, 6231, "27 Sep 2026")
    info = terminal.terminal_info()
    assert info is not None
    assert (info.connected, info.trade_allowed, info.maxbars) == (True, True, 100_000)
    assert info.path.endswith("MetaTrader 5 (simulated)")


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "broker.sim-state.json"
    first = make()
    first.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    opened = first.order_send(market_request(first, magic=4242))
    assert opened is not None
    assert opened.retcode == TradeRetcode.DONE
    first.save_state(path)
    second = make(clock=VirtualClock(TUESDAY_10))
    second.load_state(path)
    second.initialize()
    positions = second.positions_get()
    assert positions is not None
    assert [(p.ticket, p.magic) for p in positions] == [(opened.order, 4242)]
    again = second.order_send(market_request(second))
    assert again is not None
    assert again.order > opened.order, "tickets continue after a restore"
    assert PASSWORD not in path.read_text()


def test_state_file_autosaves_every_order_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "auto.sim-state.json"
    script = textwrap.dedent(
        f"""
        from mt5gate.sim import SimConfig, VirtualClock
        from mt5gate.sim.terminal import SimTerminal
        from tests.sim.conftest import market_request
        term = SimTerminal(SimConfig(history_days=1), clock=VirtualClock({TUESDAY_10}),
                           state_file={str(path)!r})
        term.initialize()
        result = term.order_send(market_request(term, magic=99))
        print(result.order)
        """
    )
    cwd = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=cwd
    )
    ticket = int(out.stdout.strip())
    survivor = SimTerminal(
        SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10), state_file=path
    )
    survivor.initialize()
    positions = survivor.positions_get()
    assert positions is not None
    assert [(p.ticket, p.magic) for p in positions] == [(ticket, 99)]


def test_state_file_errors_are_clear(tmp_path: Path) -> None:
    terminal = make()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(StateFileError, match="cannot read"):
        terminal.load_state(bad)
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(StateFileError, match="version 99"):
        terminal.load_state(bad)
    bad.write_text(json.dumps({"version": 1}))
    with pytest.raises(StateFileError, match="incomplete"):
        terminal.load_state(bad)


def test_step_needs_a_virtual_clock() -> None:
    from mt5gate.sim import RealClock

    with pytest.raises(TypeError, match="VirtualClock"):
        SimTerminal(SimConfig(history_days=1), clock=RealClock()).step(1)
