"""Simulator benchmarks: tick reads, market orders, and tick processing under load.

Figures (issue: foundation and simulator):
- ``symbol_info_tick`` calls per second through ``SimTerminal``, compared with the drop-in
  ``MetaTrader5`` module (what unmodified scripts call) and with a real-time clock, where every
  call also lets the market catch up;
- market ``order_send`` per second (open and close pairs on a hedging account);
- ticks processed per second by the market and the trade server with 1,000 open positions and
  1,000 pending orders whose levels are not hit, against an empty account: the ratio shows
  what the trigger index costs per tick (a scan of every order would be ~2,000x slower).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.report import Row
from mt5gate.constants import OrderFilling, OrderType, Timeframe, TradeAction
from mt5gate.sim import AccountConfig, RealClock, SimConfig, VirtualClock, server_ms
from mt5gate.sim.market import Market
from mt5gate.sim.terminal import SimTerminal

__all__ = ["all_rows"]

START = server_ms(2026, 1, 6, 10)


def _best_rate(action: Callable[[], Any], count: int, repeat: int) -> float:
    """Best calls-per-second of ``count`` calls of ``action`` over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            action()
        best = min(best, time.perf_counter() - started)
    return count / best


#: A large account, so thousands of round trips (each losing the spread) never run out of money.
RICH = AccountConfig(login=9001, password="bench", balance=1e9, limit_orders=5_000)


def _terminal(clock: VirtualClock | RealClock | None = None) -> SimTerminal:
    config = SimConfig(accounts=(RICH,), history_days=1)
    terminal = SimTerminal(config, clock=clock or VirtualClock(START))
    terminal.initialize()
    return terminal


def tick_rows(repeat: int, quick: bool) -> list[Row]:
    """symbol_info_tick per second: facade, drop-in module, real-time clock."""
    import mt5gate.sim
    from mt5gate.sim import metatrader5 as dropin

    count = 20_000 if quick else 200_000
    virtual = _terminal()
    direct = _best_rate(lambda: virtual.symbol_info_tick("EURUSD"), count, repeat)
    mt5gate.sim.configure(virtual)
    read = dropin.symbol_info_tick  # type: ignore[attr-defined]
    module = _best_rate(lambda: read("EURUSD"), count, repeat)
    live = _terminal(RealClock())
    live.symbol_select("BTCUSD", True)
    realtime = _best_rate(lambda: live.symbol_info_tick("BTCUSD"), count, repeat)
    base = "SimTerminal, virtual clock"
    name = "symbol_info_tick"
    return [
        Row("sim", f"{name}, SimTerminal (virtual clock)", direct, "calls/s"),
        Row("sim", f"{name}, drop-in module", module, "calls/s", base, module / direct),
        Row("sim", f"{name}, real-time clock", realtime, "calls/s", base, realtime / direct),
    ]


def _buy_and_close(terminal: SimTerminal) -> None:
    request = {
        "action": int(TradeAction.DEAL),
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": int(OrderType.BUY),
        "type_filling": int(OrderFilling.IOC),
    }
    opened = terminal.order_send(request)
    assert opened is not None
    assert opened.retcode == 10009, opened
    close = {**request, "type": int(OrderType.SELL), "position": opened.order}
    closed = terminal.order_send(close)
    assert closed is not None
    assert closed.retcode == 10009, closed


def order_rows(repeat: int, quick: bool) -> list[Row]:
    """Market order_send per second (each pair is an open and a close)."""
    terminal = _terminal()
    pairs = 1_000 if quick else 5_000
    rate = _best_rate(lambda: _buy_and_close(terminal), pairs, repeat) * 2
    return [Row("sim", "market order_send (hedging, open + close)", rate, "orders/s")]


def _load_book(terminal: SimTerminal, positions: int, pendings: int) -> None:
    """Open positions with far SL/TP and place far pending orders: nothing triggers."""
    tick = terminal.symbol_info_tick("EURUSD")
    assert tick is not None
    base = {"symbol": "EURUSD", "volume": 0.01, "type_filling": int(OrderFilling.IOC)}
    for _ in range(positions):
        sent = terminal.order_send(
            {**base, "action": int(TradeAction.DEAL), "type": int(OrderType.BUY),
             "sl": round(tick.bid * 0.5, 5), "tp": round(tick.ask * 1.5, 5)}
        )  # fmt: skip
        assert sent is not None
        assert sent.retcode == 10009, sent
    for i in range(pendings):
        sent = terminal.order_send(
            {**base, "action": int(TradeAction.PENDING), "type": int(OrderType.BUY_LIMIT),
             "price": round(tick.ask * 0.6 - i * 1e-5, 5), "type_filling": int(OrderFilling.RETURN)}
        )  # fmt: skip
        assert sent is not None
        assert sent.retcode == 10009, sent


def _tick_throughput(positions: int, pendings: int, hours: float) -> float:
    terminal = _terminal()
    if positions or pendings:
        _load_book(terminal, positions, pendings)
    seen = [0]
    terminal.market.add_listener(lambda _symbol, ticks: seen.__setitem__(0, seen[0] + len(ticks)))
    started = time.perf_counter()
    terminal.step(hours * 3600)
    elapsed = time.perf_counter() - started
    return seen[0] / elapsed


