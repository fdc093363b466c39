"""The managing commands' work: ``modify`` (a position's SL / TP, a pending order's price and
stops), ``halt`` and ``resume`` (the trading halt switch).

``modify`` is a trading command like ``close``: it shows what changes, asks (unless
``--yes``) and sends exactly once through the order pipeline with an idempotency key (``--key``
or a new, printed one), on the command's own session or through the ``mt5gate serve`` owning
the account. A level of 0 removes it (MT5's own rule); a level left out is kept.

The halt switch lives in the process that trades the account (its session's risk gate): the
``mt5gate serve`` that owns it, whose every later order it refuses until ``resume``. A command's
own session would end with the command and take the halt with it, so ``halt`` and ``resume``
need that service, say so when there is none (exit 2), and never open a session of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rich.markup import escape

from mt5gate.cli.failures import CommandError, Exit, guarded
from mt5gate.cli.owner import owning_service
from mt5gate.cli.port import AccountPort
from mt5gate.cli.reads import digits_of
from mt5gate.cli.render import Digits
from mt5gate.cli.running import remote_account
from mt5gate.cli.target import Target, resolve_target
from mt5gate.cli.trade import Confirmation, _ask, _done, _summary
from mt5gate.cli.ui import Options, Ui
from mt5gate.constants import PositionType
from mt5gate.models import Order, OrderResult, Position

if TYPE_CHECKING:
    from mt5gate.cli.remote import HaltSwitch, RemoteAccount

__all__ = ["HALT_REASON_MAX", "Change", "halt_trading", "modify", "resume_trading",
           "run_on_service"]  # fmt: skip

#: The longest reason ``mt5gate serve`` keeps (its halt body's bound).
HALT_REASON_MAX: Final = 200
#: The reason sent when ``mt5gate halt`` is given none (health shows it).
DEFAULT_REASON: Final = "halted with mt5gate halt"

ServiceWork = Callable[["RemoteAccount", Ui, Target], Awaitable[Exit]]


@dataclass(frozen=True, slots=True)
class Change:
    """What ``modify`` changes: None keeps a value, a level of 0 removes it."""

    sl: float | None = None
    tp: float | None = None
    price: float | None = None

    def check(self) -> None:
        """``CommandError`` (exit 2) when nothing would change, or the price is not one."""
        if self.sl is None and self.tp is None and self.price is None:
            raise CommandError("nothing to change: give --sl, --tp or (for a pending order) "
                               "--price", hint="--sl 0 or --tp 0 removes that level.")  # fmt: skip
        if self.price is not None and not self.price > 0:
            raise CommandError(f"--price: {self.price:g} is not a price: it must be above 0",
                               hint="A pending order always has a price.")  # fmt: skip


# ------------------------------------------------------------------------------ modify


async def modify(session: AccountPort, ui: Ui, target: Target, ticket: int, change: Change,
                 confirmation: Confirmation) -> Exit:  # fmt: skip
    """Show the position or pending order ``ticket`` with its levels before and after, ask,
    then change them once."""
    change.check()
    found = await session.positions(ticket=ticket)
    if found:
        return await _modify_position(session, ui, target, found[0], change, confirmation)
    pending = await session.orders(ticket=ticket)
    if pending:
        return await _modify_order(session, ui, target, pending[0], change, confirmation)
    if confirmation.key is not None and change.price is None:  # a rerun: the journal answers
        result = await session.modify_position(ticket, sl=change.sl, tp=change.tp,
                                               idempotency_key=confirmation.key)  # fmt: skip
        return _done(ui, "Modified", result, Digits())
    raise CommandError(f"no open position or pending order with ticket {ticket}",
                       hint="mt5gate positions and mt5gate orders list them.",
                       code=Exit.MT5)  # fmt: skip


def _level(digits: Digits, now: float, new: float | None) -> str:
    """``1.08500 -> 1.08000`` (``-`` for no level); the level alone when it is kept."""
    if new is None:
        return f"{digits.price(now)} (kept)"
    return f"{digits.price(now)} -> {digits.price(new)}"


async def _modify_position(session: AccountPort, ui: Ui, target: Target, position: Position,
                           change: Change, confirmation: Confirmation) -> Exit:  # fmt: skip
    if change.price is not None:
        raise CommandError(f"--price moves a pending order; {position.ticket} is an open "
                           "position", hint="Give a position only --sl and --tp.")  # fmt: skip
    digits = (await digits_of(session, [position.symbol]))[position.symbol]
    side = "buy" if position.type is PositionType.BUY else "sell"
    key = confirmation.idempotency_key()
    ui.err.print(_summary("Modify", [
        ("Account", target.describe()),
        ("Position", f"{position.ticket}: {side} {position.volume:g} {position.symbol} "
                     f"at {digits.price(position.price_open)}"),
        ("Price now", digits.price(position.price_current)),
        ("SL", _level(digits, position.sl, change.sl)),
        ("TP", _level(digits, position.tp, change.tp)),
        ("Idempotency key", key),
    ]))  # fmt: skip
    _ask(ui, f"Modify position {position.ticket}", confirmation)
    result = await session.modify_position(position.ticket, sl=change.sl, tp=change.tp,
                                           idempotency_key=key)  # fmt: skip
    return _done(ui, "Modified", result, digits)


async def _modify_order(session: AccountPort, ui: Ui, target: Target, order: Order,
                        change: Change, confirmation: Confirmation) -> Exit:  # fmt: skip
    digits = (await digits_of(session, [order.symbol]))[order.symbol]
    kind = order.type.name.lower().replace("_", " ")
    key = confirmation.idempotency_key()
    ui.err.print(_summary("Modify", [
        ("Account", target.describe()),
        ("Order", f"{order.ticket}: {kind} {order.volume_current:g} {order.symbol}"),
        ("Price", _level(digits, order.price_open, change.price)),
        ("SL", _level(digits, order.sl, change.sl)),
        ("TP", _level(digits, order.tp, change.tp)),
        ("Idempotency key", key),
    ]))  # fmt: skip
    _ask(ui, f"Modify pending order {order.ticket}", confirmation)
    result: OrderResult = await session.modify_order(
        order.ticket, price=change.price, sl=change.sl, tp=change.tp, idempotency_key=key
    )
    return _done(ui, "Modified", result, digits)


# ------------------------------------------------------------------------ the halt switch


def run_on_service(opts: Options, work: ServiceWork) -> int:
    """Run ``work`` on the account through the ``mt5gate serve`` that owns it; without one,
    a ``CommandError`` (exit 2) says why and what to do. No session of the command's own is
    opened. Every failure becomes one line, a hint and an exit code."""
    ui = Ui(opts)
    try:
        return int(guarded(ui.err, lambda: asyncio.run(_on_service(ui, work)), debug=opts.debug))
    finally:
        ui.close()


async def _on_service(ui: Ui, work: ServiceWork) -> Exit:
    target = resolve_target(ui.options.choice, ui.env)
    ui.announce(target)
    service = await owning_service(target, ui.env)  # another owner: exit 3, naming it
    if service is None:
        name = target.account.name
        raise CommandError(
            f"no mt5gate serve owns account {name!r}: the halt switch belongs to the process "
            "that trades the account, and a command's own session ends with the command",
            hint="Start mt5gate serve (then halt and resume go through it), or set halted = "
            "true in the account's risk settings (risk = { halted = true }) to refuse every "
            "order of every session.",
        )
    async with remote_account(ui, target, service) as remote:
        return await work(remote, ui, target)


def require_reason(reason: str) -> str:
    """The halt's reason, trimmed; ``CommandError`` (exit 2) when the service would refuse it."""
    text = reason.strip()
    if len(text) > HALT_REASON_MAX:
        raise CommandError(f"REASON: {len(text)} characters; at most {HALT_REASON_MAX}",
                           hint="Shorten it: it is shown in the service's health.")  # fmt: skip
    return text or DEFAULT_REASON


