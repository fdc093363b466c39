"""The session as the order pipeline's ports: a :class:`~mt5gate.orders.ports.Broker` and a
:class:`~mt5gate.orders.ports.Ledger` over one ``MT5SessionManager``.

Every call goes through the session's own call path (breaker, worker, deadline, read retries);
``send`` is the one ``order_send`` of :meth:`~mt5gate.session.trading.Trading.send_raw`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mt5gate.constants import AccountMarginMode
from mt5gate.models import Deal, Order, Position
from mt5gate.orders.ports import Late
from mt5gate.session.state import SessionState
from mt5gate.terminal.base import Fenceable

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["SessionPorts"]


class SessionPorts:
    """What the order pipeline may do with a session, and nothing more."""

    def __init__(self, session: MT5SessionManager) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<SessionPorts {self._session.name!r}>"

    # -- Broker --------------------------------------------------------------------------------

    async def login(self) -> tuple[int, bool]:
        """The account the terminal is logged into, and whether it is a hedging account."""
        account = await self._session.get_account_info()
        return account.login, account.margin_mode == AccountMarginMode.RETAIL_HEDGING

    async def send(self, request: dict[str, Any], on_late: Late) -> Any:
        """ONE order_send (see ``Trading.send_raw``)."""
        return await self._session.trading.send_raw(request, on_late=on_late)

    def fence(self, epoch: int) -> None:
        """Carry ``epoch`` with every later call, where the terminal host checks it."""
        terminal = self._session.terminal
        if isinstance(terminal, Fenceable):
            terminal.fence(epoch)

    async def book(self, symbol: str) -> tuple[Sequence[Position], Sequence[Order]]:
        """Open positions and pending orders on ``symbol``."""
        return (await self._session.positions(symbol=symbol),
                await self._session.orders(symbol=symbol))  # fmt: skip

    async def positions_on(self, symbol: str) -> Sequence[Position]:
        """Open positions on ``symbol``, read before a send (the absence proof's starting
        state). Concurrent orders on one symbol share one read: a read another order started
        still ran before this order is sent (the worker runs calls in order, and this order's
        send is queued only after the read has answered), and any state before the send will
        do, because the proof counts every deal after each position's last change."""
        records = await self._session.read("positions_get", symbol=symbol, shared=True)
        return [Position.from_record(p) for p in records]

    # -- Ledger --------------------------------------------------------------------------------

    def connected(self) -> bool:
        """The session is connected (history and positions are current only then)."""
        return self._session.state is SessionState.CONNECTED

    async def linked(self) -> bool:
        """The terminal is linked to its trade server."""
        return (await self._session.get_terminal_info()).connected

    async def tick_msc(self, symbol: str) -> int:
        """The time of ``symbol``'s latest tick (broker clock)."""
        return (await self._session.get_price(symbol)).time_msc

    async def server_now_s(self) -> int:
        """The broker's clock when no symbol is watched: the newest tick of Market Watch."""
        chosen = next(iter(await self._session.market_watch()), "EURUSD")
        return (await self._session.get_price(chosen)).time_msc // 1000

    async def orders(self) -> Sequence[Order]:
        """Active pending orders."""
        return await self._session.orders()

    async def positions(self) -> Sequence[Position]:
        """Open positions."""
        return await self._session.positions()

    async def history_orders(self, start_s: int, end_s: int) -> Sequence[Order]:
        """History orders between two broker times."""
        return await self._session.history_orders(start_s, end_s)

    async def history_deals(self, start_s: int, end_s: int) -> Sequence[Deal]:
        """Deals between two broker times."""
        return await self._session.history_deals(start_s, end_s)

    async def position_deals(self, position_id: int) -> Sequence[Deal]:
        """Every deal of one position."""
        records = await self._session.read("history_deals_get", position=position_id)
        return [Deal.from_record(d) for d in records]
