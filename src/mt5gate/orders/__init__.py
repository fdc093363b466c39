"""Exactly-once orders: the order core, ids, stores and leases, reconciliation, the pipeline."""

from mt5gate.orders.core import TRANSITIONS, UNRESOLVED_KINDS, EventKind, OrderState, fold
from mt5gate.orders.evidence import Audit, Evidence, audit, collect
from mt5gate.orders.ids import (
    COMMENT_LIMIT,
    DEFAULT_NAMESPACE,
    ClientOrderId,
    parse_comment_tag,
    tag_comment,
)
from mt5gate.orders.journal import OrderJournal, SqliteJournal
from mt5gate.orders.ownership import LeasePolicy, Ownership
from mt5gate.orders.policies import ReconcilePolicy
from mt5gate.orders.risk import RiskGate, RiskLimits, SymbolBook
from mt5gate.orders.sqlite import SqliteStore
from mt5gate.orders.store import (
    AccountBlock,
    Fence,
    FencedOutError,
    IdempotencyConflict,
    IllegalTransitionError,
    JournalError,
    JournalEvent,
    Lease,
    LeaseHeldError,
    OrderStore,
)

__all__ = [
    "AccountBlock",
    "Fence",
    "FencedOutError",
    "IllegalTransitionError",
    "Lease",
    "LeaseHeldError",
    "LeasePolicy",
    "OrderState",
    "OrderStore",
    "Ownership",
    "ReconcilePolicy",
    "SqliteStore",
    "TRANSITIONS",
    "fold",
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
