"""``SqliteStore``: the embedded :class:`~mt5gate.orders.store.OrderStore` (and
:class:`~mt5gate.orders.store.FleetRegistry`), one SQLite file.

The blocking :class:`~mt5gate.orders.journal.SqliteJournal` runs on one named thread that this
store starts and joins (``<name>-journal``), never on the event loop: an fsync must not stall
every other coroutine. Its durability details (WAL, full sync, append-only triggers, INTENT and
SENT in one fsync) are the journal's; this class moves calls to the thread, and the calls
queued together while the thread was busy run as one group commit
(:meth:`~mt5gate.orders.journal.SqliteJournal.group`): one fsync for all of them, each caller
answered only after it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from mt5gate.orders.core import EventKind
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.store import (
    AccountBlock,
    Fence,
    JournalError,
    JournalEvent,
    Lease,
    Member,
    NewEvent,
    OrderSummary,
)
from mt5gate.terminal.worker import (
    DeadlineExceededError,
    TerminalWorker,
    WorkerClosedError,
    WorkerStuckError,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")
_DEADLINE_S: Final = 30.0


class SqliteStore:
    """An :class:`~mt5gate.orders.store.OrderStore` over a :class:`SqliteJournal` (or a path).

    ``close()`` stops the thread; the journal itself is closed only when this store opened it
    from a path (a journal passed in belongs to the caller).
    """

    def __init__(self, journal: SqliteJournal | str | Path, *, name: str = "mt5gate") -> None:
        self._owns = not isinstance(journal, SqliteJournal)
        self.journal = journal if isinstance(journal, SqliteJournal) else SqliteJournal(journal)
        self.namespace = self.journal.namespace
        # Group commit: the calls queued together run as one batch, one transaction, one fsync,
        # and are answered only once it is on disk (every INTENT still durable before its send).
        self._thread = TerminalWorker(f"{name}-journal", scope=self.journal.group)

    def __repr__(self) -> str:
        return f"SqliteStore({self.journal!r})"

    async def _run(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method`` on the journal thread; durable when it returns."""
        call = functools.partial(method, *args, **kwargs)
        try:
            result: T = await self._thread.run(getattr(method, "__name__", "journal"), call,
                                               _DEADLINE_S)  # fmt: skip
        except WorkerClosedError:
            raise JournalError("the order journal is closed") from None
        except (DeadlineExceededError, WorkerStuckError) as slow:
            raise JournalError(f"the order journal did not answer: {slow}") from None
        return result

    # -- leases ------------------------------------------------------------------------------

    async def acquire(
        self,
        login: int,
        owner: str,
        ttl_s: float,
        info: Mapping[str, Any],
        *,
        dead: tuple[str, int] | None = None,
    ) -> Fence:
        """Take the account's lease (see :meth:`SqliteJournal.acquire`)."""
        return await self._run(self.journal.acquire, login, owner, ttl_s, info, dead=dead)

    async def renew(self, fence: Fence, ttl_s: float) -> Fence:
        """Extend the lease while ``fence`` is current."""
        return await self._run(self.journal.renew, fence, ttl_s)

    async def release(self, fence: Fence) -> None:
        """Give the lease up now."""
        await self._run(self.journal.release, fence)

    async def lease(self, login: int) -> Lease | None:
        """The account's lease as stored."""
        return await self._run(self.journal.lease, login)

    # -- writes ------------------------------------------------------------------------------

    async def intent(
        self,
        fence: Fence,
        request: Any,
        key: str | None,
        *,
        sent: Callable[[ClientOrderId], NewEvent] | None = None,
    ) -> ClientOrderId:
        """A fresh id and its INTENT (and SENT), in one transaction."""
        return await self._run(self.journal.intent, fence, fence.login, request, key, sent)

    async def append(self, fence: Fence, event: NewEvent) -> JournalEvent:
        """One event, behind the fence and the transition table."""
        return await self._run(self.journal.append, fence, event)

    async def block(self, fence: Fence, reason: str, sequences: Collection[int]) -> None:
        """Stop new orders on the account until an operator acknowledges."""
        await self._run(self.journal.block, fence, fence.login, reason, sequences)

    async def acknowledge(self, login: int, note: str) -> AccountBlock | None:
        """An operator lifts the account's block; returns it (``None``: it was not blocked)."""
        return await self._run(self.journal.acknowledge, login, note)

    # -- reads -------------------------------------------------------------------------------

    async def events(self, login: int, sequence: int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        return await self._run(self.journal.history, login, sequence)

    async def summaries(
        self,
        login: int | None = None,
        *,
        states: Collection[EventKind] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[OrderSummary]:
        """One summary per order (:meth:`SqliteJournal.summaries`), for inspection."""
        return await self._run(self.journal.summaries, login, states=states, limit=limit,
                               newest_first=newest_first)  # fmt: skip

    async def events_after(self, login: int, seq: int, limit: int = 500) -> list[JournalEvent]:
        """The account's events after journal ``seq``, oldest first."""
        return await self._run(self.journal.events_after, login, seq, limit)

    async def by_key(self, login: int, key: str) -> ClientOrderId | None:
        """The order an idempotency key was first used for."""
        return await self._run(self.journal.by_key, login, key)

    async def open_orders(self, login: int) -> list[ClientOrderId]:
        """Orders whose outcome is still open."""
        return await self._run(self.journal.unresolved, login)

    async def head_seq(self, login: int) -> int:
        """The account's newest journal seq (0 without events)."""
        return await self._run(self.journal.head_seq, login)

    async def known_sequences(self, login: int) -> set[int]:
        """Every client sequence of the account with an event."""
        return await self._run(self.journal.known_sequences, login)

    async def last_kinds(self, login: int, sequences: Collection[int]) -> dict[int, EventKind]:
        """The last event kind of each of ``sequences``."""
        return await self._run(self.journal.last_kinds, login, sequences)

    async def flagged(self, login: int, kinds: Collection[EventKind]) -> set[int]:
        """Client sequences with an event of one of ``kinds``."""
        return await self._run(self.journal.flagged, login, kinds)

    async def account_block(self, login: int) -> AccountBlock | None:
        """The account's active block, if any."""
        return await self._run(self.journal.account_block, login)

    # -- the fleet registry --------------------------------------------------------------------

    async def now_ms(self) -> int:
        """The journal's clock (leases and heartbeats expire by it)."""
        return await self._run(self.journal.now_ms)

    async def leases(self) -> list[Lease]:
        """Every account's lease as stored."""
        return await self._run(self.journal.leases)

    async def heartbeat(self, member: str, info: Mapping[str, Any], ttl_s: float) -> Member:
        """``member`` runs for ``ttl_s`` more seconds."""
        return await self._run(self.journal.heartbeat, member, info, ttl_s)

    async def members(self) -> list[Member]:
        """Every registered member (live or expired)."""
        return await self._run(self.journal.members)

    async def set_draining(self, member: str, draining: bool) -> bool:
        """Mark ``member`` draining or not; ``False`` when it is not registered."""
        return await self._run(self.journal.set_draining, member, draining)

    async def place(self, login: int, member: str | None) -> None:
        """Pin account ``login`` to ``member`` (``None`` unpins it)."""
        await self._run(self.journal.place, login, member)

    async def placements(self) -> dict[int, str]:
        """Every pinned account and its member."""
        return await self._run(self.journal.placements)

    async def close(self) -> None:
        """Stop the journal thread (and close the journal if this store opened it)."""
        self._thread.close(timeout_s=5.0)
        if self._owns:
            self.journal.close()
