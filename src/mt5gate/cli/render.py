"""What the commands print: rich tables for people, JSON for scripts.

The JSON of a record is the same as the HTTP service's (pydantic's JSON form of the same
dataclasses: enums as their MT5 numbers, times as ``*_msc`` server milliseconds), so a script
can move between ``mt5gate positions --json`` and ``GET /v1/accounts/{name}/positions``.
Prices are written in the symbol's digits; spreads in points, as traders quote them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic_core import to_jsonable_python
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mt5gate.constants import PositionType
from mt5gate.health import HealthStatus, Status
from mt5gate.models import Account, Deal, Order, OrderResult, Position, Price, server_time

if TYPE_CHECKING:
    from mt5gate.cli.reference import ErrorEntry

__all__ = [
    "STATUS_STYLES",
    "Digits",
    "account_table",
    "deals_table",
    "errors_table",
    "health_table",
    "history_orders_table",
    "json_line",
    "json_text",
    "orders_table",
    "positions_table",
    "prices_table",
    "result_table",
]

#: The colour of each health status.
STATUS_STYLES: Final = {Status.PASS: "bold green", Status.WARN: "bold yellow",
                        Status.FAIL: "bold red"}  # fmt: skip
_TIME: Final = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class Digits:
    """How a symbol's prices are written: its digits and its point."""

    digits: int = 5
    point: float = 0.00001

    def price(self, value: float) -> str:
        """``value`` in the symbol's digits; ``-`` for an unset level (0)."""
        return f"{value:.{self.digits}f}" if value else "-"

    def spread_points(self, quote: Price) -> int:
        """The spread in points."""
        return round(quote.spread / self.point) if self.point > 0 else 0


def json_text(value: object) -> str:
    """``value`` (records, lists, dicts) as indented JSON, in the service's form."""
    return json.dumps(to_jsonable_python(value), indent=2, ensure_ascii=False)


def json_line(value: object) -> str:
    """``value`` as one compact line of JSON (``watch --json``: one object per tick)."""
    return json.dumps(to_jsonable_python(value), separators=(",", ":"), ensure_ascii=False)


def price_json(quote: Price, digits: Digits) -> dict[str, Any]:
    """A quote as JSON: the record's fields plus its spread in points."""
    body: dict[str, Any] = to_jsonable_python(quote)
    body["spread_points"] = digits.spread_points(quote)
    return body


def _when(msc: int) -> str:
    return f"{server_time(msc):{_TIME}}" if msc else "-"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _lots(value: float) -> str:
    return f"{value:g}"


