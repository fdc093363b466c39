"""Live tick sources: a seeded random walk, and a replay of recorded ticks.

The random walk is geometric: between two ticks ``dt`` ms apart the log bid moves by
``N(0, 1) * vol * sqrt(dt / year)``. Inter-arrival times are exponential. Arrival times and
prices come from two separate generators, and arrivals drawn beyond the requested time are kept
pending, so the ticks do not depend on how the clock was stepped. Arrivals that fall outside
the trading sessions are dropped (no ticks while the market is shut).

The mean interval is the symbol's ``mean_tick_interval_ms`` unless the market sets a pace
(``SimConfig.ticks_per_s``): then :func:`arrival_mean_ms` picks the exponential's mean so that
the whole-millisecond gaps average the interval asked for. Because arrivals are drawn ahead,
a feed knows when its next tick is due (:meth:`RandomFeed.next_arrival_ms`), which lets a
reader sleep until then instead of polling.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from mt5gate.constants import SymbolCalcMode, TickFlag
from mt5gate.sim.market.dtypes import TICKS_DTYPE, TickArray, empty_ticks
from mt5gate.sim.market.rand import STREAM_PRICE, STREAM_TIME, make_rng
from mt5gate.sim.market.sessions import SessionMask
from mt5gate.sim.symbols import SymbolSpec

__all__ = [
    "Feed",
    "RandomFeed",
    "ReplayFeed",
    "arrival_mean_ms",
    "decode_array",
    "encode_array",
    "has_trades",
]

_MS_PER_YEAR = 365.25 * 86_400_000
_QUOTE_FLAGS = int(TickFlag.BID | TickFlag.ASK)
_TRADE_FLAGS = int(TickFlag.LAST | TickFlag.VOLUME)
_EXCHANGE_MODES = (SymbolCalcMode.EXCH_STOCKS, SymbolCalcMode.EXCH_FUTURES)
_NO_TICKS = empty_ticks()
_NO_TICKS.flags.writeable = False  # shared by every feed with nothing due: never written


def has_trades(spec: SymbolSpec) -> bool:
    """Whether the symbol's ticks carry last price and volume (exchange-traded instruments)."""
    return spec.trade_calc_mode in _EXCHANGE_MODES


def arrival_mean_ms(interval_ms: float) -> float:
    """The mean of the exponential draw whose gaps, rounded up to whole milliseconds, average
    ``interval_ms`` (> 1): ``E[ceil(X)] = 1 / (1 - exp(-1 / mean))`` for ``X ~ Exp(mean)``."""
    if not interval_ms > 1.0:
        raise ValueError(f"a mean tick interval must exceed 1 ms, got {interval_ms!r}")
    return -1.0 / math.log1p(-1.0 / interval_ms)


def encode_array(arr: NDArray[Any]) -> str:
    """An array's raw bytes as base64 text (JSON-friendly, exact)."""
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def decode_array(text: str, dtype: np.dtype[Any]) -> NDArray[Any]:
    """The inverse of :func:`encode_array`; a writable copy."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


class Feed(Protocol):
    """Where a symbol's live ticks come from."""

    def ticks_until(self, to_ms: int) -> TickArray:
        """Every new tick with ``time_msc <= to_ms``, oldest first."""
        ...

    def moved(self, tick: TickArray) -> None:
        """An injected tick (push_tick) became the latest quote."""
        ...

    def next_arrival_ms(self) -> int | None:
        """When the next tick after those handed out is due (it may fall while the market is
        shut, and then never come); None when no tick is coming (a replay that ended)."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state, enough to resume exactly."""
        ...

    def load_state(self, data: dict[str, Any]) -> None:
        """Resume from :meth:`state` output."""
        ...


