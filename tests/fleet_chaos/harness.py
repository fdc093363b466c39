"""The fleet chaos harness: ``mt5gate serve`` replicas over PostgreSQL and NATS, faulty brokers
behind bridges, clients that never give up a key, WebSocket readers that resume, and replicas
killed, paused, cut off from the database and the bus restarted at seeded moments; then an
audit of everything against the brokers' ledgers and the store.

::

    python -m tests.fleet_chaos.harness --orders 2000 --replicas 3 --accounts 20 \\
        --kills 30 --pauses 10 --pg-kills 5 --nats-restarts 2 --seed 1 \\
        [--fault-rate 0.03] [--hang-cap 1.5] [--history-delay-ms 2000] [--settle-s 0.5] \\
        [--workers 8] [--readers 3] [--timeout 3600] [--workdir DIR] [--json FILE]

:func:`run_fleet_chaos` does the work and returns a :class:`Report`; the command prints it as a
table and as JSON and exits 1 when any count that must be zero is not (or a planned action did
not happen, or the run did not finish), 0 otherwise.

**Infrastructure** (all on 127.0.0.1, all started here and ended here, also on failure): a
throw-away PostgreSQL server (``tests/servers/postgres.py``), a nats-server with JetStream
(``tests/servers/nats.py``), one farm process (:mod:`tests.fleet_chaos.farm`) with a faulty
simulator per account behind its own bridge port (replies lost after execution, hangs, dropped
links, history ``--history-delay-ms`` late, a clock pinned to a Tuesday), and ``--replicas``
``mt5gate serve`` processes with ``[store]``, ``[fleet]`` (heartbeat 0.5 s, a replica silent
for 2 s is gone), ``[bus]`` and a quick reconciliation (``settle_s`` below the history's lag:
the absence proof must hold anyway). Before the replicas start, the harness adds a trigger to
the store's ``leases`` table that logs every change of holder (epoch, replica, time taken) in a
table of its own: the lease history the audit compares the bridges' sends with.

**Clients** (:mod:`tests.fleet_chaos.clients`): ``--workers`` threads place ``--orders`` keys,
each to a seeded random account through random replicas, retrying the same key on 502 / 503 /
transport errors, polling the status of a 202 through any replica, never a new key for an old
order. ``--readers`` WebSocket readers, each subscribed to every account's trade events,
resume with ``after`` on another replica when their connection ends.

**Chaos**, planned from the seed at points of progress (the n-th key handed out; the clients
wait a moment there while the action fires, so every action lands while orders flow): SIGKILL a
random replica and start it again (same name) 0.3-1.5 s later; SIGSTOP one past the fleet's
``member_ttl_s`` (2-3.5 s more), then SIGCONT; ``pg_terminate_backend`` of every connection of
a replica (``application_name`` ``mt5gate <replica>``); kill nats-server and start it again on
its port and store directory. Kills and pauses always leave a replica serving.

**Audit** after a settle period (every order resolved in the store, every reader caught up, or
``--settle-timeout``): :mod:`tests.fleet_chaos.audit`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg

from mt5gate.orders.journal import JournalEvent
from mt5gate.orders.postgres import PostgresStore
from mt5gate.service.auth import hash_api_key
from mt5gate.terminal.bridge import BridgeTerminal
from tests.chaos.broker import FAULT_KINDS, HOST
from tests.chaos.checker import Ledger, ledger_of
from tests.chaos.harness import history_lag_s
from tests.chaos.processes import write_token
from tests.fleet.processes import KEY, Replica
from tests.fleet_chaos.audit import (
    LeaseRecord,
    Verdict,
    audit_orders,
    audit_ownership,
    audit_streams,
)
from tests.fleet_chaos.clients import Dispatcher, KeyRecord, Orders, Reader
from tests.fleet_chaos.farm import password_for
from tests.servers.nats import NatsServer
from tests.servers.postgres import running_server
from tests.service.conftest import free_port

__all__ = ["Options", "Report", "main", "run_fleet_chaos"]

FIRST_LOGIN: Final = 9101
SCHEMA: Final = "fchaos"
#: Where the harness logs the lease history (its own schema: the store's stays as migrated).
AUDIT_SCHEMA: Final = "fchaos_audit"
ACTIONS: Final = ("kill", "pause", "pg_kill", "nats_restart")

_HISTORY_SQL: Final = f"""
CREATE SCHEMA IF NOT EXISTS {AUDIT_SCHEMA};
CREATE TABLE IF NOT EXISTS {AUDIT_SCHEMA}.lease_history (
    id BIGSERIAL PRIMARY KEY, login BIGINT NOT NULL, owner TEXT NOT NULL, epoch BIGINT NOT NULL,
    member TEXT, acquired_utc_ms BIGINT NOT NULL, logged_utc_ms BIGINT NOT NULL);
