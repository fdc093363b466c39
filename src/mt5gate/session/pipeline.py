"""The exactly-once order pipeline: every order request of a session goes through here.

    validate -> risk limits -> journal INTENT (on disk) -> SENT -> order_send once, with a
    deadline -> classify -> ACKNOWLEDGED | REJECTED | UNKNOWN -> reconcile -> final outcome

The id: each request gets a :class:`~mt5gate.orders.ids.ClientOrderId` from the journal's
durable sequence, written with its INTENT in one synced transaction *before* anything is sent,
and carried in ``magic`` and a comment tag, so the order can be found in the terminal whatever
happens to the reply or to this process.

Idempotency keys: a key maps to one client id forever. Calling again with the same key and the
same request returns the first *final* outcome (executed, or a business rejection) and never
sends a second order; the same key with another request raises ``MT5IdempotencyError``. An
attempt that provably sent nothing (risk limit, breaker open, requote, proven absent) does not
use the key up: calling again sends the order, with the same client id. While a key's outcome
is unknown a second call waits for the first (same process) or reconciles it first.

Recovery: :meth:`OrderPipeline.recover` (run by ``connect``) reconciles every unresolved order
of the account before new orders are accepted; :meth:`OrderPipeline.sweep` (periodic) reports
orders in our id namespace the journal does not know (UNEXPECTED) and ids on two orders
(DUPLICATE), and keeps reconciling what is still unknown.

Journal writes run on the session's journal thread (a named ``TerminalWorker``), never on the
event loop: an fsync must not stall every other coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from mt5gate.constants import TradeAction, TradeRetcode
from mt5gate.errors import (
    MT5Error,
    MT5IdempotencyError,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5RiskLimitError,
    MT5StateError,
    MT5TradeError,
    MT5TradeRejected,
    MT5TradeRetryable,
    Outcome,
    error_from_trade_result,
)
from mt5gate.models import OrderResult
from mt5gate.orders.evidence import Evidence, audit
from mt5gate.orders.ids import ClientOrderId, tag_comment
from mt5gate.orders.journal import (
    UNRESOLVED_KINDS,
    EventKind,
    IdempotencyConflict,
    JournalError,
    JournalEvent,
    OrderJournal,
)
from mt5gate.orders.risk import RiskGate, SymbolBook
from mt5gate.session.reconcile import Reconciler, Verdict, Watch, state_check
from mt5gate.terminal.worker import (
    DeadlineExceededError,
    TerminalWorker,
    WorkerClosedError,
    WorkerStuckError,
)

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["OrderPipeline", "Submission"]

log = logging.getLogger("mt5gate.orders")
T = TypeVar("T")
K = EventKind

#: Actions whose order carries our id in ``magic`` (found by id); the rest are found by state.
_BY_MAGIC = frozenset({int(TradeAction.DEAL), int(TradeAction.PENDING)})
#: Last events that prove the order never left: SENT is on disk before every order_send.
_NEVER_SENT = frozenset({K.INTENT, K.RESUBMITTED})
_JOURNAL_DEADLINE_S = 30.0


@dataclass(slots=True)
class Submission:
    """One order request on its way: what the caller said, and how to (re)build the request.

    ``intent`` is the caller's request as data (what idempotency compares); ``build`` reads
    what it needs from the terminal and makes the MT5 request dict afresh (re-priced) for the
    first send and for a resubmission, with the broker time of the quote it used (0 if none):
    a replayed key never calls it. ``opens`` says whether
    risk limits apply (new orders; never closes, modifications or cancels).
    """

    intent: dict[str, Any]
    build: Callable[[], Awaitable[tuple[dict[str, Any], int]]]
    symbol: str = ""  # known up front for new orders (risk limits); else read from the request
    opens: bool = False
    volume: float = 0.0
    key: str | None = None
    resubmit: bool = False
    sent_ms: int = 0
    resubmitted: bool = False


@dataclass(slots=True)
class _Late:
    """A late reply of a lost order_send: the record, or the error it ended in."""

    record: Any = None
    error: MT5Error | None = None


class OrderPipeline:
    """Exactly-once order placement for one session (module docstring)."""

    def __init__(
        self,
        session: MT5SessionManager,
        journal: OrderJournal,
        risk: RiskGate,
        reconciler: Reconciler,
    ) -> None:
        self._session = session
        self.journal = journal
        self.risk = risk
        self.reconciler = reconciler
        self._writer = TerminalWorker(f"{session.name}-journal")
        self._inflight: dict[str, asyncio.Future[OrderResult]] = {}  # by idempotency key
        self._late: dict[int, _Late] = {}
        self._ready: asyncio.Event | None = None
        self._login: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: set[int] = set()  # client sequences a call of this process is handling
        self._sweeper: asyncio.Task[None] | None = None
        self.last_audit_unexpected: tuple[int, ...] = ()
        self.last_audit_duplicates: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return f"<OrderPipeline journal={self.journal!r} risk={self.risk!r}>"

    # ------------------------------------------------------------------ life cycle

    async def _write(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a journal method on the journal thread; durable when it returns."""
        call = functools.partial(method, *args, **kwargs)
        started = self._session.clock.monotonic()
        try:
            result: T = await self._writer.run("journal", call, _JOURNAL_DEADLINE_S)
        except WorkerClosedError:
            raise MT5StateError(
                "the session is closed; its order journal is no longer open"
            ) from None
        except (DeadlineExceededError, WorkerStuckError) as slow:
            raise JournalError(f"the order journal did not answer: {slow}") from None
        name = getattr(method, "__name__", "journal")
        self._session.observer.journal_written(name, self._session.clock.monotonic() - started)
        return result

    def _event(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    @property
    def login(self) -> int:
        """The account orders are journaled under (known once connected)."""
        if self._login is None:
            raise MT5StateError("the session has not connected yet; call connect() first")
        return self._login

    async def start(self) -> None:
        """After each connect: learn the account, recover, then accept orders (and sweep)."""
        account = await self._session.get_account_info()
        self._login = account.login
        await self.recover()
        self._event().set()
        interval = self.reconciler.policy.sweep_interval_s
        if interval is not None and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(interval))

    async def close(self) -> None:
        """Stop the sweep, let late-result writes finish, stop the journal thread."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writer.close(timeout_s=5.0)

    async def _sweep_forever(self, interval: float) -> None:
        while True:
            await self._session.clock.sleep(interval)
            try:
                await self.sweep()
            except (MT5Error, JournalError) as error:
                log.warning("order sweep failed, it runs again in %g s: %s", interval, error)

    # ------------------------------------------------------------------ submitting

    async def submit(self, sub: Submission) -> OrderResult:
        """Place ``sub`` exactly once; its outcome, or the error that says what happened."""
        if self._login is None:
            raise MT5StateError("the session has not connected yet; call connect() first")
        await self._event().wait()  # start-up recovery first
        if sub.key is None:
            return await self._fresh(sub)
        waiting = self._inflight.get(sub.key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        done: asyncio.Future[OrderResult] = asyncio.get_running_loop().create_future()
        self._inflight[sub.key] = done
        try:
            result = await self._keyed(sub)
        except BaseException as error:
            done.set_exception(error)
            done.exception()  # retrieved: a waiter re-raises it, none may be waiting
            raise
        finally:
            del self._inflight[sub.key]
        done.set_result(result)
        return result

    async def _keyed(self, sub: Submission) -> OrderResult:
        assert sub.key is not None
        login = self.login
        known = await self._write(self.journal.by_key, login, sub.key)
        if known is None:
            return await self._fresh(sub)
        events = await self._write(self.journal.history, login, known)
        await self._same_request(known, sub)
        with self._holding(known):
            return await self._replay(known, sub, events)

    @contextlib.contextmanager
    def _holding(self, client_id: ClientOrderId) -> Iterator[None]:
        """Mark an order as handled by a call, so the sweep's recovery leaves it alone."""
        self._busy.add(client_id.sequence)
        try:
            yield
        finally:
            self._busy.discard(client_id.sequence)

    async def _same_request(self, client_id: ClientOrderId, sub: Submission) -> None:
        """The key's first request must be this one (compared as the journal stores it)."""
        try:
            await self._write(self.journal.record_intent, self.login, sub.intent, sub.key)
        except IdempotencyConflict as conflict:
            raise MT5IdempotencyError(str(conflict), client_id=client_id.sequence) from None

    async def _build(self, sub: Submission) -> dict[str, Any]:
        request, sub.sent_ms = await sub.build()
        sub.symbol = str(request.get("symbol", sub.symbol))
        return request

    async def _fresh(self, sub: Submission) -> OrderResult:
        """A request never seen before: risk, then INTENT and SENT (one fsync), then send."""
        request = await self._build(sub)
        breach = await self._risk_breach(sub)
        if breach is not None:
            client_id = await self._intent(sub)
            await self._record(K.RISK_REJECTED, client_id, note=f"{breach.limit}: {breach}")
            raise breach
        tagged: dict[str, Any] = {}

        def sent(client_id: ClientOrderId) -> tuple[Mapping[str, Any], object]:
            tagged.update(_tagged(request, client_id))  # runs inside the journal transaction
            return tagged, {"server_ms": sub.sent_ms}

        client_id = await self._intent_uncancelled(sub, sent)
        with self._holding(client_id):
            return await self._send(client_id, sub, request, journaled=tagged)

    async def _intent_uncancelled(
        self, sub: Submission, sent: Callable[[ClientOrderId], Any]
    ) -> ClientOrderId:
        """INTENT and SENT, finished even if the caller is cancelled meanwhile: the order was
        then not sent, and the journal says so instead of leaving a SENT nobody sent."""
        writing = asyncio.ensure_future(self._intent(sub, sent))
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            client_id = await writing
            note = "cancelled before it was sent"
            await self._record(K.RECONCILED_ABSENT, client_id, note=note)
            raise

    async def _intent(
        self, sub: Submission, sent: Callable[[ClientOrderId], Any] | None = None
    ) -> ClientOrderId:
        try:
            client_id = await self._write(
                self.journal.record_intent, self.login, sub.intent, sub.key, sent=sent
            )
        except IdempotencyConflict as conflict:  # a concurrent writer used the key
            raise MT5IdempotencyError(
                str(conflict), client_id=conflict.client_id.sequence
            ) from None
        for kind in (K.INTENT, K.SENT) if sent is not None else (K.INTENT,):
            self._session.observer.order_event(kind.value, None)
        return client_id

    async def _risk_breach(self, sub: Submission) -> MT5RiskLimitError | None:
        if not sub.opens:
            return None
        book = None
        if self.risk.needs_book():
            positions = await self._session.positions(symbol=sub.symbol)
            orders = await self._session.orders(symbol=sub.symbol)
            book = SymbolBook.of(sub.symbol, positions, orders)
        try:
            self.risk.check(sub.symbol, sub.volume, book)
        except MT5RiskLimitError as breach:
            return breach
        return None

    async def _record(
        self, kind: EventKind, client_id: ClientOrderId, **fields: Any
    ) -> JournalEvent:
        event = await self._write(self.journal.record, kind, client_id, client_id.login, **fields)
        self._session.observer.order_event(kind.value, event.retcode)
        return event

    # ------------------------------------------------------------------ the send

    async def _send(
        self,
        client_id: ClientOrderId,
        sub: Submission,
        request: dict[str, Any],
        journaled: dict[str, Any] | None = None,
    ) -> OrderResult:
        """SENT (unless ``journaled`` with the INTENT already), then one order_send; the
        outcome classified, journaled, and resolved."""
        if sub.opens:
            self.risk.admit()
        tagged = journaled or _tagged(request, client_id)
        if journaled is None:
            await self._record(K.SENT, client_id, request=tagged, result={"server_ms": sub.sent_ms})
        try:
            record = await self._session.trading.send_raw(
                tagged, on_late=functools.partial(self._heard_late, client_id)
            )
        except MT5OrderOutcomeUnknown as unknown:
            await self._record(K.UNKNOWN, client_id, note=str(unknown), retcode=unknown.retcode)
            return await self._resolve(client_id, sub, tagged, unknown)
        except asyncio.CancelledError:
            await asyncio.shield(self._record(K.UNKNOWN, client_id, note="cancelled mid-send"))
            raise
        except MT5Error as failure:
            await self._record(K.REJECTED, client_id, note=f"not sent: {failure}")
            raise _with_id(failure, client_id) from None
        return await self._classified(client_id, sub, tagged, record)

    async def _classified(
        self, client_id: ClientOrderId, sub: Submission, request: dict[str, Any], record: Any
    ) -> OrderResult:
        """A reply: ACKNOWLEDGED and returned, or REJECTED / UNKNOWN and raised / resolved."""
        error = error_from_trade_result(record.retcode, record.comment, request)
        if error is None:
            await self._record(K.ACKNOWLEDGED, client_id, result=record, retcode=record.retcode)
            return OrderResult.from_record(record, client_id.sequence)
        if isinstance(error, MT5OrderOutcomeUnknown):
            await self._record(K.UNKNOWN, client_id, result=record, retcode=record.retcode)
            return await self._resolve(client_id, sub, request, error)
        await self._record(K.REJECTED, client_id, result=record, retcode=record.retcode,
                           note=_rejection_note(error))  # fmt: skip
        raise _with_id(error, client_id)

    def _heard_late(self, client_id: ClientOrderId, record: Any, error: MT5Error | None) -> None:
        """Loop side: the lost order_send answered after all. It is recorded and it wins."""
        self._late[client_id.sequence] = _Late(record, error)
        if record is None:  # it failed after all: that says nothing about the order
            kind, retcode, note = K.UNKNOWN, None, f"late failure: {error}"
        else:
            kind, retcode, note = K.LATE_RESULT, record.retcode, "late reply"
        task = asyncio.get_running_loop().create_task(
            self._record(kind, client_id, result=record, retcode=retcode, note=note)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ unknown outcomes

    async def _resolve(
        self,
        client_id: ClientOrderId,
        sub: Submission,
        request: dict[str, Any],
        unknown: MT5OrderOutcomeUnknown,
    ) -> OrderResult:
        """Reconcile an unknown outcome within the budget; resubmit once if allowed and absent."""
        watch = Watch(client_id, sub.symbol, sub.sent_ms, state_check(request))
        budget = self.reconciler.policy.budget_s
        verdicts = await self.reconciler.settle(self.login, [watch], budget, self._late_verdict)
        verdict = verdicts[client_id.sequence]
        if verdict is Verdict.PRESENT:
            return await self._present(client_id, watch)
        if verdict is Verdict.UNKNOWN:
            raise _unknown(client_id, request, unknown)
        late = self._late.pop(client_id.sequence, None)
        if late is not None and late.record is not None:  # the late reply said "rejected"
            return await self._classified(client_id, sub, request, late.record)
        await self._record(K.RECONCILED_ABSENT, client_id, note="proven absent")
        if sub.resubmit and not sub.resubmitted:
            return await self._resubmit(client_id, sub)
        raise _absent(client_id, request)

    def _late_verdict(self, watch: Watch) -> Verdict | None:
        late = self._late.get(watch.client_id.sequence)
        if late is None or late.record is None:
            return None
        ok = error_from_trade_result(late.record.retcode, late.record.comment, {}) is None
        return Verdict.PRESENT if ok else Verdict.ABSENT

    async def _present(self, client_id: ClientOrderId, watch: Watch) -> OrderResult:
        late = self._late.pop(client_id.sequence, None)
        if late is not None and late.record is not None:
            await self._record(K.RECONCILED_PRESENT, client_id, result=late.record,
                               retcode=late.record.retcode, note="late reply")  # fmt: skip
            return OrderResult.from_record(late.record, client_id.sequence)
        summary = watch.evidence.summary() if watch.evidence.present else {"state": "reached"}
        retcode = int(TradeRetcode.DONE) if watch.check else _evidence_retcode(watch.evidence)
        await self._record(K.RECONCILED_PRESENT, client_id, result=summary, retcode=retcode)
        return replace(_evidence_result(watch.evidence, client_id), retcode=retcode)

    async def _resubmit(self, client_id: ClientOrderId, sub: Submission) -> OrderResult:
        """The one resend a proven absence allows: re-priced, the same client id."""
        sub.resubmitted = True
        request = await self._build(sub)
        await self._record(K.RESUBMITTED, client_id, request=_tagged(request, client_id))
        return await self._send(client_id, sub, request)

    # ------------------------------------------------------------------ replays

    async def _replay(
        self, client_id: ClientOrderId, sub: Submission, events: list[JournalEvent]
    ) -> OrderResult:
        """A key seen before: its first final outcome, or the order sent now if it never was."""
        last = events[-1]
        if last.kind in (K.ACKNOWLEDGED, K.RECONCILED_PRESENT) or _late_success(last):
            return _stored_result(last, client_id)
        if last.kind in (K.DUPLICATE, K.UNEXPECTED):
            raise MT5OrderBlockedError(
                f"order {client_id.comment_tag} (key {sub.key!r}) was found on the broker "
                f"{last.kind.value.lower()}; the key is blocked",
                hint="Inspect it with `mt5gate journal show` and settle it by hand; sending "
                "again cannot help.",
            )
        if last.kind in UNRESOLVED_KINDS:
            return await self._reconcile_replay(client_id, sub, events)
        if last.kind in (K.REJECTED, K.LATE_RESULT) and _final_rejection(last):
            raise _stored_rejection(last, client_id)
        return await self._rearm(client_id, sub)

    async def _reconcile_replay(
        self, client_id: ClientOrderId, sub: Submission, events: list[JournalEvent]
    ) -> OrderResult:
        """The key's order is unresolved (a crash, or an unknown outcome): settle it first."""
        verdict, watch = await self._settle_one(client_id, events)
        if verdict is Verdict.PRESENT:
            return await self._present(client_id, watch)
        if verdict is Verdict.UNKNOWN:
            raise _unknown(client_id, _last_request(events) or {}, None)
        return await self._rearm(client_id, sub)

    async def _settle_one(
        self, client_id: ClientOrderId, events: list[JournalEvent]
    ) -> tuple[Verdict, Watch]:
        """Reconcile one journaled order and journal the verdict (never sent: absent at once)."""
        watch = _watch(client_id, events)
        if events[-1].kind in _NEVER_SENT:
            await self._record(K.RECONCILED_ABSENT, client_id, note="never sent")
            return Verdict.ABSENT, watch
        budget = self.reconciler.policy.budget_s
        settled = await self.reconciler.settle(self.login, [watch], budget, self._late_verdict)
        verdict = settled[client_id.sequence]
        if verdict is Verdict.ABSENT:
            await self._record(K.RECONCILED_ABSENT, client_id, note="proven absent")
        return verdict, watch

    async def _rearm(self, client_id: ClientOrderId, sub: Submission) -> OrderResult:
        """Send, with the same id, an order that provably never executed."""
        request = await self._build(sub)
        breach = await self._risk_breach(sub)
        if breach is not None:
            await self._record(K.RISK_REJECTED, client_id, note=f"{breach.limit}: {breach}")
            raise breach
        await self._record(K.RESUBMITTED, client_id, request=_tagged(request, client_id),
                           note="sent again: the earlier attempt never executed")  # fmt: skip
        return await self._send(client_id, sub, request)

    # ------------------------------------------------------------------ recovery, sweep

    async def recover(self) -> dict[int, Verdict]:
        """Reconcile every unresolved order of the account (start-up, after a crash): orders
        that never left are absent at once; the rest are looked for together."""
        login = self.login
        verdicts: dict[int, Verdict] = {}
        watches: list[Watch] = []
        for client_id in await self._write(self.journal.unresolved, login):
            if client_id.sequence in self._busy:
                continue  # a call in flight settles it itself
            events = await self._write(self.journal.history, login, client_id)
            if events[-1].kind in _NEVER_SENT:
                await self._record(K.RECONCILED_ABSENT, client_id, note="never sent")
                verdicts[client_id.sequence] = Verdict.ABSENT
            else:
                watches.append(_watch(client_id, events))
        if watches:
            budget = self.reconciler.policy.budget_s
            found = await self.reconciler.settle(login, watches, budget, self._late_verdict)
            for watch in watches:
                await self._conclude(watch, found[watch.client_id.sequence])
            verdicts.update(found)
        if verdicts:
            counts = {v.value: list(verdicts.values()).count(v) for v in set(verdicts.values())}
            log.info("recovery: %d unresolved orders reconciled: %s", len(verdicts), counts)
        return verdicts

    async def _conclude(self, watch: Watch, verdict: Verdict) -> None:
        if verdict is Verdict.PRESENT:
            summary = watch.evidence.summary() if watch.evidence.present else None
            await self._record(K.RECONCILED_PRESENT, watch.client_id, result=summary,
                               retcode=_evidence_retcode(watch.evidence))  # fmt: skip
        elif verdict is Verdict.ABSENT:
            await self._record(K.RECONCILED_ABSENT, watch.client_id, note="proven absent")

    async def sweep(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Audit the terminal against the journal; (unexpected, duplicate) client sequences.

        Each finding is journaled once (UNEXPECTED / DUPLICATE) and blocks its key; the
        still-unresolved orders get one more reconciliation pass.
        """
        login = self.login
        snap = await self.reconciler.snapshot(login, set())
        if not snap.healthy:
            raise MT5StateError("the terminal could not be read; the sweep will run again")
        known = await self._write(self.journal.known_sequences, login)
        flagged = await self._write(self.journal.summaries, login, states={K.UNEXPECTED})
        found = audit(snap.evidence, known - {s.client_id.sequence for s in flagged})
        namespace = self.reconciler.namespace
        for kind, sequences in ((K.UNEXPECTED, found.unexpected), (K.DUPLICATE, found.duplicates)):
            for sequence in sequences:
                client_id = ClientOrderId(login, sequence, namespace)
                await self._flag(kind, client_id, snap.evidence[sequence])
        self.last_audit_unexpected, self.last_audit_duplicates = found.unexpected, found.duplicates
        if await self._write(self.journal.unresolved, login):
            await self.recover()
        return found.unexpected, found.duplicates

    async def _flag(self, kind: EventKind, client_id: ClientOrderId, evidence: Evidence) -> None:
        state = await self._write(self.journal.state, client_id.login, client_id)
        if state is kind:
            return
        log.error("order sweep: %s order %s on the broker: %s", kind.value, client_id.comment_tag,
                  evidence.tickets)  # fmt: skip
        await self._record(kind, client_id, result=evidence.summary(), note="found by the sweep")

    async def unresolved(self) -> list[ClientOrderId]:
        """The account's orders whose outcome is still open (health reports them)."""
        return await self._write(self.journal.unresolved, self.login)

    async def state(self, sequence: int) -> EventKind | None:
        """The journal state (last event kind) of this account's order ``sequence``."""
        return await self._write(self.journal.state, self.login, sequence)


# ---------------------------------------------------------------------------- helpers


def _watch(client_id: ClientOrderId, events: list[JournalEvent]) -> Watch:
    """A watch for a journaled order: its symbol, the broker time of its last send, and how to
    recognise it (by id, or by the state a modification asked for)."""
    request = _last_request(events) or {}
    intent = events[0].request if events and isinstance(events[0].request, dict) else {}
    symbol = str(request.get("symbol") or intent.get("symbol") or "")
    sent_ms = 0
    for event in events:
        if event.kind is K.SENT and isinstance(event.result, dict):
            sent_ms = int(event.result.get("server_ms") or 0)
    return Watch(client_id, symbol, sent_ms, state_check(request) if request else None)


def _tagged(request: Mapping[str, Any], client_id: ClientOrderId) -> dict[str, Any]:
    """The request with our id: in ``magic`` and the comment tag for orders (DEAL, PENDING)."""
    tagged = dict(request)
    if int(tagged.get("action", 0)) in _BY_MAGIC:
        tagged["magic"] = client_id.magic
        tagged["comment"] = tag_comment(str(tagged.get("comment", "")), client_id)
    return tagged


def _evidence_retcode(evidence: Evidence) -> int:
    return int(TradeRetcode.DONE if evidence.deals else TradeRetcode.PLACED)


def _evidence_result(evidence: Evidence, client_id: ClientOrderId) -> OrderResult:
    """An OrderResult read from the ledger (the reply was lost): tickets, volume, price."""
    deal = evidence.deals[0] if evidence.deals else None
    order = min(evidence.orders, key=lambda o: o.ticket) if evidence.orders else None
    if deal is not None:
        volume, price = sum(d.volume for d in evidence.deals), deal.price
    else:
        volume, price = (order.volume_initial, order.price_open) if order else (0.0, 0.0)
    ticket = order.ticket if order else (deal.order if deal else 0)
    return OrderResult(_evidence_retcode(evidence), ticket, deal.ticket if deal else 0, volume,
                       price, 0.0, 0.0, "reconciled", 0, client_id.sequence)  # fmt: skip


def _stored_result(event: JournalEvent, client_id: ClientOrderId) -> OrderResult:
    """The first outcome again, from what the journal stored of it."""
    r = event.result if isinstance(event.result, Mapping) else {}
    if "retcode" in r:
        return OrderResult(
            int(r["retcode"]), int(r.get("order", 0)), int(r.get("deal", 0)),
            float(r.get("volume", 0.0)), float(r.get("price", 0.0)), float(r.get("bid", 0.0)),
            float(r.get("ask", 0.0)), str(r.get("comment", "")), int(r.get("request_id", 0)),
            client_id.sequence,
        )  # fmt: skip
    retcode = event.retcode or int(TradeRetcode.DONE)
    return OrderResult(retcode, int(r.get("order", 0)), int(r.get("deal", 0)), 0.0, 0.0, 0.0,
                       0.0, "reconciled", 0, client_id.sequence)  # fmt: skip


def _late_success(event: JournalEvent) -> bool:
    """A late reply that said the order executed."""
    return (
        event.kind is K.LATE_RESULT
        and event.retcode is not None
        and error_from_trade_result(event.retcode, "", {}) is None
    )


def _final_rejection(event: JournalEvent) -> bool:
    """A REJECTED that used the key up: the server refused it for good (not a requote)."""
    if event.retcode is None:
        return False  # never sent (breaker open, not connected...)
    return isinstance(error_from_trade_result(event.retcode, "", {}), MT5TradeRejected)


def _stored_rejection(event: JournalEvent, client_id: ClientOrderId) -> MT5Error:
    r = event.result if isinstance(event.result, Mapping) else {}
    comment, request = str(r.get("comment", "")), r.get("request") or {}
    error = error_from_trade_result(event.retcode or 0, comment, request)
    assert error is not None
    return _with_id(error, client_id)


def _rejection_note(error: MT5Error) -> str:
    outcome = getattr(error, "outcome", Outcome.GATE)
    return f"{outcome}: {error.message}"


def _last_request(events: list[JournalEvent]) -> dict[str, Any] | None:
    for event in reversed(events):
        if event.kind in (K.SENT, K.RESUBMITTED) and isinstance(event.request, dict):
            return event.request
    return None


def _with_id(error: MT5Error, client_id: ClientOrderId) -> MT5Error:
    """``error`` telling which order it is about (trade errors carry ``client_id``)."""
    if isinstance(error, MT5TradeError):
        error.client_id = client_id.sequence
    return error


def _unknown(
    client_id: ClientOrderId, request: Mapping[str, Any], cause: MT5OrderOutcomeUnknown | None
) -> MT5OrderOutcomeUnknown:
    return MT5OrderOutcomeUnknown(
        f"the outcome of order {client_id.comment_tag} is still unknown after reconciling "
        f"({cause.message if cause else 'earlier attempt'})",
        retcode=cause.retcode if cause else None,
        request=request,
        client_id=client_id.sequence,
        code=cause.code if cause else None,
        hint="Do not send it again under a new key: mt5gate keeps reconciling it, and health "
        "reports it. Call again with the same idempotency key to wait for it.",
    )


def _absent(client_id: ClientOrderId, request: Mapping[str, Any]) -> MT5TradeRetryable:
    return MT5TradeRetryable(
        f"order {client_id.comment_tag} was proven absent: the lost order_send never executed",
        retcode=None,
        request=request,
        client_id=client_id.sequence,
        hint="Send it again with the same idempotency key (it keeps its client id), or pass "
        "resubmit=True to let mt5gate do it once.",
    )
