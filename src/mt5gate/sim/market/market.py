"""The market-data engine: live ticks for every symbol, history, bars, book, conversion.

Time comes only from the injected clock. :meth:`Market.sync` generates every tick up to
``clock.now_ms()``, stores it, then hands it to listeners in chronological batches: one batch per
symbol and server minute, minutes in time order, symbols in catalogue order within a minute.
Query methods sync first, so they always see the present (re-entrant calls from a listener do
not sync again).

Retention (``live_ticks_retention_s``): once a symbol's stored live ticks span twice the window
plus a little, the ticks older than the window (cut at a minute boundary) are dropped; their M1
bars stay, and reads of those minutes get ticks synthesised from the bars, as for history. The
cut never passes the start of the server day of the newest tick, because ``symbol_info``'s daily
statistics read that day's ticks. Symbols replaying a tick CSV keep every tick (the recording is
in memory anyway, and it cannot be regenerated).

The deep past (``deep_history_from_s``, default 2010-01-01): bars and ticks before the in-memory
history are synthesised a day at a time when a query reaches them, and joined to the in-memory
bars at their first bar (``deep.py``); ``deep_cache_chunks`` bounds the days kept. A
``copy_ticks_range`` whose deep part would exceed ``DEEP_TICKS_MAX`` ticks fails with (-3, out of
memory) before making any (a range from 1970 would otherwise try to build GBs of rows).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from mt5gate.constants import ResultCode, TickFlag, Timeframe, timeframe_seconds
from mt5gate.records import BookInfo, SymbolInfo, Tick
from mt5gate.sim.clock import Clock
from mt5gate.sim.errors import CALL_FAILED, INVALID_PARAMS, NOT_FOUND, SimError, result_error
from mt5gate.sim.market import copying
from mt5gate.sim.market.book import build_book
from mt5gate.sim.market.convert import Converter
from mt5gate.sim.market.csvio import read_bars_csv, read_ticks_csv
from mt5gate.sim.market.deep import (
    DEFAULT_CACHE_CHUNKS,
    DEFAULT_DEEP_FROM_S,
    DEFAULT_FRAME_CACHE_BYTES,
    ChunkCache,
    DeepHistory,
    join,
)
from mt5gate.sim.market.dtypes import RATES_DTYPE, TICKS_DTYPE, RateArray, TickArray, empty_ticks
from mt5gate.sim.market.feed import (
    Feed,
    RandomFeed,
    ReplayFeed,
    arrival_mean_ms,
    decode_array,
    encode_array,
)
from mt5gate.sim.market.history import synth_bars, synth_ticks
from mt5gate.sim.market.info import DayStats, TickValues, build_symbol_info, day_stats_of
from mt5gate.sim.market.series import Series
from mt5gate.sim.market.sessions import SessionMask, TradingNow
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Listener", "Market"]

Listener = Callable[[str, TickArray], None]

_DAY_MS = 86_400_000
_REGENERATE_STEP_MS = 7 * _DAY_MS
DEEP_TICKS_MAX = 50_000_000  # a deep copy_ticks_range beyond this (~3 GB of rows) fails (-3)
_TRADE_ONLY = int(TickFlag.LAST | TickFlag.VOLUME)  # COPY_TICKS_TRADE: no deep tick matches


class Market:
    """Quotes and market data of every symbol the simulated server offers."""

    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        clock: Clock,
        *,
        seed: int = 1,
        history_days: int = 30,
        live_ticks_retention_s: int | None = 86_400,
        deep_history_from_s: int | None = DEFAULT_DEEP_FROM_S,
        deep_cache_chunks: int = DEFAULT_CACHE_CHUNKS,
        deep_frame_cache_bytes: int = DEFAULT_FRAME_CACHE_BYTES,
        deep_download_s: float | None = None,
        ticks_per_s: float | None = None,
    ) -> None:
        self._specs = tuple(specs)
        self._by_name = {s.name: s for s in self._specs}
        self._clock = clock
        self._seed = seed
        self._arrival_means = _arrival_means(self._specs, ticks_per_s)
        self._history_days = history_days
        retention = live_ticks_retention_s
        self._retention_ms = None if retention is None else retention * 1000
        self._masks = {s.name: SessionMask(s.sessions) for s in self._specs}
        self._listeners: list[Listener] = []
        self._syncing = False
        self._start(clock.now_ms())
        self._deep_from_s = deep_history_from_s
        self.deep_cache = ChunkCache(deep_cache_chunks)
        self.deep_frames = ChunkCache(2**31, max_bytes=deep_frame_cache_bytes)
        self._deep: dict[str, DeepHistory] = {}
        self._download_ms = None if deep_download_s is None else int(deep_download_s * 1000)
        self._downloaded_at: dict[str, int] = {}  # symbol -> when its deep past is "on disk"
        self._converter = Converter(self._specs, self._quote)

    def _start(self, start_ms: int) -> None:
        """Begin the seeded market at ``start_ms``: the history ends at the start of its minute,
        and the random walks start there and fill the minute up to ``start_ms`` with ticks that
        no listener hears of (they are the past). A terminal has ticks up to now: without them
        the newest tick at start was the history's last, up to two minutes old, and health
        called a fresh feed stale."""
        self.start_ms = start_ms
        start_s = start_ms // 60_000 * 60
        self._done_ms = start_s * 1000
        self._series = {s.name: Series(s, start_s) for s in self._specs}
        self._day_cache: dict[str, tuple[tuple[int, ...], TickArray | None, DayStats]] = {}
        self._last_days: dict[str, RateArray] = {}  # history's last day, before it is built
        self._history_ticks: dict[str, TickArray | None] = {}  # its last tick, likewise
        self._feeds: dict[str, Feed] = {
            s.name: self._random_feed(s, self._done_ms) for s in self._specs
        }
        self._advance_quietly(start_ms)

    def _advance_quietly(self, until_ms: int) -> None:
        """:meth:`_advance` without telling the listeners (they already saw, or never will)."""
        listeners, self._listeners = self._listeners, []
        try:
            self._advance(until_ms)
        finally:
            self._listeners = listeners

    def _random_feed(self, spec: SymbolSpec, start_ms: int) -> RandomFeed:
        """The seeded random walk of ``spec`` from ``start_ms``, at the market's pace."""
        mean = self._arrival_means.get(spec.name)
        return RandomFeed(spec, self._masks[spec.name], self._seed, start_ms, mean_ms=mean)

    def regenerate(self, start_ms: int, until_ms: int) -> None:
        """Rebuild the market a simulator started at ``start_ms`` had by ``until_ms`` (a market
        that already started then only catches up).

        The history and the random walks are functions of the seed and the start time (not of
        how the clock was stepped), so the same ticks come back; they are not announced to the
        listeners, whose state (the brokers') already saw them. Injected ticks and bars
        (``push_tick``, ``load_ticks_csv``, ``load_bars_csv``) are not part of it.
        """
        if start_ms != self.start_ms:
            self._start(start_ms)
        # a week at a time: months of a real clock's ticks never sit in memory at once
        for step_ms in range(self._done_ms + _REGENERATE_STEP_MS, until_ms, _REGENERATE_STEP_MS):
            self._advance_quietly(step_ms)
        self._advance_quietly(until_ms)

    # -- catalogue -----------------------------------------------------------------------------

    def symbols(self) -> tuple[SymbolSpec, ...]:
        """The specs, in catalogue order."""
        return self._specs

    def spec(self, symbol: str) -> SymbolSpec | None:
        """The spec of ``symbol``, None if unknown."""
        return self._by_name.get(symbol)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(symbol, ticks)`` with every batch of new ticks."""
        self._listeners.append(listener)

    # -- live feed -----------------------------------------------------------------------------

    def sync(self) -> None:
        """Generate, store and announce every tick up to the clock's now (idempotent)."""
        self._advance(self._clock.now_ms())

    def _advance(self, now: int) -> None:
        """Generate, store and announce every tick up to ``now``."""
        if now <= self._done_ms or self._syncing:
            return
        self._syncing = True
        try:
            fresh = {name: feed.ticks_until(now) for name, feed in self._feeds.items()}
            self._done_ms = now
            for name, ticks in fresh.items():
                self._series[name].add_ticks(ticks)
            self._announce(fresh)
            for name, ticks in fresh.items():
                if len(ticks):
                    self._retain(name)
        finally:
            self._syncing = False

    def _retain(self, symbol: str) -> None:
        """Apply the retention window to the symbol's stored ticks (see the module docstring).

        Amortised: a cut happens only when it drops more than a window's worth of time (and,
        while the day rule holds the cut back, at most about twice per server day), so the
        copying it costs stays proportional to the ticks that arrive.
        """
        window = self._retention_ms
        if window is None or not isinstance(self._feeds[symbol], RandomFeed):
            return
        times = self._series[symbol].ticks.view()["time_msc"]
        if len(times) == 0:
            return
        newest = int(times[-1])
        cut = min(newest - window, newest - newest % _DAY_MS)
        cut -= cut % 60_000
        if int(times[0]) < cut - window:
            self._series[symbol].drop_ticks_before(cut)

    def _announce(self, fresh: Mapping[str, TickArray]) -> None:
        """Listeners get minute slices in time order, symbols in catalogue order per minute."""
        busy = {n: t for n, t in fresh.items() if len(t)}
        if not self._listeners or not busy:
            return
        keys = {n: t["time_msc"] // 60_000 for n, t in busy.items()}
        minutes = np.unique(np.concatenate(list(keys.values())))
        bounds = {
            n: (np.searchsorted(k, minutes, "left"), np.searchsorted(k, minutes, "right"))
            for n, k in keys.items()
        }
        for i in range(len(minutes)):
            for name, (lo, hi) in bounds.items():
                if hi[i] > lo[i]:
                    self._notify(name, busy[name][lo[i] : hi[i]])

    def _notify(self, symbol: str, ticks: TickArray) -> None:
        for listener in self._listeners:
            listener(symbol, ticks)

    def push_tick(
        self,
        symbol: str,
        bid: float,
        ask: float | None = None,
        *,
        last: float = 0.0,
        volume: int = 0,
    ) -> Tick:
        """Inject a tick at the clock's now; the random walk continues from its bid."""
        spec, series = self._need(symbol), self._series[symbol]
        self.sync()
        prev = series.last_tick()
        tick = _make_tick(spec, self._clock.now_ms(), bid, ask, last, volume, prev)
        series.add_ticks(tick)
        self._feeds[symbol].moved(tick)
        self._notify(symbol, tick)
        self._retain(symbol)
        return Tick(tick[0].tolist())

    def last_tick(self, symbol: str) -> Tick | None:
        """The latest tick at or before now; None before any tick exists."""
        self._need(symbol)
        self.sync()
        return self._ready(symbol).last_record()

    def ticks_after(self, cursors: Sequence[tuple[str, int, int]], count: int) -> list[TickArray]:
        """For each ``(symbol, time_msc, seen)`` cursor, the first ``count`` stored live ticks
        after it: those stamped later than ``time_msc``, and those stamped ``time_msc`` beyond
        the first ``seen`` of them (several ticks can share a millisecond); one sync for all.
        A cursor before the oldest stored live tick gets the oldest ones (ticks that retention
        dropped are gone)."""
        for symbol, _, _ in cursors:
            self._need(symbol)
        self.sync()
        return [self._after(symbol, at, seen, count) for symbol, at, seen in cursors]

    def _after(self, symbol: str, time_msc: int, seen: int, count: int) -> TickArray:
        """One cursor's ticks; the usual answer, nothing new, costs no array search."""
        series = self._series[symbol]
        newest = series.last_record() if len(series.ticks) else None  # cached; live if any
        if newest is None or newest.time_msc < time_msc:
            return empty_ticks()
        times = series.ticks.view()["time_msc"]
        if newest.time_msc == time_msc and (seen >= len(times) or times[-seen - 1] != time_msc):
            return empty_ticks()  # every tick of the cursor's millisecond was seen
        lo = int(np.searchsorted(times, time_msc, side="left"))
        hi = int(np.searchsorted(times, time_msc, side="right"))
        start = min(lo + max(0, seen), hi)
        found: TickArray = series.ticks.view()[start : start + max(0, count)].copy()
        return found

    def next_tick_ms(self, symbols: Collection[str]) -> int | None:
        """When the next tick of any of ``symbols`` is due (server ms): the earliest pending
        arrival, moved to its session's next opening when it falls while the market is shut;
        None when none of them will tick again (replays that ended, no sessions)."""
        due: list[int] = []
        for symbol in symbols:
            self._need(symbol)
            at = self._feeds[symbol].next_arrival_ms()
            if at is not None and not self._masks[symbol].is_open(at):
                at = self._masks[symbol].next_open(at)
            if at is not None:
                due.append(at)
        return min(due, default=None)

    def is_open(self, symbol: str, server_ms: int | None = None) -> bool:
        """Whether ``server_ms`` (default now) lies in one of the symbol's sessions."""
        self._need(symbol)
        when = self._clock.now_ms() if server_ms is None else server_ms
        return self._masks[symbol].is_open(when)

    def next_open(self, symbol: str, server_ms: int | None = None) -> int | None:
        """When ``symbol`` next trades at or after ``server_ms`` (default now): that time while
        it is open; None for a symbol whose sessions are empty."""
        self._need(symbol)
        when = self._clock.now_ms() if server_ms is None else server_ms
        return self._masks[symbol].next_open(when)

    def trading_now(self, server_ms: int | None = None) -> TradingNow:
        """Which symbols trade at ``server_ms`` (default now) and when the others open: the
        answer to "what can I trade now?" (``mt5gate serve`` says it on start)."""
        when = self._clock.now_ms() if server_ms is None else server_ms
        opens = {s.name: self._masks[s.name].next_open(when) for s in self._specs}
        return TradingNow(
            when,
            tuple(name for name, at in opens.items() if at == when),
            MappingProxyType({name: at for name, at in opens.items() if at != when}),
        )

    # -- quotes, conversion, info --------------------------------------------------------------

    def _quote(self, symbol: str) -> tuple[float, float] | None:
        tick = self._newest_tick(symbol)
        return None if tick is None else (float(tick["bid"][0]), float(tick["ask"][0]))

    def convert(self, amount: float, from_ccy: str, to_ccy: str, *, worse: bool = False) -> float:
        """``amount`` of ``from_ccy`` in ``to_ccy`` at current quotes (see ``convert.py``)."""
        self.sync()
        return amount * self._converter.rate(from_ccy, to_ccy, worse=worse)

    def symbol_info(
        self, symbol: str, *, select: bool, visible: bool, account_currency: str
    ) -> SymbolInfo:
        """All 96 SymbolInfo fields; (-4) for an unknown name."""
        spec = self._by_name.get(symbol)
        if spec is None:
            raise NOT_FOUND()
        self.sync()
        tick, stats = self._day(symbol)
        values = self._tick_values(spec, account_currency)
        return build_symbol_info(spec, tick, stats, values, select=select, visible=visible)

    def symbol_infos(
        self, symbols: Sequence[str], *, selected: Collection[str], account_currency: str
    ) -> tuple[SymbolInfo, ...]:
        """:meth:`symbol_info` of several symbols at one instant: one sync for all of them (on
        a real clock each call would otherwise advance every symbol's feed again)."""
        self.sync()
        syncing, self._syncing = self._syncing, True  # the same switch a listener's calls see
        try:
            return tuple(
                self.symbol_info(
                    name,
                    select=name in selected,
                    visible=name in selected,
                    account_currency=account_currency,
                )
                for name in symbols
            )
        finally:
            self._syncing = syncing

    def _day(self, symbol: str) -> tuple[TickArray | None, DayStats]:
        """The last tick and the day's statistics, recomputed only when the series grew (they
        scan the day's bars and ticks, which dominated symbol_info's cost)."""
        series = self._series[symbol]
        key = (id(series), series.version)
        cached = self._day_cache.get(symbol)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        tick = self._newest_tick(symbol)
        now_s = int(tick["time"][0]) if tick is not None else 0
        m1, n_hist = self._day_bars(symbol, now_s)
        stats = day_stats_of(series.spec, m1, n_hist, series.ticks.view(), now_s)
        self._day_cache[symbol] = (key, tick, stats)
        return tick, stats

    def _last_day(self, symbol: str) -> RateArray:
        """The history's bars of its last server day and the bar before (built once)."""
        bars = self._last_days.get(symbol)
        if bars is None:
            series = self._series[symbol]
            bars = synth_bars(
                series.spec,
                self._masks[symbol],
                self._seed,
                series.hist_end_s,
                self._history_days,
                last_day=True,
            )
            self._last_days[symbol] = bars
        return bars

    def _day_bars(self, symbol: str, now_s: int) -> tuple[RateArray, int]:
        """M1 bars for the statistics of the day of ``now_s`` (the newest tick's) and how many
        of them are history.

        Once the history is built, all of it. Before that, the history's last day (every live
        tick is newer, so the newest day is that one or later) and the live bars from the one
        before that day on: the same statistics without 30 days of bars per symbol
        (``symbols_get`` at start-up).
        """
        series = self._series[symbol]
        if series.history_ready:
            return series.m1.view(), series.n_hist
        last_day = self._last_day(symbol)
        live = series.m1.view()
        cut = int(np.searchsorted(live["time"], now_s - now_s % 86_400, side="left")) - 1
        return np.concatenate([last_day, live[max(0, cut) :]]), len(last_day)

    def _newest_tick(self, symbol: str) -> TickArray | None:
        """:meth:`Series.last_tick`, without building the history for it: before any live
        tick, the last tick of the history's last bar."""
        series = self._series[symbol]
        if series.history_ready or len(series.ticks):
            return series.last_tick()
        if symbol not in self._history_ticks:
            bars, spec = self._last_day(symbol)[-1:], series.spec
            tick = synth_ticks(bars, series.key, spec.digits, spec.point)[-1:]
            self._history_ticks[symbol] = tick if len(tick) else None
        return self._history_ticks[symbol]

    def _tick_values(self, spec: SymbolSpec, account_currency: str) -> TickValues:
        """Money per tick-size move of one lot, converted; zeros when no conversion exists."""
        per_tick = spec.tick_size * spec.trade_contract_size
        try:
            profit = per_tick * self._converter.rate(spec.currency_profit, account_currency)
            loss = per_tick * self._converter.rate(
                spec.currency_profit, account_currency, worse=True
            )
        except SimError:  # no conversion path, or no quote yet
            return TickValues()
        return TickValues(value=profit, profit=profit, loss=loss)

    def book(self, symbol: str) -> tuple[BookInfo, ...]:
        """Depth of market around the current quote; () before any tick."""
        spec = self._need(symbol)
        self.sync()
        series = self._ready(symbol)
        tick = series.last_tick()
        if tick is None:
            return ()
        t = tick[0]
        return build_book(spec, series.key, float(t["bid"]), float(t["ask"]), int(t["time_msc"]))

    # -- history -------------------------------------------------------------------------------

    def _need(self, symbol: str) -> SymbolSpec:
        spec = self._by_name.get(symbol)
        if spec is None:
            raise CALL_FAILED()
        return spec

    def _ready(self, symbol: str) -> Series:
        """The symbol's series with its history built (lazily, on first need)."""
        series = self._series[symbol]
        if not series.history_ready:
            bars = synth_bars(
                series.spec, self._masks[symbol], self._seed, series.hist_end_s, self._history_days
            )
            series.set_history(bars)
        return series

    def _bars(self, symbol: str, timeframe: int) -> RateArray:
        self._need(symbol)
        copying.check_timeframe(timeframe)
        self.sync()
        return self._ready(symbol).bars(timeframe)

    def deep(self, symbol: str) -> DeepHistory | None:
        """The symbol's deep past, anchored at its first in-memory M1 bar; None when off, or
        while it is still "downloading" (``deep_download_s``, pitfalls B5)."""
        series = self._ready(symbol)
        if self._deep_from_s is None or series.bars_loaded or self._downloading(symbol):
            return None
        m1 = series.m1.view()
        if len(m1):
            anchor = (int(m1["time"][0]), float(m1["open"][0]))
        else:
            anchor = (series.hist_end_s, series.spec.initial_price)
        deep = self._deep.get(symbol)
        if deep is None or (deep.t0, deep.p0) != anchor:
            mask = self._masks[symbol]
            deep = DeepHistory(
                series.spec,
                mask,
                self._seed,
                self._deep_from_s,
                anchor,
                self.deep_cache,
                self.deep_frames,
            )
            self._deep[symbol] = deep
        return None if deep.empty else deep

    def _downloading(self, symbol: str) -> bool:
        """Whether the symbol's deep past is not yet "downloaded": the first request that asks
        starts the download, which ends ``deep_download_s`` later on the market's clock."""
        if self._download_ms is None:
            return False
        now = self._clock.now_ms()
        ready = self._downloaded_at.setdefault(symbol, now + self._download_ms)
        return now < ready

    def copy_rates_from(
        self, symbol: str, timeframe: int, date_from_s: int, count: int, maxbars: int
    ) -> RateArray:
        """The last ``count`` bars opening at or before ``date_from_s``."""
        bars = self._bars(symbol, timeframe)
        copying.check_count(count, maxbars)
        end = int(np.searchsorted(bars["time"], date_from_s, side="right"))
        deep = self.deep(symbol)
        if deep is not None and end - count < 1:  # reaches the first (maybe split) bar
            hi = min(deep.t0, date_from_s + timeframe_seconds(timeframe))
            older = deep.last_rates(timeframe, hi, count)
            bars = join(older, bars) if hi == deep.t0 else older
        return copying.rates_from(bars, date_from_s, count, maxbars)

    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, maxbars: int
    ) -> RateArray:
        """``count`` bars back from position ``start_pos`` (0 = the forming bar); into the deep
        past up to position ``maxbars - 1``, as a chart holds at most ``maxbars`` bars."""
        bars = self._bars(symbol, timeframe)
        copying.check_count(count, maxbars)
        deep = self.deep(symbol)
        need = start_pos + count - len(bars) + 1  # deep bars wanted, and the split one
        if deep is not None and need > 0 and 0 <= start_pos < maxbars:
            need = min(start_pos + count, maxbars) - len(bars) + 1
            bars = join(deep.last_rates(timeframe, deep.t0, need), bars)
            bars = bars[-maxbars:]  # a chart holds maxbars bars: no position beyond them
        return copying.rates_from_pos(bars, start_pos, count, maxbars)

    def copy_rates_range(
        self, symbol: str, timeframe: int, from_s: int, to_s: int, maxbars: int
    ) -> RateArray:
        """Bars with ``from_s <= time <= to_s``."""
        bars = self._bars(symbol, timeframe)
        deep = self.deep(symbol)
        if deep is not None and (len(bars) == 0 or from_s <= int(bars["time"][0])):
            reach = to_s + timeframe_seconds(timeframe)  # the last bar's minutes run on to here
            if deep.min_bars(timeframe, from_s, min(deep.t0, reach)) > maxbars:
                raise INVALID_PARAMS()  # as copying.rates_range would, without making years
            older = deep.rates(timeframe, from_s, min(deep.t0, reach))
            bars = join(older, bars) if reach >= deep.t0 else older
        return copying.rates_range(bars, from_s, to_s, maxbars)

    def copy_ticks_from(self, symbol: str, from_s: int, count: int, flags: int) -> TickArray:
        """The first ``count`` ticks with ``time_msc >= from_s * 1000`` matching ``flags``."""
        self._need(symbol)
        wanted = copying.tick_filter(flags)
        if count < 1:
            return empty_ticks()
        self.sync()
        series, deep = self._ready(symbol), self.deep(symbol)
        from_ms = from_s * 1000
        if deep is None or from_ms >= deep.t0 * 1000 or wanted == _TRADE_ONLY:
            return series.ticks_from(from_ms, count, wanted)
        past = deep.ticks_from(from_ms, count)  # deep ticks are quote ticks: all match
        if len(past) >= count:
            return past
        rest = series.ticks_from(deep.t0 * 1000, count - len(past), wanted)
        return np.concatenate([past, rest])

    def copy_ticks_range(self, symbol: str, from_s: int, to_s: int, flags: int) -> TickArray:
        """Ticks with ``from_s * 1000 <= time_msc <= to_s * 1000`` (both ends inclusive)."""
        self._need(symbol)
        wanted = copying.tick_filter(flags)
        self.sync()
        ticks = self._ready(symbol).ticks_range(from_s * 1000, to_s * 1000)
        deep = self.deep(symbol)
        if deep is not None and from_s < deep.t0:
            if deep.max_ticks(from_s, to_s + 1) > DEEP_TICKS_MAX:
                raise result_error(ResultCode.E_NO_MEMORY)  # years of ticks: GBs of rows
            ticks = np.concatenate([deep.ticks_range(from_s * 1000, to_s * 1000), ticks])
        return ticks if not wanted else ticks[(ticks["flags"] & np.uint32(wanted)) != 0]

    # -- CSV -----------------------------------------------------------------------------------

    def load_ticks_csv(self, symbol: str, path: str | os.PathLike[str]) -> int:
        """Make ``symbol`` follow a recorded tick file; returns the number of rows loaded."""
        self._need(symbol)
        ticks = read_ticks_csv(path)
        if len(ticks) == 0:
            return 0
        self.sync()
        series = self._ready(symbol)
        now = self._clock.now_ms()
        past = ticks[ticks["time_msc"] <= now]
        if len(past):
            series.set_ticks(past)  # the recorded past replaces the symbol's data from its start
        self._feeds[symbol] = ReplayFeed(ticks, now)
        return len(ticks)

    def load_bars_csv(
        self, symbol: str, path: str | os.PathLike[str], timeframe: int = int(Timeframe.M1)
    ) -> int:
        """Make a bar export the symbol's history (before the live feed); returns rows loaded."""
        self._need(symbol)
        copying.check_timeframe(timeframe)
        bars = read_bars_csv(path)
        series = self._ready(symbol)
        series.bars_loaded = True  # the recording is the past; nothing is made before it
        if timeframe == Timeframe.M1:
            series.set_history(bars)
        else:
            series.set_override(timeframe, bars)
        return len(bars)

    # -- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state: every stored tick and bar, and each feed's exact state."""
        self.sync()
        return {
            "done_ms": self._done_ms,
            "symbols": {name: self._series_state(name) for name in self._by_name},
        }

    def _series_state(self, name: str) -> dict[str, Any]:
        series = self._ready(name)
        return {
            "hist_end_s": series.hist_end_s,
            "n_hist": series.n_hist,
            "n_trimmed": series.n_trimmed,
            "bars_loaded": series.bars_loaded,
            "m1": encode_array(series.m1.view()),
            "ticks": encode_array(series.ticks.view()),
            "overrides": {str(tf): encode_array(b) for tf, b in series.overrides.items()},
            "feed": self._feeds[name].state(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Resume from :meth:`snapshot` output (same specs; unknown symbols are ignored)."""
        self._done_ms = int(data["done_ms"])
        symbols = data["symbols"].items()
        ends = [int(s["hist_end_s"]) * 1000 for n, s in symbols if n in self._series]
        self.start_ms = min(ends, default=self._done_ms)  # where a regenerated market starts
        for name, state in data["symbols"].items():
            if name in self._series:
                self._restore_series(name, state)

    def _restore_series(self, name: str, state: Mapping[str, Any]) -> None:
        spec = self._by_name[name]
        series = Series(spec, int(state["hist_end_s"]))
        series.m1.replace(decode_array(state["m1"], RATES_DTYPE))
        series.ticks.replace(decode_array(state["ticks"], TICKS_DTYPE))
        series.n_hist, series.history_ready = int(state["n_hist"]), True
        series.n_trimmed = int(state.get("n_trimmed", 0))  # absent in files of older versions
        series.bars_loaded = bool(state.get("bars_loaded", False))
        for tf, text in state["overrides"].items():
            series.overrides[int(tf)] = decode_array(text, RATES_DTYPE)
        self._series[name] = series
        self._day_cache.pop(name, None)
        feed: Feed
        if state["feed"]["kind"] == "replay":
            feed = ReplayFeed(empty_ticks(), self._done_ms)
        else:
            feed = self._random_feed(spec, self._done_ms)
        feed.load_state(state["feed"])
        self._feeds[name] = feed
        self._retain(name)  # a file saved with a longer window (or none) shrinks here


def _arrival_means(specs: Sequence[SymbolSpec], ticks_per_s: float | None) -> dict[str, float]:
    """Each symbol's gap draw mean for a market pace of ``ticks_per_s`` (all symbols together,
    while open, shared in proportion to their own ``mean_tick_interval_ms`` pace); empty for
    None (each symbol's own pace)."""
    if ticks_per_s is None or not specs:
        return {}
    own = sum(1000.0 / s.mean_tick_interval_ms for s in specs)  # ticks/s at their own pace
    scale = own / ticks_per_s  # every mean interval times this
    means = {}
    for spec in specs:
        interval = spec.mean_tick_interval_ms * scale
        if interval <= 1.0:
            raise ValueError(
                f"SimConfig.ticks_per_s = {ticks_per_s:g} would tick {spec.name} every "
                f"{interval:.2f} ms; ticks are at least 1 ms apart, so each symbol gets at most "
                f"1000 ticks/s (lower ticks_per_s, or list fewer symbols)"
            )
        means[spec.name] = arrival_mean_ms(interval)
    return means


def _make_tick(
    spec: SymbolSpec,
    now_ms: int,
    bid: float,
    ask: float | None,
    last: float,
    volume: int,
    prev: TickArray | None,
) -> TickArray:
    """One tick row; flags mark what changed against ``prev``."""
    tick = empty_ticks(1)
    ask = round(bid + spec.spread_points * spec.point, spec.digits) if ask is None else ask
    tick["time_msc"], tick["time"] = now_ms, now_ms // 1000
    tick["bid"], tick["ask"], tick["last"] = bid, ask, last
    tick["volume"], tick["volume_real"] = volume, float(volume)
    old = prev[0] if prev is not None else None
    flags = 0
    flags |= 2 if old is None or float(old["bid"]) != bid else 0
    flags |= 4 if old is None or float(old["ask"]) != ask else 0
    flags |= 8 if last else 0
    flags |= 16 if volume else 0
    tick["flags"] = flags
    return tick
