"""Bars of every timeframe, aggregated from M1 bars (which come from ticks or history).

Alignment (server time): minute frames on multiples of N minutes from midnight, hour frames on
multiples of N hours from midnight, D1 at 00:00, W1 on Sunday 00:00, MN1 on the 1st. All
aggregation is vectorised with ``ufunc.reduceat`` over runs of equal bucket start.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mt5gate.constants import Timeframe
from mt5gate.sim.market.dtypes import RATES_DTYPE, GrowArray, RateArray, TickArray, empty_rates

__all__ = ["VALID_TIMEFRAMES", "BarCache", "aggregate", "bucket_start", "merge_m1", "ticks_to_m1"]

VALID_TIMEFRAMES = frozenset(int(tf) for tf in Timeframe)
_DAY = 86_400
_EPOCH_WEEKDAY = 4  # 1970-01-01 was a Thursday; Sunday = 0


def bucket_start(times: NDArray[np.int64], timeframe: int) -> NDArray[np.int64]:
    """Open time of the ``timeframe`` bar containing each time (epoch seconds)."""
    unit, n = timeframe >> 14, timeframe & 0x3FFF
    if unit == 0:
        return times - times % (60 * n)
    if unit == 1:
        return times - times % (3600 * n)
    if unit == 2:
        days = times // _DAY
        return (days - (days + _EPOCH_WEEKDAY) % 7) * _DAY
    months = times.astype("datetime64[s]").astype("datetime64[M]")
    return months.astype("datetime64[s]").astype(np.int64)


def _runs(keys: NDArray[np.int64]) -> NDArray[np.intp]:
    """Start index of each run of equal keys (keys are sorted)."""
    return np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1]).astype(np.intp)


def aggregate(m1: RateArray, timeframe: int) -> tuple[RateArray, NDArray[np.intp]]:
    """Bars of ``timeframe`` built from ``m1``, and the M1 index where each one starts."""
    if len(m1) == 0:
        return empty_rates(), np.zeros(0, dtype=np.intp)
    keys = bucket_start(m1["time"], timeframe)
    starts = _runs(keys)
    ends = np.concatenate([starts[1:], [len(m1)]]) - 1
    out = empty_rates(len(starts))
    out["time"], out["open"], out["close"] = keys[starts], m1["open"][starts], m1["close"][ends]
    out["high"] = np.maximum.reduceat(m1["high"], starts)
    out["low"] = np.minimum.reduceat(m1["low"], starts)
    out["tick_volume"] = np.add.reduceat(m1["tick_volume"], starts)
    out["spread"] = np.minimum.reduceat(m1["spread"], starts)
    out["real_volume"] = np.add.reduceat(m1["real_volume"], starts)
    return out, starts


def ticks_to_m1(ticks: TickArray, point: float) -> RateArray:
    """M1 bars of ticks (bid prices; spread = smallest spread in points; volume summed)."""
    if len(ticks) == 0:
        return empty_rates()
    keys = ticks["time"] - ticks["time"] % 60
    starts = _runs(keys)
    ends = np.concatenate([starts[1:], [len(ticks)]]) - 1
    bid = ticks["bid"]
    spread = np.rint((ticks["ask"] - bid) / point).astype(np.int32)
    out = empty_rates(len(starts))
    out["time"], out["open"], out["close"] = keys[starts], bid[starts], bid[ends]
    out["high"] = np.maximum.reduceat(bid, starts)
    out["low"] = np.minimum.reduceat(bid, starts)
    out["tick_volume"] = np.diff(np.concatenate([starts, [len(ticks)]]))
    out["spread"] = np.minimum.reduceat(spread, starts)
    out["real_volume"] = np.add.reduceat(ticks["volume"], starts)
    return out


def merge_m1(store: GrowArray, fresh: RateArray) -> None:
    """Append new M1 bars, folding the first into the store's last bar if it is the same minute."""
    if len(fresh) == 0:
        return
    have = store.view()
    if len(have) and have["time"][-1] == fresh["time"][0]:
        last, new = have[-1:].copy(), fresh[0]
        last["high"] = max(last["high"][0], new["high"])
        last["low"] = min(last["low"][0], new["low"])
        last["close"] = new["close"]
        last["tick_volume"] += new["tick_volume"]
        last["spread"] = min(last["spread"][0], new["spread"])
        last["real_volume"] += new["real_volume"]
        have[-1] = last[0]
        fresh = fresh[1:]
    store.extend(fresh)


class BarCache:
    """Bars of one timeframe kept up to date incrementally from a growing M1 series.

    Invariant: ``_bars[:-1]`` are complete (their M1 bars can no longer change); the last bar is
    rebuilt from ``m1[_m1_from:]`` whenever it is asked for. M1 bars only ever change at the
    end, so the work per query is proportional to the M1 bars added since the last one.
    """

    __slots__ = ("_bars", "_m1_from", "_n_frozen", "_timeframe")

    def __init__(self, timeframe: int, prefix: RateArray | None = None, m1_from: int = 0) -> None:
        self._timeframe = timeframe
        self._bars = GrowArray(RATES_DTYPE, 1024)
        if prefix is not None:
            self._bars.extend(prefix)
        self._n_frozen = len(self._bars)
        self._m1_from = m1_from

    def bars(self, m1: RateArray) -> RateArray:
        """Every bar of the timeframe, the last one still forming."""
        tail, starts = aggregate(m1[self._m1_from :], self._timeframe)
        if len(tail) == 0:
            return self._bars.view()
        self._bars.truncate(self._n_frozen)
        self._bars.extend(tail)
        self._n_frozen += len(tail) - 1
        self._m1_from += int(starts[-1])
        return self._bars.view()
