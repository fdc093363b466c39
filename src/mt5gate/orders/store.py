"""The order store: what the order pipeline needs to keep, behind one async interface with a fence.

:class:`OrderStore` is implemented by :class:`~mt5gate.orders.sqlite.SqliteStore` (the embedded
default, one SQLite file) and, for a fleet, by a server database behind the same interface.
Every write names the writer's :class:`Fence` (account, owner, epoch) and the store checks, in
the same transaction as the write, that

* the fence is still the account's current lease (a newer owner has a higher epoch: a paused
  ex-owner that wakes up is refused with :class:`FencedOutError`, nothing of its reaches the
  journal), and
* the event is a legal next step of the order (:data:`~mt5gate.orders.core.TRANSITIONS`):
  :class:`IllegalTransitionError` otherwise.

Leases: ``acquire`` takes the account when it is free, expired or already ours, and bumps the
epoch whenever the owner changes; ``renew`` extends it only while the epoch is unchanged. An
epoch never goes down, and is at least the wall clock in milliseconds when it is taken, so a
journal that was lost or restored from a backup still hands out epochs above any it gave before
(terminal hosts keep the highest epoch they have seen and refuse lower ones).

The store is not SQLite-shaped: it stores :class:`NewEvent` values that are already plain,
redacted JSON-ready data with their tickets extracted (:mod:`~mt5gate.orders.codec`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, Protocol, runtime_checkable

from mt5gate.orders.core import UNRESOLVED_KINDS, EventKind
from mt5gate.orders.ids import ClientOrderId

__all__ = [
    "EPOCH_FLOOR",
    "MEMBER_PRUNE_MS",
    "AccountBlock",
    "Fence",
    "FencedOutError",
    "FleetRegistry",
    "IdempotencyConflict",
    "IllegalTransitionError",
    "JournalError",
    "JournalEvent",
    "Lease",
    "LeaseHeldError",
    "Member",
    "NewEvent",
    "OrderInspection",
    "OrderStore",
    "OrderSummary",
    "check_fence",
    "id_floor_ms",
    "take_lease",
]

#: Client sequences and epochs are never below the wall clock in milliseconds since this
#: moment (2020-01-01 UTC), so a fresh, lost or restored journal cannot repeat an id or an
#: epoch it handed out before (at up to 1,000 orders per second on average).
EPOCH_FLOOR: Final = 1_577_836_800_000

#: A member whose heartbeat expired this long ago (ms) is removed from the fleet registry.
MEMBER_PRUNE_MS: Final = 3_600_000


def id_floor_ms(clock_ms: Callable[[], int] | None = None) -> int:
    """The smallest client sequence (and epoch) a store may hand out now."""
    now = clock_ms() if clock_ms is not None else time.time_ns() // 1_000_000
    return max(now - EPOCH_FLOOR, 1)


class JournalError(Exception):
    """The journal cannot be used: corrupt or torn file, foreign or newer schema, closed."""


class IdempotencyConflict(ValueError):  # noqa: N818 - the name the order API documents
    """An idempotency key came back with a different request than the one it was first used
    for: the caller has a bug, and sending either order could be the wrong one."""

    def __init__(self, login: int, key: str, client_id: ClientOrderId) -> None:
        super().__init__(
            f"idempotency key {key!r} of account {login} was first used for order "
            f"{client_id.comment_tag} with a different request; use a new key for a new order"
        )
        self.login = login
        self.key = key
        self.client_id = client_id


class IllegalTransitionError(JournalError):
    """An event that cannot follow the order's last one (a bug, or a second writer)."""

    def __init__(self, client_id: ClientOrderId, previous: EventKind | None, kind: EventKind):
        after = "a new order" if previous is None else previous.value
        super().__init__(
            f"order {client_id.comment_tag}: {kind.value} cannot follow {after}; the journal "
            "refused the write"
        )
        self.client_id = client_id
        self.previous = previous
        self.kind = kind


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    """Who holds an account, with which fencing epoch, until when (wall clock, ms)."""

    login: int
    owner: str
    epoch: int
    expires_utc_ms: int
    acquired_utc_ms: int
    #: what the owner says about itself: ``{"kind": "serve", "pid": ..., "url": ...}``
    info: Mapping[str, Any]

    def live(self, now_ms: int) -> bool:
        """Whether the lease still holds at ``now_ms``."""
        return now_ms < self.expires_utc_ms


