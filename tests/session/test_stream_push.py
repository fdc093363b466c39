"""The tick stream's reader (issue 19): with the simulator's ``TickWatch`` extension every tick
is handed out, in one worker job per round, and the poller sleeps until the next tick is due;
any other terminal is polled for its latest tick every ``interval_s``. On the session's manual
clock: no test waits for an interval. The simulator is changed only on the worker thread."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from mt5gate.errors import MT5DataError
from mt5gate.models import Price
from mt5gate.session import SessionObserver
from mt5gate.session.observer import LoggingObserver
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.base import TickWatch
from tests.session.conftest import PASSWORD, Harness, _harness
from tests.session.test_streams import collect, on_worker, polls, push, stats, wait_until


class _Plain:
    """The simulator seen as the ``MetaTrader5`` module: without ``ticks_after``."""

    def __init__(self, terminal: SimTerminal) -> None:
        self._terminal = terminal

    def __getattr__(self, name: str) -> Any:
        if name == "ticks_after":
            raise AttributeError(name)
        return getattr(self._terminal, name)


class Calls(SessionObserver):
    """Counts terminal calls by function."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.calls[function] = self.calls.get(function, 0) + 1


def _plain(h: Harness) -> None:
    plain = _Plain(h.terminal)
    assert not isinstance(plain, TickWatch)
    h.session.caller.terminal = plain  # type: ignore[assignment]
    h.session.terminal = plain  # type: ignore[assignment]


async def _recorded(h: Harness, symbol: str, after_msc: int, until_msc: int) -> list[Price]:
    """The ticks the simulator made after ``after_msc``, as the stream gives them."""
    rows = await on_worker(
        h, lambda: h.terminal.copy_ticks_range(symbol, after_msc // 1000, until_msc // 1000, -1)
    )
    assert rows is not None
    return [Price(symbol, r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows.tolist()
            if r[5] > after_msc]  # fmt: skip


def test_every_tick_is_handed_out_in_order_however_many_came_between_rounds(
    harness: Harness,
) -> None:
    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD", "GBPUSD"]), got)
        await wait_until(lambda: len(got) == 2)
        first = {p.symbol: p.time_msc for p in got}
        for _ in range(3):  # the market runs on: minutes of ticks between two rounds
            await on_worker(harness, lambda: harness.terminal.step(90))
        until = harness.terminal.clock.now_ms()
        expected = {s: await _recorded(harness, s, first[s], until) for s in first}
        total = 2 + sum(len(e) for e in expected.values())
        await wait_until(lambda: len(got) == total)
        for symbol, ticks in expected.items():
            assert len(ticks) > 20
            assert [p for p in got[2:] if p.symbol == symbol] == ticks
        times = [p.time_msc for p in got[2:]]
        assert times == sorted(times)
        await polls(harness, 5)
        assert len(got) == total
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_one_worker_job_per_round_for_all_the_symbols() -> None:
    calls = Calls()
    found = _harness(5001, PASSWORD, observer=calls)
    harness = next(found)

    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD", "GBPUSD", "USDJPY"]), got)
        await wait_until(lambda: len(got) == 3)
        before = dict(calls.calls)
        rounds = len(harness.clock.sleeps)
        await polls(harness, 10)
        done = len(harness.clock.sleeps) - rounds
        reads = calls.calls.get("ticks_after", 0) - before.get("ticks_after", 0)
        assert done <= reads <= done + 1
        assert calls.calls.get("symbol_info_tick", 0) == before.get("symbol_info_tick", 0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())
    next(found, None)  # closes the session


def test_the_poller_sleeps_until_the_next_tick_is_due(harness: Harness) -> None:
    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD"], interval_s=30.0), got)
        await wait_until(lambda: len(got) == 1)
        await polls(harness, 3)
        due_ms = await on_worker(harness, lambda: harness.terminal.market.next_tick_ms(["EURUSD"]))
        assert due_ms is not None
        now_ms = harness.terminal.clock.now_ms()
        assert harness.clock.sleeps[-1] == pytest.approx((due_ms - now_ms) / 1000)
        assert harness.clock.sleeps[-1] < 30.0
        await on_worker(harness, lambda: harness.terminal.step(ms=due_ms - now_ms))
        await wait_until(lambda: len(got) == 2)  # the tick that was due
        assert got[1].time_msc == due_ms
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_a_terminal_without_the_extension_is_polled_for_its_latest_tick(harness: Harness) -> None:
    _plain(harness)

    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD"], interval_s=0.02), got)
        await wait_until(lambda: len(got) == 1)
        await polls(harness, 5)
        assert set(harness.clock.sleeps[-5:]) == {0.02}
        market, bid = harness.terminal.market, got[0].bid
        ticks = await on_worker(  # two ticks in one job: no poll can come between them
            harness, lambda: (market.push_tick("EURUSD", bid + 0.0003),
                              market.push_tick("EURUSD", bid + 0.0004))
        )  # fmt: skip
        one, two = (Price.from_tick("EURUSD", tick) for tick in ticks)
        await wait_until(lambda: got[-1] == two)
        assert one not in got  # polling sees the latest tick only
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_a_symbol_that_left_market_watch_is_selected_again(harness: Harness) -> None:
    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["USDCAD"]), got)  # not selected at start
        await wait_until(lambda: len(got) == 1)
        await on_worker(harness, lambda: harness.terminal.symbol_select("USDCAD", False))
        await polls(harness, 3)
        assert not task.done()
        pushed = await push(harness, "USDCAD", got[0].bid + 0.0009)
        await wait_until(lambda: got[-1] == pushed)
        assert "USDCAD" in (harness.terminal.market_watch() or ())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_a_late_subscriber_gets_the_latest_tick_at_once(harness: Harness) -> None:
    async def main() -> None:
        early: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD"]), early)
        await wait_until(lambda: len(early) == 1)
        pushed = await push(harness, "EURUSD", early[0].bid + 0.0002)
        await wait_until(lambda: len(early) == 2)
        late = harness.session.stream_ticks(["EURUSD"])
        assert await asyncio.wait_for(anext(late), 1.0) == pushed
        await late.aclose()  # type: ignore[attr-defined]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_an_unknown_symbol_ends_only_its_own_readers(harness: Harness) -> None:
    async def main() -> None:
        good: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD"]), good)
        await wait_until(lambda: len(good) == 1)
        with pytest.raises(MT5DataError):
            async for _ in harness.session.stream_ticks(["NOSUCH"]):
                pass
        pushed = await push(harness, "EURUSD", good[0].bid + 0.0005)
        await wait_until(lambda: good[-1] == pushed)
        assert stats(harness, "ticks").subscribers == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


