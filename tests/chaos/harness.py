"""The chaos harness: one broker process, a gateway process killed with SIGKILL at random
moments and restarted, then a checker that compares the journal with the broker's ledger.

::

    python -m tests.chaos.harness --orders 5000 --kills 50 --seed 1 \\
        [--fault-rate 0.03] [--hang-cap 1.5] [--timeout 1800] [--workdir DIR]

:func:`run_chaos` does the work and returns a :class:`Report`; the command prints it as a table
and as JSON and exits 1 when any count that must be zero is not (or a kill did not happen, or
the run did not finish), 0 otherwise.

Kills are planned from the seed, in three kinds, so that they land everywhere a crash can:

* ``startup``: 0.25-1 s after the process starts, whatever it is doing (imports, connecting,
  start-up recovery of its predecessor's unresolved orders);
* ``ready``: within 30 ms of the gateway saying it recovered and is ready (the very first
  orders, and the replays);
* ``progress``: a few ms after the gateway reports the n-th key final, the n drawn at random
  over the whole run: mid-send, mid-reconciliation, between the journal's SENT and the reply.

A gateway that finishes before its planned kill (all keys final) is restarted and killed early
instead, so every run gets exactly ``kills`` kills. Then a last gateway runs to completion.

The checker (:func:`check`) reads the journal file and the ledger (open orders, history orders
and deals over all time, through a fresh bridge client) and counts, per client order id:

* ``duplicates``: ids carried by more than one ledger order (sent twice);
* ``lost``: keys the journal says executed with nothing in the ledger, and keys that have no
  final outcome at all (the gateway gave up on them);
* ``unexpected``: ledger orders in our id namespace the journal does not know, or whose journal
  outcome is not "executed" (rejected, proven absent, unresolved);
* ``unresolved``: journal orders whose last event leaves the outcome open;
* ``mismatched``: executed keys whose journal names an order ticket that is not the ledger's
  order for that id (a reply or reconciliation attributed to the wrong order).

All five must be zero. ``executed`` + ``rejected`` = ``keys`` when every key is final.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import queue
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

from mt5gate.errors import MT5TradeRejected, error_from_trade_result
from mt5gate.models import Deal, Order
from mt5gate.orders.evidence import Evidence, collect
from mt5gate.orders.ids import DEFAULT_NAMESPACE
from mt5gate.orders.journal import UNRESOLVED_KINDS, EventKind, JournalEvent, SqliteJournal
from mt5gate.terminal.bridge import BridgeTerminal
from tests.chaos.broker import ACCOUNT, FAULT_KINDS, HOST, LISTENING
from tests.chaos.gateway import EXECUTED_KINDS, key_name

__all__ = [
    "Kill",
    "Ledger",
    "Report",
    "Verdict",
    "check",
    "kill_plan",
    "ledger_of",
    "main",
    "run_chaos",
]

ROOT: Final = Path(__file__).resolve().parents[2]
#: Far enough in the future for any history query (2100-01-01, seconds).
FAR_FUTURE_S: Final = 4_102_444_800
_K = EventKind
_STOP_TIMEOUT_S: Final = 10.0


# ---------------------------------------------------------------------------------- checker


class LedgerTerminal(Protocol):
    """What the checker reads from a terminal: the three ledger listings."""

    def orders_get(self) -> Any:
        """Open (pending) orders."""
        ...

    def history_orders_get(self, date_from: Any, date_to: Any) -> Any:
        """History orders between two dates (seconds)."""
        ...

    def history_deals_get(self, date_from: Any, date_to: Any) -> Any:
        """Deals between two dates (seconds)."""
        ...


@dataclass(frozen=True, slots=True)
class Ledger:
    """Everything the broker holds for the account: open and history orders, and deals."""

    orders: tuple[Order, ...]
    deals: tuple[Deal, ...]


def ledger_of(terminal: LedgerTerminal) -> Ledger:
    """The whole ledger of the terminal's logged-in account (all time), as models.

    A failed listing raises: a checker that read nothing would find nothing wrong.
    """
    listings = {
        "orders_get": terminal.orders_get(),
        "history_orders_get": terminal.history_orders_get(0, FAR_FUTURE_S),
        "history_deals_get": terminal.history_deals_get(0, FAR_FUTURE_S),
    }
    for name, listed in listings.items():
        if listed is None:
            raise RuntimeError(f"the checker could not read the ledger: {name}() failed")
    orders = (*listings["orders_get"], *listings["history_orders_get"])
    return Ledger(
        tuple(Order.from_record(o) for o in orders),
        tuple(Deal.from_record(d) for d in listings["history_deals_get"]),
    )


@dataclass(slots=True)
class Verdict:
    """The checker's counts, with the offending keys or client ids (for the report)."""

    keys: int = 0
    executed: int = 0
    rejected: int = 0
    duplicates: int = 0
    lost: int = 0
    unexpected: int = 0
    unresolved: int = 0
    mismatched: int = 0  # executed, but the journal names an order the ledger has not for it
    unknown_outcomes: int = 0  # orders that went through UNKNOWN (evidence of faults)
    resubmitted: int = 0  # orders resent after a proven absence or a never-sent attempt
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No duplicate, lost, unexpected or unresolved order."""
        return not (
            self.duplicates or self.lost or self.unexpected or self.unresolved or self.mismatched
        )

    def flag(self, what: str, detail: str) -> None:
        """Count one problem (``what`` is a field name) and keep a few examples."""
        setattr(self, what, getattr(self, what) + 1)
        if len(self.problems) < 50:
            self.problems.append(f"{what}: {detail}")


def _outcome(events: Sequence[JournalEvent]) -> str:
    """An order's outcome by its journal: executed, rejected, unresolved or open.

    Executed once an ACKNOWLEDGED / RECONCILED_PRESENT event exists (a late reply may follow
    it); rejected when the last event (late replies aside) is a REJECTED with a business
    retcode; unresolved when the last event leaves it open; open otherwise (proven absent,
    not sent, risk-rejected: nothing executed, and the key was not used up).
    """
    if any(e.kind in EXECUTED_KINDS for e in events):
        return "executed"
    settled = [e for e in events if e.kind is not _K.LATE_RESULT] or list(events)
    last = settled[-1]
    if last.kind is _K.REJECTED and last.retcode is not None:
        error = error_from_trade_result(last.retcode, "", {})
        if isinstance(error, MT5TradeRejected):
            return "rejected"
    if events[-1].kind in UNRESOLVED_KINDS:
        return "unresolved"
    return "open"


def check(
    journal: SqliteJournal,
    login: int,
    keys: Iterable[str],
    ledger: Ledger,
    *,
    namespace: int = DEFAULT_NAMESPACE,
) -> Verdict:
    """Compare the journal's orders with the ledger (module docstring): the verdict."""
    verdict = Verdict()
    evidence = collect(login, ledger.orders, ledger.deals, namespace=namespace)
    outcomes: dict[int, str] = {}
    tickets: dict[int, set[int]] = {}
    for sequence in sorted(journal.known_sequences(login)):
        events = journal.history(login, sequence)
        outcomes[sequence] = _outcome(events)
        tickets[sequence] = {e.order_ticket for e in events if e.order_ticket is not None}
        kinds = {e.kind for e in events}
        verdict.unknown_outcomes += _K.UNKNOWN in kinds
        verdict.resubmitted += _K.RESUBMITTED in kinds
    for key in keys:
        _check_key(journal, login, key, (outcomes, tickets), evidence, verdict)
    for sequence, found in sorted(evidence.items()):
        if found.duplicate:
            verdict.flag("duplicates", f"id {sequence} on orders {sorted(found.tickets)}")
        outcome = outcomes.get(sequence)
        if outcome is None:
            verdict.flag("unexpected", f"id {sequence} (orders {sorted(found.tickets)}) is "
                         "not in the journal")  # fmt: skip
        elif outcome != "executed":
            verdict.flag("unexpected", f"id {sequence} is in the ledger (orders "
                         f"{sorted(found.tickets)}) but {outcome} in the journal")  # fmt: skip
    for client_id in journal.unresolved(login):
        verdict.flag("unresolved", f"id {client_id.sequence} is "
                     f"{journal.state(login, client_id)}")  # fmt: skip
    return verdict


