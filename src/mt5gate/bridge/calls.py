"""How the bridge answers one request: the allow-list, the gate, fencing and durability.

A request frame becomes a reply frame on the connection's own thread: decoded and checked
against the 32 terminal functions, refused at once if its fencing epoch is already stale (it
would be refused in the gate anyway: an ex-owner must not wait behind another client's call,
or meet "busy" behind a hung one, to learn it lost the account), then run inside the
:class:`~mt5gate.bridge.gate.TerminalGate` with the fencing check and ``last_error()`` (one
step, so no other client's call comes between them), its state-file changes put on disk, and
its result encoded. A call stuck in the terminal past its deadline is answered "timeout" by
the gate's watchdog, which hands the connection to a fresh thread (``hand_over``); the stuck
thread then gets :class:`HandedOverError` when the call returns, and leaves the connection
alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from mt5gate.bridge.gate import CallAbandonedError, TerminalGate
from mt5gate.bridge.link import Link
from mt5gate.terminal.base import TERMINAL_FUNCTIONS, Terminal, TerminalFencedError
from mt5gate.terminal.fencing import EpochFence
from mt5gate.terminal.wire import (
    ProtocolError,
    Request,
    call_deadline,
    decode_request,
    encode_error,
    encode_fenced,
    encode_reply,
    request_id_of,
)
from mt5gate.terminal.worker import DeadlineExceededError, WorkerClosedError, WorkerStuckError

__all__ = ["CallAnswerer", "HandedOverError"]

log = logging.getLogger("mt5gate.bridge")

_ALLOWED: Final = frozenset(TERMINAL_FUNCTIONS)


class HandedOverError(Exception):
    """This thread's call was answered by the watchdog and its connection handed to a fresh
    thread: leave the connection alone and end."""


class CallAnswerer:
    """Answers request frames with calls on ``terminal``, one thread at a time through ``gate``.

    ``hand_over(link, reply)`` (called on the watchdog thread) sends ``reply`` on ``link`` and
    serves it on from a fresh thread; False when it cannot (the server is stopping).
    """

    def __init__(
        self,
        terminal: Terminal,
        gate: TerminalGate,
        hand_over: Callable[[Link, bytes], bool],
        *,
        call_timeout_s: float,
        max_reply_frame: int,
    ) -> None:
        self.terminal = terminal
        self.gate = gate
        self.fence = EpochFence()  # admit(): inside the gate only; check(): any thread
        self.calls = 0  # calls handed to the terminal (inside the gate)
        self.call_timeout_s = call_timeout_s
        self.max_reply_frame = max_reply_frame
        self._hand_over = hand_over
        self._state = _state_file_of(terminal)

    def answer(self, body: bytes, link: Link | None = None) -> bytes:
        """The reply frame body for one request frame body. Raises only HandedOverError."""
        try:
            request = decode_request(body)
        except ProtocolError as error:
            return encode_error(request_id_of(body), "malformed", str(error))
        if request.function not in _ALLOWED:
            name = request.function[:64]
            return encode_error(request.request_id, "denied",
                                f"{name!r} is not one of the 32 terminal functions")  # fmt: skip
        return self._call(request, link)

    def _call(self, request: Request, link: Link | None) -> bytes:
        rid, function = request.request_id, request.function
        deadline = call_deadline(function, request.args, request.kwargs, self.call_timeout_s)
        peer = None if link is None else link.peer

        def overdue() -> bool:
            return link is not None and self._overdue(link, rid, function, deadline)

        try:
            self.fence.check(function, request.epoch)  # an ex-owner never waits for the gate
            result, last_error = self.gate.run(function, self._job(request, peer), deadline,
                                               overdue)  # fmt: skip
        except CallAbandonedError as late:
            log.warning('bridge: %s() of %s returned %.1f s past its deadline, answered "timeout" '
                        "before; its result is dropped", function, peer, late.late_s)  # fmt: skip
            self._durable()
            raise HandedOverError from None
        except TerminalFencedError as refused:
            log.warning("bridge: refused %s() of %s: %s", function, peer, refused)
            return encode_fenced(rid, refused.highest, str(refused))
        except TypeError as error:  # the terminal's own argument convention
            return encode_error(rid, "TypeError", str(error))
        except DeadlineExceededError as error:
            return encode_error(rid, "timeout", str(error))
        except (WorkerStuckError, WorkerClosedError) as error:
            return encode_error(rid, "busy", str(error))
        except Exception as error:
            log.exception("bridge: %s() raised", function)
            return encode_error(rid, "internal", f"{type(error).__name__}: {error}")
        self._durable()
        return self._encode_result(rid, function, result, last_error)

    def _overdue(self, link: Link, rid: int, function: str, deadline_s: float) -> bool:
        """The watchdog, gate lock held: the call is stuck in the terminal past its deadline.
        Answer it "timeout" from a fresh thread that serves ``link`` from now on."""
        stuck = DeadlineExceededError(function, deadline_s, running=True)
        log.warning("bridge: %s() of %s is stuck in the terminal past its %g s deadline; "
                    'answered "timeout"', function, link.peer, deadline_s)  # fmt: skip
        return self._hand_over(link, encode_error(rid, "timeout", str(stuck)))

    def _durable(self) -> None:
        """A simulator with a state file: what the call changed is on disk before its reply.
        The fdatasync runs after this thread left the terminal, so other clients' calls go on
        meanwhile and a later fdatasync covers them all (group commit)."""
        state = self._state
        if state is not None and state.state_unsynced:
            state.sync_state()

    def _job(self, request: Request, peer: object) -> Callable[[], tuple[Any, tuple[int, str]]]:
        """What runs inside the gate: the fencing check, the call and its ``last_error()``.
        Check and call are one step in the gate, so no other client's call (a newer owner's
        epoch) can come between them."""
        terminal, fence, function = self.terminal, self.fence, request.function
        args, kwargs, epoch = request.args, request.kwargs, request.epoch

        def job() -> tuple[Any, tuple[int, str]]:
            if fence.admit(function, epoch):
                log.info("bridge: %s holds fencing epoch %d now", peer, epoch)
            self.calls += 1
            result = getattr(terminal, function)(*args, **kwargs)
            return result, tuple(terminal.last_error())  # type: ignore[return-value]

        return job

    def _encode_result(self, rid: int, function: str, result: Any, last_error: Any) -> bytes:
        try:
            body = encode_reply(rid, result, last_error)
        except (TypeError, ValueError) as error:
            log.error("bridge: cannot send the result of %s(): %s", function, error)
            return encode_error(rid, "internal", f"unsendable result: {error}")
        if len(body) + 4 > self.max_reply_frame:
            log.warning("bridge: the reply of %s() is %d bytes, over the %d-byte limit",
                        function, len(body), self.max_reply_frame)  # fmt: skip
            return encode_error(rid, "too_large", f"the reply of {function}() is {len(body)} "
                                f"bytes, over the {self.max_reply_frame}-byte limit")  # fmt: skip
        return body


class _StateFile(Protocol):
    """A simulator that keeps a state file (:class:`~mt5gate.sim.terminal.SimTerminal`)."""

    @property
    def state_unsynced(self) -> bool: ...

    def defer_state_sync(self) -> None: ...

    def sync_state(self) -> None: ...


def _state_file_of(terminal: object) -> _StateFile | None:
    """The terminal, set to leave its state file's fdatasync to the reply (see ``_durable``),
    if it has one; looked up on its class, so a wrapper that records every attribute it is
    asked for (tests) is not called."""
    if not hasattr(type(terminal), "defer_state_sync"):
        return None
    state: _StateFile = terminal  # type: ignore[assignment]
    state.defer_state_sync()
    return state
