"""The chaos gateway: places orders ``chaos-0`` .. ``chaos-N-1`` exactly once, however often it
is killed.

::

    python -m tests.chaos.gateway --port P --token-file F --journal J --orders N [--seed S]

It connects an :class:`~mt5gate.session.manager.MT5SessionManager` to the chaos broker's bridge
(``bridge://127.0.0.1:P``) with an on-disk :class:`~mt5gate.orders.journal.SqliteJournal` and
tight deadlines, so that the broker's hangs outlive the order deadline and reconciliation runs
often. ``connect()`` runs start-up recovery: every order a killed predecessor left unresolved is
reconciled before the first new order.

Then it calls ``place_order(..., idempotency_key="chaos-<i>", resubmit=True)`` for each key, in
passes. A key is *final* when the call returned an :class:`~mt5gate.models.OrderResult`
(executed) or raised :class:`~mt5gate.errors.MT5TradeRejected` (a business rejection). Every
other outcome (unknown, proven absent, nothing sent, breaker open, reconnecting) leaves the key
for the next pass, *with the same key*: a key is never replaced by a new one, which is what
makes a second order impossible. It exits 0 once every key is final.

A restart simply starts over. Keys the journal already shows executed are not sent through the
session again (that would only replay the journal N times per restart), except a random sample
of them per start, which is replayed and must return the journal's own client id. Every other
key is replayed through ``place_order``, which answers from the journal or reconciles.

Standard output is the harness's progress feed, one line per event:
``ready final=<n> keys=<N> recovered=<r>`` once connected and ``r`` orders left
unresolved by its predecessor are reconciled, ``final <n> <key> <outcome>`` when a
key becomes final, ``done`` at the end. Diagnostics go to standard error.

Exit codes: 0 all keys final; 2 the broker could not be reached in time; 3 the exactly-once
contract was broken (a blocked key, an idempotency conflict, a replay returning another order).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
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
    MT5OrderOutcomeUnknown,
    MT5StateError,
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
)
from mt5gate.models import OrderRequest, OrderResult, Side
from mt5gate.orders.journal import EventKind, SqliteJournal
from mt5gate.session.manager import MT5SessionManager
from mt5gate.session.policies import ReconcilePolicy, ReconnectPolicy, Timeouts
from mt5gate.session.state import SessionState
from tests.chaos.broker import ACCOUNT, HOST, SYMBOL

__all__ = [
    "EXECUTED_KINDS",
    "KEY_PREFIX",
    "Fatal",
    "key_name",
    "main",
    "request_for",
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
_CONNECT_DEADLINE_S: Final = 60.0


class Fatal(Exception):  # noqa: N818 - a verdict, not an error of this program
    """The exactly-once contract was broken; the gateway stops with exit code 3."""


def key_name(index: int) -> str:
    """The idempotency key of order ``index``."""
    return f"{KEY_PREFIX}{index}"


def request_for(index: int) -> OrderRequest:
    """The one request of key ``index``: always the same (a replay must match it exactly).

    Sides alternate so the netting account's position stays small; one key in
    :data:`REJECT_EVERY` asks for RETURN filling, which BTCUSD does not allow (10030).
    """
    side = Side.BUY if index % 2 == 0 else Side.SELL
    filling = int(OrderFilling.RETURN) if index % REJECT_EVERY == REJECT_EVERY // 2 else None
    return OrderRequest(SYMBOL, side, 0.01, filling=filling, comment=key_name(index))


def session_for(port: int, token: str, journal: SqliteJournal) -> MT5SessionManager:
    """A session to the chaos broker with deadlines shorter than the broker's hangs."""
    return MT5SessionManager(
        terminal=f"bridge://{HOST}:{port}",
        terminal_token=token,
        login=ACCOUNT.login,
        password=ACCOUNT.password,
        server=ACCOUNT.server,
        journal=journal,
        timeouts=Timeouts(order_s=0.5, call_s=2.0, connect_s=15.0, probe_s=1.0),
        reconcile=ReconcilePolicy(
            first_s=0.05, max_interval_s=0.5, settle_s=0.5, budget_s=10.0, sweep_interval_s=None
        ),
        reconnect=ReconnectPolicy(base_s=0.1, max_s=1.0),
        breaker=BreakerPolicy(open_max_s=4.0),
        name="chaos-gateway",
    )


@dataclass(slots=True)
class Progress:
    """Which keys are final, and how the others failed this pass (for the log)."""

    total: int
    final: set[str] = field(default_factory=set)
    retries: dict[str, int] = field(default_factory=dict)

    def done(self, key: str, outcome: str) -> None:
        """Mark ``key`` final and tell the harness."""
        if key in self.final:
            return
        self.final.add(key)
        print(f"final {len(self.final)} {key} {outcome}", flush=True)

    def retry(self, why: str) -> None:
        """Count one non-final attempt by its cause."""
        self.retries[why] = self.retries.get(why, 0) + 1


