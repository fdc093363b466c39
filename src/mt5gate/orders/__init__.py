"""Exactly-once orders: client order ids and the durable order journal."""

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

__all__ = [
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
