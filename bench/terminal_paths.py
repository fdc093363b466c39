"""The same two jobs through every path to a terminal, side by side in one run.

Jobs (issue: reach real terminals): a ``symbol_info_tick`` plus reading its eight fields, and
a market ``order_send`` (open and close). Paths: the simulator in process (the raw call), the
official adapter over the drop-in module, a child process (``ProcessTerminal``), the bridge to a
separate process on loopback (``BridgeTerminal``), RPyC with mt5gate's client, and RPyC used the
way mt5linux users use it (a netref per call and per field read). The ratio column compares
each path with the mt5linux way where that is the question, else with the raw call.

The bridge's tick figure is also measured head to head, in turns within one run, against the
mt5linux way and against the floor: a bare loopback echo with the bridge's own socket setup and
framing (``bench._bridge_host --echo``; the bridge client's connection class on this side), so
the ratio to the floor says what the bridge costs on top of a round trip on this machine.

Where the processes run decides the floor. Left to the scheduler, the echo process often wakes
on the client's CPU, where a round trip is a cheap switch between two tiny loops, and sometimes
on the other CPU, where it pays a wake-up across CPUs; the bridge's threads mostly land on the
other CPU. On 2026-12-08 (2 cores, ``/tmp`` scripts pinning every thread) the floor ran 70,000
to 76,000 round trips a second with client and echo on one core, 13,800 to 14,000 on separate
cores and 19,600 to 23,300 unpinned, against the bridge's 28,700 to 29,100, 10,300 to 10,700
and 10,100 to 11,800. So the head to head is also run with every thread pinned (Linux, two
CPUs or more): the client on one core and both servers on the same core (``one core``), then
on the other (``separate cores``: a bridge beside its terminal and a client elsewhere, as
deployed). The placement is undone afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Final, NamedTuple

from bench._bridge_host import rich_simulator
from bench.report import Row
from mt5gate.constants import OrderFilling, OrderType, TradeAction
from mt5gate.terminal.base import Terminal
from mt5gate.terminal.bridge import BridgeTerminal, _Connection
from mt5gate.terminal.wire import MAX_REPLY_FRAME, encode_request

__all__ = ["rows"]

FIELDS = ("time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real")
TOKEN = "bench-token-0123456789"


def _best_rate(action: Callable[[], Any], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            action()
        best = min(best, time.perf_counter() - started)
    return count / best


def _tick_and_fields(terminal: Terminal) -> tuple[Any, ...]:
    tick = terminal.symbol_info_tick("EURUSD")
    return tuple(getattr(tick, name) for name in FIELDS)


def _buy_and_close(terminal: Terminal) -> None:
    request = {
        "action": int(TradeAction.DEAL), "symbol": "EURUSD", "volume": 0.1,
        "type": int(OrderType.BUY), "type_filling": int(OrderFilling.IOC),
    }  # fmt: skip
    opened = terminal.order_send(request)
    assert opened is not None
    assert opened.retcode == 10009, opened
    closed = terminal.order_send({**request, "type": int(OrderType.SELL), "position": opened.order})
    assert closed is not None
    assert closed.retcode == 10009, closed


@contextmanager
def _in_process() -> Iterator[Terminal]:
    yield rich_simulator()


@contextmanager
def _official_over_dropin() -> Iterator[Terminal]:
    import mt5gate.sim
    from mt5gate.terminal.official import official_terminal

    mt5gate.sim.install(rich_simulator())
    try:
        yield official_terminal()
    finally:
        mt5gate.sim.uninstall()


@contextmanager
def _child_process() -> Iterator[Terminal]:
    from mt5gate.terminal.process import ProcessTerminal

    terminal = ProcessTerminal(functools.partial(rich_simulator), name="bench-child")
    try:
        yield terminal
    finally:
        terminal.close()


class _Hosted(NamedTuple):
    port: int
    pid: int


@contextmanager
def _host(*args: str) -> Iterator[_Hosted]:
    """A ``bench._bridge_host`` process (the bridge, or ``--echo``): its port and pid, killed
    after."""
    host = subprocess.Popen(
        [sys.executable, "-m", "bench._bridge_host", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        yield _Hosted(int(host.stdout.readline()), host.pid)
    finally:
        host.kill()
        host.wait()


#: Where the head to head pins the client and the servers (see the module docstring).
PLACEMENTS: Final = ("one core", "separate cores")


def can_place() -> bool:
    """Whether threads can be pinned here: Linux's per-thread affinity, two CPUs or more."""
    return (
        hasattr(os, "sched_setaffinity")
        and os.path.isdir(f"/proc/{os.getpid()}/task")
        and len(os.sched_getaffinity(0)) >= 2
    )