CREATE OR REPLACE FUNCTION {AUDIT_SCHEMA}.log_lease() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.epoch > 0 AND (TG_OP = 'INSERT' OR NEW.epoch IS DISTINCT FROM OLD.epoch
                          OR NEW.owner IS DISTINCT FROM OLD.owner) THEN
        INSERT INTO {AUDIT_SCHEMA}.lease_history
            (login, owner, epoch, member, acquired_utc_ms, logged_utc_ms)
        VALUES (NEW.login, NEW.owner, NEW.epoch, NEW.info::json->>'member',
                NEW.acquired_utc_ms,
                floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS fchaos_lease_history ON {SCHEMA}.leases;
CREATE TRIGGER fchaos_lease_history AFTER INSERT OR UPDATE ON {SCHEMA}.leases
    FOR EACH ROW EXECUTE FUNCTION {AUDIT_SCHEMA}.log_lease();
"""


@dataclass(frozen=True, slots=True)
class Options:
    """One run's scale, chaos and settings (module docstring)."""

    orders: int = 2000
    replicas: int = 3
    accounts: int = 20
    kills: int = 30
    pauses: int = 10
    pg_kills: int = 5
    nats_restarts: int = 2
    seed: int = 1
    fault_rate: float = 0.03
    hang_cap_s: float = 1.5
    history_delay_ms: int = 2000
    settle_s: float = 0.5
    workers: int = 8
    readers: int = 3
    heartbeat_s: float = 0.5
    member_ttl_s: float = 2.0
    timeout_s: float = 3600.0
    settle_timeout_s: float = 90.0

    @property
    def planned(self) -> dict[str, int]:
        """Planned count per chaos action."""
        return {"kill": self.kills, "pause": self.pauses, "pg_kill": self.pg_kills,
                "nats_restart": self.nats_restarts}  # fmt: skip


@dataclass(slots=True)
class Report:
    """A run's outcome: the audit, the chaos that happened, the time."""

    options: Options
    verdict: Verdict = field(default_factory=Verdict)
    done: dict[str, int] = field(default_factory=dict)
    pg_connections_killed: int = 0
    refused_calls: int = 0  # bridge calls refused for a stale epoch, all functions
    restarts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    link_restores: int = 0
    reader_connects: int = 0
    reader_errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    settled: bool = False
    phases: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    workdir: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A clean audit, every key final, every planned action done, no harness error."""
        planned = self.options.planned.items()
        return (self.verdict.clean and self.finished and self.settled and not self.errors
                and all(self.done.get(a, 0) >= n for a, n in planned))  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        verdict = dataclasses.asdict(self.verdict)
        return {
            "ok": self.ok, "options": dataclasses.asdict(self.options),
            **{k: v for k, v in verdict.items() if k != "problems"},
            "chaos_planned": self.options.planned, "chaos_done": self.done,
            "pg_connections_killed": self.pg_connections_killed, "restarts": self.restarts,
            "refused_calls": self.refused_calls,
            "faults": self.faults, "faults_fired": sum(self.faults.values()),
            "link_restores": self.link_restores, "reader_connects": self.reader_connects,
            "reader_errors": self.reader_errors, "statuses": self.statuses,
            "finished": self.finished, "settled": self.settled,
            "phases_s": {k: round(v, 1) for k, v in self.phases.items()},
            "wall_s": round(self.wall_s, 1), "workdir": self.workdir,
            "problems": self.verdict.problems, "errors": self.errors,
        }  # fmt: skip

    def table(self) -> str:
        """The report for people: one row per count, the must-be-zero ones marked."""
        o, v = self.options, self.verdict
        done = ", ".join(f"{a} {self.done.get(a, 0)}/{n}" for a, n in o.planned.items())
        faults = ", ".join(f"{k} {n}" for k, n in self.faults.items()) or "none reported"
        rows = [
            ("keys", str(v.keys), f"{o.accounts} accounts, {o.replicas} replicas"),
            ("executed", str(v.executed), ""),
            ("rejected", str(v.rejected), "business rejections (final)"),
            *((name, str(n), "ok" if n == 0 else "FAIL") for name, n in v.must_be_zero().items()),
            ("chaos", done, f"{self.pg_connections_killed} connections terminated"),
            ("restarts", str(self.restarts), "replicas started again after a kill"),
            ("faults fired", str(sum(self.faults.values())), faults),
            ("link restores", str(self.link_restores), "trade-server links back after a drop"),
            ("unknown outcomes", str(v.unknown_outcomes), "keys answered 202 (or 504) first"),
            ("resubmitted", str(v.resubmitted), "orders resent under their id"),
            ("broker orders", str(v.broker_orders), "client ids at the brokers"),
            ("sends", str(v.sends), f"order_send admitted by the bridges; refused (stale "
             f"epoch) {v.refused_sends}; calls refused {self.refused_calls}"),
            ("lease epochs", str(v.epochs), f"takeovers by another replica {v.takeovers}"),
            ("hand-over sends", str(v.handover_sends), f"an old owner's send between a takeover "
             f"and the terminal's fence; largest gap {v.handover_gap_ms} ms"),
            ("stream events", str(v.stream_events), f"x {o.readers} readers; "
             f"{self.reader_connects} connects"),
            ("history delay", f"{o.history_delay_ms} ms", f"settle_s {o.settle_s}"),
            ("wall time", f"{self.wall_s:.1f} s",
             ", ".join(f"{k} {s:.0f} s" for k, s in self.phases.items())),
        ]  # fmt: skip
        width = max(len(r[0]) for r in rows)
        lines = [f"mt5gate fleet chaos run: {o.orders} orders, {o.replicas} replicas x "
                 f"{o.accounts} accounts, seed {o.seed}, fault rate {o.fault_rate}"]  # fmt: skip
        lines += [f"  {name:<{width}}  {value:>9}  {note}".rstrip() for name, value, note in rows]
        lines += [f"  ! {problem}" for problem in v.problems[:25]]
        lines += [f"  ! {error}" for error in self.errors]
        lines.append(f"RESULT: {'PASS' if self.ok else 'FAIL'}   (work dir {self.workdir})")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- processes


class Farm:
    """The brokers' process (:mod:`tests.fleet_chaos.farm`)."""

    def __init__(self, workdir: Path, token_file: Path, options: Options) -> None:
        self.report_file = workdir / "farm.json"
        self.log = workdir / "farm.log"
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.fleet_chaos.farm", "--first-login",
                 str(FIRST_LOGIN), "--count", str(options.accounts), "--token-file",
                 str(token_file), "--seed", str(options.seed), "--fault-rate",
                 str(options.fault_rate), "--hang-cap", str(options.hang_cap_s),
                 "--history-delay-ms", str(options.history_delay_ms), "--report",
                 str(self.report_file)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sink,
            )  # fmt: skip
        self.ports = self._ports()

    def _ports(self) -> dict[int, int]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 60.0)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"the farm did not start: {self.log.read_text(errors='replace')}")
        return {int(k): int(v) for k, v in json.loads(line).items()}

    def stop(self) -> dict[str, Any]:
        """SIGTERM (SIGKILL after 20 s); its report, if it wrote one."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        with contextlib.suppress(OSError, ValueError):
            loaded: dict[str, Any] = json.loads(self.report_file.read_text(encoding="utf-8"))
            return loaded
        return {}


def read_ledger(port: int, token: str, login: int) -> Ledger:
    """One broker's ledger through a fresh, unfenced bridge client (reads only)."""
    terminal = BridgeTerminal(HOST, port, token=token, call_timeout_s=60.0)
    try:
        if not terminal.initialize(login=login, password=password_for(login),
                                   server="MetaQuotes-Demo"):  # fmt: skip
            raise RuntimeError(f"cannot attach to broker {login}: {terminal.last_error()}")
        return ledger_of(terminal)
    finally:
        terminal.close()


