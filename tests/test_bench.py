"""The service and stream benchmarks measure the same work on any day: their simulators start
on a weekday morning where every streamed symbol trades, and their latency arithmetic undoes the
pinned clock's shift. (The benchmarks run with ``make bench``; nothing here measures anything.)"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench import (
    _stream_host,
    orders_bench,
    service_app,
    service_baseline,
    service_bench,
    service_load,
    stream_bench,
    stream_floor,
    terminal_paths,
)
from fastapi import FastAPI, HTTPException

from mt5gate.orders import EventKind, SqliteJournal
from mt5gate.sim import RealClock, SimTerminal, VirtualClock
from mt5gate.sim.clock import server_ms_of
from mt5gate.sim.market import default_catalogue
from mt5gate.terminal.base import TickWatch

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


def test_the_lean_pair_simulates_only_its_symbols() -> None:
    """The second service/baseline pair runs on a simulator of ``LEAN_SYMBOLS`` only, so that a
    terminal call costs what a real terminal's does; a name outside the catalogue is refused."""
    config = service_baseline.limited_simulator(service_bench.LEAN_SYMBOLS)
    assert config.symbols is not None
    assert [spec.name for spec in config.symbols] == list(service_bench.LEAN_SYMBOLS)
    with pytest.raises(SystemExit, match="NOSUCH"):
        service_baseline.limited_simulator(["EURUSD", "NOSUCH"])

    async def ticks() -> list[int]:
        app = service_baseline.create_app(START, service_bench.LEAN_SYMBOLS)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baseline") as client:
            return [(await client.get(f"/v1/accounts/demo/symbols/{name}/tick")).status_code
                    for name in ("EURUSD", "GBPUSD")]  # fmt: skip

    assert asyncio.run(ticks()) == [200, 404]


# ----------------------------------------------------------------------------- stream bench


def test_every_symbol_of_the_stream_bench_trades_where_it_starts() -> None:
    start = datetime.fromisoformat(stream_bench.SIM_START)
    now = SimTerminal(clock=VirtualClock(server_ms_of(start))).market.trading_now()
    assert set(stream_bench.SYMBOLS) <= set(now.open)


