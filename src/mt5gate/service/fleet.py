"""This service as one replica of a fleet: it beats, places, claims and hands accounts over.

Replicas of one configuration share one store (PostgreSQL, ``[store]``). Every
``heartbeat_s`` the :class:`Conductor` of each replica

1. says it is alive (:meth:`FleetRegistry.heartbeat`) and reads the fleet back: the live
   replicas, which drain, the operator's pins, every account's lease;
2. computes where every account should be (:func:`~mt5gate.fleet.placement.assign`, the same
   answer on every replica);
3. claims the accounts placed on it that it does not run yet (its session takes the lease:
   free, expired, or held by a replica that stopped beating, whose epoch it then supersedes),
   and hands over those it runs that are placed elsewhere on a live replica (the session
   closes, which releases the lease for the new owner).

Placement only steers; the lease decides (DESIGN §8). Two replicas never trade one account:
a session trades only under its fence, the store checks the fence in every write, the terminal
host refuses lower epochs, and an owner that cannot renew stops by itself. A replica that
stops beating (killed, paused, cut off from the store) loses its accounts to the others after
``member_ttl_s``, before its leases expire; if it wakes up, it is fenced out.

Requests for an account this replica does not own are forwarded to the owner
(:mod:`mt5gate.service.forward`), from the picture of the last beat (:class:`FleetView`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from mt5gate.fleet.placement import assign
from mt5gate.orders.ownership import holder_gone
from mt5gate.orders.store import FleetRegistry, JournalError, Lease, Member

if TYPE_CHECKING:
    from mt5gate.service.config import FleetSettings
    from mt5gate.service.gateway import AccountRuntime, Gateway

__all__ = ["Conductor", "FleetView"]

log = logging.getLogger("mt5gate.fleet")


@dataclass(frozen=True, slots=True)
class FleetView:
    """The fleet as one beat saw it (store clock): who runs, who owns, who should."""

    me: str
    now_ms: int
    members: Mapping[str, Member]
    leases: Mapping[int, Lease]
    desired: Mapping[int, str]

    def live(self, member: str | None) -> bool:
        """Whether ``member`` beat within its time to live."""
        found = self.members.get(member or "")
        return found is not None and found.live(self.now_ms)

    def owner(self, login: int) -> Lease | None:
        """The account's lease while it holds (unexpired, its replica still beating)."""
        lease = self.leases.get(login)
        if lease is None or not lease.live(self.now_ms):
            return None
        member = lease.info.get("member")
        return lease if member is None or self.live(str(member)) else None


