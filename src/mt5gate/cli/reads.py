"""The read commands' work on an account (:class:`~mt5gate.cli.port.AccountPort`: a session of
their own, or the service that owns the account): price, account, positions, orders, history,
health and watch. Each prints a table, or JSON with ``--json``, and returns its exit code."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from rich.markup import escape

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.port import AccountPort
from mt5gate.cli.render import (
    Digits,
    account_table,
    deals_table,
    errors_table,
    health_table,
    history_orders_table,
    json_line,
    orders_table,
    positions_table,
    price_json,
    prices_table,
)
from mt5gate.cli.target import Target
from mt5gate.cli.ui import Ui
from mt5gate.errors import MT5Error
from mt5gate.health import Check, HealthStatus, Status, probe, wall_utc_ms
from mt5gate.models import Price
from mt5gate.service.simulated import health_clock
from mt5gate.session.manager import MT5SessionManager

if TYPE_CHECKING:
    from mt5gate.cli.reference import ErrorEntry

__all__ = [
    "HEALTH_EXIT",
    "parse_when",
    "show_account",
    "show_errors",
    "show_health",
    "show_history",
    "show_orders",
    "show_positions",
    "show_prices",
    "unreachable",
    "watch_prices",
]

#: ``mt5gate health``'s exit code per status, for scripts and cron jobs.
HEALTH_EXIT: Final = {Status.PASS: Exit.OK, Status.WARN: Exit.NOT_GOOD, Status.FAIL: Exit.FAIL}
_RELATIVE: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _title(target: Target, what: str) -> str:
    mark = " [bold yellow](SIMULATED)[/]" if target.simulated else ""
    return f"{what} · {target.account.name}{mark}"


async def digits_of(session: AccountPort, symbols: Iterable[str]) -> dict[str, Digits]:
    """Each symbol's digits and point, read once per command."""
    found = {}
    for name in sorted(set(symbols)):
        info = await session.get_symbol_info(name)
        found[name] = Digits(info.digits, info.point)
    return found


async def _quotes(
    session: AccountPort, symbols: Sequence[str], digits: dict[str, Digits]
) -> list[tuple[Price, Digits]]:
    return [(await session.get_price(s), digits[s]) for s in symbols]


async def show_prices(session: AccountPort, ui: Ui, target: Target,
                      symbols: Sequence[str]) -> Exit:  # fmt: skip
    """``mt5gate price``: bid, ask, spread in points, server time."""
    digits = await digits_of(session, symbols)
    quotes = await _quotes(session, symbols, digits)
    if ui.options.json:
        ui.emit_json([price_json(q, d) for q, d in quotes])
    else:
        ui.out.print(prices_table(_title(target, "Prices"), quotes))
    return Exit.OK


async def show_account(session: AccountPort, ui: Ui, target: Target) -> Exit:
    """``mt5gate account``: login, balance, equity, margin, leverage."""
    account = await session.get_account_info()
    if ui.options.json:
        ui.emit_json(account)
    else:
        ui.out.print(account_table(_title(target, "Account"), account))
    return Exit.OK


async def show_positions(session: AccountPort, ui: Ui, target: Target,
                         symbol: str | None) -> Exit:  # fmt: skip
    """``mt5gate positions``: the open positions."""
    positions = await session.positions(symbol=symbol)
    if ui.options.json:
        ui.emit_json(positions)
        return Exit.OK
    digits = await digits_of(session, (p.symbol for p in positions))
    ui.out.print(positions_table(_title(target, "Positions"), positions, digits))
    return Exit.OK


async def show_orders(session: AccountPort, ui: Ui, target: Target,
                      symbol: str | None) -> Exit:  # fmt: skip
    """``mt5gate orders``: the pending orders."""
    orders = await session.orders(symbol=symbol)
    if ui.options.json:
        ui.emit_json(orders)
        return Exit.OK
    digits = await digits_of(session, (o.symbol for o in orders))
    ui.out.print(orders_table(_title(target, "Pending orders"), orders, digits))
    return Exit.OK


