"""Client order ids: the idempotency key MT5 lacks, carried in ``magic`` and ``comment``.

Each account gets ids from a durable sequence (the journal owns it). An id travels with its
order in two places, because brokers copy ``magic`` to orders, deals and positions but may
overwrite ``comment`` (on SL/TP closes) and history cannot be filtered by either:

``magic`` (64-bit, unsigned)::

    bit 63 ............ 48 | 47 ............................................ 0
        namespace (16 bits) |  sequence (48 bits, 1 .. 2**48 - 1)

The namespace (default ``0x6D67``, ASCII "mg") tells our orders from other EAs' and other
gateways'; sequence 0 is never allocated, so a magic equal to ``namespace << 48`` is not ours.

``comment``: the tag ``mg:<sequence in base36>`` (at most 13 characters) first, then the
caller's comment, truncated so the whole fits MT5's 31-character limit. The tag goes first so a
broker truncating the comment cuts the caller's text, not the tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "COMMENT_LIMIT",
    "DEFAULT_NAMESPACE",
    "MAX_SEQUENCE",
    "NAMESPACE_BITS",
    "SEQUENCE_BITS",
    "TAG_PREFIX",
    "ClientOrderId",
    "parse_comment_tag",
    "tag_comment",
]

#: Bits of ``magic`` holding the sequence; the namespace sits above them.
SEQUENCE_BITS: Final = 48
#: Bits of ``magic`` holding the namespace.
NAMESPACE_BITS: Final = 16
#: The largest sequence number an id can carry.
MAX_SEQUENCE: Final = (1 << SEQUENCE_BITS) - 1
#: The largest namespace.
MAX_NAMESPACE: Final = (1 << NAMESPACE_BITS) - 1
#: The default namespace: ASCII "mg" (mt5gate).
DEFAULT_NAMESPACE: Final = 0x6D67
#: MT5's limit on an order comment, in characters.
COMMENT_LIMIT: Final = 31
#: What starts every comment tag.
TAG_PREFIX: Final = "mg:"

_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_TAG: Final = re.compile(rf"(?:^|\s){re.escape(TAG_PREFIX)}([0-9a-z]{{1,10}})(?=\s|$)")


def _check_namespace(namespace: int) -> int:
    if isinstance(namespace, bool) or not isinstance(namespace, int):
        raise TypeError(f"namespace must be an int, not {type(namespace).__name__}")
    if not 0 <= namespace <= MAX_NAMESPACE:
        raise ValueError(f"namespace must be 0..{MAX_NAMESPACE:#x} (16 bits), got {namespace!r}")
    return namespace


def _to_base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _DIGITS[digit] + digits
        if number == 0:
            return digits


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """One order's identity: the account, its sequence number there, and our namespace.

    Validated on construction: ``login`` positive, ``sequence`` in ``1..MAX_SEQUENCE``,
    ``namespace`` 16 bits.
    """

    login: int
    sequence: int
    namespace: int = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        for name in ("login", "sequence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if self.login <= 0:
            raise ValueError(f"login must be positive, got {self.login}")
        if not 1 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError(f"sequence must be 1..{MAX_SEQUENCE} (48 bits), got {self.sequence}")
        _check_namespace(self.namespace)

    @property
    def magic(self) -> int:
        """The 64-bit ``magic``: namespace in bits 63..48, sequence in bits 47..0."""
        return (self.namespace << SEQUENCE_BITS) | self.sequence

    @property
    def comment_tag(self) -> str:
        """The short comment tag, ``mg:<base36 sequence>`` (at most 13 characters)."""
        return TAG_PREFIX + _to_base36(self.sequence)

    @classmethod
    def from_magic(
        cls, magic: int, namespace: int = DEFAULT_NAMESPACE, *, login: int
    ) -> ClientOrderId | None:
        """The id ``magic`` carries for ``login``, or ``None`` when it is not in ``namespace``.

        ``None`` also for sequence 0 and for values that are not 64-bit unsigned: an order
        another EA placed is never mistaken for ours.
        """
        _check_namespace(namespace)
        if isinstance(magic, bool) or not isinstance(magic, int) or not 0 <= magic < 1 << 64:
            return None
        if magic >> SEQUENCE_BITS != namespace:
            return None
        sequence = magic & MAX_SEQUENCE
        return cls(login, sequence, namespace) if sequence else None


def tag_comment(user_comment: str, client_id: ClientOrderId) -> str:
    """The comment to send: the id's tag, then as much of ``user_comment`` as fits in 31
    characters (the user's text is truncated, never the tag)."""
    tag = client_id.comment_tag
    user = " ".join(user_comment.split())
    room = COMMENT_LIMIT - len(tag) - 1
    user = user[:room].rstrip()
    return f"{tag} {user}" if user else tag


def parse_comment_tag(comment: str | None) -> int | None:
    """The sequence number in a comment's tag, or ``None`` when it carries no tag of ours."""
    if not comment:
        return None
    match = _TAG.search(comment)
    if match is None:
        return None
    sequence = int(match[1], 36)
    return sequence if 1 <= sequence <= MAX_SEQUENCE else None