@dataclasses.dataclass(frozen=True, slots=True)
class Fence:
    """The right to write an account's journal and send its orders: the lease as taken.

    ``took_over``: another owner held the account before (it may still run, paused): the new
    owner tells the terminal its epoch at once, so that nothing of the old one gets through.
    """

    login: int
    owner: str
    epoch: int
    expires_utc_ms: int
    took_over: bool = False


class LeaseHeldError(JournalError):
    """Another owner holds the account's lease; it is free again at ``lease.expires_utc_ms``."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"account {lease.login} is owned by {describe_owner(lease)} (epoch {lease.epoch}) "
            f"until {_utc(lease.expires_utc_ms)}"
        )
        self.lease = lease


class FencedOutError(JournalError):
    """A write or a renewal carried a fence that is no longer the account's lease."""

    def __init__(self, fence: Fence, current: Lease | None) -> None:
        now = "nobody" if current is None else f"{describe_owner(current)} (epoch {current.epoch})"
        super().__init__(
            f"account {fence.login}: this process (epoch {fence.epoch}) no longer owns it; it "
            f"is held by {now}. Nothing was written"
        )
        self.fence = fence
        self.current = current


def take_lease(
    current: Lease | None,
    login: int,
    owner: str,
    ttl_s: float,
    info: Mapping[str, Any] | None,
    dead: tuple[str, int] | None,
    now_ms: int,
) -> tuple[Lease, bool]:
    """The lease ``owner`` gets at ``now_ms`` given the ``current`` one, and whether it took the
    account over from another owner; :class:`LeaseHeldError` when another live owner holds it.

    Every store decides with this one function, in the transaction that writes the result: the
    account is free, expired, already ``owner``'s, or held by ``dead`` (an ``(owner, epoch)``
    the caller knows is gone). A new holder gets a higher epoch, never below the id floor; the
    same live holder keeps its epoch (and its ``info`` when ``info`` is ``None``)."""
    gone = current is not None and (current.owner, current.epoch) == dead
    if current is not None and current.live(now_ms) and current.owner != owner and not gone:
        raise LeaseHeldError(current)
    ours = current is not None and current.live(now_ms) and current.owner == owner
    if current is not None and ours:
        epoch, about = current.epoch, dict(current.info if info is None else info)
    else:
        floor = id_floor_ms(lambda: now_ms)
        epoch, about = max(current.epoch + 1 if current else 1, floor), dict(info or {})
    expires = now_ms + max(int(ttl_s * 1000), 1)
    took_over = current is not None and current.owner != owner
    return Lease(login, owner, epoch, expires, now_ms, about), took_over


def check_fence(fence: Fence, current: Lease | None) -> None:
    """:class:`FencedOutError` unless ``fence`` is the ``current`` lease (same owner, epoch)."""
    if current is None or (current.owner, current.epoch) != (fence.owner, fence.epoch):
        raise FencedOutError(fence, current)


def describe_owner(lease: Lease) -> str:
    """``mt5gate serve (pid 4242 on host, http://127.0.0.1:8000)`` for messages."""
    info = lease.info
    if not info.get("kind"):
        return repr(lease.owner)
    kind = str(info["kind"])
    details = [f"pid {info['pid']}" if "pid" in info else "", str(info.get("host") or ""),
               str(info.get("url") or "")]  # fmt: skip
    shown = ", ".join(d for d in details if d)
    return f"mt5gate {kind} ({shown})" if shown else f"mt5gate {kind}"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