class Drops(SessionObserver):
    """Records stream_dropped reports."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, int]] = []

    def stream_dropped(self, stream: str, dropped: int) -> None:
        self.reports.append((stream, dropped))


def test_drops_are_reported_once_a_round_with_the_total(harness: Harness) -> None:
    drops = Drops()
    harness.session.observer = drops

    async def main() -> None:
        slow = harness.session.stream_ticks(["EURUSD"], buffer=2)
        await anext(slow)  # subscribed; it reads no more
        await on_worker(harness, lambda: harness.terminal.step(120))  # many ticks, one round
        await wait_until(lambda: bool(drops.reports))
        await polls(harness, 3)
        total = stats(harness, "ticks").dropped
        assert total > 10
        assert drops.reports == [("ticks#1", total)]  # one report for the round, not per item
        await slow.aclose()  # type: ignore[attr-defined]

    harness.run(main())


class _Collected(logging.Handler):
    """Keeps the messages of the one logger it is attached to (not the root's caplog, which an
    earlier test's logging configuration may have changed). The text is taken when the record
    is emitted: a handler further up (a redacting one an earlier test installed) may rewrite
    the record's ``args`` afterwards."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_log_says_a_slow_subscriber_s_drops_at_powers_of_two() -> None:
    log = logging.getLogger("test.drops")
    collected = _Collected()
    log.addHandler(collected)
    log.setLevel(logging.WARNING)
    log.disabled = False  # a dictConfig elsewhere in the run may have disabled existing loggers
    try:
        observer = LoggingObserver(log)
        for total in (1, 2, 3, 5, 7, 9, 15, 17, 18, 1000, 1030):
            observer.stream_dropped("ticks#1", total)
        observer.stream_dropped("ticks#2", 3)
    finally:
        log.removeHandler(collected)
    expected = [("ticks#1", n) for n in (1, 2, 5, 9, 17, 1000, 1030)] + [("ticks#2", 3)]
    assert collected.messages == [
        f"stream {stream}: slow subscriber, {n} items dropped so far" for stream, n in expected
    ]
