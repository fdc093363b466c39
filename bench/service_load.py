"""Load generators of the service benchmark, each run in its own process.

``python -m bench.service_load http SPEC``: a lean HTTP/1.1 client. ``connections`` keep-alive
connections (raw ``asyncio.open_connection``) each send one pre-built GET at a time and read the
status line, the headers and ``Content-Length`` bytes of body, until the wall-clock time ``t1``.
Requests started in ``[t0, t1)`` are counted (before ``t0`` is the warm-up). Prints one JSON
object: requests, errors (non-200 answers), seconds, latency p50/p99 in ms, the client's CPU
seconds in the window.

``python -m bench.service_load ws SPEC``: WebSocket clients of ``/v1/stream`` (the
``websockets`` asyncio client), one per entry of ``symbols``, each subscribed to the ticks of
that symbol. Prints ``ready N`` once N clients are subscribed, then reads ``t0 t1`` (wall-clock
seconds) on stdin, keeps reading until ``t1``, closes, and prints one JSON object with every
tick received (symbol, time_msc, receive time in ns since the epoch, client), the seq gaps, the
clients the server closed or never accepted, and the client's CPU seconds in the window.

SPEC is a JSON object (see ``HttpSpec`` and ``WsSpec``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

__all__ = ["HttpSpec", "WsSpec", "main", "percentile"]

_HEAD_END = b"\r\n\r\n"
_LENGTH = b"content-length:"
_HANDSHAKES = 16  # WebSocket handshakes in flight at once


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (nearest rank; 0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


# ------------------------------------------------------------------------------------ HTTP


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """What the HTTP client does: GET ``path`` on 127.0.0.1:``port`` until ``t1``."""

    port: int
    path: str
    key: str
    connections: int
    t0: float  # wall-clock seconds: the warm-up ends, counting starts
    t1: float  # counting and sending stop


@dataclass(slots=True)
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cpu: list[float] = field(default_factory=list)


def _request(spec: HttpSpec) -> bytes:
    return (
        f"GET {spec.path} HTTP/1.1\r\nHost: 127.0.0.1:{spec.port}\r\n"
        f"X-API-Key: {spec.key}\r\nAccept: */*\r\n\r\n"
    ).encode("ascii")


def _content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(_LENGTH)
    if at < 0:
        raise ValueError("a response without Content-Length")
    end = lower.find(b"\r\n", at)
    return int(lower[at + len(_LENGTH) : end])


async def _http_worker(spec: HttpSpec, request: bytes, tally: _Tally, shift: float) -> None:
    """One keep-alive connection, one request at a time; ``shift`` maps wall to perf time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", spec.port)
    t0, t1 = spec.t0 - shift, spec.t1 - shift
    try:
        while True:
            started = time.perf_counter()
            if started >= t1:
                return
            writer.write(request)
            head = await reader.readuntil(_HEAD_END)
            await reader.readexactly(_content_length(head))
            if started >= t0:
                if head[9:12] == b"200":
                    tally.latencies.append(time.perf_counter() - started)
                else:
                    tally.errors += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _cpu_marks(spec: HttpSpec | WsWindow, tally: _Tally) -> None:
    await _sleep_until(spec.t0)
    tally.cpu.append(time.process_time())
    await _sleep_until(spec.t1)
    tally.cpu.append(time.process_time())


async def _http(spec: HttpSpec) -> dict[str, Any]:
    request, tally = _request(spec), _Tally()
    shift = time.time() - time.perf_counter()
    workers = [_http_worker(spec, request, tally, shift) for _ in range(spec.connections)]
    await asyncio.gather(_cpu_marks(spec, tally), *workers)
    millis = [latency * 1000 for latency in tally.latencies]
    return {
        "requests": len(millis), "errors": tally.errors, "seconds": spec.t1 - spec.t0,
        "p50_ms": percentile(millis, 0.5), "p99_ms": percentile(millis, 0.99),
        "cpu_s": tally.cpu[1] - tally.cpu[0],
    }  # fmt: skip


# ------------------------------------------------------------------------------- WebSocket


@dataclass(frozen=True, slots=True)
class WsSpec:
    """What the WebSocket clients do: one client per entry of ``symbols``."""

    port: int
    key: str
    account: str
    symbols: list[str]
    batch: bool = False  # ``/v1/stream?batch=true``: every frame an array of messages


