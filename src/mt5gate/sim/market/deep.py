"""The deep past: M1 bars from ``deep_history_from`` up to the in-memory history, made lazily.

A real demo server answers ``copy_rates_*`` and ``copy_ticks_*`` for dates years back (the
official examples ask for 2020-01-10). Holding years of M1 bars per symbol is out of the
question, so the deep past is synthesised one *chunk* (a UTC day of M1 bars) at a time when a
query touches it, and kept in a bounded LRU cache shared by every symbol.

Price path. Each day ``k`` has a total log return ``D_k = z_k * sigma * sqrt(n_k)`` (``n_k``
its session minutes, ``z_k`` a normal number that is a pure hash of ``(seed, symbol, k)``). The
deep history is *anchored* at the open of the series' first in-memory M1 bar (time ``t0``,
price ``p0``): the log price at the end of day ``k`` is ``log p0 - sum(D_j, j > k)``, a cumulative
sum over at most a few thousand days, computed once. Inside a day the minute steps come from a
generator seeded with ``(seed, symbol, k)`` and are shifted so that they add up to ``D_k``
exactly (a random-walk bridge). So every chunk is a pure function of ``(seed, symbol, k,
anchor)``, any chunk can be made alone, neighbouring chunks join (a day's first open is the
previous day's last close), and the last deep bar closes at ``p0``, where the in-memory bars
begin. The anchor depends on the simulator's start time (the in-memory history runs backwards
from the start price): two simulators started at the same time with the same seed agree bar for
bar; started at different times, the deep past has the same shape at a different level.

Ticks of deep bars come from :func:`~mt5gate.sim.market.history.synth_ticks`, like those of the
30-day history: open first, close last, high and low once each.

Memory: a chunk is at most 1440 bars of 60 bytes (86,400 bytes; a forex weekday has 1435, a
weekend day 0). The cache holds ``cache_chunks`` chunks (default 128), so at most ~11 MB
whatever is walked (measured full after walking a year of EURUSD: 7.9 MB;
``python -m bench.sim_bench``); plus, per symbol touched, one float per day back to the depth
(~48 KB for 2010 to 2026).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mt5gate.constants import Timeframe, timeframe_seconds
from mt5gate.sim.market.bars import aggregate, bucket_start
from mt5gate.sim.market.dtypes import RATES_DTYPE, RateArray, TickArray, empty_rates, empty_ticks
from mt5gate.sim.market.history import bars_from_path, minute_sigma, synth_ticks
from mt5gate.sim.market.rand import STREAM_DEEP, hash_uniform, make_rng, symbol_key
from mt5gate.sim.market.sessions import SessionMask
from mt5gate.sim.symbols import SymbolSpec

__all__ = [
    "DEFAULT_CACHE_CHUNKS",
    "DEFAULT_DEEP_FROM_S",
    "DEFAULT_FRAME_CACHE_BYTES",
    "ChunkCache",
    "DeepHistory",
    "join",
]

DEFAULT_DEEP_FROM_S = 1_262_304_000  # 2010-01-01 00:00 server time
DEFAULT_CACHE_CHUNKS = 128
DEFAULT_FRAME_CACHE_BYTES = 16_000_000
_DAY = 86_400
_RAW = np.dtype((np.void, RATES_DTYPE.itemsize))  # a bar row as opaque bytes


class ChunkCache:
    """A bounded LRU of deep-history chunks, keyed by ``(symbol, anchor, seed, day[, frame])``:
    at most ``max_chunks`` of them and, when given, ``max_bytes`` bytes of rows."""

    def __init__(
        self, max_chunks: int = DEFAULT_CACHE_CHUNKS, max_bytes: int | None = None
    ) -> None:
        if max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_chunks = max_chunks
        self.max_bytes = max_bytes
        self._chunks: OrderedDict[tuple[Any, ...], RateArray] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached bars (the measured bound of the docstring)."""
        return self._bytes

    def clear(self) -> None:
        """Forget every chunk (they are made again on demand, identical)."""
        self._chunks.clear()
        self._bytes = 0

    def get(self, key: tuple[Any, ...]) -> RateArray | None:
        """The chunk under ``key`` (marked recently used), None if absent."""
        chunk = self._chunks.get(key)
        if chunk is not None:
            self._chunks.move_to_end(key)
        return chunk

    def put(self, key: tuple[Any, ...], chunk: RateArray) -> None:
        """Store a chunk, evicting the least recently used beyond the bounds."""
        old = self._chunks.pop(key, None)
        self._bytes += chunk.nbytes - (0 if old is None else old.nbytes)
        self._chunks[key] = chunk
        while len(self._chunks) > self.max_chunks or (
            self.max_bytes is not None and self._bytes > self.max_bytes and len(self._chunks) > 1
        ):
            _, evicted = self._chunks.popitem(last=False)
            self._bytes -= evicted.nbytes


