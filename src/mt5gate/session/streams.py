"""Tick and trade-event streams: one shared poller per stream kind, bounded fan-out.

``async for price in session.stream_ticks(["EURUSD", "GBPUSD"])`` and
``async for event in session.trade_events()`` are async generators over a :class:`_Hub`. A hub
owns one poller task for the whole session, started by the first subscriber and cancelled when
the last one leaves (or by :meth:`Streams.close`); it polls at the smallest ``interval_s`` its
subscribers asked for, on the session's clock, so tests drive time instead of sleeping.

Ticks are read on the terminal's side of the worker hop. A terminal that can tell when its next
tick is due and hand over every tick since the last one read (the simulator, see
:class:`~mt5gate.terminal.base.TickWatch`) is read in one worker job per round, for all the
subscribed symbols at once, and the poller sleeps until the next tick is due (at most
``interval_s``), so a tick reaches its subscribers as soon as it exists and none is skipped. Any
other terminal (a real one: the ``MetaTrader5`` module has no push) is polled every
``interval_s`` for each symbol's latest tick, which is all its API offers.

Each subscriber has its own bounded buffer. A full buffer drops its *oldest* item and counts the
drop (``session.observer.stream_dropped("ticks#3", total)``, once a round with the subscriber's
total: an overloaded stream must not spend its time reporting each item it drops): a slow
consumer loses old data, never blocks the poller or the other subscribers. The poller survives
reconnects: connection failures, timeouts, an open breaker and "not connected right now" pause
it for one interval; only :meth:`Streams.close` (or the session being closed) ends the
iterations. Leaving the ``async for`` (``break``, an exception, cancellation) runs the
generator's ``finally`` and unsubscribes; wrap it in ``contextlib.aclosing`` to make that
immediate rather than at the generator's finalisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from itertools import count
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from mt5gate.errors import (
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5StateError,
)
from mt5gate.models import Deal, Order, Position, Price
from mt5gate.session.state import SessionState
from mt5gate.session.validation import require_symbol_name
from mt5gate.terminal.base import TickBatch, TickWatch

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["StreamStats", "Streams", "TradeEvent", "TradeEventKind"]

T = TypeVar("T")
H = TypeVar("H", bound="_Hub[Any]")

#: Failures that pause a poller for one interval instead of ending the stream: the terminal is
#: unreachable or slow (timeouts are connection errors), the breaker refuses calls, or the
#: session is between states (reconnecting, or connect() not finished).
TRANSIENT = (MT5ConnectionError, MT5CircuitBreakerOpen, MT5StateError)

#: History padding around server times (broker time is not UTC, and history lags a trade).
_PAD_S = 86_400
#: Position fields that move with the market, not with a trade: a change in them alone is not
#: a POSITION_CHANGED event.
_MARKET_FIELDS = frozenset({"price_current", "profit", "time_update_msc"})
#: Ticks of one symbol a TickWatch read hands over at most; more waiting means another round now.
_TICKS_PER_READ = 1000


class _EndedError(Exception):
    """A subscriber's iteration is over (stream closed)."""


# ------------------------------------------------------------------------------- subscribers


