"""The bus against a real nats-server: de-duplication, the owner's event publisher across a
restart of the server and a second publisher, readers that resume, and a server that is down.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mt5gate.fleet import Bus, BusOptions, BusState, EventPublisher
from mt5gate.fleet.bus import BusConflictError, BusUnavailableError, TickInbox
from mt5gate.fleet.subjects import (
    MSG_ID_HEADER,
    encode_token,
    events_subject,
    message_id,
    ticks_subject,
)
from mt5gate.metrics import Metrics
from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.sqlite import SqliteStore
from mt5gate.orders.store import Fence
from tests.servers.nats import NatsServer

LOGIN = 5001
REQUEST = {"symbol": "BTCUSD", "volume": 0.01, "type": 0}


def options(server: NatsServer, **more: Any) -> BusOptions:
    return BusOptions(server.url, reconnect_wait_s=0.1, max_backoff_s=0.5, **more)


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def started(server: NatsServer, **more: Any) -> Bus:
    bus = Bus(options(server, **more))
    await bus.start()
    await asyncio.wait_for(bus.wait_connected(), 30)
    await bus.ensure_stream()
    return bus


async def read(bus: Bus, account: str, after: int, count: int) -> list[tuple[int, dict[str, Any]]]:
    """``count`` events of ``account`` after stream sequence ``after``."""
    got: list[tuple[int, dict[str, Any]]] = []
    events = bus.events(events_subject(account), after)
    try:
        async with asyncio.timeout(60):
            async for seq, payload in events:
                got.append((seq, json.loads(payload)))
                if len(got) == count:
                    break
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return got


class Journal:
    """A real SQLite store with the account's lease, writing one INTENT per ``write()``."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(SqliteJournal(path), name="test")
        self.fence: Fence | None = None

    async def open(self) -> Journal:
        self.fence = await self.store.acquire(LOGIN, "test", 60.0, {})
        return self

    async def write(self, count: int = 1) -> None:
        assert self.fence is not None
        for _ in range(count):
            await self.store.intent(self.fence, REQUEST, None)

    async def all_seqs(self) -> list[int]:
        return [e.seq for e in await self.store.events_after(LOGIN, 0, 10_000)]


def publisher(bus: Bus, journal: Journal, owned: Callable[[], bool] = lambda: True,
              **more: Any) -> EventPublisher:  # fmt: skip
    return EventPublisher(bus, journal.store, "demo", LOGIN, owned, poll_s=0.02, **more)


def running(coroutine: Awaitable[None]) -> asyncio.Task[None]:
    return asyncio.ensure_future(coroutine)


