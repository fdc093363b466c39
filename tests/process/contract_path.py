"""The contract suite's "child process" path: a SimTerminal hosted by a ProcessTerminal.

``process_factory(start_ms)`` is a contract implementation (``tests/contract/conftest.py``):
a context manager of ``(Terminal, Driver)``. The driver forwards the simulator controls to the
far side with ``ProcessTerminal.host_call``; only those controls are listed in host_methods.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from mt5gate.terminal.process import ProcessTerminal

from .hosted import build_sim

#: The controls the contract driver needs, and nothing else.
DRIVER_CONTROLS = frozenset({"clock.now_ms", "step", "market.push_tick", "set_autotrading"})


class ProcessDriver:
    """Driver of a SimTerminal living in a ProcessTerminal's child (see the contract Driver).

    After a child restart the simulator is a new one, built by the factory at ``start_ms``.
    """

    def __init__(self, terminal: ProcessTerminal) -> None:
        self.terminal = terminal

    def now_ms(self) -> int:
        return int(self.terminal.host_call("clock.now_ms"))

    def step(self, seconds: float) -> None:
        self.terminal.host_call("step", seconds)

    def jump_to(self, server_ms: int) -> None:
        self.terminal.host_call("step", ms=server_ms - self.now_ms())

    def push_tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        self.terminal.host_call("market.push_tick", symbol, bid, ask)

    def set_autotrading(self, enabled: bool) -> None:
        self.terminal.host_call("set_autotrading", enabled)


@contextmanager
def process_factory(start_ms: int) -> Iterator[tuple[ProcessTerminal, ProcessDriver]]:
    """A detached SimTerminal (default config, as the other paths) in a child process."""
    terminal = ProcessTerminal(
        functools.partial(build_sim, start_ms, history_days=30),
        name="contract-process",
        call_timeout_s=30.0,
        host_methods=DRIVER_CONTROLS,
    )
    try:
        yield terminal, ProcessDriver(terminal)
    finally:
        terminal.close()
