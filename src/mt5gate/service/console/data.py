"""What the console's pages show, read from the API and shaped for the templates.

Pure shaping (health documents, rows, markers) lives in small functions the tests call
directly; the ``gather_*`` coroutines make the API calls (concurrently where independent).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Final

from mt5gate.constants import Timeframe
from mt5gate.service.console.api import Api, Reply

__all__ = [
    "DEAL_TYPES",
    "ORDER_TYPES",
    "TIMEFRAMES",
    "AccountRow",
    "account_path",
    "chart_markers",
    "deal_window",
    "gather_book",
    "gather_overview",
    "health_summary",
]

#: Every MT5 timeframe, by name, in order (the chart's choices).
TIMEFRAMES: Final = tuple(t.name for t in Timeframe)
#: MT5 order types by number (pending orders' table).
ORDER_TYPES: Final = {0: "buy", 1: "sell", 2: "buy limit", 3: "sell limit", 4: "buy stop",
                      5: "sell stop", 6: "buy stop limit", 7: "sell stop limit",
                      8: "close by"}  # fmt: skip
#: MT5 deal types by number (the recent deals' table).
DEAL_TYPES: Final = {0: "buy", 1: "sell", 2: "balance", 3: "credit", 4: "charge",
                     5: "correction", 6: "bonus", 7: "commission"}  # fmt: skip
#: The watch list's defaults, after the account's own ``watch`` symbols.
DEFAULT_WATCH: Final = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "BTCUSD")
_HISTORY_DAYS: Final = 7


def account_path(name: str, tail: str = "") -> str:
    """The API path of account ``name`` (names are ``[a-z0-9_-]``, safe in a path)."""
    return f"/v1/accounts/{name}{tail}"


@dataclass(frozen=True, slots=True)
class HealthView:
    """An account's health as a row shows it: status, why, and notable readings."""

    status: str
    why: str
    connection: str
    breaker: str
    tick_age_s: float | None
    halted: bool
    checks: list[dict[str, Any]] = field(default_factory=list)


