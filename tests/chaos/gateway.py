"""The chaos gateway: places orders ``chaos-0`` .. ``chaos-N-1`` exactly once, however often it
is killed, paused, doubled or given another journal.

::

    python -m tests.chaos.gateway --port P --token-file F --journal J --client-file C \\
        --orders N [--seed S] [--generation G] [--race-every R] [--lease-ttl 4] \\
        [--lease-renew 1] [--lease-deadline 2] [--order-timeout 0.5] [--budget 3] \\
        [--settle 0.5] [--linger]

It connects an :class:`~mt5gate.session.manager.MT5SessionManager` to the chaos broker's bridge
(``bridge://127.0.0.1:P``) with an on-disk :class:`~mt5gate.orders.journal.SqliteJournal`, a
short account lease and tight deadlines, so that the broker's hangs outlive the order deadline
and reconciliation runs often. ``connect()`` takes the account's lease and runs start-up
recovery: every order a killed or paused predecessor left unresolved is reconciled before the
first new order. While another live gateway owns the account, ``connect()`` raises
``MT5OwnershipError``: this gateway says ``waiting`` and tries again, without ever trading,
until the owner is gone (killed: at once; paused: when its lease expires).

Then it calls ``place_order(..., idempotency_key="chaos-<i>", resubmit=True)`` for each key, in
passes. A key is *final* when the call returned an :class:`~mt5gate.models.OrderResult`
(executed) or raised :class:`~mt5gate.errors.MT5TradeRejected` (a business rejection); the
client records it in its own memory (:class:`~tests.chaos.client.ClientMemory`, a file that
outlives every gateway and every journal) before it says so. Every other outcome leaves the key
for the next pass, *with the same key*: a key is never replaced by a new one. Keys final in the
client's memory are never sent again, whatever the journal says (after a journal was lost, the
operator's settlements are in that memory too). From the second pass on, keys whose outcome is
unknown are left to a sweep (``sweep_orders``) between passes, which reconciles them all
together: with late history, absence can only be shown while nothing trades, so proving them
one by one (each proof followed by a resend that trades) would take one history delay each.

Same-key races (``--race-every R``): about one attempt in ``R`` also fires, concurrently, the
same key with another body (twice the volume). It fires once the key is in the journal or its
real request is over (a rogue that came first on a fresh key would be the key's first request,
and place a real order); it must raise ``MT5IdempotencyError`` and never return a result.

A restart simply starts over. A random sample of executed keys that the current journal knows
under the same client id is replayed and must return that id.

Standard output is the harness's progress feed, one line per event:
``waiting epoch=<e>`` each time connect() met another owner; ``ready final=<n> keys=<N>
recovered=<r> epoch=<e>`` once connected with ``r`` unresolved orders of its predecessors
reconciled; ``final <n> <key> <outcome> client=<c> order=<t>`` when a key becomes final;
``race <key> inflight|after`` for a refused rogue (its real request still running, or over);
``blocked <key>`` when a new order met the account's block; ``fenced probe=<outcome>`` when a
newer owner took the account (after one more read of the terminal, which the bridge must
refuse); ``done`` at the end. Diagnostics go to standard error.

Exit codes: 0 all keys final; 2 the broker could not be reached in time; 3 the exactly-once
contract was broken (a blocked key, an idempotency error on the real request, a rogue that was
not refused, a replay returning another order); 4 new orders on the account are stopped (the
journal is behind the broker: an operator must look); 5 a newer owner took the account.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from mt5gate.bridge.cli import CliError, read_token
from mt5gate.circuit_breaker import BreakerPolicy
from mt5gate.constants import OrderFilling
from mt5gate.errors import (
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5Error,
    MT5IdempotencyError,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5OwnershipError,
    MT5StateError,
    MT5TimeoutError,
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
)
from mt5gate.models import OrderOutcome, OrderRequest, OrderResult, Side
from mt5gate.orders.journal import EventKind, SqliteJournal
from mt5gate.orders.ownership import LeasePolicy, owner_id
from mt5gate.orders.store import JournalError
from mt5gate.session.manager import MT5SessionManager
from mt5gate.session.policies import ReconcilePolicy, ReconnectPolicy, Timeouts
from mt5gate.session.state import SessionState
from tests.chaos.broker import ACCOUNT, HOST, SYMBOL
from tests.chaos.client import EXECUTED, REJECTED, ClientMemory, Outcome
from tests.chaos.client import Final as Settled

__all__ = [
    "BLOCKED_EXIT",
    "EXECUTED_KINDS",
    "FENCED_EXIT",
    "KEY_PREFIX",
    "Fatal",
    "key_name",
    "main",
    "request_for",
    "rogue_request_for",
    "session_for",
]

log = logging.getLogger("tests.chaos.gateway")

#: Idempotency keys are ``chaos-<index>``.
KEY_PREFIX: Final = "chaos-"
#: Journal states that mean "the order executed" (the outcome the key keeps forever).
EXECUTED_KINDS: Final = frozenset({EventKind.ACKNOWLEDGED, EventKind.RECONCILED_PRESENT})
#: One key in this many asks for a filling mode the broker refuses (10030): business
#: rejections must be final too, and must leave nothing in the ledger.
REJECT_EVERY: Final = 23
#: Executed keys replayed per start, to show the journal answers a replay with the same id.
REPLAY_SAMPLE: Final = 20
#: The volume of every chaos order; a rogue asks for twice as much.
VOLUME: Final = 0.01
#: Exit code: new orders on the account are stopped until an operator acknowledges.
BLOCKED_EXIT: Final = 4
#: Exit code: a newer owner took the account (this one was paused past its lease).
FENCED_EXIT: Final = 5
#: Seconds the fenced gateway's probe keeps trying to reach the bridge (:func:`probe`); the
#: harness gives a woken ex-owner 1.5 s in all (``PAUSE_WINDOW_S``).
PROBE_WITHIN_S: Final = 1.0
_CONNECT_DEADLINE_S: Final = 60.0


class Fatal(Exception):  # noqa: N818 - a verdict, not an error of this program
    """The exactly-once contract was broken; the gateway stops with exit code 3."""


class Blocked(Exception):  # noqa: N818 - a state of the account, not an error of this program
    """New orders on the account are stopped (the journal is behind the broker)."""


class Fenced(Exception):  # noqa: N818 - a state of the account, not an error of this program
    """A newer owner holds the account: this gateway must not trade any more."""


def key_name(index: int) -> str:
    """The idempotency key of order ``index``."""
    return f"{KEY_PREFIX}{index}"


def request_for(index: int) -> OrderRequest:
    """The one request of key ``index``: always the same (a replay must match it exactly).

    Sides alternate so the netting account's position stays small; one key in
    :data:`REJECT_EVERY` asks for RETURN filling, which BTCUSD does not allow (10030). The
    comment is the key, so an operator can tell which key an order at the broker belongs to.
    """
    side = Side.BUY if index % 2 == 0 else Side.SELL
    filling = int(OrderFilling.RETURN) if index % REJECT_EVERY == REJECT_EVERY // 2 else None
    return OrderRequest(SYMBOL, side, VOLUME, filling=filling, comment=key_name(index))


def rogue_request_for(index: int) -> OrderRequest:
    """Key ``index``'s request with another body (twice the volume): never to be sent."""
    real = request_for(index)
    return OrderRequest(real.symbol, real.side, 2 * VOLUME, filling=real.filling,
                        comment=real.comment)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Settings:
    """How one gateway run trades: its lease, deadlines and budgets, and its races."""

    lease: LeasePolicy = field(default_factory=lambda: LeasePolicy(4.0, 1.0, 2.0))
    order_s: float = 0.5
    budget_s: float = 3.0
    race_every: int = 0
    settle_s: float = 0.5
    #: ReconcilePolicy.history_lag_s: above the broker's history delay (the harness knows it)
    history_lag_s: float = 60.0