def _check_key(
    journal: SqliteJournal,
    login: int,
    key: str,
    journaled: tuple[Mapping[int, str], Mapping[int, set[int]]],
    evidence: Mapping[int, Evidence],
    verdict: Verdict,
) -> None:
    """One key: executed (and in the ledger, under the tickets the journal names), rejected,
    or lost."""
    outcomes, tickets = journaled
    verdict.keys += 1
    client_id = journal.by_key(login, key)
    if client_id is None:
        verdict.flag("lost", f"{key} was never journaled")
        return
    outcome = outcomes.get(client_id.sequence, "open")
    if outcome == "executed":
        verdict.executed += 1
        found = evidence.get(client_id.sequence)
        if found is None or not found.present:
            verdict.flag("lost", f"{key} (id {client_id.sequence}) executed by the journal, "
                         "nowhere in the ledger")  # fmt: skip
        elif not tickets.get(client_id.sequence, set()) <= found.tickets:
            verdict.flag("mismatched", f"{key} (id {client_id.sequence}): the journal names "
                         f"orders {sorted(tickets[client_id.sequence])}, the ledger has "
                         f"{sorted(found.tickets)}")  # fmt: skip
    elif outcome == "rejected":
        verdict.rejected += 1
    else:
        verdict.flag("lost", f"{key} (id {client_id.sequence}) has no final outcome: {outcome}")


