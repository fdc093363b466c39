"""``SymbolInfo``: the spec's static fields plus the live ones from the symbol's data.

Daily fields (bidhigh, bidlow, askhigh, asklow, lasthigh, lastlow, volumehigh, volumelow,
session_open) cover the server day of the latest tick, 00:00 to now. ``session_close`` is the
close of the previous trading day and ``price_change`` the bid's change against it, in percent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mt5gate.records import SymbolInfo
from mt5gate.sim.market.dtypes import RateArray, TickArray
from mt5gate.sim.market.series import Series
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["DayStats", "TickValues", "build_symbol_info", "day_stats", "day_stats_of"]

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class DayStats:
    """Highs, lows and reference prices of the current server day."""

    bidhigh: float = 0.0
    bidlow: float = 0.0
    askhigh: float = 0.0
    asklow: float = 0.0
    lasthigh: float = 0.0
    lastlow: float = 0.0
    volumehigh: float = 0.0
    volumelow: float = 0.0
    session_open: float = 0.0
    session_close: float = 0.0


@dataclass(frozen=True, slots=True)
class TickValues:
    """Value of one tick size move for one lot, in the account currency."""

    value: float = 0.0
    profit: float = 0.0
    loss: float = 0.0


def day_stats(series: Series, now_s: int) -> DayStats:
    """Statistics of the server day containing ``now_s``, from history bars and live ticks."""
    return day_stats_of(series.spec, series.m1.view(), series.n_hist, series.ticks.view(), now_s)


def day_stats_of(
    spec: SymbolSpec, m1: RateArray, n_hist: int, live: TickArray, now_s: int
) -> DayStats:
    """:func:`day_stats` from M1 bars whose first ``n_hist`` are history and the live ticks
    (``m1`` needs only the day's bars and the one before them)."""
    day = now_s - now_s % _DAY
    first = int(np.searchsorted(m1["time"], day, side="left"))
    if first == len(m1):
        return DayStats()
    live = live[int(np.searchsorted(live["time_msc"], day * 1000, side="left")) :]
    ask_high, ask_low = _ask_range(m1[first : max(first, n_hist)], live, spec)
    return DayStats(
        bidhigh=float(m1["high"][first:].max()),
        bidlow=float(m1["low"][first:].min()),
        askhigh=ask_high,
        asklow=ask_low,
        lasthigh=_extreme(live["last"], np.max),
        lastlow=_extreme(live["last"], np.min),
        volumehigh=_extreme(live["volume_real"], np.max),
        volumelow=_extreme(live["volume_real"], np.min),
        session_open=float(m1["open"][first]),
        session_close=float(m1["close"][first - 1]) if first else 0.0,
    )


def _extreme(values: NDArray[np.float64], pick: Callable[[NDArray[np.float64]], Any]) -> float:
    """``pick`` (max or min) of the values, 0.0 when there are none."""
    return float(pick(values)) if len(values) else 0.0


def _ask_range(hist: RateArray, live: TickArray, spec: SymbolSpec) -> tuple[float, float]:
    """Highest and lowest ask: history asks are bid + the bar's spread, live ones as quoted."""
    spread = hist["spread"] * spec.point
    highs = np.concatenate([hist["high"] + spread, live["ask"]])
    lows = np.concatenate([hist["low"] + spread, live["ask"]])
    return round(float(highs.max()), spec.digits), round(float(lows.min()), spec.digits)


def build_symbol_info(
    spec: SymbolSpec,
    tick: TickArray | None,
    stats: DayStats,
    values: TickValues,
    *,
    select: bool,
    visible: bool,
) -> SymbolInfo:
    """All 96 fields in MT5's order (``tests/data/surface.json``)."""
    t = tick[0] if tick is not None else None
    bid = float(t["bid"]) if t is not None else 0.0
    ask = float(t["ask"]) if t is not None else 0.0
    last = float(t["last"]) if t is not None else 0.0
    volume = int(t["volume"]) if t is not None else 0
    change = (bid - stats.session_close) / stats.session_close * 100 if stats.session_close else 0.0
    return SymbolInfo((
        spec.custom, int(spec.chart_mode), select, visible, 0, 0, 0,
        volume, int(stats.volumehigh), int(stats.volumelow),
        int(t["time"]) if t is not None else 0,
        spec.digits, round((ask - bid) / spec.point) if t is not None else 0,
        spec.spread_float, spec.ticks_bookdepth, int(spec.trade_calc_mode), int(spec.trade_mode),
        0, 0, spec.trade_stops_level, spec.trade_freeze_level, int(spec.trade_exemode),
        int(spec.swap_mode), int(spec.swap_rollover3days), spec.margin_hedged_use_leg,
        int(spec.expiration_mode), int(spec.filling_mode), int(spec.order_mode),
        int(spec.order_gtc_mode), 0, 0,
        bid, stats.bidhigh, stats.bidlow, ask, stats.askhigh, stats.asklow,
        last, stats.lasthigh, stats.lastlow,
        float(volume), stats.volumehigh, stats.volumelow, 0.0,
        spec.point, values.value, values.profit, values.loss, spec.tick_size,
        spec.trade_contract_size, 0.0, 0.0, 0.0,
        spec.volume_min, spec.volume_max, spec.volume_step, spec.volume_limit,
        spec.swap_long, spec.swap_short, spec.margin_initial, spec.margin_maintenance,
        0.0, 0.0, 0.0, 0.0, 0.0,
        stats.session_open, stats.session_close, 0.0, 0.0, 0.0, 0.0,
        spec.margin_hedged, round(change, 4), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        spec.basis, spec.category, spec.currency_base, spec.currency_profit,
        spec.currency_margin, spec.bank, spec.description, spec.exchange, spec.formula,
        spec.isin, spec.name, spec.page, spec.path,
    ))  # fmt: skip
