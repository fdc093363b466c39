"""Input validation before the terminal is touched: typed errors naming the field and the rule.

Every function here is pure: it takes values (and, for the checks against a symbol, the
``Symbol`` and the current ``Price``) and either returns the value normalised (an ``int`` volume
becomes a ``float``, which the real module insists on, pitfall C3) or raises
:class:`~mt5gate.errors.MT5ValidationError` with ``field`` and ``rule`` set. Catching a bad order
here costs nothing; catching it at the trade server costs a round trip and a rejected request in
the broker's log, and some mistakes (an ``int`` volume, a 32-character comment) make the real
module return ``None`` instead of a result.

``check_request`` covers everything knowable from the request alone; ``check_request_against``
adds the checks that need the symbol's specification and a quote (volume limits and step,
stops around the entry price, expiration in the future).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

from mt5gate.constants import OrderFilling
from mt5gate.errors import MT5ValidationError
from mt5gate.models import OrderKind, OrderRequest, Price, Side, Symbol

__all__ = [
    "COMMENT_MAX",
    "DATE_MAX",
    "DATE_MAX_MSC",
    "DATE_MAX_S",
    "DATE_MIN",
    "MAGIC_MAX",
    "TICKET_MAX",
    "check_request",
    "check_request_against",
    "entry_price",
    "require_close_volume",
    "require_comment",
    "require_count",
    "require_date",
    "require_deviation",
    "require_epoch_msc",
    "require_expiration",
    "require_filling",
    "require_kind",
    "require_level",
    "require_magic",
    "require_price",
    "require_side",
    "require_stop_limit",
    "require_stops",
    "require_symbol_name",
    "require_ticket",
    "require_volume",
    "require_volume_on_symbol",
]

_MAX_SYMBOL = 64
#: Longest request comment the real module takes; longer ones give (-2, 'Invalid "comment"').
COMMENT_MAX = 31
#: ``magic`` is an unsigned 64-bit number in MT5.
MAGIC_MAX = 2**64 - 1
#: Tickets are unsigned 64-bit numbers in MT5 (``ulong``).
TICKET_MAX = 2**64 - 1
#: The times MT5 holds: its ``datetime`` runs from 1970-01-01 to 3000-12-31 (MQL5 reference,
#: "Integer types: datetime"). Anything outside cannot name a bar, a tick or a deal, and a
#: larger number overflows the 64-bit fields of the terminal's and the bridge's encodings.
DATE_MIN = datetime(1970, 1, 1, tzinfo=UTC)
DATE_MAX = datetime(3000, 12, 31, 23, 59, 59, tzinfo=UTC)
#: :data:`DATE_MAX` in epoch seconds (32535215999) and epoch milliseconds.
DATE_MAX_S = int(DATE_MAX.timestamp())
DATE_MAX_MSC = DATE_MAX_S * 1000 + 999
_DATE_RULE = "a datetime or epoch seconds from 1970-01-01 to 3000-12-31 (what MT5 holds)"
#: Relative tolerance when testing a volume against its limits and step (float noise only).
_VOLUME_TOLERANCE = 1e-9
_PENDING = frozenset({OrderKind.LIMIT, OrderKind.STOP, OrderKind.STOP_LIMIT})


def _invalid(field: str, rule: str, detail: str) -> MT5ValidationError:
    """The error for ``field`` breaking ``rule``; ``detail`` says what was given."""
    return MT5ValidationError(f"{field} must be {rule}; {detail}", field=field, rule=rule)


def _number(value: object) -> float | None:
    """``value`` as a float if it is an int or a float (not a bool), else None; an int too
    large for a float is infinite (so the finite checks refuse it, not an OverflowError)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return None


