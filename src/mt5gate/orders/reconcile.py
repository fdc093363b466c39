"""Reconciliation: proving whether an order with an unknown outcome reached the broker.

MT5 cannot be asked "did order X execute?": the reply that would have said so was lost. The
:class:`Reconciler` looks instead (RELIABILITY §3, step 4). A *snapshot* lists open orders,
positions, history orders and deals around the broker's clock (history times are server time,
not UTC), and every deal of the positions the order could have touched;
:func:`~mt5gate.orders.evidence.collect` finds our client ids in them by ``magic``. Each
:class:`Watch` is then judged:

* **present**: an order, deal or position carries the id and is what the request asked for (or,
  for a modification, which has no order of its own, the position or order is as asked);
* **conflict**: something carries the id but is not this request (another symbol, side, volume
  or price): never a match, the key is blocked;
* **absent**: nothing carries the id, over at least two snapshots spanning ``settle_s`` of healthy
  connection, AND the terminal's history is shown to have caught up past the send. History
  can be late by seconds to minutes while positions are current at once, so the proof is that
  the two agree: every position on the order's symbol moved, since the state recorded just
  before the send, by exactly the deals the history shows (none of them ours). An executed
  order of ours would have moved a position by a deal the history does not show yet. A position
  that opened and closed in between is in neither list: the positions visible deals touched
  count too, and every other order of ours sent on the symbol since must be accounted for
  (:mod:`~mt5gate.orders.activity`). Only this verdict allows a resend;
* **unknown**: none of these, when the budget runs out. The caller hears so; the sweep keeps
  looking.

A late reply of the lost ``order_send`` wins over all of them (the pipeline hands it in).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from mt5gate.constants import DealType, PositionType, TradeAction
from mt5gate.errors import MT5Error
from mt5gate.models import Deal, Order, Position
from mt5gate.orders.activity import Sibling
from mt5gate.orders.core import deals_match, order_matches
from mt5gate.orders.evidence import Evidence, collect
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.policies import ReconcilePolicy
from mt5gate.orders.ports import Clock, Ledger

__all__ = [
    "NEW_POSITION_ONLY",
    "Before",
    "Reconciler",
    "Snapshot",
    "Verdict",
    "Watch",
    "before_send",
    "evidence_matches",
    "state_check",
]


class Verdict(StrEnum):
    """What reconciliation concluded about one order."""

    PRESENT = "present"
    ABSENT = "absent"
    CONFLICT = "conflict"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the terminal showed at one moment, and whether it could be trusted then."""

    evidence: Mapping[int, Evidence]
    orders: tuple[Order, ...]
    positions: tuple[Position, ...]
    history: tuple[Order, ...]
    deals: tuple[Deal, ...]
    server_ms: Mapping[str, int]  # symbol -> its latest tick time (broker clock)
    healthy: bool
    taken_s: float  # session clock (monotonic) when taken
    #: every deal of each position a watch's absence proof looks at, by position id
    position_deals: Mapping[int, tuple[Deal, ...]] = field(default_factory=dict)


#: A state check for requests that create no order (SL/TP, modify, cancel): True when the
#: terminal shows the request's effect, False when it shows the opposite, None when it cannot
#: tell (the position or order is gone).
StateCheck = Callable[[Snapshot], bool | None]


def _signed(volume: float, buy: bool) -> float:
    return volume if buy else -volume


#: The state recorded before an order that can only open a new position (a hedging account's
#: market or pending order naming no position): the position would carry the order's id, and
#: positions are current at once, so the history has nothing to show first.
NEW_POSITION_ONLY: Final[Mapping[str, Any]] = MappingProxyType({"new_position_only": True})


