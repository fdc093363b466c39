"""Order pipeline benchmarks: exactly-once orders per second with the durable journal.

Figures (issue 5, item 9):
- orders per second end to end through ``session.place_order`` on the simulator with an
  SQLite journal on disk (INTENT, SENT and the outcome each committed with ``synchronous=FULL``
  before the call returns), sequential and with 16 concurrent callers; against the raw
  ``SimTerminal.order_send`` call, against ``asyncio.to_thread(order_send)`` with no journal
  (what other async MT5 libraries do), and against the same pipeline with the in-memory journal
  (the cost of the disk);
- the journal's durable-commit latency percentiles (``record_intent``: allocate the id and write
  INTENT in one fsync'd transaction) on this machine's disk.

Orders alternate buy and sell on the netting demo account, so the position stays small and no
order is refused for margin.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import Row
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import SqliteJournal
from mt5gate.session import MT5SessionManager, ReconcilePolicy, SessionObserver
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

__all__ = ["all_rows"]

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


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """Every order-pipeline figure, side by side in one run (best of ``repeat``)."""
    count = 300 if quick else 2000
    with tempfile.TemporaryDirectory(prefix="mt5gate-bench-", dir=".") as scratch:
        folder = Path(scratch)

        def durable(callers: int) -> float:
            paths = (folder / f"j{callers}-{n}.db" for n in range(repeat))
            return max(asyncio.run(_pipeline_rate(count, callers, p)) for p in paths)

        raw = max(_raw_rate(count) for _ in range(repeat))
        thread = max(asyncio.run(_thread_rate(count)) for _ in range(repeat))
        memory = max(asyncio.run(_pipeline_rate(count, 1, None)) for _ in range(repeat))
        sequential, concurrent = durable(1), durable(CALLERS)
        latencies = _intent_latencies_us(count, folder / "latency.db")
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    return [
        Row("orders", "market order_send, raw SimTerminal call", raw, "orders/s"),
        Row("orders", "asyncio.to_thread(order_send), no journal", thread, "orders/s",
            "raw call", thread / raw),
        Row("orders", "place_order, in-memory journal, sequential", memory, "orders/s",
            "asyncio.to_thread, no journal", memory / thread),
        Row("orders", "place_order, SQLite journal on disk, sequential", sequential, "orders/s",
            "in-memory journal", sequential / memory),
        Row("orders", f"place_order, SQLite journal on disk, {CALLERS} callers", concurrent,
            "orders/s", "sequential, on disk", concurrent / sequential),
        Row("orders", "journal durable commit (record_intent), p50", p50, "us"),
        Row("orders", "journal durable commit (record_intent), p99", p99, "us",
            "p50", p99 / p50),
        Row("orders", "journal durable commit (record_intent), mean",
            statistics.fmean(latencies), "us"),
    ]  # fmt: skip
