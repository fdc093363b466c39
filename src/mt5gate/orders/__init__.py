"""Exactly-once orders: client order ids, the durable order journal, evidence, risk limits."""

from mt5gate.orders.evidence import Audit, Evidence, audit, collect
from mt5gate.orders.ids import (
    COMMENT_LIMIT,
    DEFAULT_NAMESPACE,
    ClientOrderId,
    parse_comment_tag,
    tag_comment,
)
from mt5gate.orders.journal import (
    UNRESOLVED_KINDS,
    EventKind,
    IdempotencyConflict,
    JournalError,
    JournalEvent,
    OrderJournal,
    SqliteJournal,
)
from mt5gate.orders.risk import RiskGate, RiskLimits, SymbolBook

__all__ = [
    "Audit",
    "Evidence",
    "RiskGate",
    "RiskLimits",
    "SymbolBook",
    "audit",
    "collect",
    "COMMENT_LIMIT",
    "DEFAULT_NAMESPACE",
    "UNRESOLVED_KINDS",
    "ClientOrderId",
    "EventKind",
    "IdempotencyConflict",
    "JournalError",
    "JournalEvent",
    "OrderJournal",
    "SqliteJournal",
    "parse_comment_tag",
    "tag_comment",
]
