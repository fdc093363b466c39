"""``/v1/stream``: ticks, trade events, bars and depth of market over one WebSocket per client.

Protocol (JSON text frames). The client sends::

    {"op": "auth", "key": "<api key>"}                 first, unless a key header was sent
    {"op": "subscribe", "account": "demo", "ticks": ["EURUSD", "GBPUSD"]}
    {"op": "subscribe", "account": "demo", "trades": true}
    {"op": "subscribe", "account": "demo", "bars": {"symbol": "EURUSD", "timeframe": "M1"}}
    {"op": "subscribe", "account": "demo", "bars": [{"symbol": "EURUSD", "timeframe": "H1"}, ...]}
    {"op": "subscribe", "account": "demo", "book": "EURUSD"}     (or a list of symbols)
    {"op": "unsubscribe", "id": "s1"}
    {"op": "ping"}

and receives, each message numbered by a per-connection ``seq`` (a gap never happens: the
server closes a client it had to drop, rather than skipping)::

    {"seq": 1, "type": "subscribed", "id": "s1", ...}
    {"seq": 2, "type": "tick", "id": "s1", "account": "demo", "data": {...Price}}
    {"seq": 3, "type": "trade", "id": "s2", "account": "demo", "data": {"kind": ..., ...}}
    {"seq": 4, "type": "bar", "id": "s3", "account": "demo", "data": {"symbol", "timeframe",
        "time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume",
        "closed"}}
    {"seq": 5, "type": "book", "id": "s4", "account": "demo", "data": {"symbol", "time_ms",
        "bids": [[price, volume], ...], "asks": [...]}}
    {"seq": 6, "type": "heartbeat", "time_ms": ...}          every ``heartbeat_s``
    {"seq": 7, "type": "error", "problem": {...problem+json body}}

Bars (:mod:`~mt5gate.session.candles`) are the terminal's own rates, so they agree with
``GET .../rates``: the forming bar (``closed: false``) first and whenever it changes, and each bar
once when it closes (``closed: true``), in time order, none skipped. Timeframes are named as
``GET .../rates`` takes them (``M1``, ``H4``, ``D1``, or the MT5 number). A book
(:mod:`~mt5gate.session.book`) comes first as it is, then on each change; each side best first;
``time_ms`` is when the gateway read it (MT5's book has no time). The session adds a symbol's
book (``market_book_add``) for its first subscriber and releases it after its last. An unknown
symbol answers the same not-found ``error`` as for ticks. Bars and books are read from the
account's local session: a service with a ``[bus]`` streams ticks and trades only.

Frames: one message per WebSocket frame by default. A client that connects with
``?batch=true`` gets every frame as a JSON array of messages instead, each message as above with
its own ``seq``: the messages waiting for it when its sender runs go out together (at most
``StreamOptions.batch_max`` messages or about ``batch_bytes`` of text per frame). An idle stream
sends arrays of one, as soon as each message exists, so batching adds no delay; a busy one
spends one frame (one ``send``, one compression, one pass through the server's WebSocket code)
on many messages instead of one each. That is what lets one process carry thousands of ticks a
second to hundreds of clients ([performance.md](../../docs/performance.md)).

Slow clients: each subscription reads the session's shared stream through its own bounded
buffer, which drops the oldest items (the session counts the drops); each connection has one
bounded outbox. A client whose outbox stays full is closed (1013, "try again later"): it is
dropped, never allowed to slow the poller or the other clients.

Fan-out cost: a tick read once is sent to every subscriber of its symbol, so its JSON is made
once (:func:`_tick_fields`, cached by value) and each message is that text with its own
``seq``, ``id`` and ``account`` put around it; the outbox holds message text, not objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from functools import lru_cache, partial
from itertools import count
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5DataError, MT5Error, MT5ValidationError
from mt5gate.fleet import Fleet
from mt5gate.models import Price
from mt5gate.service.auth import AuthError, Principal
from mt5gate.service.console.access import cookie_key, same_origin
from mt5gate.service.gateway import Gateway
from mt5gate.service.problems import Problem, problem_for
from mt5gate.service.routes import parse_timeframe
from mt5gate.service.security import presented_key
from mt5gate.session.book import Book, stream_book
from mt5gate.session.candles import Bar, stream_bars
from mt5gate.session.validation import require_symbol_name

__all__ = ["StreamOptions", "serve_stream"]

_SLOW_CLIENT = 1013  # "try again later"
_PRICE_FIELDS = tuple(f.name for f in dataclass_fields(Price))
_POLICY = 1008  # policy violation: no or bad key
_BAR_FIELDS = tuple(f.name for f in dataclass_fields(Bar))
_BARS = "{'symbol': ..., 'timeframe': 'M1'} or a list of such"
_KINDS = "'ticks': [symbols], 'trades': true, 'bars': {symbol, timeframe} or 'book': symbol"


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Limits of one WebSocket connection."""

    heartbeat_s: float = 10.0
    auth_timeout_s: float = 5.0
    outbox: int = 1000  # messages waiting for a slow client before it is dropped
    buffer: int = 256  # per subscription, in the session's stream (oldest dropped)
    max_subscriptions: int = 32
    max_symbols: int = 64
    batch_max: int = 256  # messages per frame with ?batch=true
    batch_bytes: int = 65_536  # a frame takes no further message once it holds this much text

    def __post_init__(self) -> None:
        for option in dataclass_fields(self):  # every limit is a positive number
            if getattr(self, option.name) <= 0:
                value = getattr(self, option.name)
                raise ValueError(f"StreamOptions.{option.name} must be > 0, got {value}")


