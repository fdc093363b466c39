"""Names on the bus: subjects, the event stream, message ids and headers (pure functions).

::

    mt5gate.<account>.ticks.<SYMBOL>     core NATS: the owner's ticks of one symbol
    mt5gate.<account>.interest           core NATS: "somebody here wants these symbols"
    mt5gate.<account>.events             JetStream (stream MT5GATE_EVENTS): journal events

A subject token may not be empty nor hold ``.``, ``*``, ``>`` or whitespace. Account names are
already ``[a-z0-9_-]{1,32}``; symbol names are not (``EURUSD.m``, ``#AAPL``, ``BTC/USD``), so
every character outside ``[A-Za-z0-9_-]`` is written ``~XX`` (its UTF-8 bytes in hex): distinct
names stay distinct (``~`` itself is escaped).

A journal event's message id, ``<account>.<client sequence>.<journal seq>``, is the same
whoever publishes it and whenever: the client sequence never repeats across journal lifetimes
and the journal seq names the row, so a republish after a failover is one message.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CLIENT_SEQ_HEADER",
    "EXPECTED_LAST_HEADER",
    "JOURNAL_SEQ_HEADER",
    "MSG_ID_HEADER",
    "encode_token",
    "events_subject",
    "events_subjects",
    "interest_subject",
    "message_id",
    "ticks_subject",
]

#: JetStream's de-duplication header.
MSG_ID_HEADER: Final = "Nats-Msg-Id"
#: JetStream refuses a publish unless the subject's last stream sequence is this one: two
#: publishers of one account (an ex-owner waking up) can never interleave or repeat events.
EXPECTED_LAST_HEADER: Final = "Nats-Expected-Last-Subject-Sequence"
#: The journal row an event came from: a new owner resumes after the last one published.
JOURNAL_SEQ_HEADER: Final = "Mt5gate-Journal-Seq"
#: The event's order (client sequence): tells whether the journal is the one the stream knows.
CLIENT_SEQ_HEADER: Final = "Mt5gate-Client-Seq"

_PREFIX: Final = "mt5gate"
_PLAIN: Final = re.compile(r"[A-Za-z0-9_-]")


def encode_token(name: str) -> str:
    """``name`` as one legal subject token (``EURUSD.m`` -> ``EURUSD~2Em``)."""
    if not name:
        raise ValueError("a subject token cannot be empty")
    return "".join(
        c if _PLAIN.fullmatch(c) else "".join(f"~{b:02X}" for b in c.encode()) for c in name
    )


def ticks_subject(account: str, symbol: str) -> str:
    """Where the owner of ``account`` publishes ``symbol``'s ticks."""
    return f"{_PREFIX}.{encode_token(account)}.ticks.{encode_token(symbol)}"


def interest_subject(account: str) -> str:
    """Where replicas say which of ``account``'s symbols their clients want."""
    return f"{_PREFIX}.{encode_token(account)}.interest"


def events_subject(account: str) -> str:
    """``account``'s journal events in the event stream."""
    return f"{_PREFIX}.{encode_token(account)}.events"


def events_subjects() -> str:
    """The event stream's subject filter (every account)."""
    return f"{_PREFIX}.*.events"


def message_id(account: str, client_sequence: int, journal_seq: int) -> str:
    """The ``Nats-Msg-Id`` of one journal event (module docstring)."""
    return f"{account}.{client_sequence}.{journal_seq}"