def before_send(positions: Sequence[Position], after_seq: int | None = None) -> dict[str, Any]:
    """What the absence proof needs of the account just before a send: every position on the
    order's symbol, with its signed volume, the time of its last change, and what else a change
    without a deal (a new SL/TP) would move; and ``after_seq``, the journal seq known before
    the positions were read (an order of ours that executed after the read has an event above
    it: :mod:`~mt5gate.orders.activity`)."""
    return {
        **({} if after_seq is None else {"after_seq": after_seq}),
        "positions": [
            {"id": p.identifier, "volume": _signed(p.volume, p.type == PositionType.BUY),
             "time_update_msc": p.time_update_msc, "price_open": p.price_open, "sl": p.sl,
             "tp": p.tp}
            for p in positions
        ]
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Before:
    """One position as it was just before the send (:func:`before_send`)."""

    volume: float = 0.0  # signed: buy > 0, sell < 0
    changed_msc: int = -1  # its last change; -1: it did not exist
    price_open: float | None = None  # None: not recorded (an older journal)
    sl: float | None = None
    tp: float | None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Before:
        """From one entry of :func:`before_send`."""

        def number(name: str) -> float | None:
            value = entry.get(name)
            return float(value) if isinstance(value, int | float) else None

        return cls(float(entry["volume"]), int(entry["time_update_msc"]), number("price_open"),
                   number("sl"), number("tp"))  # fmt: skip

    def modified_only(self, now: Position) -> bool:
        """Whether ``now`` differs from this by its SL/TP alone (a modification, which moves
        the time of last change but makes no deal)."""
        if self.price_open is None or self.sl is None or self.tp is None:
            return False
        same = _same(now.price_open, self.price_open) and _same(
            _signed(now.volume, now.type == PositionType.BUY), self.volume
        )
        return same and not (_same(now.sl, self.sl) and _same(now.tp, self.tp))


@dataclass(slots=True)
class Watch:
    """One order being reconciled, and what the scans so far have seen of it."""

    client_id: ClientOrderId
    symbol: str
    sent_ms: int = 0  # broker time at or before the send; 0: the first snapshot's time
    check: StateCheck | None = None
    #: the MT5 request as sent (evidence is matched against it)
    request: Mapping[str, Any] | None = None
    #: :func:`before_send` of the send; ``None`` for journals written before it existed
    before: Mapping[str, Any] | None = None
    absent_since: float | None = None
    absent_scans: int = 0
    evidence: Evidence = field(default_factory=Evidence)
    #: other orders of ours on the symbol sent after this one's send began, or still open
    #: (:mod:`~mt5gate.orders.activity`); refreshed before each scan
    siblings: tuple[Sibling, ...] = ()
    #: the journal seq after which an order of ours went out after this send had ended (the
    #: first one known is kept); 0: not known yet
    ended_seq: int = 0
    #: the open siblings the last judgement waited on (nothing else held it)
    waiting: frozenset[int] = frozenset()
    #: session clock when this send was first known to be over (``ended_seq`` set)
    ended_at: float | None = None
    #: this send and every open sibling's ended at least ``history_lag_s`` ago: the history
    #: shows their deals, had they any (set before each scan)
    lagged: bool = False

    def reset(self) -> None:
        """An unhealthy or uninformative scan: absence must be shown again from scratch."""
        self.absent_since, self.absent_scans = None, 0

    @property
    def after_seq(self) -> int | None:
        """The journal seq known before the state of :attr:`before` was read (``None``: not
        recorded, an older journal or an order that can only open a new position)."""
        value = (self.before or {}).get("after_seq")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def footprint(self) -> dict[int, Before]:
        """Position id -> what it was just before the send."""
        entries = (self.before or {}).get("positions") or ()
        return {int(p["id"]): Before.of(p) for p in entries}


class Reconciler:
    """Scans one account's ledger for client ids and judges watches (module docstring)."""

    def __init__(
        self, ledger: Ledger, policy: ReconcilePolicy, namespace: int, clock: Clock
    ) -> None:
        self._ledger = ledger
        self.policy = policy
        self.namespace = namespace
        self._clock = clock

    # ---------------------------------------------------------------------- scanning

    async def snapshot(self, login: int, watches: Sequence[Watch] = ()) -> Snapshot:
        """List everything an id could be in. Healthy only when every read succeeded, the
        terminal is linked to its trade server and the session is connected: otherwise the
        history may lag the server, and absence proves nothing."""
        ledger, taken = self._ledger, self._clock.monotonic()
        symbols = sorted({w.symbol for w in watches if w.symbol})
        try:
            link = await ledger.linked()
            server_ms = {s: await ledger.tick_msc(s) for s in symbols}
            now_s = max(server_ms.values(), default=0) // 1000 or await ledger.server_now_s()
            start, end = self._window(now_s, watches)
            orders = tuple(await ledger.orders())
            positions = tuple(await ledger.positions())
            history = tuple(await ledger.history_orders(start, end))
            deals = tuple(await ledger.history_deals(start, end))
            position_deals = await self._position_deals(watches, positions, deals)
        except MT5Error:
            return Snapshot({}, (), (), (), (), {}, healthy=False, taken_s=taken)
        evidence = collect(login, (*orders, *history), deals, positions, namespace=self.namespace)
        healthy = link and ledger.connected()
        return Snapshot(evidence, orders, positions, history, deals, server_ms, healthy, taken,
                        position_deals)  # fmt: skip

    def _window(self, now_s: int, watches: Sequence[Watch]) -> tuple[int, int]:
        """History to search: ``window_s`` around now, widened back to the oldest send."""
        starts = [now_s - self.policy.window_s]
        starts += [w.sent_ms // 1000 - 60 for w in watches if w.sent_ms]
        return max(int(min(starts)), 0), int(now_s + self.policy.window_s)

    async def _position_deals(
        self, watches: Sequence[Watch], positions: Sequence[Position], deals: Sequence[Deal]
    ) -> dict[int, tuple[Deal, ...]]:
        """Every deal of each position an absence proof must account for."""
        wanted: set[int] = set()
        for watch in watches:
            if watch.before is None:
                continue
            if watch.before.get("new_position_only"):
                continue
            wanted |= watch.footprint().keys()
            wanted |= {p.identifier for p in positions if p.symbol == watch.symbol}
            wanted |= _touched(watch, deals)
        return {pid: tuple(await self._ledger.position_deals(pid)) for pid in sorted(wanted)}

    # ---------------------------------------------------------------------- judging

    def judge(self, watch: Watch, snap: Snapshot) -> Verdict:
        """One scan's verdict for ``watch``; updates its absence bookkeeping."""
        watch.waiting = frozenset()
        if watch.check is not None:
            return self._judge_state(watch, snap)
        found = snap.evidence.get(watch.client_id.sequence)
        if found is not None and found.present:
            watch.evidence = found
            if not evidence_matches(found, watch.request):
                return Verdict.CONFLICT
            # there, but only a changed position shows it: wait for its deal (never absent)
            return Verdict.PRESENT if found.describes else Verdict.UNKNOWN
        informative = self._caught_up(watch, snap) and self._advanced(watch, snap)
        return self._absence(watch, snap, informative=informative)

    def _judge_state(self, watch: Watch, snap: Snapshot) -> Verdict:
        assert watch.check is not None
        if not snap.healthy:
            watch.reset()
            return Verdict.UNKNOWN
        reached = watch.check(snap)
        if reached:
            return Verdict.PRESENT
        return self._absence(watch, snap, informative=reached is not None)

    def _caught_up(self, watch: Watch, snap: Snapshot) -> bool:
        """Whether the history explains every change of the account's positions on the
        order's symbol since just before the send (module docstring): each position moved by
        exactly the deals the history shows after it, and each position that changed shows its
        latest change among them (deals that net out, a lost SELL then a BUY, leave the volume
        where it was but not the time of the last change). Positions the visible deals touched
        since the send count too (one that opened and closed in between is in neither list),
        and every order of ours sent since must be accounted for (:meth:`_accounted`). A
        journal written before this proof existed has no record of that state: only the
        broker's clock moving past the send can then be shown (the older, weaker rule)."""
        if watch.before is None:
            return self._clock_moved(watch, snap) and self._accounted(watch, snap)
        if watch.before.get("new_position_only"):
            return self._accounted(watch, snap)
        before = watch.footprint()
        now = {p.identifier: p for p in snap.positions if p.symbol == watch.symbol}
        ids = before.keys() | now.keys() | _touched(watch, snap.deals)
        explained = all(self._explained(pid, before.get(pid, Before()), now.get(pid), snap)
                        for pid in ids)  # fmt: skip
        return explained and self._accounted(watch, snap)

    @staticmethod
    def _accounted(watch: Watch, snap: Snapshot) -> bool:
        """Every sibling (:mod:`~mt5gate.orders.activity`) is accounted for: it changed
        nothing, or the history shows its deals (so the proof sees the positions it touched),
        or the terminal shows its effect now. Or a watermark: an order of ours sent after this
        send had ended shows its deal, and the history, synchronised in time order, would then
        show this order's deal too. Open siblings are taken as accounted for once this send
        and theirs ended ``history_lag_s`` ago (:attr:`Watch.lagged`): the history shows
        their deals by then, and none carries their ids."""
        if not watch.siblings:
            return True
        deals = {d.ticket for d in snap.deals}
        deals |= {d.ticket for found in snap.position_deals.values() for d in found}
        if watch.ended_seq and any(s.sent_seq > watch.ended_seq and s.deals and s.deals <= deals
                                   for s in watch.siblings):  # fmt: skip
            return True
        current = {o.ticket for o in snap.orders}
        unaccounted = [s for s in watch.siblings
                       if not (_sibling_accounted(s, snap, deals, current)
                               or (watch.lagged and s.open))]  # fmt: skip
        watch.waiting = frozenset(s.sequence for s in unaccounted if s.open)
        return not unaccounted

    @staticmethod
    def _explained(pid: int, before: Before, now: Position | None, snap: Snapshot) -> bool:
        """One position: its volume now is its volume before plus the visible deals since,
        and, if it changed since, the visible deals reach its last change (or the change was
        its SL/TP alone, which makes no deal)."""
        since = [d for d in snap.position_deals.get(pid, ()) if d.time_msc > before.changed_msc]
        held = 0.0 if now is None else _signed(now.volume, now.type == PositionType.BUY)
        if not math.isclose(held, before.volume + sum(_deal_volume(d) for d in since),
                            abs_tol=1e-8):  # fmt: skip
            return False
        if now is None or now.time_update_msc <= before.changed_msc:
            return True
        reached = any(d.time_msc >= now.time_update_msc for d in since)
        return reached or before.modified_only(now)

    def _advanced(self, watch: Watch, snap: Snapshot) -> bool:
        """With ``require_clock_advance``: the broker's clock moved past the send too."""
        return not self.policy.require_clock_advance or self._clock_moved(watch, snap)

    @staticmethod
    def _clock_moved(watch: Watch, snap: Snapshot) -> bool:
        now = snap.server_ms.get(watch.symbol)
        if now is None:
            return False
        if watch.sent_ms == 0:
            watch.sent_ms = now
            return False
        return now > watch.sent_ms

    def _absence(self, watch: Watch, snap: Snapshot, *, informative: bool) -> Verdict:
        if not snap.healthy or not informative:
            watch.reset()
            return Verdict.UNKNOWN
        if watch.absent_since is None:
            watch.absent_since = snap.taken_s
        watch.absent_scans += 1
        settled = snap.taken_s - watch.absent_since >= self.policy.settle_s
        return Verdict.ABSENT if settled and watch.absent_scans >= 2 else Verdict.UNKNOWN

    # ---------------------------------------------------------------------- settling

    async def settle(
        self,
        login: int,
        watches: list[Watch],
        budget_s: float,
        late: Callable[[Watch], Verdict | None] = lambda _: None,
        refresh: Callable[[list[Watch]], Awaitable[None]] | None = None,
        *,
        stop_when_stalled: bool = False,
    ) -> dict[int, Verdict]:
        """Scan until every watch is decided, or ``budget_s`` is spent; the verdict per client
        sequence (UNKNOWN for those still open). ``late`` may decide a watch from a late reply
        before each scan; ``refresh`` updates the watches' siblings before it. With
        ``stop_when_stalled`` (recovery: new orders on the symbols wait for it), scanning stops
        as soon as every open watch waits only on open siblings among the watches themselves:
        only a later order's deal (a watermark) can settle them, and none can go meanwhile."""
        clock = self._clock
        verdicts = {w.client_id.sequence: Verdict.UNKNOWN for w in watches}
        started, scan = clock.monotonic(), 0
        open_ = list(watches)
        while open_:
            scan += 1
            if refresh is not None:
                await refresh(open_)
            snap = await self.snapshot(login, open_)
            for watch in list(open_):
                verdict = late(watch) or self.judge(watch, snap)
                if verdict is not Verdict.UNKNOWN:
                    verdicts[watch.client_id.sequence] = verdict
                    open_.remove(watch)
            wait = self.policy.interval_s(scan)
            if not open_ or clock.monotonic() - started + wait > budget_s:
                return verdicts
            if stop_when_stalled and _stalled(open_):
                return verdicts
            await clock.sleep(wait)
        return verdicts


def _stalled(watches: Sequence[Watch]) -> bool:
    """Every watch waits on open siblings, all of them among ``watches``."""
    among = {w.client_id.sequence for w in watches}
    return all(w.waiting and w.waiting <= among for w in watches)


def _touched(watch: Watch, deals: Sequence[Deal]) -> set[int]:
    """The positions on the watch's symbol that visible deals since its send moved (a deal's
    time is at or after the quote the send used)."""
    return {
        d.position_id
        for d in deals
        if d.symbol == watch.symbol and d.position_id and d.time_msc >= watch.sent_ms
    }


def _sibling_accounted(
    sibling: Sibling, snap: Snapshot, deals: set[int], current: set[int]
) -> bool:
    """One sibling: inert, or its deals visible, or its effect current (a position it
    opened, a pending order it placed); an open outcome without any of these is not."""
    if sibling.inert:
        return True
    found = snap.evidence.get(sibling.sequence)
    if found is not None and (found.deals or found.positions or
                              any(o.ticket in current for o in found.orders)):  # fmt: skip
        return True
    if sibling.open:
        return False
    if sibling.deals:
        return sibling.deals <= deals
    return bool(sibling.orders & current)


def _deal_volume(deal: Deal) -> float:
    """A trade deal's signed effect on its position (balance and other deals: none)."""
    if deal.type == DealType.BUY:
        return deal.volume
    if deal.type == DealType.SELL:
        return -deal.volume
    return 0.0


def evidence_matches(found: Evidence, request: Mapping[str, Any] | None) -> bool:
    """Whether the evidence carrying our id is the order ``request`` describes."""
    if request is None:
        return True  # a journal without the request sent: nothing to compare
    for order in found.orders:
        if not order_matches(request, symbol=order.symbol, type_=int(order.type),
                             volume=order.volume_initial, price=order.price_open):  # fmt: skip
            return False
    if found.deals:
        volume = sum(d.volume for d in found.deals)
        first = found.deals[0]
        if any(d.symbol != first.symbol or d.type != first.type for d in found.deals):
            return False
        if not deals_match(request, symbol=first.symbol, buys=first.type == DealType.BUY,
                           volume=volume):  # fmt: skip
            return False
    return all(p.symbol == request.get("symbol") for p in found.positions)


def _same(held: float, asked: object) -> bool:
    """A level as the terminal holds it equals the one asked for (float noise aside)."""
    return isinstance(asked, int | float) and math.isclose(held, asked, abs_tol=1e-9)


def state_check(request: Mapping[str, Any]) -> StateCheck | None:
    """How to recognise the effect of a request that creates no order (SL/TP, modify,
    cancel) in a snapshot; ``None`` for orders, which are found by their id in ``magic``."""
    action = int(request.get("action", 0))
    if action == TradeAction.SLTP:
        return position_check(int(request["position"]), request["sl"], request["tp"])
    if action == TradeAction.MODIFY:
        return order_check(int(request["order"]), request)
    if action == TradeAction.REMOVE:
        return cancel_check(int(request["order"]))
    return None


def position_check(ticket: int, sl: float, tp: float) -> StateCheck:
    """SL/TP modification: the position carries the requested levels."""

    def check(snap: Snapshot) -> bool | None:
        found = next((p for p in snap.positions if p.ticket == ticket), None)
        return None if found is None else (_same(found.sl, sl) and _same(found.tp, tp))

    return check


def order_check(ticket: int, levels: Mapping[str, Any]) -> StateCheck:
    """Pending-order modification: the order carries the requested price and stops."""
    names = {"price": "price_open", "stoplimit": "price_stoplimit", "sl": "sl", "tp": "tp"}

    def check(snap: Snapshot) -> bool | None:
        found = next((o for o in snap.orders if o.ticket == ticket), None)
        if found is None:
            return None
        return all(_same(getattr(found, names[k]), v) for k, v in levels.items() if k in names)

    return check


def cancel_check(ticket: int) -> StateCheck:
    """Cancellation: the order left the open orders and its history says cancelled."""

    def check(snap: Snapshot) -> bool | None:
        if any(o.ticket == ticket for o in snap.orders):
            return False
        done = next((o for o in snap.history if o.ticket == ticket), None)
        return None if done is None else done.state.name == "CANCELED"

    return check
