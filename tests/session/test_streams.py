"""Tick and trade-event streams over a real session on the simulator, paced by a manual clock.

The pollers sleep on the session's ManualClock, which only yields to the loop, so no test waits
for a poll interval. Changes to the simulator go through the session's worker thread (the one
thread that may touch the terminal), never from the test's thread while the worker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from mt5gate.errors import MT5DataError, MT5StateError, MT5ValidationError
from mt5gate.models import Price
from mt5gate.session import SessionObserver, SessionState
from mt5gate.session.streams import Streams, StreamStats, TradeEvent, TradeEventKind
from tests.session.conftest import Harness

T = TypeVar("T")
K = TradeEventKind


class DropRecorder(SessionObserver):
    """Records stream_dropped reports."""

    def __init__(self) -> None:
        self.drops: list[tuple[str, int]] = []

    def stream_dropped(self, stream: str, dropped: int) -> None:
        self.drops.append((stream, dropped))


async def on_worker(h: Harness, job: Callable[[], T]) -> T:
    """Run ``job`` on the terminal's worker thread (serialised with the session's calls)."""
    result: T = await h.session.worker.run("test", job, 5.0)
    return result


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Yield to the loop (and the worker thread) until ``condition`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


async def polls(h: Harness, rounds: int) -> None:
    """Let the pollers run ``rounds`` more sleeps of the manual clock."""
    target = len(h.clock.sleeps) + rounds
    await wait_until(lambda: len(h.clock.sleeps) >= target)


def collect(stream: AsyncIterator[T], into: list[T]) -> asyncio.Task[None]:
    """A task appending every item of ``stream`` to ``into``."""

    async def consume() -> None:
        async for item in stream:
            into.append(item)

    return asyncio.get_running_loop().create_task(consume())


def stats(h: Harness, kind: str) -> StreamStats:
    return next(s for s in h.session.streams.stats() if s.kind == kind)


async def push(h: Harness, symbol: str, bid: float) -> Price:
    tick = await on_worker(h, lambda: h.terminal.market.push_tick(symbol, bid))
    return Price.from_tick(symbol, tick)


# ---------------------------------------------------------------------------------- ticks


def test_ticks_start_with_the_current_quote_then_only_new_ones(harness: Harness) -> None:
    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD", "GBPUSD"]), got)
        await wait_until(lambda: len(got) == 2)
        assert {p.symbol for p in got} == {"EURUSD", "GBPUSD"}
        await polls(harness, 20)
        assert len(got) == 2  # nothing moved: nothing new
        pushed = await push(harness, "EURUSD", got[0].bid + 0.0007)
        await wait_until(lambda: len(got) == 3)
        assert got[2] == pushed
        await polls(harness, 20)
        assert len(got) == 3
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_slow_subscriber_drops_oldest_and_fast_one_is_unaffected(harness: Harness) -> None:
    recorder = DropRecorder()
    harness.session.observer = recorder

    async def main() -> None:
        fast: list[Price] = []
        fast_task = collect(harness.session.stream_ticks(["EURUSD"]), fast)
        slow = harness.session.stream_ticks(["EURUSD"], buffer=3)
        first = await anext(slow)  # subscribed; now it stops reading
        pushed = []
        for i in range(10):
            pushed.append(await push(harness, "EURUSD", first.bid + 0.0001 * (i + 1)))
            expected = i + 2
            await wait_until(lambda: len(fast) == expected)  # noqa: B023 (awaited at once)
        assert fast[1:] == pushed
        assert [await anext(slow) for _ in range(3)] == pushed[-3:]
        assert stats(harness, "ticks").dropped == 7
        assert recorder.drops[-1] == ("ticks#2", 7)
        assert [n for _, n in recorder.drops] == list(range(1, 8))
        await slow.aclose()
        fast_task.cancel()
        await asyncio.gather(fast_task, return_exceptions=True)

    harness.run(main())


def test_one_shared_poller_polls_the_union_at_the_shortest_interval(harness: Harness) -> None:
    async def main() -> None:
        a: list[Price] = []
        b: list[Price] = []
        tasks = [
            collect(harness.session.stream_ticks(["EURUSD"], interval_s=0.5), a),
            collect(harness.session.stream_ticks("GBPUSD", interval_s=0.02), b),
        ]
        await wait_until(lambda: len(a) == 1 and len(b) == 1)
        assert a[0].symbol == "EURUSD"
        assert b[0].symbol == "GBPUSD"
        await polls(harness, 5)
        assert harness.clock.sleeps[-1] == 0.02
        assert stats(harness, "ticks") == StreamStats("ticks", 2, True, 0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await wait_until(lambda: not stats(harness, "ticks").polling)

    harness.run(main())


def test_stream_survives_connection_loss_and_reconnect(harness: Harness) -> None:
    session, terminal = harness.session, harness.terminal

    async def main() -> None:
        got: list[Price] = []
        task = collect(session.stream_ticks(["EURUSD"]), got)
        await wait_until(lambda: len(got) == 1)
        terminal.faults.ipc_error("symbol_info_tick", times=6)
        attempts = session.connection.attempts
        await wait_until(lambda: session.connection.attempts > attempts)
        await wait_until(lambda: session.state == SessionState.CONNECTED and not task.done())
        await session.reconnect()  # an explicit reconnect too
        pushed = await push(harness, "EURUSD", got[0].bid + 0.0011)
        await wait_until(lambda: got[-1] == pushed)
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    harness.run(main())


def test_breaking_out_unsubscribes_and_stops_the_poller(harness: Harness) -> None:
    async def main() -> None:
        async for price in harness.session.stream_ticks(["EURUSD"]):
            assert price.symbol == "EURUSD"
            assert stats(harness, "ticks").polling
            break
        await wait_until(lambda: stats(harness, "ticks") == StreamStats("ticks", 0, False, 0))
        # a new subscriber starts a new poller
        async with contextlib.aclosing(harness.session.stream_ticks(["EURUSD"])) as again:
            assert (await anext(again)).symbol == "EURUSD"
        assert stats(harness, "ticks").subscribers == 0

    harness.run(main())


def test_cancelling_the_consumer_unsubscribes(harness: Harness) -> None:
    async def main() -> None:
        got: list[Price] = []
        task = collect(harness.session.stream_ticks(["EURUSD"]), got)
        await wait_until(lambda: len(got) == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert stats(harness, "ticks").subscribers == 0
        await wait_until(lambda: not stats(harness, "ticks").polling)

    harness.run(main())


def test_close_ends_every_iteration(harness: Harness) -> None:
    async def main() -> None:
        ticks: list[Price] = []
        events: list[TradeEvent] = []
        tasks = [
            collect(harness.session.stream_ticks(["EURUSD"]), ticks),
            collect(harness.session.trade_events(), events),
        ]
        await wait_until(lambda: len(ticks) == 1 and stats(harness, "trade_events").polling)
        await harness.session.streams.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 2.0)  # ended normally
        assert all(not s.polling and s.subscribers == 0 for s in harness.session.streams.stats())
        with pytest.raises(MT5StateError):
            await anext(harness.session.stream_ticks(["EURUSD"]))

    harness.run(main())


def test_session_close_ends_streams() -> None:
    from tests.session.conftest import make_session

    async def main() -> None:
        session, _, _ = make_session()
        await session.connect()
        got: list[Price] = []
        task = collect(session.stream_ticks(["EURUSD"]), got)
        await wait_until(lambda: len(got) == 1)
        await session.close()
        await asyncio.wait_for(task, 2.0)

    asyncio.run(main())


def test_a_stream_whose_session_closed_underneath_ends() -> None:
    from tests.session.conftest import make_session

    async def main() -> None:
        session, _, _ = make_session()
        await session.connect()
        streams = Streams(session)  # not the session's own: close() does not reach it
        got: list[Price] = []
        task = collect(streams.ticks(["EURUSD"]), got)
        await wait_until(lambda: len(got) == 1)
        await session.close()
        await asyncio.wait_for(task, 2.0)
        await streams.close()

    asyncio.run(main())


def test_unknown_symbol_ends_its_stream_with_the_error(harness: Harness) -> None:
    async def main() -> None:
        with pytest.raises(MT5DataError):
            async for _ in harness.session.stream_ticks(["NOSUCH"]):
                pass

    harness.run(main())


def test_bad_arguments_fail_at_once(harness: Harness) -> None:
    streams = harness.session.streams
    with pytest.raises(ValueError, match="at least one symbol"):
        streams.ticks([])
    with pytest.raises(MT5ValidationError):
        streams.ticks([""])
    with pytest.raises(ValueError, match="buffer"):
        streams.ticks(["EURUSD"], buffer=0)
    with pytest.raises(ValueError, match="interval_s"):
        streams.trade_events(interval_s=0)


def test_poller_bug_ends_iterations_with_the_error(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(symbol: str) -> Price:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.session, "get_price", broken)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            await anext(harness.session.stream_ticks(["EURUSD"]))

    harness.run(main())


# ---------------------------------------------------------------------------- trade events


async def send(h: Harness, **request: Any) -> Any:
    """order_send through the session's call path (the trading module is not needed here)."""
    result = await h.session.call("order_send", request)
    assert result.retcode == 10009, result
    return result


