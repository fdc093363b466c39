"""Connection budgets: sockets without the token cannot lock out the clients that hold it.

Unauthenticated sockets have their own small budget (``max_handshakes``) and deadline
(``handshake_timeout_s``); a new socket that finds the budget full closes the oldest pending
one at once. Authenticated clients count against ``max_connections`` only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from mt5gate.bridge import cli
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import HEDGING, TOKEN, BridgeProcess, CountingTerminal, RawClient, ServedBridge

BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}


def closed_within(raw: RawClient, seconds: float) -> bool:
    """Whether the server closes ``raw`` within ``seconds`` (a "busy" word before EOF is fine)."""
    raw.sock.settimeout(seconds)
    try:
        while raw.sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def idle_sockets(port: int, count: int) -> list[RawClient]:
    """``count`` connected sockets that never say a word."""
    return [RawClient(port) for _ in range(count)]


def test_idle_sockets_cannot_lock_out_a_client_with_the_token(
    start_bridge: Callable[..., BridgeProcess],
) -> None:
    bridge = start_bridge("--handshake-timeout", "2")  # --max-handshakes 8, the default
    idle = idle_sockets(bridge.port, 24)  # more than --max-connections (16) used to allow
    try:
        terminal = BridgeTerminal("127.0.0.1", bridge.port, token=TOKEN, connect_timeout_s=5.0)
        started = time.monotonic()
        assert terminal.initialize(**HEDGING) is True, terminal.last_error()
        assert time.monotonic() - started < 1.0  # promptly: not after some idle socket expired
        sent = terminal.order_send(dict(BUY))
        assert sent is not None
        assert sent.retcode == 10009
        # the oldest idle sockets were closed at once to keep at most 8 waiting
        assert all(closed_within(raw, 0.5) for raw in idle[:16])
        # the rest are closed by the server once past the handshake deadline
        waited = time.monotonic()
        assert all(closed_within(raw, 4.0) for raw in idle[16:])
        assert time.monotonic() - waited < 4.0
        # idle sockets opened now do not disturb an authenticated client
        more = idle_sockets(bridge.port, 20)
        assert terminal.positions_total() == 1
        for raw in more:
            raw.close()
        terminal.close()
    finally:
        for raw in idle:
            raw.close()
    code, err = bridge.stop()
    assert code == 0
    assert "no hello yet" in err  # the evictions were logged
    assert TOKEN not in err


def test_a_full_handshake_budget_closes_its_oldest_socket_with_a_busy_word(
    counting: CountingTerminal,
) -> None:
    served = ServedBridge(counting, max_handshakes=2, handshake_timeout_s=30.0)
    try:
        first, second = served.raw(), served.raw()
        time.sleep(0.2)
        assert served.server.pending == 2
        third = served.raw()  # the budget is full: the oldest waiting socket goes
        refusal = first.recv_frame()
        assert refusal["kind"] == "busy"
        assert "at most 2 connections wait for their handshake" in refusal["message"]
        assert first.closed_by_peer()
        assert third.handshake()["ok"] is True
        assert second.handshake()["ok"] is True
        assert served.server.pending == 0
        assert served.server.clients == 2
    finally:
        served.close()


def test_authenticated_clients_count_against_max_connections_only(
    counting: CountingTerminal,
) -> None:
    served = ServedBridge(counting, max_connections=2, max_handshakes=3)
    try:
        for _ in range(6):  # more idle sockets than both budgets (closed after the test)
            served.raw()
        first, second = served.raw(), served.raw()
        assert first.handshake()["ok"] is True
        assert second.handshake()["ok"] is True
        third = served.raw()
        refusal = third.handshake()
        assert (refusal["ok"], refusal["kind"]) == (False, "busy")
        assert "at most 2 connections" in refusal["message"]
        assert served.server.clients == 2
        assert served.server.pending <= 3
    finally:
        served.close()


def test_a_socket_that_never_says_hello_is_logged_and_closed_at_its_deadline(
    counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    served = ServedBridge(counting, handshake_timeout_s=0.3)
    try:
        with caplog.at_level("INFO", logger="mt5gate.bridge"):
            raw = served.raw()
            assert closed_within(raw, 3.0)
            time.sleep(0.1)
        assert "no hello within 0.3 s" in caplog.text
        assert served.server.pending == 0
    finally:
        served.close()


@pytest.mark.parametrize(
    "options",
    [
        {"max_connections": 0},
        {"max_handshakes": 0},
        {"handshake_timeout_s": 0.0},
    ],
)
def test_budgets_must_be_positive(counting: CountingTerminal, options: dict[str, Any]) -> None:
    from mt5gate.bridge.server import BridgeServer

    with pytest.raises(ValueError, match="must be > 0"):
        BridgeServer(counting, token=TOKEN, **options)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-handshakes", "0"), ("--max-connections", "-1"), ("--handshake-timeout", "soon")],
)
def test_the_cli_refuses_budgets_that_are_not_positive(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--terminal", "sim", "--token-file", "t", option, value])
    assert exit_.value.code == 2
    assert option in capsys.readouterr().err


def test_the_cli_options_reach_the_server() -> None:
    args = cli.build_parser().parse_args(
        ["--terminal", "sim", "--token-file", "t", "--max-handshakes", "3",
         "--handshake-timeout", "1.5"]
    )  # fmt: skip
    assert (args.max_handshakes, args.handshake_timeout, args.max_connections) == (3, 1.5, 16)
    defaults = cli.build_parser().parse_args(["--terminal", "sim", "--token-file", "t"])
    assert (defaults.max_handshakes, defaults.handshake_timeout) == (8, 5.0)
