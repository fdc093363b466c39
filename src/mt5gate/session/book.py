"""Depth-of-market streams: a symbol's book each time it changes.

``async for book in stream_book(session, ["EURUSD"])`` is an async generator over one
:class:`BookHub` per session (hub, poller task, bounded buffers and drop counting are
:mod:`~mt5gate.session.streams`'s). The ``MetaTrader5`` module cannot push book events
(``OnBookEvent`` is MQL5's), so the poller reads ``market_book_get`` of every subscribed symbol
each round and hands a book out when its levels differ from the last one handed out.

MT5 wants ``market_book_add(symbol)`` before ``market_book_get`` and ``market_book_release``
after. The poller does both, so they happen once per symbol however many subscribers it has:
it adds a symbol in the first round that has a reader of it (through
:meth:`~mt5gate.session.manager.MT5SessionManager.subscribe_book`, which the session replays
after a reconnect), releases a symbol in the round after its last reader left, and releases
every symbol it added when it stops (the last subscriber left, or the session is closing).
A ``market_book_get`` that fails although the symbol exists (a terminal that restarted and
forgot its books) makes it add the symbol again next round. Adds and releases of one hub are
serialised by a lock, so a poller that starts while the previous one is still releasing waits.
An unknown symbol ends its subscribers' iterations with
:class:`~mt5gate.errors.MT5NotFoundError`, as for ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mt5gate.constants import BookType
from mt5gate.errors import MT5DataError, MT5Error, MT5NotFoundError, MT5ValidationError
from mt5gate.models import BookLevel
from mt5gate.session.streams import TRANSIENT, _Hub, _Subscriber
from mt5gate.session.validation import require_symbol_name

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["Book", "BookHub", "stream_book"]

#: One side of a book: (price, volume) levels, best first.
Levels = tuple[tuple[float, float], ...]
_ASK_TYPES = frozenset({BookType.SELL, BookType.SELL_MARKET})


@dataclass(frozen=True, slots=True)
class Book:
    """A symbol's depth of market, each side best first (bids from the highest price down,
    asks from the lowest up). MT5's book carries no time: ``time_ms`` is when the gateway
    read this one (UTC milliseconds)."""

    symbol: str
    time_ms: int
    bids: Levels
    asks: Levels


def _sides(levels: list[BookLevel]) -> tuple[Levels, Levels]:
    """Bids and asks of the terminal's levels (sells highest first, then buys highest first:
    the bids are in order, the asks are reversed)."""
    bids = tuple((lv.price, lv.volume) for lv in levels if lv.type not in _ASK_TYPES)
    asks = tuple((lv.price, lv.volume) for lv in levels if lv.type in _ASK_TYPES)
    return bids, asks[::-1]


class _BookSubscriber(_Subscriber[Book]):
    """A book subscriber: its symbols."""

    def __init__(self, symbols: tuple[str, ...], *args: Any) -> None:
        super().__init__(*args)
        self.symbols = symbols


class BookHub(_Hub[Book]):
    """Adds, reads and releases the books of the subscribed symbols; see the module
    docstring."""

    kind = "book"

    def __init__(self, session: MT5SessionManager) -> None:
        super().__init__(session)
        self._added: set[str] = set()  # symbols this hub has market_book_add'ed
        self._latest: dict[str, Book] = {}  # symbol -> the book handed out last
        self._lock = asyncio.Lock()  # adds and releases, one at a time

    def joined(self, subscriber: _Subscriber[Book]) -> None:
        """A new subscriber first gets the latest book of its symbols the poller knows."""
        if isinstance(subscriber, _BookSubscriber):
            for symbol in subscriber.symbols:
                latest = self._latest.get(symbol)
                if latest is not None:
                    subscriber.push(latest)

    def _routes(self) -> dict[str, list[_BookSubscriber]]:
        """Symbol -> the subscribers still reading it."""
        routes: dict[str, list[_BookSubscriber]] = {}
        for subscriber in self.subscribers:
            if isinstance(subscriber, _BookSubscriber) and not subscriber.ended:
                for symbol in subscriber.symbols:
                    routes.setdefault(symbol, []).append(subscriber)
        return routes

    async def _run(self) -> None:
        """The hub's poller, then the release of every book it added (however it stopped)."""
        try:
            await super()._run()
        finally:
            await self._release(set(self._added))

    async def poll(self) -> None:
        wanted = self._routes()
        await self._release(self._added - set(wanted))
        symbols = sorted(wanted)
        results = await asyncio.gather(*(self._read(symbol) for symbol in symbols))
        routes = self._routes()  # as they are now: a subscriber may have come or gone
        for symbol, result in zip(symbols, results, strict=True):
            readers = routes.get(symbol, ())
            if isinstance(result, MT5Error):
                for subscriber in readers:
                    subscriber.end(result)  # an unknown symbol: tell its consumer, do not spin
            elif result is not None:
                for subscriber in readers:
                    subscriber.push(result)

    async def _read(self, symbol: str) -> Book | MT5Error | None:
        """``symbol``'s book when it changed (added first if need be); the error that ends
        its iterations (an unknown symbol); None when unchanged or failed for now."""
        try:
            await self._add(symbol)
            levels = await self.session.get_book(symbol)
        except TRANSIENT:
            return None
        except MT5NotFoundError as error:
            return error
        except MT5DataError:  # the terminal forgot the book (it restarted): add it again
            self._added.discard(symbol)
            return None
        except MT5Error as error:
            return error
        bids, asks = _sides(levels)
        latest = self._latest.get(symbol)
        if latest is not None and (latest.bids, latest.asks) == (bids, asks):
            return None
        book = self._latest[symbol] = Book(symbol, time.time_ns() // 1_000_000, bids, asks)
        return book

    async def _add(self, symbol: str) -> None:
        async with self._lock:
            if symbol not in self._added:
                await self.session.subscribe_book(symbol)
                self._added.add(symbol)

    async def _release(self, symbols: set[str]) -> None:
        """``market_book_release`` of ``symbols``; a failure leaves nothing to retry (the
        terminal has no such book any more, or the session is going)."""
        if not symbols:
            return
        async with self._lock:
            for symbol in sorted(symbols & self._added):
                self._added.discard(symbol)
                self._latest.pop(symbol, None)
                with contextlib.suppress(MT5Error):
                    await self.session.unsubscribe_book(symbol)


def _symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    """Validated, de-duplicated symbol names in the caller's order."""
    if isinstance(symbols, str):
        symbols = [symbols]
    names = tuple(dict.fromkeys(require_symbol_name(s) for s in symbols))
    if not names:
        raise MT5ValidationError(field="book", rule="at least one symbol")
    return names


def stream_book(
    session: MT5SessionManager,
    symbols: Sequence[str],
    *,
    interval_s: float = 0.1,
    buffer: int = 1000,
) -> AsyncIterator[Book]:
    """The depth of market of ``symbols``: the current book first, then each change, read
    every ``interval_s``. ``buffer`` books are kept for a slow consumer (beyond that the
    oldest are dropped and counted). The subscription starts at the first iteration."""
    names = _symbols(symbols)
    hub = session.streams.hub(BookHub)
    return hub.iterate(_BookSubscriber(names, hub.next_name(), buffer, interval_s, hub))
