"""The past before the simulation starts: M1 bars, and ticks regenerated from them on demand.

Bars are a geometric random walk run *backwards* from the initial price, so the last history
bar closes exactly where the live feed begins. Only session minutes get bars. Each bar's ticks
are a pure function of the bar and a hash of ``(symbol, minute, index)``: the first tick is the
open, the last the close, the high and low each appear once between them (low first on a rising
bar), and the rest lie inside the range. So ``copy_ticks_*`` agrees with ``copy_rates_*``.

The same function serves the live bars whose ticks the live-tick retention dropped
(``live=True``): those bars came from real ticks, so they get exactly ``tick_volume`` ticks, and
trades (last and volume) where the bar has real volume. Aggregating such ticks into M1 bars
gives the stored bars back, field for field.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mt5gate.constants import TickFlag
from mt5gate.sim.market.dtypes import RateArray, TickArray, empty_rates, empty_ticks
from mt5gate.sim.market.rand import STREAM_HISTORY, hash_uniform, make_rng
from mt5gate.sim.market.sessions import SessionMask
from mt5gate.sim.symbols import SymbolSpec

__all__ = [
    "MIN_TICKS_PER_BAR",
    "bars_from_path",
    "minute_sigma",
    "synth_bars",
    "synth_ticks",
    "tick_counts",
    "trade_counts",
]

MIN_TICKS_PER_BAR = 4  # open, high, low, close
_QUOTE_FLAGS = int(TickFlag.BID | TickFlag.ASK)
_TRADE_FLAGS = int(TickFlag.LAST | TickFlag.VOLUME)
_MINUTES_PER_YEAR = 365.25 * 1440


def _session_minutes(mask: SessionMask, end_minute: int, days: int) -> NDArray[np.int64]:
    """Epoch minutes of the last ``days`` days before ``end_minute`` that are in session."""
    minutes = np.arange(end_minute - days * 1440, end_minute, dtype=np.int64)
    return minutes[mask.open_minutes(minutes)]


def synth_bars(
    spec: SymbolSpec, mask: SessionMask, seed: int, end_s: int, days: int, *, last_day: bool = False
) -> RateArray:
    """M1 bars for the session minutes of ``days`` days before ``end_s`` (a minute boundary).

    ``last_day``: only the bars of the server day of the last bar, and the bar before that day:
    what the day's statistics of ``symbol_info`` read. Every random draw is still made (the
    generator's stream decides each bar), so these bars equal the full call's, field for field;
    what is saved is building, rounding and storing the weeks before.
    """
    minutes = _session_minutes(mask, end_s // 60, days)
    n = len(minutes)
    if n == 0:
        return empty_rates()
    rng = make_rng(seed, spec.name, STREAM_HISTORY)
    steps = rng.standard_normal(n) * minute_sigma(spec)
    # steps[i] (i >= 1) moves close i-1 to close i; the last close is the initial price.
    after = np.concatenate([np.cumsum(steps[:0:-1])[::-1], [0.0]])
    log_close = np.log(spec.initial_price) - after
    log_open = np.concatenate([[log_close[0] - steps[0]], log_close[:-1]])
    first = _last_day_start(minutes) if last_day else 0
    return bars_from_path(spec, minutes, log_open, log_close, rng, first)


def _last_day_start(minutes: NDArray[np.int64]) -> int:
    """Index of the bar before the first bar of the last bar's server day (0 if none)."""
    day = int(minutes[-1]) // 1440 * 1440
    return max(0, int(np.searchsorted(minutes, day, side="left")) - 1)


def minute_sigma(spec: SymbolSpec) -> float:
    """Standard deviation of one minute's log return, from the annual volatility."""
    return float(spec.annual_volatility / np.sqrt(_MINUTES_PER_YEAR))


def bars_from_path(
    spec: SymbolSpec,
    minutes: NDArray[np.int64],
    log_open: NDArray[np.float64],
    log_close: NDArray[np.float64],
    rng: np.random.Generator,
    first: int = 0,
) -> RateArray:
    """M1 bars at ``minutes`` along a log-price path: wicks and tick volumes from ``rng``; only
    the bars ``first:`` are built, though the draws cover the whole path (so they equal the full
    call's). Shared by the 30-day history and the deep past (``deep.py``), so both look alike."""
    n = len(minutes)
    sigma = minute_sigma(spec)
    wick = np.abs(rng.standard_normal((n, 2))[first:]) * sigma * 0.6
    per_minute = 60_000 / spec.mean_tick_interval_ms
    ticks = rng.poisson(per_minute, n)[first:]
    bars = empty_rates(n - first)
    bars["time"] = minutes[first:] * 60
    bars["open"] = np.round(np.exp(log_open[first:]), spec.digits)
    bars["close"] = np.round(np.exp(log_close[first:]), spec.digits)
    top = np.maximum(bars["open"], bars["close"])
    bottom = np.minimum(bars["open"], bars["close"])
    bars["high"] = np.maximum(top, np.round(top * np.exp(wick[:, 0]), spec.digits))
    bars["low"] = np.minimum(bottom, np.round(bottom * np.exp(-wick[:, 1]), spec.digits))
    bars["tick_volume"] = np.maximum(MIN_TICKS_PER_BAR, ticks)
    bars["spread"] = max(1, spec.spread_points)
    return bars