def _symbol_count() -> int:
    """How many symbols the simulator's catalogue has (every one of them ticks)."""
    return len(_terminal().market.symbols())


def tick_processing_rows(repeat: int, quick: bool) -> list[Row]:
    """Ticks per second through market + trade server: empty, 10 + 10 and 1,000 + 1,000 orders.

    If trigger checks scanned the orders, the 1,000 row would be ~100x slower than the 10 row;
    with the index both pay the same per-batch bookkeeping.
    """
    hours = 0.5 if quick else 4.0

    def best(count: int) -> float:
        return max(_tick_throughput(count, count, hours) for _ in range(repeat))

    empty, few, many = best(0), best(10), best(1_000)
    name = "ticks processed"
    return [
        Row("sim", f"{name}, empty account ({_symbol_count()} symbols)", empty, "ticks/s"),
        Row("sim", f"{name}, 10 positions + 10 pending orders", few, "ticks/s",
            "empty", few / empty),
        Row("sim", f"{name}, 1,000 positions + 1,000 pending orders", many, "ticks/s",
            "10 + 10 orders", many / few),
    ]  # fmt: skip


def market_rows(repeat: int, quick: bool) -> list[Row]:
    """Market data: an idle sync, a two-day catch-up, and 1,000 bars of M1 and H1."""
    market = _terminal().market
    idle = 1e6 / _best_rate(market.sync, 10_000 if quick else 100_000, repeat)
    bars = {
        name: 1e6
        / _best_rate(
            lambda tf=tf: market.copy_rates_from_pos("EURUSD", tf, 0, 1000, 100_000), 200, repeat
        )
        for name, tf in (("M1", 1), ("H1", 16385))
    }
    catch_up = []
    for _ in range(repeat):
        fresh = _terminal()
        started = time.perf_counter()
        fresh.step(2 * 86_400)
        catch_up.append(time.perf_counter() - started)
    return [
        Row("sim", "market.sync() with nothing due", idle, "us/call"),
        Row(
            "sim",
            f"catch up 2 days of {len(market.symbols())} symbols (one step)",
            min(catch_up),
            "s",
        ),
        Row("sim", "copy_rates_from_pos 1,000 M1 bars", bars["M1"], "us/call"),
        Row("sim", "copy_rates_from_pos 1,000 H1 bars", bars["H1"], "us/call"),
    ]


JAN_2020 = server_ms(2020, 1, 1) // 1000
FEB_2020 = server_ms(2020, 2, 1) // 1000


def deep_history_rows(repeat: int, quick: bool) -> list[Row]:
    """The deep past (issue 18): a month of EURUSD M1 in 2020 (``copy_rates_range``), with
    the chunk cache empty (every day synthesised) and warm (every day cached), and the bytes
    the cache holds once full (its default bound of 128 days, after walking a year)."""
    market = _terminal().market

    def month() -> None:
        market.copy_rates_range("EURUSD", 1, JAN_2020, FEB_2020 - 1, 100_000)

    def cold() -> None:
        market.deep_cache.clear()
        month()

    month()
    cold_ms = 1e3 / _best_rate(cold, 2 if quick else 5, repeat)
    warm_ms = 1e3 / _best_rate(month, 2 if quick else 20, repeat)
    for week in range(26 if quick else 53):
        lo = JAN_2020 + week * 7 * 86_400
        market.copy_rates_range("EURUSD", 1, lo, lo + 7 * 86_400 - 1, 100_000)
    full_mb = market.deep_cache.nbytes / 1e6
    d1_cold, d1_warm = _years_of_d1(market)
    return [
        Row("sim", "copy_rates_range a month of M1 in 2020, cold cache", cold_ms, "ms/call"),
        Row("sim", "copy_rates_range a month of M1 in 2020, warm cache", warm_ms, "ms/call",
            "cold cache", cold_ms / warm_ms),
        Row("sim", f"deep-history cache, full ({len(market.deep_cache)} days)", full_mb, "MB"),
        Row("sim", "10,000 D1 bars back from now (2010 on), cold caches", d1_cold, "ms/call"),
        Row("sim", "10,000 D1 bars back from now (2010 on), warm caches", d1_warm, "ms/call",
            "cold caches", d1_cold / d1_warm),
    ]  # fmt: skip


def _years_of_d1(market: Market) -> tuple[float, float]:
    """Milliseconds of ``copy_rates_from_pos(EURUSD, D1, 0, 10000)`` (every deep day since
    2010) with both deep caches empty, then with the day frames cached (one run each: the cold
    one is the figure, and it cannot be repeated without clearing what it measures)."""
    market.deep_cache.clear()
    market.deep_frames.clear()
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        market.copy_rates_from_pos("EURUSD", int(Timeframe.D1), 0, 10_000, 100_000)
        timings.append((time.perf_counter() - started) * 1e3)
    return timings[0], timings[1]


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """Every simulator figure, side by side in one run."""
    rows = tick_rows(repeat, quick) + order_rows(repeat, quick) + market_rows(repeat, quick)
    return rows + tick_processing_rows(repeat, quick) + deep_history_rows(repeat, quick)


if __name__ == "__main__":
    import argparse

    from bench.report import render

    parser = argparse.ArgumentParser(description="the deep-history benchmarks alone")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(render(deep_history_rows(args.repeat, args.quick)))