@dataclasses.dataclass(frozen=True, slots=True)
class AccountBlock:
    """New orders on the account are stopped until an operator acknowledges what was found."""

    login: int
    reason: str
    since_utc_ms: int
    #: client sequences the broker holds in our namespace that this journal never issued
    sequences: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class NewEvent:
    """One event ready to store: plain, redacted, JSON-ready, its tickets extracted."""

    kind: EventKind
    client_id: ClientOrderId
    request: Any = None
    result: Any = None
    retcode: int | None = None
    note: str = ""
    order_ticket: int | None = None
    deal_ticket: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEvent:
    """One row of the journal, as stored (request and result already redacted)."""

    seq: int
    kind: EventKind
    utc_ms: int
    monotonic_ns: int
    client_id: ClientOrderId
    idempotency_key: str | None
    request: Any
    result: Any
    retcode: int | None
    note: str
    order_ticket: int | None
    deal_ticket: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class OrderSummary:
    """One order as the journal knows it: identity, state, and what its events carried."""

    client_id: ClientOrderId
    #: the key its INTENT was recorded with (``None`` without a key or without an INTENT)
    idempotency_key: str | None
    #: the kind of its last event
    state: EventKind
    #: how many events it has
    events: int
    #: wall time of its first event
    created_utc_ms: int
    #: wall time of its last event
    updated_utc_ms: int
    #: the request its INTENT stored (redacted); ``None`` for an order with no INTENT, such
    #: as one reconciliation found at the broker (UNEXPECTED)
    request: Any
    #: the latest non-null retcode of its events
    retcode: int | None
    #: the latest non-null order ticket of its events
    order_ticket: int | None
    #: the latest non-null deal ticket of its events
    deal_ticket: int | None

    @property
    def unresolved(self) -> bool:
        """Its outcome is still open (its state is in ``UNRESOLVED_KINDS``)."""
        return self.state in UNRESOLVED_KINDS


