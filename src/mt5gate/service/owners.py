"""Who owns an account right now, read from its journal: for processes that must not trade on
it themselves (``mt5gate bot`` alone, ``mt5gate`` commands) while ``mt5gate serve`` does.

Reads only (a read-only connection; a missing journal means nobody ever owned the account), and
treats a lease as held while it has not expired and its holder still runs (a process on this
host that died holds nothing).
"""

from __future__ import annotations

import time

from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.ownership import holder_gone
from mt5gate.orders.store import JournalError, Lease, describe_owner
from mt5gate.service.config import AccountSettings, ServiceSettings

__all__ = ["live_owner", "owned_elsewhere"]


def live_owner(settings: ServiceSettings, account: AccountSettings) -> Lease | None:
    """The live lease on ``account`` (its login, in its journal), or ``None``: never leased,
    expired, its holder gone, or the account has no fixed login to look up."""
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


def owned_elsewhere(settings: ServiceSettings, account: AccountSettings) -> str | None:
    """One line saying who owns ``account`` and what to do, or ``None`` when nobody does."""
    lease = live_owner(settings, account)
    if lease is None:
        return None
    return (
        f"account {account.name!r} (login {account.login}) is owned by {describe_owner(lease)}; "
        "one process drives an account at a time"
    )