# ---------------------------------------------------------------------------------- the store


async def _prepare(url: str) -> None:
    async with PostgresStore(url, schema=SCHEMA, name="fchaos-harness"):
        pass  # opening it applies the migrations: the leases table exists


def prepare_store(url: str) -> None:
    """The store's schema, and the trigger that logs the lease history."""
    asyncio.run(_prepare(url))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(_HISTORY_SQL)


@dataclass(slots=True)
class StoreView:
    """What the audit reads from the store."""

    events: dict[int, list[JournalEvent]] = field(default_factory=dict)
    open_orders: dict[int, list[int]] = field(default_factory=dict)
    blocked: list[int] = field(default_factory=list)
    history: dict[int, list[LeaseRecord]] = field(default_factory=dict)


async def _read_store(url: str, logins: Sequence[int], full: bool) -> StoreView:
    view = StoreView()
    async with PostgresStore(url, schema=SCHEMA, name="fchaos-audit", migrate=False) as store:
        for login in logins:
            view.open_orders[login] = [c.sequence for c in await store.open_orders(login)]
            if not full:
                continue
            events: list[JournalEvent] = []
            while batch := await store.events_after(login, events[-1].seq if events else 0):
                events.extend(batch)
            view.events[login] = events
            if await store.account_block(login) is not None:
                view.blocked.append(login)
    return view