def _pin_all(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` onto ``cpus`` (a process's affinity call moves only the
    thread whose id is the pid: a server's other threads would stay where they were)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


@contextmanager
def placed(placement: str, servers: Sequence[int]) -> Iterator[None]:
    """While open, this process on the first CPU it may use and every thread of ``servers``
    on that one too (``one core``) or on the second (``separate cores``); every thread back on
    all of this process's CPUs after."""
    everyone = os.sched_getaffinity(0)
    first, second = sorted(everyone)[:2]
    server_cpu = first if placement == "one core" else second
    try:
        _pin_all(os.getpid(), {first})
        for pid in servers:
            _pin_all(pid, {server_cpu})
        yield
    finally:
        for pid in (os.getpid(), *servers):
            _pin_all(pid, everyone)


@contextmanager
def _bridge() -> Iterator[Terminal]:
    with _host(TOKEN) as (port, _):
        terminal = BridgeTerminal("127.0.0.1", port, token=TOKEN)
        yield terminal
        terminal.close()


class _Floor:
    """The floor's client: the bridge client's own connection class and socket options; one
    tick request's bytes go out, the same bytes come back."""

    def __init__(self, port: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), 5.0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as BridgeTerminal does
        self.connection = _Connection(sock, MAX_REPLY_FRAME)
        self.body = encode_request(1, "symbol_info_tick", ["EURUSD"], {})

    def round_trip(self) -> bytes:
        deadline = time.monotonic() + 65.0  # as BridgeTerminal gives each call
        self.connection.send(self.body, deadline)
        return self.connection.receive(deadline)

    def close(self) -> None:
        self.connection.close()


PATHS: dict[str, Callable[[], Any]] = {
    "in process (raw SimTerminal)": _in_process,
    "official adapter over the drop-in": _official_over_dropin,
    "child process (ProcessTerminal, pipe)": _child_process,
    "bridge, separate process, loopback": _bridge,
}


def _measure(path: Callable[[], Any], repeat: int, quick: bool) -> tuple[float, float]:
    ticks, orders = (500, 100) if quick else (5_000, 500)
    with path() as terminal:
        assert terminal.initialize(), terminal.last_error()
        tick_rate = _best_rate(lambda: _tick_and_fields(terminal), ticks, repeat)
        order_rate = _best_rate(lambda: _buy_and_close(terminal), orders, repeat) * 2
    return tick_rate, order_rate


def rows(repeat: int, quick: bool) -> list[Row]:
    """Every path's figures; RPyC paths come from ``bench.rpyc_paths``."""
    from bench import rpyc_paths

    measured = {name: _measure(path, repeat, quick) for name, path in PATHS.items()}
    raw_tick, raw_order = measured["in process (raw SimTerminal)"]
    out: list[Row] = []
    for name, (tick_rate, order_rate) in measured.items():
        out.append(Row("paths", f"tick + 8 fields: {name}", tick_rate, "calls/s",
                       "raw call", tick_rate / raw_tick))  # fmt: skip
        out.append(Row("paths", f"market order_send: {name}", order_rate, "orders/s",
                       "raw call", order_rate / raw_order))  # fmt: skip
    rpyc_rows = rpyc_paths.rows(repeat, quick)
    out += rpyc_rows
    out += _head_to_head_rows(_head_to_head(repeat, quick))
    out += _orders_vs_mt5linux(measured["bridge, separate process, loopback"][1], rpyc_rows)
    return out


class HeadToHead(NamedTuple):
    """Calls per second of the head to head: the scheduler's choice of CPUs, then per
    placement (empty where threads cannot be pinned) the bridge's and the floor's."""

    bridge: float
    way: float
    floor: float
    placed: dict[str, tuple[float, float]]


def _head_to_head(repeat: int, quick: bool) -> HeadToHead:
    """Tick + 8 fields over the bridge and the mt5linux way, and the floor's round trip, in
    turns: each of ``repeat`` rounds measures all three; the best round of each is kept. Then
    the bridge and the floor again, in turns, in each of :data:`PLACEMENTS`."""
    from tests.rpyc.classic_server import ClassicServer

    from bench.rpyc_paths import Mt5linuxWay, rich_remote_simulator

    fast, slow = (500, 100) if quick else (5_000, 1_000)
    with ExitStack() as stack:
        bridge_host = stack.enter_context(_host(TOKEN))
        bridge = BridgeTerminal("127.0.0.1", bridge_host.port, token=TOKEN)
        stack.callback(bridge.close)
        assert bridge.initialize(), bridge.last_error()
        echo_host = stack.enter_context(_host("--echo"))
        floor = _Floor(echo_host.port)
        stack.callback(floor.close)
        conn = stack.enter_context(ClassicServer()).connect()
        stack.callback(conn.close)
        rich_remote_simulator(conn)
        way = Mt5linuxWay(conn)
        assert way.module.initialize() is True
        tick = functools.partial(_tick_and_fields, bridge)
        best = _in_turns(((tick, fast), (way.tick_eval, slow), (floor.round_trip, fast)), repeat)
        pinned: dict[str, tuple[float, float]] = {}
        for placement in PLACEMENTS if can_place() else ():
            with placed(placement, (bridge_host.pid, echo_host.pid)):
                bridge_rate, floor_rate = _in_turns(((tick, fast), (floor.round_trip, fast)),
                                                    repeat)  # fmt: skip
            pinned[placement] = (bridge_rate, floor_rate)
    return HeadToHead(best[0], best[1], best[2], pinned)


def _in_turns(jobs: Sequence[tuple[Callable[[], Any], int]], repeat: int) -> list[float]:
    """Each job's best rate over ``repeat`` rounds, the jobs measured in turn in each round."""
    best = [0.0] * len(jobs)
    for _ in range(repeat):
        for index, (job, count) in enumerate(jobs):
            best[index] = max(best[index], _best_rate(job, count, 1))
    return best


def _head_to_head_rows(measured: HeadToHead) -> list[Row]:
    """The issue's aims: the bridge at least 15x the mt5linux way, and within 1.5x of the
    floor (a ratio to the floor of at least 0.67x), under each placement measured."""
    tick = "tick + 8 fields"
    bridge, way, floor = measured.bridge, measured.way, measured.floor
    rows = [
        Row("paths", f"head to head, {tick}: the mt5linux way", way, "calls/s"),
        Row("paths", "head to head, one round trip: bare loopback echo (the floor)", floor,
            "calls/s"),
        Row("paths", f"bridge vs the mt5linux way: {tick}", bridge, "calls/s",
            "mt5linux way", bridge / way),
        Row("paths", f"bridge vs the floor: {tick}, CPUs as the scheduler chose", bridge,
            "calls/s", "bare loopback echo", bridge / floor),
    ]  # fmt: skip
    for placement, (pinned_bridge, pinned_floor) in measured.placed.items():
        where = f"client and servers on {placement}"
        rows += [
            Row("paths", f"head to head, one round trip: the floor, {where}", pinned_floor,
                "calls/s"),
            Row("paths", f"bridge vs the floor: {tick}, {where}", pinned_bridge, "calls/s",
                "bare loopback echo", pinned_bridge / pinned_floor),
        ]  # fmt: skip
    return rows


def _orders_vs_mt5linux(bridge: float, rpyc_rows: list[Row]) -> list[Row]:
    """The bridge's market orders against the mt5linux way's (measured in turn, not in turns)."""
    way = next((r.value for r in rpyc_rows if "mt5linux" in r.name and "order" in r.name), None)
    if not way:
        return []
    return [Row("paths", "bridge vs the mt5linux way: market order_send", bridge,
                "orders/s", "mt5linux way", bridge / way)]  # fmt: skip
