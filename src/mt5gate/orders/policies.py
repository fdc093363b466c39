"""Order policies as data: how unknown outcomes are reconciled, frozen and validated.

A :class:`ReconcilePolicy` is per account (``[accounts.reconcile]`` in the service's TOML);
the defaults are chosen for a real terminal, whose history can be seconds to minutes late.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ReconcilePolicy"]


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    """How an order with an unknown outcome is looked for (RELIABILITY §3, step 4).

    Scans of open orders, positions, history orders and deals run at growing intervals
    (``first_s``, times ``multiplier``, at most ``max_interval_s``). An order is *absent* only
    after at least two scans found nothing over ``settle_s`` of healthy connection, and the
    history was shown to have caught up past the send: every position the order could have
    moved changed exactly by the deals the history shows, and every order of ours sent on the
    symbol since is accounted for (``docs/orders.md``). With
    ``require_clock_advance`` the broker's clock (the symbol's tick time) must also have moved
    past the send (off by default: a symbol whose market is closed would hold its orders'
    outcome unknown until it reopens, and the history proof does not need it). ``budget_s``
    bounds how long a caller waits before the outcome is reported unknown (the sweep keeps
    reconciling it); ``replay_budget_s`` how long a call repeating the key of an unknown order
    looks before answering with the current status. History is searched ``window_s`` either
    side of now (and back to the send), because history times are broker server time.
    ``history_lag_s`` bounds how late the history may be: lost orders that can only wait for
    each other are judged once their sends ended that long ago.
    """

    first_s: float = 0.1
    multiplier: float = 2.0
    max_interval_s: float = 2.0
    settle_s: float = 5.0
    budget_s: float = 30.0
    replay_budget_s: float = 10.0
    window_s: float = 2 * 86400.0
    require_clock_advance: bool = False
    sweep_interval_s: float | None = 60.0  # None: no periodic sweep (call sweep() yourself)
    #: the longest the terminal's history may run late: two lost orders on one symbol whose
    #: outcomes are open wait for each other until an order sent after them shows its deal,
    #: or until both sends ended this long ago (UNSURE for real terminals: set it above your
    #: broker's lag; docs/orders.md)
    history_lag_s: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"ReconcilePolicy.{f.name} must be >= 0, got {value}")
        if self.multiplier < 1:
            raise ValueError(f"ReconcilePolicy.multiplier must be >= 1, got {self.multiplier}")
        if self.first_s <= 0 or self.max_interval_s <= 0 or self.window_s <= 0:
            raise ValueError("ReconcilePolicy: first_s, max_interval_s and window_s must be > 0")
        if self.sweep_interval_s is not None and self.sweep_interval_s <= 0:
            raise ValueError("ReconcilePolicy.sweep_interval_s must be > 0 or None")

    def interval_s(self, scan: int) -> float:
        """The wait before scan ``scan`` + 1 (``scan`` is 1-based)."""
        return float(min(self.max_interval_s, self.first_s * self.multiplier ** (scan - 1)))
