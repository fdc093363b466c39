"""Who owns an account right now, read from its journal: for processes that must not trade on
it themselves (``mt5gate bot`` alone, ``mt5gate`` commands) while ``mt5gate serve`` does.

Reads only (a read-only connection; a missing journal means nobody ever owned the account), and
treats a lease as held while it has not expired and its holder still runs (a process on this
host that died holds nothing).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping

from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.ownership import holder_gone
from mt5gate.orders.store import JournalError, Lease, describe_owner
from mt5gate.service.config import AccountSettings, ServiceSettings
from mt5gate.service.stores import open_store

__all__ = ["find_owner", "live_owner", "owned_elsewhere"]


def live_owner(
    settings: ServiceSettings, account: AccountSettings, env: Mapping[str, str] | None = None
) -> Lease | None:
    """The live lease on ``account`` (its login, in its journal or the fleet's shared store),
    or ``None``: never leased, expired, its holder gone, or the account has no fixed login to
    look up. For callers without an event loop; :func:`find_owner` inside one."""
    if settings.store is not None and account.login is not None:
        return asyncio.run(_shared_owner(settings, account.login, env))
    return _journal_owner(settings, account)


async def find_owner(
    settings: ServiceSettings, account: AccountSettings, env: Mapping[str, str] | None = None
) -> Lease | None:
    """:func:`live_owner`, from a coroutine."""
    if settings.store is not None and account.login is not None:
        return await _shared_owner(settings, account.login, env)
    return _journal_owner(settings, account)


def _journal_owner(settings: ServiceSettings, account: AccountSettings) -> Lease | None:
    path = settings.journal_path(account)
    if account.login is None or not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        with SqliteJournal(path, readonly=True) as journal:
            lease = journal.lease(account.login)
    except JournalError:
        return None  # an old or unreadable journal: the session's own checks report it
    if lease is None or not lease.live(time.time_ns() // 1_000_000) or holder_gone(lease):
        return None
    return lease


async def _shared_owner(
    settings: ServiceSettings, login: int, env: Mapping[str, str] | None
) -> Lease | None:
    """The live lease in the fleet's store (by the store's clock); the store's errors (it
    cannot be reached) propagate: not knowing the owner is no licence to trade."""
    store = open_store(settings, os.environ if env is None else env)
    if store is None:  # pragma: no cover - the callers checked [store]
        return None
    try:
        lease, now = await store.lease(login), await store.now_ms()
    finally:
        await store.close()
    if lease is None or not lease.live(now) or holder_gone(lease):
        return None
    return lease


def owned_elsewhere(settings: ServiceSettings, account: AccountSettings) -> str | None:
    """One line saying who owns ``account`` and what to do, or ``None`` when nobody does."""
    lease = live_owner(settings, account)
    if lease is None:
        return None
    return (
        f"account {account.name!r} (login {account.login}) is owned by {describe_owner(lease)}; "
        "one process drives an account at a time"
    )
