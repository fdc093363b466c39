"""Connecting, verifying, and reconnecting in the background.

``connect()`` attaches to the terminal (``initialize`` with the configured credentials), then
*verifies* that the terminal is logged into the configured account and server (several
terminals on one host cross-wire, pitfall A6), and replays what the session had set up
(selected symbols, market book subscriptions). A connection-class failure of any call moves
the session to RECONNECTING and starts one background task that retries with capped,
jittered exponential backoff until it succeeds, the policy's attempts run out, or the session
is closed. The task is the session's own (started and cancelled by it); no threads.

Why the last connect or reconnect attempt failed (``last_failure``: the error's message, such
as a bridge's failed TLS handshake) is kept until one succeeds, so a session that is down
can say why (its health check, the error a call gets), not only its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from mt5gate.errors import MT5Error, MT5StateError, error_from_account_mismatch
from mt5gate.session.calls import TerminalCaller
from mt5gate.session.observer import SessionObserver
from mt5gate.session.policies import AsyncClock, ReconnectPolicy, Timeouts
from mt5gate.session.state import SessionState, StateMachine

__all__ = ["Credentials", "ConnectionManager", "Subscriptions"]

S = SessionState
_NO_IPC = -10004  # 'No IPC connection': the connection is gone, not flaky


@dataclass(frozen=True, slots=True)
class Credentials:
    """Which account the session must be on; the password is a ``SecretStr`` (safe repr)."""

    login: int | None = None
    password: SecretStr | None = None
    server: str | None = None
    path: str | None = None


@dataclass(slots=True)
class Subscriptions:
    """What the session set up on the terminal, replayed after every reconnect."""

    symbols: set[str] = field(default_factory=set)
    books: set[str] = field(default_factory=set)


class ConnectionManager:
    """Owns connect / disconnect / reconnect for one session."""

    def __init__(
        self,
        caller: TerminalCaller,
        machine: StateMachine,
        credentials: Credentials,
        timeouts: Timeouts,
        policy: ReconnectPolicy,
        clock: AsyncClock,
        observer: SessionObserver,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        self.caller = caller
        self.machine = machine
        self.credentials = credentials
        self.timeouts = timeouts
        self.policy = policy
        self.clock = clock
        self.observer = observer
        self.subscriptions = Subscriptions()
        self._random = random_source
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self.attempts = 0
        #: why the last connect or reconnect attempt failed; None once one succeeds
        self.last_failure: str | None = None

    # ----------------------------------------------------------------- connect

    async def connect(self) -> None:
        """Attach, verify the account, replay subscriptions; CONNECTED (or DEGRADED)."""
        if self.machine.state == S.CLOSED:
            raise MT5StateError("the session is closed; create a new MT5SessionManager")
        self.machine.move(S.CONNECTING, "connect requested")
        try:
            await self._establish()
        except BaseException as error:
            self._failed(error)
            self.machine.move(S.DISCONNECTED, "connect failed")
            raise
        self.last_failure = None

    def _failed(self, error: BaseException) -> None:
        """Keep why an attempt failed (an MT5 error's message; a cancelled one is no reason)."""
        if isinstance(error, MT5Error):
            self.last_failure = error.message
        elif isinstance(error, Exception):
            self.last_failure = f"{type(error).__name__}: {error}"

    async def _establish(self) -> None:
        """The steps of a (re)connection; raises an MT5Error when one fails."""
        await self._initialize()
        await self._verify_account()
        await self._replay()
        await self.refresh_link()

    async def _initialize(self) -> None:
        c = self.credentials
        kwargs: dict[str, Any] = {"timeout": max(int(self.timeouts.connect_s * 1000) - 5000, 1000)}
        if c.login is not None and c.password is not None:  # without a password: attach, verify
            kwargs["login"] = c.login
            kwargs["password"] = c.password.get_secret_value()
            if c.server is not None:
                kwargs["server"] = c.server
        args = (c.path,) if c.path is not None else ()
        await self.caller.call("initialize", *args, deadline_s=self.timeouts.connect_s, **kwargs)

    async def _verify_account(self) -> None:
        """The terminal must be on the configured account and server (no cross-wiring)."""
        c = self.credentials
        if c.login is None:
            return
        info = await self.caller.call("account_info", deadline_s=self.timeouts.call_s)
        wrong_login = info.login != c.login
        if wrong_login or (c.server is not None and info.server != c.server):
            raise error_from_account_mismatch(c.login, info.login)

    async def _replay(self) -> None:
        for symbol in sorted(self.subscriptions.symbols):
            await self.caller.call("symbol_select", symbol, True, deadline_s=self.timeouts.call_s)
        for symbol in sorted(self.subscriptions.books):
            await self.caller.call("market_book_add", symbol, deadline_s=self.timeouts.call_s)

    async def refresh_link(self) -> bool:
        """Read ``terminal_info().connected``: CONNECTED when the trade server link is up,
        DEGRADED when it is down. Returns whether it is up."""
        info = await self.caller.call("terminal_info", deadline_s=self.timeouts.call_s)
        up = bool(info.connected)
        target = S.CONNECTED if up else S.DEGRADED
        if self.machine.state in (S.CONNECTING, S.CONNECTED, S.DEGRADED, S.RECONNECTING):
            self.machine.move(target, "trade server link up" if up else "trade server link down")
        return up

    # -------------------------------------------------------------- disconnect

    async def disconnect(self, *, final: bool = False) -> None:
        """Stop reconnecting, detach from the terminal; CLOSED when ``final``."""
        await self._stop_task()
        if self.machine.state not in (S.DISCONNECTED, S.CLOSED):
            await self._detach_quietly()
            self.machine.move(S.DISCONNECTED, "disconnect requested")
        if final:
            self.machine.move(S.CLOSED, "session closed")

    async def reconnect(self) -> None:
        """Detach and connect again now (the caller's explicit request)."""
        await self._stop_task()
        if self.machine.state == S.CLOSED:
            raise MT5StateError("the session is closed; create a new MT5SessionManager")
        await self._detach_quietly()
        if self.machine.state != S.DISCONNECTED:
            self.machine.move(S.DISCONNECTED, "reconnect requested")
        await self.connect()

    # --------------------------------------------------------- automatic path

    def call_failed(self, error: MT5Error) -> None:
        """A call failed with a connection-class error: after ``after_failures`` in a row (at
        once for -10004, no IPC connection), the connection counts as lost."""
        self._failures += 1
        gone = error.code == _NO_IPC or self._failures >= self.policy.after_failures
        if gone:
            self.connection_lost(error)

    def call_succeeded(self) -> None:
        """A call went through: the run of connection failures is over."""
        self._failures = 0

    def connection_lost(self, error: MT5Error) -> None:
        """A call hit a connection-class failure: start the background reconnection."""
        if not self.policy.enabled or self.machine.state not in (S.CONNECTED, S.DEGRADED):
            return
        self.machine.move(S.RECONNECTING, f"connection lost: {type(error).__name__}")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._reconnect_loop(), name="mt5gate-reconnect"
            )

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while self.machine.state == S.RECONNECTING:
            attempt += 1
            await self.clock.sleep(self.policy.delay_s(attempt, self._random))
            if await self._attempt(attempt):
                return
            if self.policy.max_attempts is not None and attempt >= self.policy.max_attempts:
                self.machine.move(S.DISCONNECTED, f"gave up after {attempt} attempts")
                return

    async def _attempt(self, attempt: int) -> bool:
        self.attempts += 1
        await self._detach_quietly()
        try:
            await self._establish()
        except MT5Error as error:
            self._failed(error)
            self.observer.reconnect_attempted(attempt, False, type(error).__name__)
            if self.machine.state != S.RECONNECTING:
                self.machine.move(S.RECONNECTING, "reconnect attempt failed")
            return False
        self.last_failure = None
        self.observer.reconnect_attempted(attempt, True, None)
        return True

    async def _detach_quietly(self) -> None:
        """``shutdown()``, ignoring failures: a dead connection has nothing left to detach."""
        with contextlib.suppress(MT5Error):
            await self.caller.call("shutdown", deadline_s=self.timeouts.call_s)

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_reconnected(self) -> None:
        """Wait for a running background reconnection to finish (tests, and graceful callers)."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)