def parse_when(text: str | datetime, *, now: datetime | None = None) -> datetime:
    """A time for ``--from`` / ``--to``: ISO 8601 (``2026-11-20``, ``2026-11-20T14:30``; no
    offset means UTC), ``now``, ``today`` (00:00 UTC), an age such as ``90m``, ``12h``, ``7d``,
    ``2w``, or a time ahead such as ``+1d``. ``ValueError`` names the forms."""
    if isinstance(text, datetime):  # a default already parsed
        return text
    now = now or datetime.fromtimestamp(time.time(), UTC)
    word = text.strip().lower()
    if word == "now":
        return now
    if word == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    ahead = word.startswith("+")
    amount = word[1:-1] if ahead else word[:-1]
    unit = _RELATIVE.get(word[-1:]) if amount.isdigit() else None
    if unit is not None:
        delta = timedelta(**{unit: int(amount)})
        return now + delta if ahead else now - delta
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use a date (2026-11-20), a date and time "
            "(2026-11-20T14:30), now, today, an age such as 12h or 7d, or +1d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def show_history(session: AccountPort, ui: Ui, target: Target, date_from: datetime,
                       date_to: datetime, *, orders: bool) -> Exit:  # fmt: skip
    """``mt5gate history``: deals (or orders) between two times."""
    if date_to < date_from:
        raise CommandError(f"--to ({date_to:%Y-%m-%d %H:%M}) is before --from "
                         f"({date_from:%Y-%m-%d %H:%M})", hint="Swap them.")  # fmt: skip
    span = f"{date_from:%Y-%m-%d %H:%M} .. {date_to:%Y-%m-%d %H:%M}"
    with ui.err.status(f"Reading the history {span} ..."):
        if orders:
            found_orders = await session.history_orders(date_from, date_to)
        else:
            found_deals = await session.history_deals(date_from, date_to)
    if orders:
        rows = sorted(found_orders, key=lambda o: (o.time_setup_msc, o.ticket))
        if ui.options.json:
            ui.emit_json(rows)
        else:
            digits = await digits_of(session, (o.symbol for o in rows if o.symbol))
            title = _title(target, f"History orders {span}")
            ui.out.print(history_orders_table(title, rows, digits))
        return Exit.OK
    deals = sorted(found_deals, key=lambda d: (d.time_msc, d.ticket))
    if ui.options.json:
        ui.emit_json(deals)
    else:
        digits = await digits_of(session, (d.symbol for d in deals if d.symbol))
        ui.out.print(deals_table(_title(target, f"Deals {span}"), deals, digits))
    return Exit.OK


async def read_health(session: MT5SessionManager, target: Target,
                      symbols: Sequence[str]) -> HealthStatus:  # fmt: skip
    """One health reading of the account (watching ``symbols`` or the account's ``watch``; a
    simulated account is judged by its simulator's clock), by the thresholds and market hours
    the configuration gives it (``[health]``), as ``mt5gate serve`` judges it."""
    watched = tuple(symbols) or target.account.watch
    rules = target.settings.account_health(target.account)
    return await probe(
        session, symbols=watched, utc_now_ms=health_clock(session.terminal),
        thresholds=rules.thresholds(), market_hours=rules.market_hours(),
    )  # fmt: skip


def unreachable(error: MT5Error, component: str = "terminal") -> HealthStatus:
    """The failing reading of a terminal that could not even be built (or of the service
    that owns the account, when it does not answer)."""
    now = wall_utc_ms()
    check = Check(f"{component}:connection", component, "component", Status.FAIL,
                  output=error.message)  # fmt: skip
    return HealthStatus.of([check], now)


def show_health(ui: Ui, target: Target, reading: HealthStatus) -> Exit:
    """``mt5gate health``: the coloured checks; exit 0 pass, 1 warn, 2 fail."""
    if ui.options.json:
        ui.emit_json(reading.to_health_json())
    else:
        ui.out.print(health_table(_title(target, "Health"), reading))
        for reason in reading.reasons:
            ui.note(f"[yellow]•[/] {escape(reason)}")
    return HEALTH_EXIT[reading.status]


async def watch_prices(
    session: AccountPort, ui: Ui, target: Target, symbols: Sequence[str], *,
    interval_s: float, count: int,
) -> Exit:  # fmt: skip
    """``mt5gate watch``: a live table of quotes (or a JSON line per new tick), refreshed every
    ``interval_s`` until Ctrl-C, or ``count`` refreshes when ``count`` > 0."""
    from rich.live import Live  # imported here: only ``watch`` redraws a table in place

    digits = await digits_of(session, symbols)
    title = _title(target, "Watching")
    quotes = await _quotes(session, symbols, digits)
    if ui.options.json:
        return await _watch_json(session, ui, symbols, digits, quotes, interval_s, count)
    with Live(prices_table(title, quotes), console=ui.out, auto_refresh=False) as live:
        done = 1
        while count <= 0 or done < count:
            await asyncio.sleep(interval_s)
            quotes = await _quotes(session, symbols, digits)
            live.update(prices_table(title, quotes), refresh=True)
            done += 1
    if not ui.out.is_terminal:
        ui.out.print()  # Live leaves a file or pipe without the table's final newline
    return Exit.OK


async def _watch_json(session: AccountPort, ui: Ui, symbols: Sequence[str],
                      digits: dict[str, Digits], quotes: list[tuple[Price, Digits]],
                      interval_s: float, count: int) -> Exit:  # fmt: skip
    """One JSON object per line for every quote that changed since the last refresh."""
    last: dict[str, int] = {}
    done = 0
    while True:
        for quote, d in quotes:
            if last.get(quote.symbol) != quote.time_msc:
                last[quote.symbol] = quote.time_msc
                ui.out.file.write(json_line(price_json(quote, d)) + "\n")
        ui.out.file.flush()
        done += 1
        if 0 < count <= done:
            return Exit.OK
        await asyncio.sleep(interval_s)
        quotes = await _quotes(session, symbols, digits)


def show_errors(ui: Ui, entries: Sequence[ErrorEntry], *, full: bool) -> None:
    """``mt5gate errors``: the whole entry for a lookup, a table of all codes otherwise."""
    from mt5gate.cli.reference import render_text  # the reference loads the whole table

    if ui.options.json:
        ui.emit_json([dataclasses.asdict(e) for e in entries])
    elif full:
        ui.out.print("\n".join(render_text(e) for e in entries), highlight=False, markup=False)
    else:
        ui.out.print(errors_table(entries))
