"""Redaction: the one function that keeps secrets out of logs, errors, health output and journal.

A :class:`Redactor` knows two things and nothing global:

* secret-looking **keys** (``password``, ``token``, ``api_key``...): values stored under them in
  mappings, dataclasses and pydantic models, or written as ``password=...`` /
  ``"password": "..."`` inside text, are masked;
* known secret **values** (the password the session was given): masked wherever they occur in
  a string, longest first, together with their JSON, ``repr`` and URL-escaped spellings.

There is deliberately no process-wide registry of secrets: whoever holds a secret builds the
redactor that hides it (``Redactor([settings.password])``) and hands it to its logger filter,
its error messages and its journal. pydantic's ``SecretStr`` is always masked, so config
objects should hold secrets as ``SecretStr``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from re import Pattern
from typing import Any, Final
from urllib.parse import quote

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "DEFAULT_SECRET_KEYS",
    "Redactor",
    "RedactingFilter",
    "redact_text",
]

#: What a secret is replaced with (the same text pydantic's ``SecretStr`` shows).
MASK: Final = "**********"

#: Known secrets shorter than this are ignored: masking every "1" or "ab" would ruin the text
#: and a secret that short protects nothing anyway.
MIN_SECRET_LENGTH: Final = 4

#: Keys whose values are secrets (searched, case-insensitive, anywhere in the key name).
DEFAULT_SECRET_KEYS: Final[Pattern[str]] = re.compile(
    r"password|passwd|pwd|secret|token|api[_-]?key|authorization|auth|credential"
    r"|private[_-]?key|cookie|session",
    re.IGNORECASE,
)

# Values of these types cannot hold a secret and keep their type (ints stay ints for "%d").
_PLAIN_TYPES: Final = (
    type(None),
    bool,
    int,
    float,
    complex,
    Decimal,
    Enum,
    dt.date,
    dt.time,
    dt.timedelta,
    uuid.UUID,
    PurePath,
)

# A bare value runs to the next space or quote, less closing punctuation at its end. It may take
# a following "&user=bob" with it: masking too much is the safe side of the line.
_BARE_VALUE: Final = r"[^\s'\"]*[^\s'\",;)}\]]"

# ``password=hunter2``, ``"password": "hunter2"``, ``'api_key': 'x'``,
# ``Authorization: Bearer abc``: the key (with its quotes and separator) is kept, the value masked.
_VALUE_IN_TEXT: Final = (
    rf"(?:Bearer|Basic|Token)\s+{_BARE_VALUE}"  # an HTTP credential: scheme and token
    r'|"(?:[^"\\]|\\.)*"'  # a double-quoted value, escapes included
    r"|'(?:[^'\\]|\\.)*'"  # a single-quoted value
    rf"|{_BARE_VALUE}"
)

_CYCLE: Final = "<cycle>"


def _key_value_pattern(keys: Pattern[str]) -> Pattern[str]:
    """The regex finding ``<secret-looking key><sep><value>`` inside free text.

    A key starts where a run of key characters starts (the look-behind): the leftmost match
    starts there anyway, since the run's first characters can be taken into the key, and
    without it every position of a long run (a compact JSON text, a base64 blob) would be
    tried again, each scanning to the run's end: quadratic, seconds for a few kilobytes."""
    key = rf"(?<![\w.-])[\w.-]*(?:{keys.pattern})[\w.-]*"
    return re.compile(
        rf"(?P<key>[\"']?{key}[\"']?\s*[:=]\s*)(?P<value>{_VALUE_IN_TEXT})",
        keys.flags | re.IGNORECASE,
    )


def _spellings(secret: str) -> set[str]:
    """A secret as it may appear in text: raw, JSON-escaped, repr-escaped and URL-quoted."""
    return {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe="")}


