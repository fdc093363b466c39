"""The simulated trade server: validation, execution, triggers and history of one account.

``Broker`` is the facade the terminal uses; ``TicketSource`` numbers tickets server-wide.
"""

from __future__ import annotations

from mt5gate.sim.broker.broker import Broker
from mt5gate.sim.broker.tickets import TicketSource

__all__ = ["Broker", "TicketSource"]