def read_store(url: str, logins: Sequence[int], *, full: bool = True) -> StoreView:
    """Events, open orders and blocks (``full``), else only open orders; the lease history."""
    view = asyncio.run(_read_store(url, logins, full))
    if full:
        with psycopg.connect(url, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT login, epoch, coalesce(member, owner), acquired_utc_ms"
                f" FROM {AUDIT_SCHEMA}.lease_history ORDER BY id"
            ).fetchall()
        for login, epoch, member, acquired in rows:
            record = LeaseRecord(int(epoch), str(member), int(acquired))
            view.history.setdefault(int(login), []).append(record)
    return view


def event_counts(url: str, logins: Sequence[int]) -> dict[int, int]:
    """Journal events per login (the readers' target)."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(f"SELECT login, count(*) FROM {SCHEMA}.events GROUP BY login")
        counts = {int(login): int(n) for login, n in rows.fetchall()}
    return {login: counts.get(login, 0) for login in logins}


def owned(url: str, logins: Sequence[int]) -> bool:
    """Whether every account has a live lease."""
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            f"SELECT count(*) FROM {SCHEMA}.leases WHERE epoch > 0 AND expires_utc_ms >"
            " floor(extract(epoch FROM clock_timestamp()) * 1000)").fetchone()  # fmt: skip
    return row is not None and int(row[0]) >= len(logins)


def terminate_backends(url: str, replica: str) -> int:
    """``pg_terminate_backend`` on every connection of ``replica`` (its application name)."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"mt5gate {replica}",),
        ).fetchall()
    return sum(bool(r[0]) for r in rows)


# ---------------------------------------------------------------------------------- the run