@dataclass(slots=True)
class Conductor:
    """One replica's share of the fleet (module docstring); a :class:`Gateway` companion."""

    gateway: Gateway
    registry: FleetRegistry
    settings: FleetSettings
    me: str
    url: str
    #: the owner name of this process's leases
    owner: str
    view: FleetView | None = None
    #: one connection pool to the other replicas (forwarded requests), open while started
    http: httpx.AsyncClient = field(init=False)
    _task: asyncio.Task[None] | None = None
    _handing_over: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: when a beat last reached the store (monotonic seconds), ``None`` before the first
    _beat_at: float | None = None

    def __repr__(self) -> str:
        return f"<Conductor replica={self.me!r}>"

    @property
    def info(self) -> dict[str, Any]:
        """What this replica tells the others about itself."""
        return {"kind": "serve", "member": self.me, "url": self.url, "pid": os.getpid(),
                "host": socket.gethostname()}  # fmt: skip

    async def start(self) -> None:
        """Beat once now without steering (the replicas starting beside this one register
        too, so the first placement sees them all instead of one replica claiming everything
        and handing it back), then every ``heartbeat_s`` in the background, steering."""
        for runtime in self.gateway.accounts.values():
            runtime.session.ownership.gone = self.holder_gone
        self.http = httpx.AsyncClient(timeout=float(self.settings.forward_timeout_s),
                                      trust_env=False)  # fmt: skip
        await self._beat_safely(steer=False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet-conductor")

    async def stop(self) -> None:
        """Stop beating and say so at once (a heartbeat that expires now), so the other
        replicas place this one's accounts elsewhere without waiting ``member_ttl_s``; the
        gateway then closes the sessions, which releases their leases."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)  # hand-overs finish
        with contextlib.suppress(JournalError):
            await self.registry.heartbeat(self.me, self.info, 0.0)
        await self.http.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(float(self.settings.heartbeat_s))
            await self._beat_safely()

    async def _beat_safely(self, *, steer: bool = True) -> None:
        try:
            await self.beat(steer=steer)
        except JournalError as error:  # the store is unreachable: the leases' deadline rules
            log.warning("fleet heartbeat of %s failed: %s", self.me, error)

    async def beat(self, *, steer: bool = True) -> FleetView:
        """One round: heartbeat, read the fleet, place, and (``steer``) claim and hand over."""
        started = time.monotonic()
        await self.registry.heartbeat(self.me, self.info, float(self.settings.member_ttl_s))
        view = await self.read()
        self.view, self._beat_at = view, started
        for runtime in list(self.gateway.accounts.values()) if steer else ():
            self._steer(runtime, view)
        return view

    async def read(self) -> FleetView:
        """The fleet as the store has it now, and where each account should be."""
        now = await self.registry.now_ms()
        members = {m.id: m for m in await self.registry.members()}
        live = [m for m in members.values() if m.live(now)]
        leases = {lease.login: lease for lease in await self.registry.leases()}
        logins = [a.login for a in self.gateway.settings.accounts if a.login is not None]
        desired = assign(logins, [m.id for m in live],
                         draining=[m.id for m in live if m.draining],
                         pins=await self.registry.placements())  # fmt: skip
        return FleetView(self.me, now, members, leases, desired)

    def in_touch(self) -> bool:
        """Whether this replica's last beat reached the store within ``member_ttl_s`` (else
        the others count it as gone and take its accounts)."""
        beat = self._beat_at
        return beat is not None and time.monotonic() - beat < float(self.settings.member_ttl_s)

    def checks(self) -> dict[str, list[dict[str, Any]]]:
        """health+json checks: this replica's membership, and who owns each account it does
        not run."""
        view = self.view
        checks = {"fleet:membership": [self._membership(view)]}
        for runtime in self.gateway.accounts.values():
            if not runtime.claimed:
                checks[f"{runtime.name}:owner"] = [self._owner_check(runtime, view)]
        return checks

    def _membership(self, view: FleetView | None) -> dict[str, Any]:
        if view is None or not self.in_touch():
            return {
                "status": "fail",
                "output": f"replica {self.me} cannot reach the fleet's "
                "store: the other replicas take its accounts over. Check the database",
            }
        live = sorted(m for m in view.members if view.live(m))
        owned = sorted(r.name for r in self.gateway.accounts.values() if r.claimed)
        total = len(self.gateway.accounts)
        return {
            "status": "pass",
            "output": f"replica {self.me}; live replicas "
            f"{', '.join(live)}; runs {len(owned)} of {total} accounts",
        }

    def _owner_check(self, runtime: AccountRuntime, view: FleetView | None) -> dict[str, Any]:
        login = runtime.settings.login
        lease = view.owner(login) if view is not None and login is not None else None
        if lease is None:
            return {"status": "warn", "output": "no live owner: another replica is taking the "
                    "account over; its requests get 503 until it has"}  # fmt: skip
        return {"status": "pass", "output": f"owned by replica {lease.info.get('member')} "
                f"(epoch {lease.epoch}); requests are forwarded there"}  # fmt: skip

    def holder_gone(self, lease: Lease) -> bool:
        """Whether an account's holder is gone: a process of this host that died, or a
        replica that stopped beating (by the last beat). Its lease need not be waited out:
        the new owner's higher epoch fences it if it wakes up."""
        if holder_gone(lease):
            return True
        member = lease.info.get("member")
        if member is None:
            return False
        if member == self.me:  # an earlier run of this replica (names are unique): gone
            return lease.owner != self.owner
        view = self.view
        return view is not None and not view.live(str(member))

    def _steer(self, runtime: AccountRuntime, view: FleetView) -> None:
        login = runtime.settings.login
        target = view.desired.get(login) if login is not None else None
        if target == self.me:
            self._claim(runtime)
        elif target is not None and runtime.claimed and view.live(target):
            self._hand_over(runtime, target)

    def _claim(self, runtime: AccountRuntime) -> None:
        """Start taking the account (its session connects once the lease is free)."""
        if runtime.claimed or runtime.name in self._handing_over:
            return
        log.info("replica %s claims account %s", self.me, runtime.name)
        self.gateway.connect(runtime, retry_s=float(self.settings.heartbeat_s))

    def _hand_over(self, runtime: AccountRuntime, target: str) -> None:
        """Close the account's session (its lease goes with it) and keep a fresh, idle one,
        so that ``target`` takes the account; requests are forwarded meanwhile. In the
        background: closing waits for the session's work, and the heartbeat must go on."""
        if runtime.name in self._handing_over:
            return
        self._handing_over.add(runtime.name)
        log.info("replica %s hands account %s over to %s", self.me, runtime.name, target)
        task = asyncio.get_running_loop().create_task(self._retire(runtime.name),
                                                      name=f"{runtime.name}-hand-over")  # fmt: skip
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retire(self, name: str) -> None:
        try:
            fresh = await self.gateway.retire(name)
            fresh.session.ownership.gone = self.holder_gone
        except Exception:  # the old session is gone either way; the next beat steers again
            log.exception("handing account %s over failed", name)
        finally:
            self._handing_over.discard(name)
