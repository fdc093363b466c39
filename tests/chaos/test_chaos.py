"""The chaos test of exactly-once orders at CI scale, and tests of its checker and kill plan.

The CI run is the documented scale made small: 200 keys, 5 SIGKILLs, 6 % of the sends
faulted. It must come out clean AND show that the chaos happened (faults fired, unknown
outcomes resolved, kills landed): a chaos test in which nothing went wrong proves nothing.
The full scale is ``python -m tests.chaos.harness --orders 5000 --kills 50 --seed 1``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.journal import EventKind, SqliteJournal
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from tests.chaos.broker import ACCOUNT
from tests.chaos.harness import check as check_ledger
from tests.chaos.harness import kill_plan, ledger_of, run_chaos

LOGIN = ACCOUNT.login  # the netting demo account the chaos run trades
K = EventKind


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (our leftovers, if any)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


# ------------------------------------------------------------------------------ the CI run


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_exactly_once_survives_kills_and_faults_at_ci_scale(tmp_path: Path) -> None:
    workdir = tmp_path / "chaos"
    report = run_chaos(200, 5, seed=7, workdir=workdir, timeout_s=75.0, fault_rate=0.06)
    table = report.table()
    verdict = report.verdict
    assert (verdict.duplicates, verdict.lost, verdict.unexpected, verdict.unresolved) == (
        0, 0, 0, 0,
    ), table  # fmt: skip
    assert report.ok, table
    assert verdict.keys == 200, table
    assert verdict.executed + verdict.rejected == 200, table
    assert verdict.rejected >= 1, table  # business rejections are final, and leave no order
    # the chaos happened: kills landed, faults fired, unknown outcomes were resolved
    assert report.kills == 5, table
    assert report.restarts >= 5, table
    assert report.faults_fired >= 3, table
    assert verdict.unknown_outcomes >= 2, table
    assert not _processes_mentioning(str(workdir)), "a chaos process outlived the run"


# ------------------------------------------------------------------------------ the checker


@pytest.fixture
def sim() -> Iterator[SimTerminal]:
    """A netting account on a virtual Tuesday morning: the ledger is made by hand."""
    terminal = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    assert terminal.initialize(login=LOGIN, password=ACCOUNT.password, server=ACCOUNT.server)
    yield terminal
    terminal.shutdown()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal(tmp_path / "journal.db") as opened:
        yield opened


def _send(sim: SimTerminal, magic: int) -> None:
    """One executed EURUSD deal carrying ``magic`` (what a gateway's order leaves behind)."""
    sent = sim.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0,
                           "type_filling": 1, "magic": magic})  # fmt: skip
    assert sent is not None
    assert sent.retcode == 10009, sent


def _order(journal: SqliteJournal, key: str, *kinds: EventKind, retcode: int = 0) -> ClientOrderId:
    """A keyed order whose journal shows INTENT then ``kinds`` (the last with ``retcode``)."""
    client_id = journal.record_intent(LOGIN, {"op": "place", "key": key}, key)
    for kind in kinds:
        journal.record(kind, client_id, LOGIN, retcode=retcode or None)
    return client_id


def test_the_checker_counts_duplicate_lost_unexpected_unresolved_and_mismatched_orders(
    sim: SimTerminal, journal: SqliteJournal
) -> None:
    fine = _order(journal, "k0", K.SENT, K.ACKNOWLEDGED, retcode=10009)
    twice = _order(journal, "k1", K.SENT, K.ACKNOWLEDGED, retcode=10009)
    _order(journal, "k2", K.SENT, K.ACKNOWLEDGED, retcode=10009)  # never reached the broker
    _order(journal, "k3", K.SENT, K.REJECTED, retcode=10030)  # a business rejection: fine
    _order(journal, "k4", K.SENT, K.UNKNOWN)  # still open: unresolved, and no final outcome
    absent = _order(journal, "k5", K.SENT, K.UNKNOWN, K.RECONCILED_ABSENT)  # yet it executed
    other = _order(journal, "k6", K.SENT)
    journal.record(
        K.ACKNOWLEDGED,
        other,
        LOGIN,
        retcode=10009,
        result={"retcode": 10009, "order": 424242, "deal": 0},
    )  # not its order
    _send(sim, fine.magic)
    _send(sim, twice.magic)
    _send(sim, twice.magic)  # the same id on a second order: sent twice
    _send(sim, absent.magic)
    _send(sim, other.magic)
    _send(sim, ClientOrderId(LOGIN, 99).magic)  # in our namespace, unknown to the journal
    _send(sim, 12345)  # another EA's order: none of our business

    verdict = check_ledger(journal, LOGIN, [f"k{i}" for i in range(7)], ledger_of(sim))

    assert (verdict.keys, verdict.executed, verdict.rejected) == (7, 4, 1)
    assert verdict.duplicates == 1  # k1
    assert verdict.lost == 3  # k2 (executed, not in the ledger); k4, k5 (no final outcome)
    assert verdict.unexpected == 2  # id 99 (unknown), k5 (absent by the journal)
    assert verdict.unresolved == 1  # k4
    assert verdict.mismatched == 1  # k6: the journal names order 424242, the ledger another
    assert not verdict.clean
    assert any("k2" in p and "nowhere in the ledger" in p for p in verdict.problems)
    assert any("id 99" in p and "not in the journal" in p for p in verdict.problems)


def test_the_checker_passes_a_clean_ledger(sim: SimTerminal, journal: SqliteJournal) -> None:
    done = _order(journal, "k0", K.SENT, K.UNKNOWN, K.RECONCILED_PRESENT, K.LATE_RESULT)
    _order(journal, "k1", K.SENT, K.REJECTED, retcode=10030)
    _send(sim, done.magic)

    verdict = check_ledger(journal, LOGIN, ["k0", "k1"], ledger_of(sim))

    assert verdict.clean, verdict.problems
    assert (verdict.keys, verdict.executed, verdict.rejected) == (2, 1, 1)
    assert verdict.unknown_outcomes == 1


def test_a_key_never_journaled_is_lost(sim: SimTerminal, journal: SqliteJournal) -> None:
    verdict = check_ledger(journal, LOGIN, ["never"], ledger_of(sim))
    assert verdict.lost == 1
    assert verdict.problems == ["lost: never was never journaled"]


# ------------------------------------------------------------------------------ the kill plan


def test_the_kill_plan_is_seeded_and_spread_over_the_run() -> None:
    plan = kill_plan(random.Random(1), 5000, 50)
    assert plan == kill_plan(random.Random(1), 5000, 50)
    assert len(plan) == 50
    assert {k.mode for k in plan} == {"startup", "ready", "progress"}
    targets = [k.target for k in plan if k.mode == "progress"]
    assert targets == sorted(targets)
    assert targets[0] > 0
    assert targets[-1] < 5000 - 50  # never at the very end
    assert len(kill_plan(random.Random(2), 3, 10)) == 10  # more kills than keys still works
