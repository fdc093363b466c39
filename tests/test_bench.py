"""The service benchmark measures the same work on any day: its simulators start on a weekday
morning where every streamed symbol trades, and its latency arithmetic undoes the pinned clock's
shift. (The benchmark itself runs with ``make bench``; nothing here measures anything.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import httpx
import pytest
from bench import service_baseline, service_bench

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
