"""What else was sent on a symbol while an order's outcome was open: the absence proof's siblings.

The absence proof (:mod:`~mt5gate.orders.reconcile`) compares the positions on the order's
symbol now with the positions just before its send, through the deals the (possibly late)
history shows. A position that opened *and* closed in between is in neither list: a lost SELL
that opened one, and a BUY of ours that closed it, both still missing from a late history,
leave the account as flat as it was, and the SELL would be "proven absent" and sent twice.

Whatever closed such a position made a deal after the state was read. When it is an order of
ours, the journal knows it: its outcome is still open, or it was answered after the read, so
it has an event above the journal seq the pipeline knew before the read (recorded with the
state, ``after_seq``; journals without it fall back to the lost order's SENT). Each such
*sibling* must be accounted for before absence is proven: its deals visible in the history (so
the proof sees every position it touched), or it changed nothing. A sibling whose own outcome
is open cannot be accounted for, except by a *watermark*: an order of ours sent after the lost
one's send had ended, whose deal the history shows. The history is synchronised in time order,
so it then shows the lost order's deal too, had there been one. Without it two lost orders on
one symbol would each wait for the other forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mt5gate.constants import TradeAction
from mt5gate.orders.core import EventKind, OrderState, fold
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.store import JournalEvent, OrderStore

__all__ = ["Sibling", "SiblingReader", "SiblingScan"]

K = EventKind

#: Requests that make deals (and so can move or close a position).
_DEALING: Final = frozenset({int(TradeAction.DEAL), int(TradeAction.PENDING),
                             int(TradeAction.CLOSE_BY)})  # fmt: skip
#: Kinds that say the order's last attempt changed nothing at the broker.
_NOTHING: Final = frozenset({K.REJECTED, K.RISK_REJECTED, K.RECONCILED_ABSENT})
#: Events that send (the proof's "after the send" is after the last of them).
_SENDS: Final = frozenset({K.SENT})
#: The watched order's last event while its outcome is open and its send is over.
_OPEN: Final = frozenset({K.SENT, K.UNKNOWN})
_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class Sibling:
    """Another order of ours on the symbol whose send may have followed the watched one's."""

    sequence: int
    deals: frozenset[int]  # deal tickets its replies named
    orders: frozenset[int]  # order tickets its replies named (a placed pending order: no deal)
    #: nothing to account for: its last attempt changed nothing, or it makes no deal
    inert: bool
    #: its outcome is still open (it may have executed, and no reply says how)
    open: bool
    sent_seq: int  # the journal seq of its last SENT


@dataclass(frozen=True, slots=True)
class SiblingScan:
    """The siblings of one watched order, and where its own send stands in the journal."""

    siblings: tuple[Sibling, ...]
    #: the journal's newest seq, when the watched order's send is known to be over: an order
    #: of ours sent after it was surely sent after that send ended (the watch keeps the first
    #: such value it is given); 0: the send may still be running
    ended_seq: int


def _sent_seq(events: Sequence[JournalEvent]) -> int:
    return max((e.seq for e in events if e.kind in _SENDS), default=0)


def _sibling(events: Sequence[JournalEvent], state: OrderState) -> Sibling:
    action = int((state.sent or {}).get("action", 0))
    nothing = state.rejected or (state.outcome is None and state.phase in _NOTHING)
    return Sibling(
        sequence=events[0].client_id.sequence,
        deals=frozenset(e.deal_ticket for e in events if e.deal_ticket),
        orders=frozenset(e.order_ticket for e in events if e.order_ticket),
        inert=nothing or action not in _DEALING,
        open=state.outcome is None and not nothing,
        sent_seq=_sent_seq(events),
    )


class SiblingReader:
    """The journal reads of one refresh, shared by the watches it scans: recovery may settle
    many unresolved orders at once, each the others' sibling, and each order's events are
    then read once per refresh instead of once per watch."""

    def __init__(self, store: OrderStore, login: int) -> None:
        self._store, self._login = store, login
        self._events: dict[int, list[JournalEvent]] = {}
        self._open: set[int] | None = None

    async def events(self, sequence: int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        found = self._events.get(sequence)
        if found is None:
            found = self._events[sequence] = await self._store.events(self._login, sequence)
        return found

    async def open_orders(self) -> set[int]:
        """The client sequences whose outcome is open."""
        if self._open is None:
            self._open = {c.sequence for c in await self._store.open_orders(self._login)}
        return self._open

    async def later(self, after: int) -> tuple[set[int], int]:
        """Every client sequence with an event after journal seq ``after``, and the newest
        seq (``after`` when there is none)."""
        found: set[int] = set()
        while True:
            page = await self._store.events_after(self._login, after, _PAGE)
            found |= {e.client_id.sequence for e in page}
            after = page[-1].seq if page else after
            if len(page) < _PAGE:
                return found, after

    async def scan(
        self, client_id: ClientOrderId, symbol: str, *, sending: bool, after: int | None = None
    ) -> SiblingScan:
        """The siblings of ``client_id`` on ``symbol`` (module docstring). ``sending``: a send
        call of this process for it may still be running (our deadline expired and the
        terminal has not answered yet), so no later order can serve as a watermark for it. A
        SENT with no outcome that this process is not sending was left by an owner that is
        gone (fenced out): its send is over by now. ``after``: the journal seq known before
        the order's state was read for its send (siblings are looked for above it; without it,
        above its SENT)."""
        own = await self.events(client_id.sequence)
        sent = _sent_seq(own)
        candidates, head = await self.later(sent if after is None else min(after, sent))
        candidates |= await self.open_orders()
        candidates.discard(client_id.sequence)
        siblings = [s for s in [await self._sibling(q, symbol) for q in sorted(candidates)] if s]
        over = bool(own) and own[-1].kind in _OPEN and not sending
        return SiblingScan(tuple(siblings), head if over else 0)

    async def _sibling(self, sequence: int, symbol: str) -> Sibling | None:
        events = await self.events(sequence)
        if not events or _sent_seq(events) == 0:
            return None  # never sent: nothing it did can be at the broker
        state = fold(events)
        sent = state.sent or {}
        if str(sent.get("symbol") or (state.intent or {}).get("symbol") or "") != symbol:
            return None
        return _sibling(events, state)
