"""Reading a range in pages (``mt5gate.cli.paging``): every row once, in order, at any page size,
whatever the page boundaries cut through; ticks sharing a millisecond (or a second) across a
boundary are neither lost nor repeated.

Two sources: the real simulator behind a real session (deep 2020 history, and a recorded tick
file with many ticks per millisecond), and, for the property tests, a plain array read by MT5's
documented rules (``copy_ticks_from``: the first ``count`` ticks with ``time_msc >= from *
1000``; ``copy_rates_range``: the bars with ``from <= time <= to``), which hypothesis fills with
every pattern of ties.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.paging import PAGE_ROWS, TickCursor, rate_pages, tick_pages
from mt5gate.cli.port import AccountPort, Array
from mt5gate.constants import Timeframe
from mt5gate.records import RATES_DTYPE, TICKS_DTYPE
from mt5gate.session.manager import MT5SessionManager
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from tests.cli.ticks_data import SECOND_MOST, SPAN, recorded_ticks, write_tick_file

T = TypeVar("T")

#: 2020-01-01 and 2020-02-01 00:00 (deep history of the simulator).
JAN_2020 = (1577836800, 1580515200)


class ArrayHistory:
    """Bars and ticks held in arrays, answered by MT5's documented rules (only the two calls
    the pages make; a stand-in for a terminal's data, not for mt5gate's code)."""

    def __init__(self, bars: Array, ticks: Array) -> None:
        self.bars, self.ticks, self.calls = bars, ticks, 0

    async def get_rates(self, symbol: str, timeframe: int, *, count: int | None = None,
                        date_from: int | None = None, date_to: int | None = None,
                        ) -> Array:  # fmt: skip
        self.calls += 1
        assert date_from is not None
        assert date_to is not None
        assert count is not None
        times = self.bars["time"]
        inside = self.bars[(times >= date_from) & (times <= date_to)]
        return inside[:count]

    async def get_ticks(self, symbol: str, date_from: int, *, count: int | None = None,
                        date_to: int | None = None, flags: int = -1) -> Array:  # fmt: skip
        self.calls += 1
        assert isinstance(date_from, int)
        assert count is not None
        assert date_to is not None
        start = int(np.searchsorted(self.ticks["time_msc"], date_from * 1000, side="left"))
        page = self.ticks[start : start + count]
        return page[page["time_msc"] <= date_to * 1000]


def ticks_at(times_msc: list[int]) -> Array:
    """Ticks at these (sorted) times, each with its position as its bid: a lost or repeated
    tick shows."""
    ticks = np.zeros(len(times_msc), dtype=TICKS_DTYPE)
    ticks["time_msc"] = times_msc
    ticks["time"] = ticks["time_msc"] // 1000
    ticks["bid"] = np.arange(len(times_msc))
    return ticks


def collect(pages: AsyncIterator[Array], dtype: np.dtype[Any]) -> Array:
    """Every page, in one array."""
    return asyncio.run(gathered(pages, dtype))


def most_in_one_second(times_msc: list[int]) -> int:
    seconds = np.asarray(times_msc, dtype=np.int64) // 1000
    return int(np.unique(seconds, return_counts=True)[1].max()) if len(seconds) else 0


# --------------------------------------------------------------------------- the properties


@st.composite
def tick_times(draw: st.DrawFn) -> list[int]:
    """Sorted tick times with ties: steps of 0 ms (a tie), a few ms, or seconds."""
    steps = draw(st.lists(st.sampled_from([0, 0, 0, 1, 3, 999, 1000, 1001, 2500]), max_size=80))
    start = draw(st.integers(0, 5)) * 1000 + draw(st.integers(0, 999))
    return list(np.cumsum([start, *steps]))


@settings(max_examples=300, deadline=None)
@given(times=tick_times(), extra=st.integers(1, 5), cut=st.data())
def test_tick_pages_give_every_tick_once_at_any_page_size(
    times: list[int], extra: int, cut: st.DataObject
) -> None:
    ticks = ticks_at(times)
    lo = cut.draw(st.integers(0, int(times[-1]) // 1000), "from")
    hi = cut.draw(st.integers(lo, int(times[-1]) // 1000 + 1), "to")
    expected = ticks[(ticks["time_msc"] >= lo * 1000) & (ticks["time_msc"] <= hi * 1000)]
    page_rows = most_in_one_second(times) + extra  # the least a page can be to get past a second
    got = collect(tick_pages(ArrayHistory(ticks[:0], ticks), "X", (lo, hi), page_rows), TICKS_DTYPE)
    assert got.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.integers(1, 5), max_size=60), page_rows=st.integers(1, 9),
       cut=st.data())  # fmt: skip
def test_rate_pages_give_every_bar_once_at_any_page_size(
    gaps: list[int], page_rows: int, cut: st.DataObject
) -> None:
    bars = np.zeros(len(gaps), dtype=RATES_DTYPE)
    bars["time"] = np.cumsum(gaps) * 60
    bars["open"] = np.arange(len(gaps))
    top = int(bars["time"][-1]) if len(gaps) else 60
    lo = cut.draw(st.integers(0, top), "from")
    hi = cut.draw(st.integers(lo, top + 60), "to")
    expected = bars[(bars["time"] >= lo) & (bars["time"] <= hi)]
    source = ArrayHistory(bars, np.zeros(0, dtype=TICKS_DTYPE))
    got = collect(rate_pages(source, "X", 1, (lo, hi), page_rows), RATES_DTYPE)
    assert got.tolist() == expected.tolist()
    # one call per full page, and a last one that comes back short, unless the last full page
    # ends on ``to`` itself: then nothing is left to ask for
    full, rest = divmod(len(expected), page_rows)
    ends_on_to = len(expected) > 0 and rest == 0 and int(expected["time"][-1]) == hi
    assert source.calls == full + (0 if ends_on_to else 1)


def test_ties_cut_by_page_boundaries_come_once() -> None:
    """Pages of fourteen: the first ends inside the tie at 2000 ms, the second inside the
    twelve ticks at 3000 ms (eleven of them on it), and each tick still comes once."""
    times = [1000, *[1500] * 12, 2000, 2000, 2001, *[3000] * 12, 4000]
    ticks = ticks_at(times)
    source = ArrayHistory(ticks[:0], ticks)
    got = collect(tick_pages(source, "X", (1, 4), 14), TICKS_DTYPE)
    assert got["bid"].tolist() == list(range(len(times)))
    assert source.calls == 3


def test_a_second_with_more_ticks_than_a_page_is_refused_not_looped_on() -> None:
    ticks = ticks_at([1000, 1001, 1002, 1003, 2000])
    with pytest.raises(CommandError) as refused:
        collect(tick_pages(ArrayHistory(ticks[:0], ticks), "X", (1, 2), 3), TICKS_DTYPE)
    assert refused.value.code == Exit.MT5
    assert "more than 3 ticks of X in the second 1" in refused.value.message
    assert "--page-rows" in refused.value.hint
    with pytest.raises(CommandError) as at_most:  # pages as large as they go: no such advice
        collect(tick_pages(ArrayHistory(ticks[:0], ticks_at([5] * (PAGE_ROWS + 1))), "X",
                           (0, 1), PAGE_ROWS), TICKS_DTYPE)  # fmt: skip
    assert "session.get_ticks" in at_most.value.hint


def test_the_cursor_refuses_ticks_out_of_order() -> None:
    with pytest.raises(CommandError, match="out of time order"):
        TickCursor().fresh(ticks_at([2000, 1000]))


def test_a_source_that_answers_bars_before_the_range_is_refused() -> None:
    class Backwards(ArrayHistory):
        async def get_rates(self, symbol: str, timeframe: int, **_: Any) -> Array:
            return self.bars

    bars = np.zeros(2, dtype=RATES_DTYPE)
    with pytest.raises(CommandError, match="came back before 60"):
        collect(rate_pages(Backwards(bars, ticks_at([])), "X", 1, (60, 600), 2), RATES_DTYPE)


# -------------------------------------------------------------------- on the real simulator


def on_simulator(work: Callable[[MT5SessionManager], Awaitable[T]]) -> T:
    """``work`` on a session of the simulator (its clock pinned to Tuesday 2026-01-06 10:00)."""

    async def main() -> T:
        sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
        async with MT5SessionManager(terminal=sim, login=5001, password="sim-pass-5001",
                                     server="MetaQuotes-Demo") as session:  # fmt: skip
            return await work(session)

    return asyncio.run(main())


async def gathered(pages: AsyncIterator[Array], dtype: np.dtype[Any]) -> Array:
    found = [page async for page in pages]
    return np.concatenate(found) if found else np.zeros(0, dtype=dtype)


def test_a_month_of_m1_bars_of_2020_in_pages_is_the_direct_read() -> None:
    async def work(session: MT5SessionManager) -> tuple[Array, Array]:
        port: AccountPort = session
        whole = await session.get_rates("EURUSD", int(Timeframe.M1), date_from=JAN_2020[0],
                                        date_to=JAN_2020[1])  # fmt: skip
        pages = rate_pages(port, "EURUSD", int(Timeframe.M1), JAN_2020, PAGE_ROWS)
        return whole, await gathered(pages, RATES_DTYPE)

    whole, paged = on_simulator(work)
    assert len(whole) > 3 * PAGE_ROWS  # more than one call of the HTTP API holds
    assert paged.tolist() == whole.tolist()


def test_recorded_ticks_with_ties_in_pages_are_the_direct_read(tmp_path: Path) -> None:
    """The recorded morning (``tests/cli/ticks_data.py``: up to a dozen ticks a millisecond)
    loaded into the simulator: pages just large enough for its busiest second cut ties."""
    span = SPAN
    sizes = (SECOND_MOST + 1, SECOND_MOST + 7, 1000)

    async def work(session: MT5SessionManager) -> tuple[Array, list[Array]]:
        sim = session.terminal
        assert isinstance(sim, SimTerminal)
        sim.market.load_ticks_csv("EURUSD", write_tick_file(tmp_path / "ticks.tsv"))
        whole = await session.get_ticks("EURUSD", span[0], date_to=span[1])
        return whole, [await gathered(tick_pages(session, "EURUSD", span, n), TICKS_DTYPE)
                       for n in sizes]  # fmt: skip

    whole, paged = on_simulator(work)
    assert whole.tolist() == recorded_ticks().tolist()
    for size, found in zip(sizes, paged, strict=True):
        assert found.tolist() == whole.tolist(), size


def test_a_day_of_2020_ticks_in_pages_is_the_direct_read() -> None:
    monday = int(datetime.fromisoformat("2020-01-06T00:00:00+00:00").timestamp())
    span = (monday, monday + 86400)

    async def work(session: MT5SessionManager) -> tuple[Array, Array]:
        whole = await session.get_ticks("EURUSD", span[0], date_to=span[1])
        return whole, await gathered(tick_pages(session, "EURUSD", span, PAGE_ROWS), TICKS_DTYPE)

    whole, paged = on_simulator(work)
    assert len(whole) > 2 * PAGE_ROWS
    assert paged.tolist() == whole.tolist()
