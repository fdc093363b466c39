"""Stream benchmark (issue 19): ``/v1/stream`` tick delivery at a chosen tick rate, side by side
with the floor of the same setup and with the design it replaced.

For each tick rate (ticks per second offered by the simulator across 10 symbols), three servers
run one after the other, each in its own process, each streaming to the same 200 WebSocket
clients in two client processes (``bench/service_load.py ws``: one symbol per client, 20 per
symbol, the ``websockets`` client with its defaults):

- **push**: ``mt5gate serve`` (``bench/_stream_host.py``) on a simulator paced at the rate
  (``SimConfig.ticks_per_s``): the session reads every tick of its symbols in one worker job per
  round and sleeps until the simulator says the next tick is due (issue 19);
- **poll**: the same service with the simulator's ``TickWatch`` extension hidden, so the session
  polls each symbol's latest tick every 50 ms, as it polls a real terminal: the design before;
- **floor**: ``bench/stream_floor.py``, a bare broadcaster under the same uvicorn settings that
  reads the same simulator on its event loop and sends each tick straight to its subscribers:
  the latency and capacity the same clients get from the least a server can do.

Figures per run: ticks offered per second (counted afterwards through the server's own tick
history: ``GET .../ticks``, the floor's ``/ticks``), distinct ticks delivered per second and the
share of (tick, subscriber) pairs delivered, delivery latency p50/p99/max (receipt time minus the
tick's time, turned into machine time with the pinned clock's shift, which each server writes
to a file), and drops: clients the server closed or never accepted, seq gaps, and items the
session dropped for slow subscribers during the window (``mt5gate_stream_dropped_items_total``
read at its start and end). Ticks stamped in the last second of the window are left out of the
counts; a receipt more than a second late, after the window, counts as not delivered.

The simulators run on a clock pinned to a weekday morning (``SIM_START``), where every symbol
trades, so the figures do not depend on the day or the hour they are measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench.report import Row
from bench.service_bench import (
    ROOT,
    _free_port,
    _key_setting,
    _load,
    _Server,
    _sleep_until,
)
from bench.service_load import WsSpec, percentile
from mt5gate.service.auth import new_api_key

__all__ = ["SIM_START", "SYMBOLS", "all_rows", "measure"]

ACCOUNT = "demo"
CLIENTS, CLIENT_PROCESSES = 200, 2
SYMBOLS = (
    "EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD",
    "USDCAD", "EURJPY", "GBPJPY", "EURGBP", "XAUUSD",
)  # fmt: skip
#: Server time at which the simulators' clocks start: a Tuesday morning, every symbol open.
SIM_START = "2026-01-06T10:00"
RATES = (20.0, 100.0, 200.0, 2000.0)
QUICK_RATES = (200.0,)
DESIGNS = ("floor", "push", "batch", "poll")
_START_S = 60.0
_TAIL_S = 1.0  # ticks stamped in the window's last second are not counted


@dataclass(frozen=True)
class StreamRun:
    """One server streaming one tick rate to the clients."""

    design: str
    rate: float  # asked for, ticks/s across the symbols
    offered: float  # ticks/s the simulator made (counted window)
    delivered: float  # distinct ticks/s that reached at least one subscriber
    messages: float  # tick messages received per second (all clients)
    complete: float  # (tick, subscriber) pairs delivered / offered ticks x subscribers
    p50_ms: float
    p99_ms: float
    max_ms: float
    spread_p99_ms: float  # the last minus the first receipt of one tick, p99
    clients_dropped: int  # closed by the server, or never subscribed
    gaps: int  # seq gaps seen by the clients
    buffer_drops: int  # items the session dropped for slow subscribers, in the window
    server_cpu: float  # share of one core over the window
    client_cpu: float  # the client processes together, likewise

    @property
    def drops(self) -> int:
        """Every kind of loss a client could see."""
        return self.clients_dropped + self.gaps + self.buffer_drops


# ----------------------------------------------------------------------------- processes


def _spawn(design: str, rate: float, scratch: Path, key: str, tree: Path | None) -> _Server:
    """The server of ``design`` at ``rate`` (``tree``: the ``src`` its code comes from)."""
    port = _free_port()
    clock = scratch / f"{design}-{rate:g}.clock"
    module = "bench.stream_floor" if design == "floor" else "bench._stream_host"
    args = [sys.executable, "-m", module, "--port", str(port), "--rate", str(rate),
            "--symbols", ",".join(SYMBOLS), "--sim-start", SIM_START,
            "--clock-file", str(clock)]  # fmt: skip
    if design != "floor":
        args += ["--mode", "push" if design == "batch" else design]
    env = {**os.environ, "MT5GATE_DATA_DIR": str(scratch / f"{design}-{rate:g}"),
           "MT5GATE_API_KEYS": _key_setting(key), "MT5GATE_LOG_LEVEL": "WARNING",
           "MT5GATE_PUBLIC_METRICS": "true"}  # fmt: skip
    env.pop("MT5GATE_CONFIG", None)
    if tree is not None and design != "floor":
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(ROOT)])
    log = scratch / f"{design}-{rate:g}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    return _Server(design, process, port, log)


def _get(server: _Server, path: str, key: str) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers={"X-API-Key": key})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def _ready_path(design: str) -> str:
    return "/ready" if design == "floor" else f"/v1/accounts/{ACCOUNT}/symbols/EURUSD/tick"


def _wait_ready(server: _Server, key: str) -> None:
    deadline = time.monotonic() + _START_S
    while _get(server, _ready_path(server.name), key)[0] != 200:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} was not ready within {_START_S:.0f} s")
        time.sleep(0.2)


def _clients(
    server: _Server, key: str, duration_s: float
) -> tuple[list[dict[str, Any]], float, int]:
    """Run the client processes; their results, the server's CPU share in the window and the
    items the session dropped for slow subscribers in it."""
    symbols = [SYMBOLS[n % len(SYMBOLS)] for n in range(CLIENTS)]
    parts = [symbols[n::CLIENT_PROCESSES] for n in range(CLIENT_PROCESSES)]
    batch = server.name == "batch"
    with ExitStack() as stack:
        loads = [_load("ws", WsSpec(server.port, key, ACCOUNT, part, batch),
                       stdin=subprocess.PIPE) for part in parts]  # fmt: skip
        for load in loads:
            stack.callback(_end, load)
        ready = [_read_line(load) for load in loads]
        if not all(line.startswith("ready") for line in ready):
            raise RuntimeError(f"WebSocket clients did not start: {ready}")
        t0 = time.time() + 1.0  # a second to settle after the subscriptions
        t1 = t0 + duration_s
        for load in loads:
            _write_line(load, f"{t0} {t1}")
        _sleep_until(t0)
        cpu, drops = server.cpu_s(), _buffer_drops(server, key)
        _sleep_until(t1)
        cpu, drops = server.cpu_s() - cpu, _buffer_drops(server, key) - drops
        results = [json.loads(_read_line(load)) for load in loads]
    return [{**r, "t0": t0, "t1": t1} for r in results], cpu / duration_s, drops


def _read_line(load: subprocess.Popen[str]) -> str:
    assert load.stdout is not None
    return load.stdout.readline()


def _write_line(load: subprocess.Popen[str], line: str) -> None:
    assert load.stdin is not None
    load.stdin.write(line + "\n")
    load.stdin.close()


def _end(load: subprocess.Popen[str]) -> None:
    try:
        load.wait(timeout=60)
    except subprocess.TimeoutExpired:
        load.kill()
        load.wait()


# ------------------------------------------------------------------------------ counting


def _offered(server: _Server, key: str, from_ms: int, to_ms: int) -> int:
    """Ticks the server's simulator made in ``[from_ms, to_ms)`` (server time)."""
    if server.name == "floor":
        status, body = _get(server, f"/ticks?from_ms={from_ms}&to_ms={to_ms}", key)
        if status != 200:
            raise RuntimeError(f"floor /ticks answered {status}")
        return sum(json.loads(body).values())
    return sum(_offered_symbol(server, key, symbol, from_ms, to_ms) for symbol in SYMBOLS)