class _Subscriber(Generic[T]):
    """One consumer's bounded buffer; pushing never waits, so a slow reader blocks nobody."""

    def __init__(self, name: str, buffer: int, interval_s: float, hub: _Hub[T]) -> None:
        if buffer < 1 or interval_s <= 0:
            raise ValueError(f"buffer must be >= 1 and interval_s > 0, got {buffer}, {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self.dropped = 0
        self._buffer = buffer
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._ended = False
        self._hub = hub

    def push(self, item: T) -> None:
        """Queue ``item``; when the buffer is full the oldest item is dropped and counted."""
        if len(self._items) >= self._buffer:
            self._items.popleft()
            self.dropped += 1
            self._hub.dropped(self)
        self._items.append(item)
        self._ready.set()

    @property
    def ended(self) -> bool:
        """Whether the iteration was ended (the consumer may not have seen it yet)."""
        return self._ended

    def end(self, error: BaseException | None = None) -> None:
        """End the iteration (with ``error`` raised to the consumer, if given); once."""
        if self._ended:
            return
        self._ended, self._error = True, error
        self._ready.set()

    async def get(self) -> T:
        """The next item; raises ``_EndedError`` (or the failure) once the stream is over."""
        while not self._items and not self._ended:
            self._ready.clear()
            await self._ready.wait()
        if self._ended:
            raise self._error or _EndedError()
        return self._items.popleft()


class _TickSubscriber(_Subscriber[Price]):
    """A tick subscriber: its symbols, and the last tick it was given of each."""

    def __init__(self, symbols: tuple[str, ...], *args: Any) -> None:
        super().__init__(*args)
        self.symbols = symbols
        self.last: dict[str, Price] = {}

    def offer(self, price: Price) -> None:
        """Queue ``price`` unless it is the tick this subscriber was given last (a poll that
        saw no new tick reads the same one again)."""
        if self.last.get(price.symbol) != price:
            self.last[price.symbol] = price
            self.push(price)


# ------------------------------------------------------------------------------------ hubs


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One stream kind now: how many subscribers, whether its poller runs, drops so far."""

    kind: str
    subscribers: int
    polling: bool
    dropped: int  # total over the current subscribers


class _Hub(ABC, Generic[T]):
    """The subscribers of one stream kind and the one poller task that feeds them."""

    kind: str = "stream"

    def __init__(self, session: MT5SessionManager) -> None:
        self.session = session
        self.subscribers: list[_Subscriber[T]] = []
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self._stopping: set[asyncio.Task[None]] = set()
        self._numbers = count(1)
        self._dropping: dict[_Subscriber[T], None] = {}  # dropped since the last report

    def next_name(self) -> str:
        """A name for the next subscriber: the kind and a number, as observers see it."""
        return f"{self.kind}#{next(self._numbers)}"

    def stats(self) -> StreamStats:
        """How this stream stands now (for metrics and tests)."""
        polling = self.task is not None and not self.task.done()
        dropped = sum(s.dropped for s in self.subscribers)
        return StreamStats(self.kind, len(self.subscribers), polling, dropped)

    def dropped(self, subscriber: _Subscriber[T]) -> None:
        """Note that ``subscriber`` dropped an item; :meth:`report_drops` tells the observer."""
        self._dropping[subscriber] = None

    def report_drops(self) -> None:
        """Tell the session observer the drop total of each subscriber that dropped items
        since the last report (called after every round, and when a subscriber leaves)."""
        dropping, self._dropping = self._dropping, {}
        for subscriber in dropping:
            self.session.observer.stream_dropped(subscriber.name, subscriber.dropped)

    async def iterate(self, subscriber: _Subscriber[T]) -> AsyncIterator[T]:
        """The consumer side: subscribe, yield until the stream ends, always unsubscribe."""
        self.add(subscriber)
        try:
            while True:
                try:
                    item = await subscriber.get()
                except _EndedError:
                    return
                yield item
        finally:
            self.remove(subscriber)

    def add(self, subscriber: _Subscriber[T]) -> None:
        """Subscribe; the first subscriber starts the poller."""
        if self.closed:
            raise MT5StateError("the session's streams are closed; open a new session")
        self.subscribers.append(subscriber)
        self.joined(subscriber)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name=self.kind)

    def remove(self, subscriber: _Subscriber[T]) -> None:
        """Unsubscribe; the last one out stops the poller (awaited later by ``close``)."""
        with contextlib.suppress(ValueError):
            self.subscribers.remove(subscriber)
        self.report_drops()
        self.left()
        if not self.subscribers:
            self._stop_poller()

    def joined(self, subscriber: _Subscriber[T]) -> None:
        """Called when ``subscriber`` was added."""

    def left(self) -> None:
        """Called when a subscriber was removed."""

    def _stop_poller(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    @property
    def interval_s(self) -> float:
        """The poll interval: the shortest any subscriber asked for."""
        return min((s.interval_s for s in self.subscribers), default=1.0)

    async def _run(self) -> None:
        """The poller: a round, then a pause, while anybody listens; failures never leak."""
        clock = self.session.clock
        try:
            await self.start()
            while self.subscribers and self.session.state != SessionState.CLOSED:
                began, due = clock.monotonic(), None
                with contextlib.suppress(*TRANSIENT):
                    due = await self.poll()
                self.report_drops()
                await clock.sleep(self._pause(due, clock.monotonic() - began))
        except Exception as error:  # a bug or a permanent failure: end iterations, never hang
            self.end_all(error)
        else:
            self.end_all(None)  # the session was closed under the stream

    def _pause(self, due_s: float | None, spent_s: float) -> float:
        """How long to sleep after a round: ``interval_s``, or less when the terminal said
        its next item is due sooner (``due_s`` from when the round began)."""
        if due_s is None:
            return self.interval_s
        return max(0.0, min(self.interval_s, due_s - spent_s))

    async def start(self) -> None:
        """Called when a poller starts, before its first round."""

    @abstractmethod
    async def poll(self) -> float | None:
        """One round: read the terminal and push what is new to the subscribers; returns in
        how many seconds the next item is due, when the terminal can tell (else None)."""

    def end_all(self, error: BaseException | None) -> None:
        """End every subscriber's iteration."""
        for subscriber in list(self.subscribers):
            subscriber.end(error)

    async def close(self) -> None:
        """End all iterations and stop the poller for good."""
        self.closed = True
        self.end_all(None)
        self.subscribers.clear()
        self._stop_poller()
        pending = list(self._stopping)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class _TickHub(_Hub[Price]):
    """Reads the ticks of the union of subscribed symbols; fans every new one out.

    A symbol's first tick is its latest, read with ``get_price`` (which selects it in Market
    Watch on first use; an unknown symbol ends its subscribers' iterations with the error).
    With a :class:`~mt5gate.terminal.base.TickWatch` terminal every later round is one
    ``ticks_after`` call for all the symbols, from a cursor per symbol (the last tick handed
    out: its time, and how many ticks of that millisecond were), so no tick is skipped, and
    the poller sleeps until the terminal says the next tick is due. A ``ticks_after`` that
    fails as ``symbol_info_tick`` would (a restarted terminal forgot Market Watch) starts the
    symbols afresh. Any other terminal is polled with ``get_price`` every round.
    """

    kind = "ticks"

    def __init__(self, session: MT5SessionManager) -> None:
        super().__init__(session)
        self._cursors: dict[str, tuple[int, int]] = {}  # symbol -> (time_msc, seen at it)
        self._latest: dict[str, Price] = {}  # symbol -> the last tick handed out
        self._routes: dict[str, list[_TickSubscriber]] | None = None  # symbol -> readers
        self._watch = False

    def joined(self, subscriber: _Subscriber[Price]) -> None:
        """A new subscriber first gets the latest tick of its symbols the poller knows (the
        others come with the next round); the routes are rebuilt."""
        self._routes = None
        if isinstance(subscriber, _TickSubscriber):
            for symbol in subscriber.symbols:
                latest = self._latest.get(symbol)
                if latest is not None:
                    subscriber.offer(latest)

    def left(self) -> None:
        self._routes = None
        if not self.subscribers:  # the poller stops: the next one starts from the latest tick
            self._cursors.clear()
            self._latest.clear()

    def _route(self) -> dict[str, list[_TickSubscriber]]:
        """Symbol -> the subscribers still reading it (cached until a subscriber comes or
        goes); cursors of symbols nobody reads any more are dropped."""
        if self._routes is None:
            routes: dict[str, list[_TickSubscriber]] = {}
            for subscriber in self.subscribers:
                if isinstance(subscriber, _TickSubscriber) and not subscriber.ended:
                    for symbol in subscriber.symbols:
                        routes.setdefault(symbol, []).append(subscriber)
            self._routes = dict(sorted(routes.items()))
            for gone in set(self._cursors) - set(routes):
                del self._cursors[gone]
                self._latest.pop(gone, None)
        return self._routes

    async def start(self) -> None:
        self._watch = isinstance(self.session.terminal, TickWatch)

    async def poll(self) -> float | None:
        routes = self._route()
        fresh = [s for s in routes if s not in self._cursors or not self._watch]
        if fresh:  # the latest tick of each, selecting it in Market Watch on first use
            await self._read_each(fresh)
        known = [s for s in self._route() if s in self._cursors]
        if not (self._watch and known):
            return None
        try:
            return await self._read_watch(known)
        except MT5DataError:  # a symbol left Market Watch (a restarted terminal): read afresh
            self._cursors.clear()  # next round, with get_price, which selects them again
            return None

    async def _read_watch(self, symbols: list[str]) -> float | None:
        """One ``ticks_after`` round for every symbol; each new tick goes out as it comes."""
        cursors = tuple((s, *self._cursors[s]) for s in symbols)
        batch: TickBatch = await self.session.read("ticks_after", cursors, _TICKS_PER_READ)
        routes = self._route()  # as they are now: a subscriber may have come meanwhile
        for symbol, tick in batch.ticks:
            cursor = self._cursors.get(symbol)
            if cursor is None:  # its last reader left meanwhile
                continue
            at, seen = cursor
            self._cursors[symbol] = (at, seen + 1) if tick.time_msc == at else (tick.time_msc, 1)
            self._hand_out(Price.from_tick(symbol, tick), routes)
        return batch.due_s

    async def _read_each(self, symbols: list[str]) -> None:
        """``get_price`` of every symbol (concurrently: the worker runs them as one batch)."""
        results = await asyncio.gather(*(self._price(symbol) for symbol in symbols))
        routes = self._route()
        for symbol, price in zip(symbols, results, strict=True):
            if isinstance(price, MT5Error):
                for subscriber in routes.get(symbol, ()):
                    subscriber.end(price)  # an unknown symbol: tell its consumer, do not spin
                self._routes = None
            elif price is not None:
                self._cursors[symbol] = (price.time_msc, 1)
                self._hand_out(price, routes)

    def _hand_out(self, price: Price, routes: dict[str, list[_TickSubscriber]]) -> None:
        self._latest[price.symbol] = price
        for subscriber in routes.get(price.symbol, ()):
            subscriber.offer(price)

    async def _price(self, symbol: str) -> Price | MT5Error | None:
        """The symbol's tick; None on a transient failure, the error on a permanent one."""
        try:
            return await self.session.get_price(symbol)
        except TRANSIENT:
            return None
        except MT5Error as error:
            return error


# ----------------------------------------------------------------------------- trade events


class TradeEventKind(StrEnum):
    """What happened to a position, an order or the deal history."""

    POSITION_OPENED = "position_opened"
    POSITION_CHANGED = "position_changed"
    POSITION_CLOSED = "position_closed"
    ORDER_PLACED = "order_placed"
    ORDER_CHANGED = "order_changed"
    ORDER_REMOVED = "order_removed"
    DEAL_ADDED = "deal_added"


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One change, numbered: ``seq`` rises by one per event of the session, so a consumer that
    sees a gap knows its buffer overflowed. ``item`` is the new state (the last known state for
    POSITION_CLOSED and ORDER_REMOVED)."""

    seq: int
    kind: TradeEventKind
    ticket: int
    item: Position | Order | Deal | None


K = TradeEventKind


def _trade_fields(position: Position) -> tuple[Any, ...]:
    """What defines a position for change events: every field but the market-driven ones."""
    return tuple(
        getattr(position, f.name) for f in fields(position) if f.name not in _MARKET_FIELDS
    )


def _diff_positions(
    old: dict[int, Position], new: dict[int, Position]
) -> list[tuple[K, int, Position]]:
    """Opened, changed (see ``_trade_fields``) and closed positions, by ticket."""
    changes = [(K.POSITION_CLOSED, t, p) for t, p in old.items() if t not in new]
    for ticket, position in new.items():
        before = old.get(ticket)
        if before is None:
            changes.append((K.POSITION_OPENED, ticket, position))
        elif _trade_fields(before) != _trade_fields(position):
            changes.append((K.POSITION_CHANGED, ticket, position))
    return sorted(changes, key=lambda change: change[1])


def _diff_orders(old: dict[int, Order], new: dict[int, Order]) -> list[tuple[K, int, Order]]:
    """Placed, changed (any field) and removed (filled, cancelled, expired) pending orders."""
    changes = [(K.ORDER_REMOVED, t, o) for t, o in old.items() if t not in new]
    for ticket, order in new.items():
        before = old.get(ticket)
        if before is None:
            changes.append((K.ORDER_PLACED, ticket, order))
        elif before != order:
            changes.append((K.ORDER_CHANGED, ticket, order))
    return sorted(changes, key=lambda change: change[1])


@dataclass(slots=True)
class _Book:
    """The trade state one round saw."""

    positions: dict[int, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    deals: dict[int, Deal] = field(default_factory=dict)  # the deals in the history window
    newest_deal_s: int = 0  # server time of the newest deal seen: anchors the history window

    def new_deals(self, old: _Book) -> list[Deal]:
        """Deals in this window that the previous round had not seen, oldest first."""
        fresh = [d for t, d in self.deals.items() if t not in old.deals]
        return sorted(fresh, key=lambda d: (d.time_msc, d.ticket))


def _seconds(msc: int) -> int:
    return msc // 1000


class _EventHub(_Hub[TradeEvent]):
    """Diffs positions and orders, and reads new deals over a padded server-time window.

    The window never starts from the local clock: it starts a day before the newest deal
    already seen (at the very first baseline: the epoch, one full history read), so deals are
    found whatever the broker's UTC offset. It ends a day past both the newest server time seen
    and the local clock, which covers any broker offset (pitfall B4). Only deals still inside
    the window are remembered, so memory stays bounded.
    """

    kind = "trade_events"

    def __init__(self, session: MT5SessionManager) -> None:
        super().__init__(session)
        self.book = _Book()
        self._seq = count(1)

    async def start(self) -> None:
        """Take the baseline: changes are reported from now on, not what already exists."""
        while self.subscribers and self.session.state != SessionState.CLOSED:
            try:
                self.book = await self._read()
                return
            except TRANSIENT:
                await self.session.clock.sleep(self.interval_s)

    async def poll(self) -> None:
        new = await self._read()
        old, self.book = self.book, new
        changes: list[tuple[K, int, Position | Order | Deal]] = [
            *_diff_orders(old.orders, new.orders),
            *((K.DEAL_ADDED, d.ticket, d) for d in new.new_deals(old)),
            *_diff_positions(old.positions, new.positions),
        ]
        for kind, ticket, item in changes:
            event = TradeEvent(next(self._seq), kind, ticket, item)
            for subscriber in self.subscribers:
                subscriber.push(event)

    async def _read(self) -> _Book:
        """Positions, orders and the deal window, all read before anything is compared."""
        session = self.session
        positions = {p.ticket: p for p in await session.positions()}
        orders = {o.ticket: o for o in await session.orders()}
        seen = [_seconds(p.time_update_msc) for p in positions.values()]
        seen += [_seconds(o.time_setup_msc) for o in orders.values()]
        start, end = self._window(max(seen, default=0))
        deals = {d.ticket: d for d in await session.history_deals(start, end)}
        newest = max((_seconds(d.time_msc) for d in deals.values()), default=0)
        return _Book(positions, orders, deals, max(newest, self.book.newest_deal_s))

    def _window(self, newest_seen_s: int) -> tuple[int, int]:
        """History bounds in server-time seconds (see the class docstring)."""
        anchor = self.book.newest_deal_s
        local = int(time.time())
        start = max(anchor - _PAD_S, 0)  # MT5 holds no time before 1970
        return start, max(local, anchor, newest_seen_s) + _PAD_S


# --------------------------------------------------------------------------------- facade


class Streams:
    """The session's streams; the manager builds one and closes it with the session."""

    def __init__(self, session: MT5SessionManager) -> None:
        self._session = session
        self._ticks = _TickHub(session)
        self._events = _EventHub(session)
        self._more: dict[type[_Hub[Any]], _Hub[Any]] = {}  # kinds of other modules, by class

    def hub(self, kind: type[H]) -> H:
        """The session's one hub of ``kind``, a stream kind of another module (bars, depth of
        market), made on first use; it is counted and closed with the others."""
        hub = self._more.get(kind)
        if hub is None:
            hub = self._more[kind] = kind(self._session)
            hub.closed = self._ticks.closed
        return cast(H, hub)

    def ticks(
        self, symbols: Sequence[str], *, interval_s: float = 0.05, buffer: int = 1000
    ) -> AsyncIterator[Price]:
        """New ticks of ``symbols`` (the current one first).

        A terminal that can only be polled (a real one) is asked for each symbol's latest tick
        every ``interval_s``; one that says when its next tick is due (the simulator's
        ``TickWatch``) is read when it is, at least every ``interval_s``, and gives every tick.
        ``buffer`` items are kept for a slow consumer; beyond that the oldest are dropped. The
        subscription starts at the first iteration (async generators run lazily).
        """
        names = _symbols(symbols)
        hub = self._ticks
        subscriber = _TickSubscriber(names, hub.next_name(), buffer, interval_s, hub)
        return hub.iterate(subscriber)

    def trade_events(
        self, *, interval_s: float = 0.25, buffer: int = 1000
    ) -> AsyncIterator[TradeEvent]:
        """Position, order and deal changes from the first iteration on, numbered by ``seq``.

        Within one poll round events come orders first, then deals, then positions, each by
        ticket (deals by time). What exists when the poller starts is the baseline, not events.
        """
        hub = self._events
        return hub.iterate(_Subscriber(hub.next_name(), buffer, interval_s, hub))

    def stats(self) -> tuple[StreamStats, ...]:
        """Subscribers, pollers and drops of each stream kind."""
        return tuple(hub.stats() for hub in self._hubs())

    async def close(self) -> None:
        """Stop the pollers and end every subscriber's iteration."""
        for hub in self._hubs():
            await hub.close()

    def _hubs(self) -> tuple[_Hub[Any], ...]:
        return (self._ticks, self._events, *self._more.values())


def _symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    """Validated, de-duplicated symbol names in the caller's order."""
    if isinstance(symbols, str):
        symbols = [symbols]
    names = tuple(dict.fromkeys(require_symbol_name(s) for s in symbols))
    if not names:
        raise ValueError("stream_ticks needs at least one symbol")
    return names
