"""The real module's argument conventions, applied before the simulator does any work.

``MetaTrader5`` parses positional-only functions with ``PyArg_ParseTuple`` (so wrong scalar types
raise ``TypeError``) and checks keyword-capable functions itself (so a bad value gives ``None`` /
``False`` with ``(-2, 'Invalid "<field>" argument')``). Trade requests are type-checked field by
field: an ``int`` volume or a ``None`` price is refused, as on Windows (pitfall C3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mt5gate.constants import ResultCode, TradeAction
from mt5gate.records import TradeRequest
from mt5gate.sim.errors import SimError

__all__ = [
    "RequestRules",
    "check_format",
    "check_tick_cursors",
    "date_seconds",
    "invalid_argument",
    "parse_request",
]

_INT_FIELDS = frozenset(
    {"action", "magic", "order", "deviation", "type", "type_filling", "type_time", "expiration"}
    | {"position", "position_by"}
)
_FLOAT_FIELDS = frozenset({"volume", "price", "stoplimit", "sl", "tp"})
_DEFAULTS: dict[str, Any] = {
    name: ("" if name in ("symbol", "comment") else 0.0 if name in _FLOAT_FIELDS else 0)
    for name in TradeRequest.__match_args__
}
_UINT64 = 2**64


def invalid_argument(name: str) -> SimError:
    """(-2, 'Invalid "<name>" argument'), the module's own argument error."""
    return SimError(ResultCode.E_INVALID_PARAMS, f'Invalid "{name}" argument')


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _format_error(code: str, value: object) -> TypeError | None:
    if code in "ik" and not isinstance(value, int):
        return TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    if code == "d" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return TypeError(f"must be real number, not {type(value).__name__}")
    return None


def check_format(function: str, fmt: str, args: tuple[object, ...]) -> None:
    """Mimic ``PyArg_ParseTuple(args, fmt)``: wrong count or scalar type raises ``TypeError``.

    Codes: ``O`` any object, ``i``/``k`` int, ``d`` real number, ``p`` any (truth value).
    """
    if len(args) != len(fmt):
        raise TypeError(
            f"{function}() takes exactly {len(fmt)} argument{'s' * (len(fmt) != 1)} "
            f"({len(args)} given)"
        )
    for code, value in zip(fmt, args, strict=True):
        error = _format_error(code, value)
        if error is not None:
            raise error


def date_seconds(value: object, name: str) -> int:
    """A date argument as seconds: ``datetime.timestamp()`` (naive = local time) or int seconds.

    Floats are truncated to whole seconds (UNSURE in the real module); anything else is a
    ``(-2, 'Invalid "<name>" argument')``.
    """
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    raise invalid_argument(name)


@dataclass(frozen=True, slots=True)
class RequestRules:
    """How strictly request dicts are checked where the real module is UNSURE."""

    comment_max: int = 31
    int_price_allowed: bool = False  # the real module probably refuses an int price
    reject_unknown_keys: bool = False  # peers only send known keys; unknown ones are ignored


def _check_field(name: str, value: object, rules: RequestRules) -> object:
    """The field's value, checked and made plain (``int``, ``float``, ``str``).

    The real module copies a request into a C struct, so the echoed ``TradeRequest`` holds
    plain values even when the caller passed an ``IntEnum`` (``OrderType.BUY``) or a
    ``StrEnum``; the simulator does the same.
    """
    if name in _INT_FIELDS:
        if not _is_int(value) or not -(2**63) <= value < _UINT64:  # type: ignore[operator]
            raise invalid_argument(name)
        return int(value)  # type: ignore[call-overload]
    if name in _FLOAT_FIELDS:
        return _check_float(name, value, rules)
    if not isinstance(value, str) or (name == "comment" and len(value) > rules.comment_max):
        raise invalid_argument(name)
    return str.__str__(value)


def _check_float(name: str, value: object, rules: RequestRules) -> float:
    if isinstance(value, float):
        return float(value)
    int_ok = name != "volume" and rules.int_price_allowed
    if int_ok and _is_int(value):
        return float(value)  # type: ignore[arg-type]
    raise invalid_argument(name)


def parse_request(request: object, rules: RequestRules) -> TradeRequest:
    """Check a request dict field by field and echo it as a ``TradeRequest`` with defaults.

    ``volume`` is required for DEAL and PENDING requests (a missing volume is the classic
    "close without volume" incident); other missing keys default to 0 / 0.0 / ''.
    """
    if not isinstance(request, Mapping):
        raise SimError(ResultCode.E_INVALID_PARAMS, "Invalid arguments")
    fields = dict(_DEFAULTS)
    for key, value in request.items():
        if key not in fields:
            if rules.reject_unknown_keys:
                raise invalid_argument(str(key))
            continue
        fields[key] = _check_field(key, value, rules)
    needs_volume = fields["action"] in (TradeAction.DEAL, TradeAction.PENDING)
    if needs_volume and "volume" not in request:
        raise invalid_argument("volume")
    return TradeRequest(fields[name] for name in TradeRequest.__match_args__)


def check_tick_cursors(
    cursors: object, count: object
) -> tuple[tuple[tuple[str, int, int], ...], int]:
    """``ticks_after(cursors, count)`` checked as the module checks its own arguments: a
    non-empty sequence of ``(symbol, time_msc >= 0, seen >= 0)`` and ``count >= 1``, else
    ``(-2, 'Invalid "cursors" argument')`` or ``'Invalid "count" argument'``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise invalid_argument("count")
    if not isinstance(cursors, tuple | list) or not cursors:
        raise invalid_argument("cursors")
    checked = []
    for cursor in cursors:
        if not (isinstance(cursor, tuple | list) and len(cursor) == 3):
            raise invalid_argument("cursors")
        symbol, time_msc, seen = cursor
        numbers = (time_msc, seen)
        if not isinstance(symbol, str) or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers
        ):
            raise invalid_argument("cursors")
        checked.append((symbol, time_msc, seen))
    return tuple(checked), count
