"""The chaos harness: one broker process, gateway processes killed, paused, doubled and given
other journals at random moments, then a checker over every journal, the client's memory and
the broker's ledger.

::

    python -m tests.chaos.harness --orders 5000 --kills 50 --seed 1 \\
        [--history-delay-ms 30000] [--empty-journals 2] [--restores 2] \\
        [--second-gateways 3] [--pauses 3] [--race-every 20] [--settle-s 0.5] \\
        [--fault-rate 0.03] [--hang-cap 1.5] [--timeout 3600] [--workdir DIR]

:func:`run_chaos` does the work and returns a :class:`Report`; the command prints it as a table
and as JSON and exits 1 when any count that must be zero is not (or a planned kill or scenario
did not happen, or the run did not finish), 0 otherwise.

**Kills** are planned from the seed, in three kinds, so that they land everywhere a crash can:
``startup`` (0.25-1 s after the process starts: imports, connecting, start-up recovery),
``ready`` (within 30 ms of the gateway saying it is ready) and ``progress`` (a few ms after the
n-th key became final: mid-send, mid-reconciliation, between SENT and the reply). A gateway that
finishes before its planned kill is restarted and killed early instead. Then a last gateway runs
to completion. After every SIGKILL the journal is copied with the sqlite3 backup API (the
gateway is dead: the copy is what a nightly backup would hold).

Some progress kills carry a **scenario** (all seeded, all at chosen moments):

* **late history** (``--history-delay-ms``): the broker's deals and history orders show up that
  late while positions are current at once, for the whole run. Reconciliation must keep such an
  order UNKNOWN (never resend it) until the history explains the positions. ``--settle-s``
  sets the gateways' ``ReconcilePolicy.settle_s`` (0.5 s, far below the lag: absence must be
  concluded only on evidence that cannot be late). Before the absence proof was fixed this run
  found lost orders proven absent and resent (deals the history did not show yet cancelled out;
  ``tests/session/test_absence_proof.py`` keeps the minimal case).
* **a lost journal** (``--empty-journals``, ``--restores``): after the kill, the journal in use
  is retired to the run's archive and replaced by an empty file, or by the backup taken at an
  earlier kill. The restarted gateway's start-up audit finds orders at the broker that its
  journal never issued, and it must refuse new orders (``MT5OrderBlockedError``: it exits 4
  without placing any). The harness then plays the operator (:mod:`tests.chaos.operator`): it
  waits out the history's lag, lists the broker's orders the journal never issued, tells their
  keys from their comments (``chaos-<i>``), records those keys as settled in the *client's*
  memory, and runs ``mt5gate journal acknowledge``. The client never sends a key it knows
  settled.

  Why this is the contract: a lost journal loses idempotency keys by definition (whatever the
  journal knew about a key is gone, and nothing at the broker carries a key but a comment the
  gateway does not read back). What mt5gate must guarantee is that it *stops and says so*
  (the block, until a person looked), that it *never repeats a client id* (ids are never below
  the wall clock, so the ids the new journal hands out are new), and that it *never reports one
  order as another* (evidence is matched against the request). Knowing which keys are done is
  then the client's and the operator's part, which is why the client keeps its own memory of
  final keys (:mod:`tests.chaos.client`) outside every journal. The restarted gateway is
  started only once the history's lag has passed: the audit can only see the orders the
  broker's history shows (docs/performance.md, the chaos section's notes).
* **two gateways** (``--second-gateways``): a second gateway process is started on the same
  journal while the first trades. Its ``connect()`` must raise ``MT5OwnershipError`` (it says
  ``waiting`` and retries, never trading) until the first is SIGKILLed; then it takes over at
  once (a dead process's lease on this host is not waited out) and carries on.
* **a paused owner** (``--pauses``): the gateway is SIGSTOPped (keeping its pid, its sockets and
  its lease), a second gateway waits out the lease (4 s), takes the account with a higher
  epoch, reconciles what the first left in flight, fences the bridge and trades. Then, in a
  window where the second is SIGSTOPped too (so nothing else can write; both are paused
  between their journal writes), the first is SIGCONTed: it must not reach the terminal
  (the bridge refuses its epoch, at once even while the terminal is busy: the broker's
  counts per epoch, and the read it makes on noticing, ``probe``) and must not write the
  journal (the event count must not move while the lease is still the second's). It exits 5
  (fenced), or is SIGKILLed after 1.5 s; the second is SIGCONTed and goes on.
* **same-key races** (``--race-every``): the gateway fires, concurrently with about one attempt
  in R, the same key with twice the volume; it must be refused (``MT5IdempotencyError``), never
  return a result, and the real request must be unaffected (the checker's counts).

The checker (:mod:`tests.chaos.checker`) then reads every journal generation the run used, the
client's memory and the ledger, and counts duplicates, lost, unexpected, unresolved, mismatched
and misreported orders: all must be zero. The scenario evidence adds its own must-be-zero
counts: journal events written in a pause window, calls the bridge let through with a stale
epoch, orders placed while a journal was behind, blocks missed, takeovers before the first
owner died.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from mt5gate.orders.evidence import collect
from mt5gate.orders.journal import SqliteJournal
from mt5gate.terminal.bridge import BridgeTerminal
from tests.chaos.broker import ACCOUNT, FAULT_KINDS, HOST
from tests.chaos.checker import Ledger, Verdict, check, ledger_of
from tests.chaos.client import ClientMemory
from tests.chaos.gateway import BLOCKED_EXIT, FENCED_EXIT, key_name
from tests.chaos.operator import backup, issued_sequences, replace, retire, settle
from tests.chaos.processes import BrokerProcess, GatewayProcess, write_token

__all__ = [
    "Kill",
    "Options",
    "Report",
    "Scenarios",
    "kill_plan",
    "main",
    "run_chaos",
    "with_scenarios",
]

#: Seconds a woken ex-owner gets to show what it does before it is SIGKILLed (the second
#: owner, paused meanwhile, keeps its 4 s lease well past it).
PAUSE_WINDOW_S: Final = 1.5
#: Scenario actions a planned kill can carry (``kill``: a plain SIGKILL).
ACTIONS: Final = ("kill", "empty", "restore", "second", "pause")


# ---------------------------------------------------------------------------------- the plan


def history_lag_s(delay_ms: int) -> float:
    """The gateways' ReconcilePolicy.history_lag_s for a broker whose history is ``delay_ms``
    late: twice that and a second (the bound must hold; more only slows settling)."""
    return 2 * delay_ms / 1000 + 1.0


@dataclass(frozen=True, slots=True)
class Kill:
    """When to act on one gateway run: ``mode`` startup / ready / progress (module docstring),
    and what to do then (``action``, one of :data:`ACTIONS`)."""

    mode: str
    delay_s: float
    target: int = 0  # progress: keys final before the kill
    action: str = "kill"


def kill_plan(rng: random.Random, orders: int, kills: int) -> list[Kill]:
    """The seeded kill schedule: about 15 % at start-up, 15 % right after ready, the rest at
    random points of progress (ascending targets spread over the keys, short of the end)."""
    modes = [
        "startup" if (r := rng.random()) < 0.15 else "ready" if r < 0.3 else "progress"
        for _ in range(kills)
    ]
    span = range(1, max(orders - max(orders // 50, 2), 2))
    count = modes.count("progress")
    draws = rng.sample(span, count) if count <= len(span) else rng.choices(span, k=count)
    targets = iter(sorted(draws))
    plan = []
    for mode in modes:
        if mode == "startup":
            plan.append(Kill(mode, rng.uniform(0.25, 1.0)))
        elif mode == "ready":
            plan.append(Kill(mode, rng.uniform(0.0, 0.03)))
        else:
            plan.append(Kill(mode, rng.uniform(0.0, 0.02), next(targets)))
    return plan


@dataclass(frozen=True, slots=True)
class Options:
    """Faults and scenarios of one run (module docstring)."""

    fault_rate: float = 0.03
    hang_cap_s: float = 1.5
    history_delay_ms: int = 0
    empties: int = 0
    restores: int = 0
    seconds: int = 0
    pauses: int = 0
    race_every: int = 0
    #: the gateways' ReconcilePolicy.settle_s (below the history's lag, as a real terminal's
    #: lag can be: a lost order must still never be proven absent before its deal shows)
    settle_s: float = 0.5

    @property
    def scenarios(self) -> dict[str, int]:
        """Planned count per scenario action."""
        return {"empty": self.empties, "restore": self.restores, "second": self.seconds,
                "pause": self.pauses}  # fmt: skip


def with_scenarios(rng: random.Random, orders: int, kills: int, options: Options) -> list[Kill]:
    """``kills`` kills plus ``options.pauses`` pauses; the scenarios land at progress moments
    (the gateway trading), never on the first entry, which stays a plain kill (so a restore
    always has a backup from an earlier kill)."""
    plan = kill_plan(rng, orders, kills + options.pauses)
    wanted = [a for a, n in options.scenarios.items() for _ in range(n)]
    if len(wanted) >= len(plan):
        raise ValueError(f"{len(wanted)} scenarios need more than {len(wanted)} kills")
    rng.shuffle(wanted)
    chosen = dict(zip(sorted(rng.sample(range(1, len(plan)), len(wanted))), wanted, strict=True))
    span = range(1, max(orders - max(orders // 50, 2), 2))
    for index, action in chosen.items():
        target = plan[index].target if plan[index].mode == "progress" else rng.choice(span)
        plan[index] = Kill("progress", rng.uniform(0.0, 0.02), target, action)
    targets = iter(sorted(k.target for k in plan if k.mode == "progress"))
    return [dataclasses.replace(k, target=next(targets)) if k.mode == "progress" else k
            for k in plan]  # fmt: skip


# ---------------------------------------------------------------------------------- the report


@dataclass(slots=True)
class Scenarios:
    """What the scenarios did, and their own must-be-zero counts."""

    history_delay_ms: int = 0
    generations: int = 1
    replaced: dict[str, int] = field(default_factory=dict)  # empty / restore
    blocks: int = 0  # gateway runs that refused new orders (exit 4)
    acknowledged: int = 0  # `mt5gate journal acknowledge` runs that lifted a block
    settled_keys: int = 0  # keys the operator settled that the client did not know final
    orders_checked: int = 0  # broker orders the operator found unknown to the journal
    missed_blocks: int = 0  # a journal behind the broker, and no block: must be 0
    traded_while_behind: int = 0  # orders placed before the operator acknowledged: must be 0
    takeovers: int = 0  # second gateways that took over from a killed first
    waits: int = 0  # MT5OwnershipError at connect while another owner lived
    early_takeovers: int = 0  # a second gateway ready while the first lived: must be 0
    pauses: int = 0
    recovered_after_pause: int = 0  # in-flight orders of a paused owner its successor settled
    stale_writes: int = 0  # journal events written in a pause window: must be 0
    stale_admitted: int = 0  # bridge calls let through with a stale epoch: must be 0
    stale_refused: int = 0  # calls of paused ex-owners the bridge refused
    fenced_exits: int = 0  # woken ex-owners that stopped by themselves (exit 5)
    probes: dict[str, int] = field(default_factory=dict)  # what their last read met
    races: dict[str, int] = field(default_factory=dict)  # refused rogues: inflight / after

    def must_be_zero(self) -> dict[str, int]:
        """The scenario counts that must be zero."""
        return {"stale_writes": self.stale_writes, "stale_admitted": self.stale_admitted,
                "traded_while_behind": self.traded_while_behind,
                "missed_blocks": self.missed_blocks, "early_takeovers": self.early_takeovers,
                "stale_reads_answered": self.probes.get("answered", 0)}  # fmt: skip


@dataclass(slots=True)
class Report:
    """The outcome of a chaos run: the checker's counts, the chaos that happened, the time."""

    orders: int
    seed: int
    fault_rate: float
    kills_planned: int
    verdict: Verdict
    options: Options = field(default_factory=Options)
    kills: int = 0
    restarts: int = 0
    kill_modes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    link_restores: int = 0
    recovered: int = 0
    scenarios: Scenarios = field(default_factory=Scenarios)
    done: dict[str, int] = field(default_factory=dict)  # scenario actions carried out
    gateway_exit: int | None = None
    finished: bool = False
    wall_s: float = 0.0
    workdir: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def faults_fired(self) -> int:
        """Faults the broker injected, all kinds."""
        return sum(self.faults.values())

    @property
    def ok(self) -> bool:
        """Clean ledger and scenarios, every key final, every planned kill and scenario done,
        the last run exited 0."""
        planned = self.options.scenarios
        return (
            self.verdict.clean
            and not any(self.scenarios.must_be_zero().values())
            and self.finished
            and self.gateway_exit == 0
            and self.kills >= self.kills_planned
            and all(self.done.get(a, 0) >= n for a, n in planned.items())
            and not self.errors
        )

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        verdict = dataclasses.asdict(self.verdict)
        return {
            "ok": self.ok, "orders": self.orders, "seed": self.seed,
            "fault_rate": self.fault_rate, **{k: v for k, v in verdict.items() if k != "problems"},
            "kills": self.kills, "kills_planned": self.kills_planned, "restarts": self.restarts,
            "kill_modes": self.kill_modes, "faults_fired": self.faults_fired,
            "faults": self.faults, "link_restores": self.link_restores,
            "recovered": self.recovered, "scenarios": dataclasses.asdict(self.scenarios),
            "scenarios_planned": self.options.scenarios, "scenarios_done": self.done,
            "gateway_exit": self.gateway_exit, "finished": self.finished,
            "wall_s": round(self.wall_s, 1), "workdir": self.workdir,
            "problems": self.verdict.problems, "errors": self.errors,
        }  # fmt: skip

    def table(self) -> str:
        """The report for people: one row per count, the must-be-zero ones marked."""
        v, s = self.verdict, self.scenarios
        must_be_zero = {"duplicates": v.duplicates, "lost": v.lost, "unexpected": v.unexpected,
                        "unresolved": v.unresolved, "mismatched": v.mismatched,
                        "misreported": v.misreported, **s.must_be_zero()}  # fmt: skip
        faults = ", ".join(f"{k} {n}" for k, n in self.faults.items()) or "none reported"
        modes = ", ".join(f"{k} {n}" for k, n in sorted(self.kill_modes.items())) or "none"
        planned = self.options.scenarios
        done = ", ".join(f"{a} {self.done.get(a, 0)}/{n}" for a, n in planned.items() if n)
        rows = [
            ("keys", str(v.keys), ""),
            ("executed", str(v.executed), ""),
            ("rejected", str(v.rejected), "business rejections (final)"),
            ("settled", str(v.settled), "keys the operator settled from the broker"),
            *((name, str(n), "ok" if n == 0 else "FAIL") for name, n in must_be_zero.items()),
            ("kills", f"{self.kills}/{self.kills_planned}", modes),
            ("scenarios", done or "none", ""),
            ("restarts", str(self.restarts), ""),
            ("faults fired", str(self.faults_fired), faults),
            ("link restores", str(self.link_restores), "trade-server link back after a drop"),
            ("recovered", str(self.recovered), "left open by a kill or pause, settled at start"),
            ("unknown outcomes", str(v.unknown_outcomes), "orders that went through UNKNOWN"),
            ("resubmitted", str(v.resubmitted), "orders resent with the same id"),
            ("history delay", f"{s.history_delay_ms} ms", "deals and history orders this late"),
            ("journals", str(v.generations), _replaced(s)),
            ("blocks", str(s.blocks), f"acknowledged {s.acknowledged}; audit findings "
             f"{v.flagged}; the operator checked {s.orders_checked} orders and settled "
             f"{s.settled_keys} keys the client did not know final"),
            ("takeovers", str(s.takeovers), f"second gateways; {s.waits} refused connects"),
            ("pauses", str(s.pauses), f"ex-owner calls refused {s.stale_refused}, fenced "
             f"exits {s.fenced_exits}, probes {_counts(s.probes)}, in-flight settled by the "
             f"successor {s.recovered_after_pause}"),
            ("races", str(sum(s.races.values())), f"rogue bodies refused: {_counts(s.races)}"),
            ("last gateway exit", str(self.gateway_exit), ""),
            ("wall time", f"{self.wall_s:.1f} s", ""),
        ]  # fmt: skip
        width = max(len(r[0]) for r in rows)
        lines = [f"mt5gate chaos run: {self.orders} orders, {self.kills_planned} kills, seed "
                 f"{self.seed}, fault rate {self.fault_rate}"]  # fmt: skip
        lines += [f"  {name:<{width}}  {value:>9}  {note}".rstrip() for name, value, note in rows]
        lines += [f"  ! {problem}" for problem in v.problems[:20]]
        lines += [f"  ! {error}" for error in self.errors]
        lines.append(f"RESULT: {'PASS' if self.ok else 'FAIL'}   (work dir {self.workdir})")
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"


