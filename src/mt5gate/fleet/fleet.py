"""``Fleet``: the bus beside the service's accounts (a gateway companion).

For every account it watches the session's ownership (:meth:`Ownership.fence`, every
``check_s``): while this process owns the account with one fencing epoch, an
:class:`EventPublisher` and a :class:`TickPublisher` run for it; when ownership is lost or the
epoch changes they are stopped (and started anew for a new epoch). Readers on this replica
(``/v1/stream``) use :meth:`Fleet.ticks` and :meth:`Fleet.trades`, which read the bus whoever
owns the account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mt5gate.errors import MT5OwnershipError
from mt5gate.fleet.bus import Bus, BusState, BusUnavailableError, TickInbox
from mt5gate.fleet.publisher import EventPublisher
from mt5gate.fleet.subjects import events_subject, ticks_subject
from mt5gate.fleet.ticks import InterestSender, TickPublisher
from mt5gate.metrics import Metrics
from mt5gate.orders.store import Fence
from mt5gate.session.manager import MT5SessionManager

__all__ = ["Fleet", "Owned"]

_CHECK_S: Final = 0.1


def _fence(session: MT5SessionManager) -> Fence | None:
    """The fence this process holds the account with now, ``None`` when it does not own it."""
    try:
        return session.ownership.fence()
    except MT5OwnershipError:
        return None


@dataclass(slots=True)
class Owned:
    """The publishers of one account this process owns, under one fencing epoch."""

    epoch: int
    events: EventPublisher
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Cancel and await the publishers."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Fleet:
    """The bus, the interest this replica sends, and the publishers of the accounts it owns."""

    def __init__(
        self, bus: Bus, sessions: Mapping[str, MT5SessionManager], *,
        metrics: Metrics | None = None, interest_ttl_s: float = 6.0, check_s: float = _CHECK_S,
    ) -> None:  # fmt: skip
        self.bus, self.sessions, self.metrics = bus, sessions, metrics
        self.interest = InterestSender(bus, ttl_s=interest_ttl_s, metrics=metrics)
        self.owned: dict[str, Owned] = {}
        self._check_s = check_s
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<Fleet {self.bus!r} owning {sorted(self.owned)}>"

    async def start(self) -> None:
        """Connect the bus (in the background) and start watching every account."""
        await self.bus.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.interest.run(), name="bus-interest"))
        for name in self.sessions:
            self._tasks.append(loop.create_task(self._watch(name), name=f"bus-{name}"))

    async def stop(self) -> None:
        """Stop the publishers and the watchers, then close the bus."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for owned in list(self.owned.values()):
            await owned.stop()
        self.owned.clear()
        await self.bus.close()

    def check(self) -> tuple[str, str]:
        """The ``bus`` health check: ``("pass", ...)`` connected, ``("warn", reason)``
        otherwise (orders never depend on the bus)."""
        status = "pass" if self.bus.state == BusState.CONNECTED else "warn"
        return status, self.bus.reason

    # -- owners ----------------------------------------------------------------------------

    async def _watch(self, name: str) -> None:
        while True:
            session = self.sessions[name]  # read anew: a hand-over replaces the session
            fence = _fence(session)
            current = self.owned.get(name)
            if current is not None and (fence is None or fence.epoch != current.epoch):
                await self.owned.pop(name).stop()
            elif current is None and fence is not None:
                self.owned[name] = self._own(name, session, fence.epoch)
            await asyncio.sleep(self._check_s)

    def _own(self, name: str, session: MT5SessionManager, epoch: int) -> Owned:
        def owned() -> bool:
            fence = _fence(session)
            return fence is not None and fence.epoch == epoch

        login = session.credentials.login or 0
        events = EventPublisher(self.bus, session.store, name, login, owned, metrics=self.metrics)
        ticks = TickPublisher(self.bus, session, name, owned, metrics=self.metrics)
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(events.run(), name=f"bus-{name}-events"),
                 loop.create_task(ticks.run(), name=f"bus-{name}-ticks")]  # fmt: skip
        return Owned(epoch, events, tasks)

    # -- readers ---------------------------------------------------------------------------

    async def ticks(
        self, account: str, symbols: Sequence[str], *, buffer: int = 256
    ) -> AsyncIterator[dict[str, Any]]:
        """Ticks of ``symbols`` of ``account`` from the bus (whoever owns it), as plain dicts;
        ``{"error": ...}`` when the owner's terminal does not know a symbol."""
        inbox = TickInbox(buffer, lambda: self._dropped(account))
        unsubscribes = [await self.bus.subscribe(ticks_subject(account, s), inbox.push)
                        for s in symbols]  # fmt: skip
        self.interest.add(account, symbols)
        try:
            while True:
                yield json.loads(await inbox.get())
        finally:
            self.interest.remove(account, symbols)
            for unsubscribe in unsubscribes:
                await unsubscribe()

    def _dropped(self, account: str) -> None:
        if self.metrics is not None:
            self.metrics.bus_sent(account, "ticks", published=False)

    async def last_event_seq(self, account: str) -> int:
        """The stream sequence of ``account``'s newest event now (0: none yet); waits for the
        bus."""
        while True:
            await self.bus.wait_connected()
            with contextlib.suppress(BusUnavailableError):
                last = await self.bus.last_event(events_subject(account))
                return 0 if last is None else last.stream_seq
            await asyncio.sleep(self.bus.options.reconnect_wait_s)

    async def trades(self, account: str, after: int) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """``(stream seq, event)`` of every journal event of ``account`` after stream sequence
        ``after``: in order, each once, across reconnects and failovers of the owner."""
        async for seq, payload in self.bus.events(events_subject(account), after):
            yield seq, json.loads(payload)
