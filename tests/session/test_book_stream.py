"""Depth-of-market streams (:mod:`mt5gate.session.book`) over a real session on the simulator.

The session's observer counts the terminal calls, so the tests see how often the book was
added and released; the simulator's own snapshot says which books it holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from mt5gate.errors import MT5NotFoundError, MT5ValidationError
from mt5gate.session import SessionObserver
from mt5gate.session.book import Book, stream_book
from tests.session.conftest import Harness, make_session
from tests.session.test_streams import collect, on_worker, polls, push, stats, wait_until


class CallCounter(SessionObserver):
    """Counts finished terminal calls by function."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.calls[function] += 1


@pytest.fixture
def counted() -> Iterator[tuple[Harness, CallCounter]]:
    """A connected session whose observer counts its terminal calls."""
    counter = CallCounter()
    loop = asyncio.new_event_loop()
    session, sim, clock = make_session(observer=counter)
    loop.run_until_complete(session.connect())
    yield Harness(session, sim, clock, loop), counter
    loop.run_until_complete(session.close())
    loop.close()


async def books_held(h: Harness) -> list[str]:
    """The books the simulated terminal holds (read on the worker thread)."""
    snapshot = await on_worker(h, h.terminal.terminal_snapshot)
    return list(snapshot["books"])


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_the_book_comes_best_first_and_again_when_it_changes(harness: Harness) -> None:
    async def main() -> None:
        got: list[Book] = []
        task = collect(stream_book(harness.session, "EURUSD"), got)
        await wait_until(lambda: len(got) == 1)
        book = got[0]
        assert book.symbol == "EURUSD"
        assert book.bids
        assert book.asks
        bid_prices = [price for price, _ in book.bids]
        ask_prices = [price for price, _ in book.asks]
        assert bid_prices == sorted(bid_prices, reverse=True)  # best (highest) bid first
        assert ask_prices == sorted(ask_prices)  # best (lowest) ask first
        assert bid_prices[0] < ask_prices[0]
        levels = await harness.session.get_book("EURUSD")
        assert sorted(book.bids + book.asks) == sorted((lv.price, lv.volume) for lv in levels)
        await polls(harness, 10)
        assert len(got) == 1  # nothing moved: nothing new
        tick = await push(harness, "EURUSD", bid_prices[0] + 0.0010)
        await wait_until(lambda: len(got) == 2)
        assert got[1].bids[0][0] == tick.bid
        assert got[1].asks[0][0] == tick.ask
        await stop(task)

    harness.run(main())


def test_add_once_per_symbol_and_release_after_its_last_subscriber(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted

    async def main() -> None:
        a: list[Book] = []
        b: list[Book] = []
        c: list[Book] = []
        task_a = collect(stream_book(h.session, ["EURUSD"]), a)
        task_b = collect(stream_book(h.session, ["EURUSD", "GBPUSD"]), b)
        task_c = collect(stream_book(h.session, ["EURUSD"]), c)
        await wait_until(lambda: len(a) >= 1 and len(b) >= 2 and len(c) >= 1)
        await polls(h, 10)
        assert counter.calls["market_book_add"] == 2  # EURUSD and GBPUSD, once each
        assert await books_held(h) == ["EURUSD", "GBPUSD"]
        await stop(task_a, task_c)
        await polls(h, 5)
        assert counter.calls["market_book_release"] == 0  # b still reads EURUSD
        await stop(task_b)
        await wait_until(lambda: counter.calls["market_book_release"] == 2)
        assert await books_held(h) == []
        assert h.session.connection.subscriptions.books == set()  # not replayed any more
        assert not stats(h, "book").polling
        await asyncio.sleep(0.05)  # a stopped poller calls nothing more
        assert counter.calls["market_book_release"] == 2
        assert counter.calls["market_book_add"] == 2

    h.run(main())


def test_a_symbol_nobody_reads_any_more_is_released_while_others_stay(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted

    async def main() -> None:
        a: list[Book] = []
        b: list[Book] = []
        task_a = collect(stream_book(h.session, ["EURUSD"]), a)
        task_b = collect(stream_book(h.session, ["GBPUSD"]), b)
        await wait_until(lambda: len(a) >= 1 and len(b) >= 1)
        await stop(task_b)
        await wait_until(lambda: counter.calls["market_book_release"] == 1)
        assert await books_held(h) == ["EURUSD"]
        await stop(task_a)
        await wait_until(lambda: counter.calls["market_book_release"] == 2)

    h.run(main())


def test_a_restarted_terminal_gets_the_book_added_again(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted

    async def main() -> None:
        got: list[Book] = []
        task = collect(stream_book(h.session, ["EURUSD"]), got)
        await wait_until(lambda: len(got) >= 1)
        await on_worker(h, h.terminal.restart)  # IPC lost, Market Watch and books forgotten
        assert await books_held(h) == []
        await wait_until(lambda: counter.calls["market_book_add"] >= 2, timeout_s=10)
        while "EURUSD" not in await books_held(h):  # the reconnect's replay, or the poller
            await asyncio.sleep(0.01)
        seen = len(got)
        bid = got[-1].bids[0][0]
        await push(h, "EURUSD", bid + 0.0020)
        await wait_until(lambda: len(got) > seen, timeout_s=10)
        assert got[-1].bids[0][0] == pytest.approx(bid + 0.0020)
        await stop(task)

    h.run(main())


def test_an_unknown_symbol_ends_its_iteration_with_not_found(harness: Harness) -> None:
    async def main() -> None:
        stream = stream_book(harness.session, ["EURUSX"])
        with pytest.raises(MT5NotFoundError) as caught:
            await anext(stream)
        assert caught.value.code == -4
        await stream.aclose()

    harness.run(main())


def test_no_symbols_is_refused(harness: Harness) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        stream_book(harness.session, [])
    assert caught.value.field == "book"