def _fields(values: dict[str, Any]) -> str:
    """A message's fields as JSON text without the braces: ``"type":"pong"``."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)[1:-1]


@lru_cache(maxsize=1024)
def _tick_fields(price: Price) -> str:
    """``"data":{...}`` of a tick, made once for all of its subscribers (the session hands
    every subscriber of a symbol the same tick). A ``Price`` holds a str, floats and ints, so
    its fields are the JSON object as they are (``jsonable_encoder`` gives the same, slower)."""
    return _fields({"data": {name: getattr(price, name) for name in _PRICE_FIELDS}})


@lru_cache(maxsize=1024)
def _bar_fields(bar: Bar) -> str:
    """``"data":{...}`` of a bar, made once for all of its subscribers."""
    return _fields({"data": {name: getattr(bar, name) for name in _BAR_FIELDS}})


@lru_cache(maxsize=256)
def _book_fields(book: Book) -> str:
    """``"data":{...}`` of a book (its levels as ``[price, volume]`` pairs), made once for all
    of its subscribers."""
    return _fields({"data": {"symbol": book.symbol, "time_ms": book.time_ms,
                             "bids": book.bids, "asks": book.asks}})  # fmt: skip


@dataclass(slots=True)
class _Connection:
    """One client: its outbox (message text, without ``seq``), its subscriptions and its
    message numbers."""

    websocket: WebSocket
    gateway: Gateway
    options: StreamOptions
    batch: bool = False
    outbox: asyncio.Queue[str] = field(init=False)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    ids: count[int] = field(default_factory=lambda: count(1))
    seq: count[int] = field(default_factory=lambda: count(1))
    slow: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.outbox = asyncio.Queue(self.options.outbox)

    def post(self, message: dict[str, Any]) -> None:
        """Queue a message; a full outbox marks the client as too slow (it is then closed)."""
        self.post_text(_fields(message))

    def post_text(self, fields: str) -> None:
        """Queue a message given as its fields' JSON text (see :func:`_fields`)."""
        try:
            self.outbox.put_nowait(fields)
        except asyncio.QueueFull:
            self.slow.set()

    def error(self, error: BaseException) -> None:
        self.post({"type": "error", "problem": problem_for(error).body()})