def session_for(
    port: int, token: str, journal: SqliteJournal, settings: Settings | None = None
) -> MT5SessionManager:
    """A session to the chaos broker with deadlines shorter than the broker's hangs."""
    settings = settings or Settings()
    return MT5SessionManager(
        terminal=f"bridge://{HOST}:{port}",
        terminal_token=token,
        login=ACCOUNT.login,
        password=ACCOUNT.password,
        server=ACCOUNT.server,
        journal=journal,
        timeouts=Timeouts(order_s=settings.order_s, call_s=2.0, connect_s=15.0, probe_s=1.0),
        reconcile=ReconcilePolicy(
            first_s=0.05,
            max_interval_s=0.5,
            settle_s=settings.settle_s,
            history_lag_s=settings.history_lag_s,
            budget_s=settings.budget_s,
            replay_budget_s=min(1.5, settings.budget_s),
            sweep_interval_s=None,
        ),
        reconnect=ReconnectPolicy(base_s=0.1, max_s=1.0),
        breaker=BreakerPolicy(open_max_s=4.0),
        owner=owner_id("chaos"),
        owner_info={"kind": "chaos-gateway"},
        lease=settings.lease,
        name="chaos-gateway",
    )


def say(line: str) -> None:
    """One line of the progress feed."""
    print(line, flush=True)


