"""The ``[health]`` settings: where health checks turn warn and fail, and when markets trade.

A ``[health]`` table sets them for every account; an account's ``health = {...}`` overrides
them key by key (its ``symbols`` entries are added to, and win over, the table's)::

    [health]
    ping_warn_ms = 250             # terminal:ping, warn at / fail at (warn <= fail)
    ping_fail_ms = 1000
    tick_age_warn_s = 60           # tick:age of the watched symbols, judged while they trade
    tick_age_fail_s = 300
    clock_offset_warn_s = 300      # broker:clockOffset: |ticks' offset - utc_offset_s|
    utc_offset_s = 7200            # the broker server's offset from UTC (UTC+2)
    hours = "forex"                # every symbol's trading hours: "forex", "always" or windows

    [health.symbols]               # per symbol
    BTCUSD = "always"
    US500 = [{ days = "mon-fri", from = "01:00", to = "23:00" }]

Trading hours are in the broker's server time. ``"forex"`` is Monday 00:05 to Friday 23:55,
``"always"`` every minute of every day. A window is ``{ days, from, to }``: ``days`` a day
(``mon``, or ``monday``), a range (``mon-fri``; ``fri-mon`` wraps over the weekend) or several
joined by commas (``"mon,wed,fri"``); ``from`` and ``to`` are ``HH:MM`` (``to`` may be
``24:00``, the end of the day) and ``from`` comes before ``to`` (a session over midnight is two
windows). Unset keys keep the defaults of :class:`~mt5gate.health.HealthThresholds` and
:class:`~mt5gate.health.MarketHours`, which is what the service used before these settings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from mt5gate.health import (
    ALWAYS_OPEN,
    FOREX_WEEK,
    HealthThresholds,
    MarketHours,
    TradingWindow,
    Weekday,
)

__all__ = ["HOURS_RULE", "HealthSettings", "WindowSettings"]

HOURS_RULE: Final = (
    'must be "forex", "always" or a list of windows like '
    '[{ days = "mon-fri", from = "00:00", to = "24:00" }]'
)
_PRESETS: Final = MappingProxyType({"forex": FOREX_WEEK, "always": ALWAYS_OPEN})
_DAYS: Final = MappingProxyType(
    {day.name[:3].lower(): day for day in Weekday} | {day.name.lower(): day for day in Weekday}
)
_DAYS_RULE: Final = (
    "must name days: mon, tue, wed, thu, fri, sat, sun (or the full names), a range "
    "such as mon-fri, or several joined by commas"
)
_TIME: Final = re.compile(r"^(\d{2}):(\d{2})$")
_PAIRS: Final = (("ping_warn_ms", "ping_fail_ms"), ("tick_age_warn_s", "tick_age_fail_s"))
_MAX_OFFSET_S: Final = 14 * 3600


def _positive(value: object) -> object:
    """A finite number > 0 (an int or a float; not a boolean or a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number > 0")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value}")
    return float(value)


