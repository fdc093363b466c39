"""The RPyC path for the contract suite: ``rpyc_factory(start_ms)`` yields (Terminal, Driver).

The terminal is an :class:`~mt5gate.terminal.rpyc_client.RPyCTerminal` talking to RPyC's own
classic server in a subprocess, which hosts the simulator's drop-in module as ``MetaTrader5``.
The driver controls that REMOTE simulator through a second, classic connection (netrefs to
``mt5gate.sim.default_terminal()``): time, prices and the Algo Trading button.

One server subprocess is shared by every factory call in a process (started on first use,
killed at exit); each call configures a fresh simulator on it, so tests stay independent.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mt5gate.terminal.rpyc_client import RPyCTerminal
from tests.rpyc.classic_server import ClassicServer

__all__ = ["RPyCDriver", "remote_sim", "rpyc_factory", "shared_server"]

_shared: ClassicServer | None = None


def shared_server() -> ClassicServer:
    """The process-wide classic server subprocess (started on first use, stopped at exit)."""
    global _shared
    if _shared is None or _shared._process is None or _shared._process.poll() is not None:
        _shared = ClassicServer().start()
        atexit.register(_shared.stop)
    return _shared


def remote_sim(conn: Any, start_ms: int) -> Any:
    """A fresh remote SimTerminal on a virtual clock at ``start_ms``, behind ``MetaTrader5``."""
    sim = conn.modules["mt5gate.sim"]
    terminal = sim.SimTerminal(sim.SimConfig(), clock=sim.VirtualClock(start_ms))
    sim.configure(terminal)
    return terminal


class RPyCDriver:
    """Driver of the simulator inside the RPyC server, through netrefs of a classic connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sim = conn.modules["mt5gate.sim"].default_terminal()

    def now_ms(self) -> int:
        return int(self.sim.clock.now_ms())

    def step(self, seconds: float) -> None:
        self.sim.step(float(seconds))

    def jump_to(self, server_ms: int) -> None:
        self.sim.step(ms=int(server_ms) - self.now_ms())

    def push_tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        self.sim.market.push_tick(symbol, float(bid), None if ask is None else float(ask))

    def set_autotrading(self, enabled: bool) -> None:
        self.sim.set_autotrading(bool(enabled))


@contextmanager
def rpyc_factory(start_ms: int) -> Iterator[tuple[Any, RPyCDriver]]:
    """A detached RPyCTerminal on a fresh remote simulator at ``start_ms``, and its driver."""
    server = shared_server()
    control = server.connect()
    try:
        remote_sim(control, start_ms)
        terminal = RPyCTerminal(server.host, server.port, call_timeout_s=30.0)
        try:
            yield terminal, RPyCDriver(control)
        finally:
            terminal.close()
    finally:
        control.close()
