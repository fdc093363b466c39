"""A real ``mt5gate serve`` process on loopback, and real HTTP clients for it.

The service runs as a child process (``python -m mt5gate.cli serve``) on a free port of
127.0.0.1 with its own data directory; the tests talk to it with httpx over TCP. Nothing in the
service is mocked: its accounts are simulated terminals, as on a newcomer's machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A port nobody listens on right now (the service binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """A running service: its address, its process, its data directory and its key."""

    process: subprocess.Popen[str]
    base: str
    data_dir: Path
    key: str

    def client(self, key: str | None = None, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client presenting ``key`` (default: the service's key; ``""``: none)."""
        sent = {} if key == "" else {"X-API-Key": key or self.key}
        return httpx.Client(base_url=self.base, headers={**sent, **(headers or {})}, timeout=15.0)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait, and return the exit code and what it wrote on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
        return self.process.returncode, err


def start_service(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, wait_ready: bool = True,
    relative_data_dir: bool = False,
) -> Served:  # fmt: skip
    """Start ``mt5gate serve`` and wait until it answers ``/livez`` (and, by default, until
    every account is ready). With ``relative_data_dir`` it runs in ``data_dir``'s parent with
    the default (relative) data directory, as ``make serve`` does in a checkout."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    environment.pop("MT5GATE_CONFIG", None)
    if relative_data_dir:
        data_dir = data_dir / ".mt5gate"
        environment.pop("MT5GATE_DATA_DIR", None)
    else:
        environment["MT5GATE_DATA_DIR"] = str(data_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "mt5gate.cli", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        cwd=data_dir.parent if relative_data_dir else None,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    served = Served(process, base, data_dir, "")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"mt5gate serve exited {process.returncode}: {err}")
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
