"""The bridge's threads: each connection served on its own thread, a stuck call's connection
handed to a fresh one, and every thread the server started joined when it stops."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from mt5gate.bridge.server import BridgeServer
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import HEDGING, TOKEN, CountingTerminal, RawClient, ServedBridge


def bridge_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("mt5gate-bridge"))


def attach(raw: RawClient) -> None:
    assert raw.handshake()["ok"] is True
    assert raw.call([1, "initialize", [], HEDGING])[1] is True


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def closed_or_reply(raw: RawClient, request: list[Any]) -> Any:
    """The reply to ``request``, or "closed" when the server closed the connection first."""
    try:
        return raw.call(request)
    except ConnectionError:
        return "closed"


def in_thread(action: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(action()))
    thread.start()
    return thread, outcome


def test_stop_joins_every_thread_the_server_started(counting: CountingTerminal) -> None:
    before = set(threading.enumerate())
    with BridgeServer(counting, token=TOKEN, port=0, terminal_kind="sim") as server:
        idle = BridgeTerminal("127.0.0.1", server.port, token=TOKEN)
        assert idle.initialize(**HEDGING) is True  # authenticated, then idle
        pending = RawClient(server.port)  # never says hello
        busy, waiting = RawClient(server.port), RawClient(server.port)
        attach(busy)
        attach(waiting)
        counting.hang = "symbol_info_tick"
        busy.send_frame(msgspec.msgpack.encode([2, "symbol_info_tick", ["EURUSD"], {}]))
        eventually(lambda: counting.calls.count("symbol_info_tick") == 1)  # inside the terminal
        queued, answer = in_thread(lambda: closed_or_reply(waiting, [2, "version", [], {}]))
        eventually(lambda: server.gate.waiting == 1)
        assert bridge_threads()[0] == "mt5gate-bridge-accept"
        assert len([n for n in bridge_threads() if "-conn-" in n]) == 4
        # the call inside the terminal returns a moment after stop() begins
        threading.Timer(0.3, counting.release.set).start()
    queued.join(5)
    assert answer in (
        ["closed"],
        [[2, False, ["busy", "gate 'mt5gate-bridge-watchdog' is closed"]]],
    )
    assert "version" not in counting.calls  # the waiting call was refused, not run after stop
    assert bridge_threads() == []
    assert pending.closed_by_peer()
    time.sleep(0.1)  # the timer thread ends just after firing
    assert set(threading.enumerate()) <= before
    for opened in (idle, pending, busy, waiting):
        opened.close()


def test_stop_leaves_a_call_that_does_not_return_and_says_so(
    counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    server = BridgeServer(counting, token=TOKEN, port=0)
    server.listen()
    raw = RawClient(server.port)
    attach(raw)
    counting.hang = "account_info"
    raw.send_frame(msgspec.msgpack.encode([2, "account_info", [], {}]))
    eventually(lambda: "account_info" in counting.calls)
    with caplog.at_level(logging.WARNING, logger="mt5gate.bridge"):
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5.0
    assert "still inside the terminal (account_info() for" in caplog.text
    assert [n for n in bridge_threads() if "-conn-" in n]  # the one thread inside the call
    counting.release.set()
    eventually(lambda: bridge_threads() == [])  # it ends once the call returns
    assert raw.closed_by_peer()
    raw.close()


def test_a_stuck_call_is_answered_and_its_connection_served_on_by_a_fresh_thread(
    counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    served = ServedBridge(counting, call_timeout_s=0.3)
    try:
        first, second = served.raw(), served.raw()
        attach(first)
        attach(second)
        conns = [n for n in bridge_threads() if "-conn-" in n]
        assert len(conns) == 2
        counting.hang = "symbol_info_tick"
        with caplog.at_level(logging.WARNING, logger="mt5gate.bridge"):
            _rid, ok, (kind, message) = first.call([2, "symbol_info_tick", ["EURUSD"], {}])
            assert (ok, kind) == (False, "timeout")
            assert "exceeded its 0.3 s deadline (running)" in message
            # the terminal is stuck: every client, the stuck one's own connection too, hears so
            assert second.call([2, "version", [], {}])[2][0] == "busy"
            assert first.call([3, "version", [], {}])[2][0] == "busy"
            assert len([n for n in bridge_threads() if "-conn-" in n]) == 3
            counting.release.set()
            eventually(lambda: second.call([3, "version", [], {}])[1] is True)
            assert first.call([4, "version", [], {}])[1] is True
            eventually(lambda: len([n for n in bridge_threads() if "-conn-" in n]) == 2)
        assert "symbol_info_tick() of ('127.0.0.1'" in caplog.text
        assert "is stuck in the terminal past its 0.3 s deadline" in caplog.text
        assert 'past its deadline, answered "timeout" before; its result is dropped' in (
            caplog.text
        )
        assert counting.calls.count("symbol_info_tick") == 1
    finally:
        counting.release.set()
        served.close()


def test_a_call_waiting_behind_a_stuck_one_fails_at_its_own_deadline(
    counting: CountingTerminal,
) -> None:
    served = ServedBridge(counting, call_timeout_s=2.0)
    try:
        first, second = served.raw(), served.raw()
        attach(first)
        attach(second)
        counting.hang = "symbol_info_tick"
        stuck, stuck_answer = in_thread(lambda: first.call([2, "symbol_info_tick", ["EURUSD"],
                                                            {}]))  # fmt: skip
        eventually(lambda: "symbol_info_tick" in counting.calls)
        _rid, ok, (kind, message) = second.call([2, "version", [], {}])  # waits its turn
        assert (ok, kind) == (False, "timeout")
        assert "queued behind another call" in message
        stuck.join(5)
        assert stuck_answer[0][2][0] == "timeout"
        assert "version" not in counting.calls  # it never ran
    finally:
        counting.release.set()
        served.close()