async def halt_trading(remote: RemoteAccount, ui: Ui, target: Target, reason: str,
                       confirmation: Confirmation) -> Exit:  # fmt: skip
    """Show, ask, then switch the service's halt on: it refuses every new order."""
    ui.err.print(_summary("Halt", [
        ("Account", target.describe()),
        ("Service", remote.url),
        ("Reason", reason),
        ("Effect", "every new order is refused until mt5gate resume; closing, modifying and "
                   "cancelling still work"),
    ]))  # fmt: skip
    _ask(ui, f"Halt trading on {target.account.name}", confirmation)
    return _switched(ui, target, await remote.halt(reason))


async def resume_trading(remote: RemoteAccount, ui: Ui, target: Target,
                         confirmation: Confirmation) -> Exit:  # fmt: skip
    """Show, ask, then switch the service's halt off."""
    ui.err.print(_summary("Resume", [
        ("Account", target.describe()),
        ("Service", remote.url),
        ("Effect", "new orders are taken again (the risk limits still apply)"),
    ]))  # fmt: skip
    _ask(ui, f"Resume trading on {target.account.name}", confirmation)
    return _switched(ui, target, await remote.resume())


def _switched(ui: Ui, target: Target, switch: HaltSwitch) -> Exit:
    if ui.options.json:
        ui.emit_json(switch)
        return Exit.OK
    state = "[bold red]halted[/]" if switch.halted else "[bold green]trading[/]"
    why = f" ({escape(switch.reason)})" if switch.reason else ""
    ui.out.print(f"{escape(target.account.name)}: {state}{why}", highlight=False)
    return Exit.OK
