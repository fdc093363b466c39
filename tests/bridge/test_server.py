"""The bridge server over real TCP: the handshake gate, the 32-function allow-list, hostile
frames, limits, and many clients' threads let into the terminal one at a time."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mt5gate.bridge.server import BridgeServer, is_loopback
from mt5gate.terminal.wire import PROTOCOL_NAME, PROTOCOL_VERSION, encode_frame, hello

from .conftest import HEDGING, TOKEN, CountingTerminal, RawClient, ServedBridge, new_sim


def bridge_threads() -> list[str]:
    """The names of the bridge's threads alive now (accept, watchdog, connections)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("mt5gate-bridge")]


def attach(raw: RawClient) -> None:
    assert raw.handshake()["ok"] is True
    reply = raw.call([1, "initialize", [], HEDGING])
    assert reply == [1, True, [True, [1, "Success"]]]


# ------------------------------------------------------------------------------ handshake


def test_handshake_welcomes_a_client_with_the_token(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    welcome = raw.handshake()
    assert welcome["ok"] is True
    assert welcome["protocol"] == PROTOCOL_NAME
    assert welcome["version"] == PROTOCOL_VERSION
    assert welcome["terminal"] == "sim"
    assert isinstance(welcome["mt5gate"], str)
    raw.close()


def test_wrong_token_is_refused_and_the_connection_closed(
    bridge: ServedBridge, counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    raw = bridge.raw()
    with caplog.at_level(logging.DEBUG, logger="mt5gate.bridge"):
        refusal = raw.handshake("wrong token")
        assert raw.closed_by_peer()
    assert refusal == {"ok": False, "kind": "denied", "message": "invalid token"}
    assert counting.calls == []
    assert "wrong token" not in caplog.text
    assert TOKEN not in caplog.text


def test_version_mismatch_names_both_versions(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    raw.send_frame(msgspec.msgpack.encode({"protocol": PROTOCOL_NAME, "version": 2,
                                           "token": TOKEN}))  # fmt: skip
    refusal = raw.recv_frame()
    assert refusal["kind"] == "version"
    assert refusal["message"] == "client speaks bridge protocol 2, server speaks 1"
    assert raw.closed_by_peer()


@pytest.mark.parametrize(
    "hello",
    [
        {"protocol": "rpyc", "version": 1, "token": TOKEN},
        {"protocol": PROTOCOL_NAME, "version": True, "token": TOKEN},
        {"protocol": PROTOCOL_NAME, "version": 1, "token": 12345},
        {"protocol": PROTOCOL_NAME, "version": 1},
        [PROTOCOL_NAME, 1, TOKEN],
    ],
)
def test_bad_hellos_are_refused(bridge: ServedBridge, hello: Any) -> None:
    raw = bridge.raw()
    raw.send_frame(msgspec.msgpack.encode(hello))
    assert raw.recv_frame()["ok"] is False
    assert raw.closed_by_peer()


def test_a_call_before_the_handshake_is_refused_and_the_terminal_untouched(
    bridge: ServedBridge, counting: CountingTerminal
) -> None:
    raw = bridge.raw()
    raw.send_frame(msgspec.msgpack.encode([1, "order_send", [{"action": 1}], {}]))
    assert raw.recv_frame()["ok"] is False
    assert raw.closed_by_peer()
    assert counting.calls == []
    assert bridge.server.calls == 0
    assert counting.sim.brokers == {}  # no account was ever touched


def test_a_silent_client_is_dropped_after_the_handshake_timeout(counting: CountingTerminal) -> None:
    served = ServedBridge(counting, handshake_timeout_s=0.2)
    try:
        raw = served.raw()
        start = time.monotonic()
        assert raw.closed_by_peer()
        assert time.monotonic() - start < 3.0
    finally:
        served.close()


def test_an_idle_client_is_dropped_after_the_idle_timeout(counting: CountingTerminal) -> None:
    served = ServedBridge(counting, idle_timeout_s=0.2)
    try:
        raw = served.raw()
        assert raw.handshake()["ok"] is True
        assert raw.closed_by_peer()
    finally:
        served.close()


# ------------------------------------------------------------------------------ allow-list


@pytest.mark.parametrize(
    "name",
    [
        "__class__",
        "eval",
        "shutdown_server",
        "__getattr__",
        "step",
        "sim",
        "_invoke",
        "set_autotrading",
        "save_state",
        "x" * 1000,
    ],
)
def test_names_outside_the_32_functions_are_denied(
    bridge: ServedBridge, counting: CountingTerminal, name: str
) -> None:
    raw = bridge.raw()
    attach(raw)
    before = list(counting.calls)
    rid, ok, (kind, message) = raw.call([7, name, [], {}])
    assert (rid, ok, kind) == (7, False, "denied")
    assert "not one of the 32 terminal functions" in message
    assert len(message) < 200
    assert counting.calls == before
    assert raw.call([8, "symbols_total", [], {}])[1] is True  # the connection still serves


def test_last_error_travels_with_each_reply(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    attach(raw)
    assert raw.call([2, "symbol_info", ["NOPE"], {}]) == [2, True, [None, [-4,
                                                          "Terminal: Not found"]]]  # fmt: skip
    _rid, ok, (_tick, error) = raw.call([3, "symbol_info_tick", ["EURUSD"], {}])
    assert ok
    assert error == [1, "Success"]


def test_the_terminals_type_errors_come_back_as_type_errors(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    attach(raw)
    _rid, ok, (kind, message) = raw.call([4, "copy_rates_from_pos", ["EURUSD", 1.0, 0, 3], {}])
    assert (ok, kind) == (False, "TypeError")
    assert "integer" in message


class Exploding:
    """A terminal whose functions fail in ways a real terminal should not."""

    def __init__(self) -> None:
        self.sim = new_sim()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    def version(self) -> Any:
        raise RuntimeError("terminal bug")

    def terminal_info(self) -> Any:
        return object()  # cannot travel

    def symbols_get(self, group: str | None = None) -> Any:
        return self.sim.symbols_get(group)


def test_terminal_exceptions_and_unsendable_results_are_internal_errors() -> None:
    served = ServedBridge(Exploding())
    try:
        raw = served.raw()
        attach(raw)
        assert raw.call([2, "version", [], {}])[2] == ["internal", "RuntimeError: terminal bug"]
        kind, message = raw.call([3, "terminal_info", [], {}])[2]
        assert kind == "internal"
        assert "unsendable" in message
        assert raw.call([4, "symbols_total", [], {}])[1] is True
    finally:
        served.close()


def test_a_reply_over_the_reply_limit_is_refused_not_sent() -> None:
    served = ServedBridge(new_sim(), max_reply_frame=2000)
    try:
        raw = served.raw()
        attach(raw)
        _rid, ok, (kind, message) = raw.call([2, "symbols_get", [], {}])
        assert (ok, kind) == (False, "too_large")
        assert "2000-byte limit" in message
    finally:
        served.close()


# ------------------------------------------------------------------------ hostile frames


def test_malformed_msgpack_gets_an_error_reply_and_the_connection_keeps_serving(
    bridge: ServedBridge, counting: CountingTerminal
) -> None:
    raw = bridge.raw()
    attach(raw)
    before = list(counting.calls)
    raw.send_frame(b"\xc1\xc1\xc1")
    rid, ok, (kind, _message) = raw.recv_frame()
    assert (rid, ok, kind) == (0, False, "malformed")
    raw.send_frame(msgspec.msgpack.encode([9, "symbol_info", "EURUSD", {}]))  # args not a list
    assert raw.recv_frame()[:2] == [9, False]
    assert counting.calls == before
    assert raw.call([10, "symbols_total", [], {}])[1] is True


@pytest.mark.parametrize("claimed", [64 * 1024 + 1, 2**32 - 1], ids=["64KiB+1", "4GiB"])
def test_oversized_frames_close_the_connection_at_once(
    bridge: ServedBridge, counting: CountingTerminal, claimed: int
) -> None:
    raw = bridge.raw()
    attach(raw)
    before = list(counting.calls)
    raw.send(claimed.to_bytes(4, "big") + b"\x90" * 100)
    assert raw.closed_by_peer()
    assert counting.calls == before
    good = bridge.raw()
    attach(good)


def test_a_truncated_frame_costs_only_its_connection(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    attach(raw)
    raw.send((1000).to_bytes(4, "big") + b"\x94\x01")
    raw.close()
    raw = bridge.raw()
    raw.send(b"\x00\x00")  # half a header, then gone
    raw.close()
    good = bridge.raw()
    attach(good)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.binary(min_size=1, max_size=300), framed=st.booleans(), authed=st.booleans())
def test_fuzzed_frames_never_hurt_the_server(
    bridge: ServedBridge, junk: bytes, framed: bool, authed: bool
) -> None:
    raw = RawClient(bridge.port, timeout=2.0)
    try:
        if authed:
            assert raw.handshake()["ok"] is True
        raw.send(encode_frame(junk) if framed else junk)
        raw.sock.shutdown(socket.SHUT_WR)
        while raw.sock.recv(65536):  # whatever the server answers, until it closes
            pass
    except (ConnectionError, TimeoutError):
        pass
    finally:
        raw.close()
    good = bridge.raw()
    assert good.handshake()["ok"] is True
    assert good.call([1, "version", [], {}])[1] is True
    good.close()


# ------------------------------------------------------------------------------- limits


def test_the_connection_limit_refuses_the_extra_client(counting: CountingTerminal) -> None:
    served = ServedBridge(counting, max_connections=2)
    try:
        first, second = served.raw(), served.raw()
        assert first.handshake()["ok"]
        assert second.handshake()["ok"]
        third = served.raw()
        refusal = third.handshake()  # only a client with the token counts, and learns it
        assert refusal["kind"] == "busy"
        assert "at most 2 connections" in refusal["message"]
        assert third.closed_by_peer()
        first.close()
        time.sleep(0.2)
        fourth = served.raw()
        assert fourth.handshake()["ok"] is True
    finally:
        served.close()


def test_many_clients_at_once_are_all_served_one_call_at_a_time(
    counting: CountingTerminal,
) -> None:
    # 20 clients connecting in the same instant: all may wait for their handshake at once
    bridge = ServedBridge(counting, max_connections=20, max_handshakes=20)
    inside = 0
    most_inside = 0
    guard = threading.Lock()
    original = counting.sim.symbol_info_tick
    threads_seen: set[str] = set()

    def tracked(symbol: str) -> Any:
        nonlocal inside, most_inside
        with guard:
            inside += 1
            most_inside = max(most_inside, inside)
            threads_seen.add(threading.current_thread().name)
        try:
            time.sleep(0)  # invite another thread in, if one could get in
            return original(symbol)
        finally:
            with guard:
                inside -= 1

    counting.sim.symbol_info_tick = tracked  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            terminal = bridge.client(call_timeout_s=30.0)
            assert terminal.initialize(**HEDGING) is True
            for _ in range(200):
                tick = terminal.symbol_info_tick("EURUSD")
                assert tick is not None, terminal.last_error()
                assert tick.bid > 0
            terminal.close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    bridge.close()
    assert errors == []
    assert counting.calls.count("symbol_info_tick") == 20 * 200
    assert most_inside == 1  # never two threads in the terminal at once
    # each call ran on its own connection's thread, with no hand-off to a worker thread
    assert len(threads_seen) == 20
    assert all(name.startswith("mt5gate-bridge-conn-") for name in threads_seen)


# ------------------------------------------------------------------------ hung terminal


def test_a_hung_call_times_out_and_later_calls_are_busy(counting: CountingTerminal) -> None:
    served = ServedBridge(counting, call_timeout_s=0.3)
    try:
        raw = served.raw()
        attach(raw)
        counting.hang = "symbol_info_tick"
        _rid, ok, (kind, message) = raw.call([2, "symbol_info_tick", ["EURUSD"], {}])
        assert (ok, kind) == (False, "timeout")
        assert "deadline" in message
        assert raw.call([3, "version", [], {}])[2][0] == "busy"
        counting.release.set()
        deadline = time.monotonic() + 5
        while raw.call([4, "version", [], {}])[1] is not True:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        counting.release.set()
        served.close()


# --------------------------------------------------------------------------- life cycle


def test_a_non_loopback_address_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        server = BridgeServer(new_sim(), token=TOKEN, host="0.0.0.0", port=0)
        async with server:
            assert server.port != 0
            assert "serving" in repr(server)
            assert TOKEN not in repr(server)
        assert "stopped" in repr(server)

    with caplog.at_level(logging.INFO, logger="mt5gate.bridge"):
        asyncio.run(main())
    assert "not loopback" in caplog.text
    assert TOKEN not in caplog.text


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.0.0.5")
    assert not is_loopback("example.com")


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty token"):
        BridgeServer(new_sim(), token="")


def test_closing_the_server_drops_connected_clients(counting: CountingTerminal) -> None:
    served = ServedBridge(counting)
    raw = served.raw()
    attach(raw)
    served.close()
    assert raw.closed_by_peer()
    assert served.server.port == 0  # not bound any more: the requested port
    assert bridge_threads() == []


# ------------------------------------------------------------------- more robustness


class BuggyWelcome(BridgeServer):
    """A bridge whose welcome fails for one client (a bug in the server, not the terminal)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.welcomes = 0

    def server_info(self) -> dict[str, Any]:
        self.welcomes += 1
        if self.welcomes == 1:
            raise RuntimeError("a bug in the welcome")
        return super().server_info()


def test_a_bug_in_the_server_costs_one_connection_not_the_server(
    counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    served = ServedBridge(counting, server_class=BuggyWelcome)
    try:
        with caplog.at_level(logging.ERROR, logger="mt5gate.bridge"):
            unlucky = served.raw()
            unlucky.send_frame(hello(TOKEN))
            assert unlucky.closed_by_peer()
        assert "internal error on the connection of ('127.0.0.1'" in caplog.text
        lucky = served.raw()
        attach(lucky)
        assert served.server.clients == 1
    finally:
        served.close()


def test_a_hello_dribbled_past_the_handshake_deadline_is_cut_off(
    counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    # every byte comes well within the deadline; the deadline is the handshake's, not a read's
    served = ServedBridge(counting, handshake_timeout_s=0.5)
    try:
        raw = served.raw()
        frame = encode_frame(hello(TOKEN))
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="mt5gate.bridge"):
            try:
                for byte in frame:
                    raw.send(bytes((byte,)))
                    time.sleep(0.1)
            except OSError:
                pass  # closed by the bridge, as it should be
            assert raw.closed_by_peer()
        assert time.monotonic() - started < 0.1 * len(frame)
        assert "no hello within 0.5 s" in caplog.text
        assert counting.calls == []
    finally:
        served.close()


def test_a_taken_port_fails_to_listen_and_leaves_nothing_running(bridge: ServedBridge) -> None:
    server = BridgeServer(new_sim(), token=TOKEN, port=bridge.port)
    with pytest.raises(OSError):
        server.listen()
    assert "stopped" in repr(server)
    assert server.port == bridge.port  # the requested one
    assert bridge_threads().count("mt5gate-bridge-watchdog") == 1  # the running bridge's only
    server.stop()


def test_a_stopped_server_does_not_listen_again() -> None:
    server = BridgeServer(new_sim(), token=TOKEN, port=0)
    server.listen()
    server.listen()  # already listening: nothing more
    assert len([n for n in bridge_threads() if n == "mt5gate-bridge-accept"]) == 1
    server.stop()
    with pytest.raises(RuntimeError, match="does not start again"):
        server.listen()
    assert bridge_threads() == []


@pytest.mark.parametrize("options", [{"call_timeout_s": 0.0}, {"idle_timeout_s": -1.0}])
def test_timeouts_must_be_positive(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        BridgeServer(new_sim(), token=TOKEN, **options)


def test_answer_turns_a_request_body_into_a_reply_body_without_a_connection() -> None:
    server = BridgeServer(new_sim(), token=TOKEN)
    try:
        reply = msgspec.msgpack.decode(
            server.answer(msgspec.msgpack.encode([7, "version", [], {}]))
        )
        assert reply[:2] == [7, True]
        assert server.calls == 1
    finally:
        server.stop()
