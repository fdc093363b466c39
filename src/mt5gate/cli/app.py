"""The ``mt5gate`` command (typer): declarations only; the work is in ``reads`` and ``trade``.

Every command that reads or trades takes the account options (``--config``, ``--account``,
``--terminal`` and, for an ad-hoc terminal, ``--login``, ``--server``, ``--token-file``) plus
``--json`` and ``--debug``; :func:`account_command` adds them to each command's signature, so
they are written once and can follow the command (``mt5gate price EURUSD --account live``).
:func:`run_on_account` (in :mod:`~mt5gate.cli.running`) gives each its account: a session of
its own, or the ``mt5gate serve`` that owns the account (:mod:`~mt5gate.cli.owner`,
:mod:`~mt5gate.cli.remote`).
``journal``, ``serve``, ``bot``, ``fleet``, ``bridge`` and ``demo`` are typer commands (sub-apps
for ``journal`` and ``fleet``) built from their front ends' own option tables
(:mod:`~mt5gate.cli.frontends`).

This module only declares: it imports typer, :mod:`~mt5gate.cli.options` and
:mod:`~mt5gate.cli.helptext` (plain help, without rich), and each command
imports its work when it runs (:mod:`~mt5gate.cli.running`, ``reads``, ``trade``; with them the
session, the service's configuration, rich, pydantic, numpy), so ``mt5gate --help`` does not
pay for what it does not use (``tests/cli/test_imports.py`` keeps it so).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from mt5gate.cli.frontends import FrontEndGroup
from mt5gate.cli.helptext import PanelCommand, PlainGroup
from mt5gate.cli.options import AccountChoice, Options, SideChoice

if TYPE_CHECKING:
    from mt5gate.cli.failures import Exit
    from mt5gate.cli.port import AccountPort
    from mt5gate.cli.running import Work
    from mt5gate.cli.target import Target
    from mt5gate.cli.ui import Ui
    from mt5gate.models import OrderRequest, Side

__all__ = ["app", "account_command"]

_ACCOUNT: Final = "Account"
_OUTPUT: Final = "Output"

app = typer.Typer(
    name="mt5gate",
    help="A resilient gateway to MetaTrader 5. Without --config or --terminal every command "
    "runs on the SIMULATED demo account (and says so).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,  # a traceback with locals could show a password
    rich_markup_mode=None,  # plain help: rich and markdown-it cost more than the rest of --help
    cls=FrontEndGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
order_app = typer.Typer(
    help="Send an order: buy or sell at market, or a limit or stop pending order.",
    no_args_is_help=True,
    rich_markup_mode=None,
    cls=PlainGroup,
)
app.add_typer(order_app, name="order")


def _print_version(wanted: bool) -> None:
    """``--version``: ``mt5gate 0.2.0``, then exit 0 (:func:`mt5gate.cli.main` answers it first,
    without typer; this is the same answer for a caller of :data:`app`, and its help line)."""
    if wanted:
        from mt5gate.cli import version_line

        typer.echo(version_line())
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print mt5gate's version and exit.")] = False,
) -> None:  # fmt: skip
    """The group's own options (only ``--version``); the help is the app's."""


# ------------------------------------------------------------------------ the shared options


def _shared(name: str, default: object, kind: object, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, option])  # fmt: skip


_COMMON: Final = [
    _shared("config", None, Path | None, typer.Option(
        "--config", "-c", rich_help_panel=_ACCOUNT, dir_okay=False,
        help="The service's TOML file of accounts (default $MT5GATE_CONFIG).")),
    _shared("account", None, str | None, typer.Option(
        "--account", "-a", rich_help_panel=_ACCOUNT,
        help="The account's name in the configuration (default: the first).")),
    _shared("terminal", None, str | None, typer.Option(
        "--terminal", "-t", rich_help_panel=_ACCOUNT,
        help="sim, official, bridge://host:port or rpyc://host:port (default: the account's; "
             "sim without a configuration).")),
    _shared("login", None, int | None, typer.Option(
        "--login", rich_help_panel=_ACCOUNT, min=1,
        help="With --terminal: the account's login (password in $MT5GATE_PASSWORD).")),
    _shared("server", None, str | None, typer.Option(
        "--server", rich_help_panel=_ACCOUNT, help="With --terminal: the trade server's name.")),
    _shared("token_file", None, Path | None, typer.Option(
        "--token-file", rich_help_panel=_ACCOUNT, dir_okay=False,
        help="With --terminal bridge://...: the bridge's token file.")),
    _shared("json", False, bool, typer.Option(
        "--json", rich_help_panel=_OUTPUT, help="Print JSON for scripts.")),
    _shared("debug", False, bool, typer.Option(
        "--debug", rich_help_panel=_OUTPUT, help="Show debug logs, and a traceback on errors.")),
]  # fmt: skip
_COMMON_NAMES: Final = frozenset(p.name for p in _COMMON)


def account_command(func: Callable[..., int]) -> Callable[..., int]:
    """Give ``func`` (which takes ``opts: Options``) the shared options, collected into
    ``opts``; typer reads the combined signature."""
    own = inspect.signature(func, eval_str=True)
    params = [p for p in own.parameters.values() if p.name != "opts"]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> int:
        shared = {name: kwargs.pop(name) for name in _COMMON_NAMES}
        choice = AccountChoice(shared["config"], shared["account"], shared["terminal"],
                               shared["login"], shared["server"], shared["token_file"])  # fmt: skip
        return func(opts=Options(choice, shared["json"], shared["debug"]), **kwargs)

    wrapper.__signature__ = own.replace(parameters=[*params, *_COMMON])  # type: ignore[attr-defined]
    return wrapper


def run_on_account(opts: Options, work: Work) -> int:
    """:func:`mt5gate.cli.running.run_on_account`, imported when a command runs (it brings the
    session, the service's configuration and httpx, which ``--help`` does not need)."""
    from mt5gate.cli.running import run_on_account as run

    return run(opts, work)


def _parse_when(text: str) -> datetime:
    """:func:`mt5gate.cli.reads.parse_when`, imported when ``history`` parses its times."""
    from mt5gate.cli.reads import parse_when

    return parse_when(text)


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------------------ reading

Symbols = Annotated[list[str], typer.Argument(
    metavar="SYMBOL...", help="Symbols, e.g. EURUSD USDJPY.", show_default=False)]  # fmt: skip
SymbolFilter = Annotated[str | None, typer.Option("--symbol", "-s", help="Only this symbol.")]


@app.command(cls=PanelCommand)
@account_command
def price(symbols: Symbols, *, opts: Options) -> int:
    """Bid, ask and spread (in points) of each symbol, with the server time."""
    from mt5gate.cli.reads import show_prices

    names = [s.strip() for s in symbols]
    _exit(run_on_account(opts, lambda s, ui, t: show_prices(s, ui, t, names)))
    return 0


@app.command(cls=PanelCommand)
@account_command
def account(*, opts: Options) -> int:
    """The account: login, balance, equity, margin, free margin, leverage."""
    from mt5gate.cli.reads import show_account

    _exit(run_on_account(opts, show_account))
    return 0


@app.command(cls=PanelCommand)
@account_command
def positions(symbol: SymbolFilter = None, *, opts: Options) -> int:
    """The open positions, with their profit."""
    from mt5gate.cli.reads import show_positions

    _exit(run_on_account(opts, lambda s, ui, t: show_positions(s, ui, t, symbol)))
    return 0


@app.command(cls=PanelCommand)
@account_command
def orders(symbol: SymbolFilter = None, *, opts: Options) -> int:
    """The pending (limit and stop) orders."""
    from mt5gate.cli.reads import show_orders

    _exit(run_on_account(opts, lambda s, ui, t: show_orders(s, ui, t, symbol)))
    return 0


@app.command(cls=PanelCommand)
@account_command
def history(
    date_from: Annotated[datetime, typer.Option(
        "--from", parser=_parse_when, metavar="TIME",
        help="Start: 2026-11-20, 2026-11-20T14:30, today, or an age: 12h, 7d.")] = "7d",  # type: ignore[assignment]
    date_to: Annotated[datetime, typer.Option(
        "--to", parser=_parse_when, metavar="TIME", help="End (same forms, or +1d: a day "
        "ahead, because MT5 reads history on the broker's clock, ahead of UTC at most "
        "brokers).")] = "+1d",  # type: ignore[assignment]
    orders: Annotated[bool, typer.Option("--orders", help="Orders instead of deals.")] = False,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """Deals (or with --orders, orders) in the history between two times.

    MT5 compares these times with deal times on the broker's server clock, which runs ahead of
    UTC at most brokers: the default --to (+1d) pads the window so today's deals are in it.
    """
    from mt5gate.cli.reads import show_history

    _exit(
        run_on_account(
            opts, lambda s, ui, t: show_history(s, ui, t, date_from, date_to, orders=orders)
        )
    )
    return 0


@app.command(cls=PanelCommand)
@account_command
def health(
    symbols: Annotated[list[str] | None, typer.Argument(
        help="Symbols whose ticks to check (default: the account's watch list).",
        show_default=False)] = None,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """One health reading, coloured. Exit 0 pass, 1 warn, 2 fail (for scripts and cron)."""
    from mt5gate.cli.running import run_health

    _exit(run_health(opts, symbols or []))
    return 0


@app.command(cls=PanelCommand)
@account_command
def watch(
    symbols: Symbols,
    interval: Annotated[float, typer.Option("--interval", "-i", min=0.05,
                        help="Seconds between refreshes.")] = 0.5,
    count: Annotated[int, typer.Option("--count", "-n", min=0,
                     help="Stop after this many refreshes (0: until Ctrl-C).")] = 0,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """A live table of prices and spreads (with --json: one line per new tick). Ctrl-C ends."""
    from mt5gate.cli.failures import Exit
    from mt5gate.cli.reads import watch_prices

    names = [s.strip() for s in symbols]

    def work(s: AccountPort, ui: Ui, t: Target) -> Awaitable[Exit]:
        return watch_prices(s, ui, t, names, interval_s=interval, count=count)

    code = run_on_account(opts, work)
    _exit(0 if code == Exit.INTERRUPTED else code)  # Ctrl-C is how a watch ends
    return 0


# ------------------------------------------------------------------------------ trading

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Key = Annotated[str | None, typer.Option("--key", help="Idempotency key: the same key never "
                "sends twice (default: a new one, printed).")]  # fmt: skip
Symbol = Annotated[
    str, typer.Argument(metavar="SYMBOL", help="The symbol, e.g. EURUSD.", show_default=False)
]


def _above_zero(value: float) -> float:
    """A volume or a price: a finite number above zero, refused here (exit 2) before anything
    connects, with the rule, rather than by the order's checks after connecting."""
    if not value > 0:
        raise typer.BadParameter(f"must be > 0; got {value:g}")
    if value == float("inf"):
        raise typer.BadParameter("must be a finite number")
    return value


Volume = Annotated[
    float,
    typer.Argument(
        metavar="VOLUME", help="Lots, e.g. 0.1.", show_default=False, callback=_above_zero
    ),
]
Level = Annotated[
    float,
    typer.Argument(
        metavar="PRICE", help="The order's price.", show_default=False, callback=_above_zero
    ),
]
SideArg = Annotated[
    SideChoice, typer.Argument(metavar="buy|sell", help="buy or sell.", show_default=False)
]
Sl = Annotated[float | None, typer.Option("--sl", help="Stop loss price.")]
Tp = Annotated[float | None, typer.Option("--tp", help="Take profit price.")]
Deviation = Annotated[int, typer.Option("--deviation", min=0,
                      help="Accepted slippage in points (market orders).")]  # fmt: skip
Comment = Annotated[str, typer.Option("--comment", help="The order's comment.")]


def _send(opts: Options, request: OrderRequest, yes: bool, key: str | None) -> None:
    from mt5gate.cli.trade import Confirmation, place_order

    confirmation = Confirmation(yes, key)
    _exit(run_on_account(opts, lambda s, ui, t: place_order(s, ui, t, request, confirmation)))


def _request(
    symbol: str, side: Side | SideChoice, volume: float, kind: str, price: float | None,
    sl: float | None, tp: float | None, deviation: int, comment: str,
) -> OrderRequest:  # fmt: skip
    from mt5gate.models import OrderKind, OrderRequest, Side

    return OrderRequest(symbol.strip(), Side(side.value), volume, OrderKind(kind), price,
                        sl=sl, tp=tp, deviation=deviation, comment=comment)  # fmt: skip


@order_app.command("buy", cls=PanelCommand)
@account_command
def order_buy(symbol: Symbol, volume: Volume, sl: Sl = None, tp: Tp = None,
              deviation: Deviation = 20, comment: Comment = "", yes: Yes = False,
              key: Key = None, *, opts: Options) -> int:  # fmt: skip
    """Buy VOLUME lots of SYMBOL at market."""
    request = _request(symbol, SideChoice.BUY, volume, "market", None, sl, tp, deviation,
                       comment)  # fmt: skip
    _send(opts, request, yes, key)
    return 0


@order_app.command("sell", cls=PanelCommand)
@account_command
def order_sell(symbol: Symbol, volume: Volume, sl: Sl = None, tp: Tp = None,
               deviation: Deviation = 20, comment: Comment = "", yes: Yes = False,
               key: Key = None, *, opts: Options) -> int:  # fmt: skip
    """Sell VOLUME lots of SYMBOL at market."""
    request = _request(symbol, SideChoice.SELL, volume, "market", None, sl, tp, deviation,
                       comment)  # fmt: skip
    _send(opts, request, yes, key)
    return 0


@order_app.command("limit", cls=PanelCommand)
@account_command
def order_limit(side: SideArg, symbol: Symbol, volume: Volume, price: Level, sl: Sl = None,
                tp: Tp = None, comment: Comment = "", yes: Yes = False, key: Key = None, *,
                opts: Options) -> int:  # fmt: skip
    """A pending limit order: buy below or sell above the market, at PRICE."""
    request = _request(symbol, side, volume, "limit", price, sl, tp, 20, comment)
    _send(opts, request, yes, key)
    return 0


@order_app.command("stop", cls=PanelCommand)
@account_command
def order_stop(side: SideArg, symbol: Symbol, volume: Volume, price: Level, sl: Sl = None,
               tp: Tp = None, comment: Comment = "", yes: Yes = False, key: Key = None, *,
               opts: Options) -> int:  # fmt: skip
    """A pending stop order: buy above or sell below the market, at PRICE."""
    request = _request(symbol, side, volume, "stop", price, sl, tp, 20, comment)
    _send(opts, request, yes, key)
    return 0


Ticket = Annotated[
    int, typer.Argument(min=1, metavar="TICKET", help="The ticket.", show_default=False)
]


@app.command(cls=PanelCommand)
@account_command
def close(
    ticket: Ticket,
    volume: Annotated[float | None, typer.Option("--volume", help="Close only these lots "
                      "(default: all).")] = None,
    yes: Yes = False,
    key: Key = None,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """Close an open position (all of it, or --volume lots)."""
    from mt5gate.cli.trade import Confirmation, close_position

    confirmation = Confirmation(yes, key)
    _exit(
        run_on_account(
            opts, lambda s, ui, t: close_position(s, ui, t, ticket, volume, confirmation)
        )
    )
    return 0


@app.command(cls=PanelCommand)
@account_command
def cancel(ticket: Ticket, yes: Yes = False, key: Key = None, *, opts: Options) -> int:
    """Cancel (delete) a pending order."""
    from mt5gate.cli.trade import Confirmation, cancel_order

    confirmation = Confirmation(yes, key)
    _exit(run_on_account(opts, lambda s, ui, t: cancel_order(s, ui, t, ticket, confirmation)))
    return 0


# modify, halt, resume, rates and ticks: declared in their own module, on this app
from mt5gate.cli import app_more  # noqa: E402, F401


@app.command(cls=PanelCommand, context_settings={"ignore_unknown_options": True})  # "-6" is a code
def errors(
    query: Annotated[str | None, typer.Argument(
        help="A code (10019, -6) or a name (no_money, TRADE_RETCODE_NO_MONEY).",
        show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:  # fmt: skip
    """What an MT5 retcode or last_error code means, and what to do (no terminal needed)."""
    from rich.markup import escape

    from mt5gate.cli.failures import Exit
    from mt5gate.cli.reads import show_errors
    from mt5gate.cli.reference import error_reference, find
    from mt5gate.cli.ui import Ui

    ui = Ui(Options(json=json_out))
    try:
        entries = find(query) if query is not None else error_reference()
        if not entries:  # a code or name that does not exist: the command line is wrong
            ui.note(
                f"[bold red]error:[/] no MT5 code matches {escape(repr(query))}: it is "
                "neither a trade retcode nor a last_error code, nor the name of one"
            )
            ui.note("[yellow]hint:[/] mt5gate errors lists every code; docs/errors.md too.")
            raise typer.Exit(Exit.USAGE)
        show_errors(ui, entries, full=query is not None)
    finally:
        ui.close()


# ------------------------------------------------------------------------ the front ends

# journal, serve, bot, bridge, demo and fleet are typer commands built from their own option
# tables when asked for (FrontEndGroup, mt5gate.cli.frontends).
