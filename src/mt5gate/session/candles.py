"""Bar (candle) streams: the forming bar as it changes, and every bar once when it closes.

``async for bar in stream_bars(session, [("EURUSD", Timeframe.M1)])`` is an async generator
over one :class:`BarHub` per session (the hub, its poller task, bounded buffers and drop
counting are :mod:`~mt5gate.session.streams`'s). Bars are the terminal's own, never aggregated
here, so a streamed bar is the bar ``get_rates`` (``GET .../rates``) returns for it: each round
reads ``copy_rates_from_pos(symbol, timeframe, 0, 2)``, the last closed bar and the forming one.

Per (symbol, timeframe) the hub keeps a cursor, the open time of the forming bar it last handed
out. When the terminal's forming bar opens later than the cursor, every bar from the cursor up
to it has closed: they are handed out with ``closed=True``, oldest first, then the new forming
bar with ``closed=False``. Should more than one bar have closed since the last round (a slow
round, a pause for a reconnect) the missing ones are read with one ``copy_rates_range`` from
the cursor, so no bar is skipped. A forming bar goes out again only when it changed. A new
subscriber first gets the forming bar the hub knows; an unknown symbol ends its subscribers'
iterations with :class:`~mt5gate.errors.MT5NotFoundError`, as for ticks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5DataError, MT5Error, MT5NotFoundError, MT5ValidationError
from mt5gate.session.streams import TRANSIENT, _Hub, _Subscriber
from mt5gate.session.validation import require_symbol_name

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["Bar", "BarHub", "stream_bars"]

#: A bar stream's key: the symbol and the MT5 timeframe constant.
Key = tuple[str, int]
_FRAMES = frozenset(int(t) for t in Timeframe)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of ``symbol`` on ``timeframe`` (its name, ``"M1"``), the terminal's rate fields
    as ``GET .../rates`` gives them, and whether it has closed (then it never changes)."""

    symbol: str
    timeframe: str
    time: int
    open: float
    high: float
    low: float
    close: float
    tick_volume: int
    spread: int
    real_volume: int
    closed: bool


def _bars(symbol: str, timeframe: int, array: Any, closed: bool) -> list[Bar]:
    """The rows of a rates array as bars (values as ``tolist`` gives them: Python numbers)."""
    names = array.dtype.names or ()
    name = Timeframe(timeframe).name
    return [
        Bar(symbol, name, closed=closed, **dict(zip(names, row, strict=True)))
        for row in array.tolist()
    ]


class _BarSubscriber(_Subscriber[Bar]):
    """A bar subscriber: its (symbol, timeframe) keys."""

    def __init__(self, keys: tuple[Key, ...], *args: Any) -> None:
        super().__init__(*args)
        self.keys = keys


