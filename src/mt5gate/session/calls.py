"""The one path every terminal call takes: breaker, worker with deadline, error translation.

``TerminalCaller.call("symbol_info_tick", "EURUSD")`` asks the circuit breaker for a permit,
runs the call on the session's worker thread with a deadline, reads ``last_error()`` in the
same worker job when the call failed (it must be read immediately, semantics §2.5), turns the
failure into the error tree (``mt5gate.errors``, translated here and nowhere else), reports the
outcome to the breaker and the observer, and tells the connection manager about
connection-class failures so it can reconnect in the background.

Identical concurrent reads share one terminal call (``shared=True``): a hundred coroutines
asking for EURUSD's tick cost one call.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable
from typing import Any

from mt5gate.circuit_breaker import BreakerOpenError, CircuitBreaker, Permit
from mt5gate.errors import (
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5Error,
    MT5OwnershipError,
    MT5StateError,
    MT5TimeoutError,
    MT5ValidationError,
    breaker_verdict,
    error_from_deadline,
    error_from_last_error,
)
from mt5gate.session.observer import SessionObserver
from mt5gate.session.policies import AsyncClock
from mt5gate.terminal.base import Terminal, TerminalFencedError
from mt5gate.terminal.worker import (
    DeadlineExceededError,
    TerminalWorker,
    WorkerClosedError,
    WorkerStuckError,
)

__all__ = ["TerminalCaller"]

#: Functions whose ``None`` / ``False`` is a failure to read last_error for. ``shutdown`` returns
#: None by design; ``last_error`` never fails.
_NO_FAILURE_VALUE = frozenset({"shutdown", "last_error"})


def _failed(result: object) -> bool:
    return result is None or result is False


def _refused_while_stuck(stuck: WorkerStuckError, function: str, deadline: float) -> MT5Error:
    """A call refused because the worker is inside a hung call: it never reached the terminal.

    For a read that is a timeout (the terminal is hung). For ``order_send`` it is a state error,
    which ``order_send_outcome`` reads as *not sent* (safe to send later), never as unknown.
    """
    if function == "order_send":
        return MT5StateError(f"{stuck}; order_send() was not sent", hint="Retry once it answers.")
    return MT5TimeoutError(
        f"{stuck}; {function}() was not sent", deadline_s=deadline, function=function
    )


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not merely woken by a cancel)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class TerminalCaller:
    """Runs terminal calls for one session; see the module docstring."""

    def __init__(
        self,
        terminal: Terminal,
        worker: TerminalWorker,
        breaker: CircuitBreaker,
        clock: AsyncClock,
        observer: SessionObserver,
        on_connection_failure: Callable[[MT5Error], None],
        on_success: Callable[[], None],
    ) -> None:
        self.terminal = terminal
        self.worker = worker
        self.breaker = breaker
        self._clock = clock
        self._observer = observer
        self._on_connection_failure = on_connection_failure
        self._on_success = on_success
        self._inflight: dict[tuple[Any, ...], asyncio.Future[Any]] = {}

    async def call(
        self,
        function: str,
        *args: Any,
        deadline_s: float,
        shared: bool = False,
        probe: bool = False,
        on_late: Callable[[Any, MT5Error | None], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``terminal.<function>(*args, **kwargs)``; the record, or an ``MT5Error``.

        ``on_late(result, error)`` hears of a call that finished after its deadline had already
        failed the caller (not for shared calls): the late reply of an ``order_send``.
        """
        if not shared:
            return await self._guarded(function, args, kwargs, deadline_s, probe, on_late)
        key = (function, args, tuple(sorted(kwargs.items())))
        while True:
            pending = self._inflight.get(key)
            if pending is None:
                return await self._lead(key, function, args, kwargs, deadline_s, probe)
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled() or _cancelling():
                    raise
                # the leader was cancelled, not us: take the lead and call again

    async def _lead(
        self, key: tuple[Any, ...], function: str, args: tuple[Any, ...],
        kwargs: dict[str, Any], deadline: float, probe: bool,
    ) -> Any:  # fmt: skip
        """Make the call for everyone who asks for the same thing meanwhile (no extra task)."""
        shared = asyncio.get_running_loop().create_future()
        self._inflight[key] = shared
        try:
            result = await self._guarded(function, args, kwargs, deadline, probe)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except BaseException as error:
            shared.set_exception(error)
            shared.exception()  # retrieved: followers re-raise it, none may be waiting
            raise
        finally:
            del self._inflight[key]
        shared.set_result(result)
        return result

    async def _guarded(
        self,
        function: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        deadline: float,
        probe: bool,
        on_late: Callable[[Any, MT5Error | None], None] | None = None,
    ) -> Any:
        permit = self._permit(probe)
        started = self._clock.monotonic()
        try:
            result = await self._run(function, args, kwargs, deadline, on_late)
        except asyncio.CancelledError:
            permit.cancel()
            raise
        except MT5Error as error:
            self._report(permit, function, error, started)
            raise
        self._report(permit, function, None, started)
        return result

    def _permit(self, probe: bool) -> Permit:
        try:
            return self.breaker.acquire(probe=probe)
        except BreakerOpenError as refused:
            until = (
                "until it is released (forced open)"
                if math.isinf(refused.retry_after_s)
                else f"for {refused.retry_after_s:.1f} s more"
            )
            why = f" ({refused.reason})" if refused.reason else ""
            raise MT5CircuitBreakerOpen(
                f"the circuit breaker for terminal {refused.name!r} is {refused.state}{why}; "
                f"calls are refused {until}",
                retry_after_s=refused.retry_after_s,
                state=str(refused.state),
            ) from None

    async def _run(
        self,
        function: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        deadline: float,
        on_late: Callable[[Any, MT5Error | None], None] | None = None,
    ) -> Any:
        job = functools.partial(self._job, function, args, kwargs)
        heard = None if on_late is None else functools.partial(self._late, function, args, on_late)
        try:
            result, error = await self.worker.run(function, job, deadline, on_late=heard)
        except DeadlineExceededError as late:
            if not late.running and function == "order_send":
                raise MT5StateError(  # dropped from the queue: proven never sent
                    f"{late}; order_send() was not sent", hint="Retry once the terminal answers."
                ) from None
            request = args[0] if function == "order_send" and args else None
            raise error_from_deadline(function, deadline, request=request) from None
        except WorkerStuckError as stuck:
            raise _refused_while_stuck(stuck, function, deadline) from None
        except WorkerClosedError:
            raise MT5StateError(
                f"the session was closed; {function}() was not sent",
                hint="Create a new MT5SessionManager to use the terminal again.",
            ) from None
        if error is not None:
            request = args[0] if function == "order_send" and args else None
            raise error_from_last_error(error[0], error[1], function=function, request=request)
        return result

    @staticmethod
    def _late(
        function: str,
        args: tuple[Any, ...],
        on_late: Callable[[Any, MT5Error | None], None],
        ok: bool,
        value: Any,
    ) -> None:
        """A call's outcome after its deadline, translated like a timely one."""
        if not ok:
            failure = value if isinstance(value, MT5Error) else MT5Error(str(value))
            on_late(None, failure)
            return
        result, error = value
        if error is None:
            on_late(result, None)
            return
        request = args[0] if function == "order_send" and args else None
        on_late(None, error_from_last_error(error[0], error[1], function=function, request=request))

    def _job(
        self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, tuple[int, str] | None]:
        """Worker side: the call, and ``last_error()`` read at once if it failed."""
        try:
            result = getattr(self.terminal, function)(*args, **kwargs)
        except TypeError as wrong:  # the module's own argument checks (semantics §3)
            raise MT5ValidationError(f"{function}() rejected its arguments: {wrong}") from None
        except TerminalFencedError as fenced:  # a newer owner holds the account
            raise MT5OwnershipError(str(fenced), epoch=fenced.highest) from None
        if function in _NO_FAILURE_VALUE or not _failed(result):
            return result, None
        return result, self.terminal.last_error()

    def _report(
        self, permit: Permit, function: str, error: MT5Error | None, started: float
    ) -> None:
        duration = self._clock.monotonic() - started
        verdict = breaker_verdict(error)
        if verdict == "success":
            permit.success(duration)
        elif verdict == "failure":
            permit.failure(duration)
        else:
            permit.ignore()
        outcome = "ok" if error is None else type(error).__name__
        self._observer.call_finished(function, outcome, duration)
        if error is None:
            self._on_success()
        elif isinstance(error, MT5ConnectionError):
            self._on_connection_failure(error)
