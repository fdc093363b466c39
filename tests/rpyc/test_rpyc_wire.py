"""What travels: arguments as brine values only, results as tagged plain data that the client
rebuilds. The server helper is exercised here in process, over a stand-in ``MetaTrader5`` whose
records are not mt5gate's (as the real struct sequences are not)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
import pytest
from rpyc.core import brine

from mt5gate.records import OrderSendResult, Tick, TradeRequest
from mt5gate.terminal.rpyc_client import SERVER_SOURCE, _argument, _scalar, decode


class Action(IntEnum):
    DEAL = 1


class Name(StrEnum):
    EURUSD = "EURUSD"


class ForeignRecord(tuple[Any, ...]):
    """Stands for a C struct sequence: a tuple with ``_asdict`` and a bare type name."""

    def _asdict(self) -> dict[str, Any]:
        return dict(enumerate(self))  # type: ignore[arg-type]


def _named(name: str) -> type[ForeignRecord]:
    return type(name, (ForeignRecord,), {})


@pytest.fixture
def helper(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """SERVER_SOURCE run in its own namespace, over a stand-in MetaTrader5 module."""
    fake = types.ModuleType("MetaTrader5")
    error = [(1, "Success")]
    fake.last_error = lambda: error[0]  # type: ignore[attr-defined]

    def order_send(request: dict[str, Any]) -> Any:
        head = (request["action"], 0, 0, request["symbol"], 0.1)
        echoed = _named("TradeRequest")((*head, *(0.0,) * 4, 0, 0, 0, 0, 0, "", 0, 0))
        return _named("OrderSendResult")((10009, 1, 2, 0.1, 1.1, 1.1, 1.2, "done", 3, 0, echoed))

    def fails(*args: Any, **kwargs: Any) -> Any:
        error[0] = (-2, "Invalid params")
        raise TypeError(f"bad: {args} {kwargs}")

    fake.order_send = order_send  # type: ignore[attr-defined]
    fake.copy_rates_from_pos = fails  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "MetaTrader5", fake)
    namespace: dict[str, Any] = {}
    exec(SERVER_SOURCE, namespace)  # the literal the client sends; no user input in it
    return namespace


def test_scalars_become_brine_values() -> None:
    moment = datetime(2026, 1, 6, 10, tzinfo=UTC)
    assert _scalar(moment) == int(moment.timestamp())
    assert _scalar(np.bool_(True)) is True
    assert type(_scalar(np.int64(5))) is int
    assert _scalar(Action.DEAL) == 1
    assert type(_scalar(Action.DEAL)) is int
    assert type(_scalar(np.float32(0.5))) is float
    assert type(_scalar(Name.EURUSD)) is str
    for plain in (None, True, 3, 1.5, "x", b"y"):
        assert _scalar(plain) is plain
    with pytest.raises(TypeError, match="cannot send a list"):
        _scalar([1])


def test_a_request_travels_as_pairs() -> None:
    wire = _argument({"action": Action.DEAL, "volume": np.float64(0.1), "symbol": Name.EURUSD})
    assert wire == (("action", 1), ("volume", 0.1), ("symbol", "EURUSD"))
    assert brine.dumpable(wire)


def test_the_server_helper_copies_records_by_value(helper: dict[str, Any]) -> None:
    call: Callable[..., Any] = helper["_mt5gate_call"]
    reply = call("order_send", ((("action", 1), ("symbol", "EURUSD")),), ())
    assert brine.dumpable(reply)  # by value: no netref, no pickle
    status, result, code, text = reply
    assert (status, code, text) == ("ok", 1, "Success")
    sent = decode(result)
    assert type(sent) is OrderSendResult
    assert type(sent.request) is TradeRequest
    assert sent.request.symbol == "EURUSD"


def test_the_server_helper_reports_exceptions(helper: dict[str, Any]) -> None:
    reply = helper["_mt5gate_call"]("copy_rates_from_pos", ("EURUSD", "H1"), (("x", 1),))
    assert reply[0:2] == ("raised", "TypeError")
    assert reply[3:] == (-2, "Invalid params")


@pytest.mark.parametrize(
    "value",
    [
        np.arange(6, dtype=np.float64).reshape(2, 3),
        np.zeros(3, dtype=[("time", "<i8"), ("bid", "<f8"), ("flags", "<u4")]),
        np.zeros(2, dtype=[("outer", [("a", "<i4"), ("b", "<f8")]), ("v", "<f8", (2,))]),
        np.zeros(0, dtype=[("time", "<i8"), ("ask", "<f8")]),
    ],
)
def test_arrays_round_trip(helper: dict[str, Any], value: Any) -> None:
    wire = helper["_mt5gate_plain"](value)
    assert brine.dumpable(wire)
    back = decode(wire)
    assert back.dtype == value.dtype
    assert back.shape == value.shape
    assert back.flags.writeable
    np.testing.assert_array_equal(back, value)


def test_plain_values_round_trip(helper: dict[str, Any]) -> None:
    plain = helper["_mt5gate_plain"]
    tick = _named("Tick")((1, 1.1, 1.2, 0.0, 0, 1000, 6, 0.0))
    assert type(decode(plain(tick))) is Tick
    assert decode(plain((tick, tick))) == (Tick(tick), Tick(tick))
    assert decode(plain(_named("Unknown")((1, 2)))) == (1, 2)
    assert decode(plain([1, "a"])) == (1, "a")
    assert decode(plain({"a": np.float64(2.5)})) == {"a": 2.5}
    assert decode(plain(Action.DEAL)) == 1
    assert type(plain(Action.DEAL)) is int
    assert type(plain(np.float64(2.5))) is float
    assert type(plain(np.int32(7))) is int
    assert type(plain(Name.EURUSD)) is str
    assert plain(np.bool_(False)) is False
    assert plain(None) is None
    with pytest.raises(TypeError, match="cannot copy a object result"):
        plain(object())


def test_float_and_bool_subclasses(helper: dict[str, Any]) -> None:
    class Price(float):
        pass

    assert type(helper["_mt5gate_plain"](Price(1.5))) is float


def test_unknown_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown value tag"):
        decode(("pickle", b"..."))
