"""Session benchmarks: the cost of ``get_price`` over the raw terminal call, side by side.

Figures (issue: MT5SessionManager):
- per-call latency of sequential ``await session.get_price("EURUSD")``, against the raw
  ``SimTerminal.symbol_info_tick`` call (no async, no thread) and against
  ``await asyncio.to_thread(terminal.symbol_info_tick, ...)``, which is what other async MT5
  libraries do per call;
- throughput of ``get_price`` with 100 concurrent callers over 10 symbols, against the same
  load through ``asyncio.to_thread`` (guarded by one lock, as the module needs), with the number
  of terminal calls it took (identical concurrent reads share one call).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.report import Row
from mt5gate.session import MT5SessionManager, SessionObserver
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

__all__ = ["all_rows"]

SYMBOLS = (
    "EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD",
    "USDCAD", "EURJPY", "GBPJPY", "EURGBP", "XAUUSD",
)  # fmt: skip
CALLERS = 100


class CallCounter(SessionObserver):
    """Counts terminal calls the session made."""

    def __init__(self) -> None:
        self.calls = 0

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.calls += 1


def _terminal() -> SimTerminal:
    terminal = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    terminal.initialize()
    for symbol in SYMBOLS:
        terminal.symbol_select(symbol, True)
    return terminal


def _session(terminal: SimTerminal, observer: SessionObserver) -> MT5SessionManager:
    return MT5SessionManager(terminal=terminal, observer=observer)


async def _round_us(action: Callable[[], Awaitable[Any]], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await action()
    return (time.perf_counter() - started) / count * 1e6


async def _interleaved_us(
    actions: tuple[Callable[[], Awaitable[Any]], ...], count: int, rounds: int
) -> list[float]:
    """Best per-call time of each action, measured in alternating rounds so both see the
    same machine conditions (thread wake-up latency varies a lot on a shared 2-core box)."""
    best = [float("inf")] * len(actions)
    for _ in range(rounds):
        for index, action in enumerate(actions):
            best[index] = min(best[index], await _round_us(action, count))
    return best


def _raw_per_call_us(terminal: SimTerminal, count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            terminal.symbol_info_tick("EURUSD")
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


async def _throughput(fetch: Callable[[str], Awaitable[Any]], per_caller: int) -> float:
    async def caller(offset: int) -> None:
        names = itertools.islice(itertools.cycle(SYMBOLS), offset, offset + per_caller)
        for symbol in names:
            await fetch(symbol)

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(CALLERS)))
    return CALLERS * per_caller / (time.perf_counter() - started)


async def _measure(repeat: int, quick: bool) -> list[Row]:
    count = 2_000 if quick else 20_000
    per_caller = 50 if quick else 500
    terminal, counter = _terminal(), CallCounter()
    lock = threading.Lock()

    def locked_tick(symbol: str) -> Any:
        with lock:
            return terminal.symbol_info_tick(symbol)

    raw = _raw_per_call_us(terminal, count, repeat)
    async with _session(terminal, counter) as session:
        session_us, thread_us = await _interleaved_us(
            (
                lambda: session.get_price("EURUSD"),
                lambda: asyncio.to_thread(locked_tick, "EURUSD"),
            ),
            count // 4,
            repeat * 4,
        )
        counter.calls = 0
        session_rate = await _throughput(session.get_price, per_caller)
        terminal_calls = counter.calls
        thread_rate = await _throughput(lambda s: asyncio.to_thread(locked_tick, s), per_caller)
    total = CALLERS * per_caller
    name = "get_price"
    return [
        Row("session", "symbol_info_tick, raw SimTerminal call", raw, "us/call"),
        Row("session", f"{name}, sequential, per call", session_us, "us/call",
            "asyncio.to_thread per call", session_us / thread_us),
        Row("session", "asyncio.to_thread(symbol_info_tick), per call", thread_us, "us/call",
            "raw call", thread_us / raw),
        Row("session", f"{name}, {CALLERS} callers x 10 symbols", session_rate, "calls/s",
            "asyncio.to_thread, same load", session_rate / thread_rate),
        Row("session", "asyncio.to_thread, same load", thread_rate, "calls/s"),
        Row("session", f"terminal calls per {total:,} get_price (shared reads)",
            terminal_calls, "calls"),
    ]  # fmt: skip


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """Every session figure, side by side in one run."""
    return asyncio.run(_measure(repeat, quick))
