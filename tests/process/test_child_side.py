"""The child's side of the pipe, run in this process (coverage does not follow spawned children).

``_host`` / ``_serve`` run on a thread here, talking over a real pipe; the tests play the
parent. ``_child_main`` runs on the main thread (it sets a signal disposition, restored after).
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest

from mt5gate.terminal import process
from mt5gate.terminal.fencing import EpochFence

from .hosted import broken_factory, build_sim


class Hosted:
    """A hosted object with awkward answers: unpicklable results and exceptions."""

    def __init__(self) -> None:
        self.error: tuple[int, str] = (1, "Success")

    def last_error(self) -> tuple[int, str]:
        return self.error

    def version(self) -> Any:
        return lambda: None  # cannot be pickled

    def account_info(self) -> None:
        self.error = (-10004, "No IPC connection")
        raise StubbornError("a", "b")

    def terminal_info(self) -> None:
        raise ValueError("plain")


class StubbornError(Exception):
    """Pickles, but cannot be rebuilt from its args (a common exception mistake)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first}{second}")


@pytest.fixture
def pipe() -> Iterator[tuple[Connection, Connection]]:
    parent, child = multiprocessing.Pipe(duplex=True)
    yield parent, child
    parent.close()
    child.close()


def _ask(
    conn: Connection, kind: str, name: str, args: Any, kwargs: Any, epoch: int | None = None
) -> Any:
    conn.send_bytes(pickle.dumps((kind, name, args, kwargs, epoch)))
    return conn.recv()


def _serving(
    child: Connection, hosted: Any, allowed: frozenset[str], fence: EpochFence | None = None
) -> threading.Thread:
    args = (child, hosted, allowed, fence or EpochFence())
    thread = threading.Thread(target=process._serve, args=args, daemon=True)
    thread.start()
    return thread


def test_serve_answers_calls_with_last_error(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    thread = _serving(child, build_sim(), frozenset({"step"}))
    assert _ask(parent, "call", "initialize", (), {}) == ("returned", True, (1, "Success"))
    status, value, error = _ask(parent, "call", "symbol_info", ("NOPE",), {})
    assert (status, value, error) == ("returned", None, (-4, "Terminal: Not found"))
    assert _ask(parent, "host", "step", (60,), {})[:2] == ("returned", 1_767_693_660_000)
    parent.send(("stop",))
    thread.join(5.0)
    assert not thread.is_alive()


def test_serve_refuses_what_is_not_listed(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    thread = _serving(child, build_sim(), frozenset({"step"}))
    for kind, name in (("host", "restart"), ("call", "restart"), ("host", "initialize")):
        status, value, error = _ask(parent, kind, name, (), {})
        assert status == "raised"
        assert isinstance(value, PermissionError), name
    assert error is None  # host requests carry no last_error
    parent.close()  # the parent goes away: the child's loop ends on EOF
    thread.join(5.0)
    assert not thread.is_alive()


def test_serve_sends_what_cannot_be_pickled_as_errors(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    thread = _serving(child, Hosted(), frozenset())
    status, value, error = _ask(parent, "call", "version", (), {})
    assert status == "raised"
    assert isinstance(value, TypeError)
    assert "result of version() cannot be sent" in str(value)
    assert error == (1, "Success")

    status, value, error = _ask(parent, "call", "account_info", (), {})
    assert status == "raised"
    assert isinstance(value, RuntimeError)
    assert str(value) == "StubbornError: ab"
    assert error == (-10004, "No IPC connection")

    status, value, _ = _ask(parent, "call", "terminal_info", (), {})
    assert isinstance(value, ValueError)
    assert "Traceback" in value.__notes__[0]  # the child's traceback travels as a note
    parent.send(("stop",))
    thread.join(5.0)  # ended before the fixture closes the pipe under it
    assert not thread.is_alive()


def test_host_reports_a_factory_that_fails(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    process._host(child, broken_factory, frozenset(), EpochFence())
    assert parent.recv() == (
        "failed",
        "could not build its terminal: RuntimeError: no terminal here",
    )


def test_child_main_builds_says_ready_and_ignores_ctrl_c(
    pipe: tuple[Connection, Connection],
) -> None:
    parent, child = pipe
    parent.send(("stop",))  # queued: the child stops right after saying it is ready
    saved = signal.getsignal(signal.SIGINT)
    try:
        process._child_main(child, build_sim, frozenset())
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, saved)
    assert parent.recv() == ("ready",)


def test_serve_fences_terminal_calls_by_epoch(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    fence = EpochFence()
    thread = _serving(child, build_sim(), frozenset({"step"}), fence)
    assert _ask(parent, "call", "initialize", (), {}, 4)[:2] == ("returned", True)
    assert fence.highest == 4
    assert _ask(parent, "call", "symbol_info", ("EURUSD",), {}, 3) == ("fenced", 4, None)
    assert _ask(parent, "call", "order_send", ({},), {}) == ("fenced", 4, None)  # no epoch
    assert _ask(parent, "call", "symbols_total", (), {})[0] == "returned"  # reads without one
    assert _ask(parent, "host", "step", (1,), {})[0] == "returned"  # controls are not fenced
    parent.send(("stop",))
    thread.join(5.0)
    assert not thread.is_alive()


def test_child_main_starts_with_the_parents_highest_epoch(
    pipe: tuple[Connection, Connection],
) -> None:
    parent, child = pipe
    parent.send_bytes(pickle.dumps(("call", "initialize", (), {}, 8)))  # queued for the child
    parent.send(("stop",))
    saved = signal.getsignal(signal.SIGINT)
    try:
        process._child_main(child, build_sim, frozenset(), 9)
    finally:
        signal.signal(signal.SIGINT, saved)
    assert parent.recv() == ("ready",)
    assert parent.recv() == ("fenced", 9, None)  # refused before any call raised the epoch
