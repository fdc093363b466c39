"""A standalone Prometheus exporter for one MT5 session, and latency analytics from Python.

What it shows (the guide is docs/guides/metrics.md):

* ``Metrics()`` owns every mt5gate metric on its own registry; the session feeds it through
  ``metrics.observer("demo")`` (terminal call durations by function and outcome, session and
  breaker state, reconnects, order events, journal writes), here next to the default
  ``LoggingObserver`` (``ObserverGroup``: ``observer=`` takes one observer);
* a loop reads the watched symbols' prices and runs ``probe()`` every ``--interval`` seconds,
  and ``metrics.observe_health("demo", reading)`` turns each reading into the health gauges
  (status, ping, tick age, broker clock offset, unresolved orders);
* ``metrics.render()`` is served on ``http://127.0.0.1:PORT/metrics``;
* at the end it reads the call-duration histogram back in Python and prints, per terminal
  function, the call count, the mean and an estimated p99 (as PromQL's ``histogram_quantile``
  estimates it from the buckets).

Why a tiny asyncio HTTP server rather than ``prometheus_client.start_http_server``: it serves
exactly ``metrics.render()`` (the body ``mt5gate serve`` answers on its own ``/metrics``) from
the event loop the session already runs on, so there is no extra thread, and it stops with the
rest of the program at ``--duration`` or on SIGTERM. ``start_http_server(port, addr,
registry=metrics.registry)`` serves the same registry from a thread, if you prefer it.

Run it on the simulated demo account (it says that the terminal is simulated)::

    .venv/bin/python examples/metrics_exporter.py --port 9108 --interval 5
    curl http://127.0.0.1:9108/metrics

Options: ``--duration S`` stops after S seconds, once at least one health reading is out
(default: until Ctrl+C / SIGTERM); ``--symbols EURUSD,GBPUSD`` the watched symbols;
``--demo-order`` buys and closes 0.01 lot once at the start, so that the order metrics have
something to show; ``--clock virtual`` runs the simulator at a still weekday morning of 2026
(tick age is then not judged: its ticks are "old" by the wall clock). The default simulator
follows the wall clock, so prices stand still and orders are refused at weekends, as on a
real forex server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
from dataclasses import dataclass

from mt5gate import MT5Error, MT5SessionManager, probe
from mt5gate.metrics import Metrics
from mt5gate.models import OrderRequest, Side
from mt5gate.session import LoggingObserver, ObserverGroup
from mt5gate.sim import RealClock, SimTerminal, VirtualClock

log = logging.getLogger("metrics_exporter")

ACCOUNT = "demo"  # the account label: a configured name, never the login number
CALLS = "mt5gate_terminal_call_duration_seconds"


# ------------------------------------------------------------------------------ the server


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """GET /metrics answers ``metrics.render()``; anything else 404. One request per
    connection (``Connection: close``), which is all a Prometheus scrape needs."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # the headers: not needed
            method, path = ([*request.decode("latin-1").split(), "", ""])[:2]
            if method in ("GET", "HEAD") and path.partition("?")[0] == "/metrics":
                status, (body, content_type) = "200 OK", metrics.render()
            else:
                status, body = "404 Not Found", b"Not found: the metrics are at /metrics\n"
                content_type = "text/plain; charset=utf-8"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)


# ------------------------------------------------------------------------ latency analytics


@dataclass(frozen=True, slots=True)
class Latency:
    """One series of the call-duration histogram."""

    function: str
    outcome: str
    count: int
    mean_s: float
    p99_s: float  # estimated from the buckets, as histogram_quantile(0.99, ...) does


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile on cumulative ``(upper bound, count)`` buckets: linear
    interpolation inside the bucket that holds the rank; the highest finite bound if the rank
    falls in the +Inf bucket."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if total == 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def call_latencies(metrics: Metrics, account: str = ACCOUNT) -> list[Latency]:
    """Every (function, outcome) series of the call-duration histogram, read from the registry."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    counts: dict[tuple[str, str], float] = {}
    sums: dict[tuple[str, str], float] = {}
    for family in metrics.registry.collect():
        if family.name != CALLS:
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("account") != account:
                continue
            key = (labels["function"], labels["outcome"])
            if sample.name == CALLS + "_bucket":
                buckets.setdefault(key, []).append((float(labels["le"]), sample.value))
            elif sample.name == CALLS + "_count":
                counts[key] = sample.value
            elif sample.name == CALLS + "_sum":
                sums[key] = sample.value
    found = []
    for key, count in sorted(counts.items()):
        if count:
            mean = sums.get(key, 0.0) / count
            found.append(Latency(*key, int(count), mean, quantile(0.99, buckets.get(key, []))))
    return found


# ------------------------------------------------------------------------------ the loop


async def demo_order(session: MT5SessionManager, symbol: str) -> None:
    """One 0.01 lot buy, closed at once: order events for the metrics (refused at weekends)."""
    try:
        placed = await session.place_order(
            OrderRequest(symbol, Side.BUY, 0.01), idempotency_key="exporter-demo-buy"
        )
        await session.close_position(placed.order, idempotency_key="exporter-demo-close")
        print(f"demo order: bought and closed 0.01 {symbol} (ticket {placed.order})", flush=True)
    except MT5Error as error:
        print(f"demo order refused: {type(error).__name__}: {error.message}", flush=True)


async def run(args: argparse.Namespace) -> None:
    metrics = Metrics()
    symbols = [s for s in args.symbols.split(",") if s]
    real = args.clock == "real"
    terminal = SimTerminal(clock=RealClock() if real else VirtualClock())
    watch = symbols if real else []  # a virtual clock's ticks are "old" by the wall clock

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)

    session = MT5SessionManager(
        terminal=terminal,
        login=5001,
        password="sim-pass-5001",
        server="MetaQuotes-Demo",
        name=ACCOUNT,
        observer=ObserverGroup(metrics.observer(ACCOUNT), LoggingObserver()),
    )
    async with session:
        server = await serve_metrics(metrics, "127.0.0.1", args.port)
        port = server.sockets[0].getsockname()[1]
        print(f"serving http://127.0.0.1:{port}/metrics", flush=True)
        if args.demo_order:
            await demo_order(session, symbols[0])
        async with server:
            while True:  # at least one reading, however slow the start-up was
                for symbol in symbols:
                    with contextlib.suppress(MT5Error):  # a failure is a metric sample too
                        await session.get_price(symbol)
                reading = await probe(session, symbols=watch)
                metrics.observe_health(ACCOUNT, reading)
                print(
                    f"health {reading.status}" + "".join(f"; {r}" for r in reading.reasons),
                    flush=True,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.interval)
                if stop.is_set():
                    break
            server.close()

    print("terminal call latency (from the histogram):")
    for found in call_latencies(metrics):
        print(
            f"  {found.function:<20} {found.outcome:<6} n={found.count:<5} "
            f"mean {found.mean_s * 1000:8.3f} ms  p99 ~{found.p99_s * 1000:8.3f} ms"
        )
    print("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description="Prometheus exporter for one MT5 session")
    parser.add_argument("--port", type=int, default=9108, help="0: any free port")
    parser.add_argument("--interval", type=float, default=5.0, help="probe every S seconds")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--symbols", default="EURUSD", help="watched symbols, comma-separated")
    parser.add_argument("--clock", choices=("real", "virtual"), default="real")
    parser.add_argument("--demo-order", action="store_true", help="buy and close 0.01 lot once")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print("*** SIMULATED terminal (mt5gate.sim): prices and orders are not real ***", flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