def _secret_value(secret: str | SecretStr) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def _known_secrets_pattern(secrets: Iterable[str | SecretStr]) -> Pattern[str] | None:
    """One alternation of every known secret spelling, longest first (so a secret that
    contains another is masked whole); ``None`` when there is nothing to look for."""
    values = {_secret_value(s) for s in secrets}
    spellings = {
        spelling
        for value in values
        if len(value) >= MIN_SECRET_LENGTH
        for spelling in _spellings(value)
    }
    if not spellings:
        return None
    ordered = sorted(spellings, key=lambda s: (-len(s), s))
    return re.compile("|".join(re.escape(s) for s in ordered))


_DEFAULT_KEY_VALUE: Final = _key_value_pattern(DEFAULT_SECRET_KEYS)
#: Strings up to this length have their redacted form remembered, up to this many of them.
_MEMO_TEXT: Final = 64
_MEMO_SIZE: Final = 4096


class Redactor:
    """Masks secrets in any value: mappings, sequences, dataclasses, pydantic models,
    ``SecretStr``, strings and exceptions, recursively.

    ``secrets`` are the known secret values (plain or ``SecretStr``); ``keys`` is the pattern of
    secret-looking key names. A redactor is immutable; :meth:`with_secrets` makes a new one.
    """

    __slots__ = ("_key_value", "_keys", "_known", "_memo", "_secret_keys", "_secrets")

    def __init__(
        self,
        secrets: Iterable[str | SecretStr] = (),
        keys: Pattern[str] = DEFAULT_SECRET_KEYS,
    ) -> None:
        self._secrets: tuple[str | SecretStr, ...] = tuple(secrets)
        self._keys = keys
        self._known = _known_secrets_pattern(self._secrets)
        self._key_value = (
            _DEFAULT_KEY_VALUE if keys is DEFAULT_SECRET_KEYS else (_key_value_pattern(keys))
        )
        # Short strings repeat (keys, symbols, comments): their redacted form is remembered.
        self._memo: dict[str, str] = {}
        self._secret_keys: dict[str, bool] = {}  # field names repeat in every record

    def __repr__(self) -> str:
        # Never the secrets themselves: only how many there are.
        return f"Redactor(secrets={len(self._secrets)}, keys={self._keys.pattern!r})"

    def with_secrets(self, *secrets: str | SecretStr) -> Redactor:
        """A redactor that also masks ``secrets`` (this one is left unchanged)."""
        return Redactor((*self._secrets, *secrets), self._keys)

    def is_secret_key(self, key: object) -> bool:
        """Whether values stored under ``key`` are secrets (``"password"``, ``"X-Api-Key"``)."""
        if not isinstance(key, str):
            return False
        found = self._secret_keys.get(key)
        if found is None:
            if len(self._secret_keys) >= _MEMO_SIZE:
                self._secret_keys.clear()
            found = self._secret_keys[key] = self._keys.search(key) is not None
        return found

    def redact_text(self, text: str) -> str:
        """``text`` with every known secret and every ``key=value`` under a secret key masked."""
        if len(text) > _MEMO_TEXT:
            return self._redact_text(text)
        done = self._memo.get(text)
        if done is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            done = self._memo[text] = self._redact_text(text)
        return done

    def _redact_text(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(MASK, text)
        return self._key_value.sub(_mask_value, text)

    def redact(self, value: object) -> object:
        """A copy of ``value`` safe to log, show or store.

        Mappings become dicts and dataclasses, named tuples and pydantic models become dicts
        (values under secret keys masked); lists, tuples and sets keep their type; strings
        are masked in place; exceptions and other objects become their redacted text; numbers,
        dates, enums and ``None`` are returned as they are.
        """
        return self._walk(value, frozenset())

    def redact_mapping(self, mapping: Mapping[Any, Any]) -> dict[Any, Any]:
        """:meth:`redact` for a mapping, typed as the dict it returns."""
        return self._walk_mapping(mapping, frozenset({id(mapping)}))

    def _walk(self, value: object, active: frozenset[int]) -> object:
        if isinstance(value, SecretStr | SecretBytes):
            return MASK
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, _PLAIN_TYPES):
            return value
        if id(value) in active:
            return _CYCLE
        return self._walk_container(value, active | {id(value)})

    def _walk_container(self, value: object, active: frozenset[int]) -> object:
        fields = _as_fields(value)
        if fields is not None:
            return self._walk_mapping(fields, active)
        if isinstance(value, list | tuple | set | frozenset):
            items = [self._walk(item, active) for item in value]
            return items if isinstance(value, list) else type(value)(items)
        if isinstance(value, bytes | bytearray):
            return self.redact_text(value.decode("utf-8", "backslashreplace"))
        if isinstance(value, BaseException):
            return self.redact_text(f"{type(value).__name__}: {value}")
        return self.redact_text(str(value))

    def _walk_mapping(self, mapping: Mapping[Any, Any], active: frozenset[int]) -> dict[Any, Any]:
        return {
            self._walk(key, active): MASK if self.is_secret_key(key) else self._walk(item, active)
            for key, item in mapping.items()
        }