#: A threshold: a finite number > 0, held as a float.
Positive = Annotated[float, BeforeValidator(_positive)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class WindowSettings(_Frozen):
    """One trading window in server time: ``days`` from ``from`` to ``to`` (``HH:MM``)."""

    model_config = ConfigDict(populate_by_name=True)

    days: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        _weekdays(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        _minutes(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError(f"from ({self.start}) must come before to ({self.end}); a session "
                             "over midnight is two windows")  # fmt: skip
        return self

    def windows(self) -> Iterator[TradingWindow]:
        """This window on each of its days, as :class:`~mt5gate.health.TradingWindow`."""
        start, end = _minutes(self.start), _minutes(self.end)
        for day in _weekdays(self.days):
            yield TradingWindow(day, start, end)


def _minutes(text: str) -> int:
    """``HH:MM`` as minutes of the day (``24:00`` is 1440, the end of the day)."""
    found = _TIME.match(text)
    hours, minutes = (int(found[1]), int(found[2])) if found else (99, 99)
    if not ((hours < 24 and minutes < 60) or (hours, minutes) == (24, 0)):
        raise ValueError("must be a time HH:MM from 00:00 to 24:00")
    return hours * 60 + minutes


def _weekdays(text: str) -> tuple[Weekday, ...]:
    """``mon-fri``, ``sat``, ``fri-mon`` (wrapping) or ``mon,wed,fri`` as weekdays."""
    found: list[Weekday] = []
    for part in (piece.strip().lower() for piece in text.split(",")):
        first, _, last = (end.strip() for end in part.partition("-"))
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(_DAYS_RULE)
        day, stop = _DAYS[first], _DAYS[last or first]
        found.append(day)
        while day != stop:
            day = Weekday((day + 1) % 7)
            found.append(day)
    return tuple(dict.fromkeys(found))


def _hours(value: object) -> object:
    """A preset's name as its windows; a list of windows as it is (validated next)."""
    if isinstance(value, str):
        preset = _PRESETS.get(value.strip().lower())
        if preset is None:
            raise ValueError(HOURS_RULE)
        return [_as_window(window) for window in preset]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(HOURS_RULE)
    return value


def _as_window(window: TradingWindow) -> WindowSettings:
    def clock(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    day = window.day.name[:3].lower()
    fields = {"days": day, "from": clock(window.start_min), "to": clock(window.end_min)}
    return WindowSettings.model_validate(fields)


#: Trading hours: a preset's name or windows, held as windows.
Hours = Annotated[tuple[WindowSettings, ...], BeforeValidator(_hours)]


class HealthSettings(_Frozen):
    """Health thresholds and market hours (``[health]``, or an account's ``health``); a key
    left out (None) is inherited: from ``[health]`` for an account, else the defaults."""

    ping_warn_ms: Positive | None = None
    ping_fail_ms: Positive | None = None
    tick_age_warn_s: Positive | None = None
    tick_age_fail_s: Positive | None = None
    clock_offset_warn_s: Positive | None = None
    utc_offset_s: Annotated[int, Field(strict=True, ge=-_MAX_OFFSET_S, le=_MAX_OFFSET_S)] | None = (
        None
    )
    hours: Hours | None = None
    symbols: dict[Annotated[str, Field(min_length=1)], Hours] | None = None

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Self:
        problem = self.problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    def problem(self) -> str | None:
        """What breaks the rule ``warn <= fail`` in these settings (None: nothing)."""
        for warn, fail in _PAIRS:
            low, high = getattr(self, warn), getattr(self, fail)
            if low is not None and high is not None and low > high:
                return f"need {warn} <= {fail} (warn before fail), got {low} and {high}"
        return None

    def merged(self, over: HealthSettings | None) -> HealthSettings:
        """These settings with ``over``'s keys in their place (``symbols`` merged by symbol);
        check :meth:`problem` on the result (it is not validated again)."""
        if over is None:
            return self
        given: dict[str, Any] = {k: v for k, v in over if v is not None and k != "symbols"}
        symbols = {**(self.symbols or {}), **(over.symbols or {})}
        return self.model_copy(update={**given, "symbols": symbols or None})

    def thresholds(self) -> HealthThresholds:
        """The :class:`~mt5gate.health.HealthThresholds` these settings make."""
        names = ("ping_warn_ms", "ping_fail_ms", "tick_age_warn_s", "tick_age_fail_s",
                 "clock_offset_warn_s")  # fmt: skip
        given = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return HealthThresholds(**given)

    def market_hours(self) -> MarketHours:
        """The :class:`~mt5gate.health.MarketHours` these settings make."""
        default = MarketHours()
        symbols: Mapping[str, tuple[TradingWindow, ...]] = MappingProxyType(
            {name: _trading(hours) for name, hours in (self.symbols or {}).items()}
        )
        return MarketHours(
            default=default.default if self.hours is None else _trading(self.hours),
            symbols=symbols,
            utc_offset_s=default.utc_offset_s if self.utc_offset_s is None else self.utc_offset_s,
        )


def _trading(hours: tuple[WindowSettings, ...]) -> tuple[TradingWindow, ...]:
    return tuple(window for setting in hours for window in setting.windows())
