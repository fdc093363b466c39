"""``GET tick`` through the ASGI app alone: what the app costs per request, without a server.

The service benchmark (``bench/service_bench.py``) measures whole servers over sockets, where
uvicorn, h11 and the event loop cost as much as the app and the machine's neighbours move every
figure. Here each app is called directly (``await app(scope, receive, send)``) by 64 concurrent
callers on one event loop, and the figure is CPU time per request (``time.process_time``, all
threads: the service's terminal worker included), so the ratios are steady from run to run:

- **baseline**: the bare FastAPI app of ``bench/service_baseline.py``, one-symbol simulator;
- **mt5gate serve**: the service's app (``create_app``) over a started gateway whose account
  runs the same one-symbol simulator, with the benchmark's read key;
- **mt5gate serve, FastAPI's handler everywhere**: the same, with the lean request handler
  (``mt5gate.service.lean``) switched off: every route answered by FastAPI's own handler, as
  before 2026-12-08.

Every response must be 200, or the run fails. Run alone: ``python -m bench.service_app``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import service_baseline
from bench.report import Row, render
from bench.service_bench import LEAN_SYMBOLS, SIM_START, TICK_PATH
from mt5gate.service import matching
from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import ApiKeySettings, default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.sim import RealClock, SimTerminal
from mt5gate.sim.clock import server_ms_of

__all__ = ["all_rows", "cost_us"]

CALLERS = 64
KEY = "mg_bench-app-key-0123456789abcdef0"
App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": TICK_PATH, "raw_path": TICK_PATH.encode(), "root_path": "",
        "query_string": b"", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


async def cost_us(app: App, headers: list[tuple[bytes, bytes]], count: int) -> float:
    """CPU µs per request over ``count`` requests from :data:`CALLERS` concurrent callers;
    RuntimeError if any answer is not 200."""
    request = {"type": "http.request", "body": b"", "more_body": False}
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(int(message["status"]))

    async def caller(calls: int) -> None:
        for _ in range(calls):
            await app(_scope(headers), receive, send)

    started = time.process_time()
    await asyncio.gather(*(caller(count // CALLERS) for _ in range(CALLERS)))
    spent = time.process_time() - started
    if statuses != {200}:
        raise RuntimeError(f"GET tick answered {sorted(statuses)}, not only 200")
    return spent / (count // CALLERS * CALLERS) * 1e6


async def _baseline_cost(count: int) -> float:
    app = service_baseline.create_app(datetime.fromisoformat(SIM_START), LEAN_SYMBOLS)
    await cost_us(app, [], min(count, 2_000))  # warm-up
    return await cost_us(app, [], count)


@contextmanager
def _fastapi_handlers(switched_off: bool) -> Iterator[None]:
    """While open, routes built get FastAPI's handler (when ``switched_off``)."""
    lean = matching.lean_handler
    if switched_off:
        matching.lean_handler = lambda route: None
    try:
        yield
    finally:
        matching.lean_handler = lean


async def _service_cost(count: int, *, lean: bool) -> float:
    keys = (ApiKeySettings(name="bench", hash=hash_api_key(KEY), scopes=frozenset({"read"}),
                           rate_per_minute=10**9, burst=10**9),)  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        settings = default_settings().model_copy(
            update={"data_dir": Path(scratch), "api_keys": keys}
        )
        config = service_baseline.limited_simulator(LEAN_SYMBOLS)
        start = server_ms_of(datetime.fromisoformat(SIM_START))  # where the baseline starts
        gateway = Gateway.build(settings, os.environ, terminal_for=lambda account: SimTerminal(
            config=config, clock=RealClock(start_ms=start)))  # fmt: skip
        with _fastapi_handlers(not lean):
            app = create_app(gateway)
        await gateway.start()
        try:
            await _until_ready(gateway)
            headers = [(b"x-api-key", KEY.encode())]
            await cost_us(app, headers, min(count, 2_000))  # warm-up
            return await cost_us(app, headers, count)
        finally:
            await gateway.stop()


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Logger ``name`` says only errors while open."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _until_ready(gateway: Gateway, within_s: float = 30.0) -> None:
    """Wait until the demo account serves requests; RuntimeError after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not gateway.account("demo").ready:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo account was not ready within {within_s:.0f} s")
        await asyncio.sleep(0.01)


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """Best (lowest) CPU µs per request of each app over ``repeat`` runs, in turns."""
    count = 2_048 if quick else 20_480
    best = {"base": float("inf"), "lean": float("inf"), "fastapi": float("inf")}
    with _quiet("mt5gate.service"):  # each gateway's start-up news (health changes) is not ours
        for _ in range(repeat):
            best["base"] = min(best["base"], asyncio.run(_baseline_cost(count)))
            best["lean"] = min(best["lean"], asyncio.run(_service_cost(count, lean=True)))
            best["fastapi"] = min(best["fastapi"], asyncio.run(_service_cost(count, lean=False)))
    name = f"GET tick through the ASGI app alone, {CALLERS} callers"
    return [
        Row("service app", f"{name}: minimal FastAPI app (baseline)", best["base"], "us/request"),
        Row("service app", f"{name}: mt5gate serve", best["lean"], "us/request", "baseline",
            best["lean"] / best["base"]),
        Row("service app", f"{name}: mt5gate serve, FastAPI's handler everywhere",
            best["fastapi"], "us/request", "mt5gate serve", best["fastapi"] / best["lean"]),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(render(all_rows(args.repeat, args.quick)))


if __name__ == "__main__":
    main()
