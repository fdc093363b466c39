"""What the routes accept: request bodies and query values, strict and bounded.

Bodies are strict about JSON types: a number field takes a JSON number (an integer is a
number), never a string or a boolean (``"volume": true`` was once a 1-lot order) nor an
infinite one; an integer field takes a JSON integer (``2.5`` and ``1e23`` are not). Times and
tickets are bounded by what MT5 holds (its ``datetime`` runs from 1970-01-01 to 3000-12-31,
tickets are ``ulong``), by the session's own rules in :mod:`mt5gate.session.validation`, so a
value out of range is a 422 naming the field here and an ``MT5ValidationError`` for a library
caller, never an overflow inside the terminal or the bridge's encoder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from mt5gate.errors import MT5ValidationError
from mt5gate.models import OrderKind, OrderRequest, Side
from mt5gate.session.validation import DATE_MAX_MSC, DATE_MAX_S, TICKET_MAX, require_date

__all__ = [
    "CloseBody", "DateArg", "DateFrom", "DateTo", "HaltBody", "Integer", "Number", "OrderBody",
    "PendingBody", "StopsBody", "Ticket",
]  # fmt: skip

Ticket = Annotated[
    int, Path(gt=0, le=TICKET_MAX, description="Position or order ticket (MT5's ulong: 1..2**64-1)")
]

_DATES = TypeAdapter(datetime)
_DATE_DESCRIPTION = (
    f"ISO-8601 time or epoch seconds (0..{DATE_MAX_S}) (broker server time for history): a "
    "time MT5 can hold, 1970-01-01 to 3000-12-31 (its datetime type's range); a larger number "
    "cannot name a bar, tick or deal and overflows the terminal's 64-bit fields"
)


def _mt5_date(value: object) -> datetime | int:
    """A query date: digits are epoch seconds (never read as milliseconds, as a bare
    ``datetime`` would read a large number), anything else ISO-8601; then the session's own
    range rule, so the problem names the query parameter."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        parsed: datetime | int = int(value)
    else:
        try:
            parsed = _DATES.validate_python(value)
        except ValidationError:
            raise ValueError("an ISO-8601 time or epoch seconds") from None
    try:
        require_date(parsed, "date")
    except MT5ValidationError as error:
        raise ValueError(error.rule) from None
    return parsed


#: The JSON schema of a date: what :func:`_mt5_date` accepts.
_DATE_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": DATE_MAX_S},
                          {"type": "string", "format": "date-time"}]}  # fmt: skip
Mt5Date = Annotated[datetime | int, PlainValidator(_mt5_date), WithJsonSchema(_DATE_SCHEMA)]
DateArg = Annotated[Mt5Date | None, Query(description=_DATE_DESCRIPTION)]
DateFrom = Annotated[Mt5Date, Query(alias="from", description=_DATE_DESCRIPTION)]
DateTo = Annotated[Mt5Date, Query(alias="to", description=_DATE_DESCRIPTION)]

#: A JSON number (an integer is one), finite; a string or a boolean is refused.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A JSON integer; a boolean, a string or a float (even ``1e23``) is refused.
Integer = Annotated[int, Field(strict=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderBody(_Body):
    """A new market or pending order."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"symbol": "EURUSD", "side": "buy", "volume": 0.1, "sl": 1.05}]})  # fmt: skip

    symbol: str = Field(min_length=1, max_length=32)
    side: Side
    volume: Number = Field(gt=0, description="Lots")
    kind: OrderKind = OrderKind.MARKET
    price: Number | None = Field(default=None, gt=0, description="Pending orders' price")
    stop_limit: Number | None = Field(default=None, gt=0)
    sl: Number | None = Field(default=None, ge=0)
    tp: Number | None = Field(default=None, ge=0)
    deviation: Integer = Field(default=20, ge=0, le=10_000)
    filling: Integer | None = Field(default=None, ge=0, le=3)
    expiration_msc: Integer | None = Field(
        default=None,
        gt=0,
        le=DATE_MAX_MSC,
        description="Pending orders' expiry, broker server time in epoch milliseconds, up to "
        "3000-12-31 (the last time MT5's datetime holds; a larger number overflows the "
        "terminal's 64-bit fields)",
    )
    comment: str = Field(default="", max_length=31)

    def request(self) -> OrderRequest:
        """The session's order request."""
        return OrderRequest(**self.model_dump())


class StopsBody(_Body):
    """New SL / TP of a position (absent: keep; 0: remove)."""

    sl: Number | None = Field(default=None, ge=0)
    tp: Number | None = Field(default=None, ge=0)


class PendingBody(_Body):
    """New price, stop-limit price, SL / TP or expiry of a pending order (absent: keep; an SL
    or TP of 0: remove). The resulting levels are checked together before anything is sent."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"price": 1.0850, "sl": 1.0800}]})

    price: Number | None = Field(default=None, gt=0)
    stop_limit: Number | None = Field(default=None, gt=0)
    sl: Number | None = Field(default=None, ge=0)
    tp: Number | None = Field(default=None, ge=0)
    expiration_msc: Integer | None = Field(
        default=None, gt=0, le=DATE_MAX_MSC,
        description="New expiry, broker server time in epoch milliseconds (the order becomes "
        "good till that time)",
    )  # fmt: skip


class CloseBody(_Body):
    """Close a position fully (no volume) or partly."""

    volume: Number | None = Field(default=None, gt=0)
    deviation: Integer = Field(default=20, ge=0, le=10_000)
    comment: str = Field(default="", max_length=31)


class HaltBody(_Body):
    """Why trading is halted (shown in health)."""

    reason: str = Field(default="", max_length=200)