def _replaced(s: Scenarios) -> str:
    return f"replaced by an empty file {s.replaced.get('empty', 0)}, by a backup " \
           f"{s.replaced.get('restore', 0)}"  # fmt: skip


# ---------------------------------------------------------------------------------- the run


def read_ledger(port: int, token: str) -> Ledger:
    """The broker's ledger through a fresh, unfenced bridge client (reads only)."""
    terminal = BridgeTerminal(HOST, port, token=token, call_timeout_s=60.0)
    try:
        if not terminal.initialize(login=ACCOUNT.login, password=ACCOUNT.password,
                                   server=ACCOUNT.server):  # fmt: skip
            raise RuntimeError(f"the checker cannot attach to the broker: {terminal.last_error()}")
        return ledger_of(terminal)
    finally:
        terminal.close()


def _journal_state(path: Path) -> tuple[int, int]:
    """(events in the journal, the account lease's epoch), read-only."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        (events,) = connection.execute("SELECT COUNT(*) FROM events").fetchone()
        row = connection.execute("SELECT epoch FROM leases WHERE login = ?",
                                 (ACCOUNT.login,)).fetchone()  # fmt: skip
    finally:
        connection.close()
    return int(events), int(row[0]) if row else 0


def _in_transaction(path: Path) -> bool:
    """Whether some process holds the journal's write lock now (mid-transaction)."""
    connection = sqlite3.connect(path, timeout=0.0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return True
    finally:
        connection.close()
    return False


def _our_orders(ledger: Ledger) -> int:
    return sum(len(e.tickets) for e in collect(ACCOUNT.login, ledger.orders, ledger.deals).values())


class ChaosRun:
    """One chaos run's moving parts: the broker, the gateways, the journals, the memory."""

    def __init__(self, orders: int, seed: int, workdir: Path, timeout_s: float,
                 options: Options, log: IO[str]) -> None:  # fmt: skip
        self.orders, self.seed, self.options, self.log = orders, seed, options, log
        self.began = time.monotonic()
        self.until = self.began + timeout_s
        self.workdir = workdir
        self.journal = workdir / "journal.db"
        self.archive = workdir / "journals"
        self.backups = workdir / "backups"
        for folder in (self.archive, self.backups):
            folder.mkdir(exist_ok=True)
        self.memory = ClientMemory(workdir / "client.jsonl")
        self.token_file = workdir / "token"
        self.token = write_token(self.token_file)
        self.rng = random.Random(seed)
        self.generation = 0
        self.retired: list[Path] = []
        self.saved: list[Path] = []  # backups, one per kill, oldest first
        self.runs: list[GatewayProcess] = []
        self.current: GatewayProcess | None = None
        self.behind: tuple[bool, int] | None = None  # after a replacement: (expected, orders)
        self.report = Report(orders, seed, options.fault_rate, 0, Verdict(), options,
                             workdir=str(workdir))  # fmt: skip
        self.report.scenarios.history_delay_ms = options.history_delay_ms
        self.broker = BrokerProcess(
            workdir, self.token_file, "--seed", str(seed), "--fault-rate",
            str(options.fault_rate), "--hang-cap", str(options.hang_cap_s),
            "--history-delay-ms", str(options.history_delay_ms),
        )  # fmt: skip

    @property
    def delay_s(self) -> float:
        """The broker's history lag, in seconds."""
        return self.options.history_delay_ms / 1000

    def timed_out(self) -> bool:
        """Whether the run's time is up."""
        return time.monotonic() > self.until

    def ledger(self) -> Ledger:
        """The broker's ledger now."""
        return read_ledger(self.broker.port, self.token)

    def start(self) -> GatewayProcess:
        """A new gateway run on the journal in use."""
        args = ["--port", str(self.broker.port), "--token-file", str(self.token_file),
                "--journal", str(self.journal), "--client-file", str(self.memory.path),
                "--orders", str(self.orders), "--seed", str(self.seed * 1000 + len(self.runs)),
                "--generation", str(self.generation),
                "--race-every", str(self.options.race_every),
                "--budget", "3" if not self.delay_s else "2",
                "--settle", str(self.options.settle_s),
                "--history-lag", str(history_lag_s(self.options.history_delay_ms))]  # fmt: skip
        gateway = GatewayProcess(args, self.log, len(self.runs))
        self.runs.append(gateway)
        return gateway

    def close(self) -> None:
        """Every gateway gone, then the broker (its last stats read)."""
        for gateway in self.runs:
            gateway.close()
        self.broker.stop()
        stats = self.broker.stats()
        self.report.faults = {k: int(stats.get("faults", {}).get(k, 0)) for k in FAULT_KINDS}
        self.report.link_restores = int(stats.get("restored", 0))
        self.report.scenarios.stale_admitted = int(stats.get("fence", {}).get("stale_admitted",
                                                                               0))  # fmt: skip

    # ------------------------------------------------------------------ carrying out the plan

    def carry_out(self, plan: list[Kill]) -> None:
        """Every planned kill and scenario, then a last gateway to completion."""
        for planned in plan:
            kill = planned
            while True:
                if self.timed_out():
                    self.report.errors.append(f"timed out after {self.report.kills} kills")
                    return
                gateway = self._gateway()
                if self._land(gateway, kill):
                    break
                if not self._ended(gateway):
                    return
                if gateway.process.returncode == 0:
                    kill = Kill("startup", self.rng.uniform(0.1, 0.4))  # all final: kill early
        while not self.report.errors:
            gateway = self._gateway()
            code = gateway.wait(self.until)
            if code is None:
                self.report.errors.append("the last gateway run did not finish in time")
                return
            self.report.gateway_exit = code
            if code != BLOCKED_EXIT:
                self.report.finished = gateway.feed.done and code == 0
                if code != 0:
                    self.report.errors.append(f"the last gateway run exited {code}")
                return
            self._ended(gateway)

    def _gateway(self) -> GatewayProcess:
        if self.current is None or not self.current.alive():
            self.current = self.start()
            self.report.restarts = len(self.runs) - 1
        return self.current

    def _ended(self, gateway: GatewayProcess) -> bool:
        """A gateway ended by itself: fine when done, the operator's turn when blocked."""
        code = gateway.wait(self.until)
        self.current = None
        self._check_block(gateway, code)
        if code == BLOCKED_EXIT:
            self._operate()
            return True
        if code != 0:
            self.report.errors.append(f"a gateway run exited {code}; see gateway.log")
            return False
        return True

    def _check_block(self, gateway: GatewayProcess, code: int | None) -> None:
        """The first gateway after a journal was replaced: it must block if the journal is
        behind the broker, and must not place an order before the operator acknowledged."""
        if self.behind is None:
            return
        expected, _ = self.behind
        if expected and code != BLOCKED_EXIT and gateway.feed.ready:
            self.report.scenarios.missed_blocks += 1
            self.report.errors.append(f"gateway run {gateway.run} did not block on a journal "
                                      "behind the broker")  # fmt: skip
        if code != BLOCKED_EXIT or not expected:
            self.behind = None

    def _operate(self) -> None:
        """The runbook (``tests.chaos.operator``), and the check that nothing was placed while
        the journal was behind."""
        s = self.report.scenarios
        s.blocks += 1
        done = settle(self.journal, self.ledger, self.memory, self.generation, time.monotonic(),
                      self.delay_s)  # fmt: skip
        self.log.write(f"\n===== operator: {done.orders} orders, keys {list(done.keys)[:20]}, "
                       f"blocks listed {len(done.blocked)}\n{done.output}\n")  # fmt: skip
        self.log.flush()
        s.settled_keys += len(done.new_keys)
        s.orders_checked += done.orders
        s.acknowledged += done.acknowledged
        if not done.acknowledged:
            self.report.errors.append(f"mt5gate journal acknowledge failed: {done.output}")
        if self.behind is not None:
            placed = _our_orders(self.ledger()) - self.behind[1]
            s.traded_while_behind += max(placed, 0)
            self.behind = None

    def _land(self, gateway: GatewayProcess, kill: Kill) -> bool:
        """Wait for the kill's moment, then carry out its action; False if it ended first."""
        if kill.mode == "ready" and not gateway.wait_for(self.until, ready=True):
            return False
        if kill.mode == "progress" and not gateway.wait_for(self.until, ready=True,
                                                            final=kill.target):  # fmt: skip
            return False
        moment = (gateway.started if kill.mode == "startup" else time.monotonic()) + kill.delay_s
        time.sleep(max(moment - time.monotonic(), 0.0))
        if kill.action == "pause":
            return self._pause(gateway)
        if kill.action == "second":
            return self._second(gateway, kill)
        if not gateway.kill():
            return False
        self._killed(kill)
        self._save()
        if kill.action in ("empty", "restore"):
            self._replace(kill.action)
        self.current = None
        return True

    def _killed(self, kill: Kill) -> None:
        self.report.kills += 1
        self.report.kill_modes[kill.mode] = self.report.kill_modes.get(kill.mode, 0) + 1
        if kill.action != "kill":
            self.report.done[kill.action] = self.report.done.get(kill.action, 0) + 1

    def _save(self) -> None:
        """The nightly backup: a copy of the journal while no gateway runs."""
        if self.journal.exists():
            target = self.backups / f"kill-{self.report.kills}.db"
            backup(self.journal, target)
            self.saved.append(target)

    # ------------------------------------------------------------------ scenarios

    def _replace(self, how: str) -> None:
        """The journal in use is lost: replaced by an empty file or an older backup."""
        source = None
        if how == "restore":
            if len(self.saved) < 2:
                self.report.errors.append("a restore was planned before any earlier backup")
                return
            source = self.saved[-2]  # taken at an earlier kill: behind what the broker holds
        archived = self.archive / f"journal-{self.generation}.db"
        retire(self.journal, archived)
        self.retired.append(archived)
        replace(self.journal, source)
        self.generation += 1
        s = self.report.scenarios
        s.generations = self.generation + 1
        s.replaced[how] = s.replaced.get(how, 0) + 1
        # a send queued behind a hang at the bridge may still execute after the kill; then
        # the history shows it only after its lag (and the audit sees only what it shows)
        time.sleep(self.options.hang_cap_s + self.delay_s + 1.0)
        ledger = self.ledger()
        unknown = set(collect(ACCOUNT.login, ledger.orders, ledger.deals)) - \
            issued_sequences(self.journal)  # fmt: skip
        self.behind = (bool(unknown), _our_orders(ledger))

    def _second(self, first: GatewayProcess, kill: Kill) -> bool:
        """A second gateway on the same journal while the first trades: it waits (never
        trading) until the first is SIGKILLed, then takes over."""
        second = self.start()
        s = self.report.scenarios
        second.wait_until(min(self.until, time.monotonic() + 30), lambda f: f.waits >= 2)
        first.wait_for(min(self.until, time.monotonic() + 5), final=first.feed.final + 2)
        early = second.feed.ready
        if not first.kill():
            second.kill()
            return False
        self._killed(kill)
        s.takeovers += 1
        s.waits += second.feed.waits
        s.early_takeovers += early
        if not second.wait_for(self.until, ready=True):
            self.report.errors.append("the second gateway did not take over")
        self.current = second
        return True

    def _pause(self, first: GatewayProcess) -> bool:
        """SIGSTOP the owner past its lease, let a successor take over, then wake the ex-owner
        while the successor is paused: it must neither reach the terminal nor the journal."""
        if not first.alive() or not first.feed.ready:
            return False
        self._pause_between_writes(first)
        stale = first.feed.epoch
        second = self.start()
        if not second.wait_until(self.until, lambda f: f.ready and f.finals_here >= 1) or \
                not self._fenced_by(second):  # fmt: skip
            first.resume()
            self.report.errors.append("no successor took over from a paused gateway")
            return True
        s = self.report.scenarios
        s.pauses += 1
        s.recovered_after_pause += second.feed.recovered
        self.report.done["pause"] = self.report.done.get("pause", 0) + 1
        # between its writes too: paused holding the journal's write lock, the successor would
        # freeze the woken ex-owner at its first journal write (SQLite's busy wait, 10 s), so
        # that it could not show within the window what the bridge does with its calls
        self._pause_between_writes(second)
        try:
            self._window(first, second, stale)
        finally:
            second.resume()
        refused = self.broker.fresh_stats().get("fence", {}).get("refused", {})
        s.stale_refused += int(refused.get(str(stale), 0))
        self.current = second
        return True

    def _fenced_by(self, owner: GatewayProcess) -> bool:
        """Wait until the bridge holds ``owner``'s epoch (a new owner tells the bridge as soon
        as it takes the lease over; tests/chaos/test_findings.py)."""
        while not self.timed_out():
            highest = self.broker.stats().get("fence", {}).get("highest") or 0
            if highest >= owner.feed.epoch:
                return True
            if not owner.alive():
                return False
            time.sleep(0.05)
        return False

    def _pause_between_writes(self, gateway: GatewayProcess) -> None:
        """SIGSTOP, moved a few ms on while the gateway holds the journal's SQLite write lock:
        a process paused mid-transaction keeps every other writer out (the successor could
        not take the lease before it wakes and commits; a paused successor would freeze the
        woken ex-owner), which is SQLite's behaviour, not the scenario."""
        for _ in range(100):
            gateway.pause()
            if not _in_transaction(self.journal):
                return
            gateway.resume()
            time.sleep(self.rng.uniform(0.002, 0.02))
        gateway.pause()

    def _window(self, first: GatewayProcess, second: GatewayProcess, stale: int) -> None:
        """Both paused, then the ex-owner alone awake for a moment: count what it wrote."""
        s = self.report.scenarios
        events, epoch = _journal_state(self.journal)
        first.resume()
        code = first.wait(min(self.until, time.monotonic() + PAUSE_WINDOW_S))
        if code is None:
            first.kill()
        after, epoch_after = _journal_state(self.journal)
        if not (epoch == epoch_after == second.feed.epoch > stale):
            moved = f"pause window: the lease moved ({epoch} -> {epoch_after})"
            self.report.errors.append(f"{moved}: the writes cannot be told apart")
            return
        s.stale_writes += after - events
        s.fenced_exits += code == FENCED_EXIT
        if first.feed.probe:
            s.probes[first.feed.probe] = s.probes.get(first.feed.probe, 0) + 1

    def finish(self) -> Ledger:
        """The scenario counts the gateways' feeds hold, and the ledger as the run left it
        (read before :meth:`close` stops the broker)."""
        report = self.report
        report.recovered = sum(run.feed.recovered for run in self.runs)
        for run in self.runs:
            for when, n in run.feed.races.items():
                report.scenarios.races[when] = report.scenarios.races.get(when, 0) + n
        time.sleep(self.delay_s + 0.5)  # the history shows the last orders only after its lag
        try:
            ledger = self.ledger()
        except (OSError, RuntimeError) as failure:
            report.errors.append(f"the ledger could not be read: {failure}")
            ledger = Ledger((), ())
        return ledger


@contextlib.contextmanager
def _opened(paths: Sequence[Path]) -> Iterator[list[SqliteJournal]]:
    journals = [SqliteJournal(p, readonly=True) for p in paths if p.stat().st_size]
    try:
        yield journals
    finally:
        for journal in journals:
            journal.close()


def run_chaos(
    orders: int,
    kills: int,
    seed: int,
    workdir: Path,
    timeout_s: float,
    *,
    fault_rate: float = 0.03,
    hang_cap_s: float = 1.5,
    options: Options | None = None,
) -> Report:
    """Run the whole chaos test in ``workdir`` (which must not hold a journal yet)."""
    options = options or Options(fault_rate=fault_rate, hang_cap_s=hang_cap_s)
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "journal.db").exists():
        raise FileExistsError(f"{workdir / 'journal.db'} exists: a chaos run needs a fresh dir")
    with (workdir / "gateway.log").open("a", encoding="utf-8") as log:
        run = ChaosRun(orders, seed, workdir, timeout_s, options, log)
        report = run.report
        report.kills_planned = kills
        ledger = Ledger((), ())
        try:
            run.carry_out(with_scenarios(run.rng, orders, kills, options))
            for gateway in run.runs:
                gateway.close()
            ledger = run.finish()
        finally:
            run.close()
    told = run.memory.all()
    with _opened([*run.retired, run.journal]) as journals:
        report.verdict = check(journals, ACCOUNT.login, map(key_name, range(orders)), ledger,
                               told=told)  # fmt: skip
    report.wall_s = time.monotonic() - run.began
    return report