def test_the_paced_simulator_makes_the_rate_asked_for_on_its_weekday() -> None:
    """On a virtual clock at the bench's start (whatever today is): its symbols only, at the
    pace asked (a little fewer: a quote arrival that moves nothing is no tick)."""
    config = _stream_host.paced_config(stream_bench.SYMBOLS, 500.0)
    assert config.ticks_per_s == 500.0
    start = server_ms_of(datetime.fromisoformat(stream_bench.SIM_START))
    sim = SimTerminal(config, clock=VirtualClock(start))
    assert {s.name for s in sim.market.symbols()} == set(stream_bench.SYMBOLS)
    sim.step(20)
    made = sum(len(sim.market.copy_ticks_range(s, start // 1000, start // 1000 + 20, -1))
               for s in stream_bench.SYMBOLS)  # fmt: skip
    assert 0.8 * 500 * 20 < made <= 1.05 * 500 * 20


def test_the_poll_design_is_the_simulator_without_its_extension() -> None:
    assert isinstance(SimTerminal(), TickWatch)
    assert not isinstance(_stream_host.PolledSim(), TickWatch)


def test_a_tree_without_a_pace_setting_gets_the_same_pace_from_its_specs() -> None:
    specs = tuple(s for s in default_catalogue() if s.name in stream_bench.SYMBOLS)
    scaled = _stream_host._scaled(specs, 100.0)
    assert sum(1000 / s.mean_tick_interval_ms for s in scaled) == pytest.approx(100, rel=0.02)


class _Reader:
    """A floor client's WebSocket, recording what it is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))


def test_the_floor_broadcasts_ticks_in_the_service_s_message_shape() -> None:
    start = server_ms_of(datetime.fromisoformat(stream_bench.SIM_START))
    sim = SimTerminal(_stream_host.paced_config(["EURUSD"], 200.0),
                      clock=RealClock(start_ms=start))  # fmt: skip
    assert sim.initialize(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo")
    reader = _Reader()

    async def main() -> httpx.Response:
        client = stream_floor._Client(reader)  # type: ignore[arg-type]
        tasks = [asyncio.ensure_future(stream_floor._broadcast(sim, {"EURUSD": [client]})),
                 asyncio.ensure_future(client.send_all())]  # fmt: skip
        while len(reader.sent) < 3:
            await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        at = reader.sent[0]["data"]["time_msc"]
        transport = httpx.ASGITransport(app=stream_floor.create_app(sim, ["EURUSD"]))
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as http:
            return await http.get("/ticks", params={"from_ms": at, "to_ms": at + 1})

    counted = asyncio.run(main())
    assert [m["seq"] for m in reader.sent[:3]] == [1, 2, 3]
    first = reader.sent[0]
    assert (first["type"], first["id"], first["account"]) == ("tick", "s1", "demo")
    assert set(first["data"]) == {"symbol", "bid", "ask", "last", "volume", "time_msc", "flags"}
    times = [m["data"]["time_msc"] for m in reader.sent[:3]]
    assert times == sorted(set(times))
    assert counted.json() == {"EURUSD": 1}


def test_stream_figures_come_from_the_receipts_in_the_window() -> None:
    offset = 7_200_000 - 86_400_000  # tick time minus machine time
    made = [1_000_000 + n * 10 for n in range(10)]  # machine ms, 10 ticks in the window
    ticks = [["EURUSD", m + offset, int((m + 2 + c) * 1e6), c] for m in made for c in range(20)]
    ticks.append(["EURUSD", 2_000_000 + offset, int(2_000_001 * 1e6), 0])  # after the window
    result = {"ticks": ticks, "dropped": 0, "failed": 1, "gaps": 2, "cpu_s": 0.5}
    run = stream_bench._figures("push", 10.0, [result], offset, (1_000_000, 1_001_000), 12,
                                3, 0.25)  # fmt: skip
    assert run.offered == 12.0
    assert run.delivered == 10.0
    assert run.messages == 200.0
    assert run.complete == pytest.approx(200 / (12 * 20))
    assert run.p50_ms == pytest.approx(12.0)
    assert run.max_ms == pytest.approx(21.0)
    assert run.spread_p99_ms == pytest.approx(19.0)
    assert run.drops == 1 + 2 + 3


def test_stream_rows_compare_push_with_the_floor_and_the_poll_design() -> None:
    def run(design: str, p50: float, p99: float) -> stream_bench.StreamRun:
        return stream_bench.StreamRun(design, 200.0, 190.0, 190.0, 3800.0, 1.0, p50, p99,
                                      p99, 1.0, 0, 0, 0, 0.2, 0.3)  # fmt: skip

    rows = stream_bench.rows([run("floor", 2.0, 8.0), run("push", 3.0, 12.0),
                              run("poll", 27.0, 60.0)])  # fmt: skip
    found = {row.name.split(": ", 1)[1]: row for row in rows}
    assert found["latency p99"].value == 12.0
    assert found["latency p99"].ratio == pytest.approx(1.5)
    assert found["poll every 50 ms (before), latency p50"].ratio == pytest.approx(9.0)
    assert found["ticks offered"].value == 190.0


def test_stream_rows_give_the_batched_design_its_own_rows_against_the_floor() -> None:
    def run(design: str, p50: float, p99: float, drops: int = 0) -> stream_bench.StreamRun:
        return stream_bench.StreamRun(design, 2000.0, 1800.0, 1800.0, 36000.0, 1.0, p50, p99,
                                      p99, 1.0, 0, 0, drops, 0.9, 1.0)  # fmt: skip

    rows = stream_bench.rows([run("floor", 50.0, 200.0), run("push", 900.0, 1800.0, 400),
                              run("batch", 50.0, 100.0)])  # fmt: skip
    found = {row.name.split(" ticks/s", 1)[1]: row for row in rows}
    assert found[" (?batch=true): latency p99"].ratio == pytest.approx(0.5)
    assert found[" (?batch=true): dropped (clients, gaps, buffer items)"].value == 0
    assert found[": dropped (clients, gaps, buffer items)"].value == 400
    assert found[": latency p50"].ratio == pytest.approx(18.0)
    assert not any("poll" in name for name in found)


def test_the_stream_client_counts_every_message_of_a_batched_frame() -> None:
    client = service_load._Client(0, "EURUSD")
    frame = [{"seq": 1, "type": "subscribed", "id": "s1"},
             {"seq": 2, "type": "tick", "data": {"symbol": "EURUSD", "time_msc": 5}},
             {"seq": 4, "type": "heartbeat", "time_ms": 6}]  # fmt: skip
    service_load._note(client, json.dumps(frame), 99)
    service_load._note(client, json.dumps({"seq": 5, "type": "pong"}), 100)
    assert client.ticks == [("EURUSD", 5, 99, 0)]
    assert (client.seq, client.gaps, client.heartbeats) == (5, 1, 1)


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


def test_the_app_alone_benchmark_measures_three_apps_answering_200() -> None:
    """``bench/service_app.py``: the baseline, the service, and the service on FastAPI's handler
    each answer GET tick (every answer 200, or no figure), on the pinned weekday clock."""
    rows = service_app.all_rows(repeat=1, quick=True)
    assert [row.name.rsplit(": ", 1)[1] for row in rows] == [
        "minimal FastAPI app (baseline)", "mt5gate serve", "mt5gate serve, FastAPI's handler "
        "everywhere"]  # fmt: skip
    assert all(row.value > 0 for row in rows)


def test_the_app_alone_benchmark_refuses_a_run_with_errors() -> None:
    """An answer other than 200 fails the run instead of being counted as a request."""
    app = FastAPI()

    @app.get(service_bench.TICK_PATH)
    async def refused() -> None:
        raise HTTPException(401, "no key")

    with pytest.raises(RuntimeError, match=r"\[401\]"):
        asyncio.run(service_app.cost_us(app, [], 64))


def _affinities(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]


@pytest.mark.skipif(not terminal_paths.can_place(), reason="needs Linux and two CPUs")
def test_a_placement_pins_every_thread_of_the_servers_and_is_undone() -> None:
    """The head to head's placements move every thread of a server (a process's affinity
    call alone moves only its main thread), and put everything back afterwards."""
    server = subprocess.Popen([sys.executable, "-c", "import threading, time; threading.Thread("
                               "target=time.sleep, args=(60,)).start(); print(1, flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "1"
        everyone = os.sched_getaffinity(0)
        first, second = sorted(everyone)[:2]
        assert len(_affinities(server.pid)) == 2
        with terminal_paths.placed("separate cores", [server.pid]):
            assert _affinities(server.pid) == [{second}, {second}]
            assert _affinities(os.getpid())[0] == {first}
        with terminal_paths.placed("one core", [server.pid]):
            assert _affinities(server.pid) == [{first}, {first}]
        assert _affinities(server.pid) == [everyone, everyone]
        assert set(map(frozenset, _affinities(os.getpid()))) == {frozenset(everyone)}
    finally:
        server.kill()
        server.wait()