# ---------------------------------------------------------------------------------- processes


def _write_token(path: Path) -> str:
    """A fresh random token in a 600 file (the bridge refuses a world-readable one)."""
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def _python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _environment() -> dict[str, str]:
    """The children's environment: this tree importable (``tests.chaos``), unbuffered output."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen[str], *, gently: bool) -> None:
    """End a child we started: SIGTERM first when ``gently``, SIGKILL if it lingers."""
    if process.poll() is None and gently:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_TIMEOUT_S)
    if process.poll() is None:
        process.kill()
        process.wait(_STOP_TIMEOUT_S)


class BrokerProcess:
    """``python -m tests.chaos.broker`` on a free loopback port, its log in the work dir."""

    def __init__(self, workdir: Path, token_file: Path, seed: int, rate: float, cap: float):
        self.stats_file = workdir / "broker-stats.json"
        self._log = (workdir / "broker.log").open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            _python("tests.chaos.broker", "--port", "0", "--token-file", str(token_file),
                    "--seed", str(seed), "--fault-rate", str(rate), "--hang-cap", str(cap),
                    "--stats-file", str(self.stats_file)),
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=ROOT, env=_environment(),
        )  # fmt: skip
        self.port = self._read_port()

    def _read_port(self) -> int:
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True,
                         name="chaos-broker-stdout").start()  # fmt: skip
        try:
            line = lines.get(timeout=30.0)
        except queue.Empty:
            line = ""
        if not line.startswith(f"{LISTENING} {HOST}:"):
            self.stop()
            raise RuntimeError(f"the chaos broker did not start (said {line!r}); see broker.log")
        return int(line.split(f"{HOST}:", 1)[1].split()[0])

    def stats(self) -> dict[str, Any]:
        """What the broker last wrote to its stats file (empty if nothing yet)."""
        try:
            loaded: dict[str, Any] = json.loads(self.stats_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded

    def stop(self) -> None:
        """SIGTERM (it writes its final stats), SIGKILL if it does not stop."""
        try:
            _stop(self.process, gently=True)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._log.close()


@dataclass(slots=True)
class _Feed:
    """What a gateway said on stdout so far."""

    ready: bool = False
    final: int = 0
    recovered: int = 0  # unresolved orders its start-up recovery reconciled
    done: bool = False
    eof: bool = False


class GatewayProcess:
    """One run of ``python -m tests.chaos.gateway``; a thread follows its progress feed."""

    def __init__(self, args: list[str], log: IO[str], run: int) -> None:
        log.write(f"\n===== gateway run {run} =====\n")
        log.flush()
        self.process = subprocess.Popen(
            _python("tests.chaos.gateway", *args), stdout=subprocess.PIPE, stderr=log,
            text=True, cwd=ROOT, env=_environment(),
        )  # fmt: skip
        self.started = time.monotonic()
        self.feed = _Feed()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._follow, daemon=True,
                                        name=f"chaos-gateway-{run}-stdout")  # fmt: skip
        self._reader.start()

    def _follow(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            words = line.split()
            with self._changed:
                if words[:1] == ["ready"]:
                    fields = dict(word.split("=", 1) for word in words[1:])
                    self.feed.ready = True
                    self.feed.final = int(fields["final"])
                    self.feed.recovered = int(fields["recovered"])
                elif words[:1] == ["final"]:
                    self.feed.final = int(words[1])
                elif words[:1] == ["done"]:
                    self.feed.done = True
                self._changed.notify_all()
        with self._changed:
            self.feed.eof = True
            self._changed.notify_all()

    def wait_for(self, until: float, ready: bool = False, final: int | None = None) -> bool:
        """Wait until the gateway is ready / has ``final`` keys final; False if it ended (or
        ``until``, a monotonic time, passed) first."""

        def reached() -> bool:
            feed = self.feed
            ok = (not ready or feed.ready) and (final is None or feed.final >= final)
            return ok or feed.eof

        with self._changed:
            self._changed.wait_for(reached, timeout=max(until - time.monotonic(), 0.0))
            return not self.feed.eof and reached()

    def kill(self) -> bool:
        """SIGKILL it now; True if it was alive (a real kill, not a corpse)."""
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(_STOP_TIMEOUT_S)
        return self.process.returncode == -signal.SIGKILL

    def wait(self, until: float) -> int | None:
        """Its exit code, or None when ``until`` passed first."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(max(until - time.monotonic(), 0.0))
        return None

    def close(self) -> None:
        """Make sure it is gone and its pipe is drained."""
        _stop(self.process, gently=False)
        self._reader.join(_STOP_TIMEOUT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


# ---------------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Kill:
    """When to kill one gateway run: ``mode`` startup / ready / progress (module docstring)."""

    mode: str
    delay_s: float
    target: int = 0  # progress: keys final before the kill


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


def _land(gateway: GatewayProcess, kill: Kill, until: float) -> bool:
    """Wait for the kill's moment and SIGKILL the gateway; False if it ended first."""
    if kill.mode == "ready" and not gateway.wait_for(until, ready=True):
        return False
    if kill.mode == "progress" and not gateway.wait_for(until, ready=True, final=kill.target):
        return False
    moment = (gateway.started if kill.mode == "startup" else time.monotonic()) + kill.delay_s
    time.sleep(max(moment - time.monotonic(), 0.0))
    return gateway.kill()


@dataclass(slots=True)
class Report:
    """The outcome of a chaos run: the checker's counts, the chaos that happened, the time."""

    orders: int
    seed: int
    fault_rate: float
    kills_planned: int
    verdict: Verdict
    kills: int = 0
    restarts: int = 0
    kill_modes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    link_restores: int = 0
    recovered: int = 0
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
        """Clean ledger, every key final, every planned kill done, the last run exited 0."""
        return (
            self.verdict.clean
            and self.finished
            and self.gateway_exit == 0
            and self.kills >= self.kills_planned
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
            "recovered": self.recovered,
            "gateway_exit": self.gateway_exit, "finished": self.finished,
            "wall_s": round(self.wall_s, 1), "workdir": self.workdir,
            "problems": self.verdict.problems, "errors": self.errors,
        }  # fmt: skip

    def table(self) -> str:
        """The report for people: one row per count, the must-be-zero ones marked."""
        v = self.verdict
        must_be_zero = {"duplicates": v.duplicates, "lost": v.lost, "unexpected": v.unexpected,
                        "unresolved": v.unresolved, "mismatched": v.mismatched}  # fmt: skip
        faults = ", ".join(f"{k} {n}" for k, n in self.faults.items()) or "none reported"
        modes = ", ".join(f"{k} {n}" for k, n in sorted(self.kill_modes.items())) or "none"
        rows = [
            ("keys", str(v.keys), ""),
            ("executed", str(v.executed), ""),
            ("rejected", str(v.rejected), "business rejections (final)"),
            *((name, str(n), "ok" if n == 0 else "FAIL") for name, n in must_be_zero.items()),
            ("kills", f"{self.kills}/{self.kills_planned}", modes),
            ("restarts", str(self.restarts), ""),
            ("faults fired", str(self.faults_fired), faults),
            ("link restores", str(self.link_restores), "trade-server link back after a drop"),
            ("recovered", str(self.recovered), "left open by a kill, settled at start-up"),
            ("unknown outcomes", str(v.unknown_outcomes), "orders that went through UNKNOWN"),
            ("resubmitted", str(v.resubmitted), "orders resent with the same id"),
            ("last gateway exit", str(self.gateway_exit), ""),
            ("wall time", f"{self.wall_s:.1f} s", ""),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"mt5gate chaos run: {self.orders} orders, {self.kills_planned} kills, seed "
                 f"{self.seed}, fault rate {self.fault_rate}"]  # fmt: skip
        lines += [f"  {name:<{width}}  {value:>9}  {note}".rstrip() for name, value, note in rows]
        lines += [f"  ! {problem}" for problem in v.problems[:20]]
        lines += [f"  ! {error}" for error in self.errors]
        lines.append(f"RESULT: {'PASS' if self.ok else 'FAIL'}   (work dir {self.workdir})")
        return "\n".join(lines)


@contextlib.contextmanager
def _gateways() -> Iterator[list[GatewayProcess]]:
    """The gateway runs of one chaos run; all of them gone when the block ends."""
    started: list[GatewayProcess] = []
    try:
        yield started
    finally:
        for gateway in started:
            gateway.close()


def run_chaos(
    orders: int,
    kills: int,
    seed: int,
    workdir: Path,
    timeout_s: float,
    *,
    fault_rate: float = 0.03,
    hang_cap_s: float = 1.5,
) -> Report:
    """Run the whole chaos test in ``workdir`` (which must not hold a journal yet)."""
    began = time.monotonic()
    until = began + timeout_s
    workdir.mkdir(parents=True, exist_ok=True)
    journal_path = workdir / "journal.db"
    if journal_path.exists():
        raise FileExistsError(f"{journal_path} exists: a chaos run needs a fresh work dir")
    token_file = workdir / "token"
    token = _write_token(token_file)
    rng = random.Random(seed)
    report = Report(orders, seed, fault_rate, kills, Verdict(), workdir=str(workdir))
    broker = BrokerProcess(workdir, token_file, seed, fault_rate, hang_cap_s)
    try:
        with (workdir / "gateway.log").open("a", encoding="utf-8") as log, _gateways() as runs:

            def start() -> GatewayProcess:
                args = ["--port", str(broker.port), "--token-file", str(token_file),
                        "--journal", str(journal_path), "--orders", str(orders),
                        "--seed", str(seed * 1000 + len(runs))]  # fmt: skip
                gateway = GatewayProcess(args, log, len(runs))
                runs.append(gateway)
                return gateway

            _kill_all(report, kill_plan(rng, orders, kills), start, rng, until)
            if not report.errors:
                gateway = start()
                report.gateway_exit = gateway.wait(until)
                report.finished = gateway.feed.done and report.gateway_exit == 0
                if report.gateway_exit is None:
                    report.errors.append(f"the last gateway run did not finish in {timeout_s} s")
            report.restarts = len(runs) - 1
            report.recovered = sum(run.feed.recovered for run in runs)
        try:
            ledger = _read_ledger(broker.port, token)
        except (OSError, RuntimeError) as failure:
            report.errors.append(f"the ledger could not be read: {failure}")
            ledger = Ledger((), ())
    finally:
        broker.stop()
        stats = broker.stats()
        report.faults = {k: int(stats.get("faults", {}).get(k, 0)) for k in FAULT_KINDS}
        report.link_restores = int(stats.get("restored", 0))
    with SqliteJournal(journal_path) as journal:
        report.verdict = check(journal, ACCOUNT.login, map(key_name, range(orders)), ledger)
    report.wall_s = time.monotonic() - began
    return report


def _kill_all(
    report: Report,
    plan: list[Kill],
    start: Callable[[], GatewayProcess],
    rng: random.Random,
    until: float,
) -> None:
    """Carry out the kill plan: one gateway run per kill, restarted after each."""
    for planned in plan:
        kill = planned
        while True:
            if time.monotonic() > until:
                report.errors.append(f"timed out after {report.kills} of {len(plan)} kills")
                return
            gateway = start()
            if _land(gateway, kill, until):
                report.kills += 1
                report.kill_modes[kill.mode] = report.kill_modes.get(kill.mode, 0) + 1
                break
            code = gateway.wait(until)
            if code != 0:
                report.errors.append(f"a gateway run exited {code} before its kill "
                                     f"({kill.mode}); see gateway.log")  # fmt: skip
                return
            kill = Kill("startup", rng.uniform(0.1, 0.4))  # all final already: kill it early


def _read_ledger(port: int, token: str) -> Ledger:
    """The broker's ledger through a fresh bridge client (never the gateway's session)."""
    terminal = BridgeTerminal(HOST, port, token=token, call_timeout_s=60.0)
    try:
        if not terminal.initialize(login=ACCOUNT.login, password=ACCOUNT.password,
                                   server=ACCOUNT.server):  # fmt: skip
            raise RuntimeError(f"the checker cannot attach to the broker: {terminal.last_error()}")
        return ledger_of(terminal)
    finally:
        terminal.close()


# ---------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command line of the harness."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.harness",
        description="Chaos test of exactly-once orders: kill the gateway, check the ledger.",
    )
    parser.add_argument("--orders", type=int, default=5000, help="idempotency keys to place")
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs of the gateway")
    parser.add_argument("--seed", type=int, default=1, help="seeds kills, faults and the market")
    parser.add_argument("--fault-rate", type=float, default=0.03,
                        help="share of order_send calls meeting a fault")  # fmt: skip
    parser.add_argument("--hang-cap", type=float, default=1.5, help="seconds a hang lasts")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after (s)")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table and the JSON; 0 on a clean run, 1 otherwise."""
    args = build_parser().parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mt5gate-chaos-"))
    print(f"chaos run in {workdir}: {args.orders} orders, {args.kills} kills, seed {args.seed}",
          flush=True)  # fmt: skip
    report = run_chaos(args.orders, args.kills, args.seed, workdir, args.timeout,
                       fault_rate=args.fault_rate, hang_cap_s=args.hang_cap)  # fmt: skip
    print(report.table())
    payload = json.dumps(report.as_dict(), indent=2, sort_keys=True)
    print(payload)
    if args.json is not None:
        args.json.write_text(payload + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
