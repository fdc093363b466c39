"""The wire format: every record type and array dtype round-trips by value; anything else is
refused with a ProtocolError, never executed or built."""

from __future__ import annotations

import contextlib
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5gate.records import RECORD_TYPES, OrderCheckResult, OrderSendResult, TradeRequest
from mt5gate.sim.market import RATES_DTYPE, TICKS_DTYPE
from mt5gate.terminal import wire as p

SURFACE = json.loads((Path(__file__).parents[1] / "data" / "surface.json").read_text())
Ext = msgspec.msgpack.Ext


def sample(cls: type[Any], salt: int = 0) -> Any:
    """A record of ``cls`` with a value of the right type in every field."""
    types = cls.__annotations__
    values: list[Any] = []
    for index, name in enumerate(cls.__match_args__):
        kind = types[name]
        if kind == "TradeRequest":
            values.append(sample(TradeRequest, salt))
        elif kind == "bool":
            values.append(index % 2 == 0)
        elif kind == "int":
            values.append(index * 1_000_003 + salt - 2**40)
        elif kind == "float":
            values.append(index + 0.25 + salt)
        else:
            values.append(f"{name}-{salt}-é")
    return cls(values)


def round_trip(value: Any) -> Any:
    rid, ok, (result, last_error) = p.decode_reply(p.encode_reply(7, value, (1, "Success")))
    assert (rid, ok, last_error) == (7, True, (1, "Success"))
    return result


@pytest.mark.parametrize("name", list(RECORD_TYPES))
def test_every_record_type_round_trips_by_value(name: str) -> None:
    record = sample(RECORD_TYPES[name], 3)
    back = round_trip(record)
    assert type(back) is type(record)
    assert back == record
    assert [type(v) for v in back] == [type(v) for v in record]


@pytest.mark.parametrize("cls", [OrderSendResult, OrderCheckResult])
def test_nested_trade_request_comes_back_as_a_trade_request(cls: type[Any]) -> None:
    back = round_trip(sample(cls))
    assert type(back.request) is TradeRequest
    assert back.request.symbol == "symbol-0-é"


def test_tuples_of_records_come_back_as_tuples() -> None:
    positions = tuple(sample(RECORD_TYPES["TradePosition"], i) for i in range(3))
    back = round_trip(positions)
    assert type(back) is tuple
    assert back == positions
    assert round_trip((500, 6231, "27 Sep 2026")) == (500, 6231, "27 Sep 2026")
    assert round_trip(()) == ()


def test_wire_dtypes_are_the_surface_dtypes() -> None:
    for name, dtype in (("RATES_DTYPE", p.RATES_DTYPE), ("TICKS_DTYPE", p.TICKS_DTYPE)):
        assert [list(f) for f in dtype.descr] == SURFACE["numpy_dtypes"][name]
    assert p.RATES_DTYPE == RATES_DTYPE
    assert p.TICKS_DTYPE == TICKS_DTYPE


@pytest.mark.parametrize("dtype", p.ARRAY_DTYPES, ids=str)
def test_arrays_round_trip_bit_for_bit(dtype: np.dtype[Any]) -> None:
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 255, size=dtype.itemsize * 5, dtype=np.uint8).tobytes()
    array = np.frombuffer(raw, dtype=dtype)
    if dtype.kind == "b":
        array = array.astype(bool)
    back = round_trip(array)
    assert back.dtype == dtype
    assert back.tobytes() == array.tobytes()
    assert back.flags.writeable
    assert back.flags.owndata
    assert round_trip(np.zeros(0, dtype)).shape == (0,)


def test_numpy_scalars_travel_as_python_numbers() -> None:
    assert round_trip([np.float64(1.5), np.int64(3)]) == (1.5, 3)


def test_unsendable_values_are_refused_on_encoding() -> None:
    with pytest.raises(TypeError, match="dtype"):
        p.encode_value(np.zeros(2, dtype=np.complex128))
    with pytest.raises(TypeError, match="object"):
        p.encode_value(object())


def ext(code: int, payload: Any) -> bytes:
    data = payload if isinstance(payload, bytes) else msgspec.msgpack.encode(payload)
    return msgspec.msgpack.encode([1, True, [Ext(code, data), [1, "Success"]]])


