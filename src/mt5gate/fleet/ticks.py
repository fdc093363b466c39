"""Ticks across replicas: interest from the replicas that have readers, ticks from the owner.

A replica whose WebSocket clients want symbols of an account says so on
``mt5gate.<account>.interest`` (``{"symbols": [...], "ttl_s": 6}``), at once when a symbol is
new and again every third of the TTL (:class:`InterestSender`). The account's owner
(:class:`TickPublisher`) keeps every symbol whose interest is live, polls it through the
session's shared tick poller (:meth:`MT5SessionManager.stream_ticks`) and publishes new ticks
on ``mt5gate.<account>.ticks.<SYMBOL>``; a symbol nobody renewed for its TTL stops being
polled. Interest is soft state: a new owner learns it within one refresh, and a replica that
dies stops costing polls within one TTL. A symbol the terminal does not know is answered once
per refresh with ``{"error": ...}`` on its subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final

from mt5gate.errors import MT5Error
from mt5gate.fleet.bus import Bus
from mt5gate.fleet.subjects import interest_subject, ticks_subject
from mt5gate.metrics import Metrics
from mt5gate.session.manager import MT5SessionManager

__all__ = ["InterestSender", "TickPublisher"]

log = logging.getLogger("mt5gate.fleet")

_TICK_INTERVAL_S: Final = 0.05


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class InterestSender:
    """This replica's wanted symbols per account, told to the owners (module docstring)."""

    def __init__(self, bus: Bus, *, ttl_s: float = 6.0, metrics: Metrics | None = None) -> None:
        self.bus, self.ttl_s, self._metrics = bus, ttl_s, metrics
        self.wanted: dict[str, Counter[str]] = {}
        self._changed = asyncio.Event()

    def add(self, account: str, symbols: Iterable[str]) -> None:
        """A reader of ``symbols`` started (counted: several readers may want one symbol)."""
        counts = self.wanted.setdefault(account, Counter())
        new = [s for s in symbols if counts[s] == 0]
        counts.update(symbols)
        if new:
            self._changed.set()

    def remove(self, account: str, symbols: Iterable[str]) -> None:
        """A reader of ``symbols`` stopped."""
        counts = self.wanted.get(account, Counter())
        counts.subtract(symbols)
        for symbol in [s for s, n in counts.items() if n <= 0]:
            del counts[symbol]
        if not counts:
            self.wanted.pop(account, None)

    async def run(self) -> None:
        """Send every account's interest now and every ``ttl_s / 3``, and when it grows."""
        while True:
            self._changed.clear()
            await self.send_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.ttl_s / 3)

    async def send_all(self) -> None:
        """One round of interest messages."""
        for account, counts in list(self.wanted.items()):
            body = {"symbols": sorted(counts), "ttl_s": self.ttl_s}
            sent = await self.bus.publish(interest_subject(account), _encode(body))
            if self._metrics is not None:
                self._metrics.bus_sent(account, "interest", sent)


class TickPublisher:
    """The owner's side: polls the symbols with live interest, publishes their ticks."""

    def __init__(
        self, bus: Bus, session: MT5SessionManager, account: str, owned: Callable[[], bool],
        *, metrics: Metrics | None = None, check_s: float = 0.1,
    ) -> None:  # fmt: skip
        self.bus, self.session, self.account = bus, session, account
        self.expires: dict[str, float] = {}  # symbol -> monotonic time its interest lapses
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._owned, self._metrics, self._check_s = owned, metrics, check_s

    async def run(self) -> None:
        """Follow interest and publish while the account is owned."""
        unsubscribe = await self.bus.subscribe(interest_subject(self.account), self.interest)
        try:
            while self._owned():
                self.expire(time.monotonic())
                await asyncio.sleep(self._check_s)
        finally:
            await unsubscribe()
            await self.stop()

    def interest(self, payload: bytes) -> None:
        """Take one interest message: (re)start the symbols it names, renew their TTL."""
        try:
            body = json.loads(payload)
            symbols = [s for s in body["symbols"] if isinstance(s, str) and s]
            ttl_s = float(body["ttl_s"])
        except (ValueError, KeyError, TypeError):
            log.warning("account %s: an interest message that is not one; ignored", self.account)
            return
        until = time.monotonic() + ttl_s
        for symbol in symbols:
            self.expires[symbol] = until
            task = self.tasks.get(symbol)
            if task is None or task.done():
                self.tasks[symbol] = asyncio.get_running_loop().create_task(
                    self._publish(symbol), name=f"{self.account}-ticks-{symbol}"
                )

    def expire(self, now: float) -> None:
        """Stop polling symbols whose interest lapsed."""
        for symbol in [s for s, until in self.expires.items() if until <= now]:
            del self.expires[symbol]
            task = self.tasks.pop(symbol, None)
            if task is not None:
                task.cancel()

    async def stop(self) -> None:
        """Stop every symbol's task."""
        tasks, self.tasks = list(self.tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _publish(self, symbol: str) -> None:
        subject = ticks_subject(self.account, symbol)
        prices = self.session.stream_ticks([symbol], interval_s=_TICK_INTERVAL_S, buffer=16)
        try:
            async for price in prices:
                self._count(await self.bus.publish(subject, _encode(dataclasses.asdict(price))))
        except MT5Error as error:  # an unknown symbol: tell its readers
            problem = {"error": {"class": type(error).__name__, "message": error.message}}
            await self.bus.publish(subject, _encode(problem))
        except ValueError as error:  # not a symbol name
            await self.bus.publish(subject, _encode({"error": {"message": str(error)}}))
        finally:
            await prices.aclose()  # type: ignore[attr-defined]

    def _count(self, published: bool) -> None:
        if self._metrics is not None:
            self._metrics.bus_sent(self.account, "ticks", published)
