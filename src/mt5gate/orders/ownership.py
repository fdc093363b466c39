"""Ownership of an account: its lease, renewed in the background, and the fence it gives.

One owner per account (DESIGN §8). :class:`Ownership` takes the account's lease from the order
store, renews it every ``renew_s`` and says, at every moment, whether this process may still
write the account's journal and send its orders (:meth:`Ownership.fence`):

* after losing the lease to a newer owner (a renewal found another epoch), never again until it
  is taken anew;
* when no renewal succeeded for ``deadline_s`` (the database is unreachable, or this process
  was paused), not until one succeeds: the lease may be expiring, and a paused owner must stop
  trading on its own (the Kubernetes leader-election shape: lease 15 s, renew deadline 10 s).

The local deadline runs on this process's monotonic clock, never on the (virtual) session
clock: a lease is a real-time promise. Stores check the fence in every write as well, and
terminal hosts refuse lower epochs: a paused owner that wakes up cannot get past either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt5gate.errors import MT5OwnershipError
from mt5gate.orders.ports import Clock
from mt5gate.orders.store import (
    Fence,
    FencedOutError,
    JournalError,
    Lease,
    LeaseHeldError,
    OrderStore,
    describe_owner,
)

__all__ = ["LeasePolicy", "Ownership", "RealClock", "holder_gone", "owner_id"]

log = logging.getLogger("mt5gate.orders")


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """How long an account's lease lasts and how it is kept (seconds).

    ``ttl_s``: a lease not renewed for this long is free for another owner. ``renew_s``: how
    often the owner renews. ``deadline_s``: the owner stops trading when it has not renewed for
    this long (before the lease can expire: ``deadline_s < ttl_s``).
    """

    ttl_s: float = 15.0
    renew_s: float = 5.0
    deadline_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_s < self.deadline_s < self.ttl_s:
            raise ValueError(
                "LeasePolicy: need 0 < renew_s < deadline_s < ttl_s, got "
                f"renew_s={self.renew_s}, deadline_s={self.deadline_s}, ttl_s={self.ttl_s}"
            )


class RealClock:
    """``time.monotonic`` and ``asyncio.sleep``: leases run on real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def holder_gone(lease: Lease) -> bool:
    """Whether the lease's holder is a process on this host that no longer runs (crashed,
    killed): its lease need not be waited out. A paused process still runs: it is waited for,
    and fenced when it wakes."""
    pid = lease.info.get("pid")
    if lease.info.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that exited but was not reaped yet (``Z`` in /proc): it runs no code."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def owner_id(kind: str) -> str:
    """A unique owner name for this process and purpose: ``serve:host:pid:1a2b3c4d``."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(slots=True)
class Ownership:
    """This process's claim on one account (module docstring).

    ``info`` is what other processes are told about the owner (``kind``, ``pid``, ``url``):
    ``mt5gate`` commands use it to reach a running service instead of trading themselves.
    """

    store: OrderStore
    owner: str
    policy: LeasePolicy = field(default_factory=LeasePolicy)
    info: Mapping[str, Any] = field(default_factory=dict)
    clock: Clock = field(default_factory=RealClock)
    on_lost: Callable[[str], None] = lambda _reason: None
    on_regained: Callable[[Fence], None] = lambda _fence: None
    #: whether a lease's holder is gone for good, so its lease need not be waited out (its
    #: epoch is superseded, which fences it if it wakes): by default a dead process of this
    #: host; a fleet adds replicas that stopped beating
    gone: Callable[[Lease], bool] = holder_gone
    _login: int | None = None
    _fence: Fence | None = None
    _renewed_at: float = 0.0
    _lost: str | None = None
    _task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        fence = self._fence
        held = f"epoch={fence.epoch}" if fence is not None else "not held"
        return f"<Ownership {self.owner!r} {held} lost={self._lost is not None}>"

    async def acquire(self, login: int) -> Fence:
        """Take the account's lease (again); ``MT5OwnershipError`` naming the owner when
        another process holds it."""
        info = {"pid": os.getpid(), "host": socket.gethostname(), **self.info}
        started = self.clock.monotonic()
        try:
            try:
                fence = await self.store.acquire(login, self.owner, self.policy.ttl_s, info)
            except LeaseHeldError as held:
                if not self.gone(held.lease):
                    raise
                log.warning(
                    "account %d: its owner %s is gone (its process died or stopped "
                    "beating); taking over before its lease expires",
                    login,
                    describe_owner(held.lease),
                )
                dead = (held.lease.owner, held.lease.epoch)
                fence = await self.store.acquire(login, self.owner, self.policy.ttl_s, info,
                                                 dead=dead)  # fmt: skip
        except LeaseHeldError as held:
            lease = held.lease
            raise MT5OwnershipError(
                str(held), owner=describe_owner(lease), epoch=lease.epoch,
                hint="Send orders through that process (mt5gate serve's HTTP API), or stop it; "
                "the account is free once its lease expires.",
            ) from None  # fmt: skip
        if self._fence is None or fence.epoch != self._fence.epoch:
            log.info("account %d: owned by %s with epoch %d", login, self.owner, fence.epoch)
        self._login, self._fence, self._renewed_at, self._lost = login, fence, started, None
        return fence

    @property
    def held(self) -> Fence | None:
        """The fence, when the lease was taken (valid or not); ``None`` before."""
        return self._fence

    @property
    def lost(self) -> str | None:
        """Why ownership was lost for good (until taken anew), or ``None``."""
        return self._lost

    def fence(self) -> Fence:
        """The fence to write and send under, now; ``MT5OwnershipError`` when this process may
        not (never acquired, lost to a newer owner, or not renewed within the deadline)."""
        fence = self._fence
        if fence is None:
            raise MT5OwnershipError("this process has not taken the account's lease yet")
        if self._lost is not None:
            raise MT5OwnershipError(self._lost, epoch=fence.epoch)
        late = self.clock.monotonic() - self._renewed_at
        if late >= self.policy.deadline_s:
            raise MT5OwnershipError(
                f"the account's lease was not renewed for {late:.1f} s (deadline "
                f"{self.policy.deadline_s:g} s): trading stops until it is",
                epoch=fence.epoch,
                hint="Check the order journal's storage; trading resumes by itself once the "
                "lease is renewed.",
            )
        return fence

    def start(self) -> None:
        """Renew in the background (idempotent); the task stops with :meth:`close`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def renew(self) -> None:
        """One renewal now; marks ownership lost when a newer owner holds the lease."""
        fence = self._fence
        if fence is None or self._lost is not None:
            return
        started = self.clock.monotonic()
        try:
            self._fence = await self.store.renew(fence, self.policy.ttl_s)
        except FencedOutError as fenced:
            self._lose(str(fenced))
            return
        self._renewed_at = started

    def _lose(self, reason: str) -> None:
        self._lost = reason
        log.error("%s", reason)
        self.on_lost(reason)

    async def _renew_forever(self) -> None:
        """Renew while held; once lost, take the lease again as soon as it is free (a newer
        owner released it or let it expire), and say so with ``on_regained``."""
        while True:
            await self.clock.sleep(self.policy.renew_s)
            try:
                if self._lost is None:
                    await self.renew()
                elif self._login is not None:
                    await self._regain(self._login)
            except JournalError as error:
                log.warning("lease renewal failed, retrying in %g s: %s",
                            self.policy.renew_s, error)  # fmt: skip

    async def _regain(self, login: int) -> None:
        try:
            fence = await self.acquire(login)
        except MT5OwnershipError:
            return  # still held by the newer owner
        self.on_regained(fence)

    async def close(self) -> None:
        """Stop renewing and give the lease up, so the next owner need not wait for it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        fence, self._fence = self._fence, None
        if fence is not None and self._lost is None:
            try:
                await self.store.release(fence)
            except JournalError as error:
                log.warning("could not release the account's lease: %s", error)