def _table(title: str, *headers: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for header in headers:
        numeric = header in (
            "Bid",
            "Ask",
            "Spread",
            "Lots",
            "Open",
            "Now",
            "Price",
            "Profit",
            "SL",
            "TP",
            "Ticket",
            "Order",
            "Position",
            "Commission",
            "Swap",
        )
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    return table


def prices_table(title: str, quotes: Sequence[tuple[Price, Digits]]) -> Table:
    """``mt5gate price`` / ``watch``: bid, ask, spread and the server time of each quote."""
    table = _table(title, "Symbol", "Bid", "Ask", "Spread", "Time (server)")
    for quote, digits in quotes:
        table.add_row(quote.symbol, digits.price(quote.bid), digits.price(quote.ask),
                      str(digits.spread_points(quote)), _when(quote.time_msc))  # fmt: skip
    return table


def account_table(title: str, account: Account) -> Table:
    """``mt5gate account``: who, and the money."""
    ccy = account.currency
    level = f"{account.margin_level:,.0f} %" if account.margin > 0 else "-"
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in (
        ("Login", f"{account.login} ({account.server})"),
        ("Name", account.name),
        ("Company", account.company),
        ("Balance", f"{_money(account.balance)} {ccy}"),
        ("Equity", f"{_money(account.equity)} {ccy}"),
        ("Profit", f"{_money(account.profit)} {ccy}"),
        ("Margin", f"{_money(account.margin)} {ccy}"),
        ("Free margin", f"{_money(account.margin_free)} {ccy}"),
        ("Margin level", level),
        ("Leverage", f"1:{account.leverage}"),
        ("Positions", "hedging" if account.hedging else "netting"),
        ("Trading", "allowed" if account.trade_allowed else "NOT allowed"),
    ):
        table.add_row(name, escape(value))
    return table


def positions_table(title: str, positions: Sequence[Position],
                    digits: Mapping[str, Digits]) -> Table:  # fmt: skip
    """``mt5gate positions``: one row each, total profit in the caption."""
    table = _table(title, "Ticket", "Symbol", "Side", "Lots", "Open", "Now", "SL", "TP",
                   "Profit", "Comment")  # fmt: skip
    for p in positions:
        d = digits.get(p.symbol, Digits())
        side = "buy" if p.type is PositionType.BUY else "sell"
        profit = Text(_money(p.profit), style="green" if p.profit >= 0 else "red")
        table.add_row(str(p.ticket), p.symbol, side, _lots(p.volume), d.price(p.price_open),
                      d.price(p.price_current), d.price(p.sl), d.price(p.tp), profit,
                      escape(p.comment))  # fmt: skip
    total = sum(p.profit for p in positions)
    table.caption = f"{len(positions)} open, profit {_money(total)}" if positions else "none open"
    return table


def orders_table(title: str, orders: Sequence[Order], digits: Mapping[str, Digits]) -> Table:
    """``mt5gate orders``: the pending orders."""
    table = _table(title, "Ticket", "Symbol", "Type", "Lots", "Price", "SL", "TP", "Placed")
    for o in orders:
        d = digits.get(o.symbol, Digits())
        table.add_row(str(o.ticket), o.symbol, o.type.name.lower().replace("_", " "),
                      _lots(o.volume_current), d.price(o.price_open), d.price(o.sl),
                      d.price(o.tp), _when(o.time_setup_msc))  # fmt: skip
    table.caption = f"{len(orders)} pending" if orders else "none pending"
    return table


def deals_table(title: str, deals: Sequence[Deal], digits: Mapping[str, Digits]) -> Table:
    """``mt5gate history``: the deals (executions), oldest first."""
    table = _table(title, "Time (server)", "Ticket", "Order", "Position", "Symbol", "Type",
                   "Entry", "Lots", "Price", "Profit", "Commission", "Swap")  # fmt: skip
    for d in deals:
        table.add_row(_when(d.time_msc), str(d.ticket), str(d.order), str(d.position_id),
                      d.symbol or "-", d.type.name.lower(), d.entry.name.lower(),
                      _lots(d.volume), digits.get(d.symbol, Digits()).price(d.price),
                      _money(d.profit),
                      _money(d.commission), _money(d.swap))  # fmt: skip
    table.caption = f"{len(deals)} deals, profit {_money(sum(d.profit for d in deals))}"
    return table


def history_orders_table(title: str, orders: Sequence[Order],
                         digits: Mapping[str, Digits]) -> Table:  # fmt: skip
    """``mt5gate history --orders``: the orders in the history, oldest first."""
    table = _table(title, "Placed (server)", "Ticket", "Symbol", "Type", "State", "Lots",
                   "Price", "Position")  # fmt: skip
    for o in orders:
        table.add_row(_when(o.time_setup_msc), str(o.ticket), o.symbol,
                      o.type.name.lower().replace("_", " "), o.state.name.lower(),
                      _lots(o.volume_initial), digits.get(o.symbol, Digits()).price(o.price_open),
                      str(o.position_id))  # fmt: skip
    table.caption = f"{len(orders)} orders"
    return table


def health_table(title: str, reading: HealthStatus) -> Table:
    """``mt5gate health``: every check with its status, value and why it is not passing."""
    style = STATUS_STYLES[reading.status]
    table = Table(title=f"{title}: [{style}]{reading.status.upper()}[/]", title_justify="left",
                  header_style="bold")  # fmt: skip
    for header in ("Check", "Status", "Value", "Why"):
        table.add_column(header, justify="right" if header == "Value" else "left")
    for check in reading.checks:
        value = "" if check.observed_value is None else str(check.observed_value)
        unit = f" {check.observed_unit}" if check.observed_unit and value else ""
        status = Text(str(check.status), style=STATUS_STYLES[check.status])
        why = check.output if check.status is not Status.PASS else ""  # as in health+json
        table.add_row(escape(check.name), status, escape(value + unit), escape(why))
    return table


def errors_table(entries: Sequence[ErrorEntry]) -> Table:
    """``mt5gate errors``: every code, its name, class and outcome (details: ``errors CODE``)."""
    table = _table("MT5 codes (mt5gate errors CODE for one in full)", "Code", "Name", "Class",
                   "Outcome")  # fmt: skip
    for entry in entries:
        table.add_row(str(entry.code), entry.name, escape(entry.error_class), entry.outcome)
    return table


def result_table(title: str, result: OrderResult, digits: Digits) -> Table:
    """What the trade server answered to an order that went through."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in (
        ("Retcode", f"{result.retcode} ({result.comment or 'no comment'})"),
        ("Order", str(result.order or "-")),
        ("Deal", str(result.deal or "-")),
        ("Volume", _lots(result.volume)),
        ("Price", digits.price(result.price)),
        ("Client id", str(result.client_id or "-")),
    ):
        table.add_row(name, escape(value))
    return table