class BarHub(_Hub[Bar]):
    """Reads the last two bars of every subscribed (symbol, timeframe) each round; see the
    module docstring for what goes out."""

    kind = "bars"

    def __init__(self, session: MT5SessionManager) -> None:
        super().__init__(session)
        self._cursors: dict[Key, int] = {}  # key -> open time of the forming bar handed out
        self._forming: dict[Key, Bar] = {}  # key -> the forming bar handed out last
        self._selected: set[str] = set()  # symbols selected in Market Watch by this hub

    def joined(self, subscriber: _Subscriber[Bar]) -> None:
        """A new subscriber first gets the forming bar of its keys the poller knows."""
        if isinstance(subscriber, _BarSubscriber):
            for key in subscriber.keys:
                forming = self._forming.get(key)
                if forming is not None:
                    subscriber.push(forming)

    def left(self) -> None:
        """Forget the keys nobody reads any more (a later subscriber starts afresh)."""
        wanted = set(self._routes())
        for key in set(self._cursors) - wanted:
            self._cursors.pop(key, None)
            self._forming.pop(key, None)
        if not self.subscribers:
            self._selected.clear()

    def _routes(self) -> dict[Key, list[_BarSubscriber]]:
        """Key -> the subscribers still reading it."""
        routes: dict[Key, list[_BarSubscriber]] = {}
        for subscriber in self.subscribers:
            if isinstance(subscriber, _BarSubscriber) and not subscriber.ended:
                for key in subscriber.keys:
                    routes.setdefault(key, []).append(subscriber)
        return routes

    async def poll(self) -> None:
        routes = self._routes()
        keys = sorted(routes)
        results = await asyncio.gather(*(self._read(key) for key in keys))
        routes = self._routes()  # as they are now: a subscriber may have come or gone
        for key, result in zip(keys, results, strict=True):
            readers = routes.get(key, ())
            if isinstance(result, MT5Error):
                for subscriber in readers:
                    subscriber.end(result)  # an unknown symbol: tell its consumer, do not spin
                continue
            for bar in result:
                for subscriber in readers:
                    subscriber.push(bar)

    async def _read(self, key: Key) -> list[Bar] | MT5Error:
        """What is new for ``key``: closed bars, then the forming bar if it changed; an error
        that ends the key's iterations (an unknown symbol); [] when nothing is new or the
        read failed for now (it is tried again next round, from the same cursor)."""
        symbol, timeframe = key
        session = self.session
        try:
            if symbol not in self._selected:  # copy_rates_* need it in Market Watch
                await session.select_symbol(symbol)
                self._selected.add(symbol)
            return await self._advance(key, await session.get_rates(symbol, timeframe, count=2))
        except TRANSIENT:
            return []
        except MT5NotFoundError as error:
            return error
        except MT5DataError:  # not selected (a restarted terminal) or no history yet
            self._selected.discard(symbol)
            return []
        except MT5Error as error:
            return error

    async def _advance(self, key: Key, last_two: Any) -> list[Bar]:
        """Move ``key``'s cursor to the terminal's forming bar; the bars that closed meanwhile
        and the forming bar (when it changed), in time order."""
        symbol, timeframe = key
        if len(last_two) == 0:
            return []
        forming = _bars(symbol, timeframe, last_two[-1:], closed=False)[0]
        cursor = self._cursors.get(key)
        if cursor is not None and forming.time < cursor:
            return []  # an older bar than one already handed out: never go back
        out: list[Bar] = []
        if cursor is not None and forming.time > cursor:
            out = await self._closed(key, cursor, forming.time, last_two[:-1])
        self._cursors[key] = forming.time
        if self._forming.get(key) != forming:
            self._forming[key] = forming
            out.append(forming)
        return out

    async def _closed(self, key: Key, cursor: int, until: int, before: Any) -> list[Bar]:
        """The bars with ``cursor <= time < until``: ``before`` (the bar before the forming
        one) when it is the cursor's bar, else read from the terminal."""
        symbol, timeframe = key
        if len(before) == 0 or int(before[0]["time"]) != cursor:
            before = await self.session.get_rates(
                symbol, timeframe, date_from=cursor, date_to=until - 1
            )
        closed = _bars(symbol, timeframe, before, closed=True)
        return [bar for bar in closed if cursor <= bar.time < until]


def _keys(bars: Sequence[tuple[str, int]]) -> tuple[Key, ...]:
    """Validated, de-duplicated (symbol, timeframe) pairs in the caller's order."""
    keys: dict[Key, None] = {}
    for symbol, timeframe in bars:
        name = require_symbol_name(symbol)
        if (
            isinstance(timeframe, bool)
            or not isinstance(timeframe, int)
            or timeframe not in _FRAMES
        ):
            raise MT5ValidationError(field="timeframe", rule="an MT5 timeframe (Timeframe)")
        keys[(name, timeframe)] = None
    if not keys:
        raise MT5ValidationError(field="bars", rule="at least one (symbol, timeframe)")
    return tuple(keys)


def stream_bars(
    session: MT5SessionManager,
    bars: Sequence[tuple[str, int]],
    *,
    interval_s: float = 0.25,
    buffer: int = 1000,
) -> AsyncIterator[Bar]:
    """The bars of each (symbol, timeframe) in ``bars``: the forming bar first and whenever it
    changes (``closed=False``), then each bar once as it closes (``closed=True``), in time
    order. The terminal is read every ``interval_s``; ``buffer`` bars are kept for a slow
    consumer (beyond that the oldest are dropped and counted). The subscription starts at the
    first iteration."""
    keys = _keys(bars)
    hub = session.streams.hub(BarHub)
    return hub.iterate(_BarSubscriber(keys, hub.next_name(), buffer, interval_s, hub))
