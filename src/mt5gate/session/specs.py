"""The symbol specifications the order path builds requests from, kept for a short while.

Building an order needs a symbol's *specification*: its volume limits and step (local
validation), its filling flags (pitfall C2) and its execution mode (whether a market deal
carries a price, C5). Reading ``symbol_info`` for every order costs a terminal call; those
fields change rarely (a broker changes a contract at a maintenance window, not between two
ticks), so :class:`SymbolSpecs` reuses a reading for ``ttl_s`` seconds. The quote is never
cached: every order reads the tick.

What a stale specification can do, and why each is safe:

* it can make the gateway *send* a request the broker's new specification refuses (a volume off
  the new limits: 10014; a filling mode no longer allowed: 10030; a price under a new
  execution mode: 10015). The broker refuses it, nothing executes, the refusal is journaled
  and raised as always, and a retcode in ``refresh_on`` drops the symbol's entry, so the next
  order reads the specification afresh;
* it can never make the gateway *refuse* a request the broker would take: a request that
  fails local validation against a kept specification is checked again against a fresh one
  before the refusal is raised;
* the trading fields the server alone checks (``trade_mode`` close-only or disabled, stops and
  freeze levels, the session's hours) are not used from it at all, cached or not.

Every session state change (a reconnect, a disconnect) forgets everything: the terminal may
have been restarted or the contract changed meanwhile. ``ttl_s = 0`` reads the specification
for every order, as before this cache existed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mt5gate.constants import TradeRetcode
from mt5gate.models import Symbol

__all__ = ["SPEC_RETCODES", "SpecPolicy", "SymbolSpecs"]

#: Retcodes that may mean the symbol's specification changed under the gateway: its entry is
#: dropped when an order on it gets one of them.
SPEC_RETCODES: frozenset[int] = frozenset(
    int(code)
    for code in (
        TradeRetcode.INVALID_VOLUME,  # 10014: volume_min / volume_max / volume_step
        TradeRetcode.INVALID_PRICE,  # 10015: the execution mode (a price required or not)
        TradeRetcode.INVALID_STOPS,  # 10016: trade_stops_level
        TradeRetcode.TRADE_DISABLED,  # 10017: trade_mode
        TradeRetcode.INVALID_EXPIRATION,  # 10022: expiration_mode
        TradeRetcode.INVALID_FILL,  # 10030: filling_mode
        TradeRetcode.INVALID_ORDER,  # 10035: order_mode
        TradeRetcode.LONG_ONLY,  # 10042
        TradeRetcode.SHORT_ONLY,  # 10043
        TradeRetcode.CLOSE_ONLY,  # 10044
    )
)


@dataclass(frozen=True, slots=True)
class SpecPolicy:
    """How long an order may be built from a symbol specification read earlier (module
    docstring): ``ttl_s`` seconds (0: read it for every order); ``refresh_on``, the retcodes
    after which the symbol's specification is read again."""

    ttl_s: float = 5.0
    refresh_on: frozenset[int] = field(default=SPEC_RETCODES)

    def __post_init__(self) -> None:
        if isinstance(self.ttl_s, bool) or not isinstance(self.ttl_s, int | float):
            raise ValueError(f"SpecPolicy.ttl_s must be a number of seconds, got {self.ttl_s!r}")
        if not self.ttl_s >= 0:
            raise ValueError(f"SpecPolicy.ttl_s must be >= 0, got {self.ttl_s}")
        if not all(isinstance(code, int) for code in self.refresh_on):
            raise ValueError("SpecPolicy.refresh_on must hold retcodes (ints)")
        object.__setattr__(self, "refresh_on", frozenset(self.refresh_on))


class SymbolSpecs:
    """Symbol specifications for building orders, each kept ``policy.ttl_s`` seconds.

    ``read(name)`` reads one afresh (``session.get_symbol_info``); ``monotonic`` is the
    session's clock (injectable: tests move it by hand).
    """

    def __init__(
        self,
        read: Callable[[str], Awaitable[Symbol]],
        monotonic: Callable[[], float],
        policy: SpecPolicy | None = None,
    ) -> None:
        self.policy = policy or SpecPolicy()
        self._read = read
        self._monotonic = monotonic
        self._kept: dict[str, tuple[Symbol, float]] = {}  # name -> (spec, read at)

    def __repr__(self) -> str:
        return f"<SymbolSpecs ttl={self.policy.ttl_s:g}s kept={len(self._kept)}>"

    async def get(self, name: str) -> tuple[Symbol, bool]:
        """``name``'s specification, and whether it was kept from an earlier reading."""
        kept = self._kept.get(name)
        if kept is not None and self._monotonic() - kept[1] < self.policy.ttl_s:
            return kept[0], True
        return await self.fresh(name), False

    async def fresh(self, name: str) -> Symbol:
        """``name``'s specification read now (and kept)."""
        started = self._monotonic()
        spec = await self._read(name)
        if self.policy.ttl_s > 0:
            self._kept[name] = (spec, started)  # its age counts from before the read
        return spec

    def heard(self, name: str, retcode: int) -> None:
        """An order on ``name`` got ``retcode``: forget the symbol if it may mean its
        specification changed."""
        if retcode in self.policy.refresh_on:
            self._kept.pop(name, None)

    def forget(self) -> None:
        """Forget every specification (the session's state changed)."""
        self._kept.clear()