async def trade_round_trip(h: Harness, events: list[TradeEvent]) -> None:
    """Open, modify, close a position; place and cancel a pending order; one step at a time."""
    quote = await h.session.get_price("EURUSD")
    opened = await send(h, action=1, symbol="EURUSD", volume=0.1, type=0, type_filling=1)
    await wait_until(lambda: len(events) == 2)
    await push(h, "EURUSD", quote.bid + 0.0005)  # price_current and profit move: no event
    await polls(h, 10)
    assert len(events) == 2
    sl, tp = round(quote.bid - 0.01, 5), round(quote.bid + 0.01, 5)
    await send(h, action=6, symbol="EURUSD", position=opened.order, sl=sl, tp=tp)
    await wait_until(lambda: len(events) == 3)
    await send(h, action=1, symbol="EURUSD", volume=0.1, type=1, position=opened.order,
               type_filling=1)  # fmt: skip
    await wait_until(lambda: len(events) == 5)
    price = round(quote.ask - 0.01, 5)
    placed = await send(h, action=5, symbol="EURUSD", volume=0.1, type=2, price=price,
                        type_filling=2)  # fmt: skip
    await wait_until(lambda: len(events) == 6)
    await send(h, action=8, order=placed.order)
    await wait_until(lambda: len(events) == 7)


