"""The order pipeline's ports: the narrow views of a session it needs, and nothing more.

The pipeline and the reconciler never see ``MT5SessionManager``; the session hands them a
:class:`Broker` (log in, send once, fence the terminal, the book the risk limits read) and a
:class:`Ledger` (what an absence proof reads), plus a :class:`Clock` and an
:class:`OrderObserver`. ``mt5gate.session.ports`` implements them over a session; import-linter
forbids ``mt5gate.orders`` from importing ``mt5gate.session``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mt5gate.errors import MT5Error
from mt5gate.models import Deal, Order, Position

__all__ = ["Broker", "Clock", "Late", "Ledger", "OrderObserver"]

#: Called on the event loop with a late reply of a lost ``order_send`` (record, or its error).
Late = Callable[[Any, MT5Error | None], None]


class Clock(Protocol):
    """Monotonic time and sleeping (the session's clock: tests drive it)."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class OrderObserver(Protocol):
    """Where order events and journal latencies go (metrics, logs)."""

    def order_event(self, kind: str, retcode: int | None) -> None:
        """An event was journaled for an order."""
        ...

    def journal_written(self, operation: str, seconds: float) -> None:
        """A journal operation took ``seconds``."""
        ...


class Broker(Protocol):
    """What the pipeline does at the broker: who it is, one send, the fence, the book."""

    async def login(self) -> tuple[int, bool]:
        """The account the terminal is logged into, and whether it is a hedging account (every
        opening deal a new position) rather than a netting one (one position per symbol)."""
        ...

    async def send(self, request: dict[str, Any], on_late: Late) -> Any:
        """ONE ``order_send``, never retried; the reply record as it came. A failure that may
        have left the order on the server raises ``MT5OrderOutcomeUnknown``."""
        ...

    def fence(self, epoch: int) -> None:
        """Carry ``epoch`` with every later terminal call, where the terminal supports it."""
        ...

    async def book(self, symbol: str) -> tuple[Sequence[Position], Sequence[Order]]:
        """Open positions and pending orders on ``symbol`` (risk limits)."""
        ...

    async def positions_on(self, symbol: str) -> Sequence[Position]:
        """Open positions on ``symbol`` (the state an absence proof starts from)."""
        ...


class Ledger(Protocol):
    """What the terminal shows, read for an absence proof and the sweep."""

    def connected(self) -> bool:
        """The session is connected (not degraded, reconnecting or closed)."""
        ...

    async def linked(self) -> bool:
        """The terminal is linked to its trade server (history is current only then)."""
        ...

    async def tick_msc(self, symbol: str) -> int:
        """The time of ``symbol``'s latest tick (broker clock, ms)."""
        ...

    async def server_now_s(self) -> int:
        """The broker's clock, from the freshest tick of Market Watch (seconds)."""
        ...

    async def orders(self) -> Sequence[Order]:
        """Active pending orders."""
        ...

    async def positions(self) -> Sequence[Position]:
        """Open positions."""
        ...

    async def history_orders(self, start_s: int, end_s: int) -> Sequence[Order]:
        """History orders between two broker times."""
        ...

    async def history_deals(self, start_s: int, end_s: int) -> Sequence[Deal]:
        """Deals between two broker times."""
        ...

    async def position_deals(self, position_id: int) -> Sequence[Deal]:
        """Every deal of one position, whenever it happened."""
        ...
