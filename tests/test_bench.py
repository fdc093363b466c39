"""The service benchmark measures the same work on any day: its simulators start on a weekday
morning where every streamed symbol trades, and its latency arithmetic undoes the pinned clock's
shift. (The benchmark itself runs with ``make bench``; nothing here measures anything.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from bench import orders_bench, service_baseline, service_bench

from mt5gate.orders import EventKind, SqliteJournal
from mt5gate.sim import SimTerminal, VirtualClock
from mt5gate.sim.clock import server_ms_of

START = datetime.fromisoformat(service_bench.SIM_START)


def test_every_streamed_symbol_trades_where_the_benchmark_starts() -> None:
    now = SimTerminal(clock=VirtualClock(server_ms_of(START))).market.trading_now()
    assert set(service_bench.SYMBOLS) <= set(now.open)
    assert "EURUSD" in service_bench.TICK_PATH


def test_the_baseline_app_runs_on_the_pinned_clock() -> None:
    async def tick() -> httpx.Response:
        transport = httpx.ASGITransport(app=service_baseline.create_app(START))
        async with httpx.AsyncClient(transport=transport, base_url="http://baseline") as client:
            return await client.get("/v1/accounts/demo/symbols/EURUSD/tick")

    found = asyncio.run(tick())
    assert found.status_code == 200
    assert datetime.fromtimestamp(found.json()["time_msc"] / 1000, UTC).date() == date(2026, 1, 6)


def test_the_pinned_clocks_shift_is_recovered_from_the_ticks() -> None:
    shift = -(345 * 86_400 + 7_321) * 1000  # whole seconds, as a pinned RealClock's
    wall = 1_797_000_000_123  # machine time of the first tick, ms
    ticks = [
        ("EURUSD", wall + n * 997 + service_bench.SERVER_OFFSET_MS + shift,
         (wall + n * 997 + latency) * 1_000_000, n)
        for n, latency in enumerate((3, 48, 27, 12, 51, 30, 7, 44, 25))
    ]  # fmt: skip
    assert service_bench._clock_shift_ms(ticks) == shift
    assert service_bench._clock_shift_ms([]) == 0


def test_the_orders_benchmark_journals_every_order_on_disk(tmp_path: Path) -> None:
    """What the durable figure measures: each order's INTENT and SENT, then its outcome, in
    the SQLite file (read back from disk, not from the session's memory)."""
    path = tmp_path / "orders.db"
    asyncio.run(orders_bench._pipeline_rate(40, 4, path))
    with SqliteJournal(path, readonly=True) as journal:
        events = journal.events_after(orders_bench.LOGIN, 0, limit=1000)
    kinds: dict[int, list[EventKind]] = {}
    for event in events:
        kinds.setdefault(event.client_id.sequence, []).append(event.kind)
    assert len(kinds) == 40
    assert set(map(tuple, kinds.values())) == {
        (EventKind.INTENT, EventKind.SENT, EventKind.ACKNOWLEDGED)
    }


def test_the_orders_benchmark_runs_alone_with_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # its scratch journals go in the working directory
    assert orders_bench.main(["--count", "12", "--repeat", "1", "--callers", "3"]) == 0
    table = capsys.readouterr().out
    for row in ("raw SimTerminal call", "in-memory journal, 3 callers",
                "SQLite journal on disk, sequential", "SQLite journal on disk, 3 callers",
                "machine load"):  # fmt: skip
        assert row in table
    assert list(tmp_path.iterdir()) == []  # nothing left behind