class DeepHistory:
    """The lazily made M1 bars of one symbol in ``[from_s, t0)`` (see the module docstring)."""

    def __init__(
        self,
        spec: SymbolSpec,
        mask: SessionMask,
        seed: int,
        from_s: int,
        anchor: tuple[int, float],
        cache: ChunkCache,
        frames: ChunkCache,
    ) -> None:
        self.spec = spec
        self._mask = mask
        self._seed = seed
        self.t0, self.p0 = anchor
        self.from_s = min(from_s - from_s % 60, self.t0)
        self._cache = cache
        self._frames = frames
        self._key = symbol_key(spec.name) ^ (seed * 0x9E3779B97F4A7C15 & (2**63 - 1))
        self._first_day = self.from_s // _DAY
        self._ends: NDArray[np.float64] | None = None  # log close at the end of each day
        self._first_open = 0.0  # log open of the first day, set with ``_ends``

    @property
    def empty(self) -> bool:
        """No deep past (the depth is not before the in-memory history)."""
        return self.from_s >= self.t0

    def _day_minutes(self, day: int) -> NDArray[np.int64]:
        """Epoch minutes of ``day`` inside ``[from_s, t0)`` that are in session."""
        lo, hi = max(day * _DAY, self.from_s) // 60, min((day + 1) * _DAY, self.t0) // 60
        minutes = np.arange(lo, max(lo, hi), dtype=np.int64)
        return minutes[self._mask.open_minutes(minutes)]

    def _day_ends(self) -> NDArray[np.float64]:
        """Log close at the end of each day from the first one to the anchor's day."""
        if self._ends is None:
            days = np.arange(self._first_day, (self.t0 - 1) // _DAY + 1, dtype=np.int64)
            n = self._weekday_counts()[days % 7]
            n[0] = len(self._day_minutes(int(days[0])))  # the edge days may be partial
            n[-1] = len(self._day_minutes(int(days[-1])))
            step = _normal(self._key, days) * minute_sigma(self.spec) * np.sqrt(n)
            after = np.concatenate([np.cumsum(step[:0:-1])[::-1], [0.0]])
            self._ends = np.log(self.p0) - after
            self._first_open = float(self._ends[0] - step[0])
        return self._ends

    def _weekday_counts(self) -> NDArray[np.int64]:
        """Session minutes of each epoch day modulo 7 (row 0 is a Thursday, like day 0)."""
        minutes = np.arange(7 * 1440, dtype=np.int64)
        open_ = self._mask.open_minutes(minutes).reshape(7, 1440)
        counts: NDArray[np.int64] = open_.sum(axis=1).astype(np.int64)
        return counts

    def chunk(self, day: int) -> RateArray:
        """The M1 bars of one UTC day (cached)."""
        key = (self.spec.name, self.t0, self._seed, day)
        bars = self._cache.get(key)
        if bars is None:
            bars = self._make_chunk(day)
            self._cache.put(key, bars)
        return bars

    def _make_chunk(self, day: int) -> RateArray:
        minutes = self._day_minutes(day)
        n = len(minutes)
        if n == 0:
            return empty_rates()
        ends, i = self._day_ends(), day - self._first_day
        start = float(ends[i - 1]) if i > 0 else self._first_open
        rng = make_rng(self._seed, self.spec.name, STREAM_DEEP, day)
        steps = rng.standard_normal(n) * minute_sigma(self.spec)
        steps += (ends[i] - start - steps.sum()) / n  # the day's steps add up to its return
        log_close = start + np.cumsum(steps)
        log_close[-1] = ends[i]
        log_open = np.concatenate([[start], log_close[:-1]])
        return bars_from_path(self.spec, minutes, log_open, log_close, rng)

    def m1(self, lo_s: int, hi_s: int) -> RateArray:
        """Deep M1 bars with ``lo_s <= time < hi_s``."""
        lo_s, hi_s = max(lo_s, self.from_s), min(hi_s, self.t0)
        if lo_s >= hi_s:
            return empty_rates()
        days = range(lo_s // _DAY, (hi_s - 1) // _DAY + 1)
        parts = [self._slice(d, lo_s, hi_s).view(_RAW) for d in days]
        return np.concatenate(parts).view(RATES_DTYPE)  # raw rows: a plain copy, ~2x faster

    def _slice(self, day: int, lo_s: int, hi_s: int) -> RateArray:
        """The day's bars with ``lo_s <= time < hi_s`` (a view: slicing, not masking, since
        boolean indexing of structured rows was most of a warm month's read)."""
        bars = self.chunk(day)
        times = bars["time"]
        a = int(np.searchsorted(times, lo_s, side="left")) if lo_s > day * _DAY else 0
        b = int(np.searchsorted(times, hi_s, side="left")) if hi_s < (day + 1) * _DAY else None
        return bars[a:b]

    def min_bars(self, timeframe: int, lo_s: int, hi_s: int) -> int:
        """A lower bound on the bars :meth:`rates` returns, from the weekly session minutes
        alone, so a range far beyond ``maxbars`` fails before any day is made."""
        span = min(hi_s, self.t0) - max(lo_s, self.from_s)
        weeks = max(0, span) // (7 * _DAY)
        open_minutes = weeks * int(self._weekday_counts().sum())
        return open_minutes * 60 // timeframe_seconds(timeframe)

    def rates(self, timeframe: int, lo_s: int, hi_s: int) -> RateArray:
        """Deep bars of ``timeframe`` built from the M1 bars with ``lo_s <= time < hi_s``.

        Every intraday timeframe and D1 divides a UTC day, so their bars are aggregated a day
        at a time and the whole days are kept in the frame cache (a D1 day is one row): years
        of H1 or D1 bars are made once, not from every M1 minute again each time. W1 and MN1
        aggregate D1 bars (first open, last close, extremes, summed volumes, least spread:
        the same as from M1)."""
        if timeframe == int(Timeframe.M1):
            return self.m1(lo_s, hi_s)
        base = timeframe if timeframe >> 14 <= 1 else int(Timeframe.D1)
        rows = self._day_frames(base, max(lo_s, self.from_s), min(hi_s, self.t0))
        return rows if base == timeframe else aggregate(rows, timeframe)[0]

    def _day_frames(self, base: int, lo_s: int, hi_s: int) -> RateArray:
        """Bars of ``base`` (a day divides into them) from the M1 bars in ``[lo_s, hi_s)``."""
        if lo_s >= hi_s:
            return empty_rates()
        parts = []
        for day in range(lo_s // _DAY, (hi_s - 1) // _DAY + 1):
            if lo_s <= day * _DAY and (day + 1) * _DAY <= hi_s:
                parts.append(self._day_frame(day, base).view(_RAW))
            else:  # an edge day cut by the range: not cached
                parts.append(aggregate(self._slice(day, lo_s, hi_s), base)[0].view(_RAW))
        return np.concatenate(parts).view(RATES_DTYPE)

    def _day_frame(self, day: int, base: int) -> RateArray:
        """One whole day's bars of ``base`` (cached)."""
        key = (self.spec.name, self.t0, self._seed, day, base)
        bars = self._frames.get(key)
        if bars is None:
            bars = aggregate(self.chunk(day), base)[0]
            self._frames.put(key, bars)
        return bars

    def last_rates(self, timeframe: int, end_s: int, count: int) -> RateArray:
        """At least ``count`` deep bars of ``timeframe`` (if there are) before ``end_s``, the
        newest ones; walks back in growing steps so a short request makes few chunks."""
        span = max(_DAY, count * timeframe_seconds(timeframe) * 3 // 2)
        while True:
            lo = max(self.from_s, int(bucket_start(np.array([end_s - span]), timeframe)[0]))
            bars = self.rates(timeframe, lo, end_s)
            if len(bars) > count or lo <= self.from_s:
                return bars
            span *= 2

    def max_ticks(self, lo_s: int, hi_s: int) -> int:
        """About how many ticks the deep minutes in ``[lo_s, hi_s)`` hold (every minute counted
        as open, ``mean_tick_interval_ms`` apart): checked before a range is synthesised."""
        span = min(hi_s, self.t0) - max(lo_s, self.from_s)
        return max(0, span) * 1000 // max(1, self.spec.mean_tick_interval_ms)

    def ticks_range(self, from_ms: int, to_ms: int) -> TickArray:
        """Ticks of the deep bars with ``from_ms <= time_msc <= to_ms``."""
        bars = self.m1(from_ms // 60_000 * 60, to_ms // 1000 + 1)
        ticks = self._ticks(bars)
        keep: TickArray = ticks[(ticks["time_msc"] >= from_ms) & (ticks["time_msc"] <= to_ms)]
        return keep

    def ticks_from(self, from_ms: int, count: int) -> TickArray:
        """The first ``count`` deep ticks from ``from_ms`` on (fewer if the deep past ends),
        made a day at a time so a short request makes few chunks."""
        out: list[TickArray] = []
        got, lo = 0, max(from_ms // 60_000 * 60, self.from_s)
        for day in range(lo // _DAY, (self.t0 - 1) // _DAY + 1):
            if got >= count:
                break
            ticks = self._ticks(self.m1(max(lo, day * _DAY), (day + 1) * _DAY))
            ticks = ticks[ticks["time_msc"] >= from_ms][: count - got]
            out.append(ticks)
            got += len(ticks)
        return np.concatenate(out) if out else empty_ticks()

    def _ticks(self, bars: RateArray) -> TickArray:
        """The ticks of deep bars: the same synthesis as the in-memory history's."""
        spec = self.spec
        return synth_ticks(bars, symbol_key(spec.name), spec.digits, spec.point)


def join(older: RateArray, newer: RateArray) -> RateArray:
    """Two bar arrays in time order; a bar of the same time in both (a bucket split by the
    anchor) becomes one: first open, last close, extremes, summed volumes."""
    if len(older) == 0 or len(newer) == 0:
        return newer if len(older) == 0 else older
    if older["time"][-1] != newer["time"][0]:
        return np.concatenate([older, newer])
    out = np.concatenate([older, newer[1:]])
    last, new = out[len(older) - 1], newer[0]
    last["high"], last["low"] = max(last["high"], new["high"]), min(last["low"], new["low"])
    last["close"], last["spread"] = new["close"], min(last["spread"], new["spread"])
    last["tick_volume"] += new["tick_volume"]
    last["real_volume"] += new["real_volume"]
    return out


def _normal(key: int, days: NDArray[np.int64]) -> NDArray[np.float64]:
    """Standard normal numbers that are pure functions of ``(key, day)`` (Box-Muller)."""
    zero = np.zeros(len(days), dtype=np.int64)
    u1 = 1.0 - hash_uniform(key, days, zero, 11)  # (0, 1]
    u2 = hash_uniform(key, days, zero, 12)
    z: NDArray[np.float64] = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return z
