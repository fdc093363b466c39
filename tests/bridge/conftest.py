"""Bridge test harness: a real BridgeServer on 127.0.0.1 (port 0), served by an event loop on a
test thread, real sockets for clients, and a terminal wrapper that counts and can hang calls.

No mocks: the terminal behind the bridge is a real SimTerminal on a virtual clock.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mt5gate.bridge.server import BridgeServer
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.terminal.bridge import BridgeTerminal
from mt5gate.terminal.wire import HEADER, encode_frame, hello

TOKEN = "correct horse battery staple"
HEDGING = {"login": 5001, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"}
TUESDAY_10 = server_ms(2026, 1, 6, 10)

#: Clients the harness handed out in the running test, closed after it (no leaked sockets).
OPENED: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for opened in OPENED:
        opened.close()
    OPENED.clear()


class CountingTerminal:
    """A SimTerminal seen through a wrapper that counts every call and can hang one function."""

    def __init__(self, sim: SimTerminal) -> None:
        self.sim = sim
        self.calls: list[str] = []
        self.hang: str | None = None
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.sim, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if name == self.hang:
                self.release.wait(10.0)
            return target(*args, **kwargs)

        return call


def new_sim() -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))


class ServedBridge:
    """A BridgeServer running on its own event loop thread, for synchronous tests."""

    def __init__(
        self, terminal: Any, *, server_class: type[BridgeServer] = BridgeServer, **options: Any
    ) -> None:
        options.setdefault("port", 0)
        self.terminal = terminal
        self.loop = asyncio.new_event_loop()
        self.server = server_class(terminal, token=TOKEN, **options)
        self.loop.run_until_complete(self.server.start())
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-bridge-loop")
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.port

    def client(self, **options: Any) -> BridgeTerminal:
        options.setdefault("token", TOKEN)
        terminal = BridgeTerminal("127.0.0.1", self.port, **options)
        OPENED.append(terminal)
        return terminal

    def raw(self) -> RawClient:
        raw = RawClient(self.port)
        OPENED.append(raw)
        return raw

    def close(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class RawClient:
    """A bare socket speaking (or abusing) the frame format."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, body: bytes) -> None:
        self.sock.sendall(encode_frame(body))

    def recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def recv_frame(self) -> Any:
        (length,) = HEADER.unpack(self.recv_exact(4))
        return msgspec.msgpack.decode(self.recv_exact(length))

    def closed_by_peer(self) -> bool:
        """True when the server has closed its end (EOF or reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def handshake(self, token: str = TOKEN) -> Any:
        self.send_frame(hello(token))
        return self.recv_frame()

    def call(self, request: list[Any]) -> Any:
        self.send_frame(msgspec.msgpack.encode(request))
        return self.recv_frame()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def counting() -> CountingTerminal:
    return CountingTerminal(new_sim())


@pytest.fixture
def bridge(counting: CountingTerminal) -> Iterator[ServedBridge]:
    served = ServedBridge(counting, terminal_kind="sim")
    yield served
    counting.release.set()
    served.close()


@pytest.fixture
def client(bridge: ServedBridge) -> Iterator[BridgeTerminal]:
    terminal = bridge.client(call_timeout_s=5.0)
    yield terminal
    terminal.close()


# ------------------------------------------------------------------ a bridge process


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


#: ``python -m mt5gate.bridge.cli``; ``MT5GATE_BRIDGE`` is the same through ``mt5gate bridge``.
BRIDGE_MODULE = (sys.executable, "-m", "mt5gate.bridge.cli")
MT5GATE_BRIDGE = (sys.executable, "-m", "mt5gate.cli", "bridge")


#: The bridge's simulated clock starts on a Tuesday morning (forex open): the tests trade EURUSD
#: through it on any day.
OPEN_MARKET = ("--sim-start", "2026-01-06T10:00")


class BridgeProcess:
    """``python -m mt5gate.bridge.cli --terminal sim --port 0`` and the port it printed (its
    simulated clock pinned to a weekday morning unless ``clock`` says otherwise)."""

    def __init__(
        self, *args: str, command: tuple[str, ...] = BRIDGE_MODULE,
        clock: tuple[str, ...] = OPEN_MARKET,
    ) -> None:  # fmt: skip
        self.process = subprocess.Popen(
            [*command, "--terminal", "sim", "--port", "0", *clock, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("mt5gate bridge listening on 127.0.0.1:"), (
            line, self.process.stderr.read() if self.process.stderr else "",
        )  # fmt: skip
        self.port = int(line.split(":")[1].split()[0])

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=10)
        return self.process.returncode, err


@pytest.fixture
def bridge_process(token_file: Path) -> Iterator[BridgeProcess]:
    process = BridgeProcess("--token-file", str(token_file))
    yield process
    if process.process.poll() is None:
        process.stop()


@pytest.fixture
def start_bridge(token_file: Path) -> Iterator[Any]:
    """Start ``mt5gate bridge --terminal sim`` processes with extra options; all stopped after."""
    started: list[BridgeProcess] = []

    def start(*args: str, command: tuple[str, ...] = BRIDGE_MODULE) -> BridgeProcess:
        process = BridgeProcess("--token-file", str(token_file), *args, command=command)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.stop()
