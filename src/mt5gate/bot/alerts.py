"""Alerts: what is worth a message, and the gate that keeps them few.

Sources turn events into :class:`Alert` values (this module holds the wording):

* a health transition (``pass -> warn``...) with its reasons;
* the circuit breaker opening (OPEN, FORCED_OPEN, DISABLED) and closing again;
* an order whose outcome became unknown, and its resolution;
* a fill (a deal that opens or adds to a position) and a close by stop loss, take profit or
  stop out (and other closes).

:class:`AlertGate` decides, per chat, what is sent: the same alert ``key`` within
``dedupe_s`` is dropped (a flapping check says it once), and a token bucket of ``burst``
refilled at ``per_minute`` caps the pace; what the bucket refuses is counted and the next alert
that goes out says how many were held back. The clock is injected (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from mt5gate.bot.settings import AlertPolicy
from mt5gate.bot.text import bold, esc, lots, money, price
from mt5gate.circuit_breaker import BreakerState, BreakerTransition
from mt5gate.constants import DealEntry, DealReason, DealType
from mt5gate.health import HealthStatus, Status
from mt5gate.models import Deal

__all__ = [
    "Alert",
    "AlertGate",
    "breaker_alert",
    "deal_alert",
    "health_alert",
    "resolved_alert",
    "unresolved_alert",
]

_ICONS: Final = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "🛑"}
#: States that refuse calls (DISABLED lets every call through: the breaker is off, not open).
_OPEN_STATES: Final = frozenset({BreakerState.OPEN, BreakerState.FORCED_OPEN})
#: States from which CLOSED means "the terminal answers again".
_RECOVERING: Final = frozenset({*_OPEN_STATES, BreakerState.HALF_OPEN})
_CLOSES: Final = {
    DealReason.SL: "Stop loss hit",
    DealReason.TP: "Take profit hit",
    DealReason.SO: "Stop out",
}
_MAX_REASONS: Final = 5


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``key`` identifies it for de-duplication, ``text`` is the HTML sent."""

    key: str
    text: str


def health_alert(account: str, old: HealthStatus | None, new: HealthStatus) -> Alert | None:
    """A health transition (none for the first reading when it passes: nothing changed)."""
    if old is None and new.status is Status.PASS:
        return None
    was = old.status if old is not None else "unknown"
    reasons = list(new.reasons)[:_MAX_REASONS]
    lines = [f"{_ICONS[new.status]} {bold(account)} health {was} → {bold(new.status)}"]
    lines += [f"• {esc(reason)}" for reason in reasons]
    return Alert(f"health:{account}:{was}:{new.status}:{'|'.join(reasons)}", "\n".join(lines))


def breaker_alert(account: str, move: BreakerTransition) -> Alert | None:
    """The breaker opening, or closing after it was open (half-open trials are not news, nor
    is switching the breaker off or on: DISABLED refuses nothing)."""
    if move.new in _OPEN_STATES and move.old not in _OPEN_STATES:
        for_s = f" for {move.open_for_s:.0f} s" if move.open_for_s is not None else ""
        text = (f"🛑 {bold(account)}: circuit breaker {bold('opened')}{esc(for_s)}: "
                f"{esc(move.reason)}. Calls to the terminal are refused meanwhile.")  # fmt: skip
        return Alert(f"breaker:{account}:open", text)
    if move.new is BreakerState.CLOSED and move.old in _RECOVERING:
        text = f"✅ {bold(account)}: circuit breaker {bold('closed')}: the terminal answers again."
        return Alert(f"breaker:{account}:closed", text)
    return None


def deal_alert(account: str, deal: Deal, digits: int) -> Alert | None:
    """A fill or a close (balance and other non-trade deals are not alerts)."""
    if deal.type not in (DealType.BUY, DealType.SELL):
        return None
    at = f"{lots(deal.volume)} {deal.symbol} at {price(deal.price, digits)}"
    if deal.entry is DealEntry.IN:
        side = "BUY" if deal.type is DealType.BUY else "SELL"
        text = f"💱 {bold(account)}: filled {esc(side)} {esc(at)} (position {deal.position_id})"
    else:
        title = _CLOSES.get(deal.reason, "Closed")
        text = (f"💰 {bold(account)}: {bold(title)}: position {deal.position_id}, {esc(at)}, "
                f"profit {esc(money(deal.profit))}")  # fmt: skip
    return Alert(f"deal:{account}:{deal.ticket}", text)


def unresolved_alert(account: str, client_id: int) -> Alert:
    """An order whose outcome is unknown: mt5gate is reconciling it."""
    text = (f"⚠️ {bold(account)}: order #{client_id}: outcome {bold('unknown')}. mt5gate is "
            "reconciling it with the terminal; do not resend it. See /health.")  # fmt: skip
    return Alert(f"unresolved:{account}:{client_id}", text)


def resolved_alert(account: str, client_id: int, state: str) -> Alert:
    """An order that was unresolved has an outcome now."""
    text = f"✅ {bold(account)}: order #{client_id} resolved: {bold(state)}."
    return Alert(f"resolved:{account}:{client_id}", text)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    held_back: int = 0
    sent: dict[str, float] = field(default_factory=dict)  # alert key -> when last sent
    held: dict[str, float] = field(default_factory=dict)  # alert key -> when first held back


@dataclass(slots=True)
class AlertGate:
    """Per-chat de-duplication and rate limiting (see the module docstring)."""

    policy: AlertPolicy
    clock: Callable[[], float]
    _chats: dict[int, _Bucket] = field(default_factory=dict)

    def admit(self, chat_id: int, alert: Alert) -> str | None:
        """The text to send to ``chat_id`` now, or ``None`` when the alert is dropped."""
        now = self.clock()
        bucket = self._chats.get(chat_id)
        if bucket is None:
            bucket = self._chats[chat_id] = _Bucket(float(self.policy.burst), now)
        self._forget(bucket, now)
        last = bucket.sent.get(alert.key)
        if last is not None and now - last < self.policy.dedupe_s:
            return None
        self._refill(bucket, now)
        if bucket.tokens < 1:
            if alert.key not in bucket.held:  # a repeat of a held-back alert is not another
                bucket.held[alert.key] = now
                bucket.held_back += 1
            return None
        bucket.tokens -= 1
        bucket.sent[alert.key] = now
        text, held = alert.text, bucket.held_back
        bucket.held_back = 0
        bucket.held.clear()
        if held:
            text += (
                f"\n<i>({held} more alert{'s' if held > 1 else ''} held back by the rate limit)</i>"
            )
        return text

    def forget(self, chat_ids: Iterable[int]) -> None:
        """Drop the state of chats that unsubscribed."""
        for chat_id in chat_ids:
            self._chats.pop(chat_id, None)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        rate = self.policy.per_minute / 60.0
        bucket.tokens = min(float(self.policy.burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now

    def _forget(self, bucket: _Bucket, now: float) -> None:
        """Keys older than the de-duplication window cannot suppress anything any more."""
        for seen in (bucket.sent, bucket.held):
            for key in [key for key, at in seen.items() if now - at >= self.policy.dedupe_s]:
                del seen[key]