@dataclass(slots=True)
class Progress:
    """Which keys are final (in the client's memory), and how the others failed this pass."""

    total: int
    memory: ClientMemory
    generation: int
    final: set[str] = field(default_factory=set)
    retries: dict[str, int] = field(default_factory=dict)

    def done(self, key: str, outcome: str, client_id: int, order: int = 0) -> None:
        """Record ``key`` final in the client's memory, then tell the harness."""
        if key in self.final:
            return
        kind: Outcome = EXECUTED if outcome == "executed" else REJECTED
        self.memory.append(Settled(key, kind, (client_id,), (order,) if order else (),
                                   "gateway", self.generation, outcome))  # fmt: skip
        self.final.add(key)
        say(f"final {len(self.final)} {key} {outcome} client={client_id} order={order}")

    def retry(self, why: str) -> None:
        """Count one non-final attempt by its cause."""
        self.retries[why] = self.retries.get(why, 0) + 1


async def connect(session: MT5SessionManager) -> None:
    """Connect (lease and start-up recovery included), retrying until the broker answers and
    the account's owner, if another gateway, is gone."""
    deadline = time.monotonic() + _CONNECT_DEADLINE_S
    while True:
        try:
            await session.connect()
            return
        except MT5OwnershipError as held:  # another live owner: wait, never trade meanwhile
            say(f"waiting epoch={held.epoch}")
            deadline = time.monotonic() + _CONNECT_DEADLINE_S  # not an outage
        except JournalError as error:  # a paused process holds the file's write lock
            if time.monotonic() > deadline:
                raise
            log.warning("the journal is busy, retrying: %s", error)
        except MT5Error as error:
            if time.monotonic() > deadline:
                raise
            log.warning("connect failed, retrying: %s", error)
        if session.state is not SessionState.DISCONNECTED:
            await session.disconnect()
        await asyncio.sleep(0.2)


async def heal(session: MT5SessionManager) -> None:
    """Reconnect a session that gave up (the automatic reconnection handles the rest)."""
    if session.state is SessionState.DISCONNECTED:
        await connect(session)