async def serve_stream(websocket: WebSocket, gateway: Gateway, options: StreamOptions) -> None:
    """Run one client's connection until it leaves, is dropped, or the service stops."""
    await websocket.accept()
    batch = _batch_wanted(websocket.query_params.get("batch"))
    if batch is None:
        wrong = MT5ValidationError(field="batch", rule="'true' or 'false' (in the URL's query)")
        await _refuse(websocket, False, problem_for(wrong), "batch: 'true' or 'false'")
        return
    principal = await _authenticate(websocket, gateway, options, batch)
    if principal is None:
        return
    connection = _Connection(websocket, gateway, options, batch)
    sender = asyncio.ensure_future(_send_loop(connection))
    beats = asyncio.ensure_future(_heartbeats(connection))
    watchdog = asyncio.ensure_future(connection.slow.wait())
    reader = asyncio.ensure_future(_read_loop(connection))
    try:
        await asyncio.wait({sender, reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        if watchdog.done():
            await _close(websocket, _SLOW_CLIENT, "too slow: messages were piling up")
    finally:
        for task in (sender, beats, watchdog, reader, *connection.tasks.values()):
            task.cancel()
        await asyncio.gather(sender, beats, watchdog, reader, *connection.tasks.values(),
                             return_exceptions=True)  # fmt: skip


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code, reason)


def _batch_wanted(value: str | None) -> bool | None:
    """``?batch=``: absent or ``false``/``0`` one message per frame, ``true``/``1`` arrays;
    anything else is None (refused)."""
    if value is None:
        return False
    return {"true": True, "1": True, "false": False, "0": False}.get(value.lower())


async def _refuse(websocket: WebSocket, batch: bool, problem: Problem, reason: str) -> None:
    """Send one ``error`` message (``seq`` 0, in an array when batching) and close the
    connection as a policy violation."""
    text = f'{{"seq":0,{_fields({"type": "error", "problem": problem.body()})}}}'
    with contextlib.suppress(Exception):
        await websocket.send_text(f"[{text}]" if batch else text)
    await _close(websocket, _POLICY, reason)


async def _authenticate(
    websocket: WebSocket, gateway: Gateway, options: StreamOptions, batch: bool
) -> Principal | None:
    """The client's key (header, the console's cookie from a page of this site, or a first
    ``auth`` message), authorised for ``read``."""
    key = presented_key(websocket) or _console_key(websocket)
    try:
        if key is None:
            first = await asyncio.wait_for(websocket.receive_json(), options.auth_timeout_s)
            key = (
                first.get("key") if isinstance(first, dict) and first.get("op") == "auth" else None
            )
        principal = gateway.authenticator.authenticate(key)
        gateway.authenticator.authorize(principal, "read")
    except AuthError as refused:
        problem = Problem(refused.status, refused.title, refused.detail)
        await _refuse(websocket, batch, problem, refused.title)
        return None
    except (TimeoutError, WebSocketDisconnect, json.JSONDecodeError, ValueError):
        await _close(websocket, _POLICY, "authenticate first")
        return None
    return principal


def _console_key(websocket: WebSocket) -> str | None:
    """The signed-in console's key, for a WebSocket opened by one of this site's pages (a
    browser always sends ``Origin`` on a WebSocket: another site's page is refused)."""
    if websocket.headers.get("origin") is None or not same_origin(websocket):
        return None
    return cookie_key(websocket)


async def _send_loop(connection: _Connection) -> None:
    """Each queued message, numbered as it goes out (a JSON object: ``seq`` first); with
    ``batch``, every message waiting goes out in one frame (see the module docstring)."""
    websocket, seq, outbox = connection.websocket, connection.seq, connection.outbox
    if connection.batch:
        return await _send_batches(connection)
    while True:
        fields = await outbox.get()
        await websocket.send_text(f'{{"seq":{next(seq)},{fields}}}')


async def _send_batches(connection: _Connection) -> None:
    """Send frames of ``[message, ...]``: the first message as soon as it is queued, with
    whatever else is already waiting, up to ``batch_max`` messages or ``batch_bytes``."""
    websocket, seq, outbox = connection.websocket, connection.seq, connection.outbox
    most, limit = connection.options.batch_max, connection.options.batch_bytes
    while True:
        message = f'{{"seq":{next(seq)},{await outbox.get()}}}'
        parts, size = [message], len(message)
        while len(parts) < most and size < limit and not outbox.empty():
            message = f'{{"seq":{next(seq)},{outbox.get_nowait()}}}'
            parts.append(message)
            size += len(message)
        await websocket.send_text(f"[{','.join(parts)}]")


async def _heartbeats(connection: _Connection) -> None:
    while True:
        await asyncio.sleep(connection.options.heartbeat_s)
        connection.post({"type": "heartbeat", "time_ms": time.time_ns() // 1_000_000})


async def _read_loop(connection: _Connection) -> None:
    while True:
        try:
            message = await connection.websocket.receive_json()
        except (json.JSONDecodeError, ValueError, KeyError):
            connection.error(MT5ValidationError(field="message", rule="a JSON object"))
            continue
        except WebSocketDisconnect:
            return
        try:
            _handle(connection, message)
        except MT5Error as error:
            connection.error(error)


def _handle(connection: _Connection, message: Any) -> None:
    if not isinstance(message, dict):
        raise MT5ValidationError(field="message", rule="a JSON object with an 'op'")
    op = message.get("op")
    if op == "ping":
        connection.post({"type": "pong"})
    elif op == "subscribe":
        _subscribe(connection, message)
    elif op == "unsubscribe":
        _unsubscribe(connection, message)
    else:
        raise MT5ValidationError(field="op", rule="one of auth, subscribe, unsubscribe, ping")


def _subscribe(connection: _Connection, message: dict[str, Any]) -> None:
    options = connection.options
    if len(connection.tasks) >= options.max_subscriptions:
        raise MT5ValidationError(field="subscribe", rule=f"at most {options.max_subscriptions}")
    runtime = connection.gateway.account(str(message.get("account", "")))
    fleet = connection.gateway.bus
    ticks, trades, after = message.get("ticks"), message.get("trades"), message.get("after")
    bars, book = message.get("bars"), message.get("book")
    if after is not None and (fleet is None or trades is not True):
        raise MT5ValidationError(field="after", rule="for trades, on a service with a [bus]")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        raise MT5ValidationError(field="after", rule="a stream_seq: an integer >= 0")
    source: Callable[[], AsyncIterator[str]]
    what: dict[str, Any]
    if isinstance(ticks, list) and ticks and all(isinstance(s, str) for s in ticks):
        if len(ticks) > options.max_symbols:
            raise MT5ValidationError(field="ticks", rule=f"at most {options.max_symbols} symbols")
        kind, what = "tick", {"ticks": ticks}
        if fleet is None:
            source = _local(lambda: runtime.session.stream_ticks(ticks, buffer=options.buffer),
                            _tick_fields)  # fmt: skip
        else:
            symbols = [require_symbol_name(s) for s in ticks]
            source = partial(_bus_ticks, fleet, runtime.name, symbols, options.buffer)
    elif trades is True:
        kind, what = "trade", {"trades": True} | ({} if after is None else {"after": after})
        if fleet is None:
            source = _local(lambda: runtime.session.trade_events(buffer=options.buffer),
                            lambda event: _fields({"data": jsonable_encoder(event)}))  # fmt: skip
        else:
            source = partial(_bus_trades, fleet, runtime.name, after)
    elif bars is not None and fleet is None:
        keys = _bar_keys(bars, options.max_symbols)
        kind, what = "bar", {"bars": [{"symbol": s, "timeframe": Timeframe(t).name}
                                      for s, t in keys]}  # fmt: skip
        source = _local(lambda: stream_bars(runtime.session, keys, buffer=options.buffer),
                        _bar_fields)  # fmt: skip
    elif book is not None and fleet is None:
        names = _book_symbols(book, options.max_symbols)
        kind, what = "book", {"book": list(names)}
        source = _local(lambda: stream_book(runtime.session, names, buffer=options.buffer),
                        _book_fields)  # fmt: skip
    elif bars is not None or book is not None:
        rule = "on a service without a [bus] (the bus carries ticks and trades)"
        raise MT5ValidationError(field="bars" if book is None else "book", rule=rule)
    else:
        raise MT5ValidationError(field="subscribe", rule=_KINDS)
    ident = f"s{next(connection.ids)}"
    connection.post({"type": "subscribed", "id": ident, "account": runtime.name, **what})
    pump = _pump(connection, ident, kind, runtime.name, source, wait=fleet is not None)
    connection.tasks[ident] = asyncio.ensure_future(pump)


def _bar_keys(bars: Any, most: int) -> tuple[tuple[str, int], ...]:
    """``{"symbol": "EURUSD", "timeframe": "M1"}``, or a list of such, as (symbol, timeframe)
    pairs; timeframes by name or number, as ``GET .../rates`` takes them."""
    wanted = bars if isinstance(bars, list) else [bars]
    if not wanted or not all(isinstance(b, dict) for b in wanted):
        raise MT5ValidationError(field="bars", rule=_BARS)
    if len(wanted) > most:
        raise MT5ValidationError(field="bars", rule=f"at most {most} (symbol, timeframe) pairs")
    keys: dict[tuple[str, int], None] = {}
    for entry in wanted:
        symbol, frame = entry.get("symbol"), entry.get("timeframe", "M1")
        if not isinstance(symbol, str) or isinstance(frame, bool):
            raise MT5ValidationError(field="bars", rule=_BARS)
        try:
            timeframe = parse_timeframe(str(frame))
        except MT5ValidationError as error:
            raise MT5ValidationError(field="bars.timeframe", rule=error.rule) from None
        keys[(require_symbol_name(symbol, "bars.symbol"), timeframe)] = None
    return tuple(keys)


def _book_symbols(book: Any, most: int) -> tuple[str, ...]:
    """``"EURUSD"`` or ``["EURUSD", "GBPUSD"]``: validated, de-duplicated symbol names."""
    symbols = [book] if isinstance(book, str) else book
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise MT5ValidationError(field="book", rule="a symbol, or a list of symbols")
    if len(symbols) > most:
        raise MT5ValidationError(field="book", rule=f"at most {most} symbols")
    return tuple(dict.fromkeys(require_symbol_name(s, "book") for s in symbols))


def _local(
    items: Callable[[], AsyncIterator[Any]], encode: Callable[[Any], str]
) -> Callable[[], AsyncIterator[str]]:
    """A session stream's items as message fields (``data``), encoded by ``encode``."""

    async def fields() -> AsyncIterator[str]:
        stream = items()
        try:
            async for item in stream:
                yield encode(item)
        finally:
            closer: Callable[[], Awaitable[None]] | None = getattr(stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    return fields


async def _bus_ticks(
    fleet: Fleet, account: str, symbols: list[str], buffer: int
) -> AsyncIterator[str]:
    """Ticks from the bus, published by the account's owner wherever it runs."""
    async for tick in fleet.ticks(account, symbols, buffer=buffer):
        failure = tick.get("error")
        if isinstance(failure, dict):
            raise MT5DataError(str(failure.get("message", "unknown symbol")),
                               hint="Check the symbol's name (GET .../symbols).")  # fmt: skip
        yield _fields({"data": tick})


async def _bus_trades(fleet: Fleet, account: str, after: int | None) -> AsyncIterator[str]:
    """Journal events from the event stream after ``after`` (default: from now on), each with
    its ``stream_seq``: resuming with the last one seen misses nothing and repeats nothing."""
    start = await fleet.last_event_seq(account) if after is None else after
    async for seq, event in fleet.trades(account, start):
        yield _fields({"stream_seq": seq, "data": event})


def _unsubscribe(connection: _Connection, message: dict[str, Any]) -> None:
    ident = message.get("id")
    task = connection.tasks.pop(str(ident), None)
    if task is None:
        raise MT5ValidationError(field="id", rule="the id of one of your subscriptions")
    task.cancel()
    connection.post({"type": "unsubscribed", "id": ident})


async def _pump(
    connection: _Connection, ident: str, kind: str, account: str,
    source: Callable[[], AsyncIterator[str]], *, wait: bool = False,
) -> None:  # fmt: skip
    """Move one subscription's items into the connection's outbox. With ``wait`` (the bus's
    streams, which can replay a backlog) a full outbox makes the reader wait instead of
    dropping the client; a client that stops reading is still closed by the heartbeat."""
    head = _fields({"type": kind, "id": ident, "account": account}) + ","
    try:
        async for fields in source():
            if wait:
                await connection.outbox.put(head + fields)
            else:
                connection.post_text(head + fields)
    except MT5Error as error:
        connection.error(error)
