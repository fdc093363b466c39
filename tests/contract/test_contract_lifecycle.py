"""Lifecycle and error reporting: initialize, login, shutdown, last_error, version
(semantics 2, 11; pitfalls A4, A5, D2, D3)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Env

NO_IPC = (-10004, "No IPC connection")
SUCCESS = (1, "Success")
AUTH_FAILED = (-6, "Terminal: Authorization failed")

# (function, args, kwargs, value when not attached) -- semantics 2.4
DETACHED_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = [
    ("version", (), {}, None),
    ("account_info", (), {}, None),
    ("terminal_info", (), {}, None),
    ("symbols_get", (), {}, None),
    ("symbol_info", ("EURUSD",), {}, None),
    ("symbol_info_tick", ("EURUSD",), {}, None),
    ("positions_get", (), {}, None),
    ("orders_get", (), {}, None),
    ("history_deals_get", (0, 2_000_000_000), {}, None),
    ("history_orders_get", (0, 2_000_000_000), {}, None),
    ("copy_rates_from_pos", ("EURUSD", 1, 0, 10), {}, None),
    ("copy_ticks_from", ("EURUSD", 0, 10, -1), {}, None),
    ("order_calc_margin", (0, "EURUSD", 0.1, 1.1), {}, None),
    ("order_check", ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0},), {}, None),
    ("order_send", ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0},), {}, None),
    ("market_book_get", ("EURUSD",), {}, None),
    ("symbol_select", ("EURUSD", True), {}, False),
    ("market_book_add", ("EURUSD",), {}, False),
    ("market_book_release", ("EURUSD",), {}, False),
    ("login", (5001,), {"password": "sim-pass-5001"}, False),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "failed"), DETACHED_CALLS)
def test_calls_before_initialize_fail_with_no_ipc(
    terminal: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], failed: Any
) -> None:
    """semantics 2.4: before initialize() objects are None, booleans False, (-10004)."""
    assert getattr(terminal, name)(*args, **kwargs) is failed
    assert terminal.last_error() == NO_IPC


@pytest.mark.parametrize(("name", "args", "kwargs", "failed"), DETACHED_CALLS)
def test_calls_after_shutdown_fail_with_no_ipc(
    mt5: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], failed: Any
) -> None:
    """semantics 2.3/2.4: after shutdown() every function behaves as before initialize()."""
    assert mt5.shutdown() is None
    assert getattr(mt5, name)(*args, **kwargs) is failed
    assert mt5.last_error() == NO_IPC


@pytest.mark.parametrize("name", ["symbols_total", "positions_total", "orders_total"])
def test_totals_before_initialize_do_not_succeed(terminal: Any, name: str) -> None:
    """semantics 2.4: the *_total functions probably return None, always with (-10004)."""
    assert getattr(terminal, name)() is None
    assert terminal.last_error() == NO_IPC


def test_last_error_never_fails(terminal: Any) -> None:
    """semantics 2.4: last_error() always works and returns a 2-tuple (int, str)."""
    error = terminal.last_error()
    assert isinstance(error, tuple)
    assert len(error) == 2
    assert isinstance(error[0], int)
    assert isinstance(error[1], str)
    terminal.shutdown()
    assert isinstance(terminal.last_error(), tuple)


def test_initialize_without_credentials_attaches_to_current_account(terminal: Any) -> None:
    """semantics 2.1: without credentials initialize() attaches to the logged-in account."""
    assert terminal.initialize() is True
    assert terminal.last_error() == SUCCESS
    account = terminal.account_info()
    assert account is not None
    assert account.login == 5001


def test_initialize_with_good_credentials_logs_that_account_in(
    terminal: Any, netting: dict[str, Any]
) -> None:
    """semantics 2.1 (3): with login= the terminal authorizes that account."""
    assert terminal.initialize(**netting) is True
    assert terminal.last_error() == SUCCESS
    assert terminal.account_info().login == 5002


def test_initialize_accepts_path_positionally(terminal: Any) -> None:
    """semantics 2.1: ``path`` is the one positional argument of initialize()."""
    path = "C:\\Program Files\\MetaTrader 5 (simulated)\\terminal64.exe"
    assert terminal.initialize(path) is True


@pytest.mark.parametrize(
    "creds",
    [
        {"login": 5001, "password": "wrong", "server": "MetaQuotes-Demo"},
        {"login": 999999, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"},
    ],
)
def test_initialize_with_bad_credentials_is_auth_failed(
    terminal: Any, creds: dict[str, Any]
) -> None:
    """semantics 2.1 (3), pitfall A5: bad credentials give False and (-6)."""
    assert terminal.initialize(**creds) is False
    assert terminal.last_error() == AUTH_FAILED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"login": "5001", "password": "sim-pass-5001"}, "login"),
        ({"login": 5001, "password": 5001}, "password"),
        ({"login": 5001, "server": 1}, "server"),
        ({"timeout": "60000"}, "timeout"),
    ],
)
def test_initialize_with_wrong_types_is_invalid_argument(
    terminal: Any, kwargs: dict[str, Any], field: str
) -> None:
    """semantics 2.1: wrongly typed arguments give False and (-2, 'Invalid "<x>" argument')."""
    assert terminal.initialize(**kwargs) is False
    assert terminal.last_error() == (-2, f'Invalid "{field}" argument')


def test_successful_call_resets_last_error(mt5: Any) -> None:
    """semantics 2.5, pitfall D3: a successful call resets last_error to (1, 'Success')."""
    assert mt5.symbol_info("NO_SUCH_SYMBOL") is None
    assert mt5.last_error() == (-4, "Terminal: Not found")
    assert mt5.version() is not None
    assert mt5.last_error() == SUCCESS


def test_failure_after_success_is_reported(mt5: Any) -> None:
    """semantics 2.5: last_error() describes the last call, whatever came before."""
    assert mt5.terminal_info() is not None
    assert mt5.symbol_select("NO_SUCH_SYMBOL", True) is False
    assert mt5.last_error() == (-1, "Terminal: Call failed")


def test_version_shape(mt5: Any) -> None:
    """semantics 11, pitfall D2: version() is a tuple (500, build, 'DD Mon YYYY')."""
    version = mt5.version()
    assert type(version) is tuple
    assert len(version) == 3
    assert version[0] == 500
    assert isinstance(version[1], int)
    assert version[1] > 0
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}", version[2])
    assert mt5.terminal_info().build == version[1]


def test_login_switches_the_whole_terminal(mt5: Any, netting: dict[str, Any]) -> None:
    """semantics 2.2: login() switches to another account; account_info follows."""
    assert mt5.account_info().login == 5001
    assert mt5.login(netting["login"], password=netting["password"], server=netting["server"])
    assert mt5.last_error() == SUCCESS
    assert mt5.account_info().login == 5002


def test_login_with_bad_password_fails(mt5: Any) -> None:
    """semantics 2.2: login() reports the same codes as initialize()'s login step."""
    assert mt5.login(5002, password="wrong", server="MetaQuotes-Demo") is False
    assert mt5.last_error() == AUTH_FAILED


def test_initialize_again_after_shutdown(env: Env, hedging: dict[str, Any]) -> None:
    """semantics 2.3: shutdown() leaves the terminal running; initialize() attaches again."""
    mt5 = env.attach(hedging)
    mt5.shutdown()
    assert mt5.account_info() is None
    assert mt5.initialize() is True
    assert mt5.account_info().login == 5001
