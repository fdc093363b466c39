"""A fleet on loopback, from real processes: simulators behind ``mt5gate bridge`` (one terminal
per account, as MT5 has it), and ``mt5gate serve`` replicas sharing a store.

Every process is started here and ended here (SIGCONT, SIGTERM, then SIGKILL); none outlives
its test. The simulators' clocks start on a Tuesday morning, so the market is open on any day.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from mt5gate.service.auth import hash_api_key
from tests.service.conftest import OPEN_MARKET, free_port

__all__ = ["KEY", "LOGINS", "Bridge", "Fleet", "Replica"]

#: The API key every replica accepts (read, trade, admin).
KEY: Final = "fleet-test-key-0123456789abcdef"
#: The simulator's demo accounts: every bridge's simulator knows all three.
LOGINS: Final = (5001, 5002, 5003)
_LISTENING: Final = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout_s)
    if process.poll() is None:
        process.kill()
        process.wait(timeout_s)


@dataclass
class Bridge:
    """``mt5gate bridge --terminal sim`` on a free port: one account's terminal."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(cls, workdir: Path, name: str, token_file: Path) -> Bridge:
        log = workdir / f"bridge-{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "mt5gate.cli", "bridge", "--terminal", "sim", "--port",
                 "0", "--token-file", str(token_file), "--sim-start", OPEN_MARKET],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = _LISTENING.search(log.read_text(errors="replace"))
            if found:
                return cls(process, int(found.group(1)), log)
            if process.poll() is not None:
                break
            time.sleep(0.05)
        _stop(process)
        raise AssertionError(f"bridge {name} did not start: {log.read_text(errors='replace')}")

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class Replica:
    """``mt5gate serve`` as one replica of the fleet."""

    name: str
    port: int
    config: Path
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mt5gate.cli", "serve", "--config", str(self.config),
                 "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=timeout_s)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(15)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, 30.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def health(self) -> dict[str, object] | None:
        try:
            answer = httpx.get(self.base + "/v1/health", timeout=2.0)
        except httpx.TransportError:
            return None
        body: dict[str, object] = answer.json()
        return body


@dataclass
class Fleet:
    """Bridges (one per account) and replicas sharing ``store_url``."""

    workdir: Path
    store_url: str
    replicas: list[Replica] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)
    heartbeat_s: float = 0.5
    member_ttl_s: float = 2.0
    pg_schema: str = "mt5gate"

    def write_config(self, names: Sequence[str]) -> Path:
        """The fleet's one configuration (every replica reads the same file)."""
        token = self.workdir / "bridge-token"
        if not token.exists():
            descriptor = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(descriptor, b"fleet-bridge-token-0123456789abcdef\n")
            os.close(descriptor)
        self.bridges = [Bridge.start(self.workdir, str(login), token) for login in LOGINS]
        servers = {5003: "mt5gate-Sim-EU"}
        accounts = "".join(
            f'[[accounts]]\nname = "acct{login}"\nterminal = "bridge://127.0.0.1:{bridge.port}"\n'
            f'login = {login}\nserver = "{servers.get(login, "MetaQuotes-Demo")}"\n'
            f'password_env = "SIM_PASSWORD_{login}"\ntoken_file = "{token}"\n\n'
            for login, bridge in zip(LOGINS, self.bridges, strict=True)
        )  # fmt: skip
        hashed = hash_api_key(KEY)
        config = self.workdir / "fleet.toml"
        config.write_text(
            f'[store]\nurl_env = "FLEET_STORE_URL"\npg_schema = "{self.pg_schema}"\n\n'
            f"[fleet]\nheartbeat_s = {self.heartbeat_s}\nmember_ttl_s = {self.member_ttl_s}\n\n"
            f'[[api_keys]]\nname = "all"\nhash = "{hashed}"\nscopes = ["read", "trade", "admin"]\n'
            f"rate_per_minute = 100000\n\n{accounts}",
            encoding="utf-8",
        )  # fmt: skip
        env = {**os.environ, "FLEET_STORE_URL": self.store_url, "PYTHONUNBUFFERED": "1",
               **{f"SIM_PASSWORD_{login}": f"sim-pass-{login}" for login in LOGINS}}  # fmt: skip
        env.pop("MT5GATE_CONFIG", None)
        for name in names:
            data = self.workdir / name
            data.mkdir(mode=0o700, exist_ok=True)
            self.replicas.append(Replica(
                name, free_port(), config, self.workdir / f"serve-{name}.log",
                {**env, "MT5GATE_REPLICA": name, "MT5GATE_DATA_DIR": str(data)},
            ))  # fmt: skip
        return config

    def start(self, names: Sequence[str]) -> None:
        self.write_config(names)
        for replica in self.replicas:
            replica.start()

    def by_name(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def stop(self) -> None:
        for process in [*self.replicas, *self.bridges]:
            with contextlib.suppress(Exception):
                process.stop()

    def owners(self, via: Replica | None = None) -> dict[str, str]:
        """Account name -> the replica serving it, as the answers' ``X-Mt5gate-Served-By``
        says (through ``via``, else the first live replica)."""
        replica = via or next(r for r in self.replicas if r.alive())
        owners = {}
        with replica.client(5.0) as client:
            for login in LOGINS:
                answer = client.get(f"/v1/accounts/acct{login}")
                if answer.status_code == 200:
                    owners[f"acct{login}"] = answer.headers.get("x-mt5gate-served-by", "")
        return owners

    def wait_owned(self, timeout_s: float = 60.0, *, exclude: str = "") -> dict[str, str]:
        """Until every account answers through a live replica (other than ``exclude``)."""
        deadline = time.monotonic() + timeout_s
        owners: dict[str, str] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError, StopIteration):
                live = next(r for r in self.replicas if r.alive() and r.name != exclude)
                owners = self.owners(live)
                if len(owners) == len(LOGINS) and exclude not in owners.values():
                    return owners
            time.sleep(0.2)
        logs = "\n".join(f"--- {r.name}\n{r.output()[-3000:]}" for r in self.replicas)
        raise AssertionError(f"not every account owned within {timeout_s} s: {owners}\n{logs}")


@contextlib.contextmanager
def running_fleet(
    workdir: Path, store_url: str, names: Sequence[str], pg_schema: str = "mt5gate"
) -> Iterator[Fleet]:
    """A started fleet, stopped at the end whatever happens."""
    fleet = Fleet(workdir, store_url, pg_schema=pg_schema)
    try:
        fleet.start(names)
        yield fleet
    finally:
        fleet.stop()
