"""The floor of the stream benchmark: the least a WebSocket server can do to broadcast ticks.

One ``/v1/stream`` route speaking the subset of the protocol the benchmark's clients use
(``subscribe`` to ``ticks``; ``subscribed`` and numbered ``tick`` messages of the same shape),
and one task on the event loop that reads the same paced simulator as the service's (same
configuration, same pinned clock) directly, with no session, worker thread, hub, bounded
buffers or keys: it sleeps until the next tick is due, takes every new tick with
``ticks_after``, encodes it once and queues it, numbered, for every subscriber of its symbol;
each connection's sender task writes its queue out (so one slow client holds up no other).
Under the same uvicorn settings as ``mt5gate serve``, it is what the same clients on the same
machine get at best: the fan-out of the service, without the service.
``GET /ticks?from_ms=&to_ms=`` counts the ticks its market made in a window (the offered rate).

    python -m bench.stream_floor --port P --rate R --symbols EURUSD,... --sim-start ISO \
        --clock-file PATH
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from bench._stream_host import paced_config
from mt5gate.sim import RealClock
from mt5gate.sim.clock import server_ms_of
from mt5gate.sim.terminal import SimTerminal

__all__ = ["create_app", "main"]

LOGIN, PASSWORD, SERVER = 5001, "sim-pass-5001", "MetaQuotes-Demo"


@dataclass(eq=False)
class _Client:
    """A subscriber: its socket, its message numbers and what waits to be sent (unbounded)."""

    websocket: WebSocket
    seq: count[int] = field(default_factory=lambda: count(1))
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def post(self, fields: str) -> None:
        self.queue.put_nowait(f'{{"seq":{next(self.seq)},{fields}}}')

    async def send_all(self) -> None:
        while True:
            await self.websocket.send_text(await self.queue.get())


def create_app(terminal: SimTerminal, symbols: Sequence[str]) -> FastAPI:
    """The one-route broadcaster over ``terminal`` (logged in to the demo account)."""
    readers: dict[str, list[_Client]] = {symbol: [] for symbol in symbols}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.ensure_future(_broadcast(terminal, readers))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPI(title="stream floor", lifespan=lifespan)

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/ticks")
    async def ticks(from_ms: int, to_ms: int) -> dict[str, int]:
        found = {}
        for symbol in symbols:
            rows = terminal.copy_ticks_range(symbol, from_ms // 1000, to_ms // 1000 + 1, -1)
            times = [] if rows is None else rows["time_msc"]
            found[symbol] = int(sum(1 for t in times if from_ms <= t < to_ms))
        return found

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        client = _Client(websocket)
        sender = asyncio.ensure_future(client.send_all())
        joined: list[str] = []
        try:
            while True:
                message = await websocket.receive_json()
                wanted = [s for s in message.get("ticks", ()) if s in readers]
                for symbol in wanted:
                    readers[symbol].append(client)
                    joined.append(symbol)
                names = json.dumps(wanted, separators=(",", ":"))
                client.post(f'"type":"subscribed","id":"s1","ticks":{names}')
        except WebSocketDisconnect:
            pass
        finally:
            for symbol in joined:
                readers[symbol].remove(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    return app


async def _broadcast(terminal: SimTerminal, readers: dict[str, list[_Client]]) -> None:
    """Every new tick to every reader of its symbol, as soon as it is due."""
    cursors = {}
    for symbol in readers:
        tick = terminal.symbol_info_tick(symbol)
        cursors[symbol] = (tick.time_msc, 1) if tick is not None else (0, 0)
    while True:
        batch = terminal.ticks_after(tuple((s, *c) for s, c in cursors.items()), 1000)
        if batch is None:
            raise RuntimeError(f"ticks_after failed: {terminal.last_error()}")
        for symbol, tick in batch.ticks:
            at, seen = cursors[symbol]
            cursors[symbol] = (at, seen + 1) if tick.time_msc == at else (tick.time_msc, 1)
            data = {"symbol": symbol, "bid": tick.bid, "ask": tick.ask, "last": tick.last,
                    "volume": tick.volume, "time_msc": tick.time_msc,
                    "flags": tick.flags}  # fmt: skip
            text = json.dumps(data, separators=(",", ":"))
            fields = f'"type":"tick","id":"s1","account":"demo","data":{text}'
            for client in readers[symbol]:
                client.post(fields)
        await asyncio.sleep(0.05 if batch.due_s is None else min(0.05, batch.due_s))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--symbols", required=True, help="comma-separated")
    parser.add_argument("--sim-start", type=datetime.fromisoformat, required=True)
    parser.add_argument("--clock-file", type=Path, required=True)
    args = parser.parse_args(argv)
    symbols = args.symbols.split(",")
    clock = RealClock(start_ms=server_ms_of(args.sim_start))
    args.clock_file.write_text(json.dumps({"shift_ms": clock.shift_ms,
                                           "utc_offset_s": clock.utc_offset_s}))  # fmt: skip
    terminal = SimTerminal(paced_config(symbols, args.rate), clock=clock)
    if not terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER):
        raise RuntimeError(f"the simulator refused the demo login: {terminal.last_error()}")
    for symbol in symbols:
        terminal.symbol_select(symbol, True)
    config = uvicorn.Config(
        create_app(terminal, symbols), host="127.0.0.1", port=args.port, log_level="warning",
        timeout_graceful_shutdown=20, server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
