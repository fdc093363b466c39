"""Server-wide ticket numbers.

One :class:`TicketSource` is shared by every account of a simulated trade server, so order,
deal and position tickets never collide across accounts (a real server numbers them globally).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TicketSource"]


class TicketSource:
    """Hands out increasing ticket numbers; its state survives a snapshot round trip."""

    __slots__ = ("_next",)

    def __init__(self, start: int = 10_000_000) -> None:
        self._next = start

    def next(self) -> int:
        """A fresh ticket, greater than every ticket handed out before."""
        ticket = self._next
        self._next += 1
        return ticket

    def ensure_above(self, ticket: int) -> None:
        """Never hand out ``ticket`` or anything below it (after restoring state)."""
        self._next = max(self._next, ticket + 1)

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {"next": self._next}

    def restore(self, data: dict[str, Any]) -> None:
        """Resume from :meth:`snapshot` output."""
        self._next = int(data["next"])

    def __repr__(self) -> str:
        return f"TicketSource(next={self._next})"