def test_trade_events_for_open_modify_close_place_cancel(harness: Harness) -> None:
    async def main() -> list[TradeEvent]:
        events: list[TradeEvent] = []
        task = collect(harness.session.trade_events(), events)
        await wait_until(lambda: stats(harness, "trade_events").polling)
        await polls(harness, 3)  # the baseline is taken
        await trade_round_trip(harness, events)
        await polls(harness, 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return events

    events = harness.run(main())
    assert [e.kind for e in events] == [
        K.DEAL_ADDED,
        K.POSITION_OPENED,
        K.POSITION_CHANGED,
        K.DEAL_ADDED,
        K.POSITION_CLOSED,
        K.ORDER_PLACED,
        K.ORDER_REMOVED,
    ]
    assert [e.seq for e in events] == list(range(1, 8))
    position = events[1].ticket
    assert {e.ticket for e in events if e.kind.startswith("position")} == {position}
    assert events[2].item is not None
    assert events[2].item.sl > 0
    assert events[5].ticket == events[6].ticket


def test_existing_trades_are_the_baseline_and_seq_continues(harness: Harness) -> None:
    async def listen(symbol: str, **options: Any) -> list[TradeEvent]:
        events: list[TradeEvent] = []
        task = collect(harness.session.trade_events(**options), events)
        await wait_until(lambda: stats(harness, "trade_events").polling)
        await polls(harness, 5)  # the baseline is taken
        await send(harness, action=1, symbol=symbol, volume=0.1, type=0, type_filling=1)
        await wait_until(lambda: len(events) == 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await wait_until(lambda: not stats(harness, "trade_events").polling)
        return events

    async def main() -> list[TradeEvent]:
        await send(harness, action=1, symbol="EURUSD", volume=0.1, type=0, type_filling=1)
        return await listen("GBPUSD") + await listen("USDJPY", interval_s=0.1)

    events = harness.run(main())
    symbols = [e.item.symbol for e in events]  # type: ignore[union-attr]
    assert symbols == ["GBPUSD", "GBPUSD", "USDJPY", "USDJPY"]
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_trade_events_ride_out_terminal_failures(harness: Harness) -> None:
    async def main() -> list[TradeEvent]:
        harness.terminal.faults.ipc_error("positions_get", times=4)  # baseline and a round fail
        events: list[TradeEvent] = []
        task = collect(harness.session.trade_events(), events)
        await wait_until(lambda: harness.session.connection.attempts >= 1)
        await wait_until(lambda: harness.session.state == SessionState.CONNECTED)
        await polls(harness, 20)
        await send(harness, action=1, symbol="EURUSD", volume=0.1, type=0, type_filling=1)
        await wait_until(lambda: len(events) == 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return events

    events = harness.run(main())
    assert [e.kind for e in events] == [K.DEAL_ADDED, K.POSITION_OPENED]


def test_pending_order_changes_are_events(harness: Harness) -> None:
    async def main() -> list[TradeEvent]:
        events: list[TradeEvent] = []
        quote = await harness.session.get_price("EURUSD")
        price = round(quote.ask - 0.01, 5)
        placed = await send(harness, action=5, symbol="EURUSD", volume=0.1, type=2, price=price,
                            type_filling=2)  # fmt: skip
        task = collect(harness.session.trade_events(), events)
        await polls(harness, 5)
        await send(harness, action=7, order=placed.order, price=round(price - 0.001, 5))
        await wait_until(lambda: len(events) == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return events

    (event,) = harness.run(main())
    assert event.kind == K.ORDER_CHANGED
    assert event.seq == 1