@dataclass(slots=True)
class Gateway:
    """One run: the session, its journal, the client's progress, the race dice."""

    session: MT5SessionManager
    journal: SqliteJournal
    progress: Progress
    rng: random.Random
    race_every: int = 0

    async def attempt(self, index: int) -> bool:
        """One ``place_order`` for key ``index`` (and maybe a rogue); True when final."""
        key = key_name(index)
        real = asyncio.ensure_future(self.session.place_order(
            request_for(index), idempotency_key=key, resubmit=True))  # fmt: skip
        rogue = None
        if self.race_every and self.rng.random() < 1.0 / self.race_every:
            rogue = asyncio.ensure_future(self.rogue(index, real))
        try:
            return await self._outcome(key, real)
        finally:
            if rogue is not None:
                await rogue  # raises Fatal when the rogue was not refused

    async def _outcome(self, key: str, real: asyncio.Future[OrderResult]) -> bool:
        progress = self.progress
        try:
            result = await real
        except MT5TradeRejected as rejected:
            progress.done(key, f"rejected:{rejected.retcode}", rejected.client_id or 0)
            return True
        except MT5OrderOutcomeUnknown:
            progress.retry("unknown")
        except MT5TradeRetryable:
            progress.retry("absent")
        except MT5OrderBlockedError as error:
            await self._blocked(key, error)
        except MT5OwnershipError as error:
            self._fenced_or_late(error)
            progress.retry("ownership")
            await asyncio.sleep(0.2)
        except MT5StateError:
            progress.retry("not sent")
        except (MT5ConnectionError, MT5CircuitBreakerOpen, MT5TradingDisabledError) as error:
            progress.retry(type(error).__name__)
        except MT5Error as error:  # idempotency conflict, validation: the contract is broken
            raise Fatal(f"{key}: {type(error).__name__}: {error}") from error
        else:
            if not isinstance(result, OrderResult) or result.client_id <= 0:
                raise Fatal(f"{key}: place_order returned {result!r}")
            progress.done(key, "executed", result.client_id, result.order)
            return True
        await heal(self.session)
        return False

    async def _blocked(self, key: str, error: MT5OrderBlockedError) -> None:
        """The key's own order blocked (DUPLICATE, UNEXPECTED, CONFLICT): the contract broke.
        The account's block (a journal behind the broker): an operator must look."""
        status = await self.session.order_status(key)
        if status is not None and status.outcome is OrderOutcome.BLOCKED:
            raise Fatal(f"{key}: {error}")
        say(f"blocked {key}")
        raise Blocked(str(error))

    def _fenced_or_late(self, error: MT5OwnershipError) -> None:
        """Fenced for good (a newer owner) ends the run; a late renewal only waits."""
        if self.session.ownership.lost is not None:
            raise Fenced(str(error))
        log.warning("not trading until the lease is renewed: %s", error)

    async def rogue(self, index: int, real: asyncio.Future[OrderResult]) -> None:
        """The same key with another body, fired while the real request runs (or once it is
        over): it must be refused with ``MT5IdempotencyError`` and never return a result."""
        key = key_name(index)
        while not real.done() and self.journal.by_key(ACCOUNT.login, key) is None:
            await asyncio.sleep(0.002)
        if self.rng.random() < 0.5:
            await asyncio.wait({real})  # half of them after it: the journal's comparison
        if self.journal.by_key(ACCOUNT.login, key) is None:
            return  # over before journaling anything: the rogue would be the key's first use
        when = "after" if real.done() else "inflight"
        try:
            result = await self.session.place_order(
                rogue_request_for(index), idempotency_key=key, resubmit=True
            )
        except MT5IdempotencyError:
            say(f"race {key} {when}")
            return
        except MT5Error as error:
            raise Fatal(f"rogue {key} ({when}) raised {type(error).__name__}, not "
                        f"MT5IdempotencyError: {error}") from None  # fmt: skip
        raise Fatal(f"rogue {key} ({when}) with another body returned {result!r}")

    async def replay_sample(self, executed: dict[str, int]) -> None:
        """Replay some executed keys: each must return its journal client id, sending
        nothing."""
        rng = self.rng
        for key in rng.sample(sorted(executed), min(REPLAY_SAMPLE, len(executed))):
            index = int(key.removeprefix(KEY_PREFIX))
            try:
                result = await self.session.place_order(
                    request_for(index), idempotency_key=key, resubmit=True
                )
            except MT5OwnershipError as error:
                self._fenced_or_late(error)
                continue
            except MT5Error as error:
                raise Fatal(
                    f"replay of executed {key} raised {type(error).__name__}: {error}"
                ) from None
            if result.client_id != executed[key]:
                raise Fatal(f"replay of {key} returned client id {result.client_id}, "
                            f"the client was told {executed[key]}")  # fmt: skip

    async def unknown(self, key: str) -> bool:
        """Whether the key's order is unknown (left to the sweep between passes)."""
        status = await self.session.order_status(key)
        return status is not None and status.outcome is OrderOutcome.UNKNOWN

    async def sweep(self) -> None:
        """Reconcile every unresolved order together (and audit the ledger once more)."""
        try:
            await self.session.sweep_orders()
        except MT5OwnershipError as error:
            self._fenced_or_late(error)
        except MT5Error as error:
            log.warning("sweep failed: %s", error)

    async def place_all(self, orders: int) -> None:
        """Every key not final in the client's memory, in passes, until all are final."""
        progress = self.progress
        pending = [i for i in range(orders) if key_name(i) not in progress.final]
        passes = 0
        while pending:
            passes += 1
            progress.retries.clear()
            left = []
            for index in pending:
                if passes > 1 and await self.unknown(key_name(index)):
                    progress.retry("unknown, left to the sweep")
                    left.append(index)
                elif not await self.attempt(index):
                    left.append(index)
            pending = left
            log.info("pass %d: %d final, %d left %s", passes, len(progress.final), len(pending),
                     progress.retries)  # fmt: skip
            if pending:
                await self.sweep()
                await asyncio.sleep(0.2)


def executed_in_journal(journal: SqliteJournal, memory: ClientMemory) -> dict[str, int]:
    """Keys the client was told executed that the current journal shows executed under the
    same client id (a replay must return that id); keys it does not know are never replayed
    (after a lost journal, that would send them again)."""
    told = {f.key: f.client_ids[0] for f in memory.finals().values()
            if f.outcome == EXECUTED and f.client_ids}  # fmt: skip
    found = journal.summaries(ACCOUNT.login, states=EXECUTED_KINDS)
    return {
        s.idempotency_key: s.client_id.sequence
        for s in found
        if s.idempotency_key in told and told[s.idempotency_key] == s.client_id.sequence
    }


