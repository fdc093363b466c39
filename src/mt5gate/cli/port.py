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

import numpy as np
import numpy.typing as npt

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

__all__ = ["AccountPort", "Array"]

#: Bars or ticks: MT5's numpy structured array (``RATES_DTYPE``, ``TICKS_DTYPE``).
Array = npt.NDArray[np.void]


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

    async def get_rates(
        self, symbol: str, timeframe: int, *, count: int | None = None,
        date_from: datetime | int | None = None, date_to: datetime | int | None = None,
    ) -> Array:  # fmt: skip
        """Bars, oldest first; with both dates and ``count``, the first ``count`` bars with
        ``date_from <= time <= date_to`` (epoch seconds or datetimes, broker server time)."""
        ...

    async def get_ticks(
        self, symbol: str, date_from: datetime | int, *, count: int | None = None,
        date_to: datetime | int | None = None, flags: int = -1,
    ) -> Array:  # fmt: skip
        """Ticks, oldest first: the first ``count`` with ``time_msc >= date_from * 1000`` (and,
        with ``date_to``, ``<= date_to * 1000``)."""
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

    async def modify_position(
        self, ticket: int, *, sl: float | None = None, tp: float | None = None,
        idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """Set a position's SL / TP (None keeps a level, 0 removes it) exactly once."""
        ...

    async def close_position(
        self, ticket: int, *, volume: float | None = None, idempotency_key: str | None = None
    ) -> OrderResult:
        """Close a position (all of it, or ``volume`` lots) exactly once."""
        ...

    async def cancel_order(self, ticket: int, *, idempotency_key: str | None = None) -> OrderResult:
        """Delete a pending order exactly once."""
        ...

    async def modify_order(
        self, ticket: int, *, price: float | None = None, sl: float | None = None,
        tp: float | None = None, idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """Move a pending order (its price, SL / TP; None keeps one, an SL / TP of 0 removes
        it) exactly once."""
        ...
