"""A paused owner, through real processes: its order in flight, SIGSTOP past its lease, a
successor reconciles and places the order, SIGCONT: the paused owner's send is refused.

The processes: the chaos broker (the bridge in front of a simulator), gateway A reaching it
through a :class:`~tests.chaos.proxy.HoldingProxy`, and gateway B reaching it directly. A writes
INTENT + SENT for ``chaos-0`` and calls ``order_send``; the proxy holds that frame on the wire
(the send has left A: no deadline of A's can take it back). A is SIGSTOPped. B's ``connect()``
meets A's live lease (``MT5OwnershipError``, it waits), takes the account when the lease
expires (3 s) with a higher epoch, reconciles A's order (proven absent: it never reached the
broker) and places ``chaos-0`` itself, with the same client id. Then the proxy lets A's held
send through and A is SIGCONTed: the bridge must refuse the send (A's epoch is below B's),
the journal must not change (the store refuses A's fence; B only holds the account), and the
broker must hold exactly one order for the key.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mt5gate.orders.journal import EventKind, SqliteJournal
from tests.chaos.broker import ACCOUNT
from tests.chaos.checker import key_of_comment
from tests.chaos.client import ClientMemory
from tests.chaos.gateway import FENCED_EXIT
from tests.chaos.harness import read_ledger
from tests.chaos.processes import BrokerProcess, GatewayProcess, write_token
from tests.chaos.proxy import HoldingProxy

K = EventKind
KEY = "chaos-0"


def _gateway(workdir: Path, port: int, run: int, *extra: str) -> list[str]:
    return ["--port", str(port), "--token-file", str(workdir / "token"),
            "--journal", str(workdir / "journal.db"),
            "--client-file", str(workdir / "client.jsonl"), "--orders", "1",
            "--lease-ttl", "3", "--lease-renew", "1", "--lease-deadline", "2",
            "--seed", str(run), *extra]  # fmt: skip


def _kinds(workdir: Path) -> list[EventKind]:
    with SqliteJournal(workdir / "journal.db", readonly=True) as journal:
        client_id = journal.by_key(ACCOUNT.login, KEY)
        return (
            [] if client_id is None else [e.kind for e in journal.history(ACCOUNT.login, client_id)]
        )


def _events(workdir: Path) -> tuple[int, int]:
    """(events in the journal, the lease's epoch)."""
    with SqliteJournal(workdir / "journal.db", readonly=True) as journal:
        lease = journal.lease(ACCOUNT.login)
        total = sum(len(journal.history(ACCOUNT.login, s))
                    for s in journal.known_sequences(ACCOUNT.login))  # fmt: skip
    return total, lease.epoch if lease else 0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_token(tmp_path / "token")
    return tmp_path


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_paused_owner_s_send_is_refused_after_a_successor_took_over(workdir: Path) -> None:
    broker = BrokerProcess(workdir, workdir / "token", "--seed", "3", "--fault-rate", "0")
    proxy = HoldingProxy(broker.port)
    log = (workdir / "gateway.log").open("a", encoding="utf-8")
    first = second = None
    try:
        proxy.arm()
        first = GatewayProcess(_gateway(workdir, proxy.port, 0, "--order-timeout", "60"), log, 0)
        assert proxy.caught.wait(45.0), "gateway A never sent its order"
        # its "ready" line was printed before the order left; the thread reading its output
        # may not have reached that line yet when the proxy catches the order
        assert first.wait_for(time.monotonic() + 10, ready=True), "A never said it was ready"
        deadline = time.monotonic() + 10
        while _kinds(workdir)[-1:] != [K.SENT] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _kinds(workdir) == [K.INTENT, K.SENT]  # in flight: SENT, order_send on the wire
        first.pause()
        stale = first.feed.epoch

        second = GatewayProcess(_gateway(workdir, broker.port, 1, "--linger"), log, 1)
        assert second.wait_until(time.monotonic() + 45, lambda f: f.done), "B did not finish"
        assert second.feed.waits >= 1  # refused while A's lease lived: it never traded then
        assert second.feed.epoch > stale
        assert second.feed.recovered == 1  # A's in-flight order, reconciled by B
        kinds = _kinds(workdir)
        assert kinds[:3] == [K.INTENT, K.SENT, K.RECONCILED_ABSENT], kinds
        assert kinds[-1] is K.ACKNOWLEDGED  # B resent it with the same client id
        before = _events(workdir)

        assert proxy.release() >= 1  # A's send reaches the bridge now, with A's epoch
        first.resume()
        code = first.wait(time.monotonic() + 30)
        assert code in (0, FENCED_EXIT), code  # 0: it replayed the key and read B's result
        fence = broker.fresh_stats()["fence"]
        assert fence["refused_sends"] >= 1, fence  # the paused owner's order_send
        assert fence["refused"].get(str(stale), 0) >= 1, fence
        assert fence["stale_admitted"] == 0, fence
        assert _events(workdir) == before  # nothing of A's reached the journal

        ledger = read_ledger(broker.port, broker_token(workdir))
        ours = [o for o in ledger.orders if key_of_comment(o.comment) == KEY]
        assert len(ours) == 1, ours  # the key's one order: B's
        told = {f.client_ids for f in ClientMemory(workdir / "client.jsonl") if f.key == KEY}
        assert len(told) == 1  # A (if it answered) and B report the same order
    finally:
        for gateway in (first, second):
            if gateway is not None:
                gateway.close()
        proxy.close()
        broker.stop()
        log.close()


def broker_token(workdir: Path) -> str:
    """The bridge token the test wrote."""
    return (workdir / "token").read_text(encoding="utf-8").strip()