def _integer(value: object) -> int | None:
    """``value`` if it is an int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _finite(value: object, low: float) -> float | None:
    """``value`` as a float if it is a finite number > ``low``, else None."""
    number = _number(value)
    return number if number is not None and math.isfinite(number) and number > low else None


def require_symbol_name(symbol: object, field: str = "symbol") -> str:
    """A non-empty symbol name of at most 64 printable characters."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise MT5ValidationError(
            f"{field} must be a non-empty string, got {symbol!r}",
            field=field,
            rule="non-empty string",
        )
    if len(symbol) > _MAX_SYMBOL or not symbol.isprintable():
        raise MT5ValidationError(
            f"{field} must be at most {_MAX_SYMBOL} printable characters",
            field=field,
            rule=f"at most {_MAX_SYMBOL} printable characters",
        )
    return symbol


# ------------------------------------------------------------------------ scalar fields


def require_side(side: object, field: str = "side") -> Side:
    """A :class:`Side`, or its value ("buy" / "sell")."""
    if isinstance(side, str) and side in tuple(Side):
        return Side(side)
    raise _invalid(field, "a Side (buy or sell)", f"got {side!r}")


def require_kind(kind: object, field: str = "kind") -> OrderKind:
    """An :class:`OrderKind`, or its value ("market", "limit", "stop", "stop_limit")."""
    if isinstance(kind, str) and kind in tuple(OrderKind):
        return OrderKind(kind)
    rule = "an OrderKind (market, limit, stop, stop_limit)"
    raise _invalid(field, rule, f"got {kind!r}")


def require_volume(volume: object, field: str = "volume") -> float:
    """A finite number of lots > 0, as a float (the real module refuses ``int`` volumes)."""
    lots = _finite(volume, 0.0)
    if lots is None:
        raise _invalid(field, "a finite number of lots > 0", f"got {volume!r}")
    return lots


def require_price(value: object, field: str = "price") -> float:
    """A finite price > 0, as a float (the real module probably refuses ``int`` prices)."""
    price = _finite(value, 0.0)
    if price is None:
        raise _invalid(field, "a finite price > 0", f"got {value!r}")
    return price


def require_level(value: object, field: str) -> float:
    """An SL / TP level for a modification: a finite price > 0, or 0 to remove the level."""
    if _number(value) == 0.0:
        return 0.0
    level = _finite(value, 0.0)
    if level is None:
        raise _invalid(field, "a finite price > 0, or 0 to remove the level", f"got {value!r}")
    return level


def require_deviation(deviation: object, field: str = "deviation") -> int:
    """The accepted slippage in points: an ``int`` >= 0."""
    points = _integer(deviation)
    if points is None or points < 0:
        raise _invalid(field, "an int >= 0 (points)", f"got {deviation!r}")
    return points


def require_comment(comment: object, field: str = "comment") -> str:
    """A ``str`` of at most 31 characters; longer makes the module return None with -2."""
    if not isinstance(comment, str):
        raise _invalid(field, "a str", f"got {type(comment).__name__}")
    if len(comment) > COMMENT_MAX:
        rule = f"at most {COMMENT_MAX} characters"
        raise _invalid(field, rule, f"got {len(comment)}; shorten it")
    return comment


def require_magic(magic: object, field: str = "magic") -> int:
    """An ``int`` in 0..2**64-1 (MT5 stores it as an unsigned 64-bit number)."""
    number = _integer(magic)
    if number is None or not 0 <= number <= MAGIC_MAX:
        raise _invalid(field, "an int in 0..2**64-1", f"got {magic!r}")
    return number


def require_filling(filling: object, field: str = "filling") -> OrderFilling | None:
    """None (mt5gate chooses), or an ``OrderFilling`` value (FOK 0, IOC 1, RETURN 2, BOC 3).

    Not the symbol's ``filling_mode`` bit flags (FOK 1, IOC 2), which mean something else
    (pitfall C2).
    """
    if filling is None:
        return None
    value = _integer(filling)
    if value is None or value not in tuple(OrderFilling):
        rule = "an OrderFilling (FOK 0, IOC 1, RETURN 2, BOC 3), not a SYMBOL_FILLING flag"
        raise _invalid(field, rule, f"got {filling!r}")
    return OrderFilling(value)


