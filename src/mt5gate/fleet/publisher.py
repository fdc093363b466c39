"""``EventPublisher``: the owner of an account copies its journal into the event stream.

While this process owns the account, the publisher keeps a :class:`Position` (the journal seq
and the stream sequence of the last event on the account's subject) and publishes every journal
event after it, oldest first, awaiting each ack before the next:

* on start it reads the subject's last message: its ``Mt5gate-Journal-Seq`` header says where
  the previous owner (or this process, before a restart of the server) stopped, so a new owner
  resumes exactly there after a failover;
* every publish names the subject's last stream sequence it expects
  (``Nats-Expected-Last-Subject-Sequence``): if anybody else published in between (an
  ex-owner that woke up), the stream refuses it and the publisher reads the last message again
  instead of repeating or reordering events. ``Nats-Msg-Id`` (:func:`message_id`) de-duplicates
  a publish whose ack was lost and is sent again;
* it checks ownership before every publish and stops as soon as the account is not owned.

If the journal does not hold the event the stream's last message came from (a journal replaced
by a new file), it starts from the journal's beginning: its events have new client sequences,
hence new message ids; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mt5gate.fleet.bus import Bus, BusConflictError, BusUnavailableError
from mt5gate.fleet.subjects import (
    CLIENT_SEQ_HEADER,
    JOURNAL_SEQ_HEADER,
    MSG_ID_HEADER,
    events_subject,
    message_id,
)
from mt5gate.metrics import Metrics
from mt5gate.orders.store import JournalError, JournalEvent, OrderStore

__all__ = ["EventPublisher", "Position", "event_body"]

log = logging.getLogger("mt5gate.fleet")

_RETRY_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class Position:
    """Where publishing stands: the last journal seq published, and its stream sequence."""

    journal_seq: int
    stream_seq: int


def event_body(account: str, event: JournalEvent) -> dict[str, Any]:
    """What a trade message carries for one journal event (request and result are stored
    redacted; no secret reaches the bus)."""
    return {
        "account": account, "journal_seq": event.seq, "kind": event.kind.value,
        "utc_ms": event.utc_ms, "client_id": event.client_id.sequence,
        "idempotency_key": event.idempotency_key, "retcode": event.retcode,
        "order_ticket": event.order_ticket, "deal_ticket": event.deal_ticket,
        "note": event.note, "request": event.request, "result": event.result,
    }  # fmt: skip


class EventPublisher:
    """Publishes one account's journal events while ``owned()`` says this process owns it."""

    def __init__(
        self, bus: Bus, store: OrderStore, account: str, login: int,
        owned: Callable[[], bool], *, metrics: Metrics | None = None,
        poll_s: float = 0.05, batch: int = 200,
    ) -> None:  # fmt: skip
        self.bus, self.store, self.account, self.login = bus, store, account, login
        self.subject = events_subject(account)
        self.position: Position | None = None
        self.published = 0
        self._owned, self._metrics = owned, metrics
        self._poll_s, self._batch = poll_s, batch

    def __repr__(self) -> str:
        return f"<EventPublisher {self.account!r} at {self.position}>"

    async def run(self) -> None:
        """Publish until the account is no longer owned (or the task is cancelled)."""
        while self._owned():
            try:
                if self.position is None:
                    self.position = await self.resume()
                if not await self.publish_new():
                    await asyncio.sleep(self._poll_s)
            except BusConflictError as conflict:
                log.info("account %s: another publisher wrote its events (%s); reading the "
                         "stream again", self.account, conflict)  # fmt: skip
                self.position = None
            except (BusUnavailableError, JournalError) as error:
                log.debug("account %s: events wait: %s", self.account, error)
                self.position = None
                await asyncio.sleep(_RETRY_S)

    async def resume(self) -> Position:
        """Where to go on from: after the stream's last event of this account."""
        last = await self.bus.last_event(self.subject)
        if last is None:
            return Position(0, 0)
        journal_seq = _header_int(last.headers, JOURNAL_SEQ_HEADER)
        client_seq = _header_int(last.headers, CLIENT_SEQ_HEADER)
        if not await self._journal_holds(client_seq, journal_seq):
            log.warning("account %s: the journal does not hold the stream's last event "
                        "(journal seq %d): publishing this journal from its beginning",
                        self.account, journal_seq)  # fmt: skip
            return Position(0, last.stream_seq)
        return Position(journal_seq, last.stream_seq)

    async def _journal_holds(self, client_seq: int, journal_seq: int) -> bool:
        if client_seq <= 0 or journal_seq <= 0:
            return False
        return any(e.seq == journal_seq for e in await self.store.events(self.login, client_seq))

    async def publish_new(self) -> bool:
        """Publish the journal's next batch after the position; ``False`` when none."""
        assert self.position is not None
        events = await self.store.events_after(self.login, self.position.journal_seq,
                                               self._batch)  # fmt: skip
        for event in events:
            if not self._owned():
                return True
            await self._publish(event)
        return bool(events)

    async def _publish(self, event: JournalEvent) -> None:
        assert self.position is not None
        body = json.dumps(event_body(self.account, event), default=str, separators=(",", ":"))
        headers = {
            MSG_ID_HEADER: message_id(self.account, event.client_id.sequence, event.seq),
            JOURNAL_SEQ_HEADER: str(event.seq),
            CLIENT_SEQ_HEADER: str(event.client_id.sequence),
        }
        seq, _ = await self.bus.publish_event(self.subject, body.encode(), headers,
                                              expected_last=self.position.stream_seq)  # fmt: skip
        self.position = Position(event.seq, seq)
        self.published += 1
        if self._metrics is not None:
            self._metrics.bus_sent(self.account, "events")


def _header_int(headers: Any, name: str) -> int:
    try:
        return int(headers.get(name, 0))
    except (TypeError, ValueError):
        return 0
