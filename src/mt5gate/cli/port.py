"""The account port: exactly what the read and trading commands call on an account.

Two things fill it. A :class:`~mt5gate.session.manager.MT5SessionManager` the command connects
itself, when no other process owns the account; and a :class:`~mt5gate.cli.remote.RemoteAccount`
that sends the same calls to the running ``mt5gate serve`` owning it (one owner per account,
DESIGN §8). The commands are typed against this Protocol, so they read, confirm and trade the
same way through either, and mypy holds both to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mt5gate.models import (
    Account,
    Deal,
    Order,
    OrderCheck,
    OrderRequest,
    OrderResult,
    Position,
    Price,
    Side,
    Symbol,
)

__all__ = ["AccountPort"]


class AccountPort(Protocol):
    """The calls the commands make on an account, with the session's return types and errors
    (:mod:`mt5gate.errors`): the exit codes of ``mt5gate`` do not depend on the route."""

    async def get_account_info(self) -> Account:
        """The logged-in account and its money figures."""
        ...

    async def get_symbol_info(self, symbol: str) -> Symbol:
        """The specification and quote of ``symbol``."""
        ...

    async def get_price(self, symbol: str) -> Price:
        """The latest tick of ``symbol``."""
        ...

    async def positions(
        self, *, symbol: str | None = None, ticket: int | None = None
    ) -> list[Position]:
        """Open positions, optionally of one symbol or one ticket."""
        ...

    async def orders(self, *, symbol: str | None = None, ticket: int | None = None) -> list[Order]:
        """Pending orders, optionally of one symbol or one ticket."""
        ...

    async def history_orders(self, date_from: datetime, date_to: datetime) -> list[Order]:
        """Orders in the history between two times (broker server time)."""
        ...

    async def history_deals(self, date_from: datetime, date_to: datetime) -> list[Deal]:
        """Deals between two times (broker server time)."""
        ...

    async def check_order(self, request: OrderRequest) -> OrderCheck:
        """``order_check``: the account as it would be after ``request``; nothing is sent."""
        ...

    async def calc_margin(
        self, symbol: str, side: Side, volume: float, price: float | None = None
    ) -> float:
        """The margin ``volume`` lots need, in the account currency."""
        ...

    async def place_order(
        self, request: OrderRequest, *, idempotency_key: str | None = None
    ) -> OrderResult:
        """Send ``request`` exactly once: the same key returns the first outcome."""
        ...

    async def close_position(
        self, ticket: int, *, volume: float | None = None, idempotency_key: str | None = None
    ) -> OrderResult:
        """Close a position (all of it, or ``volume`` lots) exactly once."""
        ...

    async def cancel_order(self, ticket: int, *, idempotency_key: str | None = None) -> OrderResult:
        """Delete a pending order exactly once."""
        ...
