"""The trading commands' work: ``order buy|sell|limit|stop``, ``close`` and ``cancel``.

Every one shows what it is about to do, asks (unless ``--yes``), and sends exactly once: the
request goes through the order pipeline (the command's own session's, or that of the
``mt5gate serve`` owning the account) with an idempotency key, ``--key`` or a new
``cli-<random>`` key that is printed before anything is sent. Running the same command again
with the same ``--key`` never places a second order; it returns the first one's outcome. A new
order is first checked with ``order_check``: a refusal (no money, market closed, invalid stops)
is reported before the prompt and nothing is sent.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass

from rich.markup import escape
from rich.table import Table

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.port import AccountPort
from mt5gate.cli.reads import digits_of
from mt5gate.cli.render import Digits, result_table
from mt5gate.cli.target import Target
from mt5gate.cli.ui import Ui
from mt5gate.constants import PositionType
from mt5gate.errors import error_from_check_result
from mt5gate.models import OrderKind, OrderRequest, OrderResult, Position, Side

__all__ = ["Confirmation", "cancel_order", "close_position", "new_key", "place_order"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """How a trading command is confirmed and keyed."""

    yes: bool = False
    key: str | None = None

    def idempotency_key(self) -> str:
        """``--key``, or a fresh one."""
        return self.key or new_key()


def new_key() -> str:
    """A fresh idempotency key for one command run."""
    return f"cli-{secrets.token_hex(8)}"


def _summary(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, escape(value))
    return table


def _ask(ui: Ui, what: str, confirmation: Confirmation) -> None:
    """Return when the user agreed (or gave ``--yes``); ``CommandError`` (exit 1) otherwise."""
    if confirmation.yes:
        return
    try:
        answer = ui.err.input(f"{escape(what)}? \\[y/N] ")
    except EOFError:  # end of input: a script without --yes
        answer = ""
    if not sys.stdin.isatty():
        ui.err.print()  # the answer was not echoed: end the prompt's line
    agreed = answer.strip().lower() in ("y", "yes")
    if not agreed:
        raise CommandError("not sent", hint="Nothing was sent. Add --yes to skip the question.",
                         code=Exit.NOT_GOOD)  # fmt: skip


def _done(ui: Ui, title: str, result: OrderResult, digits: Digits) -> Exit:
    if ui.options.json:
        ui.emit_json(result)
    else:
        ui.out.print(result_table(title, result, digits))
    return Exit.OK


async def place_order(session: AccountPort, ui: Ui, target: Target, request: OrderRequest,
                      confirmation: Confirmation) -> Exit:  # fmt: skip
    """Check, show, ask, then send ``request`` once."""
    digits = (await digits_of(session, [request.symbol]))[request.symbol]
    with ui.err.status("Checking the order with the trade server ..."):
        check = await session.check_order(request)
    refusal = error_from_check_result(check.retcode, check.comment, None)
    if refusal is not None and confirmation.key is None:
        raise refusal
    if refusal is not None:  # a rerun with --key: the journal answers first, if it knows the key
        ui.note(f"[yellow]order_check refuses it now ({escape(refusal.message)}); with --key "
                "the first outcome of that key is returned if it has one.[/]")  # fmt: skip
    quote = await session.get_price(request.symbol)
    account = await session.get_account_info()
    now = quote.ask if request.side is Side.BUY else quote.bid
    margin = await session.calc_margin(request.symbol, request.side, request.volume,
                                       request.price or now)  # fmt: skip
    kind = request.side.value if request.kind is OrderKind.MARKET else (
        f"{request.side.value} {request.kind.value}")  # fmt: skip
    rows = [
        ("Account", target.describe()),
        ("Order", f"{kind} {request.volume:g} {request.symbol}"),
        ("Price now", digits.price(now)),
    ]
    if request.price is not None:
        rows.append(("At price", digits.price(request.price)))
    rows += [
        ("SL / TP", f"{digits.price(request.sl or 0)} / {digits.price(request.tp or 0)}"),
        ("Margin", f"{margin:,.2f} {account.currency} of {account.margin_free:,.2f} free"),
    ]
    key = confirmation.idempotency_key()
    rows.append(("Idempotency key", key))
    ui.err.print(_summary("Order", rows))
    _ask(ui, f"Send this {kind} order", confirmation)
    shown = escape(key)
    ui.note(f"Sending once with idempotency key {shown} (rerun with --key {shown} to retry "
            "safely).")  # fmt: skip
    result = await session.place_order(request, idempotency_key=key)
    return _done(ui, "Sent", result, digits)


def _position(found: list[Position], ticket: int) -> Position:
    if not found:
        raise CommandError(f"no open position with ticket {ticket}",
                         hint="mt5gate positions lists the open ones.", code=Exit.MT5)  # fmt: skip
    return found[0]


async def close_position(session: AccountPort, ui: Ui, target: Target, ticket: int,
                         volume: float | None, confirmation: Confirmation) -> Exit:  # fmt: skip
    """Show the position, ask, then close it (or ``volume`` of it) once."""
    found = await session.positions(ticket=ticket)
    if not found and confirmation.key is not None:  # a rerun: the journal knows the outcome
        result = await session.close_position(
            ticket, volume=volume, idempotency_key=confirmation.key
        )
        return _done(ui, "Closed", result, Digits())
    position = _position(found, ticket)
    digits = (await digits_of(session, [position.symbol]))[position.symbol]
    side = "buy" if position.type is PositionType.BUY else "sell"
    closing = position.volume if volume is None else volume
    key = confirmation.idempotency_key()
    ui.err.print(_summary("Close", [
        ("Account", target.describe()),
        ("Position", f"{ticket}: {side} {position.volume:g} {position.symbol} "
                     f"at {digits.price(position.price_open)}"),
        ("Closing", f"{closing:g} lots" + (" (all)" if volume is None else "")),
        ("Price now", digits.price(position.price_current)),
        ("Profit now", f"{position.profit:,.2f}"),
        ("Idempotency key", key),
    ]))  # fmt: skip
    _ask(ui, f"Close {closing:g} lots of position {ticket}", confirmation)
    result = await session.close_position(ticket, volume=volume, idempotency_key=key)
    return _done(ui, "Closed", result, digits)


async def cancel_order(session: AccountPort, ui: Ui, target: Target, ticket: int,
                       confirmation: Confirmation) -> Exit:  # fmt: skip
    """Show the pending order, ask, then delete it once."""
    found = await session.orders(ticket=ticket)
    if not found and confirmation.key is not None:  # a rerun: the journal knows the outcome
        result = await session.cancel_order(ticket, idempotency_key=confirmation.key)
        return _done(ui, "Cancelled", result, Digits())
    if not found:
        raise CommandError(f"no pending order with ticket {ticket}",
                         hint="mt5gate orders lists the pending ones.", code=Exit.MT5)  # fmt: skip
    order = found[0]
    digits = (await digits_of(session, [order.symbol]))[order.symbol]
    key = confirmation.idempotency_key()
    kind = order.type.name.lower().replace("_", " ")
    ui.err.print(_summary("Cancel", [
        ("Account", target.describe()),
        ("Order", f"{ticket}: {kind} {order.volume_current:g} {order.symbol} "
                  f"at {digits.price(order.price_open)}"),
        ("Idempotency key", key),
    ]))  # fmt: skip
    _ask(ui, f"Cancel pending order {ticket}", confirmation)
    result = await session.cancel_order(ticket, idempotency_key=key)
    return _done(ui, "Cancelled", result, digits)