def write_config(workdir: Path, options: Options, ports: dict[int, int], token_file: Path,
                 nats_url: str) -> Path:  # fmt: skip
    """The fleet's one configuration file."""
    reconcile = (f"settle_s = {options.settle_s}\nbudget_s = 3.0\nreplay_budget_s = 2.0\n"
                 "max_interval_s = 0.5\nsweep_interval_s = 10.0\n"
                 f"history_lag_s = {history_lag_s(options.history_delay_ms)}\n")  # fmt: skip
    accounts = "".join(
        f'[[accounts]]\nname = "a{login}"\nterminal = "bridge://127.0.0.1:{port}"\n'
        f'login = {login}\nserver = "MetaQuotes-Demo"\npassword_env = "FCHAOS_PW_{login}"\n'
        f'token_file = "{token_file}"\n\n[accounts.reconcile]\n{reconcile}\n'
        for login, port in sorted(ports.items())
    )  # fmt: skip
    config = workdir / "fleet.toml"
    config.write_text(
        f'[store]\nurl_env = "FCHAOS_STORE_URL"\npg_schema = "{SCHEMA}"\n\n'
        f"[fleet]\nheartbeat_s = {options.heartbeat_s}\nmember_ttl_s = {options.member_ttl_s}\n"
        f"forward_timeout_s = 10.0\n\n[bus]\nurl = \"{nats_url}\"\n\n"
        f'[[api_keys]]\nname = "all"\nhash = "{hash_api_key(KEY)}"\n'
        f'scopes = ["read", "trade", "admin"]\nrate_per_minute = 10000000\n\n{accounts}',
        encoding="utf-8",
    )  # fmt: skip
    return config