@runtime_checkable
class OrderInspection(Protocol):
    """The reads an operator's view of the journal needs (the console's journal page): both
    stores (SQLite and PostgreSQL) offer them."""

    async def summaries(
        self,
        login: int | None = None,
        *,
        states: Collection[EventKind] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[OrderSummary]:
        """One summary per order (see ``SqliteJournal.summaries``)."""
        ...

    async def events(self, login: int, sequence: int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        ...


@runtime_checkable
class OrderStore(Protocol):
    """What the order pipeline keeps, asynchronously, every write behind the writer's fence.

    Durable when a write returns. Reads need no fence (inspection, health, the CLI).
    """

    async def acquire(
        self,
        login: int,
        owner: str,
        ttl_s: float,
        info: Mapping[str, Any],
        *,
        dead: tuple[str, int] | None = None,
    ) -> Fence:
        """Take the account's lease (free, expired or ours; or still held by ``dead``, an
        ``(owner, epoch)`` the caller knows to be gone); :class:`LeaseHeldError` otherwise."""
        ...

    async def renew(self, fence: Fence, ttl_s: float) -> Fence:
        """Extend the lease while ``fence`` is current; :class:`FencedOutError` otherwise."""
        ...

    async def release(self, fence: Fence) -> None:
        """Give the lease up now (nothing happens when it is no longer ours)."""
        ...

    async def lease(self, login: int) -> Lease | None:
        """The account's lease as stored (live or expired), ``None`` if never taken."""
        ...

    async def intent(
        self,
        fence: Fence,
        request: Any,
        key: str | None,
        *,
        sent: Callable[[ClientOrderId], NewEvent] | None = None,
    ) -> ClientOrderId:
        """Allocate a fresh client id and write its INTENT (with ``request``, plain data) in
        one transaction; with ``sent``, its SENT event too (one fsync for both). A ``key``
        used before returns its first id when ``request`` is the same and nothing is written
        (only without ``sent``); otherwise :class:`IdempotencyConflict`."""
        ...

    async def append(self, fence: Fence, event: NewEvent) -> JournalEvent:
        """Append one event: refused unless ``fence`` is current and the transition legal."""
        ...

    async def events(self, login: int, sequence: int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        ...

    async def by_key(self, login: int, key: str) -> ClientOrderId | None:
        """The order an idempotency key was first used for."""
        ...

    async def events_after(self, login: int, seq: int, limit: int = 500) -> list[JournalEvent]:
        """The account's events whose journal ``seq`` is above ``seq``, oldest first, at most
        ``limit`` (seqs grow with every write, per store; a publisher resumes from them)."""
        ...

    async def open_orders(self, login: int) -> list[ClientOrderId]:
        """Orders whose outcome is still open (``UNRESOLVED_KINDS``), oldest first."""
        ...

    async def head_seq(self, login: int) -> int:
        """The account's newest journal ``seq`` (0 without events): an event written after
        this call returns has a higher one."""
        ...

    async def known_sequences(self, login: int) -> set[int]:
        """Every client sequence of the account with at least one event (the sweep's view)."""
        ...

    async def last_kinds(self, login: int, sequences: Collection[int]) -> dict[int, EventKind]:
        """The last event kind of each of ``sequences`` the journal knows."""
        ...

    async def flagged(self, login: int, kinds: Collection[EventKind]) -> set[int]:
        """Client sequences of the account whose events include one of ``kinds``."""
        ...

    async def block(self, fence: Fence, reason: str, sequences: Collection[int]) -> None:
        """Stop new orders on the account until an operator acknowledges (fenced)."""
        ...

    async def account_block(self, login: int) -> AccountBlock | None:
        """The account's active block, if any."""
        ...

    async def close(self) -> None:
        """Release the storage."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """A replica of the fleet as its last heartbeat left it."""

    #: the replica's name (unique in the fleet, stable while it runs)
    id: str
    #: what the replica says about itself (``{"url": ..., "host": ..., "pid": ...}``)
    info: Mapping[str, Any]
    #: it counts as gone from this moment (store clock, ms) unless it beats again
    expires_utc_ms: int
    #: an admin asked it to hand its accounts over and take no new ones
    draining: bool

    def live(self, now_ms: int) -> bool:
        """Whether its last heartbeat still holds at ``now_ms``."""
        return now_ms < self.expires_utc_ms


@runtime_checkable
class FleetRegistry(Protocol):
    """What replicas sharing one store tell each other: who runs, who drains, who pins what.

    Kept beside the leases (same database, same clock) so a placement decision reads one
    consistent picture. The registry only records; the fleet code decides (a member whose
    heartbeat expired is gone, a draining member takes no new account, a placement pins an
    account to a member). Times are the store's clock (:meth:`now_ms`), never the caller's.
    """

    async def now_ms(self) -> int:
        """The store's clock, by which leases and heartbeats expire (ms since the epoch)."""
        ...

    async def leases(self) -> list[Lease]:
        """Every account's lease as stored (live or expired), by login."""
        ...

    async def heartbeat(self, member: str, info: Mapping[str, Any], ttl_s: float) -> Member:
        """Say ``member`` runs for ``ttl_s`` more seconds (its draining flag is kept)."""
        ...

    async def members(self) -> list[Member]:
        """Every member that ever beat and was not pruned (:data:`MEMBER_PRUNE_MS` after it
        expired), by id;
        live or not (:meth:`Member.live` with :meth:`now_ms` tells)."""
        ...

    async def set_draining(self, member: str, draining: bool) -> bool:
        """Mark a member draining (or not); ``False`` when no such member is registered."""
        ...

    async def place(self, login: int, member: str | None) -> None:
        """Pin account ``login`` to ``member`` (an admin's decision); ``None`` unpins it."""
        ...

    async def placements(self) -> dict[int, str]:
        """Every pinned account and its member."""
        ...
