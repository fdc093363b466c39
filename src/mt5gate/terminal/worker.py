"""The terminal worker: one named thread that owns a terminal and runs all of its calls.

The real ``MetaTrader5`` module is blocking and holds one process-wide connection, so every call
of a terminal goes through one thread (DESIGN §2): never the event loop, never two threads at
once. Callers on an asyncio loop submit calls and await futures; the thread drains the queue in
batches and hands results back with one ``call_soon_threadsafe`` per batch, which keeps the
per-call overhead below ``asyncio.to_thread`` (measured in ``bench/session_bench.py``).

Every call has a deadline. A call that outlives it fails its caller with
:class:`DeadlineExceededError`; if it was already running, the worker is *stuck*: new calls fail at
once with :class:`WorkerStuckError` instead of queueing behind it, and calls already queued fail at
their own deadlines. When the hung call finally returns, the worker is usable again (a worker
in a child process, which can be killed, comes with the bridge issue).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["DeadlineExceededError", "TerminalWorker", "WorkerClosedError", "WorkerStuckError"]


class DeadlineExceededError(Exception):
    """A terminal call did not finish within its deadline."""

    def __init__(self, function: str, deadline_s: float, *, running: bool) -> None:
        where = "running" if running else "queued behind another call"
        super().__init__(f"{function}() exceeded its {deadline_s:g} s deadline ({where})")
        self.function = function
        self.deadline_s = deadline_s
        self.running = running


class WorkerStuckError(Exception):
    """The worker is still inside a call that outlived its deadline; nothing else can run."""

    def __init__(self, function: str, busy_s: float) -> None:
        super().__init__(f"the terminal is still busy with {function}() after {busy_s:.1f} s")
        self.function = function
        self.busy_s = busy_s


class WorkerClosedError(Exception):
    """The worker was closed; its terminal takes no more calls."""


class _Phase(Enum):
    """Where a job is. QUEUED -> RUNNING (thread) or QUEUED -> DROPPED (deadline, cancel)."""

    QUEUED = "queued"
    RUNNING = "running"
    DROPPED = "dropped"


@dataclass(eq=False, slots=True)
class _Job:
    function: str
    call: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    deadline_s: float
    started: float = 0.0
    phase: _Phase = _Phase.QUEUED  # changed only under the worker's lock
    due: float = 0.0  # loop time at which the deadline passes
    on_late: Callable[[bool, Any], None] | None = None  # told of a result after the deadline


class _Watchdog:
    """One timer per event loop for every outstanding call of a worker on that loop.

    A per-call ``call_later`` + ``cancel`` costs more than the rest of the loop-side work; the
    watchdog is armed for the earliest deadline and, when it fires, expires what is due and
    re-arms for the next. Finished calls just leave the set.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[_Job], None]) -> None:
        self.loop = loop
        self.expire = expire
        self.jobs: dict[_Job, None] = {}  # insertion-ordered set
        self.handle: asyncio.TimerHandle | None = None

    def add(self, job: _Job) -> None:
        job.due = self.loop.time() + job.deadline_s
        self.jobs[job] = None
        handle = self.handle
        if handle is None or job.due < handle.when():
            self._arm(job.due)

    def discard(self, job: _Job) -> None:
        self.jobs.pop(job, None)

    def _arm(self, due: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self.handle = None
        now = self.loop.time()
        for job in [j for j in self.jobs if j.due <= now]:
            del self.jobs[job]
            self.expire(job)
        if self.jobs:
            self._arm(min(j.due for j in self.jobs))


_STOP = object()


class TerminalWorker:
    """Runs calls of one terminal, in order, on one thread it owns and joins."""

    def __init__(
        self,
        name: str = "mt5gate-terminal",
        *,
        clock: Callable[[], float] = time.monotonic,
        scope: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        """``scope``, when given, wraps each batch the thread runs (the order journal's group
        commit): results are handed back only after it has ended, and if its end raises, every
        call of the batch fails with that error. Entering it must not fail."""
        self.name = name
        self._clock = clock
        self._scope = scope
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running: _Job | None = None  # the job the thread is executing now
        self._stuck: _Job | None = None  # a running job whose deadline has passed
        self._closed = False
        # Guards the QUEUED -> RUNNING / DROPPED hand-off between the loop and the thread, so a
        # job is either run or reported "never sent", never both. Held for microseconds only.
        self._lock = threading.Lock()
        self._watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "stuck" if self._stuck else "ready"
        return f"<TerminalWorker {self.name!r} {state}>"

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._closed:
            raise WorkerClosedError(f"worker {self.name!r} is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop taking calls and join the thread; False if a hung call kept it from ending."""
        self._closed = True
        if self._thread is None:
            return True
        self._jobs.put(_STOP)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def stuck(self) -> bool:
        """Whether a call is running past its deadline."""
        return self._stuck is not None

    def busy(self) -> tuple[str, float] | None:
        """``(function, seconds)`` of the call running now, if any."""
        job = self._running
        return None if job is None else (job.function, self._clock() - job.started)

    def time_left(self) -> float:
        """Seconds until the running call's deadline, 0.0 when idle, stuck or past it: how
        long a call queued now may wait behind it without the terminal being at fault."""
        job = self._running
        if job is None or self._stuck is not None:
            return 0.0
        return max(0.0, job.due - job.loop.time())

    # ------------------------------------------------------------------- calling

    async def run(
        self,
        function: str,
        call: Callable[[], Any],
        deadline_s: float,
        *,
        on_late: Callable[[bool, Any], None] | None = None,
    ) -> Any:
        """Run ``call`` on the worker thread; its result, or its exception, within the deadline.

        ``on_late(ok, value)`` is called on the caller's loop if the call finishes after its
        deadline expired (the caller already got :class:`DeadlineExceededError`): a late reply
        of ``order_send`` still says what happened to the order.
        """
        self._admit()
        loop = asyncio.get_running_loop()
        job = _Job(function, call, loop.create_future(), loop, deadline_s, on_late=on_late)
        watchdog = self._watchdog(loop)
        watchdog.add(job)
        self._jobs.put(job)
        try:
            return await job.future
        finally:
            watchdog.discard(job)
            self._drop_if_queued(job)  # a cancelled caller's job must not run later

    def _watchdog(self, loop: asyncio.AbstractEventLoop) -> _Watchdog:
        watchdog = self._watchdogs.get(loop)
        if watchdog is None:
            watchdog = self._watchdogs[loop] = _Watchdog(loop, self._expire)
        return watchdog

    def _drop_if_queued(self, job: _Job) -> bool:
        """Mark a still-queued job as never to run; False if the thread already took it."""
        with self._lock:
            if job.phase is _Phase.QUEUED:
                job.phase = _Phase.DROPPED
            return job.phase is _Phase.DROPPED

    def _admit(self) -> None:
        if self._closed:
            raise WorkerClosedError(f"worker {self.name!r} is closed")
        stuck = self._stuck
        if stuck is not None:
            raise WorkerStuckError(stuck.function, self._clock() - stuck.started)
        if self._thread is None:
            self.start()

    def _expire(self, job: _Job) -> None:
        """Loop side: the deadline passed. A running job makes the worker stuck."""
        if job.future.done():
            return
        running = self._running is job
        if running:
            self._stuck = job
        job.future.set_exception(
            DeadlineExceededError(job.function, job.deadline_s, running=running)
        )

    # -------------------------------------------------------------- thread side

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._deliver(self._run_batch(batch))

    def _next_batch(self) -> list[_Job] | None:
        """Block for one job, then take whatever else is already queued (one wake-up)."""
        first = self._jobs.get()
        batch: list[_Job] = []
        item: object = first
        while True:
            if item is _STOP:
                return batch if batch else None
            assert isinstance(item, _Job)
            batch.append(item)
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return batch

    def _run_batch(self, batch: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        if self._scope is None:
            return self._execute(batch)
        done: list[tuple[_Job, bool, Any]] = []
        try:
            with self._scope():
                done = self._execute(batch)
        except Exception as error:  # the scope's end failed: no result of the batch stands
            return [(job, False, error) for job, _, _ in done]
        return done

    def _execute(self, batch: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        done: list[tuple[_Job, bool, Any]] = []
        for job in batch:
            if self._take(job):
                done.append(self._execute_one(job))
        return done

    def _take(self, job: _Job) -> bool:
        """Thread side: claim a queued job; False if it was dropped (deadline or cancel)."""
        with self._lock:
            if job.phase is not _Phase.QUEUED:
                return False
            job.phase = _Phase.RUNNING
            job.started = self._clock()
            self._running = job
            return True

    def _execute_one(self, job: _Job) -> tuple[_Job, bool, Any]:
        try:
            return (job, True, job.call())
        except Exception as error:  # handed to the caller, never lost
            return (job, False, error)
        finally:
            self._running = None
            if self._stuck is job:
                self._stuck = None

    @staticmethod
    def _deliver(done: list[tuple[_Job, bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
        for item in done:
            by_loop.setdefault(item[0].loop, []).append(item)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # the caller's loop is closed: nobody is waiting
                continue


def _settle(items: list[tuple[_Job, bool, Any]]) -> None:
    """Loop side: complete the futures of a batch (skipping those already expired)."""
    for job, ok, value in items:
        if job.future.done():
            if job.on_late is not None and not job.future.cancelled():
                job.on_late(ok, value)
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