class RandomFeed:
    """The seeded random walk of one symbol, from ``start_ms`` on."""

    def __init__(
        self,
        spec: SymbolSpec,
        mask: SessionMask,
        seed: int,
        start_ms: int,
        *,
        mean_ms: float | None = None,
    ) -> None:
        """``mean_ms``: the mean of the exponential gap draw (default: the spec's
        ``mean_tick_interval_ms``, as every market without a pace)."""
        self._spec = spec
        self._mean = float(spec.mean_tick_interval_ms) if mean_ms is None else mean_ms
        self._mask = mask
        self._rng_t = make_rng(seed, spec.name, STREAM_TIME)
        self._rng_p = make_rng(seed, spec.name, STREAM_PRICE)
        self._trades = has_trades(spec)
        self._pending: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._next_ms = -1  # the first pending arrival (-1: none pending): a cheap "nothing yet"
        self._last_arrival = start_ms
        self._prev_ms = start_ms
        self._logp = math.log(spec.initial_price)
        self._prev_bid = 0.0
        self._prev_ask = 0.0

    def ticks_until(self, to_ms: int) -> TickArray:
        if self._next_ms > to_ms:  # nothing due yet: the market syncs every feed on each call
            return _NO_TICKS
        times = self._arrivals(to_ms)
        return self._quotes(times[self._mask.open_ms(times)])

    def _arrivals(self, to_ms: int) -> NDArray[np.int64]:
        """Arrival times up to ``to_ms``; later ones stay pending for the next call."""
        self._draw_until(to_ms)
        cut = int(np.searchsorted(self._pending, to_ms, side="right"))
        out, self._pending = self._pending[:cut], self._pending[cut:]
        self._next_ms = int(self._pending[0]) if len(self._pending) else -1
        return out

    def _draw_until(self, to_ms: int) -> None:
        """Draw arrivals until one lies beyond ``to_ms`` (the draws do not depend on where the
        chunks are cut: a generator yields the same numbers in one draw or in several)."""
        mean = self._mean
        while self._last_arrival <= to_ms:
            k = int(min(1_000_000, max(64.0, 1.1 * (to_ms - self._last_arrival) / mean + 16)))
            gaps = np.maximum(1, np.ceil(self._rng_t.exponential(mean, k))).astype(np.int64)
            fresh = self._last_arrival + np.cumsum(gaps)
            self._pending = np.concatenate([self._pending, fresh])
            self._last_arrival = int(fresh[-1])
        self._next_ms = int(self._pending[0]) if len(self._pending) else -1

    def next_arrival_ms(self) -> int:
        """The next pending arrival (drawn now if none is pending yet)."""
        if len(self._pending) == 0:
            self._draw_until(self._last_arrival)
        return int(self._pending[0])

    def _quotes(self, times: NDArray[np.int64]) -> TickArray:
        """Prices for the given arrival times; ticks that change nothing are dropped."""
        n = len(times)
        if n == 0:
            return empty_ticks()
        z = self._rng_p.standard_normal((n, 3))
        ticks = self._walk(times, z)
        self._prev_ms = int(times[-1])
        return ticks if self._trades else self._drop_unchanged(ticks)

    def _walk(self, times: NDArray[np.int64], z: NDArray[np.float64]) -> TickArray:
        spec = self._spec
        dt = np.maximum(1, np.diff(times, prepend=self._prev_ms)).astype(np.float64)
        steps = spec.annual_volatility * np.sqrt(dt / _MS_PER_YEAR) * z[:, 0]
        path: NDArray[np.float64] = self._logp + np.cumsum(steps, dtype=np.float64)
        self._logp = float(path[-1])
        bid = np.round(np.exp(path), spec.digits)
        spread = self._spreads(z[:, 1])
        ask = np.round(bid + spread * spec.point, spec.digits)
        ticks = empty_ticks(len(times))
        ticks["time_msc"], ticks["time"] = times, times // 1000
        ticks["bid"], ticks["ask"] = bid, ask
        ticks["flags"] = self._flags(bid, ask)
        if self._trades:
            self._add_trades(ticks, z[:, 2])
        return ticks

    def _spreads(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Spread in points: around ``spread_points`` when floating, never below one point."""
        base = float(self._spec.spread_points)
        if not self._spec.spread_float:
            return np.full(len(z), max(1.0, base))
        return np.maximum(1.0, np.round(base * np.exp(0.15 * z)))

    def _flags(
        self, bid: NDArray[np.floating[Any]], ask: NDArray[np.floating[Any]]
    ) -> NDArray[np.uint32]:
        """BID where the bid changed from the previous tick, ASK where the ask did."""
        prev_bid = np.concatenate([[self._prev_bid], bid[:-1]])
        prev_ask = np.concatenate([[self._prev_ask], ask[:-1]])
        self._prev_bid, self._prev_ask = float(bid[-1]), float(ask[-1])
        flags = np.where(bid != prev_bid, int(TickFlag.BID), 0)
        return (flags | np.where(ask != prev_ask, int(TickFlag.ASK), 0)).astype(np.uint32)

    def _add_trades(self, ticks: TickArray, z: NDArray[np.float64]) -> None:
        """A trade at every tick of an exchange instrument: last inside the spread, whole lots."""
        frac = 0.5 + 0.5 * np.tanh(z)
        last = ticks["bid"] + frac * (ticks["ask"] - ticks["bid"])
        ticks["last"] = np.round(last, self._spec.digits)
        volume = 1 + np.floor(np.abs(z) * 60).astype(np.uint64)
        ticks["volume"], ticks["volume_real"] = volume, volume.astype(np.float64)
        ticks["flags"] |= np.uint32(_TRADE_FLAGS)

    @staticmethod
    def _drop_unchanged(ticks: TickArray) -> TickArray:
        # Comparing with the raw predecessor equals comparing with the last kept tick.
        kept: TickArray = ticks[ticks["flags"] != 0]
        return kept

    def moved(self, tick: TickArray) -> None:
        self._logp = math.log(float(tick["bid"][0]))
        self._prev_bid, self._prev_ask = float(tick["bid"][0]), float(tick["ask"][0])
        self._prev_ms = int(tick["time_msc"][0])

    def state(self) -> dict[str, Any]:
        return {
            "kind": "random",
            "rng_t": self._rng_t.bit_generator.state,
            "rng_p": self._rng_p.bit_generator.state,
            "pending": encode_array(self._pending),
            "last_arrival": self._last_arrival,
            "prev_ms": self._prev_ms,
            "logp": self._logp,
            "prev_bid": self._prev_bid,
            "prev_ask": self._prev_ask,
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self._rng_t.bit_generator.state = data["rng_t"]
        self._rng_p.bit_generator.state = data["rng_p"]
        self._pending = decode_array(data["pending"], np.dtype(np.int64))
        self._next_ms = int(self._pending[0]) if len(self._pending) else -1
        self._last_arrival, self._prev_ms = int(data["last_arrival"]), int(data["prev_ms"])
        self._logp = float(data["logp"])
        self._prev_bid, self._prev_ask = float(data["prev_bid"]), float(data["prev_ask"])


class ReplayFeed:
    """Recorded ticks handed out as the clock passes them; silent after the last one."""

    def __init__(self, ticks: TickArray, done_ms: int) -> None:
        self._ticks = ticks
        self._pos = int(np.searchsorted(ticks["time_msc"], done_ms, side="right"))

    def ticks_until(self, to_ms: int) -> TickArray:
        cut = int(np.searchsorted(self._ticks["time_msc"], to_ms, side="right"))
        out, self._pos = self._ticks[self._pos : max(cut, self._pos)], max(cut, self._pos)
        return out.copy()

    def moved(self, tick: TickArray) -> None:
        """Replay does not react to injected ticks: the file goes on as recorded."""

    def next_arrival_ms(self) -> int | None:
        """The next recorded tick's time; None after the last one."""
        if self._pos >= len(self._ticks):
            return None
        return int(self._ticks["time_msc"][self._pos])

    def state(self) -> dict[str, Any]:
        rest = self._ticks[self._pos :]
        return {"kind": "replay", "ticks": encode_array(rest)}

    def load_state(self, data: dict[str, Any]) -> None:
        self._ticks, self._pos = decode_array(data["ticks"], TICKS_DTYPE), 0
