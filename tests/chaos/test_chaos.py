"""The chaos test of exactly-once orders at CI scale, and tests of its checker and kill plan.

The CI run is the documented scale made small: 200 keys, 6 SIGKILLs and a pause, 6 % of the
sends faulted, the broker's history 2 s late, one journal replaced by an empty file and one
by an older backup, one second gateway taking over, same-key races with another body. It must
come out clean AND show that the chaos happened (faults fired, unknown outcomes resolved,
kills landed, blocks acknowledged, the paused owner refused, rogues refused): a chaos test in
which nothing went wrong proves nothing. The full scale is in ``docs/performance.md``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from mt5gate.orders.ids import ClientOrderId, tag_comment
from mt5gate.orders.journal import EventKind, SqliteJournal
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from tests.chaos.broker import ACCOUNT
from tests.chaos.checker import check, ledger_of
from tests.chaos.client import EXECUTED, REJECTED, SETTLED, ClientMemory, Final
from tests.chaos.harness import Options, kill_plan, run_chaos, with_scenarios
from tests.chaos.processes import processes_mentioning

LOGIN = ACCOUNT.login  # the netting demo account the chaos run trades
K = EventKind


# ------------------------------------------------------------------------------ the CI run


#: settle_s far below the history's lag: a lost order must stay unknown, never be resent,
#: until the history explains the account (tests/session/test_absence_proof.py).
CI_OPTIONS = Options(fault_rate=0.06, history_delay_ms=2000, empties=1, restores=1, seconds=1,
                     pauses=1, race_every=6, settle_s=0.5)  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(170)
def test_exactly_once_survives_kills_faults_lost_journals_and_paused_owners_at_ci_scale(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "chaos"
    report = run_chaos(200, 6, seed=7, workdir=workdir, timeout_s=150.0, options=CI_OPTIONS)
    table = report.table()
    verdict, s = report.verdict, report.scenarios
    assert (verdict.duplicates, verdict.lost, verdict.unexpected, verdict.unresolved) == (
        0, 0, 0, 0,
    ), table  # fmt: skip
    assert (verdict.mismatched, verdict.misreported) == (0, 0), table
    assert s.must_be_zero() == dict.fromkeys(s.must_be_zero(), 0), table
    assert report.ok, table
    assert verdict.keys == 200, table
    assert verdict.executed + verdict.rejected + verdict.settled == 200, table
    assert verdict.rejected >= 1, table  # business rejections are final, and leave no order
    # the chaos happened: kills landed, faults fired, unknown outcomes were resolved
    assert report.kills == 6, table
    assert report.restarts >= 6, table
    assert report.faults_fired >= 3, table
    assert verdict.unknown_outcomes >= 2, table
    # lost journals: both replaced, both blocked, both acknowledged by the operator
    assert (s.replaced, verdict.generations) == ({"empty": 1, "restore": 1}, 3), table
    assert s.blocks >= 2, table
    assert s.acknowledged == s.blocks, table
    assert s.orders_checked >= 1, table
    # two processes: the second was refused while the first lived, then took over
    assert s.takeovers == 1, table
    assert s.waits >= 1, table
    # the paused owner: woken after the takeover, refused by the bridge, stopped by itself
    assert s.pauses == 1, table
    assert s.stale_refused >= 1 or s.probes.get("refused", 0) >= 1, table
    assert sum(s.races.values()) >= 3, table
    assert not processes_mentioning(str(workdir)), "a chaos process outlived the run"


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


def _send(sim: SimTerminal, client: ClientOrderId, key: str = "", volume: float = 0.01) -> int:
    """One executed EURUSD BUY carrying ``client``'s id and ``key`` in its comment (what a
    gateway's order leaves behind); its order ticket."""
    sent = sim.order_send({"action": 1, "symbol": "EURUSD", "volume": volume, "type": 0,
                           "type_filling": 1, "magic": client.magic,
                           "comment": tag_comment(key, client)})  # fmt: skip
    assert sent is not None
    assert sent.retcode == 10009, sent
    return int(sent.order)


REQUEST = {"op": "place", "symbol": "EURUSD", "side": "buy", "volume": 0.01}


def _order(journal: SqliteJournal, key: str, *kinds: EventKind, retcode: int = 0) -> ClientOrderId:
    """A keyed order whose journal shows INTENT then ``kinds`` (the last with ``retcode``)."""
    client_id = journal.record_intent(LOGIN, {**REQUEST, "key": key}, key)
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
    _send(sim, fine, "k0")
    _send(sim, twice, "k1")
    _send(sim, twice, "k1")  # the same id on a second order: sent twice
    _send(sim, absent, "k5")
    _send(sim, other, "k6")
    _send(sim, ClientOrderId(LOGIN, 99))  # in our namespace, unknown to the journal
    sim.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0,
                    "type_filling": 1, "magic": 12345})  # another EA's order: not ours  # fmt: skip

    verdict = check([journal], LOGIN, [f"k{i}" for i in range(7)], ledger_of(sim))

    assert (verdict.keys, verdict.executed, verdict.rejected) == (7, 4, 1)
    assert verdict.duplicates == 1  # k1
    assert verdict.lost == 3  # k2 (executed, not in the ledger); k4, k5 (no final outcome)
    assert verdict.unexpected == 2  # id 99 (unknown), k5 (absent by the journal)
    assert verdict.unresolved == 1  # k4
    assert verdict.mismatched == 1  # k6: the journal names order 424242, the ledger another
    assert not verdict.clean
    assert any("k2" in p and "nowhere in the ledger" in p for p in verdict.problems)
    assert any("id 99" in p and "issued by no journal" in p for p in verdict.problems)


