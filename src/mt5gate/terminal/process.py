"""A terminal hosted in a child process: killable when a call hangs, one process per terminal.

The ``MetaTrader5`` module keeps one IPC connection per process (semantics §1), and a call into
it can block for good (a terminal busy with an update, a dead pipe). A thread cannot be killed; a
process can. :class:`ProcessTerminal` builds the terminal inside a child process of its own and
forwards each Terminal call to it over a private pipe (DESIGN §2, RELIABILITY §2):

* **One child per terminal.** Two ProcessTerminals (two accounts, two installations) never share
  a process, so they cannot cross-wire. The child builds the terminal itself, with the factory it
  was given, and must call ``initialize()`` itself like any process (semantics §1).
* **Every call has a deadline.** A call that outlives it gets the child killed (terminate, then
  kill after a grace period) and a fresh child started at once, booting while the caller backs
  off. The hung call returns the module's failure value with ``(-10005, 'IPC timeout')``.
* **A fresh child is detached**, like a terminal process that restarted: its calls fail with
  ``(-10004, 'No IPC connection')`` until ``initialize()``. That is the signal the session's
  reconnection acts on (shutdown, initialize, verify the account), so a session over a
  ProcessTerminal recovers from a hung terminal without any change to the session.
* **A child that dies on its own** (crash, killed from outside) is noticed by the next call,
  which fails the same way (-10004), and is replaced.
* **Fencing.** After ``fence(epoch)`` every call carries the epoch to the child, which keeps the
  highest it has seen and refuses lower ones (and ``order_send`` / ``login`` without one) with
  :class:`~mt5gate.terminal.base.TerminalFencedError`, before the terminal is touched
  (:mod:`mt5gate.terminal.fencing`). A child started to replace a hung or dead one is given the
  highest epoch ever set on this ProcessTerminal when it is spawned, so a restart cannot forget
  the fence.

Deadlines, and how they fit the session's :class:`~mt5gate.session.Timeouts`:

* reads and the other trading calls wait ``call_timeout_s`` (8 s); ``order_send`` and
  ``order_check`` wait ``order_timeout_s`` (13 s), since a broker may take longer to fill an
  order than a terminal takes to answer a read, and killing the child ends the wait for the
  order's reply (its outcome is then reconciled). Keep them *below* ``Timeouts.call_s`` (10 s)
  and ``Timeouts.order_s`` (15 s): the child is then killed and the call answered (-10005)
  before the session's worker deadline passes, so the session's worker never sits stuck behind
  a hung call, and its next call meets the fresh child (-10004) and reconnects;
* ``initialize`` and ``login`` wait their own ``timeout`` argument (the terminal's wait for its
  trade server, milliseconds) plus :attr:`ProcessTerminal.connect_margin_s`, or
  ``call_timeout_s`` if longer. The session passes ``Timeouts.connect_s - 5 s`` as that timeout,
  so these too end before the session gives up;
* starting a child may take up to ``start_timeout_s`` (importing numpy and the terminal's
  package, building it); that wait happens before the first call to a new child and counts
  against the caller's deadline of that call.

Wire format: ``pickle`` over a ``multiprocessing`` pipe. Both ends are this module's code and the
pipe is private to one parent and its child (never a socket, never shared), so unpickling only
reads what our own code wrote. Records and numpy arrays travel by value. Do not put this pipe on
a network: that is what the bridge (a fixed binary protocol, a token, no pickle) is for.

Children are started with ``spawn`` on every platform (the same behaviour as on Windows, and no
fork of a process that holds threads and sockets). As with any ``spawn`` user, a program's main
module must not create ProcessTerminals at import time: keep that under
``if __name__ == "__main__":``. A child imports ``mt5gate`` and the factory's module; it starts
in about 0.35 s, most of it ``import mt5gate``.

The parent runs no threads of its own: a call blocks the calling thread (the session's terminal
worker) on the pipe, with a poll timeout as its deadline. Like every terminal, a ProcessTerminal
is not thread-safe: one thread makes its calls.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from mt5gate.terminal.base import TERMINAL_FUNCTIONS, Terminal, TerminalFencedError, failure_value
from mt5gate.terminal.fencing import EpochFence, checked_epoch
from mt5gate.terminal.forwarding import Forwarding
from mt5gate.terminal.ipc import IPC_TIMEOUT, NO_IPC, SUCCESS, LastError, init_failed

__all__ = ["ProcessTerminal"]

log = logging.getLogger("mt5gate.terminal")


#: Functions that carry the terminal's own ``timeout`` (ms), and its default.
_CONNECT_FUNCTIONS = frozenset({"initialize", "login"})
#: Calls that wait for the broker, not only the terminal: ``order_timeout_s``.
_ORDER_FUNCTIONS = frozenset({"order_send", "order_check"})
_DEFAULT_CONNECT_MS = 60_000
_LOGIN_TIMEOUT_POSITION = 3  # login(login, password, server, timeout)

# Message tags. Requests: (_CALL | _HOST, name, args, kwargs, epoch or None) or (_STOP,).
# Replies: (_RETURNED | _RAISED, value, last_error or None), or (_FENCED, highest, None) for a
# call the child's fence refused. Start-up: (_READY,) | (_FAILED, why).
_CALL, _HOST, _STOP = "call", "host", "stop"
_RETURNED, _RAISED, _FENCED = "returned", "raised", "fenced"
_READY, _FAILED = "ready", "failed"

Reply = tuple[str, Any, LastError | None]


class _LostError(Exception):
    """Parent side, internal: a request got no answer; ``last_error`` is what the caller sees."""

    def __init__(self, last_error: LastError, reason: str) -> None:
        super().__init__(reason)
        self.last_error = last_error
        self.reason = reason


@dataclass(eq=False, slots=True)
class _Child:
    """One child process and the parent's end of its pipe."""

    process: BaseProcess
    conn: Connection
    pid: int
    started: float  # time.monotonic() when it was spawned
    ready: bool = False  # it built its terminal and said so
    busy: bool = False  # a request is out and unanswered