def _as_fields(value: object) -> Mapping[Any, Any] | None:
    """The named fields of a mapping, dataclass, named tuple or pydantic model, else ``None``.

    A dataclass field declared ``repr=False`` is treated as secret: whoever hid it from
    ``repr`` did not want it shown either.
    """
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: getattr(value, f.name) if f.repr else SecretStr("")
            for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields: Mapping[Any, Any] = value._asdict()
        return fields
    if isinstance(value, BaseModel):
        return dict(value)
    return None


def _mask_value(match: re.Match[str]) -> str:
    """Replacement for a ``key=value`` match: the key kept, the value masked, quotes kept."""
    value = match["value"]
    quote_char = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{quote_char}{MASK}{quote_char}"


def redact_text(text: str, secrets: Iterable[str | SecretStr] = ()) -> str:
    """``text`` with ``secrets`` and ``password=...``-style values masked (see :class:`Redactor`).

    With no known secrets it still masks values written after secret-looking keys, which is
    what :class:`mt5gate.errors.MT5Error` relies on for every message it is given.
    """
    return Redactor(secrets).redact_text(text)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_RECORD_ATTRS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record before any handler sees it.

    It renders the message (``msg % args``) and redacts the result, so a secret is masked
    whether it is the message, an argument, inside a dict argument or after ``password=``;
    ``args`` is emptied. Values passed with ``extra=`` and ``stack_info`` are redacted too.
    A traceback is rendered once, redacted into ``exc_text``, and ``exc_info`` is dropped so
    no formatter can render the raw exception again. Attach it to handlers: a filter on a
    logger does not see records propagated from its children.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self.redactor = redactor if redactor is not None else Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops a record."""
        record.msg = self._message(record)
        record.args = ()
        self._redact_traceback(record)
        self._redact_extras(record)
        return True

    def _message(self, record: logging.LogRecord) -> str:
        # Arguments first, while a dict argument still has its keys ("%(password)s"), then the
        # rendered text, where "password=%s" finally shows which value is secret.
        if not isinstance(record.msg, str):
            record.msg = self.redactor.redact(record.msg)
        record.args = self._redact_args(record.args)
        try:
            rendered = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # A malformed format string: keep both parts, redacted, rather than lose the line.
            rendered = f"{record.msg} {record.args}"
        return self.redactor.redact_text(rendered)

    def _redact_args(
        self, args: tuple[object, ...] | Mapping[str, object] | None
    ) -> tuple[object, ...] | dict[Any, Any]:
        if isinstance(args, Mapping):
            return self.redactor.redact_mapping(args)
        return tuple(self.redactor.redact(arg) for arg in args or ())

    def _redact_traceback(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redactor.redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact_text(record.stack_info)

    def _redact_extras(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_ATTRS}
        for key, value in self.redactor.redact_mapping(extras).items():
            setattr(record, key, value)