def _offered_symbol(server: _Server, key: str, symbol: str, from_ms: int, to_ms: int) -> int:
    """A symbol's ticks in the window, through ``GET .../ticks`` (10,000 at a time)."""
    found, start_s = set(), from_ms // 1000
    while True:
        path = (f"/v1/accounts/{ACCOUNT}/symbols/{symbol}/ticks?from={start_s}"
                f"&to={to_ms // 1000 + 1}&count=10000")  # fmt: skip
        status, body = _get(server, path, key)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        rows = json.loads(body)
        found |= {(r["time_msc"], r["bid"], r["ask"]) for r in rows
                  if from_ms <= r["time_msc"] < to_ms}  # fmt: skip
        if len(rows) < 10_000:
            return len(found)
        start_s = rows[-1]["time_msc"] // 1000  # the same second again: the set removes repeats


def _buffer_drops(server: _Server, key: str) -> int:
    """``mt5gate_stream_dropped_items_total`` of the ticks streams (0 for the floor)."""
    if server.name == "floor":
        return 0
    status, body = _get(server, "/metrics", key)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("mt5gate_stream_dropped_items_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _run(
    design: str, rate: float, duration_s: float, scratch: Path, tree: Path | None
) -> StreamRun:
    key = new_api_key()
    server = _spawn(design, rate, scratch, key, tree)
    try:
        _wait_ready(server, key)
        clock = json.loads((scratch / f"{design}-{rate:g}.clock").read_text())
        results, cpu, drops = _clients(server, key, duration_s)
        offset = clock["utc_offset_s"] * 1000 + clock["shift_ms"]  # tick time - machine time
        t0, t1 = results[0]["t0"], results[0]["t1"]
        lo, hi = round(t0 * 1000), round((t1 - _TAIL_S) * 1000)  # machine ms
        offered = _offered(server, key, lo + offset, hi + offset)
    finally:
        server.stop()
    return _figures(design, rate, results, offset, (lo, hi), offered, drops, cpu)


