"""Order confirmations: every order the bot sends was first shown and then confirmed.

A :class:`Confirmation` is an explicit state machine::

    PENDING --confirm--> SENDING --> DONE | FAILED | CHANGED
       |--cancel--> CANCELLED
       '--time----> EXPIRED

A confirmation binds the exact action shown (:mod:`~mt5gate.bot.actions`): when the world has
changed so that sending it would do something else (a position grew), it ends CHANGED, nothing
sent, and the bot previews the new action. Only the member who asked may confirm or cancel; a
press after the deadline expires it, even if the expiry timer has not run yet. A second confirm
finds SENDING or DONE and sends nothing.
Behind the state machine, the order carries an idempotency key made from the confirmation's
id, so even a confirmation pressed twice across a restart places one order (the journal
remembers the key).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from mt5gate.bot.actions import Action

__all__ = [
    "ConfirmState",
    "Confirmation",
    "Confirmations",
    "Press",
    "TooManyWaitingError",
    "Verdict",
]

_KEEP: Final = 1000  # finished confirmations remembered (to answer late presses truthfully)


class TooManyWaitingError(Exception):
    """A member already has as many confirmations waiting as the limit allows."""


class ConfirmState(StrEnum):
    """Where a confirmation stands."""

    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    CHANGED = "changed"  # nothing sent: the action would no longer be the one shown
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_S = ConfirmState
#: The moves a confirmation may make; anything else is refused.
_MOVES: Final = frozenset({
    (_S.PENDING, _S.SENDING), (_S.PENDING, _S.CANCELLED), (_S.PENDING, _S.EXPIRED),
    (_S.SENDING, _S.DONE), (_S.SENDING, _S.FAILED), (_S.SENDING, _S.CHANGED),
})  # fmt: skip


class Press(StrEnum):
    """A button on a confirmation."""

    CONFIRM = "confirm"
    CANCEL = "cancel"


class Verdict(StrEnum):
    """What a press leads to."""

    SEND = "send"  # confirmed now: send the order
    CANCELLED = "cancelled"  # cancelled now
    EXPIRED = "expired"  # too late (expired now or before)
    NOT_YOURS = "not_yours"  # someone else's confirmation
    UNKNOWN = "unknown"  # no such confirmation (forgotten, or from before a restart)
    ALREADY = "already"  # already confirmed, cancelled or finished: nothing happens


@dataclass(slots=True)
class Confirmation:
    """One order waiting for (or past) its confirmation."""

    id: str
    account: str
    chat_id: int
    user_id: int
    action: Action  # exactly what was shown, and what is sent
    summary: str  # the HTML shown above the buttons
    expires_at: float  # on the monotonic clock
    state: ConfirmState = ConfirmState.PENDING
    message_id: int | None = None

    @property
    def idempotency_key(self) -> str:
        """The order's idempotency key: the same confirmation can only ever place one order."""
        return f"telegram-{self.id}"

    def move(self, to: ConfirmState) -> None:
        """Change state; ``ValueError`` for a move the machine does not have."""
        if (self.state, to) not in _MOVES:
            raise ValueError(f"confirmation {self.id}: no move from {self.state} to {to}")
        self.state = to


@dataclass(slots=True)
class Confirmations:
    """The confirmations of one bot, by id (bounded: old finished ones are forgotten)."""

    ttl_s: float
    clock: Callable[[], float]
    _items: OrderedDict[str, Confirmation] = field(default_factory=OrderedDict)

    def new(
        self, account: str, chat_id: int, user_id: int, action: Action, summary: str
    ) -> Confirmation:
        """A PENDING confirmation that expires ``ttl_s`` from now."""
        item = Confirmation(
            secrets.token_urlsafe(9), account, chat_id, user_id, action, summary,
            self.clock() + self.ttl_s,
        )  # fmt: skip
        self._items[item.id] = item
        self._forget_old()
        return item

    def make_room(self, user_id: int, most: int) -> None:
        """Raise :class:`TooManyWaitingError` when ``user_id`` has ``most`` confirmations waiting
        (those past their deadline are expired first: they wait no more)."""
        waiting = [i for i in self._items.values()
                   if i.user_id == user_id and i.state is ConfirmState.PENDING]  # fmt: skip
        live = [item for item in waiting if not self.expire(item)]
        if len(live) >= most:
            raise TooManyWaitingError(
                f"You have {len(live)} orders waiting for your confirmation: confirm or cancel "
                "them first (or let them expire)."
            )

    def get(self, confirmation_id: str) -> Confirmation | None:
        """The confirmation ``confirmation_id``, if remembered."""
        return self._items.get(confirmation_id)

    def press(self, confirmation_id: str, user_id: int, button: Press) -> Verdict:
        """Apply a press by ``user_id`` and say what follows (the state moves accordingly)."""
        item = self._items.get(confirmation_id)
        if item is None:
            return Verdict.UNKNOWN
        if item.user_id != user_id:
            return Verdict.NOT_YOURS
        if item.state is ConfirmState.EXPIRED:
            return Verdict.EXPIRED
        if item.state is not ConfirmState.PENDING:
            return Verdict.ALREADY
        if self.expire(item):
            return Verdict.EXPIRED
        if button is Press.CANCEL:
            item.move(ConfirmState.CANCELLED)
            return Verdict.CANCELLED
        item.move(ConfirmState.SENDING)
        return Verdict.SEND

    def expire(self, item: Confirmation) -> bool:
        """Expire ``item`` if it is PENDING past its deadline; whether it did."""
        if item.state is ConfirmState.PENDING and self.clock() >= item.expires_at:
            item.move(ConfirmState.EXPIRED)
            return True
        return False

    def _forget_old(self) -> None:
        """Past ``_KEEP``, forget the oldest finished confirmations (never a live one)."""
        excess = len(self._items) - _KEEP
        if excess <= 0:
            return
        live = (ConfirmState.PENDING, ConfirmState.SENDING)
        finished = [key for key, item in self._items.items() if item.state not in live]
        for key in finished[:excess]:
            del self._items[key]
