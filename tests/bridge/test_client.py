"""BridgeTerminal: the Terminal seam over a real bridge, and the real module's IPC failures
when the bridge is gone, hung, restarted or misbehaving."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from mt5gate.records import OrderSendResult, SymbolInfo, Tick, TradeRequest
from mt5gate.terminal import Terminal
from mt5gate.terminal import wire as p
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import HEDGING, TOKEN, CountingTerminal, ServedBridge, new_sim

NO_IPC = (-10004, "No IPC connection")


def test_a_bridge_terminal_is_a_terminal(client: BridgeTerminal) -> None:
    assert isinstance(client, Terminal)


def test_calls_before_initialize_fail_locally_with_no_ipc(
    client: BridgeTerminal, counting: CountingTerminal
) -> None:
    assert client.symbol_info_tick("EURUSD") is None
    assert client.last_error() == NO_IPC
    assert client.symbol_select("EURUSD", True) is False
    assert client.last_error() == NO_IPC
    assert counting.calls == []
    assert not client.connected


def test_a_session_of_calls_through_the_bridge(client: BridgeTerminal) -> None:
    assert client.initialize(**HEDGING) is True
    assert client.server_info is not None
    assert client.server_info["terminal"] == "sim"
    assert client.last_error() == (1, "Success")
    assert client.version()[0] == 500
    assert isinstance(client.version(), tuple)
    assert type(client.symbol_info("EURUSD")) is SymbolInfo
    tick = client.symbol_info_tick("EURUSD")
    assert type(tick) is Tick
    assert tick.ask > tick.bid
    sent = client.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                              "type_filling": 1, "price": tick.ask})  # fmt: skip
    assert type(sent) is OrderSendResult
    assert sent.retcode == 10009
    assert type(sent.request) is TradeRequest
    positions = client.positions_get(symbol="EURUSD")
    assert isinstance(positions, tuple)
    assert positions[0].ticket == sent.order
    assert client.positions_total() == 1
    rates = client.copy_rates_from_pos("EURUSD", 1, 0, 10)
    assert rates.dtype == p.RATES_DTYPE
    assert len(rates) == 10
    now = datetime.fromtimestamp(tick.time)  # naive: local time, as with the real module
    ticks = client.copy_ticks_from("EURUSD", now, 5, -1)
    assert ticks.dtype == p.TICKS_DTYPE
    assert client.symbol_info("NOPE") is None
    assert client.last_error() == (-4, "Terminal: Not found")
    assert client.positions_get("EURUSD") is None  # keywords only: (-2) from the terminal
    assert client.last_error()[0] == -2


def test_every_function_goes_through(client: BridgeTerminal) -> None:
    client.initialize(**HEDGING)
    start, end = int(time.time()) - 86400, int(time.time())
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("login", (5001,), {"password": HEDGING["password"], "server": HEDGING["server"]}),
        ("account_info", (), {}), ("terminal_info", (), {}), ("symbols_total", (), {}),
        ("symbols_get", ("EUR*",), {}), ("symbol_select", ("GBPUSD", True), {}),
        ("market_book_add", ("EURUSD",), {}), ("market_book_get", ("EURUSD",), {}),
        ("market_book_release", ("EURUSD",), {}), ("copy_rates_from", ("EURUSD", 1, end, 5), {}),
        ("copy_rates_range", ("EURUSD", 1, start, end), {}),
        ("copy_ticks_range", ("EURUSD", start, start + 60, -1), {}),
        ("orders_total", (), {}), ("orders_get", (), {}),
        ("order_calc_margin", (0, "EURUSD", 0.1, 1.1), {}),
        ("order_calc_profit", (0, "EURUSD", 0.1, 1.1, 1.2), {}),
        ("order_check", ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0},), {}),
        ("history_orders_total", (start, end), {}), ("history_orders_get", (start, end), {}),
        ("history_deals_total", (start, end), {}), ("history_deals_get", (start, end), {}),
    ]  # fmt: skip
    for name, args, kwargs in calls:
        getattr(client, name)(*args, **kwargs)
        assert client.last_error()[0] in (1, -1), (name, client.last_error())


def test_calling_conventions_raise_type_error_like_the_real_module(
    client: BridgeTerminal, counting: CountingTerminal
) -> None:
    client.initialize()
    before = len(counting.calls)
    with pytest.raises(TypeError, match=r"symbol_info\(\) takes no keyword arguments"):
        client.symbol_info(symbol="EURUSD")
    with pytest.raises(TypeError, match=r"account_info\(\) takes no arguments \(1 given\)"):
        client.account_info(1)
    with pytest.raises(TypeError, match="no arguments"):
        client.last_error(1)
    with pytest.raises(TypeError, match="no arguments"):
        client.shutdown(True)
    assert len(counting.calls) == before
    with pytest.raises(TypeError, match="integer"):  # the terminal's own TypeError
        client.copy_rates_from_pos("EURUSD", "H1", 0, 10)
    with pytest.raises(TypeError, match="not sent over the bridge"):
        client.order_send({"action": 1, "symbol": object()})
    with pytest.raises(ValueError, match="request limit"):
        client.symbols_get("x" * 70_000)
    assert client.symbols_total() is not None  # the connection survived all that


def test_shutdown_closes_only_this_client(bridge: ServedBridge) -> None:
    first, second = bridge.client(), bridge.client()
    assert first.initialize(**HEDGING)
    assert second.initialize()
    assert first.shutdown() is None
    assert first.account_info() is None
    assert first.last_error() == NO_IPC
    assert second.account_info().login == 5001
    assert first.initialize() is True
    assert first.account_info().login == 5001
    first.close()
    second.close()


def test_from_url_and_repr_never_show_the_token() -> None:
    terminal = BridgeTerminal.from_url("bridge://10.0.0.7:19000", token=TOKEN,
                                       call_timeout_s=3.0)  # fmt: skip
    assert (terminal.host, terminal.port, terminal.call_timeout_s) == ("10.0.0.7", 19000, 3.0)
    assert BridgeTerminal.from_url("bridge://[::1]", token=TOKEN).port == p.DEFAULT_PORT
    assert repr(terminal) == "<BridgeTerminal bridge://10.0.0.7:19000 disconnected>"
    assert TOKEN not in repr(terminal)
    assert TOKEN not in str(vars(terminal).get("host"))
    for bad in ("http://host:1", "bridge://", "bridge://u:secret@host:1", "bridge://h:1/x",
                "bridge://h:1?token=x"):  # fmt: skip
        with pytest.raises(ValueError):
            BridgeTerminal.from_url(bad, token=TOKEN)


# ------------------------------------------------------------------------ IPC failures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_initialize_against_no_bridge_fails_with_an_ipc_initialize_error() -> None:
    terminal = BridgeTerminal("127.0.0.1", free_port(), token=TOKEN, connect_timeout_s=1.0)
    assert terminal.initialize() is False
    code, text = terminal.last_error()
    assert code == -10003
    assert text.startswith("IPC initialize failed, no mt5gate bridge listening at 127.0.0.1:")
    assert text.endswith("(connection refused)")
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC


def test_initialize_with_a_wrong_token_says_so(bridge: ServedBridge) -> None:
    terminal = bridge.client(token="not the token")
    assert terminal.initialize() is False
    assert terminal.last_error()[0] == -10003
    assert terminal.last_error()[1] == (
        f"IPC initialize failed, the mt5gate bridge at 127.0.0.1:{bridge.port} refused the token"
    )
    assert "not the token" not in terminal.last_error()[1]


def test_a_killed_bridge_gives_recv_failed_then_no_ipc(counting: CountingTerminal) -> None:
    served = ServedBridge(counting)
    terminal = served.client()
    assert terminal.initialize(**HEDGING) is True
    served.close()
    assert terminal.symbol_info_tick("EURUSD") is None
    assert terminal.last_error() in ((-10002, "IPC recv failed"), (-10001, "IPC send failed"))
    assert terminal.symbol_info_tick("EURUSD") is None
    assert terminal.last_error() == NO_IPC
    assert terminal.initialize() is False
    assert terminal.last_error()[0] == -10003


def test_initialize_reconnects_after_the_bridge_restarts(counting: CountingTerminal) -> None:
    served = ServedBridge(counting)
    port = served.port
    terminal = served.client()
    assert terminal.initialize(**HEDGING) is True
    served.close()
    again = ServedBridge(counting, port=port)
    try:
        # still holding the dead connection: initialize() notices and connects again
        assert terminal.initialize(**HEDGING) is True
        assert terminal.symbol_info_tick("EURUSD") is not None
    finally:
        terminal.close()
        again.close()


def test_a_hung_terminal_gives_ipc_timeout_at_the_client_deadline(
    bridge: ServedBridge, counting: CountingTerminal
) -> None:
    terminal = bridge.client(call_timeout_s=0.3)
    assert terminal.initialize(**HEDGING) is True
    counting.hang = "symbol_info_tick"
    start = time.monotonic()
    assert terminal.symbol_info_tick("EURUSD") is None
    assert time.monotonic() - start < 2.0
    assert terminal.last_error() == (-10005, "IPC timeout")
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    # the bridge's worker is still inside the hung call: a new connection is told it is busy
    assert terminal.initialize() is False
    assert terminal.last_error() == (-10005, "IPC timeout")
    counting.release.set()
    deadline = time.monotonic() + 5
    while terminal.initialize() is not True:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_server_side_deadline_gives_ipc_timeout_and_keeps_the_connection(
    counting: CountingTerminal,
) -> None:
    served = ServedBridge(counting, call_timeout_s=0.2)
    try:
        terminal = served.client(call_timeout_s=5.0)
        assert terminal.initialize(**HEDGING) is True
        counting.hang = "order_send"
        assert terminal.order_send({"action": 1}) is None
        assert terminal.last_error() == (-10005, "IPC timeout")
        assert terminal.connected
    finally:
        counting.release.set()
        served.close()


def test_a_reply_too_large_for_the_bridge_is_out_of_memory(counting: CountingTerminal) -> None:
    served = ServedBridge(counting, max_reply_frame=1000)
    try:
        terminal = served.client()
        assert terminal.initialize() is True
        assert terminal.symbols_get() is None
        assert terminal.last_error() == (-3, "Terminal: Out of memory")
    finally:
        served.close()


class Exploding:
    """A terminal with a bug in one function."""

    def __init__(self) -> None:
        self.sim = new_sim()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    def version(self) -> Any:
        raise RuntimeError("terminal bug")


def test_a_terminal_bug_is_an_ipc_call_failure() -> None:
    served = ServedBridge(Exploding())
    try:
        terminal = served.client()
        assert terminal.initialize() is True
        assert terminal.version() is None
        assert terminal.last_error() == (-10000, "IPC call failed")
    finally:
        served.close()


# ---------------------------------------------------------------- a misbehaving server


class ScriptedServer:
    """A one-connection TCP server that answers the hello and each request from a script."""

    def __init__(self, welcome: bytes, reply: Callable[[p.Request], bytes | None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.welcome, self.reply = welcome, reply
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            reader = conn.makefile("rb")
            self.read(reader)
            conn.sendall(p.encode_frame(self.welcome))
            while True:
                body = self.read(reader)
                if body is None:
                    return
                answer = self.reply(p.decode_request(body))
                if answer is None:
                    return
                conn.sendall(answer)

    @staticmethod
    def read(reader: Any) -> bytes | None:
        header = reader.read(4)
        if len(header) < 4:
            return None
        return bytes(reader.read(int.from_bytes(header, "big")))

    def close(self) -> None:
        self.listener.close()


WELCOME = p.encode_mapping({"ok": True, "protocol": p.PROTOCOL_NAME, "version": 1})


@pytest.fixture
def scripted() -> Iterator[Callable[..., BridgeTerminal]]:
    opened: list[Any] = []

    def make(reply: Callable[[p.Request], bytes | None], welcome: bytes = WELCOME) -> Any:
        server = ScriptedServer(welcome, reply)
        terminal = BridgeTerminal("127.0.0.1", server.port, token=TOKEN, call_timeout_s=2.0,
                                  connect_timeout_s=2.0)  # fmt: skip
        opened.extend((server, terminal))
        return terminal

    yield make
    for thing in opened:
        thing.close()


def ok(request: p.Request) -> bytes:
    return p.encode_frame(p.encode_reply(request.request_id, True, (1, "Success")))


def test_a_server_speaking_another_version_is_refused(scripted: Any) -> None:
    welcome = p.encode_mapping({"ok": True, "protocol": p.PROTOCOL_NAME, "version": 7})
    terminal = scripted(ok, welcome)
    assert terminal.initialize() is False
    assert "client speaks bridge protocol 1, server speaks 7" in terminal.last_error()[1]


def test_a_server_that_does_not_answer_the_hello(scripted: Any) -> None:
    terminal = scripted(ok, b"\xc1")
    assert terminal.initialize() is False
    assert terminal.last_error()[0] == -10003


@pytest.mark.parametrize(
    "reply",
    [
        lambda r: p.encode_frame(p.encode_reply(r.request_id + 1, True, (1, "Success"))),
        lambda r: p.encode_frame(b"\xc1"),
        lambda r: b"\xff\xff\xff\xff",
        lambda r: None,
    ],
    ids=["wrong-id", "garbage", "4GiB-frame", "hang-up"],
)
def test_broken_replies_are_recv_failures(scripted: Any, reply: Any) -> None:
    first = [True]

    def script(request: p.Request) -> bytes | None:
        if first.pop() if first else False:
            return ok(request)
        return reply(request)  # type: ignore[no-any-return]

    terminal = scripted(script)
    assert terminal.initialize() is True
    assert terminal.account_info() is None
    assert terminal.last_error() == (-10002, "IPC recv failed")
    assert not terminal.connected


def test_a_denied_call_is_a_protocol_error_not_a_silent_none(scripted: Any) -> None:
    def script(request: p.Request) -> bytes:
        if request.function == "initialize":
            return ok(request)
        return p.encode_frame(p.encode_error(request.request_id, "denied", "no"))

    terminal = scripted(script)
    assert terminal.initialize() is True
    with pytest.raises(p.ProtocolError, match="denied"):
        terminal.version()


def test_a_socket_that_cannot_send_is_a_send_failure(client: BridgeTerminal) -> None:
    assert client.initialize() is True
    assert client._connection is not None
    client._connection.sock.shutdown(socket.SHUT_WR)
    assert client.version() is None
    assert client.last_error() == (-10001, "IPC send failed")


# ------------------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_end_to_end_with_a_self_signed_certificate(
    certificate: tuple[Path, Path], counting: CountingTerminal
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    served = ServedBridge(counting, ssl_context=server_context)
    try:
        trusted = served.client(ssl_context=ssl.create_default_context(cafile=str(cert)))
        assert "tls" in repr(trusted)
        assert trusted.initialize(**HEDGING) is True
        assert trusted.symbol_info_tick("EURUSD") is not None
        trusted.close()
        plain = served.client(connect_timeout_s=1.0)
        assert plain.initialize() is False
        assert plain.last_error()[0] == -10003
        untrusting = served.client(ssl_context=ssl.create_default_context())
        assert untrusting.initialize() is False
        assert "CERTIFICATE_VERIFY_FAILED" in untrusting.last_error()[1]
    finally:
        served.close()


def test_numpy_arguments_travel_as_numbers(client: BridgeTerminal) -> None:
    client.initialize(**HEDGING)
    margin = client.order_calc_margin(0, "EURUSD", np.float64(0.1), np.float64(1.1))
    assert isinstance(margin, float)


def test_the_protocol_rejects_records_as_arguments() -> None:
    body = msgspec.msgpack.encode([1, "f", [msgspec.msgpack.Ext(p.EXT_ARRAY, b"\x00")], {}])
    with pytest.raises(p.MalformedMessageError):
        p.decode_request(body)
