"""The fleet on this machine: 3 ``mt5gate serve`` replicas, 100 simulated accounts behind
bridges, one PostgreSQL store; orders over HTTP spread across the replicas, and fail-over.

``python -m bench.fleet_bench`` (also part of ``python -m bench``) measures:

* **orders**: ``POST /v1/accounts/{a}/orders`` (market, 0.01 lot, an idempotency key each)
  from concurrent clients, each order to a random account through a random replica. An order
  sent to the account's owner is *direct*; one sent elsewhere is *forwarded* (the answer's
  ``X-Mt5gate-Served-By`` tells). Orders per second, p50 and p99 of each kind, and the ratio of
  the forwarded p99 to the direct p99 (the issue's aim: at most 2x).
* **memory**: resident set size of each replica, and per account it runs.
* **stream delivery across replicas**: 200 WebSocket clients on the replicas that do not own
  one account subscribe to its trade events (the bus: NATS, a JetStream stream) while orders go
  to its owner; each delivery's latency is the time it is read minus the time the owner
  journaled the event (one machine, one clock): p50 and p99.
* **fail-over**: SIGKILL the owner of a random account, then send that account an order
  through another replica every 50 ms until one is accepted: the time from the kill to the
  first ``201``, p50 and p99 over the kills (default settings: heartbeat 1 s, a replica
  silent for 5 s is gone). The killed replica is started again and the fleet rebalanced
  before the next kill.

Terminals: ``bench._terminal_farm`` processes, 25 simulators each, on a weekday virtual clock.
The PostgreSQL server is the tests' throw-away one (``tests/servers/postgres.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.fleet.processes import Replica
from tests.service.conftest import free_port

from bench.report import Row
from mt5gate.service.auth import hash_api_key

__all__ = ["all_rows", "main"]

KEY = "bench-fleet-key-" + "0" * 16
FIRST_LOGIN = 7001
PER_FARM = 25
REPLICAS = ("r1", "r2", "r3")


def _rss_mb(replica: Replica) -> float:
    """Resident set size of a replica's process, MB."""
    assert replica.process is not None
    status = Path(f"/proc/{replica.process.pid}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kb / 1024


@dataclass
class _Fleet:
    workdir: Path
    accounts: int
    farms: list[subprocess.Popen[bytes]] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)

    def start_farms(self, token: str) -> None:
        for first in range(FIRST_LOGIN, FIRST_LOGIN + self.accounts, PER_FARM):
            count = min(PER_FARM, FIRST_LOGIN + self.accounts - first)
            farm = subprocess.Popen(
                [sys.executable, "-m", "bench._terminal_farm", str(first), str(count), token],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.farms.append(farm)
            assert farm.stdout is not None
            line = farm.stdout.readline()
            self.ports.update({int(k): v for k, v in json.loads(line).items()})

    def write_config(self, store_url: str, token_file: Path, bus_url: str) -> Path:
        accounts = "".join(
            f'[[accounts]]\nname = "a{login}"\nterminal = "bridge://127.0.0.1:{port}"\n'
            f'login = {login}\nserver = "MetaQuotes-Demo"\npassword_env = "BENCH_PASSWORD"\n'
            f'token_file = "{token_file}"\n\n'
            for login, port in sorted(self.ports.items())
        )
        config = self.workdir / "fleet.toml"
        config.write_text(
            '[store]\nurl_env = "BENCH_STORE_URL"\npg_schema = "bench_fleet"\n\n[fleet]\n\n'
            f'[bus]\nurl = "{bus_url}"\n\n'
            f'[[api_keys]]\nname = "bench"\nhash = "{hash_api_key(KEY)}"\n'
            f'scopes = ["read", "trade", "admin"]\nrate_per_minute = 10000000\n\n{accounts}',
            encoding="utf-8",
        )
        env = {**os.environ, "BENCH_STORE_URL": store_url, "BENCH_PASSWORD": "bench",
               "MT5GATE_LOG_LEVEL": "WARNING", "MT5GATE_ACCESS_LOG": "false"}  # fmt: skip
        env.pop("MT5GATE_CONFIG", None)
        for name in REPLICAS:
            data = self.workdir / name
            data.mkdir(mode=0o700, exist_ok=True)
            self.replicas.append(Replica(
                name, free_port(), config, self.workdir / f"{name}.log",
                {**env, "MT5GATE_REPLICA": name, "MT5GATE_DATA_DIR": str(data)},
            ))  # fmt: skip
        return config

    def stop(self) -> None:
        for replica in self.replicas:
            with contextlib.suppress(Exception):
                replica.stop()
        for farm in self.farms:
            farm.kill()
            farm.wait(10)


async def _owners(fleet: _Fleet, client: httpx.AsyncClient) -> dict[int, str]:
    """Login -> serving replica, for every account that answers (through replica 1... n)."""
    live = [r for r in fleet.replicas if r.process is not None and r.process.poll() is None]
    found: dict[int, str] = {}

    async def ask(login: int) -> None:
        replica = random.choice(live)
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.get(f"{replica.base}/v1/accounts/a{login}/terminal")
            if answer.status_code == 200:
                found[login] = answer.headers.get("x-mt5gate-served-by", "")

    await asyncio.gather(*(ask(login) for login in fleet.ports))
    return found


async def _settled(
    fleet: _Fleet, client: httpx.AsyncClient, timeout_s: float = 180.0
) -> dict[int, str]:
    """Until every account answers and the live replicas' loads are one apart at most."""
    deadline = time.monotonic() + timeout_s
    owners: dict[int, str] = {}
    while time.monotonic() < deadline:
        owners = await _owners(fleet, client)
        live = {
            r.name for r in fleet.replicas if r.process is not None and r.process.poll() is None
        }
        loads = [list(owners.values()).count(name) for name in live]
        if (
            len(owners) == len(fleet.ports)
            and set(owners.values()) <= live
            and max(loads) - min(loads) <= 1
        ):
            return owners
        await asyncio.sleep(1.0)
    raise RuntimeError(
        f"the fleet did not settle in {timeout_s} s ({len(owners)} accounts answered)"
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _orders(
    fleet: _Fleet, client: httpx.AsyncClient, seconds: float, workers: int
) -> dict[str, Any]:
    direct: list[float] = []
    forwarded: list[float] = []
    errors = 0
    logins = sorted(fleet.ports)
    stop_at = time.monotonic() + seconds

    async def worker(number: int) -> None:
        nonlocal errors
        rng = random.Random(number)
        while time.monotonic() < stop_at:
            login, replica = rng.choice(logins), rng.choice(fleet.replicas)
            body = {"symbol": "EURUSD", "side": rng.choice(("buy", "sell")), "volume": 0.01}
            keyed = {"Idempotency-Key": secrets.token_hex(8)}
            started = time.perf_counter()
            answer = await client.post(f"{replica.base}/v1/accounts/a{login}/orders", json=body,
                                       headers=keyed)  # fmt: skip
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 201:
                errors += 1
                continue
            served = answer.headers.get("x-mt5gate-served-by")
            (direct if served == replica.name else forwarded).append(elapsed)

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    wall = time.monotonic() - started
    return {"rate": (len(direct) + len(forwarded)) / wall, "direct": direct,
            "forwarded": forwarded, "errors": errors}  # fmt: skip


async def _failovers(fleet: _Fleet, client: httpx.AsyncClient, kills: int) -> list[float]:
    times: list[float] = []
    rng = random.Random(7)
    for _ in range(kills):
        owners = await _settled(fleet, client)
        login = rng.choice(sorted(owners))
        victim = next(r for r in fleet.replicas if r.name == owners[login])
        others = [r for r in fleet.replicas if r is not victim]
        assert victim.process is not None
        victim.process.kill()
        killed = time.monotonic()
        victim.process.wait(10)
        while True:
            replica = rng.choice(others)
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.post(
                    f"{replica.base}/v1/accounts/a{login}/orders",
                    json={"symbol": "EURUSD", "side": "buy", "volume": 0.01},
                    headers={"Idempotency-Key": secrets.token_hex(8)},
                )
                if answer.status_code == 201:
                    break
            if time.monotonic() - killed > 120:
                raise RuntimeError(f"account {login} not taken over within 120 s")
            await asyncio.sleep(0.05)
        times.append(time.monotonic() - killed)
        victim.start()
    return times


def measure(
    accounts: int, seconds: float, workers: int, kills: int, readers: int = 200
) -> dict[str, Any]:
    """Start the fleet, measure, stop everything; the raw figures."""
    from tests.servers.nats import NatsServer
    from tests.servers.postgres import running_server

    with tempfile.TemporaryDirectory(prefix="mt5gate-fleet-bench-") as tmp, running_server() as pg:
        workdir = Path(tmp)
        nats = NatsServer(workdir / "nats")
        token = secrets.token_urlsafe(24)
        token_file = workdir / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        fleet = _Fleet(workdir, accounts)
        try:
            nats.start()
            fleet.start_farms(token)
            fleet.write_config(pg.url, token_file, nats.url)
            for replica in fleet.replicas:
                replica.start()
            return asyncio.run(_run(fleet, seconds, workers, kills, readers))
        finally:
            fleet.stop()
            nats.stop()


async def _stream_delivery(
    fleet: _Fleet, client: httpx.AsyncClient, owners: dict[int, str], readers: int,
    seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """``readers`` WebSocket clients on the non-owners of one account, reading its trade events
    while orders go to its owner (about 20 a second); the latencies of every delivery (ms)."""
    from websockets.asyncio.client import connect

    login = min(owners)
    owner = next(r for r in fleet.replicas if r.name == owners[login])
    others = [r for r in fleet.replicas if r is not owner]
    latencies: list[float] = []
    subscribed = 0
    done = asyncio.Event()

    async def read(number: int) -> None:
        nonlocal subscribed
        replica = others[number % len(others)]
        url = replica.base.replace("http://", "ws://") + "/v1/stream"
        async with connect(url, additional_headers={"X-API-Key": KEY}, max_queue=None) as ws:
            await ws.send(json.dumps({"op": "subscribe", "account": f"a{login}", "trades": True}))
            while not done.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message["type"] == "subscribed":
                    subscribed += 1
                elif message["type"] == "trade":
                    latencies.append(time.time() * 1000 - message["data"]["utc_ms"])

    tasks = [asyncio.create_task(read(n)) for n in range(readers)]
    while subscribed < readers and not any(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the readers' consumers are in place
    stop_at = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < stop_at:
        await client.post(f"{owner.base}/v1/accounts/a{login}/orders",
                          json={"symbol": "EURUSD", "side": "buy", "volume": 0.01},
                          headers={"Idempotency-Key": secrets.token_hex(8)})  # fmt: skip
        sent += 1
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # the last events reach everyone
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"latencies": latencies, "readers": readers, "orders": sent}


async def _run(
    fleet: _Fleet, seconds: float, workers: int, kills: int, readers: int = 200
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    async with httpx.AsyncClient(headers={"X-API-Key": KEY}, timeout=60, limits=limits,
                                 trust_env=False) as client:  # fmt: skip
        owners = await _settled(fleet, client)
        await _orders(fleet, client, min(seconds, 3.0), workers)  # warm up
        found = await _orders(fleet, client, seconds, workers)
        rss = {r.name: (_rss_mb(r), list(owners.values()).count(r.name)) for r in fleet.replicas}
        found["rss"] = rss
        found["stream"] = await _stream_delivery(fleet, client, owners, readers, seconds)
        found["failovers"] = await _failovers(fleet, client, kills)
        return found


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """The fleet's figures (one run: a fleet takes a minute to start)."""
    del repeat
    found = measure(
        30 if quick else 100, 5.0 if quick else 20.0, 16, 3 if quick else 20, 50 if quick else 200
    )
    return rows_of(found, 30 if quick else 100)


def rows_of(found: dict[str, Any], accounts: int) -> list[Row]:
    direct, forwarded = found["direct"], found["forwarded"]
    d99, f99 = _percentile(direct, 0.99), _percentile(forwarded, 0.99)
    name = f"{len(REPLICAS)} replicas, {accounts} accounts, 16 clients"
    rows = [
        Row("fleet", f"place_order over HTTP, {name}", found["rate"], "orders/s"),
        Row("fleet", "order latency p50, sent to the owner", _percentile(direct, 0.5), "ms"),
        Row("fleet", "order latency p99, sent to the owner", d99, "ms"),
        Row("fleet", "order latency p50, forwarded by a non-owner",
            _percentile(forwarded, 0.5), "ms", "owner p50",
            _percentile(forwarded, 0.5) / _percentile(direct, 0.5)),
        Row("fleet", "order latency p99, forwarded by a non-owner", f99, "ms", "owner p99",
            f99 / d99),
    ]  # fmt: skip
    for replica, (mb, owned) in sorted(found["rss"].items()):
        rows.append(Row("fleet", f"RSS of replica {replica} ({owned} accounts)", mb, "MB"))
        if owned:
            rows.append(Row("fleet", f"RSS of replica {replica} per account", mb / owned, "MB"))
    stream = found["stream"]
    lat = stream["latencies"]
    rows += [
        Row("fleet", f"trade events delivered across replicas ({stream['readers']} readers, "
            f"{stream['orders']} orders)", len(lat), "messages"),
        Row("fleet", "trade event delivery across replicas p50", _percentile(lat, 0.5), "ms"),
        Row("fleet", "trade event delivery across replicas p99", _percentile(lat, 0.99), "ms"),
    ]  # fmt: skip
    times = found["failovers"]
    rows += [
        Row("fleet", f"fail-over, SIGKILL to first order accepted, p50 of {len(times)}",
            statistics.median(times), "s"),
        Row("fleet", f"fail-over, SIGKILL to first order accepted, p99 of {len(times)}",
            _percentile(times, 0.99), "s"),
    ]  # fmt: skip
    if found["errors"]:
        print(f"fleet bench: {found['errors']} orders not 201", file=sys.stderr)
    return rows


def main() -> int:
    from bench.report import render

    quick = "--quick" in sys.argv
    print(render(all_rows(1, quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
