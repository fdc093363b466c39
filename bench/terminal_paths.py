"""The same two jobs through every path to a terminal, side by side in one run.

Jobs (issue: reach real terminals): a ``symbol_info_tick`` plus reading its eight fields, and
a market ``order_send`` (open and close). Paths: the simulator in process (the raw call), the
official adapter over the drop-in module, a child process (``ProcessTerminal``), the bridge to a
separate process on loopback (``BridgeTerminal``), RPyC with mt5gate's client, and RPyC used the
way mt5linux users use it (a netref per call and per field read). The ratio column compares
each path with the mt5linux way where that is the question, else with the raw call.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench._bridge_host import rich_simulator
from bench.report import Row
from mt5gate.constants import OrderFilling, OrderType, TradeAction
from mt5gate.terminal.base import Terminal

__all__ = ["rows"]

FIELDS = ("time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real")
TOKEN = "bench-token-0123456789"


def _best_rate(action: Callable[[], Any], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            action()
        best = min(best, time.perf_counter() - started)
    return count / best


def _tick_and_fields(terminal: Terminal) -> tuple[Any, ...]:
    tick = terminal.symbol_info_tick("EURUSD")
    return tuple(getattr(tick, name) for name in FIELDS)


def _buy_and_close(terminal: Terminal) -> None:
    request = {
        "action": int(TradeAction.DEAL), "symbol": "EURUSD", "volume": 0.1,
        "type": int(OrderType.BUY), "type_filling": int(OrderFilling.IOC),
    }  # fmt: skip
    opened = terminal.order_send(request)
    assert opened is not None
    assert opened.retcode == 10009, opened
    closed = terminal.order_send({**request, "type": int(OrderType.SELL), "position": opened.order})
    assert closed is not None
    assert closed.retcode == 10009, closed


@contextmanager
def _in_process() -> Iterator[Terminal]:
    yield rich_simulator()


@contextmanager
def _official_over_dropin() -> Iterator[Terminal]:
    import mt5gate.sim
    from mt5gate.terminal.official import official_terminal

    mt5gate.sim.install(rich_simulator())
    try:
        yield official_terminal()
    finally:
        mt5gate.sim.uninstall()


@contextmanager
def _child_process() -> Iterator[Terminal]:
    from mt5gate.terminal.process import ProcessTerminal

    terminal = ProcessTerminal(functools.partial(rich_simulator), name="bench-child")
    try:
        yield terminal
    finally:
        terminal.close()


@contextmanager
def _bridge() -> Iterator[Terminal]:
    from mt5gate.terminal.bridge import BridgeTerminal

    host = subprocess.Popen(
        [sys.executable, "-m", "bench._bridge_host", TOKEN], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline())
        terminal = BridgeTerminal("127.0.0.1", port, token=TOKEN)
        yield terminal
        terminal.close()
    finally:
        host.kill()
        host.wait()


PATHS: dict[str, Callable[[], Any]] = {
    "in process (raw SimTerminal)": _in_process,
    "official adapter over the drop-in": _official_over_dropin,
    "child process (ProcessTerminal, pipe)": _child_process,
    "bridge, separate process, loopback": _bridge,
}


def _measure(path: Callable[[], Any], repeat: int, quick: bool) -> tuple[float, float]:
    ticks, orders = (500, 100) if quick else (5_000, 500)
    with path() as terminal:
        assert terminal.initialize(), terminal.last_error()
        tick_rate = _best_rate(lambda: _tick_and_fields(terminal), ticks, repeat)
        order_rate = _best_rate(lambda: _buy_and_close(terminal), orders, repeat) * 2
    return tick_rate, order_rate


def rows(repeat: int, quick: bool) -> list[Row]:
    """Every path's figures; RPyC paths come from ``bench.rpyc_paths``."""
    from bench import rpyc_paths

    measured = {name: _measure(path, repeat, quick) for name, path in PATHS.items()}
    raw_tick, raw_order = measured["in process (raw SimTerminal)"]
    out: list[Row] = []
    for name, (tick_rate, order_rate) in measured.items():
        out.append(Row("paths", f"tick + 8 fields: {name}", tick_rate, "calls/s",
                       "raw call", tick_rate / raw_tick))  # fmt: skip
        out.append(Row("paths", f"market order_send: {name}", order_rate, "orders/s",
                       "raw call", order_rate / raw_order))  # fmt: skip
    rpyc_rows = rpyc_paths.rows(repeat, quick)
    out += rpyc_rows
    out += _bridge_vs_mt5linux(measured["bridge, separate process, loopback"], rpyc_rows)
    return out


def _bridge_vs_mt5linux(bridge: tuple[float, float], rpyc_rows: list[Row]) -> list[Row]:
    """The issue's aim: the bridge at least 10x the mt5linux way on loopback."""
    way = [r for r in rpyc_rows if "mt5linux" in r.name]
    tick_way = next((r.value for r in way if "tick" in r.name), None)
    order_way = next((r.value for r in way if "order" in r.name), None)
    out = []
    if tick_way:
        out.append(Row("paths", "bridge vs the mt5linux way: tick + 8 fields", bridge[0],
                       "calls/s", "mt5linux way", bridge[0] / tick_way))  # fmt: skip
    if order_way:
        out.append(Row("paths", "bridge vs the mt5linux way: market order_send", bridge[1],
                       "orders/s", "mt5linux way", bridge[1] / order_way))  # fmt: skip
    return out