# ---------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command line of the harness."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.harness",
        description="Chaos test of exactly-once orders: kill, pause, double the gateway, lose "
        "its journal, then check the ledger.",
    )
    add = parser.add_argument
    add("--orders", type=int, default=5000, help="idempotency keys to place")
    add("--kills", type=int, default=50, help="SIGKILLs of the gateway")
    add("--seed", type=int, default=1, help="seeds kills, faults, scenarios and the market")
    add("--fault-rate", type=float, default=0.03, help="share of order_send calls faulted")
    add("--hang-cap", type=float, default=1.5, help="seconds a hang lasts")
    add("--history-delay-ms", type=int, default=0, help="the broker's history is this late")
    add("--empty-journals", type=int, default=0, help="kills that replace the journal by an "
        "empty file")  # fmt: skip
    add("--restores", type=int, default=0, help="kills that restore an older backup")
    add("--second-gateways", type=int, default=0, help="second gateways started beside the "
        "owner, which takes over when the owner is killed")  # fmt: skip
    add("--pauses", type=int, default=0, help="SIGSTOPs of the owner past its lease")
    add("--race-every", type=int, default=0, help="race a same-key rogue body once in R")
    add("--settle-s", type=float, default=0.5, help="the gateways' reconciliation settle_s")
    add("--timeout", type=float, default=3600.0, help="give up after (s)")
    add("--workdir", type=Path, help="default: a new temporary directory")
    add("--json", type=Path, help="also write the JSON report here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table and the JSON; 0 on a clean run, 1 otherwise."""
    args = build_parser().parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mt5gate-chaos-"))
    print(f"chaos run in {workdir}: {args.orders} orders, {args.kills} kills, seed {args.seed}",
          flush=True)  # fmt: skip
    options = Options(
        args.fault_rate, args.hang_cap, args.history_delay_ms, args.empty_journals,
        args.restores, args.second_gateways, args.pauses, args.race_every, args.settle_s,
    )  # fmt: skip
    report = run_chaos(args.orders, args.kills, args.seed, workdir, args.timeout,
                       options=options)  # fmt: skip
    print(report.table())
    payload = json.dumps(report.as_dict(), indent=2, sort_keys=True)
    print(payload)
    if args.json is not None:
        args.json.write_text(payload + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
