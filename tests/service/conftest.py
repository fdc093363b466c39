"""A real ``mt5gate serve`` process on loopback, and real HTTP clients for it.

The service runs as a child process (``python -m mt5gate.cli serve``) on a free port of
127.0.0.1 with its own data directory; the tests talk to it with httpx over TCP. Nothing in the
service is mocked: its accounts are simulated terminals, as on a newcomer's machine, except that
their clocks start on a weekday morning (``OPEN_MARKET``) so that the tests trade forex on any day.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import (
    AccountSettings,
    ApiKeySettings,
    BusSettings,
    default_settings,
)
from mt5gate.service.gateway import Gateway
from mt5gate.service.stream import StreamOptions
from mt5gate.sim import RealClock, SimTerminal
from mt5gate.sim.clock import server_ms_of

#: Server time at which the tests' simulated clocks start (a Tuesday morning: the forex market
#: is open), running in real time from there: what the tests trade is open on any day and hour.
OPEN_MARKET = "2026-01-06T10:00"


def open_market_terminal(_: AccountSettings | None = None) -> SimTerminal:
    """A real-time simulator pinned to start at ``OPEN_MARKET``, for
    ``Gateway.build(terminal_for=...)``: the in-process service trades forex on any day."""
    start = server_ms_of(datetime.fromisoformat(OPEN_MARKET))
    return SimTerminal(clock=RealClock(start_ms=start))


async def until_ready(gateway: Gateway) -> None:
    """Wait (up to 10 s) until the started ``gateway``'s demo account is ready for requests."""
    for _ in range(1000):
        if gateway.account("demo").ready:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the gateway's demo account did not get ready")


def free_port() -> int:
    """A port nobody listens on right now (the service binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def terminate(process: subprocess.Popen[str]) -> int:
    """SIGTERM, wait (SIGKILL after 30 s), and return the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    return process.returncode


@dataclass
class Served:
    """A running service: its address, its process, its data directory, its key and the file
    its output goes to (a file, not a pipe: a pipe nobody reads fills up, and the server's
    next log line then blocks its event loop)."""

    process: subprocess.Popen[str]
    base: str
    data_dir: Path
    key: str
    log: Path

    def client(self, key: str | None = None, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client presenting ``key`` (default: the service's key; ``""``: none)."""
        sent = {} if key == "" else {"X-API-Key": key or self.key}
        return httpx.Client(base_url=self.base, headers={**sent, **(headers or {})}, timeout=15.0)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait, and return the exit code and what it wrote (stdout and stderr)."""
        return terminate(self.process), self.output()

    def output(self) -> str:
        """Everything the service has written so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_service(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, wait_ready: bool = True,
    relative_data_dir: bool = False, sim_start: str | None = OPEN_MARKET,
) -> Served:  # fmt: skip
    """Start ``mt5gate serve`` and wait until it answers ``/livez`` (and, by default, until
    every account is ready). With ``relative_data_dir`` it runs in ``data_dir``'s parent with
    the default (relative) data directory, as ``make serve`` does in a checkout. Simulated
    accounts start their clocks at ``sim_start`` (``MT5GATE_SIM_START``; None: now)."""
    port = free_port()
    pinned = {} if sim_start is None else {"MT5GATE_SIM_START": sim_start}
    environment = {**os.environ, **pinned, **(env or {})}
    environment.pop("MT5GATE_CONFIG", None)
    if relative_data_dir:
        data_dir = data_dir / ".mt5gate"
        environment.pop("MT5GATE_DATA_DIR", None)
    else:
        environment["MT5GATE_DATA_DIR"] = str(data_dir)
    folder = data_dir.parent if relative_data_dir else data_dir
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"serve-{port}.log"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "mt5gate.cli", "serve", "--port", str(port), *args],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, text=True,
            env=environment, cwd=data_dir.parent if relative_data_dir else None,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    served = Served(process, base, data_dir, "", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mt5gate serve exited {process.returncode}: {served.output()}")
        try:
            if httpx.get(base + "/livez", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        served.stop()
        raise AssertionError("mt5gate serve did not answer /livez within 60 s")
    key_file = data_dir / "api-key"
    served.key = key_file.read_text().strip() if key_file.exists() else ""
    while wait_ready and time.monotonic() < deadline:
        if httpx.get(base + "/readyz", timeout=2.0).status_code == 200:
            break
        time.sleep(0.2)
    return served


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One default service (the simulated demo account) shared by a module's tests."""
    served = start_service(tmp_path_factory.mktemp("serve"))
    yield served
    served.stop()


class InProcess:
    """The service's app served by uvicorn on a thread of this process (so coverage sees it),
    on the default settings (the simulated demo account, its clock pinned to ``OPEN_MARKET``)
    with one key of every scope."""

    def __init__(
        self, data_dir: Path, key: str, *, stream: StreamOptions | None = None, grace_s: float = 20,
        bus: BusSettings | None = None,
    ) -> None:  # fmt: skip
        keys = (ApiKeySettings(name="all", hash=hash_api_key(key),
                               scopes=frozenset({"read", "trade", "admin"})),)  # fmt: skip
        self.settings = default_settings().model_copy(
            update={"data_dir": data_dir, "api_keys": keys, "bus": bus}
        )
        self.gateway = Gateway.build(self.settings, os.environ, terminal_for=open_market_terminal)
        self.port = free_port()
        config = uvicorn.Config(create_app(self.gateway, stream), host="127.0.0.1",
                                port=self.port, log_level="warning",
                                timeout_graceful_shutdown=grace_s)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not (self.server.started and self.gateway.account("demo").ready):
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        """What SIGTERM does to uvicorn: stop accepting, wait for requests, run the lifespan."""
        self.server.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive()
