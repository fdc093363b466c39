"""The export commands' work: ``mt5gate rates`` and ``mt5gate ticks`` write a range of bars or
ticks to a CSV or Parquet file, however long the range.

Everything the command line can get wrong is checked before any connection (:func:`plan`):
the timeframe, ``--to`` before ``--from``, the format (``--format``, else the extension), a
missing ``pyarrow`` for Parquet, an output that exists without ``--force``. Then the range is
read a page at a time (:mod:`~mt5gate.cli.paging`: on the command's own session, or through the
``mt5gate serve`` owning the account, whose API answers at most 10,000 rows a call) and each
page is written and let go (:mod:`~mt5gate.cli.sinks`), so memory stays bounded and an
interrupted export leaves no file under the output's name.

``--from`` and ``--to`` are on the broker's clock, as the rows' times are, and both ends are
included (as in MT5's ``copy_rates_range`` and ``copy_ticks_range``). ``ticks --flags info``
or ``trade`` keeps the ticks whose ``flags`` say the bid or ask, or the last price or volume,
changed: MT5's ``COPY_TICKS_INFO`` and ``COPY_TICKS_TRADE``, applied here to every tick so the
answer is the same through the service (whose route has no filter). A progress bar shows on
stderr when it is a terminal, unless ``--quiet``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np

from mt5gate.cli.failures import CommandError, Exit, guarded
from mt5gate.cli.options import FileFormat, Options, TickSet
from mt5gate.cli.paging import rate_pages, tick_pages
from mt5gate.cli.port import AccountPort, Array
from mt5gate.cli.running import run_on_account
from mt5gate.cli.sinks import Output, exists, format_of, require_parquet
from mt5gate.cli.target import Target
from mt5gate.cli.ui import Ui
from mt5gate.constants import TickFlag, Timeframe
from mt5gate.records import RATES_DTYPE, TICKS_DTYPE
from mt5gate.session.validation import require_symbol_name

__all__ = ["Export", "export", "parse_timeframe", "plan", "run_export"]

#: The ``flags`` bits each ``--flags`` keeps (0: every tick), as MT5's COPY_TICKS values do.
TICK_MASKS: Final = {
    TickSet.ALL: 0,
    TickSet.INFO: int(TickFlag.BID | TickFlag.ASK),
    TickSet.TRADE: int(TickFlag.LAST | TickFlag.VOLUME),
}
_WHEN: Final = "%Y-%m-%d %H:%M:%S"
_REDRAW_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class Export:
    """One export, checked: bars of ``timeframe``, or (``timeframe`` None) ticks."""

    symbol: str
    span_s: tuple[int, int]
    out: Path
    file_format: FileFormat
    force: bool = False
    quiet: bool = False
    page_rows: int = 10_000
    timeframe: Timeframe | None = None
    ticks: TickSet = TickSet.ALL

    @property
    def what(self) -> str:
        """``bars`` or ``ticks``."""
        return "ticks" if self.timeframe is None else "bars"

    def about(self, target: Target) -> dict[str, object]:
        """What the file holds (a Parquet file keeps it in its metadata)."""
        return {"symbol": self.symbol, "account": target.account.name,
                "timeframe": None if self.timeframe is None else self.timeframe.name,
                "flags": None if self.timeframe is not None else self.ticks.value,
                "from": self.span_s[0], "to": self.span_s[1],
                "time": "epoch seconds (time_msc: milliseconds) of the broker's clock"}  # fmt: skip


def parse_timeframe(text: str) -> Timeframe:
    """``M1``, ``h4``, ``MN1``...: the MT5 timeframe; ``CommandError`` (exit 2) naming the
    argument and the timeframes otherwise."""
    name = text.strip().upper()
    if name in Timeframe.__members__:
        return Timeframe[name]
    names = ", ".join(Timeframe.__members__)
    raise CommandError(f"TIMEFRAME: {text!r} is not a timeframe", hint=f"One of {names}.")


def plan(symbol: str, date_from: datetime, date_to: datetime, out: Path, *,
         file_format: FileFormat | None, force: bool, quiet: bool, page_rows: int,
         timeframe: str | None = None, ticks: TickSet = TickSet.ALL) -> Export:  # fmt: skip
    """The export the command line asks for, or a ``CommandError`` (exit 2) naming what is
    wrong; nothing is connected to and no file is made."""
    name = require_symbol_name(symbol.strip())
    frame = None if timeframe is None else parse_timeframe(timeframe)
    if date_to < date_from:
        raise CommandError(f"--to ({date_to:{_WHEN}}) is before --from ({date_from:{_WHEN}})",
                           hint="Swap them.")  # fmt: skip
    if out.is_dir():
        raise CommandError(f"--out: {out} is a directory", hint="Give a file name.")
    chosen = format_of(out, file_format)
    if chosen is FileFormat.PARQUET:
        require_parquet()
    if not out.parent.is_dir():
        raise CommandError(f"--out: there is no directory {out.parent}",
                           hint="Make it first, or give another path.")  # fmt: skip
    if out.exists() and not force:
        raise exists(out)
    span = (int(date_from.timestamp()), int(date_to.timestamp()))
    return Export(name, span, out, chosen, force, quiet, page_rows, frame, ticks)


def run_export(opts: Options, planned: Callable[[], Export]) -> int:
    """Check the command line (:func:`plan`, before any connection), then export on the
    account; every failure is one line, a hint and an exit code."""
    ui = Ui(opts)
    try:
        job = guarded(ui.err, planned, debug=opts.debug)
    finally:
        ui.close()
    if isinstance(job, Exit):
        return int(job)
    return run_on_account(opts, lambda s, u, t: export(s, u, t, job))


async def export(port: AccountPort, ui: Ui, target: Target, job: Export) -> Exit:
    """Write ``job``'s range to its file a page at a time; then say what was written."""
    await port.get_price(job.symbol)  # selects the symbol, as MT5 needs before copying
    dtype = TICKS_DTYPE if job.timeframe is None else RATES_DTYPE
    first: int | None = None
    last: int | None = None
    with (Output(job.out, job.file_format, dtype, job.about(target), force=job.force) as output,
          _progress(ui, job) as advance):  # fmt: skip
        async for page in _pages(port, job):
            rows = _kept(page, job)
            if len(rows):
                output.write(rows)
                first = int(rows["time"][0]) if first is None else first
                last = int(rows["time"][-1])
            advance(output.rows, int(page["time"][-1]))
        output.commit()
    _report(ui, job, output.rows, first, last)
    return Exit.OK


