"""The bot's answers, rendered from the session's models (pure functions: models in, HTML out).

Kept apart from the Telegram wiring so each answer is a small function a test can read, and
so the wording lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mt5gate.bot.actions import Action, CloseAction, OrderAction
from mt5gate.bot.commands import COMMANDS
from mt5gate.bot.settings import Role
from mt5gate.bot.text import bold, code, esc, lots, money, price, table
from mt5gate.constants import PositionType
from mt5gate.health import HealthStatus, Status
from mt5gate.models import Account, Order, OrderResult, Position, Price, server_time

__all__ = [
    "Digits",
    "account_view",
    "close_summary",
    "done_view",
    "health_view",
    "help_view",
    "order_summary",
    "orders_view",
    "positions_view",
    "prices_view",
]

_STATUS_ICONS = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "🛑"}


@dataclass(frozen=True, slots=True)
class Digits:
    """How a symbol's prices are written: its digits and its point."""

    digits: int
    point: float

    def spread_points(self, quote: Price) -> str:
        """The spread in points (``12``), as traders quote it."""
        return str(round(quote.spread / self.point)) if self.point > 0 else "-"


def title(account: str, simulated: bool, what: str) -> str:
    """A heading: what, for which account, and a loud mark when the terminal is simulated."""
    mark = " · <i>SIMULATED</i>" if simulated else ""
    return f"{bold(what)} · {esc(account)}{mark}"


def prices_view(
    heading: str, quotes: Sequence[tuple[Price, Digits]], missing: Sequence[str]
) -> str:
    """``/price``: bid, ask and spread per symbol, and the server time of the newest tick."""
    lines = [heading]
    if quotes:
        rows = [
            [q.symbol, price(q.bid, d.digits), price(q.ask, d.digits), d.spread_points(q)]
            for q, d in quotes
        ]
        lines.append(table(["SYMBOL", "BID", "ASK", "SPREAD"], rows))
        newest = max(q.time_msc for q, _ in quotes)
        lines.append(f"server time {server_time(newest):%Y-%m-%d %H:%M:%S}")
    if missing:
        lines.append(f"No such symbol: {esc(', '.join(missing))}")
    return "\n".join(lines)


def account_view(heading: str, account: Account) -> str:
    """``/account``: who, and the money."""
    ccy = account.currency
    level = f"{account.margin_level:,.0f} %" if account.margin > 0 else "-"
    rows = [
        ["Login", f"{account.login} ({account.server})"],
        ["Balance", f"{money(account.balance)} {ccy}"],
        ["Equity", f"{money(account.equity)} {ccy}"],
        ["Profit", f"{money(account.profit)} {ccy}"],
        ["Margin", f"{money(account.margin)} {ccy}"],
        ["Free margin", f"{money(account.margin_free)} {ccy}"],
        ["Margin level", level],
        ["Leverage", f"1:{account.leverage}"],
        ["Positions", "hedging" if account.hedging else "netting"],
        ["Trading", "allowed" if account.trade_allowed else "NOT allowed"],
    ]
    return f"{heading}\n{_pairs(rows)}"


def positions_view(heading: str, positions: Sequence[Position], digits: Mapping[str, Digits],
                   currency: str) -> str:  # fmt: skip
    """``/positions``: one row each, and the total profit."""
    if not positions:
        return f"{heading}\nNo open positions."
    rows = []
    for p in positions:
        d = digits[p.symbol].digits
        side = "buy" if p.type is PositionType.BUY else "sell"
        rows.append([str(p.ticket), p.symbol, side, lots(p.volume), price(p.price_open, d),
                     price(p.price_current, d), money(p.profit)])  # fmt: skip
    total = sum(p.profit for p in positions)
    grid = table(["TICKET", "SYMBOL", "SIDE", "LOTS", "OPEN", "NOW", "PROFIT"], rows)
    return f"{heading}\n{grid}\nTotal profit {bold(money(total))} {esc(currency)}"


def orders_view(heading: str, orders: Sequence[Order], digits: Mapping[str, Digits]) -> str:
    """``/orders``: the pending orders."""
    if not orders:
        return f"{heading}\nNo pending orders."
    rows = []
    for o in orders:
        d = digits[o.symbol].digits
        kind = o.type.name.lower().replace("_", " ")
        stops = "/".join(price(v, d) if v else "-" for v in (o.sl, o.tp))
        rows.append([str(o.ticket), o.symbol, kind, lots(o.volume_current),
                     price(o.price_open, d), stops])  # fmt: skip
    return f"{heading}\n{table(['TICKET', 'SYMBOL', 'TYPE', 'LOTS', 'PRICE', 'SL/TP'], rows)}"