@pytest.mark.parametrize(
    "frame",
    [
        ext(p.EXT_RECORD, [99, []]),  # unknown record code
        ext(p.EXT_RECORD, [-1, []]),
        ext(p.EXT_RECORD, [3, "not a list"]),
        ext(p.EXT_RECORD, [3, [1, 2]]),  # wrong field count
        ext(p.EXT_RECORD, b"\xc1"),  # not msgpack
        ext(p.EXT_RECORD, 5),  # not a pair
        ext(p.EXT_ARRAY, b""),
        ext(p.EXT_ARRAY, b"\x63abc"),  # unknown dtype code
        ext(p.EXT_ARRAY, b"\x00" + b"x" * 59),  # not a whole row of RATES
        ext(42, b"x"),  # unknown extension
        msgspec.msgpack.encode([1, True]),
        msgspec.msgpack.encode([1, "yes", [1, [1, "x"]]]),
        msgspec.msgpack.encode([1, True, [1, [1]]]),
        msgspec.msgpack.encode([1, True, [1, ["1", "x"]]]),
        msgspec.msgpack.encode([1, False, [1, "x"]]),
        msgspec.msgpack.encode({"a": 1}),
        b"\x91" * 100_000 + b"\xc0",  # nested too deeply
        b"",
    ],
    ids=lambda frame: f"{len(frame)}-bytes-{zlib.crc32(frame)}",
)
def test_malformed_replies_raise_protocol_errors(frame: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode_reply(frame)


@pytest.mark.parametrize("depth", [2, 3, 5000])
def test_records_nested_beyond_a_trade_request_are_refused_not_crashing(depth: int) -> None:
    payload = msgspec.msgpack.encode([10, list(range(17))])
    for _ in range(depth):
        payload = msgspec.msgpack.encode([10, [Ext(p.EXT_RECORD, payload), *list(range(16))]])
    with pytest.raises(p.ProtocolError):
        p.decode_value(msgspec.msgpack.encode(Ext(p.EXT_RECORD, payload)))


def test_only_a_trade_request_nests_in_a_record() -> None:
    tick = msgspec.msgpack.encode([3, list(range(8))])
    fields = [*range(10), Ext(p.EXT_RECORD, tick)]
    with pytest.raises(p.ProtocolError, match="only a TradeRequest"):
        p.decode_value(
            msgspec.msgpack.encode(Ext(p.EXT_RECORD, msgspec.msgpack.encode([7, fields])))
        )


def test_error_replies_round_trip() -> None:
    assert p.decode_reply(p.encode_error(9, "denied", "no")) == (9, False, ("denied", "no"))


def test_requests_round_trip_with_datetimes_as_client_seconds() -> None:
    aware = datetime(2026, 1, 6, 10, tzinfo=UTC)
    naive = datetime(2026, 1, 6, 10)
    body = p.encode_request(5, "copy_ticks_range", ("EURUSD", aware, naive, -1), {"x": (1, 2)})
    request = p.decode_request(body)
    assert request == p.Request(
        5, "copy_ticks_range", ["EURUSD", int(aware.timestamp()), int(naive.timestamp()), -1],
        {"x": [1, 2]},
    )  # fmt: skip


@pytest.mark.parametrize(
    "frame",
    [
        msgspec.msgpack.encode([True, "f", [], {}]),
        msgspec.msgpack.encode([-1, "f", [], {}]),
        msgspec.msgpack.encode([1, 2, [], {}]),
        msgspec.msgpack.encode([1, "f", {}, {}]),
        msgspec.msgpack.encode([1, "f", [], {1: 2}]),
        msgspec.msgpack.encode([1, "f", [Ext(p.EXT_RECORD, b"")], {}]),
        msgspec.msgpack.encode([1, "f", []]),
        msgspec.msgpack.encode("hello"),
        b"\xc1",
        b"\x91" * 100_000 + b"\xc0",
    ],
    ids=lambda frame: f"{len(frame)}-bytes-{zlib.crc32(frame)}",
)
def test_malformed_requests_raise_protocol_errors(frame: bytes) -> None:
    with pytest.raises(p.MalformedMessageError):
        p.decode_request(frame)


def test_request_id_of_malformed_frames() -> None:
    assert p.request_id_of(msgspec.msgpack.encode([12, 3])) == 12
    assert p.request_id_of(msgspec.msgpack.encode([-5, 3])) == 0
    assert p.request_id_of(msgspec.msgpack.encode({"a": 1})) == 0
    assert p.request_id_of(b"\xc1") == 0


def test_handshake_messages() -> None:
    assert p.decode_mapping(p.hello("tok")) == {
        "protocol": "mt5gate-bridge", "version": p.PROTOCOL_VERSION, "token": "tok",
    }  # fmt: skip
    assert p.decode_mapping(p.encode_mapping({"ok": True})) == {"ok": True}
    for bad in (msgspec.msgpack.encode([1]), msgspec.msgpack.encode({1: 2}), b"\xc1"):
        with pytest.raises(p.MalformedMessageError):
            p.decode_mapping(bad)


def test_frame_limits() -> None:
    assert p.frame_length(p.HEADER.pack(10), 10) == 10
    with pytest.raises(p.FrameTooLargeError, match="4294967295 bytes"):
        p.frame_length(b"\xff\xff\xff\xff", p.MAX_REPLY_FRAME)
    assert p.encode_frame(b"ab") == b"\x00\x00\x00\x02ab"


def test_call_deadlines_follow_the_terminal_timeouts() -> None:
    assert p.call_deadline("symbol_info", ["EURUSD"], {}, 65.0) == 65.0
    assert p.call_deadline("initialize", [], {"timeout": 120_000}, 65.0) == 125.0
    assert p.call_deadline("initialize", [], {"timeout": 1000}, 65.0) == 65.0
    assert p.call_deadline("login", [1, "pw", "srv", 100_000], {}, 65.0) == 105.0
    assert p.call_deadline("login", [1], {"timeout": "soon"}, 65.0) == 65.0
    assert p.call_deadline("initialize", ["C:/x"], {}, 65.0) == 65.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_decode_to_a_value_or_a_protocol_error(data: bytes) -> None:
    for decode in (p.decode_request, p.decode_reply, p.decode_mapping, p.decode_value):
        with contextlib.suppress(p.ProtocolError):
            decode(data)


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(plain)
def test_plain_values_round_trip(value: Any) -> None:
    def tupled(v: Any) -> Any:
        if isinstance(v, list):
            return tuple(tupled(i) for i in v)
        if isinstance(v, dict):
            return {k: tupled(i) for k, i in v.items()}
        return v

    assert round_trip(value) == tupled(value)
