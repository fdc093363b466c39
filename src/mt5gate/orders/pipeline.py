"""The exactly-once order pipeline: every order request of an account goes through here.

    own the account -> audit -> validate -> risk limits -> INTENT + SENT (one fsync, fenced)
    -> order_send once, with a deadline, carrying the epoch -> classify
    -> ACKNOWLEDGED | REJECTED | UNKNOWN -> reconcile -> final outcome

Ownership: nothing is journaled or sent without the account's lease (:mod:`.ownership`); every
store write checks the writer's epoch in its own transaction, and the terminal host refuses
calls carrying an older epoch, which this pipeline announces before its first send or recovery.

The id: each request gets a :class:`~mt5gate.orders.ids.ClientOrderId` from the store (never
below the wall clock in ms since 2020, so never one a lost or restored journal gave out before),
written with its INTENT in one synced transaction *before* anything is sent, and carried in
``magic`` and a comment tag, so the order can be found in the terminal whatever happens to the
reply or to this process.

Idempotency keys: a key maps to one client id forever. What a call with a key seen before does
is decided from the order's folded state alone (:func:`~mt5gate.orders.core.replay_step`): the
first executed outcome or final rejection again, the order sent now if it provably never
executed, a short reconciliation and the current status if its outcome is open, a refusal if
the broker showed something the journal cannot account for. The same key with another request
is an ``MT5IdempotencyError``, in this process (concurrent callers) or across processes.

Recovery and audit: at start, the ledger is audited first (an id in our namespace the journal
never issued means the journal is behind the broker: new orders stop until an operator
acknowledges it), then every unresolved order is reconciled while new orders on other symbols
go ahead. The sweep repeats both periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

from mt5gate.constants import TradeRetcode
from mt5gate.errors import (
    MT5Error,
    MT5IdempotencyError,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5OwnershipError,
    MT5RiskLimitError,
    MT5StateError,
    MT5TimeoutError,
    error_from_trade_result,
)
from mt5gate.models import OrderResult, OrderStatus
from mt5gate.orders import outcomes
from mt5gate.orders.activity import SiblingReader
from mt5gate.orders.codec import EventCodec, canonical_json
from mt5gate.orders.core import (
    BY_MAGIC,
    EventKind,
    OrderState,
    Replay,
    fold,
    replay_step,
)
from mt5gate.orders.evidence import Evidence, audit
from mt5gate.orders.ids import ClientOrderId, tag_comment
from mt5gate.orders.ownership import Ownership
from mt5gate.orders.policies import ReconcilePolicy
from mt5gate.orders.ports import Broker, Clock, Ledger, OrderObserver
from mt5gate.orders.reconcile import (
    NEW_POSITION_ONLY,
    Reconciler,
    Verdict,
    Watch,
    before_send,
    evidence_matches,
    state_check,
)
from mt5gate.orders.risk import RiskGate, SymbolBook
from mt5gate.orders.store import (
    AccountBlock,
    Fence,
    FencedOutError,
    IdempotencyConflict,
    JournalEvent,
    OrderStore,
)

__all__ = ["OrderPipeline", "Submission"]

#: Last events that say an order never executed (whatever sends it next uses the same id).
_SAID_ABSENT: Final = frozenset({EventKind.RECONCILED_ABSENT, EventKind.REJECTED,
                                 EventKind.RISK_REJECTED})  # fmt: skip

log = logging.getLogger("mt5gate.orders")
T = TypeVar("T")
K = EventKind

_BEHIND: Final = (
    "the broker holds {n} order(s) in mt5gate's id namespace that this journal never issued "
    "({tags}): the journal is behind the broker (lost, replaced or restored from a backup), or "
    "another gateway trades this account with the same namespace"
)


@dataclass(slots=True)
class Submission:
    """One order request on its way: what the caller said, and how to (re)build the request.

    ``intent`` is the caller's request as data (what idempotency compares); ``build`` reads
    what it needs from the terminal and makes the MT5 request dict afresh (re-priced) for the
    first send and for a resubmission, with the broker time of the quote it used (0 if none):
    a replayed key never calls it. ``opens`` says whether risk limits apply (new orders;
    never closes, modifications or cancels).
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
    """Exactly-once order placement for one account (module docstring)."""

    def __init__(
        self,
        *,
        broker: Broker,
        ledger: Ledger,
        store: OrderStore,
        codec: EventCodec,
        risk: RiskGate,
        policy: ReconcilePolicy,
        ownership: Ownership,
        observer: OrderObserver,
        clock: Clock,
        namespace: int,
    ) -> None:
        self.broker = broker
        self.store = store
        self.codec = codec
        self.risk = risk
        self.ownership = ownership
        self.reconciler = Reconciler(ledger, policy, namespace, clock)
        self._observer = observer
        self._clock = clock
        self._inflight: dict[str, tuple[str | None, asyncio.Future[OrderResult]]] = {}
        self._late: dict[int, _Late] = {}
        self._login: int | None = None
        self._hedging = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: set[int] = set()  # client sequences a call of this process is handling
        self._sending: set[int] = set()  # client sequences whose order_send may still run
        #: the newest journal seq of the account this process knows (a lower bound of the
        #: head): recorded with each send's state before it, siblings are looked for above it
        self._head_seq = 0
        #: session clock when each open sibling was first seen with its send over
        self._open_since: dict[int, float] = {}
        self._held: set[str] = set()  # symbols whose unresolved orders recovery is settling
        self._recovered = asyncio.Event()
        self._audited = False
        self._block: AccountBlock | None = None
        self._terminal_epoch: int | None = None
        self._watches: dict[int, Watch] = {}  # what scans so far saw of each unknown order
        self._sweeper: asyncio.Task[None] | None = None
        self.last_audit_unexpected: tuple[int, ...] = ()
        self.last_audit_duplicates: tuple[int, ...] = ()
        ownership.on_regained = self._regained

    def __repr__(self) -> str:
        return f"<OrderPipeline store={self.store!r} {self.ownership!r} risk={self.risk!r}>"

    # ------------------------------------------------------------------ life cycle

    @property
    def login(self) -> int:
        """The account orders are journaled under (known once connected)."""
        if self._login is None:
            raise MT5StateError("the session has not connected yet")  # CONNECT_FIRST_HINT
        return self._login

    @property
    def ready(self) -> bool:
        """Owned, audited and recovered: orders on every symbol go without waiting."""
        if self._login is None or not self._audited or not self._recovered.is_set():
            return False
        try:
            self.ownership.fence()
        except MT5OwnershipError:
            return False
        return True

    @property
    def blocked(self) -> AccountBlock | None:
        """The account's block as this process last read it (new orders stop while set)."""
        return self._block

    async def start(self) -> None:
        """After each connect: own the account, audit the ledger, recover, then sweep."""
        self._login, self._hedging = await self.broker.login()
        fence = await self.ownership.acquire(self._login)
        self.ownership.start()
        if fence.took_over:  # the old owner may still run (paused): shut it out at once
            self._ensure_fenced()
        self._block = await self._timed("account_block", self.store.account_block(self._login))
        await self._read_head()
        await self._audit_once()
        await self.recover()
        interval = self.reconciler.policy.sweep_interval_s
        if interval is not None and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(interval))

    async def stop(self) -> None:
        """Stop the sweep and let late-result writes finish (the owner then lets go of the
        lease: :meth:`Ownership.close`)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _regained(self, fence: Fence) -> None:
        """Ownership came back after a newer owner let go: its orders may have moved on, so
        recover and audit again before trading (the terminal learns the new epoch first)."""
        log.warning("account %d: ownership regained with epoch %d; recovering", fence.login,
                    fence.epoch)  # fmt: skip
        self._audited = False
        self._spawn(self._recover_after_regain())

    async def _recover_after_regain(self) -> None:
        with contextlib.suppress(MT5Error):
            await self._read_head()  # the other owner wrote meanwhile
            self._ensure_fenced()
            await self._audit_once()
            await self.recover()

    async def _read_head(self) -> None:
        head = await self._timed("head_seq", self.store.head_seq(self.login))
        self._head_seq = max(self._head_seq, head)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_forever(self, interval: float) -> None:
        while True:
            await self._clock.sleep(interval)
            try:
                await self.sweep()
            except MT5Error as error:
                log.warning("order sweep failed, it runs again in %g s: %s", interval, error)

    # ------------------------------------------------------------------ store access

    async def _timed(self, name: str, call: Awaitable[T]) -> T:
        """A store call, timed for the observer; a lost fence becomes ``MT5OwnershipError``."""
        started = self._clock.monotonic()
        try:
            result = await call
        except FencedOutError as fenced:
            raise MT5OwnershipError(str(fenced), epoch=fenced.fence.epoch) from None
        self._observer.journal_written(name, self._clock.monotonic() - started)
        return result

    async def _record(
        self, kind: EventKind, client_id: ClientOrderId, **fields: Any
    ) -> JournalEvent:
        event = self.codec.event(kind, client_id, **fields)
        stored = await self._timed("record", self.store.append(self.ownership.fence(), event))
        self._head_seq = max(self._head_seq, stored.seq)
        self._observer.order_event(kind.value, stored.retcode)
        return stored

    async def _state(self, client_id: ClientOrderId) -> OrderState:
        return fold(
            await self._timed("history", self.store.events(client_id.login, client_id.sequence))
        )

    def _ensure_fenced(self) -> None:
        """Announce this owner's epoch to the terminal before it sends or reconciles: the
        host then refuses whatever an older owner still sends."""
        epoch = self.ownership.fence().epoch
        if self._terminal_epoch != epoch:
            self.broker.fence(epoch)
            self._terminal_epoch = epoch

    # ------------------------------------------------------------------ submitting

    async def submit(self, sub: Submission) -> OrderResult:
        """Place ``sub`` exactly once; its outcome, or the error that says what happened."""
        self.login  # noqa: B018 - raises when not connected
        if sub.key is None:
            return await self._fresh(sub)
        body = canonical_json(self.codec.plain(sub.intent))
        waiting = self._inflight.get(sub.key)
        if waiting is not None:
            if waiting[0] != body:
                raise MT5IdempotencyError(
                    f"idempotency key {sub.key!r} is being used right now for a different "
                    "request; use a new key for a new order"
                )
            return await asyncio.shield(waiting[1])
        done: asyncio.Future[OrderResult] = asyncio.get_running_loop().create_future()
        self._inflight[sub.key] = (body, done)
        try:
            result = await self._keyed(sub, body)
        except BaseException as error:
            done.set_exception(error)
            done.exception()  # retrieved: a waiter re-raises it, none may be waiting
            raise
        finally:
            del self._inflight[sub.key]
        done.set_result(result)
        return result

    async def _keyed(self, sub: Submission, body: str | None) -> OrderResult:
        assert sub.key is not None
        known = await self._timed("by_key", self.store.by_key(self.login, sub.key))
        if known is None:
            return await self._fresh(sub)
        await self._wait_recovery(known)
        state = await self._state(known)
        if canonical_json(state.intent) != body:
            conflict = IdempotencyConflict(self.login, sub.key, known)
            raise MT5IdempotencyError(str(conflict), client_id=known.sequence)
        with self._holding(known):
            return await self._replay(known, sub, state)

    @contextlib.contextmanager
    def _holding(self, client_id: ClientOrderId) -> Iterator[None]:
        """Mark an order as handled by a call, so recovery and the sweep leave it alone."""
        self._busy.add(client_id.sequence)
        try:
            yield
        finally:
            self._busy.discard(client_id.sequence)

    async def _gate(self, sub: Submission) -> bool:
        """What every new send waits for or is refused by: the start-up audit, the account's
        block (new orders only: closing, cancelling and modifying stay possible, so the
        account can always be made flat), and the recovery of unresolved orders on the same
        symbol (True: it waited)."""
        if not self._audited:
            await self._audit_once()
        if sub.opens:
            await self._check_block()
        waited = False
        while sub.symbol in self._held and not self._recovered.is_set():
            await self._recovered.wait()
            waited = True
        return waited

    async def _check_block(self) -> None:
        if self._block is None:
            return  # only this owner's audit blocks the account: nothing new since
        self._block = await self._timed("account_block", self.store.account_block(self.login))
        if self._block is not None:
            raise MT5OrderBlockedError(
                f"new orders on account {self.login} are stopped: {self._block.reason}",
                hint="See them with `mt5gate journal blocks`, check them at the broker, then "
                f"run `mt5gate journal acknowledge --login {self.login} --note '...'` (with "
                "--journal or --config) to trade again.",
            )

    async def _build(self, sub: Submission) -> dict[str, Any]:
        request, sub.sent_ms = await sub.build()
        sub.symbol = str(request.get("symbol", sub.symbol))
        return request

    async def _fresh(self, sub: Submission) -> OrderResult:
        """A request never seen before: risk, then INTENT and SENT (one fsync), then send."""
        request, before = await self._prepared(sub)
        if await self._gate(sub):
            request, before = await self._prepared(sub)  # re-read after waiting for recovery
        breach = await self._risk_breach(sub)
        if breach is not None:
            client_id = await self._intent(sub)
            await self._record(K.RISK_REJECTED, client_id, note=f"{breach.limit}: {breach}")
            raise breach
        tagged: dict[str, Any] = {}

        def sent(client_id: ClientOrderId) -> Any:  # runs inside the journal transaction
            tagged.update(_tagged(request, client_id))
            result = {"server_ms": sub.sent_ms, "before": before}
            return self.codec.event(K.SENT, client_id, request=tagged, result=result)

        client_id = await self._intent_uncancelled(sub, sent)
        with self._holding(client_id):
            return await self._send(client_id, sub, request, journaled=tagged)

    async def _prepared(self, sub: Submission) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
        """The request built, and the account's state before it (:meth:`_before`). A new
        order on a netting account, whose symbol is known up front, has both read at once:
        the terminal gets the builder's quote and the positions in one batch (one thread hop
        instead of two)."""
        if not sub.opens or not sub.symbol or self._hedging:
            request = await self._build(sub)
            return request, await self._before(sub, request)
        head = self._head_seq  # before the read: whatever executes after it is written above
        reading = asyncio.ensure_future(self.broker.positions_on(sub.symbol))
        try:
            request = await self._build(sub)
        except BaseException:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            raise
        positions = await reading
        if int(request.get("action", 0)) not in BY_MAGIC or request.get("position"):
            return request, await self._before(sub, request)  # not a new order after all
        return request, before_send(positions, head)

    async def _before(
        self, sub: Submission, request: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """The account's positions on the symbol just before an order is sent: the absence
        proof compares the ledger with them (modifications are recognised by state). On a
        hedging account an order that names no position can only open a new one, which carries
        its id and shows at once: there is nothing to compare, and nothing is read."""
        if int(request.get("action", 0)) not in BY_MAGIC:
            return None
        if self._hedging and not request.get("position"):
            return NEW_POSITION_ONLY
        head = self._head_seq
        return before_send(await self.broker.positions_on(sub.symbol), head)

    async def _intent_uncancelled(self, sub: Submission, sent: Callable[[ClientOrderId], Any]
                                  ) -> ClientOrderId:  # fmt: skip
        """INTENT and SENT, finished even if the caller is cancelled meanwhile: the order was
        then not sent, and the journal says so instead of leaving a SENT nobody sent."""
        writing = asyncio.ensure_future(self._intent(sub, sent))
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            client_id = await writing
            await self._record(K.RECONCILED_ABSENT, client_id, note="cancelled before it was sent")
            raise

    async def _intent(
        self, sub: Submission, sent: Callable[[ClientOrderId], Any] | None = None
    ) -> ClientOrderId:
        fence = self.ownership.fence()
        try:
            client_id = await self._timed("record_intent", self.store.intent(
                fence, self.codec.plain(sub.intent), sub.key, sent=sent))  # fmt: skip
        except IdempotencyConflict as conflict:  # a concurrent writer used the key
            raise MT5IdempotencyError(str(conflict), client_id=conflict.client_id.sequence) \
                from None  # fmt: skip
        for kind in (K.INTENT, K.SENT) if sent is not None else (K.INTENT,):
            self._observer.order_event(kind.value, None)
        return client_id

    async def _risk_breach(self, sub: Submission) -> MT5RiskLimitError | None:
        if not sub.opens:
            return None
        book = None
        if self.risk.needs_book():
            positions, orders = await self.broker.book(sub.symbol)
            book = SymbolBook.of(sub.symbol, positions, orders)
        try:
            self.risk.check(sub.symbol, sub.volume, book)
        except MT5RiskLimitError as breach:
            return breach
        return None

    # ------------------------------------------------------------------ the send

    async def _send(
        self,
        client_id: ClientOrderId,
        sub: Submission,
        request: dict[str, Any],
        journaled: dict[str, Any] | None = None,
        before: Mapping[str, Any] | None = None,
    ) -> OrderResult:
        """SENT (unless ``journaled`` with the INTENT already), then one order_send; the
        outcome classified, journaled, and resolved."""
        if sub.opens:
            self.risk.admit()
        tagged = journaled or _tagged(request, client_id)
        if journaled is None:
            result = {"server_ms": sub.sent_ms, "before": before}
            await self._record(K.SENT, client_id, request=tagged, result=result)
        try:
            self._ensure_fenced()  # also: the lease must still hold, right before the send
        except MT5OwnershipError as lost:
            with contextlib.suppress(MT5OwnershipError):
                await self._record(K.RECONCILED_ABSENT, client_id, note=f"not sent: {lost}")
            raise
        try:
            record = await self._send_once(client_id, tagged)
        except MT5OrderOutcomeUnknown as unknown:
            await self._record(K.UNKNOWN, client_id, note=str(unknown), retcode=unknown.retcode)
            return await self._resolve(client_id, sub, tagged, unknown)
        except asyncio.CancelledError:
            await asyncio.shield(self._record(K.UNKNOWN, client_id, note="cancelled mid-send"))
            raise
        except MT5Error as failure:
            await self._record(K.REJECTED, client_id, note=f"not sent: {failure}")
            raise outcomes.with_id(failure, client_id) from None
        return await self._classified(client_id, sub, tagged, record)

    async def _send_once(self, client_id: ClientOrderId, tagged: dict[str, Any]) -> Any:
        """The one order_send. While it may still run (until it returns, or, after our
        deadline expired or the caller was cancelled, until a late reply says it ended), the
        order is in ``_sending``: no later order can prove its absence (activity's watermark)."""
        sequence, running = client_id.sequence, False
        self._sending.add(sequence)
        try:
            return await self.broker.send(
                tagged, on_late=functools.partial(self._heard_late, client_id)
            )
        except MT5OrderOutcomeUnknown as unknown:
            running = isinstance(unknown.__cause__, MT5TimeoutError)
            raise
        except asyncio.CancelledError:
            running = True
            raise
        finally:
            if not running:
                self._sending.discard(sequence)

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
                           note=outcomes.rejection_note(error))  # fmt: skip
        raise outcomes.with_id(error, client_id)

    def _heard_late(self, client_id: ClientOrderId, record: Any, error: MT5Error | None) -> None:
        """Loop side: the lost order_send answered after all. It is recorded and it wins."""
        self._sending.discard(client_id.sequence)
        self._late[client_id.sequence] = _Late(record, error)
        if record is None:  # it failed after all: that says nothing about the order
            return
        self._spawn(self._record_late(client_id, record))

    async def _record_late(self, client_id: ClientOrderId, record: Any) -> None:
        try:
            await self._record(K.LATE_RESULT, client_id, result=record, retcode=record.retcode,
                               note="late reply")  # fmt: skip
        except (MT5Error, OSError) as error:  # the store refused it: say so, never crash
            log.error("order %s: its late reply could not be journaled: %s",
                      client_id.comment_tag, error)  # fmt: skip

    # ------------------------------------------------------------------ unknown outcomes

    async def _resolve(
        self,
        client_id: ClientOrderId,
        sub: Submission,
        request: dict[str, Any],
        unknown: MT5OrderOutcomeUnknown,
    ) -> OrderResult:
        """Reconcile an unknown outcome within the budget; resubmit once if allowed and absent."""
        watch = self._watch(client_id, await self._state(client_id), sub.symbol)
        verdict = (await self._settle([watch], self.reconciler.policy.budget_s))[client_id.sequence]
        if verdict is Verdict.PRESENT:
            return await self._present(client_id, watch)
        if verdict is Verdict.CONFLICT:
            raise await self._conflict(watch)
        if verdict is Verdict.UNKNOWN:
            raise outcomes.unknown_outcome(client_id, request, unknown)
        late = self._late.pop(client_id.sequence, None)
        if late is not None and late.record is not None:  # the late reply said "rejected"
            return await self._classified(client_id, sub, request, late.record)
        await self._record(K.RECONCILED_ABSENT, client_id, note="proven absent")
        if sub.resubmit and not sub.resubmitted:
            return await self._resubmit(client_id, sub)
        raise outcomes.proven_absent(client_id, request)

    def _watch(self, client_id: ClientOrderId, state: OrderState, symbol: str = "") -> Watch:
        """The watch of an unknown order, kept across calls: absence is shown by scans over
        time, and a retry of its key, the sweep and recovery all add to the same evidence."""
        watch = self._watches.get(client_id.sequence)
        if watch is None:
            watch = self._watches[client_id.sequence] = _watch(client_id, state, symbol)
        return watch

    async def _settle(
        self, watches: list[Watch], budget_s: float, *, stop_when_stalled: bool = False
    ) -> dict[int, Verdict]:
        """Reconcile ``watches`` (fenced first): the verdict per client sequence. Decided
        watches are forgotten."""
        self._ensure_fenced()
        found = await self.reconciler.settle(
            self.login, watches, budget_s, self._late_verdict, self._refresh,
            stop_when_stalled=stop_when_stalled,
        )  # fmt: skip
        for sequence, verdict in found.items():
            if verdict is not Verdict.UNKNOWN:
                self._watches.pop(sequence, None)
        return found

    async def _refresh(self, watches: list[Watch]) -> None:
        """Before each scan: the orders sent on each watch's symbol since its state was read,
        from the journal (:mod:`~mt5gate.orders.activity`), and whether the history's lag
        has passed since its send and its open siblings' ended. State checks need none."""
        reader = SiblingReader(self.store, self.login)
        now, lag = self._clock.monotonic(), self.reconciler.policy.history_lag_s
        still = await reader.open_orders()
        for gone in self._open_since.keys() - still:
            del self._open_since[gone]
        for watch in watches:
            if watch.check is not None:
                continue
            sending = watch.client_id.sequence in self._sending
            scan = await self._timed("siblings", reader.scan(
                watch.client_id, watch.symbol, sending=sending, after=watch.after_seq))  # fmt: skip
            watch.siblings = scan.siblings
            if not watch.ended_seq and scan.ended_seq:
                watch.ended_seq, watch.ended_at = scan.ended_seq, now
            if watch.ended_at is not None:  # for the orders it is a sibling of
                self._open_since.setdefault(watch.client_id.sequence, watch.ended_at)
            quiet = [self._quiet(s.sequence, now, lag) for s in scan.siblings if s.open]
            ended = watch.ended_at is not None and now - watch.ended_at >= lag
            watch.lagged = ended and all(quiet)

    def _quiet(self, sequence: int, now: float, lag: float) -> bool:
        """An open sibling whose send is over, first seen so at least ``lag`` ago (the first
        sighting is recorded here)."""
        if sequence in self._sending:
            return False
        return now - self._open_since.setdefault(sequence, now) >= lag

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
        retcode = (
            int(TradeRetcode.DONE) if watch.check else outcomes.evidence_retcode(watch.evidence)
        )
        result = replace(outcomes.evidence_result(watch.evidence, client_id), retcode=retcode)
        stored = {
            **summary,
            **outcomes.result_fields(result),
        }  # a replay of the key returns the same
        await self._record(K.RECONCILED_PRESENT, client_id, result=stored, retcode=retcode)
        return result

    async def _conflict(self, watch: Watch) -> MT5OrderBlockedError:
        """Evidence carrying the id is not this request: journal it, stop the account, and
        never call it a match (a restored journal may be reusing an id)."""
        client_id = watch.client_id
        found = watch.evidence.summary()
        log.error("order %s: the broker's order carrying its id is not the journaled request: %s",
                  client_id.comment_tag, found)  # fmt: skip
        note = "the broker's order carrying this id is another request"
        await self._record(K.CONFLICT, client_id, result=found, note=note)
        reason = (f"order {client_id.comment_tag} at the broker does not match the journal's "
                  "request (the journal may be behind the broker)")  # fmt: skip
        await self._block_account(reason, [client_id.sequence])
        return MT5OrderBlockedError(
            f"order {client_id.comment_tag}: the broker holds an order with its id that is not "
            "this request; its outcome cannot be told, and the key is blocked",
            hint="Inspect it with `mt5gate journal show` and settle it at the broker by hand.",
        )

    async def _resubmit(self, client_id: ClientOrderId, sub: Submission) -> OrderResult:
        """The one resend a proven absence allows: re-priced, the same client id."""
        sub.resubmitted = True
        request = await self._build(sub)
        before = await self._before(sub, request)
        await self._record(K.RESUBMITTED, client_id, request=_tagged(request, client_id))
        return await self._send(client_id, sub, request, before=before)

    # ------------------------------------------------------------------ replays

    async def _replay(
        self, client_id: ClientOrderId, sub: Submission, state: OrderState
    ) -> OrderResult:
        """A key seen before: the decision :func:`replay_step` makes of its state."""
        step = replay_step(state)
        if step is Replay.RETURN:
            assert state.outcome is not None
            return outcomes.stored_result(state.outcome, client_id)
        if step is Replay.RAISE:
            assert state.outcome is not None
            raise outcomes.stored_rejection(state.outcome, client_id)
        if step is Replay.BLOCKED:
            raise outcomes.blocked_key(client_id, sub.key, state)
        if step is Replay.RECONCILE:
            return await self._reconcile_replay(client_id, sub, state)
        return await self._rearm(client_id, sub)

    async def _reconcile_replay(
        self, client_id: ClientOrderId, sub: Submission, state: OrderState
    ) -> OrderResult:
        """The key's order is unresolved (a crash, or an unknown outcome): a short look, then
        its current status; an order that provably never executed is sent now."""
        budget = self.reconciler.policy.replay_budget_s
        verdict, watch = await self._settle_one(client_id, state, budget)
        if verdict is Verdict.PRESENT:
            return await self._present(client_id, watch)
        if verdict is Verdict.CONFLICT:
            raise await self._conflict(watch)
        if verdict is Verdict.UNKNOWN:
            raise outcomes.unknown_outcome(client_id, state.sent or {}, None)
        return await self._rearm(client_id, sub)

    async def _settle_one(
        self, client_id: ClientOrderId, state: OrderState, budget_s: float
    ) -> tuple[Verdict, Watch]:
        """Reconcile one journaled order and journal the verdict (never sent: absent at once)."""
        watch = self._watch(client_id, state)
        if state.never_sent:
            await self._record(K.RECONCILED_ABSENT, client_id, note="never sent")
            return Verdict.ABSENT, watch
        if state.phase is K.LATE_RESULT:
            return Verdict.UNKNOWN, watch  # a late failure reply: the sweep settles it
        verdict = (await self._settle([watch], budget_s))[client_id.sequence]
        if verdict is Verdict.ABSENT:
            await self._record(K.RECONCILED_ABSENT, client_id, note="proven absent")
        return verdict, watch

    async def _rearm(self, client_id: ClientOrderId, sub: Submission) -> OrderResult:
        """Send, with the same id, an order that provably never executed: unless the broker
        holds it after all (a journal restored from a backup taken before it was sent)."""
        await self._gate(sub)
        found = await self._at_broker(client_id)
        if found is not None:
            return await self._settle_stale(client_id, found)
        request = await self._build(sub)
        breach = await self._risk_breach(sub)
        if breach is not None:
            await self._record(K.RISK_REJECTED, client_id, note=f"{breach.limit}: {breach}")
            raise breach
        before = await self._before(sub, request)
        await self._record(K.RESUBMITTED, client_id, request=_tagged(request, client_id),
                           note="sent again: the earlier attempt never executed")  # fmt: skip
        return await self._send(client_id, sub, request, before=before)

    async def _at_broker(self, client_id: ClientOrderId) -> Evidence | None:
        """What the broker holds of ``client_id`` now (``None``: nothing), read before the id
        goes out again. The journal said it never executed; a journal restored from a backup
        says so of orders sent after the backup, so the broker is asked."""
        self._ensure_fenced()
        snap = await self.reconciler.snapshot(self.login)
        if not snap.healthy:
            raise MT5StateError(
                f"order {client_id.comment_tag} cannot be sent again before the terminal shows "
                "it is not there; the terminal could not be read",
                hint="Retry shortly with the same idempotency key.",
            )
        found = snap.evidence.get(client_id.sequence)
        return found if found is not None and found.present else None

    async def _settle_stale(self, client_id: ClientOrderId, found: Evidence) -> OrderResult:
        """The broker holds an order the journal says never executed: it did (the journal was
        behind), so it is the outcome; an order that is not this request is a conflict, and
        so is one carrying the id of an order refused for good."""
        state = await self._state(client_id)
        watch = _watch(client_id, state)
        watch.evidence = found
        log.warning("order %s: the journal says it never executed (%s), but the broker holds it; "
                    "the journal was behind the broker", client_id.comment_tag,
                    state.phase)  # fmt: skip
        if state.rejected or not evidence_matches(found, state.sent):
            raise await self._conflict(watch)
        if not found.describes:  # it executed; its volume and price show with its deal
            raise outcomes.unknown_outcome(client_id, state.sent or {}, None)
        return await self._present(client_id, watch)

    # ------------------------------------------------------------------ recovery, audit, sweep

    async def _wait_recovery(self, client_id: ClientOrderId) -> None:
        """A replay of an order recovery is settling waits for it to finish."""
        while client_id.sequence in self._busy and not self._recovered.is_set():
            await self._recovered.wait()

    async def recover(self, *, hold: bool = True) -> dict[int, Verdict]:
        """Reconcile every unresolved order of the account: orders that never left are absent
        at once; the rest are looked for together. With ``hold`` (start-up, ownership taken
        back: the orders a predecessor left), new orders on their symbols wait for it and the
        pipeline is not ready meanwhile; orders on other symbols go ahead. The sweep's passes
        hold nothing."""
        login = self.login
        if hold:
            self._recovered.clear()
        claimed: list[int] = []
        try:
            states = {}
            for client_id in await self._timed("unresolved", self.store.open_orders(login)):
                if client_id.sequence in self._busy:
                    continue  # a call in flight settles it itself
                states[client_id] = await self._state(client_id)
                self._busy.add(client_id.sequence)
                claimed.append(client_id.sequence)
                if hold:
                    self._held.add(_symbol_of(states[client_id]))
            return await self._settle_all(states)
        finally:
            self._busy.difference_update(claimed)
            if hold:
                self._held.clear()
                self._recovered.set()

    async def _settle_all(self, states: Mapping[ClientOrderId, OrderState]) -> dict[int, Verdict]:
        verdicts: dict[int, Verdict] = {}
        watches: list[Watch] = []
        for client_id, state in states.items():
            if state.never_sent:
                await self._record(K.RECONCILED_ABSENT, client_id, note="never sent")
                verdicts[client_id.sequence] = Verdict.ABSENT
            else:
                watches.append(self._watch(client_id, state))
        if watches:
            budget = self.reconciler.policy.budget_s
            found = await self._settle(watches, budget, stop_when_stalled=True)
            for watch in watches:
                await self._conclude(watch, found[watch.client_id.sequence])
            verdicts.update(found)
        if verdicts:
            counts = {v.value: list(verdicts.values()).count(v) for v in set(verdicts.values())}
            log.info("recovery: %d unresolved orders reconciled: %s", len(verdicts), counts)
        return verdicts

    async def _conclude(self, watch: Watch, verdict: Verdict) -> None:
        if verdict is Verdict.PRESENT:
            await self._present(watch.client_id, watch)
        elif verdict is Verdict.ABSENT:
            await self._record(K.RECONCILED_ABSENT, watch.client_id, note="proven absent")
        elif verdict is Verdict.CONFLICT:
            await self._conflict(watch)

    async def _audit_once(self) -> None:
        """The start-up audit: no new order goes before the ledger was compared with the
        journal once (a journal behind the broker must stop trading before it trades)."""
        try:
            await self.sweep(recover=False)
        except MT5Error as error:
            log.warning("account %d: the ledger audit failed (%s); new orders wait for it",
                        self.login, error)  # fmt: skip
            raise MT5StateError(
                f"the ledger of account {self.login} could not be audited yet: {error}",
                hint="Retry shortly: orders go once the terminal can be read.",
            ) from None

    async def sweep(self, *, recover: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Audit the terminal against the journal; (unexpected, duplicate) client sequences.

        Each finding is journaled once (UNEXPECTED / DUPLICATE) and blocks its key; ids the
        journal never issued stop new orders on the account until an operator acknowledges
        them. Then the still-unresolved orders get one more reconciliation pass.
        """
        login = self.login
        snap = await self.reconciler.snapshot(login)
        if not snap.healthy:
            raise MT5StateError("the terminal could not be read; the sweep will run again")
        known = await self._timed("known", self.store.known_sequences(login))
        flagged = await self._timed("flagged", self.store.flagged(login, {K.UNEXPECTED}))
        found = audit(snap.evidence, known - flagged)
        namespace = self.reconciler.namespace
        for kind, sequences in ((K.UNEXPECTED, found.unexpected), (K.DUPLICATE, found.duplicates)):
            for sequence in sequences:
                client_id = ClientOrderId(login, sequence, namespace)
                await self._flag(kind, client_id, snap.evidence[sequence])
        await self._stale_outcomes(snap.evidence, known)
        fresh = [s for s in found.unexpected if s not in flagged]
        if fresh:
            tags = ", ".join(ClientOrderId(login, s, namespace).comment_tag for s in fresh[:5])
            await self._block_account(_BEHIND.format(n=len(fresh), tags=tags), fresh)
        self.last_audit_unexpected, self.last_audit_duplicates = found.unexpected, found.duplicates
        self._audited = True
        if recover and await self.unresolved():
            await self.recover(hold=False)
        return found.unexpected, found.duplicates

    async def _stale_outcomes(self, evidence: Mapping[int, Evidence], known: set[int]) -> None:
        """Orders the journal says never executed, that the broker holds: settled as found
        (or conflicting). A journal restored from a backup, or a broker that executed what it
        had refused, leaves them; nothing may be sent again for them."""
        present = [s for s, found in evidence.items() if found.present and s in known]
        kinds = await self._timed("last_kinds", self.store.last_kinds(self.login, present))
        for sequence in present:
            if kinds.get(sequence) not in _SAID_ABSENT or sequence in self._busy:
                continue
            if not evidence[sequence].describes:
                continue  # settled at a later audit, once the history shows its deal
            client_id = ClientOrderId(self.login, sequence, self.reconciler.namespace)
            with self._holding(client_id), contextlib.suppress(MT5OrderBlockedError):
                await self._settle_stale(client_id, evidence[sequence])

    async def _block_account(self, reason: str, sequences: list[int]) -> None:
        log.error("account %d: new orders stop: %s", self.login, reason)
        await self._timed("block", self.store.block(self.ownership.fence(), reason, sequences))
        self._block = await self._timed("account_block", self.store.account_block(self.login))

    async def _flag(self, kind: EventKind, client_id: ClientOrderId, evidence: Evidence) -> None:
        events = await self._timed("history", self.store.events(client_id.login,
                                                                 client_id.sequence))  # fmt: skip
        if any(e.kind is kind for e in events) or (kind is K.UNEXPECTED and events):
            return
        log.error("order sweep: %s order %s on the broker: %s", kind.value, client_id.comment_tag,
                  evidence.tickets)  # fmt: skip
        await self._record(kind, client_id, result=evidence.summary(), note="found by the sweep")

    async def unresolved(self) -> list[ClientOrderId]:
        """The account's orders whose outcome is still open (health reports them)."""
        return await self._timed("unresolved", self.store.open_orders(self.login))

    async def state(self, sequence: int) -> EventKind | None:
        """The journal state (last event kind) of this account's order ``sequence``."""
        events = await self._timed("history", self.store.events(self.login, sequence))
        return events[-1].kind if events else None

    async def status(self, key: str) -> OrderStatus | None:
        """Where the order of idempotency ``key`` stands (``None``: the key was never used)."""
        known = await self._timed("by_key", self.store.by_key(self.login, key))
        if known is None:
            return None
        return outcomes.order_status(
            known, key, await self._state(known), known.sequence in self._busy
        )


# ---------------------------------------------------------------------------- helpers


def _symbol_of(state: OrderState) -> str:
    return str((state.sent or {}).get("symbol") or (state.intent or {}).get("symbol") or "")


def _watch(client_id: ClientOrderId, state: OrderState, symbol: str = "") -> Watch:
    """A watch for a journaled order: its symbol, the broker time of its last send, the
    request and the account's state before it, and how to recognise it."""
    request = state.sent or {}
    return Watch(client_id, symbol or _symbol_of(state), state.sent_ms,
                 state_check(request) if request else None, request or None,
                 state.before)  # fmt: skip


def _tagged(request: Mapping[str, Any], client_id: ClientOrderId) -> dict[str, Any]:
    """The request with our id: in ``magic`` and the comment tag for orders (DEAL, PENDING)."""
    tagged = dict(request)
    if int(tagged.get("action", 0)) in BY_MAGIC:
        tagged["magic"] = client_id.magic
        tagged["comment"] = tag_comment(str(tagged.get("comment", "")), client_id)
    return tagged