async def stopped(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_subject_tokens_are_legal_and_distinct() -> None:
    assert ticks_subject("demo", "EURUSD") == "mt5gate.demo.ticks.EURUSD"
    assert encode_token("EURUSD.m") == "EURUSD~2Em"
    assert encode_token("#AAPL") != encode_token("~23AAPL")
    assert " " not in encode_token("BTC USD*>")
    assert message_id("demo", 17, 42) == "demo.17.42"
    with pytest.raises(ValueError, match="empty"):
        encode_token("")


def test_the_same_message_id_twice_is_one_message(nats_server: NatsServer) -> None:
    async def main() -> None:
        bus = await started(nats_server)
        subject, headers = events_subject("demo"), {MSG_ID_HEADER: "demo.1.1"}
        assert await bus.publish_event(subject, b"{}", headers, expected_last=0) == (1, False)
        assert await bus.publish_event(subject, b"{}", headers, expected_last=1) == (1, True)
        with pytest.raises(BusConflictError):  # another publisher's view of the subject
            await bus.publish_event(subject, b"{}", {MSG_ID_HEADER: "x"}, expected_last=0)
        last = await bus.last_event(subject)
        assert last is not None
        assert last.stream_seq == 1
        assert await bus.last_event(events_subject("other")) is None
        assert [seq for seq, _ in await read(bus, "demo", 0, 1)] == [1]
        await bus.close()
        assert bus.state == BusState.CLOSED

    asyncio.run(main())


def test_the_publisher_survives_a_server_restart_without_loss_or_duplicate(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def main() -> None:
        journal = await Journal(tmp_path / "orders.db").open()
        metrics = Metrics()
        bus = await started(nats_server)
        task = running(publisher(bus, journal, metrics=metrics).run())
        await journal.write(20)
        restart = asyncio.get_running_loop().run_in_executor(
            None, nats_server.restart, 0.3
        )  # the server goes away while events are being written and published
        await journal.write(20)
        await restart
        await journal.write(20)
        got = await read(bus, "demo", 0, 60)
        assert [e["journal_seq"] for _, e in got] == await journal.all_seqs()
        assert [s for s, _ in got] == sorted({s for s, _ in got})
        assert got[0][1]["kind"] == "INTENT"
        assert got[0][1]["request"]["symbol"] == "BTCUSD"
        assert metrics.bus_published.labels("demo", "events")._value.get() >= 60
        await stopped(task)
        await bus.close()
        await journal.store.close()

    asyncio.run(main())


def test_two_publishers_of_one_account_never_repeat_an_event(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """An ex-owner that wakes up and the new owner both publish: the stream takes each journal
    event once, in journal order (the expected last sequence refuses the stale one)."""

    async def main() -> None:
        journal = await Journal(tmp_path / "orders.db").open()
        old, new = await started(nats_server), await started(nats_server)
        await journal.write(30)
        tasks = [running(publisher(old, journal).run()), running(publisher(new, journal).run())]
        await journal.write(30)
        got = await read(new, "demo", 0, 60)
        await asyncio.sleep(0.3)  # nothing more arrives
        assert [e["journal_seq"] for _, e in got] == await journal.all_seqs()
        last = await new.last_event(events_subject("demo"))
        assert last is not None
        assert last.stream_seq == got[-1][0]
        await stopped(*tasks)
        for bus in (old, new):
            await bus.close()
        await journal.store.close()

    asyncio.run(main())


def test_a_new_owner_resumes_after_the_last_published_event(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def main() -> None:
        journal = await Journal(tmp_path / "orders.db").open()
        bus = await started(nats_server)
        owner = {"first": True}
        first = publisher(bus, journal, lambda: owner["first"])
        task = running(first.run())
        await journal.write(5)
        await until(lambda: first.published == 5)
        owner["first"] = False
        await task  # it stops by itself once the account is not owned
        await journal.write(5)
        second = publisher(bus, journal)
        resumed = await second.resume()
        assert resumed.journal_seq == (await journal.all_seqs())[4]
        task = running(second.run())
        await until(lambda: second.published == 5)
        got = await read(bus, "demo", 0, 10)
        assert [e["journal_seq"] for _, e in got] == await journal.all_seqs()
        await stopped(task)
        await bus.close()
        await journal.store.close()

    asyncio.run(main())


def test_a_journal_the_stream_does_not_know_is_published_from_its_beginning(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def main() -> None:
        bus = await started(nats_server)
        old = await Journal(tmp_path / "old.db").open()
        await old.write(3)
        first = publisher(bus, old)
        task = running(first.run())
        await until(lambda: first.published == 3)
        await stopped(task)
        await old.store.close()
        fresh = await Journal(tmp_path / "fresh.db").open()  # the journal was replaced
        await fresh.write(2)
        second = publisher(bus, fresh)
        assert (await second.resume()).journal_seq == 0
        task = running(second.run())
        await until(lambda: second.published == 2)
        got = await read(bus, "demo", 0, 5)
        assert [e["journal_seq"] for _, e in got] == [1, 2, 3, 1, 2]
        await stopped(task)
        await bus.close()
        await fresh.store.close()

    asyncio.run(main())


def test_a_reader_resumes_across_a_server_restart(nats_server: NatsServer, tmp_path: Path) -> None:
    async def main() -> None:
        journal = await Journal(tmp_path / "orders.db").open()
        bus = await started(nats_server)
        task = running(publisher(bus, journal).run())
        await journal.write(10)
        got: list[int] = []
        reader = bus.events(events_subject("demo"), 0)

        async def follow(events: AsyncIterator[tuple[int, bytes]]) -> None:
            async for _, payload in events:
                got.append(json.loads(payload)["journal_seq"])

        following = running(follow(reader))
        await until(lambda: len(got) == 10)
        await asyncio.get_running_loop().run_in_executor(None, nats_server.restart, 0.2)
        await journal.write(10)
        await until(lambda: len(got) == 20, timeout_s=30)
        await asyncio.sleep(0.3)
        assert got == await journal.all_seqs()
        await stopped(following, task)
        await bus.close()
        await journal.store.close()

    asyncio.run(main())


def test_a_bus_whose_server_is_down_keeps_trying_and_never_raises(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "store")  # not started yet

    async def main() -> None:
        bus = Bus(options(server))
        await bus.start()
        await asyncio.sleep(0.4)
        assert bus.state == BusState.STARTING
        assert "cannot connect" in bus.reason
        assert not await bus.publish("mt5gate.demo.interest", b"{}")  # dropped, not raised
        with pytest.raises(BusUnavailableError):
            await bus.publish_event(events_subject("demo"), b"{}", {}, expected_last=0)
        starting = asyncio.get_running_loop().run_in_executor(None, server.start)
        await starting
        await asyncio.wait_for(bus.wait_connected(), 30)
        inbox = TickInbox(2)
        ticks = bus.ticks("mt5gate.demo.ticks.>", inbox)
        first = asyncio.ensure_future(anext(ticks))
        await asyncio.sleep(0.2)  # subscribed
        assert await bus.publish(ticks_subject("demo", "EURUSD"), b"0")
        assert await first == b"0"
        for n in range(3):  # nobody reads: the oldest is dropped
            inbox.push(str(n).encode())
        assert inbox.dropped == 1
        assert await anext(ticks) == b"1"
        await ticks.aclose()  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(None, server.stop)
        await until(lambda: bus.state == BusState.DISCONNECTED)
        await bus.close()

    try:
        asyncio.run(main())
    finally:
        server.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("nats")]
