"""Inbound limits: how much one member may ask of the bot, and replies that wait out a 429.

:class:`Throttle` is a token bucket per member over an injected clock (policy:
:class:`~mt5gate.bot.settings.Limits`). An update past the bucket is dropped; the first one
dropped after a pass gets one notice (so the member knows), the rest are silent, so a flood
costs neither terminal calls nor replies. :func:`patiently` makes a Telegram call and, when
Telegram answers 429 ``retry_after``, waits that long and tries again (bounded).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeVar

from telegram.error import RetryAfter

from mt5gate.bot.settings import Limits

__all__ = ["Admission", "Throttle", "patiently"]

T = TypeVar("T")
_MEMBERS: Final = 10_000  # buckets kept (the least recently seen are forgotten past it)


class Admission(StrEnum):
    """What the throttle says of one update."""

    PASS = "pass"  # handle it
    NOTICE = "notice"  # drop it, and tell the member once
    DROP = "drop"  # drop it silently


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    noticed: bool = False  # the member was told since their last update that passed


@dataclass(slots=True)
class Throttle:
    """Per-member token buckets (see the module docstring)."""

    policy: Limits
    clock: Callable[[], float]
    _buckets: OrderedDict[int, _Bucket] = field(default_factory=OrderedDict)

    def admit(self, user_id: int) -> Admission:
        """Take a token for ``user_id``'s update, if there is one."""
        now = self.clock()
        bucket = self._bucket(user_id, now)
        rate = self.policy.per_minute / 60.0
        bucket.tokens = min(float(self.policy.burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.noticed = False
            return Admission.PASS
        if bucket.noticed:
            return Admission.DROP
        bucket.noticed = True
        return Admission.NOTICE

    def _bucket(self, user_id: int, now: float) -> _Bucket:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(float(self.policy.burst), now)
            if len(self._buckets) > _MEMBERS:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(user_id)
        return bucket


async def patiently(
    call: Callable[[], Awaitable[T]], policy: Limits,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:  # fmt: skip
    """``call()``, again after Telegram's ``retry_after`` when it answers 429 (at most
    ``policy.retries`` more times, never waiting over ``policy.max_wait_s``); the last
    ``RetryAfter`` is raised when it will not wait."""
    for attempt in range(policy.retries + 1):
        try:
            return await call()
        except RetryAfter as error:
            wait = _seconds(error)
            if attempt >= policy.retries or wait > policy.max_wait_s:
                raise
            await sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _seconds(error: RetryAfter) -> float:
    """``retry_after`` in seconds (PTB 22 warns that it becomes a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