def _first(checks: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    entries = checks.get(name) or [{}]
    return entries[0]


def health_summary(document: Any) -> HealthView:
    """Shape an ``application/health+json`` document (or a problem) for display."""
    if not isinstance(document, dict) or "checks" not in document:
        title = document.get("title", "unavailable") if isinstance(document, dict) else "?"
        return HealthView("fail", f"health unavailable: {title}", "?", "?", None, False)
    checks: dict[str, list[dict[str, Any]]] = document.get("checks", {})
    flat = [{"name": name, **entry} for name, entries in checks.items() for entry in entries]
    bad = [f"{c['name']}: {c.get('output') or c.get('status')}" for c in flat
           if c.get("status") in ("warn", "fail")]  # fmt: skip
    ages = [c.get("observedValue") for c in checks.get("tick:age", [])]
    numbers = [a for a in ages if isinstance(a, int | float)]
    halt = _first(checks, "trading:halt").get("observedValue")
    return HealthView(
        status=str(document.get("status", "fail")),
        why="; ".join(bad) if bad else "all checks pass",
        connection=str(_first(checks, "session:state").get("observedValue", "?")),
        breaker=str(_first(checks, "circuitBreaker:state").get("observedValue", "?")),
        tick_age_s=min(numbers) if numbers else None,
        halted=halt is True,
        checks=flat,
    )


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One line of the overview."""

    name: str
    simulated: bool
    terminal: str
    owner: str | None
    epoch: int | None
    health: HealthView
    info: dict[str, Any] | None
    positions: int | None
    problem: str = ""


async def gather_overview(api: Api, key: str) -> tuple[list[AccountRow], list[str]]:
    """Every account's row (three reads each, all at once) and the service's notes."""
    listed = await api.get("/v1/accounts", key)
    if not listed.ok:
        return [], [str(listed.problem.get("detail", listed.problem.get("title", "")))]
    entries: list[dict[str, Any]] = listed.body.get("accounts", [])
    rows = await asyncio.gather(*(_row(api, key, entry) for entry in entries))
    return list(rows), list(listed.body.get("notes", []))


async def _row(api: Api, key: str, entry: dict[str, Any]) -> AccountRow:
    name = str(entry["name"])
    health, info, positions = await asyncio.gather(
        api.get(account_path(name, "/health"), key),
        api.get(account_path(name), key),
        api.get(account_path(name, "/positions"), key),
    )
    problem = next((_text(r) for r in (info, positions) if not r.ok), "")
    return AccountRow(
        name=name, simulated=bool(entry.get("simulated")), terminal=str(entry.get("terminal")),
        owner=entry.get("owner"), epoch=entry.get("epoch"), health=health_summary(health.body),
        info=info.body if info.ok else None,
        positions=len(positions.body) if positions.ok else None, problem=problem,
    )  # fmt: skip


def _text(reply: Reply) -> str:
    problem = reply.problem
    return f"{problem.get('title', '')}: {problem.get('detail', '')}".strip(": ")


@dataclass(frozen=True, slots=True)
class Book:
    """An account's live book: summary, positions, pending orders, recent deals."""

    info: dict[str, Any] | None
    positions: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    deals: list[dict[str, Any]]
    problems: list[str]


def deal_window(wall_s: int, server_s: int | None) -> dict[str, int]:
    """The history window of the book's recent deals: the last week, padded by a day, around
    both this machine's clock and the broker's (``server_s``, a recent tick's time): history
    is asked in broker server time, which may be hours off (its time zone) or, on a
    simulator started at a fixed date, months."""
    times = [wall_s] if server_s is None else [wall_s, server_s]
    return {"from": min(times) - _HISTORY_DAYS * 86_400, "to": max(times) + 86_400}


async def _server_time(api: Api, key: str, name: str, symbol: str | None) -> int | None:
    if symbol is None:
        return None
    tick = await api.get(account_path(name, f"/symbols/{symbol}/tick"), key)
    found = tick.body.get("time_msc") if tick.ok and isinstance(tick.body, dict) else None
    return int(found) // 1000 if isinstance(found, int) and found > 0 else None


async def gather_book(api: Api, key: str, name: str, clock_symbol: str | None = None) -> Book:
    """The account's book, read at once (the deals of the last week, newest first; the
    broker's clock read from ``clock_symbol``'s latest tick)."""
    window = deal_window(int(time.time()), await _server_time(api, key, name, clock_symbol))
    info, positions, orders, deals = await asyncio.gather(
        api.get(account_path(name), key),
        api.get(account_path(name, "/positions"), key),
        api.get(account_path(name, "/orders"), key),
        api.get(account_path(name, "/history/deals"), key, **window),
    )
    problems = [_text(r) for r in (info, positions, orders, deals) if not r.ok]
    recent = sorted(deals.body if deals.ok else [], key=lambda d: -int(d.get("time_msc", 0)))
    return Book(info.body if info.ok else None, positions.body if positions.ok else [],
                orders.body if orders.ok else [], recent[:50], problems)  # fmt: skip


def chart_markers(deals: list[dict[str, Any]], symbol: str) -> list[dict[str, Any]]:
    """Lightweight-charts markers for the account's entries and exits on ``symbol``: an
    arrow below the bar for a buy, above for a sell; "in" or "out" and the volume as text."""
    markers = []
    for deal in sorted(deals, key=lambda d: int(d.get("time_msc", 0))):
        if deal.get("symbol") != symbol or deal.get("type") not in (0, 1):
            continue
        buy = deal["type"] == 0
        entry = {0: "in", 1: "out", 2: "in/out", 3: "out by"}.get(deal.get("entry", 0), "")
        markers.append({
            "time": int(deal["time_msc"]) // 1000,
            "position": "belowBar" if buy else "aboveBar",
            "color": "#1a7f37" if buy else "#cf222e",
            "shape": "arrowUp" if buy else "arrowDown",
            "text": f"{'buy' if buy else 'sell'} {entry} {deal.get('volume')}",
        })  # fmt: skip
    return markers


def snap_markers(markers: list[dict[str, Any]], bar_times: list[int]) -> list[dict[str, Any]]:
    """Each marker moved onto the bar that contains its time (the chart only draws markers at
    bar times); markers before the first bar are dropped."""
    if not bar_times:
        return []
    snapped = []
    for marker in markers:
        index = _bisect_right(bar_times, marker["time"]) - 1
        if index >= 0:
            snapped.append({**marker, "time": bar_times[index]})
    return snapped


def _bisect_right(values: list[int], target: int) -> int:
    low, high = 0, len(values)
    while low < high:
        middle = (low + high) // 2
        if target < values[middle]:
            high = middle
        else:
            low = middle + 1
    return low


def number(value: Any, digits: int = 2) -> str:
    """A number for a table cell (``-`` for none or not finite)."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"