def require_ticket(ticket: object, field: str = "ticket") -> int:
    """A position or order ticket: an ``int`` in 1..2**64-1 (MT5's tickets are ``ulong``)."""
    number = _integer(ticket)
    if number is None or not 0 < number <= TICKET_MAX:
        raise _invalid(field, "an int > 0, at most 2**64-1 (MT5's ulong)", f"got {ticket!r}")
    return number


def require_date(value: object, field: str) -> datetime | int | float:
    """A date argument MT5 can hold: a ``datetime`` (naive ones are judged as UTC: within a
    day of the bounds the terminal's local-time reading decides) or epoch seconds (``int`` or
    finite ``float``) from 1970-01-01 to 3000-12-31. Returned unchanged.

    Out of range, the terminal answers nonsense at best; a year-1 ``datetime`` makes
    ``timestamp()`` fail, and a 20-digit number overflows the bridge's 64-bit encoding.
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if DATE_MIN <= aware <= DATE_MAX:
            return value
    elif (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= DATE_MAX_S
    ):
        return value  # NaN fails the comparison too
    raise _invalid(field, _DATE_RULE, f"got {value!r}")


def require_count(count: object, field: str = "count") -> int:
    """A number of bars or ticks to copy: an ``int`` >= 1 (the terminal's own limit,
    ``maxbars`` for bars, is the terminal's to enforce)."""
    number = _integer(count)
    if number is None or number < 1:
        raise _invalid(field, "an int >= 1", f"got {count!r}")
    return number


def require_epoch_msc(value: object, field: str = "expiration_msc") -> int:
    """A server time in epoch milliseconds MT5 can hold: an ``int`` in 0..:data:`DATE_MAX_MSC`
    (3000-12-31), as MT5's ``datetime`` does (a larger one overflows 64-bit encodings)."""
    when = _integer(value)
    if when is None or not 0 <= when <= DATE_MAX_MSC:
        rule = f"an int (server time, epoch ms) in 0..{DATE_MAX_MSC} (up to 3000-12-31)"
        raise _invalid(field, rule, f"got {value!r}")
    return when


def require_expiration(expiration_msc: object, now_msc: int, field: str = "expiration_msc") -> int:
    """A server-time expiry in epoch milliseconds MT5 can hold, after ``now_msc`` (the latest
    quote's time)."""
    when = require_epoch_msc(expiration_msc, field)
    if when <= now_msc:
        rule = "in the future (server time)"
        raise _invalid(field, rule, f"got {when}, server time is {now_msc}")
    return when


# ----------------------------------------------------------------- relations between fields


def require_stop_limit(side: Side, price: float, stop_limit: float) -> None:
    """A stop-limit's limit price sits below its trigger for a buy, above it for a sell."""
    ok = stop_limit < price if side is Side.BUY else stop_limit > price
    if not ok:
        where = "below" if side is Side.BUY else "above"
        rule = f"{where} price for a {side} stop-limit"
        raise _invalid("stop_limit", rule, f"got {stop_limit} with price {price}")


def require_stops(side: Side, entry: float, sl: float | None, tp: float | None) -> None:
    """SL and TP on the right side of ``entry``: buy sl < entry < tp, sell tp < entry < sl.

    ``None`` (or 0) means no level. The server also enforces ``trade_stops_level`` (10016).
    """
    sign = 1.0 if side is Side.BUY else -1.0
    if sl and sign * (entry - sl) <= 0:
        where = "below" if side is Side.BUY else "above"
        raise _invalid("sl", f"{where} the entry price for a {side}", f"got {sl}, entry {entry}")
    if tp and sign * (tp - entry) <= 0:
        where = "above" if side is Side.BUY else "below"
        raise _invalid("tp", f"{where} the entry price for a {side}", f"got {tp}, entry {entry}")


def require_volume_on_symbol(volume: float, symbol: Symbol, field: str = "volume") -> float:
    """``volume`` within the symbol's volume_min..volume_max and a whole number of steps."""
    low = symbol.volume_min * (1 - _VOLUME_TOLERANCE)
    high = symbol.volume_max * (1 + _VOLUME_TOLERANCE)
    if not low <= volume <= high:
        rule = f"within {symbol.volume_min}..{symbol.volume_max} lots for {symbol.name}"
        raise _invalid(field, rule, f"got {volume}")
    steps = volume / symbol.volume_step
    if abs(steps - round(steps)) > _VOLUME_TOLERANCE * max(1.0, steps):
        rule = f"a multiple of {symbol.name}'s volume_step {symbol.volume_step}"
        raise _invalid(field, rule, f"got {volume}; round it to the step")
    return volume


def require_close_volume(volume: object, held: float, symbol: Symbol) -> float:
    """A partial-close volume: valid lots on the symbol's step, at most the position's volume."""
    lots = require_volume_on_symbol(require_volume(volume), symbol)
    if lots > held * (1 + _VOLUME_TOLERANCE):
        raise _invalid("volume", "at most the position's volume", f"got {lots}, held {held}")
    return lots


# ---------------------------------------------------------------------- whole requests


def check_request(request: object) -> OrderRequest:
    """Everything knowable from the request alone; returns it normalised (floats, enums)."""
    if not isinstance(request, OrderRequest):
        rule = "an OrderRequest"
        raise _invalid("request", rule, f"got {type(request).__name__}")
    kind = require_kind(request.kind)
    side = require_side(request.side)
    normal = replace(
        request,
        symbol=require_symbol_name(request.symbol),
        side=side,
        kind=kind,
        volume=require_volume(request.volume),
        price=_optional_price(request.price, "price"),
        stop_limit=_optional_price(request.stop_limit, "stop_limit"),
        sl=_optional_price(request.sl, "sl"),
        tp=_optional_price(request.tp, "tp"),
        deviation=require_deviation(request.deviation),
        filling=require_filling(request.filling),
        comment=require_comment(request.comment),
        magic=require_magic(request.magic),
    )
    _check_kind_fields(normal)
    return normal


def _optional_price(value: object, field: str) -> float | None:
    return None if value is None else require_price(value, field)


def _check_kind_fields(request: OrderRequest) -> None:
    """Pending kinds need a price; only stop-limits take stop_limit; only pending orders expire."""
    kind = request.kind
    if kind in _PENDING and request.price is None:
        raise _invalid("price", f"given for a {kind} order", "got None")
    if kind is OrderKind.STOP_LIMIT:
        if request.stop_limit is None:
            raise _invalid("stop_limit", "given for a stop_limit order", "got None")
        assert request.price is not None
        require_stop_limit(request.side, request.price, request.stop_limit)
    elif request.stop_limit is not None:
        raise _invalid("stop_limit", "None unless kind is stop_limit", f"kind is {kind}")
    expiration = request.expiration_msc
    if expiration is not None and kind not in _PENDING:
        rule = "None for market orders (only pending orders expire)"
        raise _invalid("expiration_msc", rule, f"got {expiration!r}")
    if expiration is not None:
        require_epoch_msc(expiration)


def entry_price(request: OrderRequest, quote: Price) -> float:
    """The price a position would open at: the stop-limit's limit, the pending price, the
    market order's given price, else the current ask (buy) or bid (sell)."""
    if request.stop_limit is not None:
        return request.stop_limit
    if request.price is not None:
        return request.price
    return quote.ask if request.side is Side.BUY else quote.bid


def check_request_against(request: OrderRequest, symbol: Symbol, quote: Price) -> None:
    """The checks that need the symbol (volume limits and step), a quote (stops around the
    entry price) and the server time of that quote (expiration in the future)."""
    require_volume_on_symbol(request.volume, symbol)
    require_stops(request.side, entry_price(request, quote), request.sl, request.tp)
    if request.expiration_msc is not None:
        require_expiration(request.expiration_msc, quote.time_msc)