def health_view(heading: str, reading: HealthStatus | None, session_state: str) -> str:
    """``/health``: the overall status, then every check that does not pass."""
    if reading is None:
        return f"{heading}\nNo health reading yet (session {esc(session_state)})."
    icon = _STATUS_ICONS[reading.status]
    lines = [heading, f"{icon} {bold(reading.status.upper())} · session {esc(session_state)}"]
    failing = [c for c in reading.checks if c.status is not Status.PASS]
    for check in failing:
        lines.append(f"{_STATUS_ICONS[check.status]} {code(check.name)}: {esc(check.output)}")
    passing = len(reading.checks) - len(failing)
    lines.append(f"{passing} of {len(reading.checks)} checks pass.")
    return "\n".join(lines)


def help_view(role: Role, account: str, accounts: Sequence[str], simulated: bool) -> str:
    """``/help``: the commands this member's role allows."""
    lines = [f"{bold('mt5gate bot')} · you are {bold(role)} · account {esc(account)}"]
    if simulated:
        lines.append("<i>This account is SIMULATED: prices and orders are not real.</i>")
    for command in COMMANDS:
        if role.allows(command.role):
            lines.append(f"{code(command.usage)} {esc(command.summary)}")
    if len(accounts) > 1:
        lines.append(f"Accounts: {esc(', '.join(accounts))} (switch with /use NAME)")
    lines.append("Orders are sent only after you confirm them.")
    return "\n".join(lines)


def order_summary(heading: str, args: OrderAction, quote: Price, digits: Digits, margin: float,
                  account: Account, ttl_s: float) -> str:  # fmt: skip
    """The confirmation of ``/buy`` or ``/sell``: what, how much, price and margin needed (the
    stops at the symbol's digits, as they are sent)."""
    buying = args.side == "buy"
    at = quote.ask if buying else quote.bid
    lines = [
        heading,
        f"{bold(args.side.upper())} {esc(lots(args.volume))} {bold(args.symbol)} at market",
        f"Price ≈ {esc(price(at, digits.digits))} ({'ask' if buying else 'bid'} now)",
    ]
    if args.sl is not None or args.tp is not None:
        sl = price(args.sl, digits.digits) if args.sl is not None else "none"
        tp = price(args.tp, digits.digits) if args.tp is not None else "none"
        lines.append(f"SL {esc(sl)} · TP {esc(tp)}")
    ccy = account.currency
    lines.append(f"Margin needed {esc(money(margin))} {esc(ccy)} "
                 f"(free {esc(money(account.margin_free))} {esc(ccy)})")  # fmt: skip
    lines.append(f"Expires in {ttl_s:.0f} s.")
    return "\n".join(lines)


def close_summary(heading: str, action: CloseAction, position: Position, quote: Price,
                  digits: Digits, currency: str, ttl_s: float) -> str:  # fmt: skip
    """The confirmation of ``/close``: which position, how much of it, at about what price."""
    buying = position.type is PositionType.BUY
    at = quote.bid if buying else quote.ask
    part = "all" if action.whole else f"{lots(action.volume)} of {lots(action.held)}"
    d = digits.digits
    return "\n".join([
        heading,
        f"Close position {bold(action.ticket)}: {esc(action.side)} {esc(lots(action.held))} "
        f"{bold(action.symbol)} opened at {esc(price(position.price_open, d))}",
        f"Closing {esc(part)} at ≈ {esc(price(at, d))} ({'bid' if buying else 'ask'} now)",
        f"Profit now {esc(money(position.profit))} {esc(currency)}",
        f"Expires in {ttl_s:.0f} s.",
    ])  # fmt: skip


def done_view(action: Action, result: OrderResult, digits: int) -> str:
    """What an executed order did."""
    at = price(result.price, digits) if result.price else "-"
    if isinstance(action, OrderAction):
        what = f"{action.side.upper()} {lots(result.volume)} {action.symbol} at {at}"
    else:
        what = f"closed {lots(result.volume)} of position {action.ticket} at {at}"
    return (f"✅ {bold('Done')}: {esc(what)}\norder {result.order}, deal {result.deal}, "
            f"client id #{result.client_id}")  # fmt: skip


def _pairs(rows: Sequence[Sequence[str]]) -> str:
    """A two-column table without a heading row."""
    width = max(len(label) for label, _ in rows)
    return (
        "<pre>"
        + esc("\n".join(f"{label.ljust(width)}  {value}" for label, value in rows))
        + "</pre>"
    )
