"""Graceful shutdown with orders in flight (issue 6, item 9).

uvicorn serves the app on a thread of this process; the demo account's simulated terminal is
made slow to answer ``order_send`` (a latency fault: the order executes, its reply takes a
while). Orders are posted from client threads, and the server is told to exit while they are
in flight, as SIGTERM does. Either every in-flight order completes and is answered (the
graceful-shutdown timeout outlasts the sends), or, when the timeout cuts them short, each is
answered 503 and the one cut short mid-send is journaled as UNKNOWN, never left as a bare SENT
(the others, still waiting for the terminal, sent nothing), so that the next start reconciles it
(``connect()`` reconciles unresolved orders first: ``tests/orders/test_crash_recovery.py``).
Sessions are closed in both cases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from mt5gate.orders.journal import EventKind, SqliteJournal
from mt5gate.session import SessionState
from mt5gate.sim.terminal import SimTerminal
from tests.service.conftest import InProcess

KEY = "mg_shutdown-test-key-0123456789"
ORDERS = 4
LOGIN = 5001


class Slow(InProcess):
    """The service on a uvicorn thread, its demo terminal answering orders after ``delay_s``."""

    def __init__(self, data_dir: Path, delay_s: float, grace_s: float) -> None:
        super().__init__(data_dir, KEY, grace_s=grace_s)
        self.session = self.gateway.account("demo").session
        self.journal_path = self.settings.journal_path(self.settings.accounts[0])
        terminal = self.session.terminal
        assert isinstance(terminal, SimTerminal)
        terminal.faults.latency("order_send", delay_s)

    def post_orders(self) -> tuple[list[httpx.Response | Exception], list[threading.Thread]]:
        """``ORDERS`` market orders, each from its own thread, each with its own key."""
        answers: list[httpx.Response | Exception] = []

        def place(n: int) -> None:
            try:
                answers.append(httpx.post(
                    f"http://127.0.0.1:{self.port}/v1/accounts/demo/orders",
                    json={"symbol": "EURUSD", "side": "buy", "volume": 0.01},
                    headers={"X-API-Key": KEY, "Idempotency-Key": f"shutdown-{n}"}, timeout=30,
                ))  # fmt: skip
            except httpx.HTTPError as error:
                answers.append(error)

        threads = [threading.Thread(target=place, args=(n,)) for n in range(ORDERS)]
        for thread in threads:
            thread.start()
        return answers, threads

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.02)

    def requests_in_flight(self) -> int:
        """Requests whose head uvicorn has read and whose response is not complete (uvicorn
        keeps a task for each; nothing else is sent to this server)."""
        return len(self.server.server_state.tasks)

    def sent(self) -> int:
        """Orders whose INTENT and SENT are on disk (the journal locks; any thread may read)."""
        summaries = self.session.journal.summaries(LOGIN)
        return sum(1 for s in summaries if s.state == EventKind.SENT)

    def journal_states(self) -> dict[str | None, EventKind]:
        with SqliteJournal(self.journal_path) as journal:
            return {s.idempotency_key: s.state for s in journal.summaries(LOGIN)}


def _stop_mid_send(service: Slow) -> list[httpx.Response | Exception]:
    """Post the orders, stop the service once one is being sent, and collect the answers. The
    terminal takes one call at a time, so the others wait behind it, each at its own step."""
    answers, threads = service.post_orders()
    # The first order can reach SENT before the other threads have connected (the pipeline is
    # fast): wait until the server has read every request, or stopping would refuse the rest.
    try:
        arrived = lambda: service.requests_in_flight() + len(answers) >= ORDERS  # noqa: E731
        service.wait_for(arrived, "the orders did not all arrive")
        service.wait_for(lambda: service.sent() >= 1, "no order was sent")
    finally:  # a failed wait must not leave uvicorn's (non-daemon) thread holding the run open
        service.stop()
    for thread in threads:
        thread.join(30)
    return answers


def test_in_flight_orders_complete_when_the_grace_period_allows(tmp_path: Path) -> None:
    service = Slow(tmp_path, delay_s=1.0, grace_s=20)
    answers = _stop_mid_send(service)
    assert [a.status_code for a in answers if isinstance(a, httpx.Response)] == [201] * ORDERS
    assert service.session.state == SessionState.CLOSED
    states = service.journal_states()
    assert set(states) == {f"shutdown-{n}" for n in range(ORDERS)}
    assert set(states.values()) == {EventKind.ACKNOWLEDGED}


def test_orders_cut_short_by_the_grace_period_are_journaled_unknown(tmp_path: Path) -> None:
    service = Slow(tmp_path, delay_s=3.0, grace_s=0.5)
    answers = _stop_mid_send(service)
    assert len(answers) == ORDERS
    for answer in answers:  # a problem that says what to do, not uvicorn's plain 500
        assert isinstance(answer, httpx.Response)
        assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
        assert answer.headers["content-type"] == "application/problem+json"
        assert "same Idempotency-Key" in answer.json()["detail"]
    assert service.session.state == SessionState.CLOSED
    states = service.journal_states()
    # the order cut short mid-send is UNKNOWN (never a bare SENT); orders cut short before
    # their send have no record, or one that says nothing was sent
    assert EventKind.UNKNOWN in states.values()
    assert set(states.values()) <= {EventKind.UNKNOWN, EventKind.RECONCILED_ABSENT}
