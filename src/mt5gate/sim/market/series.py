"""Everything recorded for one symbol: history bars, live ticks, M1 bars, bar caches.

Layout invariant: ``m1`` holds the ``n_hist`` history bars (time < ``hist_end_s``) first, then
the ``n_trimmed`` bars of live ticks that retention dropped (:meth:`Series.drop_ticks_before`),
then the bars built from the stored ``ticks``; every stored tick is newer than every one of the
first ``n_synth = n_hist + n_trimmed`` bars. The ticks of those bars are not stored:
:func:`~mt5gate.sim.market.history.synth_ticks` regenerates them, so reads of ticks are history
ticks up to a minute boundary and stored ticks from there on, without a gap or an overlap.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mt5gate.constants import TickFlag, Timeframe
from mt5gate.records import Tick
from mt5gate.sim.market.bars import BarCache, bucket_start, merge_m1, ticks_to_m1
from mt5gate.sim.market.dtypes import (
    RATES_DTYPE,
    TICKS_DTYPE,
    GrowArray,
    RateArray,
    TickArray,
    empty_ticks,
)
from mt5gate.sim.market.history import synth_ticks, tick_counts, trade_counts
from mt5gate.sim.market.rand import symbol_key
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Series"]


class Series:
    """The recorded data of one symbol, queried by the copy_* functions."""

    def __init__(self, spec: SymbolSpec, hist_end_s: int) -> None:
        self.spec = spec
        self.key = symbol_key(spec.name)
        self.hist_end_s = hist_end_s
        self.n_hist = 0
        self.n_trimmed = 0  # M1 bars after the history whose live ticks were dropped
        self.history_ready = False
        self.bars_loaded = False  # a bar CSV is the history: no deep past before it
        self.m1 = GrowArray(RATES_DTYPE, 4096)
        self.ticks = GrowArray(TICKS_DTYPE, 4096)
        self.overrides: dict[int, RateArray] = {}
        self._caches: dict[int, BarCache] = {}
        self._last: Tick | None = None  # cached newest tick record; None = recompute
        self.version = 0  # bumped by every write, so readers can cache what they derive

    @property
    def n_synth(self) -> int:
        """M1 bars whose ticks are synthesised: the history, then the bars of dropped ticks."""
        return self.n_hist + self.n_trimmed

    # -- writing -------------------------------------------------------------------------------

    def add_ticks(self, ticks: TickArray) -> None:
        """Append live ticks (time-ordered, not older than the last stored one)."""
        if len(ticks):
            self.ticks.extend(ticks)
            merge_m1(self.m1, ticks_to_m1(ticks, self.spec.point))
            self._last = None
            self.version += 1

    def drop_ticks_before(self, cut_ms: int) -> None:
        """Forget the stored ticks older than ``cut_ms`` (a minute boundary). Their M1 bars
        stay, and their ticks are synthesised from the bars from now on, like history ticks."""
        if cut_ms % 60_000:
            raise ValueError(f"cut_ms must be a minute boundary, got {cut_ms}")
        n = int(np.searchsorted(self.ticks.view()["time_msc"], cut_ms, side="left"))
        if n == 0:
            return
        self.ticks.drop_front(n)
        n_synth = int(np.searchsorted(self.m1.view()["time"], cut_ms // 1000, side="left"))
        self.n_trimmed = max(self.n_trimmed, n_synth - self.n_hist)
        self._last = None
        self.version += 1

    def set_history(self, bars: RateArray) -> None:
        """Make ``bars`` (M1, time-ordered) the history; only those before ``hist_end_s`` count."""
        bars = bars[bars["time"] < self.hist_end_s]
        live = self.m1.view()[self.n_hist :].copy()
        self.m1.replace(bars)
        self.m1.extend(live)
        self.n_hist, self.history_ready = len(bars), True
        self._caches.clear()
        self._last = None
        self.version += 1

    def set_ticks(self, ticks: TickArray) -> None:
        """Replace everything from the first of ``ticks`` on (CSV replay); history stops there."""
        start_ms = int(ticks["time_msc"][0])
        self.hist_end_s = min(self.hist_end_s, start_ms // 60_000 * 60)
        hist = self.m1.view()[: self.n_hist]
        hist = hist[hist["time"] < self.hist_end_s].copy()
        trimmed = self.m1.view()[self.n_hist : self.n_synth]  # treated like history bars
        trimmed = trimmed[trimmed["time"] < start_ms // 60_000 * 60].copy()
        kept = self.ticks.view()
        kept = kept[kept["time_msc"] < start_ms].copy()
        self.ticks.replace(empty_ticks())
        self.m1.replace(hist)
        self.m1.extend(trimmed)
        self.n_hist, self.n_trimmed = len(hist), len(trimmed)
        self.add_ticks(np.concatenate([kept, ticks]))
        self._caches.clear()
        self._last = None
        self.version += 1

    def set_override(self, timeframe: int, bars: RateArray) -> None:
        """History bars of a timeframe above M1 (a bar CSV), used before the derived bars."""
        self.overrides[timeframe] = bars[bars["time"] < self.hist_end_s].copy()
        self._caches.pop(timeframe, None)

    # -- reading -------------------------------------------------------------------------------

    def bars(self, timeframe: int) -> RateArray:
        """All bars of ``timeframe``, oldest first, the last one forming."""
        if timeframe == Timeframe.M1:
            return self.m1.view()
        cache = self._caches.get(timeframe)
        if cache is None:
            cache = self._caches[timeframe] = self._new_cache(timeframe)
        return cache.bars(self.m1.view())

    def _new_cache(self, timeframe: int) -> BarCache:
        prefix = self.overrides.get(timeframe)
        if prefix is None or len(prefix) == 0:
            return BarCache(timeframe)
        m1 = self.m1.view()
        keys = bucket_start(m1["time"], timeframe)
        first = int(np.searchsorted(keys, prefix["time"][-1], side="right"))
        return BarCache(timeframe, prefix, first)

    def history_ticks(self, lo: int, hi: int) -> TickArray:
        """Synthesised ticks of bars ``lo:hi`` (history and dropped live bars, ``< n_synth``)."""
        m1, digits, point = self.m1.view(), self.spec.digits, self.spec.point
        past = synth_ticks(m1[lo : min(hi, self.n_hist)], self.key, digits, point)
        if min(hi, self.n_synth) <= max(lo, self.n_hist):
            return past
        bars = m1[max(lo, self.n_hist) : min(hi, self.n_synth)]
        return np.concatenate([past, synth_ticks(bars, self.key, digits, point, live=True)])

    def _synth_counts(self, lo: int, wanted: int) -> NDArray[np.int64]:
        """Per bar from ``lo`` to ``n_synth``: how many synthesised ticks meet ``wanted``."""
        m1, n_hist = self.m1.view(), self.n_hist
        hist, live = m1[min(lo, n_hist) : n_hist], m1[max(lo, n_hist) : self.n_synth]
        if not wanted or wanted & _HISTORY_FLAGS:  # every synthesised tick is a quote tick
            return np.concatenate([tick_counts(hist), tick_counts(live, live=True)])
        return np.concatenate([trade_counts(hist), trade_counts(live, live=True)])

    def ticks_range(self, from_ms: int, to_ms: int) -> TickArray:
        """Every tick with ``from_ms <= time_msc <= to_ms``, history and live."""
        hist = self.m1.view()[: self.n_synth]["time"]
        lo = int(np.searchsorted(hist, from_ms // 60_000 * 60, side="left"))
        hi = int(np.searchsorted(hist, to_ms // 1000, side="right"))
        past = self.history_ticks(lo, hi) if hi > lo else empty_ticks()
        live = self.ticks.view()
        a = int(np.searchsorted(live["time_msc"], from_ms, side="left"))
        b = int(np.searchsorted(live["time_msc"], to_ms, side="right"))
        ticks = np.concatenate([past, live[a:b]])
        keep = (ticks["time_msc"] >= from_ms) & (ticks["time_msc"] <= to_ms)
        return ticks[keep]

    def ticks_from(self, from_ms: int, count: int, wanted: int) -> TickArray:
        """The first ``count`` ticks from ``from_ms`` on whose flags meet ``wanted`` (0: all)."""
        out = _select(self._history_from(from_ms, count, wanted), wanted)[:count]
        if len(out) < count:
            live = self.ticks.view()
            a = int(np.searchsorted(live["time_msc"], from_ms, side="left"))
            out = np.concatenate([out, _select(live[a:], wanted)[: count - len(out)]])
        return out

    def _history_from(self, from_ms: int, count: int, wanted: int) -> TickArray:
        """Synthesised ticks from ``from_ms`` on, enough to hold ``count`` meeting ``wanted``."""
        hist = self.m1.view()[: self.n_synth]
        lo = int(np.searchsorted(hist["time"], from_ms // 60_000 * 60, side="left"))
        if lo >= len(hist):
            return empty_ticks()
        per_bar = self._synth_counts(lo, wanted)
        busy = np.flatnonzero(per_bar)
        if len(busy) == 0:  # e.g. COPY_TICKS_TRADE over quote-only history
            return empty_ticks()
        lo, per_bar = lo + int(busy[0]), per_bar[busy[0] :]  # bars without a match add nothing
        hi = lo + int(np.searchsorted(np.cumsum(per_bar), count + per_bar[0], side="left")) + 1
        ticks = self.history_ticks(lo, hi)
        return ticks[ticks["time_msc"] >= from_ms]

    def last_record(self) -> Tick | None:
        """The newest tick as a ``Tick`` record, cached until the series changes (hot path)."""
        if self._last is None:
            row = self.last_tick()
            self._last = None if row is None else Tick(row[0].tolist())
        return self._last

    def last_tick(self) -> TickArray | None:
        """The newest tick (one-row array): live if any, else the close of the last history bar."""
        if len(self.ticks):
            return self.ticks.view()[-1:].copy()
        if self.n_synth:
            return self.history_ticks(self.n_synth - 1, self.n_synth)[-1:]
        return None


_HISTORY_FLAGS = int(TickFlag.BID | TickFlag.ASK)  # every history tick is a quote tick


def _select(ticks: TickArray, wanted: int) -> TickArray:
    """Ticks matching a COPY_TICKS filter mask (0: all)."""
    if not wanted:
        return ticks
    keep: TickArray = ticks[(ticks["flags"] & np.uint32(wanted)) != 0]
    return keep
