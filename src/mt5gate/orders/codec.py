"""What becomes of a request or a result before it is journaled: plain, redacted, its tickets.

Stores keep plain JSON-ready data (:class:`~mt5gate.orders.store.NewEvent`); this module makes
it, so every store redacts the same way and finds the same tickets: MT5 records (named tuples,
nested ``request`` too) become dicts, numpy scalars numbers, enums their values, tuples lists,
and every value under a secret-looking key or equal to a known secret is masked
(:class:`~mt5gate.redaction.Redactor`).

The three steps (unwrap the records, redact, make plain) are defined by :func:`_unwrap`,
:meth:`Redactor.redact` and :func:`_plain`; :meth:`EventCodec.plain` runs them as one walk over
the shapes every order carries (dicts with string keys, named-tuple records, lists, strings,
numbers), which is a third of the cost on the event loop, and hands anything else to the three
steps themselves, so the result is the same value either way (``tests/orders/test_codec.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

from pydantic import SecretStr

from mt5gate.orders.core import EventKind
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.store import NewEvent
from mt5gate.redaction import MASK, Redactor

__all__ = ["EventCodec", "canonical_json", "tickets_of"]


def _unwrap(value: object) -> object:
    """Records (named tuples, nested ``request`` too) as dicts and numpy scalars as numbers,
    keeping key names so the redactor still sees ``password``."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: _unwrap(item) for key, item in value._asdict().items()}
    if isinstance(value, Mapping):
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap(item) for item in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _plain(value: object) -> object:
    """Redacted data as JSON-ready values: string keys, lists for tuples, numbers for numpy."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


#: Types kept as they are by all three steps (exact types: subclasses such as ``IntEnum`` or
#: ``numpy.float64`` take the general path).
_KEPT: Final = frozenset({int, float, bool, type(None)})
#: How many distinct keys are remembered (field names: a few dozen in practice).
_MEMO_KEYS: Final = 1024


#: ``json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=True)``, without
#: building an encoder for every call (it keeps no state between calls: safe from any thread).
_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=True)


def canonical_json(plain: object) -> str | None:
    """The one JSON text of plain data (sorted keys, no spaces); ``None`` stays ``None``."""
    if plain is None:
        return None
    return _CANONICAL.encode(plain)


def tickets_of(result: object) -> tuple[int | None, int | None]:
    """The (order, deal) tickets a stored result carries: an OrderSendResult, a TradeOrder or
    a TradeDeal (as their dicts), or an evidence summary; ``None`` for absent or zero."""
    if not isinstance(result, Mapping):
        return None, None
    if "time_setup" in result:  # a TradeOrder: its ticket is the order's
        order, deal = result.get("ticket"), None
    elif "entry" in result:  # a TradeDeal: its ticket is the deal's, ``order`` the order's
        order, deal = result.get("order"), result.get("ticket")
    else:  # an OrderSendResult, or a summary of evidence
        order, deal = result.get("order"), result.get("deal")
    return _ticket(order), _ticket(deal)


def _ticket(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


class EventCodec:
    """Turns what the pipeline knows into :class:`NewEvent` values, redacted on the way."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._redactor = redactor if redactor is not None else Redactor()
        self._keys: dict[str, tuple[str, bool]] = {}  # key -> (as stored, secret?)

    def protect(self, *secrets: str | SecretStr) -> None:
        """Mask these values wherever they would be stored (the session's password, tokens)."""
        self._redactor = self._redactor.with_secrets(*secrets)
        self._keys = {}  # a key naming a new secret is stored masked from now on

    def plain(self, value: object) -> object:
        """``value`` redacted, as plain JSON-ready data (``None`` stays ``None``): the same as
        ``_plain(redactor.redact(_unwrap(value)))``, in one walk (module docstring)."""
        if value is None:
            return None
        return self._walk(value)

    def _walk(self, value: object) -> object:
        kind = type(value)
        if kind is str:
            return self._redactor.redact_text(value)  # type: ignore[arg-type]
        if kind in _KEPT:
            return value
        if kind is dict:
            return self._fields(value.items())  # type: ignore[attr-defined]
        if kind is list or kind is tuple:
            return [self._walk(item) for item in value]  # type: ignore[attr-defined]
        if isinstance(value, tuple) and hasattr(value, "_asdict"):  # an MT5 record
            return self._fields(value._asdict().items())
        if isinstance(value, Enum) and not isinstance(value, tuple | list | Mapping):
            if isinstance(value, str):  # a StrEnum is text to the redactor
                return _plain(self._redactor.redact_text(value))
            return _plain(value.value)  # Side.BUY, an IntEnum: their values, as they are
        return _plain(self._redactor.redact(_unwrap(value)))  # anything else: the three steps

    def _fields(self, items: Any) -> dict[str, object]:
        """A mapping's items: keys redacted (as text), values under secret keys masked."""
        keys, kept = self._keys, _KEPT
        plain: dict[str, object] = {}
        for key, item in items:
            known = keys.get(key) if type(key) is str else None
            name, secret = known if known is not None else self._key(key)
            if secret:
                plain[name] = MASK
            elif type(item) in kept:
                plain[name] = item
            else:
                plain[name] = self._walk(item)
        return plain

    def _key(self, key: object) -> tuple[str, bool]:
        """A key as stored, and whether its value is a secret (remembered for plain strings:
        field names repeat in every record)."""
        redactor = self._redactor
        text = redactor.redact_text(key) if type(key) is str else str(redactor.redact(key))
        found = (text, redactor.is_secret_key(key))
        if type(key) is str:
            if len(self._keys) >= _MEMO_KEYS:
                self._keys.clear()
            self._keys[key] = found
        return found

    def text(self, note: str) -> str:
        """A note with known secrets masked."""
        return self._redactor.redact_text(note)

    def event(
        self,
        kind: EventKind,
        client_id: ClientOrderId,
        *,
        request: object = None,
        result: object = None,
        retcode: int | None = None,
        note: str = "",
    ) -> NewEvent:
        """The event to store: request and result plain and redacted, tickets extracted."""
        plain_result = self.plain(result)
        order, deal = tickets_of(plain_result)
        return NewEvent(EventKind(kind), client_id, self.plain(request), plain_result, retcode,
                        self.text(note), order, deal)  # fmt: skip
