"""Reconciliation: proving whether an order with an unknown outcome reached the broker.

MT5 cannot be asked "did order X execute?": the reply that would have said so was lost. The
:class:`Reconciler` looks instead (RELIABILITY §3, step 4). A *snapshot* lists open orders,
positions, history orders and deals in a wide window around the broker's clock (history times
are server time, not UTC), and :func:`~mt5gate.orders.evidence.collect` finds our client ids in
them by ``magic``. Each :class:`Watch` is then judged:

* **present**: an order or deal carries the id (or, for a modification, which has no order of
  its own, the position or order is as the request asked);
* **absent**: nothing over at least two snapshots spanning ``settle_s`` of healthy connection,
  and the broker's clock moved past the send. Only this verdict allows a resend;
* **unknown**: neither, when the budget runs out. The caller hears so; the sweep keeps looking.

A late reply of the lost ``order_send`` wins over both (the pipeline hands it in as ``late``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mt5gate.constants import TradeAction
from mt5gate.errors import MT5Error
from mt5gate.models import Deal, Order, Position
from mt5gate.orders.evidence import Evidence, collect
from mt5gate.orders.ids import ClientOrderId
from mt5gate.session.policies import ReconcilePolicy
from mt5gate.session.state import SessionState

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["Reconciler", "Snapshot", "Verdict", "Watch", "state_check"]


class Verdict(StrEnum):
    """What reconciliation concluded about one order."""

    PRESENT = "present"
    ABSENT = "absent"
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


#: A state check for requests that create no order (SL/TP, modify, cancel): True when the
#: terminal shows the request's effect, False when it shows the opposite, None when it cannot
#: tell (the position or order is gone).
StateCheck = Callable[[Snapshot], bool | None]


@dataclass(slots=True)
class Watch:
    """One order being reconciled, and what the scans so far have seen of it."""

    client_id: ClientOrderId
    symbol: str
    sent_ms: int = 0  # broker time at or before the send; 0: the first snapshot's time
    check: StateCheck | None = None
    absent_since: float | None = None
    absent_scans: int = 0
    evidence: Evidence = field(default_factory=Evidence)

    def reset(self) -> None:
        """An unhealthy or uninformative scan: absence must be shown again from scratch."""
        self.absent_since, self.absent_scans = None, 0


class Reconciler:
    """Scans one session's terminal for client ids and judges watches (module docstring)."""

    def __init__(self, session: MT5SessionManager, policy: ReconcilePolicy, namespace: int) -> None:
        self._session = session
        self.policy = policy
        self.namespace = namespace

    # ---------------------------------------------------------------------- scanning

    async def snapshot(self, login: int, symbols: set[str]) -> Snapshot:
        """List everything an id could be in. Healthy only when every read succeeded, the
        terminal is linked to its trade server and the session is connected: otherwise the
        history may lag the server, and absence proves nothing."""
        session = self._session
        taken = session.clock.monotonic()
        try:
            link = (await session.get_terminal_info()).connected  # history is current only then
            server_ms = {s: (await session.get_price(s)).time_msc for s in sorted(symbols)}
            now_s = max(server_ms.values(), default=0) // 1000 or await self._server_now_s()
            start, end = int(now_s - self.policy.window_s), int(now_s + self.policy.window_s)
            orders = tuple(await session.orders())
            positions = tuple(await session.positions())
            history = tuple(await session.history_orders(max(start, 0), end))
            deals = tuple(await session.history_deals(max(start, 0), end))
        except MT5Error:
            return Snapshot({}, (), (), (), (), {}, healthy=False, taken_s=taken)
        evidence = collect(login, (*orders, *history), deals, namespace=self.namespace)
        healthy = link and session.state is SessionState.CONNECTED
        return Snapshot(evidence, orders, positions, history, deals, server_ms, healthy, taken)

    async def _server_now_s(self) -> int:
        """The broker's clock when no symbol is watched: the newest tick of Market Watch."""
        symbols = await self._session.list_symbols()
        chosen = next((s.name for s in symbols if s.selected), "EURUSD")
        return (await self._session.get_price(chosen)).time_msc // 1000

    # ---------------------------------------------------------------------- judging

    def judge(self, watch: Watch, snap: Snapshot) -> Verdict:
        """One scan's verdict for ``watch``; updates its absence bookkeeping."""
        if watch.check is not None:
            return self._judge_state(watch, snap)
        found = snap.evidence.get(watch.client_id.sequence)
        if found is not None and found.present:
            watch.evidence = found
            return Verdict.PRESENT
        return self._absence(watch, snap, informative=self._advanced(watch, snap))

    def _judge_state(self, watch: Watch, snap: Snapshot) -> Verdict:
        assert watch.check is not None
        if not snap.healthy:
            watch.reset()
            return Verdict.UNKNOWN
        reached = watch.check(snap)
        if reached:
            return Verdict.PRESENT
        return self._absence(watch, snap, informative=reached is not None)

    def _advanced(self, watch: Watch, snap: Snapshot) -> bool:
        """Whether the broker's clock is past the send, so the order would show by now."""
        now = snap.server_ms.get(watch.symbol)
        if now is None:
            return False
        if watch.sent_ms == 0:
            watch.sent_ms = now
            return not self.policy.require_history_advance
        return now > watch.sent_ms or not self.policy.require_history_advance

    def _absence(self, watch: Watch, snap: Snapshot, *, informative: bool) -> Verdict:
        if not snap.healthy:
            watch.reset()
            return Verdict.UNKNOWN
        if not informative:
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
    ) -> dict[int, Verdict]:
        """Scan until every watch is present or absent, or ``budget_s`` is spent; the verdict
        per client sequence (UNKNOWN for those still open). ``late`` may decide a watch from
        a late reply before each scan."""
        clock = self._session.clock
        verdicts = {w.client_id.sequence: Verdict.UNKNOWN for w in watches}
        started, scan = clock.monotonic(), 0
        open_ = list(watches)
        while open_:
            scan += 1
            snap = await self.snapshot(login, {w.symbol for w in open_ if w.symbol})
            for watch in list(open_):
                verdict = late(watch) or self.judge(watch, snap)
                if verdict is not Verdict.UNKNOWN:
                    verdicts[watch.client_id.sequence] = verdict
                    open_.remove(watch)
            wait = self.policy.interval_s(scan)
            if not open_ or clock.monotonic() - started + wait > budget_s:
                return verdicts
            await clock.sleep(wait)
        return verdicts


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
