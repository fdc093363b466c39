"""The event codec's one-walk ``plain`` gives exactly what its three defining steps give
(unwrap the records, redact, make plain), for every shape of value, so no journal record
changes meaning; and it masks what they mask."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections import OrderedDict
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from mt5gate.models import OrderKind, Side
from mt5gate.orders.codec import EventCodec, _plain, _unwrap, canonical_json
from mt5gate.redaction import MASK, Redactor

SECRET = "hunter2-secret"


class Tick(NamedTuple):
    symbol: str
    bid: float
    password: str


class Retcode(enum.IntEnum):
    DONE = 10009


class Mode(enum.StrEnum):
    FOK = "fok"


class Plain(enum.Enum):
    A = ("pair", SECRET)


@dataclasses.dataclass
class Box:
    name: str
    hidden: str = dataclasses.field(default="x", repr=False)


def _reference(redactor: Redactor, value: object) -> object:
    """The definition: three passes."""
    return None if value is None else _plain(redactor.redact(_unwrap(value)))


_TEXT = st.sampled_from(
    ["EURUSD", "", "password=abc", f"note {SECRET} end", "Bearer xyz", "é ünïcode", SECRET]
) | st.text(max_size=12)
_KEYS = _TEXT | st.sampled_from(["password", "api_key", "token", "volume"]) | st.integers(-3, 3)
_LEAVES = (
    _TEXT
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.sampled_from(
        [Retcode.DONE, Mode.FOK, Side.BUY, OrderKind.LIMIT, Plain.A, np.float64(1.5),
         np.int64(7), Decimal("1.25"), SecretStr("s3cret"), Box("b"), b"raw " + SECRET.encode()]
    )
)  # fmt: skip


def _values() -> st.SearchStrategy[Any]:
    return st.recursive(
        _LEAVES,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(_KEYS, inner, max_size=4)
            | st.dictionaries(_KEYS, inner, max_size=3).map(OrderedDict)
            | st.builds(Tick, _TEXT, st.floats(allow_nan=False), _TEXT)
            | st.frozensets(st.integers(0, 5), max_size=3)
        ),
        max_leaves=20,
    )


@settings(max_examples=400, deadline=None)
@given(_values())
def test_plain_is_the_three_steps_in_one_walk(value: Any) -> None:
    redactor = Redactor([SECRET])
    codec = EventCodec(redactor)
    got, want = codec.plain(value), _reference(redactor, value)
    assert canonical_json(got) == canonical_json(want)
    assert _shape(got) == _shape(want)


@settings(max_examples=200, deadline=None)
@given(_values())
def test_canonical_json_is_json_dumps_sorted_and_compact(value: Any) -> None:
    plain = EventCodec(Redactor([SECRET])).plain(value)
    expected = json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=True)
    assert canonical_json(plain) == (None if plain is None else expected)


def _shape(value: object) -> object:
    """Types and structure, with NaN made comparable."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


def test_an_order_send_result_is_stored_plain_and_masked() -> None:
    class Request(NamedTuple):
        symbol: str
        comment: str
        magic: int

    class Result(NamedTuple):
        retcode: int
        price: np.float64
        comment: str
        request: Request

    codec = EventCodec(Redactor([SECRET]))
    record = Result(10009, np.float64(1.1), "done", Request("EURUSD", f"pw {SECRET}", 42))
    assert codec.plain({"result": record, "api_key": "k", "nested": [{"token": 1}]}) == {
        "result": {
            "retcode": 10009, "price": 1.1, "comment": "done",
            "request": {"symbol": "EURUSD", "comment": f"pw {MASK}", "magic": 42},
        },
        "api_key": MASK,
        "nested": [{"token": MASK}],
    }  # fmt: skip