def _figures(
    design: str, rate: float, results: list[dict[str, Any]], offset: int,
    window: tuple[int, int], offered: int, buffer_drops: int, cpu: float,
) -> StreamRun:  # fmt: skip
    """The run's figures from every receipt the clients recorded."""
    lo, hi = window
    seconds = (hi - lo) / 1000
    receipts: dict[tuple[str, int], list[float]] = defaultdict(list)
    latencies = []
    for result in results:
        for symbol, msc, received_ns, _ in result["ticks"]:
            made = msc - offset  # machine ms
            if lo <= made < hi:
                receipts[symbol, msc].append(received_ns / 1e6)
                latencies.append(received_ns / 1e6 - made)
    spreads = [max(times) - min(times) for times in receipts.values()]
    per_symbol = CLIENTS // len(SYMBOLS)
    return StreamRun(
        design, rate, offered=offered / seconds, delivered=len(receipts) / seconds,
        messages=len(latencies) / seconds,
        complete=len(latencies) / max(1, offered * per_symbol),
        p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0), spread_p99_ms=percentile(spreads, 0.99),
        clients_dropped=sum(r["dropped"] + r["failed"] for r in results),
        gaps=sum(r["gaps"] for r in results), buffer_drops=buffer_drops, server_cpu=cpu,
        client_cpu=sum(r["cpu_s"] for r in results) / seconds,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ rows


