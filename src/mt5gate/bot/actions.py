"""What a confirmation binds: the exact action the member saw, nothing looser.

A command's words (:mod:`~mt5gate.bot.commands`) are what was asked; an action here is what
was shown, with every number the way it was shown: stops rounded to the symbol's digits, and a
close with its position's side and volume and the volume to close written out (never "all of
whatever it holds when Confirm is pressed"). The bot sends the action as it is; a close whose
position no longer looks as shown is refused and previewed again (:meth:`CloseAction.matches`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from mt5gate.bot.commands import CloseArgs, OrderArgs
from mt5gate.constants import PositionType
from mt5gate.models import OrderRequest, Position, Side

__all__ = ["Action", "CloseAction", "OrderAction"]

_VOLUME_DIGITS: Final = 8  # volumes compare at this many decimals (float noise below it)


@dataclass(frozen=True, slots=True)
class OrderAction:
    """A market order as shown: side, symbol, volume, and stops at the symbol's digits."""

    side: Side
    symbol: str
    volume: float
    sl: float | None = None
    tp: float | None = None

    @classmethod
    def of(cls, args: OrderArgs, digits: int) -> OrderAction:
        """``args`` with its stops rounded to ``digits``: what is shown is what is sent."""
        return cls(args.side, args.symbol, args.volume, _round(args.sl, digits),
                   _round(args.tp, digits))  # fmt: skip

    def request(self) -> OrderRequest:
        """The order to send."""
        return OrderRequest(self.symbol, self.side, self.volume, sl=self.sl, tp=self.tp)


@dataclass(frozen=True, slots=True)
class CloseAction:
    """A close as shown: the position (ticket, symbol, side, its volume) and how much of it."""

    ticket: int
    symbol: str
    side: Side
    held: float  # the position's volume when shown
    volume: float  # the volume to close (``held`` for "all")

    @classmethod
    def of(cls, args: CloseArgs, position: Position) -> CloseAction:
        """The close ``args`` asks for, of ``position`` as it is now."""
        side = Side.BUY if position.type is PositionType.BUY else Side.SELL
        volume = position.volume if args.volume is None else args.volume
        return cls(position.ticket, position.symbol, side, position.volume, volume)

    @property
    def whole(self) -> bool:
        """Whether the whole position is closed."""
        return _same(self.volume, self.held) or self.volume > self.held

    def matches(self, position: Position | None) -> bool:
        """Whether ``position`` (as it is now) is still the one shown: same ticket, symbol,
        side and volume. Anything else would make the close differ from what was confirmed."""
        if position is None:
            return False
        now = CloseAction.of(CloseArgs(self.ticket, self.volume), position)
        return (now.ticket, now.symbol, now.side) == (self.ticket, self.symbol, self.side) and (
            _same(now.held, self.held)
        )


Action = OrderAction | CloseAction


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, max(0, digits))


def _same(a: float, b: float) -> bool:
    return math.isclose(round(a, _VOLUME_DIGITS), round(b, _VOLUME_DIGITS))
