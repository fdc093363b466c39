"""The 32 functions written once (``mt5gate.terminal.forwarding``) and the IPC failures spelled
once (``mt5gate.terminal.ipc``), as every Terminal implementation uses them."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

import pytest

from mt5gate.constants import ResultCode
from mt5gate.sim import SimTerminal
from mt5gate.sim.errors import RESULT_TEXTS
from mt5gate.terminal import ipc
from mt5gate.terminal.base import TERMINAL_FUNCTIONS, Terminal
from mt5gate.terminal.bridge import BridgeTerminal
from mt5gate.terminal.forwarding import Forwarding
from mt5gate.terminal.process import ProcessTerminal
from mt5gate.terminal.rpyc_client import RPyCTerminal

IMPLEMENTATIONS: dict[str, type[Any]] = {
    "BridgeTerminal": BridgeTerminal,
    "ProcessTerminal": ProcessTerminal,
    "RPyCTerminal": RPyCTerminal,
    "SimTerminal": SimTerminal,
    "Forwarding": Forwarding,
}

Shape = list[tuple[str, inspect._ParameterKind, bool]]


def _shape(function: object) -> Shape:
    """Each parameter's name, kind and whether it has a default; ``self`` and a ``*args`` left
    out (the selector functions take one so that positional arguments reach the module, which
    refuses them with -2 rather than a TypeError)."""
    return [
        (p.name, p.kind, p.default is not inspect.Parameter.empty)
        for p in inspect.signature(function).parameters.values()
        if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL
    ]


def test_the_protocol_is_the_table() -> None:
    """base.py's Protocol declares exactly the 32 functions of TERMINAL_FUNCTIONS, no more."""
    declared = {name for name in vars(Terminal) if not name.startswith("_")}
    assert declared == set(TERMINAL_FUNCTIONS)
    assert len(TERMINAL_FUNCTIONS) == 32


@pytest.mark.parametrize("owner", IMPLEMENTATIONS)
def test_every_implementation_has_the_32_functions_with_their_signatures(owner: str) -> None:
    """Each implementation exposes every function of the table, callable, with the
    Protocol's parameters (names, kinds, defaults given or not), as ``inspect`` shows them."""
    cls = IMPLEMENTATIONS[owner]
    for name in TERMINAL_FUNCTIONS:
        method = getattr(cls, name, None)
        assert callable(method), f"{owner} lacks {name}"
        assert _shape(method) == _shape(getattr(Terminal, name)), f"{owner}.{name}"


def test_every_implementation_is_a_terminal() -> None:
    """The runtime check of the Protocol agrees (mypy checks the types: ``_conforms``)."""
    instances = [
        BridgeTerminal(token="t" * 16),
        ProcessTerminal(SimTerminal),
        RPyCTerminal("127.0.0.1"),
        SimTerminal(),
    ]
    for terminal in instances:
        assert isinstance(terminal, Terminal), terminal


class _Recorder(Forwarding):
    """A Forwarding whose transport writes down each call and answers with its number."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.calls.append((function, args, kwargs))
        return len(self.calls)


@pytest.mark.parametrize("name", TERMINAL_FUNCTIONS)
def test_each_forwarder_sends_its_own_name_and_the_arguments_as_given(name: str) -> None:
    """No defaults filled in, no keywords moved to positions: the far end judges the call."""
    recorder = _Recorder()
    args = ("EURUSD", 16385, datetime(2026, 1, 2), 10)
    answer = getattr(recorder, name)(*args, flag=True)
    assert recorder.calls == [(name, args, {"flag": True})]
    if name != "shutdown":  # the module's shutdown() returns None
        assert answer == 1
    getattr(recorder, name)()
    assert recorder.calls[-1] == (name, (), {})


def test_a_forwarding_without_a_transport_says_so() -> None:
    with pytest.raises(NotImplementedError, match="Forwarding does not define _call"):
        Forwarding().version()


def test_the_ipc_failures_are_the_real_modules() -> None:
    """Codes and texts as the real module reports them (the simulator keeps the same table)."""
    for error in (ipc.CALL_FAILED, ipc.SEND_FAILED, ipc.RECV_FAILED, ipc.NO_IPC,
                  ipc.IPC_TIMEOUT, ipc.SUCCESS):  # fmt: skip
        code, text = error
        assert type(code) is int  # a plain int, as the module gives, not the IntEnum
        assert RESULT_TEXTS.get(code, "Success") == text
    assert ipc.NO_IPC == (-10004, "No IPC connection")
    assert ipc.IPC_TIMEOUT == (-10005, "IPC timeout")
    code, text = ipc.init_failed("no bridge at h:1")
    assert code == ResultCode.E_INTERNAL_FAIL_INIT == -10003
    assert text == "IPC initialize failed, no bridge at h:1"


def test_every_remote_terminal_reports_no_link_the_same_way() -> None:
    """Before a link exists each remote terminal fails a call with the module's failure value
    and ``ipc.NO_IPC`` (no socket, server or child process is needed to see it)."""
    bridge = BridgeTerminal("127.0.0.1", 9, token="t" * 16)
    rpyc = RPyCTerminal("127.0.0.1", 9)
    process = ProcessTerminal(SimTerminal)
    process.close()  # closed before its child was started: no child is ever started
    for terminal in (bridge, rpyc, process):
        assert terminal.symbol_info_tick("EURUSD") is None
        assert terminal.last_error() == ipc.NO_IPC, terminal
        assert terminal.symbol_select("EURUSD") is False
        assert terminal.last_error() == ipc.NO_IPC, terminal