class ProcessTerminal(Forwarding):
    """A :class:`~mt5gate.terminal.Terminal` whose terminal lives in a child process.

    ``factory`` builds the terminal *in the child*; it must be picklable (a module-level
    function, a class, or a ``functools.partial`` of one) because the ``spawn`` start method,
    used on every platform, sends it to a fresh interpreter. See the module docstring for
    deadlines, restarts and the wire format.

    The 32 functions take exactly the hosted terminal's arguments: they are forwarded as given
    (:class:`~mt5gate.terminal.forwarding.Forwarding` sends each to :meth:`_call`), and the
    hosted terminal checks them (its ``TypeError`` is raised here). ``last_error()`` is read in
    the child right after each call and answered locally.

    ``restarts`` counts the children replaced after a hang or a death.

    ``host_methods`` lists the extra attribute paths of the hosted object that
    :meth:`host_call` may call, such as ``"step"`` or ``"market.push_tick"`` on a simulator;
    nothing else can be reached.
    """

    #: Seconds between asking a child to end (SIGTERM) and killing it (SIGKILL).
    kill_grace_s: float = 1.0
    #: Seconds :meth:`close` waits for an idle child to leave by itself.
    stop_timeout_s: float = 5.0
    #: Seconds added to the ``timeout`` of initialize/login for the IPC around it.
    connect_margin_s: float = 2.0

    def __init__(
        self,
        factory: Callable[[], Terminal],
        *,
        name: str = "mt5gate-terminal",
        call_timeout_s: float = 8.0,
        order_timeout_s: float = 13.0,
        start_timeout_s: float = 30.0,
        host_methods: Iterable[str] = frozenset(),
    ) -> None:
        _require_picklable(factory)
        if min(call_timeout_s, order_timeout_s, start_timeout_s) <= 0:
            raise ValueError("ProcessTerminal: call_timeout_s, order_timeout_s and "
                             "start_timeout_s must be > 0")  # fmt: skip
        self.factory = factory
        self.name = name
        self.call_timeout_s = call_timeout_s
        self.order_timeout_s = order_timeout_s
        self.start_timeout_s = start_timeout_s
        self.host_methods = _checked_paths(host_methods)
        self.restarts = 0  # children replaced after a hang or a death
        self._context = multiprocessing.get_context("spawn")
        self._child: _Child | None = None
        self._error: LastError = SUCCESS
        self._closed = False
        self._epoch: int | None = None  # carried by every call once fenced
        self._highest_epoch: int | None = None  # the highest ever set: a new child starts there

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._child is None:
            state = "not started"
        else:
            state = f"pid={self._child.pid} {'alive' if self.alive else 'dead'}"
        return f"<ProcessTerminal {self.name!r} {state}>"

    # ---------------------------------------------------------------- life cycle

    @property
    def pid(self) -> int | None:
        """The current child's process id; None before the first call and after close."""
        child = self._child
        return None if child is None else child.pid

    @property
    def alive(self) -> bool:
        """Whether a child process is running now."""
        child = self._child
        return child is not None and child.process.is_alive()

    @property
    def epoch(self) -> int | None:
        """The fencing epoch every call carries (None until :meth:`fence`)."""
        return self._epoch

    def fence(self, epoch: int) -> None:
        """Carry ``epoch`` (a positive int) with every later call (the Fenceable protocol).

        No I/O: the child learns the epoch with the next call, and judges it (a lower epoch
        than it has seen is refused there). A child spawned later starts with the highest
        epoch ever set here.
        """
        self._epoch = checked_epoch(epoch)
        self._highest_epoch = max(self._epoch, self._highest_epoch or 0)

    def start(self) -> None:
        """Start the child now instead of at the first call (idempotent; does not wait)."""
        if self._closed:
            raise ValueError(f"{self!r} is closed")
        if self._child is None:
            self._child = self._spawn()

    def close(self) -> None:
        """Stop the child and join it; final (later calls fail with -10004).

        An idle child is asked to leave and given ``stop_timeout_s``; a busy one (a call in
        flight, perhaps hung) or one still starting is killed at once. Idempotent.
        """
        self._closed = True
        child, self._child = self._child, None
        if child is None:
            return
        if child.ready and not child.busy:
            with contextlib.suppress(OSError):  # already gone: nothing to ask
                child.conn.send((_STOP,))
            child.process.join(self.stop_timeout_s)
        _kill(child, self.kill_grace_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _spawn(self) -> _Child:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_child_main,
            args=(child_end, self.factory, self.host_methods, self._highest_epoch),
            name=self.name,
            daemon=True,  # never outlives the parent
        )
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            # Only the child may hold its end: when the child dies, our end reads EOF.
            child_end.close()
        assert process.pid is not None  # set by start()
        return _Child(process, parent_end, process.pid, time.monotonic())

    def _discard(self, child: _Child) -> None:
        """Kill ``child``; the next request starts a new one."""
        if self._child is child:
            self._child = None
        _kill(child, self.kill_grace_s)

    def _replace(self, child: _Child, why: str) -> None:
        """Kill ``child`` and start its successor at once (it boots while the caller backs off)."""
        self._discard(child)
        if self._closed:  # close() ended it: nothing to report, nothing to restart
            return
        log.warning("terminal %r: %s; killed pid %d", self.name, why, child.pid)
        try:
            self._child = self._spawn()
        except OSError as error:  # the next request tries again
            log.warning("terminal %r: cannot start a new child: %s", self.name, error)
            return
        self.restarts += 1

    # ------------------------------------------------------------------- requests

    def _call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Forward one Terminal call; the module's failure value when no answer came."""
        child = self._child
        if function == "shutdown" and (child is None or not child.ready):
            return None  # no child, or a fresh one: its terminal is detached already
        epoch = self._epoch
        try:
            reply = self._request(
                _CALL, function, args, kwargs, self._deadline_s(function, args, kwargs), epoch
            )
        except _LostError as lost:
            self._error = lost.last_error
            return failure_value(function)
        status, value, error = reply
        if status == _FENCED:  # refused before the terminal was touched
            refused = TerminalFencedError(function, epoch, value)
            log.warning("terminal %r: %s", self.name, refused)
            raise refused
        assert error is not None  # the child reads last_error() after every call
        self._error = error
        if status == _RAISED:
            raise value
        return value

    def host_call(self, path: str, *args: Any, **kwargs: Any) -> Any:
        """``hosted.<path>(*args, **kwargs)`` in the child, for simulator and test controls.

        Only paths listed in ``host_methods`` may be called (checked here and again in the
        child): anything else raises ``PermissionError``. An exception raised in the child is
        raised here. A child that hangs past ``call_timeout_s`` or is gone raises
        ``ConnectionError`` and is replaced, as for a terminal call.
        """
        if path not in self.host_methods:
            raise PermissionError(f"{path!r} is not in host_methods of {self!r}")
        try:
            status, value, _ = self._request(_HOST, path, args, kwargs, self.call_timeout_s)
        except _LostError as lost:
            raise ConnectionError(f"host_call({path!r}): {lost.reason}") from None
        if status == _RAISED:
            raise value
        return value

    def _request(
        self,
        kind: str,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        deadline_s: float,
        epoch: int | None = None,
    ) -> Reply:
        payload = _encode_request((kind, name, args, kwargs, epoch), name)
        child = self._ready_child(initializing=kind == _CALL and name == "initialize")
        return self._round_trip(child, name, payload, deadline_s)

    def _ready_child(self, *, initializing: bool) -> _Child:
        """The child, started and ready to answer; raises _LostError when there is none."""
        if self._closed:
            raise _LostError(NO_IPC, f"{self!r} is closed")
        child = self._child
        if child is None:
            try:
                child = self._child = self._spawn()
            except OSError as error:
                raise _LostError(
                    _start_error(initializing, f"cannot start: {error}"), str(error)
                ) from None
        if not child.ready:
            self._await_ready(child, initializing=initializing)
        return child

    def _await_ready(self, child: _Child, *, initializing: bool) -> None:
        """Wait (up to ``start_timeout_s`` since the spawn) for the child to build its terminal.

        A child that does not come up is killed and *not* restarted at once: a factory that
        fails would otherwise spin. The next request tries again.
        """
        wait_s = max(child.started + self.start_timeout_s - time.monotonic(), 0.0)
        try:
            message = child.conn.recv() if child.conn.poll(wait_s) else None
        except (EOFError, OSError):
            message = (_FAILED, "exited while starting")
        if message is not None and message[0] == _READY:
            child.ready = True
            return
        why = f"did not start within {self.start_timeout_s:g} s" if message is None else message[1]
        self._discard(child)
        reason = f"terminal child process {why}"
        log.warning("terminal %r: %s", self.name, reason)
        raise _LostError(_start_error(initializing, reason), reason)

    def _round_trip(self, child: _Child, name: str, payload: bytes, deadline_s: float) -> Reply:
        """Send one request and wait for its reply until ``deadline_s``.

        Invariant: a reply is never left unread in the pipe. Any way out without the reply
        (deadline, death, an interrupt) kills the child, so a later request cannot read a stale
        answer.
        """
        child.busy = True
        try:
            child.conn.send_bytes(payload)
            reply: Reply | None = child.conn.recv() if child.conn.poll(deadline_s) else None
        except (EOFError, OSError):
            self._replace(child, f"the child exited during {name}()")
            raise _LostError(NO_IPC, "the terminal's child process exited") from None
        except BaseException:
            self._discard(child)
            raise
        finally:
            child.busy = False
        if reply is None:
            self._replace(child, f"{name}() did not answer within {deadline_s:g} s")
            raise _LostError(IPC_TIMEOUT, f"{name}() did not answer within {deadline_s:g} s")
        return reply

    def _deadline_s(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        """``call_timeout_s``; ``order_timeout_s`` for order_send/order_check; for
        initialize/login at least their own timeout plus a margin."""
        if function in _ORDER_FUNCTIONS:
            return self.order_timeout_s
        if function not in _CONNECT_FUNCTIONS:
            return self.call_timeout_s
        positional = function == "login" and len(args) > _LOGIN_TIMEOUT_POSITION
        timeout = kwargs.get(
            "timeout", args[_LOGIN_TIMEOUT_POSITION] if positional else _DEFAULT_CONNECT_MS
        )
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            timeout = _DEFAULT_CONNECT_MS  # the terminal refuses it; the deadline stays sane
        return max(self.call_timeout_s, timeout / 1000 + self.connect_margin_s)

    # ---------------------------------------- the 32 functions: Forwarding's, but one

    def last_error(self) -> tuple[int, str]:
        """``(code, text)`` of the last call, read in the child right after it (no round trip)."""
        return self._error


if TYPE_CHECKING:

    def _conforms(terminal: ProcessTerminal) -> Terminal:
        return terminal  # mypy proves ProcessTerminal satisfies the Terminal Protocol


# ------------------------------------------------------------------ parent helpers


def _require_picklable(factory: object) -> None:
    if not callable(factory):
        raise TypeError(f"ProcessTerminal: factory must be callable, got {factory!r}")
    try:
        pickle.dumps(factory)
    except Exception as error:
        raise TypeError(
            "ProcessTerminal: factory must be picklable (a module-level function or class, or "
            f"a functools.partial of one): the child process is spawned. {error}"
        ) from None


def _checked_paths(paths: Iterable[str]) -> frozenset[str]:
    """Host method paths: dotted public names only (no ``_private``, no dunders)."""
    checked = frozenset(paths)
    for path in checked:
        parts = path.split(".") if isinstance(path, str) else [""]
        if not all(p.isidentifier() and not p.startswith("_") for p in parts):
            raise ValueError(f"host_methods: {path!r} is not a dotted path of public names")
    return checked


def _encode_request(message: tuple[Any, ...], name: str) -> bytes:
    """Pickle a request before anything is sent: an unpicklable argument sends nothing."""
    try:
        return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise TypeError(f"{name}(): an argument cannot be sent to the child: {error}") from None


def _start_error(initializing: bool, reason: str) -> LastError:
    """What a call sees when no child could be started: initialize() says why, as the module
    does when it cannot start a terminal (-10003); other calls see no connection (-10004)."""
    return init_failed(reason) if initializing else NO_IPC


def _kill(child: _Child, grace_s: float) -> None:
    """Terminate ``child``, kill it if it outlives ``grace_s``, reap it, release its pipe.

    Idempotent, and safe while another thread waits on the pipe (``close()`` during a hung
    call): the child dies *before* the pipe is closed, so the waiter wakes on EOF first.
    """
    process = child.process
    if process.is_alive():
        process.terminate()
        process.join(grace_s)
    if process.is_alive():
        process.kill()
    process.join(10.0)  # reaped: its pid is gone
    child.conn.close()


# -------------------------------------------------------------------- child side


def _child_main(
    conn: Connection,
    factory: Callable[[], Any],
    host_methods: frozenset[str],
    highest_epoch: int | None = None,
) -> None:
    """Entry point of the child process; ``highest_epoch`` is the parent's fence so far."""
    # Ctrl-C reaches the whole process group; stopping the child is the parent's decision.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _host(conn, factory, host_methods, EpochFence(highest_epoch))


def _host(
    conn: Connection, factory: Callable[[], Any], host_methods: frozenset[str], fence: EpochFence
) -> None:
    """Build the terminal (one connection per process: it is ours alone), then serve."""
    try:
        terminal = factory()
    except Exception as error:
        conn.send((_FAILED, f"could not build its terminal: {type(error).__name__}: {error}"))
        return
    conn.send((_READY,))
    _serve(conn, terminal, host_methods, fence)


def _serve(
    conn: Connection, terminal: Any, host_methods: frozenset[str], fence: EpochFence
) -> None:
    """Answer requests one at a time until told to stop or the parent goes away."""
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent closed its end or died: nobody is left to answer
            return
        if message[0] == _STOP:
            return
        reply = _answer(terminal, host_methods, fence, message)
        conn.send_bytes(_encode_reply(reply, message[1]))


def _answer(
    terminal: Any, host_methods: frozenset[str], fence: EpochFence, message: tuple[Any, ...]
) -> Reply:
    """Run one request; for terminal calls the fencing check first and ``last_error()`` right
    after (semantics §2.5). Check and call are one step of the child's only thread."""
    kind, name, args, kwargs, epoch = message
    if kind == _CALL:
        try:
            fence.admit(name, epoch)
        except TerminalFencedError as refused:
            return (_FENCED, refused.highest, None)
    try:
        value = _target(terminal, kind, name, host_methods)(*args, **kwargs)
        status = _RETURNED
    except Exception as error:
        value, status = _portable(error), _RAISED
    return (status, value, terminal.last_error() if kind == _CALL else None)


def _target(
    terminal: Any, kind: str, name: str, host_methods: frozenset[str]
) -> Callable[..., Any]:
    """The callable a request names: a Terminal function, or a listed host method path."""
    if kind == _CALL and name in TERMINAL_FUNCTIONS:
        return cast("Callable[..., Any]", getattr(terminal, name))
    if kind == _HOST and name in host_methods:
        target = terminal
        for part in name.split("."):
            target = getattr(target, part)
        return cast("Callable[..., Any]", target)
    raise PermissionError(f"{name!r} may not be called in the terminal's child process")


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling both ways, else a RuntimeError naming it.

    The child's traceback goes along as a note: the parent's traceback ends at the pipe.
    """
    error.add_note("".join(traceback.format_exception(error)).rstrip())
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _encode_reply(reply: Reply, name: str) -> bytes:
    """Pickle a reply; a value that cannot be pickled becomes a TypeError for the caller."""
    try:
        return pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        failed = TypeError(f"the result of {name}() cannot be sent from the child: {error}")
        return pickle.dumps((_RAISED, failed, reply[2]), protocol=pickle.HIGHEST_PROTOCOL)