async def probe(session: MT5SessionManager, within_s: float = PROBE_WITHIN_S) -> str:
    """One more read of the terminal after losing the account: the bridge must refuse it.

    What the bridge does with the read is the point, so an outcome that is no answer of the
    bridge is tried again, every 50 ms for ``within_s``: a timeout (a process woken from
    SIGSTOP finds that its deadlines ran on while it slept, so its worker may still count as
    stuck in the call it was making, and a read is then refused here, "not sent") and an open
    breaker (those expiries count as failures). The first other outcome is reported, whatever
    it is (``answered`` too: the harness counts it as a must-be-zero), else the last error.
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            await session.get_price(SYMBOL)
        except MT5OwnershipError:
            return "refused"
        except (MT5TimeoutError, MT5CircuitBreakerOpen) as error:
            if time.monotonic() >= deadline:
                return _probe_failed(error)
            log.info("the probe got no answer from the bridge, trying again: %s", error)
            await asyncio.sleep(0.05)
        except MT5Error as error:
            return _probe_failed(error)
        else:
            return "answered"


def _probe_failed(error: MT5Error) -> str:
    log.warning("the probe failed: %s: %s", type(error).__name__, error)
    return f"error:{type(error).__name__}"


async def linger() -> None:
    """Keep the account (and its lease) until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    say("lingering")
    await stop.wait()


async def run(args: argparse.Namespace, token: str) -> int:
    """Connect, place every key until final, close; the exit code."""
    lease = LeasePolicy(args.lease_ttl, args.lease_renew, args.lease_deadline)
    settings = Settings(lease, args.order_timeout, args.budget, args.race_every, args.settle,
                        args.history_lag)  # fmt: skip
    journal = SqliteJournal(args.journal)
    session = session_for(args.port, token, journal, settings)
    memory = ClientMemory(args.client_file)
    progress = Progress(args.orders, memory, args.generation)
    gateway = Gateway(session, journal, progress, random.Random(args.seed), args.race_every)
    try:
        recovering = len(journal.unresolved(ACCOUNT.login))  # what connect() will reconcile
        await connect(session)
        progress.final |= set(memory.finals())
        held = session.ownership.held
        say(f"ready final={len(progress.final)} keys={args.orders} recovered={recovering} "
            f"epoch={held.epoch if held else 0}")  # fmt: skip
        await gateway.replay_sample(executed_in_journal(journal, memory))
        await gateway.place_all(args.orders)
        say("done")
        if args.linger:
            await linger()
        return 0
    except Fatal as broken:
        log.error("EXACTLY-ONCE BROKEN: %s", broken)
        return 3
    except Blocked as blocked:
        log.warning("new orders are stopped, an operator must look: %s", blocked)
        return BLOCKED_EXIT
    except Fenced as fenced:
        say(f"fenced probe={await probe(session)}")
        log.warning("a newer owner took the account: %s", fenced)
        return FENCED_EXIT
    finally:
        await session.close()
        journal.close()


def build_parser() -> argparse.ArgumentParser:
    """The command line of the chaos gateway."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.gateway",
        description="Place chaos-0..N-1 exactly once through the chaos broker.",
    )
    add = parser.add_argument
    add("--port", type=int, required=True, help="the broker's bridge port")
    add("--token-file", type=Path, required=True, help="the bridge token (600)")
    add("--journal", type=Path, required=True, help="the SQLite order journal")
    add("--client-file", type=Path, required=True, help="the client's memory of final keys")
    add("--orders", type=int, required=True, help="how many keys")
    add("--seed", type=int, default=1, help="seeds the replay sample and the races")
    add("--generation", type=int, default=0, help="the journal generation (for the memory)")
    add("--race-every", type=int, default=0, help="race a rogue body once in R attempts")
    add("--lease-ttl", type=float, default=4.0, help="the account lease's ttl_s")
    add("--lease-renew", type=float, default=1.0, help="the account lease's renew_s")
    add("--lease-deadline", type=float, default=2.0, help="the account lease's deadline_s")
    add("--order-timeout", type=float, default=0.5, help="order_send's deadline (s)")
    add("--budget", type=float, default=3.0, help="reconciliation budget per call (s)")
    add("--settle", type=float, default=0.5, help="ReconcilePolicy.settle_s (s)")
    add("--history-lag", type=float, default=60.0, help="ReconcilePolicy.history_lag_s (s)")
    add("--linger", action="store_true", help="keep the account after done, until SIGTERM")
    add("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit code of :func:`run` (2 also for a bad token file)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    for name in ("tests.chaos.gateway", "mt5gate.orders"):
        logging.getLogger(name).setLevel(args.log_level.upper())
    try:
        token = read_token(args.token_file)
    except CliError as error:
        print(f"chaos gateway: {error}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args, token))
    except MT5Error as error:
        log.error("cannot reach the broker: %s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
