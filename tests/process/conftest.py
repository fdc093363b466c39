"""Fixtures for ProcessTerminal tests: real child processes hosting simulators on virtual time."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mt5gate.terminal.process import ProcessTerminal

from .hosted import SIM_CONTROLS, build_sim

HEDGING = {"login": 5001, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"}
NETTING = {"login": 5002, "password": "sim-pass-5002", "server": "MetaQuotes-Demo"}

Spawn = Callable[..., ProcessTerminal]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Make ProcessTerminals over ``build_sim`` (keywords go to it); all closed afterwards."""
    made: list[ProcessTerminal] = []

    def make(
        *, call_timeout_s: float = 5.0, order_timeout_s: float = 5.0,
        factory: Callable[[], Any] | None = None, **sim: Any,
    ) -> ProcessTerminal:  # fmt: skip
        terminal = ProcessTerminal(
            factory or functools.partial(build_sim, **sim),
            name=f"test-terminal-{len(made)}",
            call_timeout_s=call_timeout_s,
            order_timeout_s=order_timeout_s,
            host_methods=SIM_CONTROLS,
        )
        made.append(terminal)
        return terminal

    yield make
    for terminal in made:
        terminal.close()


@pytest.fixture
def attached(spawn: Spawn) -> ProcessTerminal:
    """A ProcessTerminal whose child is attached to the hedging account 5001."""
    terminal = spawn()
    assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    return terminal
