"""More of the ``mt5gate`` command's declarations: ``modify``, ``halt``, ``resume``, ``rates``
and ``ticks`` (declarations only; the work is in :mod:`~mt5gate.cli.manage` and
:mod:`~mt5gate.cli.export`).

:mod:`mt5gate.cli.app` imports this module once its own commands and shared options are
declared, and each command here registers on its ``app``. Like ``app``, it imports only typer
and the cheap option types, so ``mt5gate --help`` stays light.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mt5gate.cli.app import (
    Key,
    Ticket,
    Yes,
    _exit,
    _parse_when,
    account_command,
    app,
    run_on_account,
)
from mt5gate.cli.helptext import PanelCommand
from mt5gate.cli.options import FileFormat, Options, TickSet

if TYPE_CHECKING:
    from mt5gate.cli.export import Export
    from mt5gate.cli.failures import Exit
    from mt5gate.cli.remote import RemoteAccount
    from mt5gate.cli.target import Target
    from mt5gate.cli.ui import Ui

__all__ = ["halt", "modify", "rates", "resume", "ticks"]

# ------------------------------------------------------------------------------ managing


@app.command(cls=PanelCommand)
@account_command
def modify(
    ticket: Ticket,
    sl: Annotated[float | None, typer.Option("--sl", min=0, metavar="PRICE",
                  help="The new stop loss (0 removes it; left out: kept).")] = None,
    tp: Annotated[float | None, typer.Option("--tp", min=0, metavar="PRICE",
                  help="The new take profit (0 removes it; left out: kept).")] = None,
    price: Annotated[float | None, typer.Option("--price", metavar="PRICE",
                     help="A pending order's new price.")] = None,
    yes: Yes = False,
    key: Key = None,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """Change an open position's SL / TP, or a pending order's price, SL / TP."""
    from mt5gate.cli.manage import Change
    from mt5gate.cli.manage import modify as work
    from mt5gate.cli.trade import Confirmation

    change, confirmation = Change(sl, tp, price), Confirmation(yes, key)
    _exit(run_on_account(opts, lambda s, ui, t: work(s, ui, t, ticket, change, confirmation)))
    return 0


@app.command(cls=PanelCommand)
@account_command
def halt(
    reason: Annotated[str, typer.Argument(
        help="Why (the service's health shows it).", show_default=False)] = "",
    yes: Yes = False,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """Halt trading: the mt5gate serve owning the account refuses every new order until
    resume (closing, modifying and cancelling still work)."""
    from mt5gate.cli.manage import halt_trading, require_reason, run_on_service
    from mt5gate.cli.trade import Confirmation

    confirmation = Confirmation(yes)

    def work(remote: RemoteAccount, ui: Ui, target: Target) -> Awaitable[Exit]:
        return halt_trading(remote, ui, target, require_reason(reason), confirmation)

    _exit(run_on_service(opts, work))
    return 0


@app.command(cls=PanelCommand)
@account_command
def resume(yes: Yes = False, *, opts: Options) -> int:
    """Resume trading after halt: the mt5gate serve owning the account takes orders again."""
    from mt5gate.cli.manage import resume_trading, run_on_service
    from mt5gate.cli.trade import Confirmation

    confirmation = Confirmation(yes)
    _exit(run_on_service(opts, lambda r, ui, t: resume_trading(r, ui, t, confirmation)))
    return 0


# ------------------------------------------------------------------------------ exporting

_FILE = "File"
Symbol = Annotated[
    str, typer.Argument(metavar="SYMBOL", help="The symbol, e.g. EURUSD.", show_default=False)
]
From = Annotated[datetime, typer.Option(
    "--from", parser=_parse_when, metavar="TIME", show_default=False,
    help="Start, on the broker's clock: 2020-01-01, 2020-01-01T14:30, an age (7d)...")]  # fmt: skip
To = Annotated[datetime, typer.Option(
    "--to", parser=_parse_when, metavar="TIME", show_default=False,
    help="End, included (same forms).")]  # fmt: skip
Out = Annotated[Path, typer.Option(
    "--out", "-o", metavar="FILE", show_default=False, rich_help_panel=_FILE,
    help="The file to write: .csv or .parquet (written under a temporary name, then renamed).",
)]  # fmt: skip
Format = Annotated[FileFormat | None, typer.Option(
    "--format", rich_help_panel=_FILE, help="csv or parquet (default: by --out's extension; "
    "parquet needs mt5gate[parquet]).", show_default=False)]  # fmt: skip
Force = Annotated[bool, typer.Option("--force", "-f", rich_help_panel=_FILE,
                  help="Replace --out if it exists.")]  # fmt: skip
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
PageRows = Annotated[int, typer.Option(
    "--page-rows", min=1, max=10_000, help="Rows per read (at most 10,000, the HTTP API's "
    "limit).")]  # fmt: skip


def _export(opts: Options, planned: Callable[[], Export]) -> None:
    from mt5gate.cli.export import run_export

    _exit(run_export(opts, planned))


@app.command(cls=PanelCommand)
@account_command
def rates(
    symbol: Symbol,
    timeframe: Annotated[str, typer.Argument(
        metavar="TIMEFRAME", help="M1, M5, M15, H1, H4, D1, W1, MN1...", show_default=False)],
    date_from: From,
    date_to: To,
    out: Out,
    file_format: Format = None,
    force: Force = False,
    quiet: Quiet = False,
    page_rows: PageRows = 10_000,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """Export the bars of a range to CSV or Parquet (any length: read and written in pages)."""
    from mt5gate.cli.export import plan

    def planned() -> Export:
        return plan(symbol, date_from, date_to, out, file_format=file_format, force=force,
                    quiet=quiet, page_rows=page_rows, timeframe=timeframe)  # fmt: skip

    _export(opts, planned)
    return 0


@app.command(cls=PanelCommand)
@account_command
def ticks(
    symbol: Symbol,
    date_from: From,
    date_to: To,
    out: Out,
    flags: Annotated[TickSet, typer.Option(
        "--flags", help="all, info (bid or ask changed) or trade (last or volume changed).")
    ] = TickSet.ALL,
    file_format: Format = None,
    force: Force = False,
    quiet: Quiet = False,
    page_rows: PageRows = 10_000,
    *,
    opts: Options,
) -> int:  # fmt: skip
    """Export the ticks of a range to CSV or Parquet (any length: read and written in pages)."""
    from mt5gate.cli.export import plan

    def planned() -> Export:
        return plan(symbol, date_from, date_to, out, file_format=file_format, force=force,
                    quiet=quiet, page_rows=page_rows, ticks=flags)  # fmt: skip

    _export(opts, planned)
    return 0