@dataclass(slots=True)
class WsWindow:
    """The measuring window (wall-clock seconds), known once the parent says so."""

    t0: float = float("inf")
    t1: float = float("inf")


@dataclass(slots=True)
class _Client:
    index: int
    symbol: str
    ticks: list[tuple[str, int, int, int]] = field(default_factory=list)
    seq: int = 0
    gaps: int = 0
    heartbeats: int = 0
    closing: bool = False
    dropped: bool = False


def _note(client: _Client, raw: str | bytes, received_ns: int) -> None:
    decoded = json.loads(raw)
    for message in decoded if isinstance(decoded, list) else [decoded]:
        _note_one(client, message, received_ns)


def _note_one(client: _Client, message: dict[str, Any], received_ns: int) -> None:
    seq = int(message["seq"])
    if seq != client.seq + 1:
        client.gaps += 1
    client.seq = seq
    kind = message["type"]
    if kind == "tick":
        data = message["data"]
        client.ticks.append((data["symbol"], int(data["time_msc"]), received_ns, client.index))
    elif kind == "heartbeat":
        client.heartbeats += 1


async def _read(client: _Client, websocket: ClientConnection) -> None:
    """Every message until the connection ends; an end we did not ask for is a drop."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in websocket:
            _note(client, raw, time.time_ns())
    if not client.closing:
        client.dropped = True


async def _subscribe(
    spec: WsSpec, client: _Client, gate: asyncio.Semaphore
) -> tuple[ClientConnection, asyncio.Task[None]]:
    url = f"ws://127.0.0.1:{spec.port}/v1/stream" + ("?batch=true" if spec.batch else "")
    async with gate:
        websocket = await connect(url, additional_headers={"X-API-Key": spec.key},
                                  close_timeout=2, open_timeout=30)  # fmt: skip
        request = {"op": "subscribe", "account": spec.account, "ticks": [client.symbol]}
        await websocket.send(json.dumps(request))
        first = await asyncio.wait_for(websocket.recv(), 30)
    _note(client, first, time.time_ns())
    answer = json.loads(first)
    if (answer[0] if isinstance(answer, list) else answer).get("type") != "subscribed":
        raise RuntimeError(f"subscribe refused: {first!r}")
    return websocket, asyncio.ensure_future(_read(client, websocket))


async def _ws(spec: WsSpec) -> dict[str, Any]:
    clients = [_Client(n, symbol) for n, symbol in enumerate(spec.symbols)]
    gate = asyncio.Semaphore(_HANDSHAKES)
    opened = await asyncio.gather(*(_subscribe(spec, c, gate) for c in clients),
                                  return_exceptions=True)  # fmt: skip
    live: list[tuple[_Client, tuple[ClientConnection, asyncio.Task[None]]]] = []
    failures: list[BaseException] = []
    for client, outcome in zip(clients, opened, strict=True):
        if isinstance(outcome, BaseException):
            failures.append(outcome)
        else:
            live.append((client, outcome))
    for failure in failures[:3]:
        print(f"service_load ws: a client failed: {failure!r}", file=sys.stderr)
    print(f"ready {len(live)}", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    window, tally = WsWindow(*map(float, line.split())), _Tally()
    await _cpu_marks(window, tally)
    for client, (websocket, _) in live:
        client.closing = True
        with contextlib.suppress(WebSocketException, OSError):
            await websocket.close()
    await asyncio.gather(*(reader for _, (_, reader) in live), return_exceptions=True)
    return {
        "ticks": [tick for client in clients for tick in client.ticks],
        "connected": len(live), "failed": len(failures),
        "dropped": sum(c.dropped for c, _ in live), "gaps": sum(c.gaps for c in clients),
        "heartbeats": sum(c.heartbeats for c in clients), "cpu_s": tally.cpu[1] - tally.cpu[0],
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """``http SPEC`` or ``ws SPEC``; the result is one JSON line on stdout."""
    kind, raw = argv if argv is not None else sys.argv[1:]
    if kind == "http":
        result = asyncio.run(_http(HttpSpec(**json.loads(raw))))
    elif kind == "ws":
        result = asyncio.run(_ws(WsSpec(**json.loads(raw))))
    else:
        raise SystemExit(f"unknown load {kind!r}: http or ws")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
