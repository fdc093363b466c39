"""When a pending order dies, from its ``type_time`` and ``expiration`` (semantics §7.4 step 12).

ORDER_TIME_DAY lasts until the next 00:00 server time; ORDER_TIME_SPECIFIED until the given
second; ORDER_TIME_SPECIFIED_DAY until the end (next 00:00) of the given day. The reported
``time_expiration`` is that instant in seconds for every type except GTC (0).
"""

from __future__ import annotations

from mt5gate.constants import OrderTime, SymbolExpiration

__all__ = ["DAY_MS", "allowed_bit", "expiry_ms"]

DAY_MS = 86_400_000

_BITS = {
    OrderTime.GTC: SymbolExpiration.GTC,
    OrderTime.DAY: SymbolExpiration.DAY,
    OrderTime.SPECIFIED: SymbolExpiration.SPECIFIED,
    OrderTime.SPECIFIED_DAY: SymbolExpiration.SPECIFIED_DAY,
}


def allowed_bit(type_time: int) -> int:
    """The SYMBOL_EXPIRATION bit a type_time needs (0 for an unknown type_time)."""
    return int(_BITS.get(OrderTime(type_time), 0)) if type_time in _BITS else 0


def _next_midnight(ms: int) -> int:
    return (ms // DAY_MS + 1) * DAY_MS


def expiry_ms(type_time: int, expiration_s: int, now_ms: int) -> int:
    """Epoch ms at which an order with this lifetime expires; 0 for good-till-cancelled."""
    if type_time == OrderTime.DAY:
        return _next_midnight(now_ms)
    if type_time == OrderTime.SPECIFIED:
        return expiration_s * 1000
    if type_time == OrderTime.SPECIFIED_DAY:
        return _next_midnight(expiration_s * 1000)
    return 0
