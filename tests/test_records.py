"""The result records behave like the real module's C struct sequences (pitfalls D1,
surface.json ``meta.result_objects``): tuples with named read-only fields and ``_asdict()``,
and none of the ``collections.namedtuple`` extras."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from mt5gate.records import (
    RECORD_TYPES,
    OrderCheckResult,
    OrderSendResult,
    Tick,
    TradeRequest,
)

TICK_VALUES = (1578614400, 1.11, 1.12, 0.0, 0, 1578614400987, 134, 0.0)


def _tick() -> Tick:
    return Tick(TICK_VALUES)


def _request() -> TradeRequest:
    return TradeRequest(
        (
            1,
            234000,
            0,
            "USDJPY",
            0.1,
            108.023,
            0.0,
            107.923,
            108.123,
            20,
            0,
            2,
            0,
            0,
            "python script open",
            0,
            0,
        )
    )


def _send_result() -> OrderSendResult:
    return OrderSendResult(
        (10009, 2, 3, 0.1, 108.023, 108.013, 108.023, "Request executed", 2, 0, _request())
    )


def _sample(name: str, surface: dict[str, Any]) -> Any:
    """A record of type ``name`` filled with values of the documented field types."""
    types = surface["namedtuple_field_types"][name]
    fill = {"int": 7, "float": 1.5, "bool": True, "str": "x"}
    values = [_request() if t == "TradeRequest" else fill.get(t, f"<{t}>") for t in types.values()]
    return RECORD_TYPES[name](values)


def test_every_record_type_has_the_real_name(surface: dict[str, Any]) -> None:
    """surface.json meta.result_objects: type(x).__name__ is the struct name."""
    assert set(RECORD_TYPES) == set(surface["namedtuples"])
    for name, cls in RECORD_TYPES.items():
        assert type(_sample(name, surface)).__name__ == name
        assert cls.__name__ == name


def test_indexing_matches_attributes(surface: dict[str, Any]) -> None:
    """D1: indexing and attribute access read the same field, for every record type."""
    for name, fields in surface["namedtuples"].items():
        record = _sample(name, surface)
        for index, field in enumerate(fields):
            assert (
                getattr(record, field) is record[index] or getattr(record, field) == record[index]
            )


def test_tick_fields_by_name_and_index() -> None:
    """semantics 6.1: a Tick is time, bid, ask, last, volume, time_msc, flags, volume_real."""
    tick = _tick()
    assert (tick.time, tick.bid, tick.ask, tick.time_msc, tick.flags) == (
        1578614400,
        1.11,
        1.12,
        1578614400987,
        134,
    )
    assert tick[1] == 1.11
    assert tick[-1] == 0.0
    assert tick[-3] == 1578614400987


def test_slicing_gives_plain_tuple_values() -> None:
    """D1: struct sequences slice like tuples."""
    tick = _tick()
    assert tick[1:3] == (1.11, 1.12)
    assert tuple(tick[:]) == TICK_VALUES
    assert tick[::-1][0] == 0.0


def test_unpacking() -> None:
    """D1: records unpack like tuples (``time, bid, ask, *rest = tick``)."""
    time, bid, ask, *rest = _tick()
    assert (time, bid, ask) == (1578614400, 1.11, 1.12)
    assert len(rest) == 5


def test_len_and_iteration() -> None:
    """D1: a record is a fixed-length sequence."""
    assert len(_tick()) == 8
    assert list(_tick()) == list(TICK_VALUES)


def test_asdict_is_ordered_dict_of_fields(surface: dict[str, Any]) -> None:
    """D1: ``_asdict()`` returns a dict with the fields in their real order."""
    record = _tick()
    as_dict = record._asdict()
    assert type(as_dict) is dict
    assert list(as_dict) == surface["namedtuples"]["Tick"]
    assert as_dict["time_msc"] == 1578614400987


def test_asdict_keeps_nested_request_a_trade_request() -> None:
    """D1 / semantics 7.2: OrderSendResult._asdict()['request'] is still a TradeRequest."""
    nested = _send_result()._asdict()["request"]
    assert type(nested).__name__ == "TradeRequest"
    assert isinstance(nested, TradeRequest)
    assert nested._asdict()["comment"] == "python script open"


def test_order_check_result_request_stays_a_record() -> None:
    """surface.json meta.result_objects: OrderCheckResult._asdict() keeps 'request' a record."""
    check = OrderCheckResult((0, 1.0, 2.0, 0.0, 3.0, 4.0, 5.0, "Done", _request()))
    assert isinstance(check._asdict()["request"], TradeRequest)


@pytest.mark.parametrize("missing", ["_fields", "_replace", "_make", "_field_defaults"])
def test_no_namedtuple_extras(missing: str) -> None:
    """D1: struct sequences have no _fields/_replace/_make (pandas treats them differently)."""
    assert not hasattr(_tick(), missing)
    assert not hasattr(Tick, missing)


def test_fields_are_read_only() -> None:
    """D1: struct sequence fields cannot be assigned."""
    tick = _tick()
    with pytest.raises(AttributeError):
        tick.bid = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        tick[1] = 2.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        tick.extra = 1  # type: ignore[attr-defined]


def test_equal_to_the_plain_tuple() -> None:
    """D1: records compare equal to tuples of the same values, and hash like them."""
    assert _tick() == TICK_VALUES
    assert _tick() == TICK_VALUES
    assert hash(_tick()) == hash(TICK_VALUES)
    assert _tick() != (*TICK_VALUES[:-1], 1.0)


def test_repr_shape() -> None:
    """D1 / docs output: ``Tick(time=1578614400, bid=1.11, ...)``."""
    text = repr(_tick())
    assert text.startswith("Tick(time=1578614400, bid=1.11, ask=1.12, last=0.0, volume=0, ")
    assert text.endswith("flags=134, volume_real=0.0)")
    assert str(_tick()) == text


def test_nested_repr_shows_request_record() -> None:
    """Docs order_send output prints ``request=TradeRequest(action=1, ...)``."""
    text = repr(_send_result())
    assert text.startswith("OrderSendResult(retcode=10009, deal=2, order=3, ")
    assert "request=TradeRequest(action=1, magic=234000, " in text


@pytest.mark.parametrize("size", [0, 7, 9])
def test_wrong_length_raises_type_error(size: int) -> None:
    """Struct sequences require exactly n_fields values: ``Tick(seq)`` of another length fails."""
    with pytest.raises(TypeError):
        Tick(tuple(range(size)))


def test_constructed_from_any_iterable() -> None:
    """A record is built from one sequence argument, as with the real type."""
    assert Tick(iter(TICK_VALUES)) == TICK_VALUES
    assert Tick(list(TICK_VALUES)).ask == 1.12


def test_pickle_round_trip_keeps_type_and_nested_request() -> None:
    """records.py: unlike the real structs these pickle (bridges need it), type preserved."""
    original = _send_result()
    copy = pickle.loads(pickle.dumps(original))
    assert copy == original
    assert type(copy) is OrderSendResult
    assert type(copy.request) is TradeRequest
    assert copy.request.symbol == "USDJPY"


def test_records_are_tuples() -> None:
    """D1: a struct sequence is a tuple subclass (``isinstance(x, tuple)`` holds)."""
    assert isinstance(_tick(), tuple)
