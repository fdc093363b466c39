"""Bar streams (:mod:`mt5gate.session.candles`) over a real session on the simulator.

The simulator's clock is virtual (Tuesday 10:00 server time) and moved by the test through the
session's worker thread; the poller sleeps on the session's ManualClock. A bar closes when the
simulated clock passes its end, so every assertion is about bars the terminal itself made.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5NotFoundError, MT5StateError, MT5ValidationError
from mt5gate.session.candles import Bar, stream_bars
from tests.session.conftest import TUESDAY_10, Harness
from tests.session.test_streams import collect, on_worker, polls, stats, wait_until

M1, M5 = int(Timeframe.M1), int(Timeframe.M5)
TEN_AM = TUESDAY_10 // 1000  # the open time of the simulator's 10:00 bars


async def advance(h: Harness, seconds: float) -> None:
    """Move the simulated server clock (on the worker: the one thread that touches it)."""
    clock: Any = h.terminal.clock
    await on_worker(h, lambda: clock.advance(seconds))


async def rates_of(h: Harness, symbol: str, timeframe: int, count: int) -> dict[int, Bar]:
    """The last ``count`` bars as ``get_rates`` gives them, as closed bars by open time."""
    array = await h.session.get_rates(symbol, timeframe, count=count)
    name = Timeframe(timeframe).name
    rows = [dict(zip(array.dtype.names, row, strict=True)) for row in array.tolist()]
    return {row["time"]: Bar(symbol, name, closed=True, **row) for row in rows}


def closed(bars: list[Bar]) -> list[Bar]:
    return [bar for bar in bars if bar.closed]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_each_bar_closes_once_in_order_as_get_rates_has_it(harness: Harness) -> None:
    async def main() -> None:
        got: list[Bar] = []
        task = collect(stream_bars(harness.session, [("EURUSD", M1)]), got)
        await wait_until(lambda: len(got) >= 1)
        first = got[0]
        assert (first.symbol, first.timeframe, first.closed) == ("EURUSD", "M1", False)
        for _ in range(3):  # one minute at a time: each round sees one bar close
            target = got[-1].time + 60
            await advance(harness, 60)
            await wait_until(lambda: got[-1].time >= target)  # noqa: B023 (awaited at once)
        await advance(harness, 5 * 60 + 30)  # five bars close between two rounds
        await polls(harness, 3)
        done = closed(got)
        truth = await rates_of(harness, "EURUSD", M1, 20)
        times = [bar.time for bar in done]
        assert times == sorted(set(times))  # in order, each once
        assert times[0] == first.time
        assert times == [t for t in sorted(truth) if first.time <= t < got[-1].time]  # none skipped
        assert all(bar == truth[bar.time] for bar in done)  # the terminal's own values
        assert (
            len(done) >= 8
        )  # 3 closed one at a time, 5 at once (and one more if 10:00 had no tick yet)
        forming = [bar for bar in got if not bar.closed]
        assert [b.time for b in forming] == sorted(b.time for b in forming)
        await stop(task)

    harness.run(main())


def test_no_bar_is_skipped_across_a_terminal_restart(harness: Harness) -> None:
    async def main() -> None:
        got: list[Bar] = []
        task = collect(stream_bars(harness.session, [("EURUSD", M1)]), got)
        await wait_until(lambda: len(got) >= 1)
        first = got[0]
        await on_worker(harness, harness.terminal.restart)  # IPC lost, Market Watch forgotten
        await advance(harness, 3 * 60 + 10)
        target = first.time + 3 * 60
        await wait_until(lambda: got[-1].time >= target, timeout_s=10)
        done = closed(got)
        truth = await rates_of(harness, "EURUSD", M1, 20)
        expected = [t for t in sorted(truth) if first.time <= t < got[-1].time]
        assert [bar.time for bar in done] == expected
        assert len(done) >= 3
        assert all(bar == truth[bar.time] for bar in done)
        await stop(task)

    harness.run(main())


def test_the_forming_bar_goes_out_again_only_when_it_changed(harness: Harness) -> None:
    async def main() -> None:
        got: list[Bar] = []
        task = collect(stream_bars(harness.session, [("EURUSD", M5)]), got)
        await advance(harness, 30)  # into the 10:00 bar (the clock starts on its first ms)
        await wait_until(lambda: len(got) > 0 and got[-1].time == TEN_AM)
        await polls(harness, 10)
        seen = len(got)
        await polls(harness, 10)
        assert len(got) == seen  # the clock stood still: nothing new
        await advance(harness, 20)  # within the same M5 bar: ticks move it
        await wait_until(lambda: len(got) > seen)
        assert [bar.time for bar in got[seen - 1 :]] == [TEN_AM] * (len(got) - seen + 1)
        assert got[-1] != got[seen - 1]
        assert all(got[i] != got[i + 1] for i in range(len(got) - 1))
        await stop(task)

    harness.run(main())


def test_subscribers_share_one_poller_and_a_late_one_gets_the_forming_bar(
    harness: Harness,
) -> None:
    async def main() -> None:
        a: list[Bar] = []
        b: list[Bar] = []
        task_a = collect(stream_bars(harness.session, [("EURUSD", M1), ("GBPUSD", M1)]), a)
        await wait_until(lambda: {bar.symbol for bar in a} == {"EURUSD", "GBPUSD"})
        task_b = collect(stream_bars(harness.session, [("EURUSD", M1)]), b)
        await wait_until(lambda: len(b) == 1)
        assert b[0] == next(bar for bar in reversed(a) if bar.symbol == "EURUSD")
        assert stats(harness, "bars").subscribers == 2
        assert stats(harness, "bars").polling
        await stop(task_a)
        await stop(task_b)
        assert stats(harness, "bars").subscribers == 0
        assert not stats(harness, "bars").polling

    harness.run(main())


def test_a_slow_subscriber_drops_its_oldest_bars_and_counts_them(harness: Harness) -> None:
    async def main() -> None:
        fast: list[Bar] = []
        task = collect(stream_bars(harness.session, [("EURUSD", M1)]), fast)
        slow = stream_bars(harness.session, [("EURUSD", M1)], buffer=2)
        await anext(slow)  # subscribed; now it stops reading
        await wait_until(lambda: len(fast) >= 1)
        for _ in range(4):
            target = fast[-1].time + 60
            await advance(harness, 60)
            await wait_until(lambda: fast[-1].time >= target)  # noqa: B023 (awaited at once)
        kept = [await anext(slow) for _ in range(2)]
        assert kept == fast[-2:]  # the newest two: a closed bar and the forming one
        assert stats(harness, "bars").dropped > 0
        await slow.aclose()
        await stop(task)

    harness.run(main())


def test_an_unknown_symbol_ends_its_iteration_with_not_found(harness: Harness) -> None:
    async def main() -> None:
        stream = stream_bars(harness.session, [("EURUSX", M1)])
        with pytest.raises(MT5NotFoundError) as caught:
            await anext(stream)
        assert caught.value.code == -4
        await stream.aclose()

    harness.run(main())


@pytest.mark.parametrize(
    ("bars", "field"),
    [([("EURUSD", 7)], "timeframe"), ([("EURUSD", True)], "timeframe"), ([], "bars")],
)
def test_bad_keys_are_refused_before_anything_runs(
    harness: Harness, bars: list[tuple[str, int]], field: str
) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        stream_bars(harness.session, bars)
    assert caught.value.field == field


def test_a_closed_session_ends_the_bar_stream(harness: Harness) -> None:
    async def main() -> None:
        got: list[Bar] = []
        task = collect(stream_bars(harness.session, [("EURUSD", M1)]), got)
        await wait_until(lambda: len(got) == 1)
        await harness.session.streams.close()
        await asyncio.wait_for(task, 5)
        with contextlib.suppress(StopAsyncIteration):
            stream = stream_bars(harness.session, [("EURUSD", M1)])
            with pytest.raises(MT5StateError, match="closed"):
                await anext(stream)

    harness.run(main())


def test_the_session_streams_bars_and_books_itself(harness: Harness) -> None:
    """``session.stream_bars`` / ``session.stream_book``: the same streams, from the session."""

    async def main() -> None:
        bars: list[Bar] = []
        books: list[Any] = []
        bar_task = collect(harness.session.stream_bars([("EURUSD", M1)]), bars)
        book_task = collect(harness.session.stream_book(["EURUSD"]), books)
        await wait_until(lambda: bool(bars) and bool(books))
        assert (bars[0].symbol, bars[0].timeframe) == ("EURUSD", "M1")
        assert books[0].symbol == "EURUSD"
        assert (len(books[0].bids) > 0, len(books[0].asks) > 0) == (True, True)
        await stop(bar_task)
        await stop(book_task)

    harness.run(main())
