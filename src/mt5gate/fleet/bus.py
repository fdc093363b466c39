"""``Bus``: this process's one connection to NATS, and the few operations the fleet needs.

The only module that imports nats-py, and only when :meth:`Bus.start` runs: ``import mt5gate``
and ``mt5gate serve`` without ``[bus]`` never need it (``pip install 'mt5gate[fleet]'``).

The connection never crashes the service. :meth:`Bus.start` returns at once; a task connects
with backoff (doubling to ``max_backoff_s``) until the server answers, and from then on nats-py
reconnects forever. The state (:class:`BusState`, with the reason when not connected) is what
the ``bus`` health check reports. While disconnected:

* core publishes (ticks, interest) are dropped and counted, never buffered: a tick that old is
  worthless, and interest is refreshed anyway;
* :meth:`Bus.publish_event` raises :class:`BusUnavailableError`: the event publisher keeps its
  place and tries again (journal events are never dropped, the journal holds them);
* readers (:meth:`Bus.ticks`, :meth:`Bus.events`) wait, then carry on where they were.

The event stream (``MT5GATE_EVENTS``, subjects ``mt5gate.*.events``) is created or updated on
every (re)connect, so a server that lost its store gets it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from mt5gate.fleet.subjects import events_subjects

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

__all__ = [
    "Bus",
    "BusConflictError",
    "BusOptions",
    "BusState",
    "BusUnavailableError",
    "LastEvent",
    "TickInbox",
]

log = logging.getLogger("mt5gate.fleet")

#: JetStream's answer to a publish whose expected last subject sequence is not the stream's.
_WRONG_LAST_SEQUENCE: Final = 10071


class BusState(StrEnum):
    """Where the connection stands."""

    STARTING = "starting"  # no connection yet: the first connect is being tried
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # lost; nats-py is reconnecting
    CLOSED = "closed"


class BusUnavailableError(Exception):
    """The bus cannot take the operation now (not connected, no answer, no stream yet)."""


class BusConflictError(Exception):
    """Another publisher wrote the subject since this one last looked (its expected last
    sequence is stale): read the stream's last event again before publishing more."""