def test_the_checker_passes_a_clean_ledger(sim: SimTerminal, journal: SqliteJournal) -> None:
    done = _order(journal, "k0", K.SENT, K.UNKNOWN, K.RECONCILED_PRESENT, K.LATE_RESULT)
    _order(journal, "k1", K.SENT, K.REJECTED, retcode=10030)
    _send(sim, done, "k0")

    verdict = check([journal], LOGIN, ["k0", "k1"], ledger_of(sim))

    assert verdict.clean, verdict.problems
    assert (verdict.keys, verdict.executed, verdict.rejected) == (2, 1, 1)
    assert verdict.unknown_outcomes == 1


def test_a_key_never_final_is_lost(sim: SimTerminal, journal: SqliteJournal) -> None:
    verdict = check([journal], LOGIN, ["never"], ledger_of(sim))
    assert verdict.lost == 1
    assert verdict.problems == ["lost: never has no final outcome"]


def test_the_checker_counts_one_order_reported_as_another(sim: SimTerminal, tmp_path: Path) -> None:
    """Misreported, across journal lifetimes: the client's record and the union of journals."""
    with SqliteJournal(tmp_path / "old.db") as old, SqliteJournal(tmp_path / "new.db") as new:
        a = _order(old, "chaos-0", K.SENT, K.ACKNOWLEDGED, retcode=10009)
        b = _order(old, "chaos-1", K.SENT, K.ACKNOWLEDGED, retcode=10009)
        c = _order(new, "chaos-2", K.SENT, K.ACKNOWLEDGED, retcode=10009)
        lost_in_flight = _order(old, "chaos-3", K.SENT)  # the old journal died with it in flight
        ticket_a = _send(sim, a, "chaos-0")
        _send(sim, b, "chaos-0")  # issued for chaos-1, carries chaos-0: two orders of chaos-0
        _send(sim, c, "chaos-2", volume=0.02)  # not k2's request (a rogue body at the broker)
        _send(sim, lost_in_flight, "chaos-3")
        told = [
            Final("chaos-0", EXECUTED, (a.sequence,), (ticket_a,)),
            Final("chaos-1", EXECUTED, (a.sequence,), (ticket_a,)),  # told chaos-0's order
            Final("chaos-2", EXECUTED, (c.sequence,)),
            Final("chaos-3", SETTLED, (lost_in_flight.sequence,), by="operator", generation=1),
            Final("chaos-4", REJECTED),
        ]
        verdict = check([old, new], LOGIN, [f"chaos-{i}" for i in range(5)], ledger_of(sim),
                        told=told)  # fmt: skip

    assert (verdict.executed, verdict.settled, verdict.rejected) == (3, 1, 1)
    # chaos-1 was told chaos-0's order (issued for chaos-0, and carrying chaos-0: two counts);
    # b was issued for chaos-1 and carries chaos-0; c is not chaos-2's request (0.02 lots)
    assert verdict.misreported == 4, verdict.problems
    assert verdict.duplicates == 1  # chaos-0 placed as two ids at the broker
    assert (verdict.lost, verdict.unexpected, verdict.unresolved) == (0, 0, 0), verdict.problems
    assert verdict.generations == 2


def test_the_client_memory_survives_a_torn_line(tmp_path: Path) -> None:
    memory = ClientMemory(tmp_path / "client.jsonl")
    memory.append(Final("k0", EXECUTED, (1,), (10,)))
    with memory.path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "k1", "outc')  # killed mid-write
    memory.append(Final("k2", REJECTED, (2,)))
    assert sorted(memory.finals()) == ["k0", "k2"]


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


def test_scenarios_land_on_progress_moments_after_a_plain_first_kill() -> None:
    options = Options(empties=2, restores=2, seconds=3, pauses=3)
    plan = with_scenarios(random.Random(1), 5000, 50, options)
    assert len(plan) == 53  # the pauses come on top of the kills
    assert plan[0].action == "kill"
    actions = [k.action for k in plan]
    assert {a: actions.count(a) for a in options.scenarios} == options.scenarios
    assert all(k.mode == "progress" for k in plan if k.action != "kill")
    targets = [k.target for k in plan if k.mode == "progress"]
    assert targets == sorted(targets)
    with pytest.raises(ValueError, match="scenarios need"):
        with_scenarios(random.Random(1), 100, 2, options)