def _pages(port: AccountPort, job: Export) -> AsyncIterator[Array]:
    if job.timeframe is None:
        return tick_pages(port, job.symbol, job.span_s, job.page_rows)
    return rate_pages(port, job.symbol, int(job.timeframe), job.span_s, job.page_rows)


def _kept(page: Array, job: Export) -> Array:
    """The rows ``--flags`` keeps (bars: all)."""
    mask = TICK_MASKS[job.ticks] if job.timeframe is None else 0
    if not mask:
        return page
    kept: Array = page[(page["flags"] & np.uint32(mask)) != 0]
    return kept


@contextlib.contextmanager
def _progress(ui: Ui, job: Export) -> Iterator[Callable[[int, int], None]]:
    """``advance(rows written, time reached)``: a bar on stderr when it is a terminal (redrawn
    after a page, at most every :data:`_REDRAW_S`: no refresh thread), nothing otherwise or
    with ``--quiet``."""
    if job.quiet or not ui.err.is_terminal:
        yield lambda rows, reached: None
        return
    from rich.progress import (  # imported here: only a terminal shows a bar
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    start, end = job.span_s
    label = f"{job.symbol} {job.timeframe.name if job.timeframe else 'ticks'}"
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=ui.err, auto_refresh=False) as bar:
        task = bar.add_task(label, total=max(1, end - start), rows=0)

        drawn = [0.0]

        def advance(rows: int, reached: int) -> None:
            bar.update(task, completed=min(reached, end) - start, rows=rows)
            if time.monotonic() - drawn[0] >= _REDRAW_S:
                bar.refresh()
                drawn[0] = time.monotonic()

        yield advance
        bar.update(task, completed=max(1, end - start))
        bar.refresh()


def _when(seconds: int | None) -> str | None:
    return None if seconds is None else f"{datetime.fromtimestamp(seconds, UTC):{_WHEN}}"


def _report(ui: Ui, job: Export, rows: int, first: int | None, last: int | None) -> None:
    """What was written: a line on stdout (JSON with ``--json``), and a note on stderr when
    the range held nothing."""
    if not rows:
        ui.note(f"[yellow]no {job.what} in that range[/] (the market closed, or before the "
                "history starts)")  # fmt: skip
    if ui.options.json:
        ui.emit_json({
            "path": str(job.out), "format": job.file_format.value, "symbol": job.symbol,
            "timeframe": None if job.timeframe is None else job.timeframe.name,
            "flags": None if job.timeframe is not None else job.ticks.value,
            "from": job.span_s[0], "to": job.span_s[1], "rows": rows,
            "first_time": first, "last_time": last,
        })  # fmt: skip
        return
    kind = job.what if job.timeframe is None else f"{job.timeframe.name} bars"
    span = f"{_when(job.span_s[0])} .. {_when(job.span_s[1])}"
    ui.out.print(f"{rows:,} {kind} of {job.symbol} ({span}) written to {job.out}",
                 highlight=False, markup=False, soft_wrap=True)  # fmt: skip