def tick_counts(bars: RateArray, *, live: bool = False) -> NDArray[np.int64]:
    """Ticks :func:`synth_ticks` makes per bar: ``max(4, tick_volume)``, or for bars built from
    live ticks (``live``) their ``tick_volume`` itself (at least 1)."""
    floor = 1 if live else MIN_TICKS_PER_BAR
    return np.maximum(floor, bars["tick_volume"].astype(np.int64))


def trade_counts(bars: RateArray, *, live: bool = False) -> NDArray[np.int64]:
    """Ticks :func:`synth_ticks` makes per bar that carry a trade (flags LAST|VOLUME)."""
    if not live:
        return np.zeros(len(bars), dtype=np.int64)
    volume = np.minimum(bars["real_volume"], np.iinfo(np.int64).max).astype(np.int64)
    counts: NDArray[np.int64] = np.minimum(tick_counts(bars, live=True), volume)
    return counts


def synth_ticks(
    bars: RateArray, key: int, digits: int, point: float, *, live: bool = False
) -> TickArray:
    """The ticks of M1 bars, flags BID|ASK: ``max(4, tick_volume)`` per history bar.

    ``live``: the bars were built from live ticks (see the module docstring): ``tick_volume``
    ticks per bar, and the bar's real volume spread over its ticks as trades.
    """
    if len(bars) == 0:
        return empty_ticks()
    counts = tick_counts(bars, live=live)
    row = np.repeat(np.arange(len(bars)), counts)
    first = np.cumsum(counts) - counts
    j = np.arange(int(counts.sum()), dtype=np.int64) - first[row]
    minute = bars["time"][row] // 60
    ticks = empty_ticks(len(row))
    offset = np.floor((j + hash_uniform(key, minute, j, 1)) * 60_000 / counts[row])
    ticks["time_msc"] = bars["time"][row] * 1000 + offset.astype(np.int64)
    ticks["time"] = ticks["time_msc"] // 1000
    ticks["bid"] = _tick_prices(bars, counts, row, j, key, digits)
    ticks["ask"] = np.round(ticks["bid"] + bars["spread"][row] * point, digits)
    ticks["flags"] = _QUOTE_FLAGS
    if live:
        _add_trades(ticks, bars, counts, row, j, key, digits)
    return ticks


def _add_trades(
    ticks: TickArray,
    bars: RateArray,
    counts: NDArray[np.int64],
    row: NDArray[np.int64],
    j: NDArray[np.int64],
    key: int,
    digits: int,
) -> None:
    """Whole volumes summing to the bar's real volume (the first ticks take the remainder),
    a last price inside the spread wherever the volume is not 0."""
    real = bars["real_volume"][row]
    if not real.any():
        return
    n = counts[row].astype(np.uint64)
    volume = real // n + (j.astype(np.uint64) < real % n)
    traded = volume > 0
    u = hash_uniform(key, bars["time"][row] // 60, j, 5)
    last = np.round(ticks["bid"] + u * (ticks["ask"] - ticks["bid"]), digits)
    ticks["last"] = np.where(traded, last, 0.0)
    ticks["volume"], ticks["volume_real"] = volume, volume.astype(np.float64)
    ticks["flags"] |= np.where(traded, _TRADE_FLAGS, 0).astype(np.uint32)


def _extreme_slots(
    bars: RateArray, counts: NDArray[np.int64], key: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per bar, the tick indices (1..n-2) holding the high and the low."""
    minute = bars["time"] // 60
    zero = np.zeros(len(bars), dtype=np.int64)
    a = 1 + np.floor(hash_uniform(key, minute, zero, 3) * (counts - 2)).astype(np.int64)
    b = 1 + np.floor(hash_uniform(key, minute, zero, 4) * (counts - 3)).astype(np.int64)
    b = b + (b >= a)
    early, late = np.minimum(a, b), np.maximum(a, b)
    rising = bars["close"] >= bars["open"]
    return np.where(rising, late, early), np.where(rising, early, late)


def _tick_prices(
    bars: RateArray,
    counts: NDArray[np.int64],
    row: NDArray[np.int64],
    j: NDArray[np.int64],
    key: int,
    digits: int,
) -> NDArray[np.float64]:
    """Bid of each tick: open first, close last, high and low once, the rest in between."""
    low, high = bars["low"][row], bars["high"][row]
    u = hash_uniform(key, bars["time"][row] // 60, j, 2)
    price = np.round(low + u * (high - low), digits)
    high_at, low_at = _extreme_slots(bars, counts, key)
    price = np.where(j == high_at[row], high, price)
    price = np.where(j == low_at[row], low, price)
    # A 3-tick bar (live bars only) has one middle tick: the extreme open and close miss.
    top = np.maximum(bars["open"], bars["close"])[row]
    bottom = np.minimum(bars["open"], bars["close"])[row]
    middle = np.where(high > top, high, np.where(low < bottom, low, price))
    price = np.where((counts[row] == 3) & (j == 1), middle, price)
    price = np.where(j == 0, bars["open"][row], price)
    return np.where(j == counts[row] - 1, bars["close"][row], price)
