"""Order pipeline benchmarks: exactly-once orders per second with the durable journal.

Figures (issue 5, item 9; issue 19):
- orders per second end to end through ``session.place_order`` on the simulator with an
  SQLite journal on disk (INTENT and SENT committed with ``synchronous=FULL`` before the send,
  the outcome after it, each caller answered once its write is on disk), sequentially and with
  16 concurrent callers; against the raw ``SimTerminal.order_send`` call, against
  ``asyncio.to_thread(order_send)`` with no journal (what other async MT5 libraries do), and
  against the same pipeline with the in-memory journal (the cost of the disk). Every path runs
  once per round, in turn, and the best round is kept, so a change in the machine's load falls
  on all of them alike; the load when the run started is a row of its own;
- the journal's durable-commit latency percentiles (``record_intent``: allocate the id and write
  INTENT in one fsync'd transaction) on this machine's disk.

Orders alternate buy and sell on the netting demo account, so the position stays small and no
order is refused for margin. Run alone with ``python -m bench.orders_bench`` (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import Row, render
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import SqliteJournal
from mt5gate.session import MT5SessionManager, ReconcilePolicy, SessionObserver
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

__all__ = ["all_rows", "main", "rates"]

LOGIN, PASSWORD, SERVER = 5002, "sim-pass-5002", "MetaQuotes-Demo"
CALLERS = 16


def _terminal() -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))


def _request(n: int) -> OrderRequest:
    return OrderRequest("EURUSD", Side.BUY if n % 2 == 0 else Side.SELL, 0.01)


def _raw_request(n: int) -> dict[str, Any]:
    return {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": n % 2, "type_filling": 1}


def _raw_rate(count: int) -> float:
    terminal = _terminal()
    terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    started = time.perf_counter()
    for n in range(count):
        terminal.order_send(_raw_request(n))
    return count / (time.perf_counter() - started)


async def _thread_rate(count: int) -> float:
    terminal = _terminal()
    terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    started = time.perf_counter()
    for n in range(count):
        await asyncio.to_thread(terminal.order_send, _raw_request(n))
    return count / (time.perf_counter() - started)


def _session(journal: SqliteJournal | None) -> MT5SessionManager:
    return MT5SessionManager(
        terminal=_terminal(), login=LOGIN, password=PASSWORD, server=SERVER,
        journal=journal, observer=SessionObserver(),
        reconcile=ReconcilePolicy(sweep_interval_s=None),
    )  # fmt: skip


async def _pipeline_rate(count: int, callers: int, path: Path | None) -> float:
    journal = SqliteJournal(path) if path is not None else None
    session = _session(journal)
    async with session:

        async def caller(offset: int) -> None:
            for n in range(offset, count, callers):
                await session.place_order(_request(n))

        started = time.perf_counter()
        await asyncio.gather(*(caller(offset) for offset in range(callers)))
        elapsed = time.perf_counter() - started
    if journal is not None:
        journal.close()
    return count / elapsed


def _intent_latencies_us(count: int, path: Path) -> list[float]:
    with SqliteJournal(path) as journal:
        spent = []
        for n in range(count):
            started = time.perf_counter()
            journal.record_intent(LOGIN, {"op": "place", "n": n})
            spent.append((time.perf_counter() - started) * 1e6)
    return spent


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _load() -> float:
    """The machine's one-minute load average (figures taken under load are slower)."""
    return os.getloadavg()[0]


def rates(count: int, repeat: int, callers: int) -> dict[str, float]:
    """Orders per second of every path, best of ``repeat`` rounds; each round runs every path
    once, in turn, so a change in the machine's load falls on all of them alike."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mt5gate-bench-", dir=".") as scratch:
        folder = Path(scratch)
        paths: dict[str, Callable[[int], float]] = {
            "raw": lambda _: _raw_rate(count),
            "thread": lambda _: asyncio.run(_thread_rate(count)),
            "memory 1": lambda _: asyncio.run(_pipeline_rate(count, 1, None)),
            f"memory {callers}": lambda _: asyncio.run(_pipeline_rate(count, callers, None)),
            "disk 1": lambda n: asyncio.run(_pipeline_rate(count, 1, folder / f"s{n}.db")),
            f"disk {callers}": lambda n: asyncio.run(
                _pipeline_rate(count, callers, folder / f"c{n}.db")
            ),
        }
        for n in range(repeat):
            for name, measure in paths.items():
                best[name] = max(best.get(name, 0.0), measure(n))
    return best


def all_rows(repeat: int, quick: bool, *, count: int | None = None,
             callers: int = CALLERS) -> list[Row]:  # fmt: skip
    """Every order-pipeline figure, side by side in one run (best of ``repeat``)."""
    count = count or (300 if quick else 2000)
    load = _load()
    found = rates(count, repeat, callers)
    raw, thread = found["raw"], found["thread"]
    memory, disk = found["memory 1"], found["disk 1"]
    many_memory, many_disk = found[f"memory {callers}"], found[f"disk {callers}"]
    with tempfile.TemporaryDirectory(prefix="mt5gate-bench-", dir=".") as scratch:
        latencies = _intent_latencies_us(count, Path(scratch) / "latency.db")
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    return [
        Row("orders", "machine load (1-minute average) when the run started", load, ""),
        Row("orders", "market order_send, raw SimTerminal call", raw, "orders/s"),
        Row("orders", "asyncio.to_thread(order_send), no journal", thread, "orders/s",
            "raw call", thread / raw),
        Row("orders", "place_order, in-memory journal, sequential", memory, "orders/s",
            "asyncio.to_thread, no journal", memory / thread),
        Row("orders", f"place_order, in-memory journal, {callers} callers", many_memory,
            "orders/s", "sequential, in memory", many_memory / memory),
        Row("orders", "place_order, SQLite journal on disk, sequential", disk, "orders/s",
            "in-memory journal", disk / memory),
        Row("orders", f"place_order, SQLite journal on disk, {callers} callers", many_disk,
            "orders/s", f"in-memory journal, {callers} callers", many_disk / many_memory),
        Row("orders", "journal durable commit (record_intent), p50", p50, "us"),
        Row("orders", "journal durable commit (record_intent), p99", p99, "us",
            "p50", p99 / p50),
        Row("orders", "journal durable commit (record_intent), mean",
            statistics.fmean(latencies), "us"),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.orders_bench [--count N] [--repeat N] [--callers N] [--quick]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, help="orders per run (default 2,000; 300 quick)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the best is kept)")
    parser.add_argument("--callers", type=int, default=CALLERS, help="concurrent callers")
    parser.add_argument("--quick", action="store_true", help="300 orders per run")
    args = parser.parse_args(argv)
    # sessions built without a journal say so once each; here that is expected, not news
    logging.getLogger("mt5gate.orders").setLevel(logging.ERROR)
    rows = all_rows(args.repeat, args.quick, count=args.count, callers=args.callers)
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
