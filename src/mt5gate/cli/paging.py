"""A long range of bars or ticks, read in pages of at most ``page_rows`` rows.

``mt5gate rates`` and ``ticks`` never hold a whole range: they write each page and let it go.
The same walk serves the command's own session and the ``mt5gate serve`` owning the account,
whose HTTP API answers at most :data:`PAGE_ROWS` rows a call and has no cursor: each page is
asked by time, "the first ``page_rows`` rows from here to the end".

* Bars have unique open times: the next page starts one second after the last bar.
* Ticks are asked from a whole second (``copy_ticks_from`` reads ``date_from`` in seconds)
  and several ticks can share one ``time_msc``. The next page starts at the second of the last
  tick written, and :class:`TickCursor` drops what was written already: every tick before the
  last one's ``time_msc``, and as many ticks at that ``time_msc`` as were written. So no tick
  is lost or written twice at a page boundary, however many share its millisecond; only more
  than ``page_rows`` ticks at or after one second's start within that second cannot be paged
  past, which is refused (:func:`tick_pages`) rather than looped on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.port import AccountPort, Array

__all__ = ["PAGE_ROWS", "TickCursor", "rate_pages", "tick_pages"]

#: The most rows one call of the HTTP API answers (its ``count`` bound), and each page's size.
PAGE_ROWS: Final = 10_000


async def rate_pages(
    port: AccountPort, symbol: str, timeframe: int, span_s: tuple[int, int], page_rows: int
) -> AsyncIterator[Array]:
    """The bars of ``timeframe`` with ``from <= time <= to`` (``span_s``, epoch seconds of the
    broker's clock), oldest first, a page at a time (empty pages are not yielded)."""
    lo, hi = span_s
    while lo <= hi:
        page = await port.get_rates(symbol, timeframe, count=page_rows, date_from=lo, date_to=hi)
        if len(page):
            yield page
        if len(page) < page_rows:
            return
        after = int(page["time"][-1]) + 1
        if after <= lo:  # a source that answers bars before what was asked: never loop on it
            raise CommandError(f"the bars of {symbol} came back before {lo}, out of order",
                               hint="Report it: the terminal's history is inconsistent.",
                               code=Exit.MT5)  # fmt: skip
        lo = after


@dataclass(slots=True)
class TickCursor:
    """Where a tick export stands: the ``time_msc`` of the last tick written, and how many
    ticks at that ``time_msc`` were written."""

    last_msc: int | None = None
    written_at_last: int = 0

    @property
    def next_from_s(self) -> int:
        """The second the next page is asked from (that of the last tick written)."""
        assert self.last_msc is not None, "no tick written yet"
        return self.last_msc // 1000

    def fresh(self, page: Array) -> Array:
        """The ticks of ``page`` (oldest first, asked from :attr:`next_from_s`) not written
        yet; the cursor moves past them."""
        times = page["time_msc"]
        if len(times) > 1 and bool(np.any(np.diff(times) < 0)):
            raise CommandError(
                "the ticks came back out of time order",
                code=Exit.MT5,
                hint="Report it: the terminal's history is inconsistent.",
            )
        start = 0
        if self.last_msc is not None:
            first_at = int(np.searchsorted(times, self.last_msc, side="left"))
            after = int(np.searchsorted(times, self.last_msc, side="right"))
            start = min(first_at + self.written_at_last, after)
        new = page[start:]
        if len(new):
            last = int(new["time_msc"][-1])
            at_last = len(new) - int(np.searchsorted(new["time_msc"], last, side="left"))
            same = last == self.last_msc
            self.written_at_last = self.written_at_last + at_last if same else at_last
            self.last_msc = last
        return new


async def tick_pages(
    port: AccountPort, symbol: str, span_s: tuple[int, int], page_rows: int
) -> AsyncIterator[Array]:
    """Every tick with ``from * 1000 <= time_msc <= to * 1000`` (``span_s``), oldest first, a
    page at a time, each tick once (see the module docstring)."""
    lo, hi = span_s
    cursor = TickCursor()
    while True:
        page = await port.get_ticks(symbol, lo, count=page_rows, date_to=hi)
        new = cursor.fresh(page)
        if len(new):
            yield new
        if len(page) < page_rows:
            return
        if not len(new):
            raise _stuck(symbol, lo, page_rows)
        lo = cursor.next_from_s


def _stuck(symbol: str, second: int, page_rows: int) -> CommandError:
    """One second holds more ticks than a page: asked from its start, no page gets past it."""
    hint = (f"Give a larger --page-rows (at most {PAGE_ROWS:,})." if page_rows < PAGE_ROWS else
            "Read that second from Python: session.get_ticks(symbol, second, "
            "date_to=second + 1).")  # fmt: skip
    return CommandError(f"more than {page_rows:,} ticks of {symbol} in the second {second}: a "
                        "page starts at a whole second, so the export cannot get past it",
                        hint=hint, code=Exit.MT5)  # fmt: skip