def measure(
    rates: Sequence[float], duration_s: float, designs: Sequence[str] = DESIGNS,
    tree: Path | None = None,
) -> list[StreamRun]:  # fmt: skip
    """Every design at every rate, one run each, designs alternating within a rate."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="mt5gate-stream-bench-") as scratch:
        for rate in rates:
            for design in designs:
                runs.append(_run(design, rate, duration_s, Path(scratch), tree))
    return runs


def all_rows(repeat: int, quick: bool, *, verbose: bool = False) -> list[Row]:
    """The stream figures (``repeat`` is not used: each run is long and not repeated)."""
    runs = measure(QUICK_RATES if quick else RATES, 3.0 if quick else 10.0)
    if verbose or any(run.drops for run in runs):
        for run in runs:
            print(f"stream bench: {run}", file=sys.stderr)
    return rows(runs)


def rows(runs: Sequence[StreamRun]) -> list[Row]:
    """The table rows: per rate, push (one message per frame) and batch (``?batch=true``)
    against the floor, and the poll design."""
    by = {(run.design, run.rate): run for run in runs}
    found: list[Row] = []
    for rate in sorted({run.rate for run in runs}):
        floor, poll = by.get(("floor", rate)), by.get(("poll", rate))
        name = f"/v1/stream, {CLIENTS} clients x 1 of {len(SYMBOLS)} symbols, {rate:g} ticks/s"
        if floor is not None:
            found += [Row("stream", f"{name}: floor latency {label}", _latency(floor, share), "ms")
                      for share, label in ((0.5, "p50"), (0.99, "p99"))]  # fmt: skip
        for design, label in (("push", ""), ("batch", " (?batch=true)")):
            run = by.get((design, rate))
            if run is not None:
                found += _design_rows(f"{name}{label}", run, floor, poll)
        if poll is not None:
            per = CLIENTS // len(SYMBOLS)
            found.append(Row("stream", f"{name}: poll every 50 ms (before), ticks delivered",
                             poll.delivered, "ticks/s", f"every tick to its {per} subscribers",
                             poll.complete))  # fmt: skip
    return found


def _latency(run: StreamRun, share: float) -> float:
    return run.p50_ms if share == 0.5 else run.p99_ms


def _design_rows(
    name: str, run: StreamRun, floor: StreamRun | None, poll: StreamRun | None
) -> list[Row]:
    """One design's rows at one rate: what it delivered, lost, and how late, against the
    floor's latency and (push only) the poll design's."""
    per = CLIENTS // len(SYMBOLS)
    found = [
        Row("stream", f"{name}: ticks offered", run.offered, "ticks/s"),
        Row("stream", f"{name}: ticks delivered", run.delivered, "ticks/s",
            f"every tick to its {per} subscribers", run.complete),
        Row("stream", f"{name}: dropped (clients, gaps, buffer items)", float(run.drops),
            "items"),
        Row("stream", f"{name}: latency max", run.max_ms, "ms"),
        Row("stream", f"{name}: first-to-last receipt of a tick, p99", run.spread_p99_ms, "ms"),
        Row("stream", f"{name}: server CPU", run.server_cpu, "cores"),
    ]  # fmt: skip
    for share, label in ((0.5, "p50"), (0.99, "p99")):
        mine = _latency(run, share)
        base = None if floor is None else _latency(floor, share)
        against = f"floor {label}" if base else ""
        found.append(Row("stream", f"{name}: latency {label}", mine, "ms", against,
                         mine / base if base else None))  # fmt: skip
        if poll is not None and run.design == "push":
            old = _latency(poll, share)
            found.append(Row("stream", f"{name}: poll every 50 ms (before), latency {label}",
                             old, "ms", f"push {label}", old / mine if mine else None))  # fmt: skip
    return found


if __name__ == "__main__":
    import argparse

    from bench.report import render

    parser = argparse.ArgumentParser(description="the stream benchmark alone")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rates", type=lambda text: [float(r) for r in text.split(",")])
    parser.add_argument("--designs", type=lambda text: text.split(","), default=list(DESIGNS))
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument(
        "--tree",
        type=Path,
        default=None,
        help="run the service (not the floor) on this src tree (before/after)",
    )
    args = parser.parse_args()
    rates = args.rates or (QUICK_RATES if args.quick else RATES)
    duration = args.duration or (3.0 if args.quick else 10.0)
    found = measure(rates, duration, args.designs, args.tree)
    for run in found:
        print(f"stream bench: {run}", file=sys.stderr)
    print(render(rows(found)))
