"""The terminal worker: one named thread, deadlines, stuck detection, and the never-sent rule."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mt5gate.terminal.worker import (
    DeadlineExceededError,
    TerminalWorker,
    WorkerClosedError,
    WorkerStuckError,
)


class Gate:
    """A blocking call that waits until opened, counting how often each call really ran."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.ran: list[str] = []

    def blocking(self, name: str) -> str:
        self.ran.append(name)
        self.open.wait(10.0)
        return name

    def quick(self, name: str) -> str:
        self.ran.append(name)
        return name


def test_calls_run_in_order_on_one_named_thread() -> None:
    worker = TerminalWorker("acct-1")
    seen: list[str] = []

    async def main() -> list[int]:
        def job(i: int) -> int:
            seen.append(threading.current_thread().name)
            return i

        return await asyncio.gather(*(worker.run("f", lambda i=i: job(i), 1.0) for i in range(50)))

    assert asyncio.run(main()) == list(range(50))
    assert set(seen) == {"acct-1"}
    assert worker.close()
    assert "closed" in repr(worker)


def test_exceptions_reach_the_caller() -> None:
    worker = TerminalWorker()

    def boom() -> None:
        raise ValueError("from the terminal")

    with pytest.raises(ValueError, match="from the terminal"):
        asyncio.run(worker.run("boom", boom, 1.0))
    worker.close()


def test_queued_job_past_its_deadline_never_runs() -> None:
    worker, gate = TerminalWorker(), Gate()

    async def main() -> None:
        first = asyncio.ensure_future(worker.run("hang", lambda: gate.blocking("hang"), 0.05))
        await asyncio.sleep(0.01)
        with pytest.raises(DeadlineExceededError) as queued:
            await worker.run("order_send", lambda: gate.quick("order_send"), 0.02)
        assert queued.value.running is False
        with pytest.raises(DeadlineExceededError) as running:
            await first
        assert running.value.running is True
        assert worker.stuck
        with pytest.raises(WorkerStuckError, match="hang"):
            await worker.run("x", lambda: gate.quick("x"), 1.0)
        gate.open.set()
        for _ in range(100):
            if not worker.stuck:
                break
            await asyncio.sleep(0.01)
        assert await worker.run("after", lambda: gate.quick("after"), 1.0) == "after"

    asyncio.run(main())
    assert gate.ran == ["hang", "after"], "the expired queued call was never executed"
    worker.close()


def test_cancelled_caller_job_never_runs() -> None:
    worker, gate = TerminalWorker(), Gate()

    async def main() -> None:
        blocker = asyncio.ensure_future(worker.run("hang", lambda: gate.blocking("hang"), 5.0))
        await asyncio.sleep(0.01)
        queued = asyncio.ensure_future(worker.run("order_send", lambda: gate.quick("send"), 5.0))
        await asyncio.sleep(0.01)
        queued.cancel()
        await asyncio.gather(queued, return_exceptions=True)
        gate.open.set()
        await blocker
        await worker.run("sync", lambda: gate.quick("sync"), 1.0)

    asyncio.run(main())
    assert gate.ran == ["hang", "sync"]
    worker.close()


def test_busy_reports_the_running_call() -> None:
    worker, gate = TerminalWorker(), Gate()

    async def main() -> tuple[str, float] | None:
        task = asyncio.ensure_future(worker.run("slow", lambda: gate.blocking("slow"), 5.0))
        await asyncio.sleep(0.05)
        busy = worker.busy()
        gate.open.set()
        await task
        return busy

    busy = asyncio.run(main())
    assert busy is not None
    assert busy[0] == "slow"
    assert busy[1] >= 0.0
    assert worker.busy() is None
    worker.close()


def test_closed_worker_refuses_calls() -> None:
    worker = TerminalWorker()
    worker.start()
    assert worker.close()
    with pytest.raises(WorkerClosedError):
        worker.start()
    with pytest.raises(WorkerClosedError):
        asyncio.run(worker.run("f", lambda: 1, 1.0))


def test_close_reports_a_thread_held_by_a_hung_call() -> None:
    worker, gate = TerminalWorker(), Gate()

    async def main() -> None:
        with pytest.raises(DeadlineExceededError):
            await worker.run("hang", lambda: gate.blocking("hang"), 0.02)

    asyncio.run(main())
    assert worker.close(timeout_s=0.05) is False
    gate.open.set()


def test_results_for_a_closed_loop_are_dropped_quietly() -> None:
    worker, gate = TerminalWorker(), Gate()
    loop = asyncio.new_event_loop()
    task = loop.create_task(worker.run("slow", lambda: gate.blocking("slow"), 5.0))
    loop.run_until_complete(asyncio.sleep(0.02))
    task.cancel()
    loop.close()
    gate.open.set()
    assert worker.close(timeout_s=2.0)


class Scope:
    """A batch scope that records what ran inside it, and can fail at its end."""

    def __init__(self, fail_at_exit: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail_at_exit = fail_at_exit
        self.current: list[str] | None = None

    def __call__(self) -> Scope:
        return self

    def __enter__(self) -> None:
        self.current = []

    def __exit__(self, *exc: object) -> None:
        assert self.current is not None
        self.batches.append(self.current)
        self.current = None
        if self.fail_at_exit:
            raise OSError("commit failed")


def _queued_behind_a_blocker(worker: TerminalWorker, scope: Scope, gate: Gate) -> list[object]:
    """Five calls queued while the thread is busy: they run as one batch, in one scope."""

    def job(name: str) -> str:
        assert scope.current is not None  # inside the scope
        scope.current.append(name)
        return name

    async def main() -> list[object]:
        first = asyncio.ensure_future(worker.run("block", lambda: gate.blocking("b"), 5.0))
        while not gate.ran:
            await asyncio.sleep(0.001)
        rest = [worker.run("f", lambda n=n: job(f"j{n}"), 5.0) for n in range(5)]
        later = asyncio.gather(*rest, return_exceptions=True)
        await asyncio.sleep(0.05)
        gate.open.set()
        await asyncio.gather(first, return_exceptions=True)  # its own batch
        return list(await later)

    return asyncio.run(main())


def test_a_scope_wraps_each_batch_and_answers_after_it() -> None:
    scope, gate = Scope(), Gate()
    worker = TerminalWorker("journal", scope=scope)
    results = _queued_behind_a_blocker(worker, scope, gate)
    worker.close()
    assert results == [f"j{n}" for n in range(5)]
    assert scope.batches[-1] == [f"j{n}" for n in range(5)]  # one batch, one scope


def test_a_scope_that_fails_at_its_end_fails_every_call_of_the_batch() -> None:
    scope, gate = Scope(fail_at_exit=True), Gate()
    worker = TerminalWorker("journal", scope=scope)
    results = _queued_behind_a_blocker(worker, scope, gate)
    worker.close()
    assert all(isinstance(r, OSError) for r in results), results  # none of them stands