@dataclass(frozen=True, slots=True)
class BusOptions:
    """How to reach NATS and name the stream. ``token`` and ``credentials_file`` are secrets
    (never in ``repr`` or logs)."""

    url: str
    token: str | None = field(default=None, repr=False)
    credentials_file: Path | None = field(default=None, repr=False)
    stream: str = "MT5GATE_EVENTS"
    duplicate_window_s: float = 120.0
    connect_timeout_s: float = 2.0
    reconnect_wait_s: float = 0.5
    max_backoff_s: float = 5.0
    request_timeout_s: float = 5.0
    consumer_heartbeat_s: float = 1.0
    name: str = "mt5gate"

    @property
    def where(self) -> str:
        """``host:port`` of the server, for messages (never the credentials)."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 4222}"


@dataclass(frozen=True, slots=True)
class LastEvent:
    """The last message of one subject in the stream: its stream sequence and headers."""

    stream_seq: int
    headers: Mapping[str, str]


class TickInbox:
    """A bounded buffer of core messages: pushing never waits; when full the oldest item is
    dropped and counted (a slow WebSocket client loses old ticks, nobody else waits)."""

    def __init__(self, size: int, on_drop: Callable[[], None] = lambda: None) -> None:
        self.size = size
        self.dropped = 0
        self._items: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._on_drop = on_drop

    def push(self, payload: bytes) -> None:
        """Queue ``payload``, dropping the oldest item when full."""
        if len(self._items) >= self.size:
            self._items.popleft()
            self.dropped += 1
            self._on_drop()
        self._items.append(payload)
        self._ready.set()

    async def get(self) -> bytes:
        """The next payload (waits for one)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class Bus:
    """One NATS connection (module docstring). Build it, ``await start()``, ``await close()``."""

    def __init__(self, options: BusOptions) -> None:
        self.options = options
        self.state = BusState.STARTING
        self.reason = f"connecting to {options.where}"
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Bus {self.options.where} {self.state}>"

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background (returns at once; a server that is down is retried).
        ``RuntimeError`` when nats-py is not installed."""
        if importlib.util.find_spec("nats") is None:
            raise RuntimeError("the bus needs nats-py: pip install 'mt5gate[fleet]'")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._connect_forever(),
                                                                name="bus-connect")  # fmt: skip

    async def close(self) -> None:
        """Stop connecting, close the connection, end every background task."""
        self._set(BusState.CLOSED, "closed")
        tasks = [t for t in (self._task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            await _close_client(nc)

    @property
    def connected(self) -> bool:
        """Whether the connection is up now."""
        return self.state == BusState.CONNECTED

    async def wait_connected(self) -> None:
        """Return once the connection is up."""
        await self._connected.wait()

    def _set(self, state: BusState, reason: str) -> None:
        if state != self.state:
            log.log(logging.INFO if state == BusState.CONNECTED else logging.WARNING,
                    "bus %s: %s (%s)", self.options.where, state, reason)  # fmt: skip
        self.state, self.reason = state, reason
        if state == BusState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()

    async def _connect_forever(self) -> None:
        delay = self.options.reconnect_wait_s
        while self._nc is None:
            try:
                self._nc = await self._connect()
            except Exception as error:  # down, refused, bad credentials: say so, keep trying
                self.reason = f"cannot connect to {self.options.where}: {type(error).__name__}"
                log.warning("bus: %s; retrying in %.1f s", self.reason, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.max_backoff_s)
        self._js = self._nc.jetstream(timeout=self.options.request_timeout_s)
        await self._on_connected()

    async def _connect(self) -> NatsClient:
        import nats

        options = self.options
        credentials = None if options.credentials_file is None else str(options.credentials_file)
        return await nats.connect(
            servers=[options.url], name=options.name, token=options.token,
            user_credentials=credentials, connect_timeout=int(max(options.connect_timeout_s, 1)),
            reconnect_time_wait=options.reconnect_wait_s,
            max_reconnect_attempts=-1, allow_reconnect=True,
            disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
            error_cb=self._error, closed_cb=self._closed,
        )  # fmt: skip

    async def _on_connected(self) -> None:
        self._set(BusState.CONNECTED, f"connected to {self.options.where}")
        self._spawn(self._ensure_stream_quietly())

    async def _disconnected(self) -> None:
        if self.state != BusState.CLOSED:
            self._set(BusState.DISCONNECTED, f"lost {self.options.where}; reconnecting")

    async def _reconnected(self) -> None:
        await self._on_connected()

    async def _error(self, error: Exception) -> None:
        """nats-py's errors: while not connected they are the reason (said once per kind)."""
        if self.state in (BusState.STARTING, BusState.DISCONNECTED):
            reason = f"cannot connect to {self.options.where}: {type(error).__name__}"
            if reason != self.reason:
                log.warning("bus: %s; retrying", reason)
            self.reason = reason
        else:
            log.debug("bus: %s: %s", type(error).__name__, error)

    async def _closed(self) -> None:
        if self.state != BusState.CLOSED:
            self._set(BusState.DISCONNECTED, "the connection was closed")

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the event stream ------------------------------------------------------------------

    async def ensure_stream(self) -> None:
        """Create the event stream, or update its settings (every (re)connect does this)."""
        from nats.js import api
        from nats.js.errors import BadRequestError

        js = self._jetstream()
        config = api.StreamConfig(
            name=self.options.stream, subjects=[events_subjects()],
            storage=api.StorageType.FILE, duplicate_window=self.options.duplicate_window_s,
        )  # fmt: skip
        try:
            await js.add_stream(config)
        except BadRequestError:  # exists with other settings
            await js.update_stream(config)

    async def _ensure_stream_quietly(self) -> None:
        try:
            await self.ensure_stream()
        except Exception as error:  # the next publish tries again
            log.warning("bus: could not create the event stream %s: %s: %s",
                        self.options.stream, type(error).__name__, error)  # fmt: skip

    def _jetstream(self) -> JetStreamContext:
        if self._js is None or not self.connected:
            raise BusUnavailableError(self.reason)
        return self._js

    async def publish_event(
        self, subject: str, payload: bytes, headers: Mapping[str, str], *, expected_last: int
    ) -> tuple[int, bool]:
        """Publish one event to the stream and wait for its ack: ``(stream seq, duplicate)``.

        ``expected_last`` is the subject's last stream sequence as this publisher knows it
        (0: none); :class:`BusConflictError` when another publisher wrote since.
        :class:`BusUnavailableError` when it could not be stored now (try again: the
        ``Nats-Msg-Id`` in ``headers`` makes a repeat harmless)."""
        import nats.errors
        from nats.js.errors import APIError, NoStreamResponseError

        from mt5gate.fleet.subjects import EXPECTED_LAST_HEADER

        js = self._jetstream()
        sent = {**headers, EXPECTED_LAST_HEADER: str(expected_last)}
        try:
            ack = await js.publish(subject, payload, headers=sent)
        except APIError as refused:
            if refused.err_code == _WRONG_LAST_SEQUENCE:
                raise BusConflictError(str(refused.description)) from None
            raise BusUnavailableError(f"the stream refused the event: {refused}") from None
        except (NoStreamResponseError, nats.errors.NoRespondersError):
            self._spawn(self._ensure_stream_quietly())
            raise BusUnavailableError(f"no stream {self.options.stream} yet") from None
        except nats.errors.Error as error:
            raise BusUnavailableError(f"{type(error).__name__}: {error}") from None
        return ack.seq, bool(ack.duplicate)

    async def last_event(self, subject: str) -> LastEvent | None:
        """The stream's last message on ``subject`` (``None``: there is none)."""
        import nats.errors
        from nats.js.errors import NotFoundError

        js = self._jetstream()
        try:
            message = await js.get_last_msg(self.options.stream, subject)
        except NotFoundError:
            return None
        except nats.errors.Error as error:
            raise BusUnavailableError(f"{type(error).__name__}: {error}") from None
        return LastEvent(int(message.seq or 0), dict(message.headers or {}))

    async def events(self, subject: str, after: int) -> AsyncIterator[tuple[int, bytes]]:
        """``(stream seq, payload)`` of every message on ``subject`` after stream sequence
        ``after``, in order, each once, forever: an ordered consumer, made again from the last
        sequence delivered whenever it fails (a restart of the server, a lost connection)."""
        last = after
        while True:
            await self.wait_connected()
            try:
                async for seq, payload in self._ordered(subject, last):
                    if seq > last:  # a consumer made again may repeat what was delivered
                        last = seq
                        yield seq, payload
            except BusUnavailableError as error:
                log.debug("bus: event reader on %s paused: %s", subject, error)
            await asyncio.sleep(self.options.reconnect_wait_s)

    async def _ordered(self, subject: str, after: int) -> AsyncIterator[tuple[int, bytes]]:
        import nats.errors
        from nats.js import api

        js = self._jetstream()
        config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                                    opt_start_seq=after + 1)  # fmt: skip
        try:
            subscription = await js.subscribe(
                subject, stream=self.options.stream, config=config, ordered_consumer=True,
                idle_heartbeat=self.options.consumer_heartbeat_s,
            )  # fmt: skip
        except nats.errors.Error as error:
            raise BusUnavailableError(f"{type(error).__name__}: {error}") from None
        try:
            async for message in subscription.messages:
                yield _stream_seq(message), message.data
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    # -- core subjects ---------------------------------------------------------------------

    async def publish(self, subject: str, payload: bytes) -> bool:
        """Publish on a core subject now; ``False`` (dropped) when not connected."""
        nc = self._nc
        if nc is None or not self.connected:
            return False
        try:
            await nc.publish(subject, payload)
        except Exception:  # lost in between: the same as not connected
            return False
        return True

    async def subscribe(
        self, subject: str, on_message: Callable[[bytes], None]
    ) -> Callable[[], Awaitable[None]]:
        """Call ``on_message(payload)`` for every message on a core ``subject`` (a wildcard is
        fine) from now on, across reconnects; waits for the connection. Returns the coroutine
        function that ends the subscription."""

        async def received(message: Msg) -> None:
            on_message(message.data)

        while True:
            await self.wait_connected()
            nc = self._nc
            try:
                assert nc is not None
                subscription = await nc.subscribe(subject, cb=received)
                break
            except Exception as error:  # lost in between: wait for the connection again
                log.debug("bus: subscribe %s: %s", subject, error)
                await asyncio.sleep(self.options.reconnect_wait_s)

        async def unsubscribe() -> None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

        return unsubscribe

    async def ticks(self, subject: str, inbox: TickInbox) -> AsyncIterator[bytes]:
        """Payloads published on ``subject``, through ``inbox`` (bounded, oldest dropped)."""
        unsubscribe = await self.subscribe(subject, inbox.push)
        try:
            while True:
                yield await inbox.get()
        finally:
            await unsubscribe()


async def _close_client(nc: NatsClient) -> None:
    """Close nats-py's client and make sure its reconnect task ended: on Python 3.11 a cancel
    that races a connect attempt finishing inside ``asyncio.wait_for`` can be lost, and that
    task would then retry forever (and hang the event loop's shutdown)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 5.0)
    reconnecting: asyncio.Task[None] | None = getattr(nc, "_reconnection_task", None)
    for _ in range(100):
        if reconnecting is None or reconnecting.done():
            return
        reconnecting.cancel()
        await asyncio.sleep(0.01)


def _stream_seq(message: Msg) -> int:
    return int(message.metadata.sequence.stream)
