"""Which replica should own which account: a pure function every replica computes alike.

Each replica reads the same facts from the shared store (the live replicas, which of them are
draining, the operator's pins) and computes the same answer, so no coordinator is needed:
:func:`assign` is deterministic in its inputs and independent of their order.

The rule (rendezvous hashing with a capacity bound):

* a pinned account (``mt5gate fleet move``) goes to its pinned replica while that replica is
  live and not draining;
* every other account goes to the replica that ranks highest for it (a hash of account and
  replica) among those with room (``accounts // replicas``, one more for as many replicas as
  the remainder allows): the accounts spread evenly (no replica has more than one above
  another, pins aside), and when a replica joins or leaves about its share of the accounts
  moves, not all of them;
* a draining replica gets nothing (its accounts move away; ``mt5gate fleet drain``).

Placement decides only who *should* own an account. Who *does* is the lease (DESIGN §8): a
replica takes an account assigned to it once the lease is free, and hands one it holds over by
releasing the lease; a change of mind never lets two replicas trade one account.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping

__all__ = ["assign", "rank"]


def rank(login: int, member: str) -> int:
    """How much ``member`` wants account ``login`` (higher first): a stable 64-bit hash."""
    digest = hashlib.blake2b(f"{login}\x00{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(
    logins: Collection[int],
    members: Collection[str],
    *,
    draining: Collection[str] = (),
    pins: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """The replica each account should be owned by; an account is missing from the answer
    when no replica may take it (none live, or all draining)."""
    eligible = sorted(set(members) - set(draining))
    if not eligible:
        return {}
    accounts = sorted(set(logins))
    quota = _Quota(eligible, len(accounts))
    placed: dict[int, str] = {}
    for login in accounts:
        pinned = (pins or {}).get(login)
        if pinned in quota.load:
            placed[login] = quota.take(pinned)
    for login in accounts:
        if login not in placed:
            placed[login] = quota.take(quota.choose(login))
    return placed


class _Quota:
    """Each replica's share: ``accounts // replicas``, and one more for as many replicas as
    the remainder allows (so loads differ by at most one, pins aside)."""

    def __init__(self, members: list[str], accounts: int) -> None:
        self.load = dict.fromkeys(members, 0)
        self.base, self.spare = divmod(accounts, len(members))

    def has_room(self, member: str) -> bool:
        load = self.load[member]
        return load < self.base or (load == self.base and self.spare > 0)

    def take(self, member: str) -> str:
        if self.load[member] >= self.base:
            self.spare -= 1
        self.load[member] += 1
        return member

    def choose(self, login: int) -> str:
        """The replica ranking highest for ``login`` with room; the least loaded when pins
        have used the room up."""
        roomy = [m for m in self.load if self.has_room(m)]
        if roomy:
            return max(roomy, key=lambda m: rank(login, m))
        return min(self.load, key=lambda m: (self.load[m], -rank(login, m)))