class FleetChaos:
    """One run's moving parts."""

    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.began = time.monotonic()
        self.until = self.began + options.timeout_s
        self.report = Report(options, workdir=str(workdir))
        self.rng = random.Random(options.seed)
        self.replicas: list[Replica] = []
        self.paused: set[str] = set()
        self.lock = threading.Lock()
        self.chaos_log = (workdir / "chaos.log").open("a", encoding="utf-8")
        self.store_url = ""
        self.nats: NatsServer | None = None

    def note(self, line: str) -> None:
        self.chaos_log.write(f"{time.monotonic() - self.began:9.3f} {line}\n")
        self.chaos_log.flush()

    def phase(self, name: str, started: float) -> float:
        now = time.monotonic()
        self.report.phases[name] = now - started
        return now

    # ------------------------------------------------------------------ chaos

    def plan(self) -> list[tuple[int, str]]:
        """(keys handed out, action) pairs, ascending, between 5 % and 90 % of the keys."""
        actions = [a for a, n in self.options.planned.items() for _ in range(n)]
        self.rng.shuffle(actions)
        orders = self.options.orders
        span = range(max(orders // 20, 1), max(orders * 9 // 10, 2))
        draws = (self.rng.sample(span, len(actions)) if len(actions) <= len(span)
                 else self.rng.choices(span, k=len(actions)))  # fmt: skip
        return list(zip(sorted(draws), actions, strict=True))

    def serving(self) -> list[Replica]:
        with self.lock:
            return [r for r in self.replicas if r.alive() and r.name not in self.paused]

    def victim(self) -> Replica | None:
        """A running, unpaused replica, leaving another one serving (waits for a restart)."""
        deadline = min(self.until, time.monotonic() + 60)
        while time.monotonic() < deadline:
            serving = self.serving()
            if len(serving) >= 2:
                return self.rng.choice(serving)
            time.sleep(0.1)
        self.report.errors.append("no replica could be chosen for chaos within 60 s")
        return None

    def run_chaos(self, plan: list[tuple[int, str]], dispatcher: Dispatcher) -> None:
        for target, action in plan:
            dispatcher.hold(target)
            if not dispatcher.wait_started(target, self.until):
                return
            try:
                self.act(action, dispatcher)
            except Exception as error:  # reported; the run goes on
                self.report.errors.append(f"chaos {action} failed: {error!r}")
            finally:
                dispatcher.release()

    def act(self, action: str, dispatcher: Dispatcher) -> None:
        rng = self.rng
        if action == "nats_restart":
            assert self.nats is not None
            down = rng.uniform(0.2, 1.0)
            self.note(f"nats restart, down {down:.2f} s")
            dispatcher.release()
            self.nats.restart(down_s=down)
        elif action == "pg_kill":
            victim = self.victim()
            if victim is None:
                return
            deadline = time.monotonic() + 5
            killed = terminate_backends(self.store_url, victim.name)
            while not killed and time.monotonic() < deadline:
                time.sleep(0.05)
                killed = terminate_backends(self.store_url, victim.name)
            self.note(f"pg_terminate_backend {victim.name}: {killed} connections")
            if not killed:
                self.report.errors.append(f"{victim.name} had no database connection to kill")
                return
            self.report.pg_connections_killed += killed
        elif action == "kill":
            victim = self.victim()
            if victim is None:
                return
            victim.kill()
            delay = rng.uniform(0.3, 1.5)
            self.note(f"SIGKILL {victim.name}, restart in {delay:.2f} s")
            dispatcher.release()
            time.sleep(delay)
            victim.start()
            self.report.restarts += 1
        elif action == "pause":
            victim = self.victim()
            if victim is None:
                return
            with self.lock:
                self.paused.add(victim.name)
            victim.signal(signal.SIGSTOP)
            length = self.options.member_ttl_s + rng.uniform(0.0, 1.5)
            self.note(f"SIGSTOP {victim.name} for {length:.2f} s")
            dispatcher.release()
            time.sleep(length)
            victim.signal(signal.SIGCONT)
            with self.lock:
                self.paused.discard(victim.name)
            self.note(f"SIGCONT {victim.name}")
        self.report.done[action] = self.report.done.get(action, 0) + 1

    # ------------------------------------------------------------------ waiting

    def wait_owned(self, logins: Sequence[int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                if owned(self.store_url, logins):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"not every account was owned within {timeout_s} s")

    def settle(self, logins: Sequence[int], readers: Sequence[Reader]) -> bool:
        """Until no order is open in the store and every reader has every event."""
        time.sleep(self.options.history_delay_ms / 1000 + 1.0)
        deadline = time.monotonic() + self.options.settle_timeout_s
        names = {login: f"a{login}" for login in logins}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                view = read_store(self.store_url, logins, full=False)
                counts = event_counts(self.store_url, logins)
                open_orders = sum(len(v) for v in view.open_orders.values())
                behind = sum(len(r.seen.get(names[login], ())) < n for r in readers
                             for login, n in counts.items())  # fmt: skip
                if not open_orders and not behind:
                    return True
            time.sleep(1.0)
        return False

    # ------------------------------------------------------------------ the whole run

    def run(self) -> Report:
        token_file = self.workdir / "bridge-token"
        token = write_token(token_file)
        with contextlib.ExitStack() as stack:
            stack.callback(self.chaos_log.close)
            started = time.monotonic()
            farm = self._infrastructure(stack, token_file)
            logins = sorted(farm.ports)
            self.wait_owned(logins, 120)
            started = self.phase("start", started)
            records, readers = self._trade(logins)
            started = self.phase("orders and settle", started)
            self._stop_replicas()
            ledgers = {}
            for login in logins:
                try:
                    ledgers[login] = read_ledger(farm.ports[login], token, login)
                except (OSError, RuntimeError) as error:
                    self.report.errors.append(f"the ledger of {login} could not be read: {error}")
            farm_report = farm.stop()
            view = read_store(self.store_url, logins)
            self.audit(records, readers, logins, ledgers, view, farm_report)
            self.phase("audit", started)
        self.report.wall_s = time.monotonic() - self.began
        return self.report

    def _infrastructure(self, stack: contextlib.ExitStack, token_file: Path) -> Farm:
        """PostgreSQL, nats-server, the farm and the replicas, each ended by ``stack``."""
        options, workdir = self.options, self.workdir
        server = stack.enter_context(running_server())
        self.store_url = server.url
        self.nats = nats = NatsServer(workdir / "nats" / "store")
        nats.start()
        stack.callback(nats.stop)
        farm = Farm(workdir, token_file, options)
        stack.callback(farm.stop)
        prepare_store(server.url)
        logins = sorted(farm.ports)
        config = write_config(workdir, options, farm.ports, token_file, nats.url)
        env = {**os.environ, "FCHAOS_STORE_URL": server.url, "PYTHONUNBUFFERED": "1",
               "MT5GATE_ACCESS_LOG": "false",
               **{f"FCHAOS_PW_{login}": password_for(login) for login in logins}}  # fmt: skip
        env.pop("MT5GATE_CONFIG", None)
        for n in range(1, options.replicas + 1):
            name = f"r{n}"
            data = workdir / name
            data.mkdir(mode=0o700, exist_ok=True)
            self.replicas.append(Replica(
                name, free_port(), config, workdir / f"serve-{name}.log",
                {**env, "MT5GATE_REPLICA": name, "MT5GATE_DATA_DIR": str(data)}))  # fmt: skip
        stack.callback(self._stop_replicas)
        for replica in self.replicas:
            replica.start()
        return farm

    def _trade(self, logins: Sequence[int]) -> tuple[list[KeyRecord], list[Reader]]:
        """Readers, workers and the chaos thread, until every key is final (or the time is up),
        then the settle period."""
        options, report = self.options, self.report
        bases = [r.base for r in self.replicas]
        accounts = [f"a{login}" for login in logins]
        client_rng = random.Random(options.seed * 7919)
        records = [KeyRecord(i, client_rng.choice(accounts)) for i in range(options.orders)]
        readers = [Reader(f"w{i}", accounts, lambda: bases, i, options.seed * 31 + i)
                   for i in range(options.readers)]  # fmt: skip
        threads = [threading.Thread(target=r.run, name=r.name, daemon=True) for r in readers]
        orders = Orders(records, bases, self.until)
        dispatcher = Dispatcher(options.orders)
        workers = [threading.Thread(target=orders.work, name=f"worker-{i}", daemon=True,
                                    args=(dispatcher, options.seed * 97 + i))
                   for i in range(options.workers)]  # fmt: skip
        chaos = threading.Thread(target=self.run_chaos, args=(self.plan(), dispatcher),
                                 name="chaos", daemon=True)  # fmt: skip
        try:
            for thread in [*threads, chaos, *workers]:
                thread.start()
            for worker in workers:
                worker.join(max(self.until - time.monotonic(), 0.1))
            report.finished = all(r.outcome for r in records)
            if not report.finished:
                report.errors.append("not every key reached a final outcome in time")
            chaos.join(max(min(self.until - time.monotonic(), 300), 0.1))  # the last actions
            dispatcher.stop()
            orders.stop.set()
            self._all_serving()
            report.settled = self.settle(logins, readers)
            if not report.settled:
                report.errors.append("the store or the readers did not settle in time")
        finally:
            dispatcher.stop()
            orders.stop.set()
            for reader in readers:
                reader.stop.set()
            for thread in threads:
                thread.join(5)
        return records, readers

    def _all_serving(self) -> None:
        """After the chaos: every replica running and awake."""
        for replica in self.replicas:
            if replica.alive():
                replica.signal(signal.SIGCONT)
            else:
                replica.start()
                self.report.restarts += 1
        self.paused.clear()

    def _stop_replicas(self) -> None:
        for replica in self.replicas:
            with contextlib.suppress(Exception):
                replica.stop()

    def audit(self, records: Sequence[KeyRecord], readers: Sequence[Reader],
              logins: Sequence[int], ledgers: dict[int, Ledger], view: StoreView,
              farm_report: dict[str, Any]) -> None:  # fmt: skip
        report, verdict = self.report, self.report.verdict
        names = {f"a{login}": login for login in logins}
        audit_orders(verdict, records, names, ledgers, view.events, view.open_orders,
                     view.blocked)  # fmt: skip
        sends = {int(k): [(int(t), int(e)) for t, e in v.get("sends", [])]
                 for k, v in farm_report.items()}  # fmt: skip
        stale = sum(int(v.get("fence", {}).get("stale_admitted", 0)) for v in farm_report.values())
        refused = sum(int(v.get("fence", {}).get("refused_sends", 0))
                      for v in farm_report.values())  # fmt: skip
        if not farm_report:
            report.errors.append("the farm wrote no report: the sends cannot be audited")
        learned = {int(k): [(int(t), int(e), int(n)) for t, e, n in v.get("learned", [])]
                   for k, v in farm_report.items()}  # fmt: skip
        audit_ownership(verdict, view.history, sends, stale, refused, learned)
        audit_streams(verdict, names, view.events, {r.name: r.seen for r in readers})
        for kind in FAULT_KINDS:
            report.faults[kind] = sum(int(v.get("faults", {}).get(kind, 0))
                                      for v in farm_report.values())  # fmt: skip
        report.link_restores = sum(int(v.get("restored", 0)) for v in farm_report.values())
        fences = [v.get("fence", {}) for v in farm_report.values()]
        report.refused_calls = sum(int(n) for f in fences for n in f.get("refused", {}).values())
        report.reader_connects = sum(r.connects for r in readers)
        for reader in readers:
            for name, n in reader.errors.items():
                report.reader_errors[name] = report.reader_errors.get(name, 0) + n
        for record in records:
            for status, n in record.statuses.items():
                report.statuses[status] = report.statuses.get(status, 0) + n


def run_fleet_chaos(options: Options, workdir: Path) -> Report:
    """Run the whole fleet chaos test in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return FleetChaos(options, workdir).run()


# ---------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command line of the harness."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fleet_chaos.harness",
        description="Chaos test of a fleet of mt5gate serve replicas: kill, pause, cut off "
        "from the database, restart the bus; then audit ledgers, store and streams.",
    )
    add = parser.add_argument
    add("--orders", type=int, default=2000, help="idempotency keys to place")
    add("--replicas", type=int, default=3)
    add("--accounts", type=int, default=20)
    add("--kills", type=int, default=30, help="SIGKILLs of a replica (restarted)")
    add("--pauses", type=int, default=10, help="SIGSTOPs of a replica past member_ttl_s")
    add("--pg-kills", type=int, default=5, help="pg_terminate_backend of a replica's connections")
    add("--nats-restarts", type=int, default=2)
    add("--seed", type=int, default=1)
    add("--fault-rate", type=float, default=0.03, help="share of order_send calls faulted")
    add("--hang-cap", type=float, default=1.5, help="seconds a hang lasts")
    add("--history-delay-ms", type=int, default=2000, help="the brokers' history is this late")
    add("--settle-s", type=float, default=0.5, help="the replicas' reconciliation settle_s")
    add("--workers", type=int, default=8, help="concurrent order clients")
    add("--readers", type=int, default=3, help="WebSocket readers (each reads every account)")
    add("--timeout", type=float, default=3600.0, help="give up after (s)")
    add("--settle-timeout", type=float, default=90.0, help="wait at most this for the store "
        "and the readers to settle (s)")  # fmt: skip
    add("--workdir", type=Path, help="default: a new temporary directory")
    add("--json", type=Path, help="also write the JSON report here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table and the JSON; 0 on a clean run, 1 otherwise."""
    args = build_parser().parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mt5gate-fleet-chaos-"))
    options = Options(
        args.orders, args.replicas, args.accounts, args.kills, args.pauses, args.pg_kills,
        args.nats_restarts, args.seed, args.fault_rate, args.hang_cap, args.history_delay_ms,
        args.settle_s, args.workers, args.readers, timeout_s=args.timeout,
        settle_timeout_s=args.settle_timeout,
    )  # fmt: skip
    print(f"fleet chaos run in {workdir}: {options.orders} orders, {options.replicas} replicas x "
          f"{options.accounts} accounts, seed {options.seed}", flush=True)  # fmt: skip
    report = run_fleet_chaos(options, workdir)
    print(report.table())
    payload = json.dumps(report.as_dict(), indent=2, sort_keys=True)
    print(payload)
    if args.json is not None:
        args.json.write_text(payload + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
