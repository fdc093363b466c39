"""The fleet: several ``mt5gate serve`` replicas sharing accounts, one owner each.

Placement (:mod:`~mt5gate.fleet.placement`) says which replica should own which account. This
package also holds the bus (NATS, :mod:`~mt5gate.fleet.bus`): the owner of an account
publishes its ticks (core subjects) and its journal events (a JetStream stream, de-duplicated by
message id) so that a WebSocket client on any replica receives them, and resumes after a
reconnect or a failover from the last stream sequence it saw. nats-py is imported only when a
bus starts (``pip install 'mt5gate[fleet]'``).
"""

from mt5gate.fleet.bus import Bus, BusOptions, BusState
from mt5gate.fleet.fleet import Fleet
from mt5gate.fleet.publisher import EventPublisher
from mt5gate.fleet.ticks import InterestSender, TickPublisher

__all__ = [
    "Bus",
    "BusOptions",
    "BusState",
    "EventPublisher",
    "Fleet",
    "InterestSender",
    "TickPublisher",
]