async def connect(session: MT5SessionManager) -> None:
    """Connect (start-up recovery included), retrying until the broker answers."""
    deadline = time.monotonic() + _CONNECT_DEADLINE_S
    while True:
        try:
            await session.connect()
            return
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


def executed_keys(journal: SqliteJournal) -> dict[str, int]:
    """Keys the journal shows executed, with their client sequence (read-only, at start)."""
    found = journal.summaries(ACCOUNT.login, states=EXECUTED_KINDS)
    return {s.idempotency_key: s.client_id.sequence for s in found if s.idempotency_key}


async def attempt(session: MT5SessionManager, index: int, progress: Progress) -> bool:
    """One ``place_order`` for key ``index``; True when its outcome is final."""
    key = key_name(index)
    try:
        result = await session.place_order(request_for(index), idempotency_key=key, resubmit=True)
    except MT5TradeRejected as rejected:
        progress.done(key, f"rejected:{rejected.retcode}")
        return True
    except MT5OrderOutcomeUnknown:
        progress.retry("unknown")
    except MT5TradeRetryable:
        progress.retry("absent")
    except MT5StateError as error:
        if "blocked" in error.message:
            raise Fatal(f"{key}: {error}") from error
        progress.retry("not sent")
    except (MT5ConnectionError, MT5CircuitBreakerOpen, MT5TradingDisabledError) as error:
        progress.retry(type(error).__name__)
    except MT5Error as error:  # idempotency conflict, validation: the contract is broken
        raise Fatal(f"{key}: {type(error).__name__}: {error}") from error
    else:
        if not isinstance(result, OrderResult) or result.client_id <= 0:
            raise Fatal(f"{key}: place_order returned {result!r}")
        progress.done(key, "executed")
        return True
    await heal(session)
    return False


async def replay_sample(
    session: MT5SessionManager, executed: dict[str, int], rng: random.Random
) -> None:
    """Replay some executed keys: each must return its journal client id and send nothing."""
    for key in rng.sample(sorted(executed), min(REPLAY_SAMPLE, len(executed))):
        index = int(key.removeprefix(KEY_PREFIX))
        try:
            result = await session.place_order(
                request_for(index), idempotency_key=key, resubmit=True
            )
        except MT5Error as error:
            raise Fatal(
                f"replay of executed {key} raised {type(error).__name__}: {error}"
            ) from None
        if result.client_id != executed[key]:
            raise Fatal(f"replay of {key} returned client id {result.client_id}, "
                        f"the journal says {executed[key]}")  # fmt: skip


async def run(port: int, token: str, journal_path: Path, orders: int, seed: int) -> int:
    """Connect, place every key until final, close; the exit code."""
    journal = SqliteJournal(journal_path)
    session = session_for(port, token, journal)
    try:
        recovering = len(journal.unresolved(ACCOUNT.login))  # what connect() will reconcile
        await connect(session)
        executed = executed_keys(journal)
        progress = Progress(orders)
        for key in executed:
            progress.final.add(key)
        print(f"ready final={len(progress.final)} keys={orders} recovered={recovering}",
              flush=True)  # fmt: skip
        await replay_sample(session, executed, random.Random(seed))
        pending = [i for i in range(orders) if key_name(i) not in progress.final]
        passes = 0
        while pending:
            passes += 1
            progress.retries.clear()
            pending = [i for i in pending if not await attempt(session, i, progress)]
            log.info("pass %d: %d final, %d left %s", passes, len(progress.final), len(pending),
                     progress.retries)  # fmt: skip
            if pending:
                await asyncio.sleep(0.2)
        print("done", flush=True)
        return 0
    except Fatal as broken:
        log.error("EXACTLY-ONCE BROKEN: %s", broken)
        return 3
    finally:
        await session.close()
        journal.close()


def build_parser() -> argparse.ArgumentParser:
    """The command line of the chaos gateway."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.gateway",
        description="Place chaos-0..N-1 exactly once through the chaos broker.",
    )
    parser.add_argument("--port", type=int, required=True, help="the broker's bridge port")
    parser.add_argument("--token-file", type=Path, required=True, help="the bridge token (600)")
    parser.add_argument("--journal", type=Path, required=True, help="the SQLite order journal")
    parser.add_argument("--orders", type=int, required=True, help="how many keys")
    parser.add_argument("--seed", type=int, default=1, help="seeds the replay sample")
    parser.add_argument("--log-level", default="INFO")
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
        return asyncio.run(run(args.port, token, args.journal, args.orders, args.seed))
    except MT5Error as error:
        log.error("cannot reach the broker: %s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
