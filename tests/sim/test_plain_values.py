"""Every value the drop-in ``MetaTrader5`` module and the bridge hand out is plain (issue 18).

The real package returns plain ``int`` / ``float`` / ``str`` / ``bool`` values, tuples, its
record types and numpy structured arrays of plain numeric dtypes; never an ``IntEnum`` /
``IntFlag`` / ``StrEnum`` (an enum in ``last_error()`` broke logs, and ``json.dumps`` over RPyC).
These tests walk all 32 functions with realistic calls (a login, a market order, a pending
order, failures, history) and check each value's exact type: ``type(v) is int``, not
``isinstance``, since an ``IntEnum`` is an ``int``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import mt5gate.sim
from mt5gate.constants import (
    MT5_CONSTANTS,
    DayOfWeek,
    OrderFilling,
    OrderTime,
    OrderType,
    ResultCode,
    SymbolExpiration,
    SymbolFilling,
    SymbolOrderMode,
    SymbolOrdersGtc,
    TradeAction,
)
from mt5gate.records import RECORD_TYPES, Record
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.market.catalogue import default_catalogue
from tests.bridge.conftest import HEDGING, OPENED, ServedBridge

TUESDAY_10 = server_ms(2026, 1, 6, 10)
NOW_S = TUESDAY_10 // 1000
DAY_S = 86_400
SYMBOL = "EURUSD"
#: The exact types a value may have (records, tuples and arrays are walked into).
PLAIN_TYPES = (int, float, str, bool, bytes, type(None))
#: numpy dtype kinds of plain numbers: signed, unsigned, float, bool.
PLAIN_KINDS = frozenset("iufb")
C = MT5_CONSTANTS

Calls = list[tuple[str, Any]]


def offenders(value: Any, path: str) -> list[str]:
    """Where in ``value`` a non-plain value sits (empty when everything is plain)."""
    kind = type(value)
    if kind in PLAIN_TYPES:
        return []
    if kind in RECORD_TYPES.values():
        record: Record = value
        return _walk_items(record._asdict().items(), path)
    if kind is tuple:
        return _walk_items(((f"[{i}]", item) for i, item in enumerate(value)), path)
    if kind is np.ndarray:
        return _array_offenders(value, path)
    return [f"{path}: {kind.__module__}.{kind.__qualname__} {value!r}"]


def _walk_items(items: Any, path: str) -> list[str]:
    found: list[str] = []
    for key, item in items:
        found += offenders(item, f"{path}.{key}" if not key.startswith("[") else path + key)
    return found


def _array_offenders(array: np.ndarray[Any, Any], path: str) -> list[str]:
    """A structured array's fields must be plain numbers (no object or enum dtypes)."""
    names = array.dtype.names or ()
    return [
        f"{path}[{name!r}]: dtype {array.dtype[name]}"
        for name in names
        if array.dtype[name].kind not in PLAIN_KINDS
    ]


def json_of(value: Any) -> str:
    """``json.dumps`` of a record's ``_asdict()`` (nested request as a dict too)."""
    if type(value) in RECORD_TYPES.values():
        return json.dumps({k: json.loads(json_of(v)) for k, v in value._asdict().items()})
    return json.dumps(value)


def records_in(value: Any) -> Iterator[Any]:
    """Every record in a result (a record, or a tuple of them)."""
    if type(value) in RECORD_TYPES.values():
        yield value
    elif type(value) is tuple:
        for item in value:
            yield from records_in(item)


# -------------------------------------------------------------------------------- session


def _call(api: Any, calls: Calls, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``api.name`` and record its result and the ``last_error()`` after it."""
    result = getattr(api, name)(*args, **kwargs)
    calls.append((name, result))
    calls.append((f"last_error after {name}", api.last_error()))
    return result


def _market_request(tick: Any) -> dict[str, Any]:
    """A market BUY whose values are mt5gate's enums: the echo must still be plain."""
    return {
        "action": TradeAction.DEAL,
        "symbol": SYMBOL,
        "volume": 0.1,
        "type": OrderType.BUY,
        "price": tick.ask,
        "deviation": 20,
        "magic": 18,
        "comment": "plain values",
        "type_filling": OrderFilling.IOC,
        "type_time": OrderTime.GTC,
    }


def _pending_request(tick: Any) -> dict[str, Any]:
    return {
        "action": TradeAction.PENDING,
        "symbol": SYMBOL,
        "volume": 0.1,
        "type": OrderType.BUY_LIMIT,
        "price": round(tick.ask - 0.0100, 5),
        "type_filling": OrderFilling.RETURN,
        "type_time": OrderTime.GTC,
    }


def _info_calls(api: Any, calls: Calls) -> None:
    _call(api, calls, "version")
    _call(api, calls, "account_info")
    _call(api, calls, "terminal_info")
    _call(api, calls, "symbols_total")
    _call(api, calls, "symbols_get")
    _call(api, calls, "symbols_get", group="*USD*")
    _call(api, calls, "symbol_info", SYMBOL)
    _call(api, calls, "symbol_select", "GBPUSD", True)
    assert _call(api, calls, "market_book_add", SYMBOL) is True
    assert _call(api, calls, "market_book_get", SYMBOL)
    _call(api, calls, "market_book_release", SYMBOL)


def _history_arrays(api: Any, calls: Calls) -> None:
    m1, start = C["TIMEFRAME_M1"], NOW_S - 3600
    assert len(_call(api, calls, "copy_rates_from", SYMBOL, m1, NOW_S, 10))
    assert len(_call(api, calls, "copy_rates_from_pos", SYMBOL, C["TIMEFRAME_H1"], 0, 10))
    assert len(_call(api, calls, "copy_rates_range", SYMBOL, m1, start, NOW_S))
    ticks_all = C["COPY_TICKS_ALL"]
    assert len(_call(api, calls, "copy_ticks_from", SYMBOL, start, 10, ticks_all))
    assert len(_call(api, calls, "copy_ticks_range", SYMBOL, start, NOW_S, C["COPY_TICKS_INFO"]))


def _trading(api: Any, calls: Calls) -> None:
    tick = _call(api, calls, "symbol_info_tick", SYMBOL)
    buy, sell = C["ORDER_TYPE_BUY"], C["ORDER_TYPE_SELL"]
    _call(api, calls, "order_calc_margin", buy, SYMBOL, 0.1, tick.ask)
    _call(api, calls, "order_calc_profit", buy, SYMBOL, 0.1, tick.ask, tick.ask + 0.001)
    _call(api, calls, "order_check", _market_request(tick))
    sent = _call(api, calls, "order_send", _market_request(tick))
    assert sent.retcode == C["TRADE_RETCODE_DONE"], sent
    pending = _call(api, calls, "order_send", _pending_request(tick))
    assert pending.order, pending
    _call(api, calls, "orders_total")
    assert _call(api, calls, "orders_get", symbol=SYMBOL)
    _call(api, calls, "positions_total")
    (position,) = _call(api, calls, "positions_get", symbol=SYMBOL)
    remove = {"action": TradeAction.REMOVE, "order": pending.order}
    _call(api, calls, "order_send", remove)
    close = {**_market_request(tick), "type": sell, "price": tick.bid, "position": position.ticket}
    assert _call(api, calls, "order_send", close).retcode == C["TRADE_RETCODE_DONE"]
    _call(api, calls, "order_check", {**_market_request(tick), "volume": 1e9})
    _call(api, calls, "order_send", {**_market_request(tick), "volume": 0.123456})


def _history(api: Any, calls: Calls) -> None:
    since, until = NOW_S - 5 * DAY_S, NOW_S + DAY_S
    _call(api, calls, "history_orders_total", since, until)
    assert _call(api, calls, "history_orders_get", since, until)
    _call(api, calls, "history_orders_get", since, until, group=SYMBOL)
    _call(api, calls, "history_deals_total", since, until)
    assert _call(api, calls, "history_deals_get", since, until)


def _failures(api: Any, calls: Calls) -> None:
    """Calls that fail: their ``last_error()`` codes must be plain too."""
    assert _call(api, calls, "symbol_info", "NO.SUCH") is None
    assert _call(api, calls, "copy_rates_from_pos", "NO.SUCH", C["TIMEFRAME_M1"], 0, 10) is None
    assert _call(api, calls, "history_deals_get", "not a date", NOW_S) is None


def session(api: Any) -> Calls:
    """A realistic session over ``api`` (the drop-in module or a bridge client): every one of
    the 32 functions, each result with the ``last_error()`` after it."""
    calls: Calls = []
    assert _call(api, calls, "initialize", **HEDGING) is True
    assert _call(api, calls, "login", HEDGING["login"], password=HEDGING["password"]) is True
    _info_calls(api, calls)
    _history_arrays(api, calls)
    _trading(api, calls)
    _history(api, calls)
    _failures(api, calls)
    _call(api, calls, "shutdown")
    return calls


def assert_plain(calls: Calls) -> None:
    """Every value plain, ``last_error()`` an ``(int, str)`` and JSON-able, records JSON-able."""
    found = [bad for label, value in calls for bad in offenders(value, label)]
    assert found == []
    for label, value in calls:
        if label.startswith("last_error"):
            code, text = value
            assert (type(value), type(code), type(text)) == (tuple, int, str), label
            assert json.loads(json.dumps(value)) == [code, text]
        for record in records_in(value):
            json_of(record)


def _new_terminal() -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))


# --------------------------------------------------------------------------------- checks


def test_the_checker_catches_enums_and_numpy_scalars() -> None:
    """``offenders`` is strict: an IntEnum, an IntFlag or a numpy scalar is not plain."""
    assert offenders(ResultCode.S_OK, "x") != []
    assert offenders((1, "a", (2.0, None)), "x") == []
    assert offenders(np.float64(1.0), "x") != []
    assert offenders((int(ResultCode.S_OK), OrderType.BUY), "x") == [
        f"x[1]: mt5gate.constants.OrderType {OrderType.BUY!r}"
    ]


def test_last_error_is_a_plain_int_and_str(dropin_reset: None) -> None:
    """The issue's case: ``(1, 'Success')``, not ``(<ResultCode.S_OK: 1>, 'Success')``."""
    mt5 = mt5gate.sim.install(_new_terminal())
    assert mt5.initialize(**HEDGING)
    code, text = mt5.last_error()
    assert (type(code), code, text) == (int, 1, "Success")
    assert json.dumps(mt5.last_error()) == '[1, "Success"]'
    assert repr(mt5.last_error()) == "(1, 'Success')"
    mt5.symbol_info("NO.SUCH")
    assert repr(mt5.last_error()) == "(-4, 'Terminal: Not found')"


def test_every_value_of_the_dropin_module_is_plain(dropin_reset: None) -> None:
    mt5 = mt5gate.sim.install(_new_terminal())
    assert_plain(session(mt5))


def test_a_fault_with_an_enum_code_leaves_a_plain_last_error(dropin_reset: None) -> None:
    """Faults default to ``ResultCode`` members; ``last_error()`` still gives an ``int``."""
    terminal = _new_terminal()
    mt5 = mt5gate.sim.install(terminal)
    assert mt5.initialize(**HEDGING)
    terminal.faults.ipc_error("symbol_info_tick", ResultCode.E_INTERNAL_FAIL_RECEIVE)
    terminal.faults.ipc_error("account_info")  # the default code, a ResultCode
    terminal.faults.reply_lost("terminal_info")
    assert mt5.symbol_info_tick(SYMBOL) is None
    calls: Calls = [("last_error after symbol_info_tick", mt5.last_error())]
    assert mt5.account_info() is None
    calls.append(("last_error after account_info", mt5.last_error()))
    assert mt5.terminal_info() is None
    calls.append(("last_error after terminal_info", mt5.last_error()))
    assert_plain(calls)
    assert [error[0] for _label, error in calls] == [-10002, -10001, -10002]


def test_the_modules_constants_are_plain_ints() -> None:
    """Like the real package's: ``TRADE_RETCODE_DONE`` is ``10009``, an ``int``."""
    from mt5gate.sim import metatrader5 as mt5

    public = [name for name in dir(mt5) if name.isupper() and not name.startswith("_")]
    constants = {name: getattr(mt5, name) for name in public}
    assert set(MT5_CONSTANTS) <= set(constants)
    assert {name for name, value in constants.items() if type(value) is not int} == set()
    assert (type(mt5.__version__), type(mt5.__author__)) == (str, str)


def test_helpers_return_plain_values(dropin_reset: None) -> None:
    """``Buy`` / ``Sell`` give plain results; ``Close`` a bool."""
    mt5 = mt5gate.sim.install(_new_terminal())
    assert mt5.initialize(**HEDGING)
    calls: Calls = [("Buy", mt5.Buy(SYMBOL, 0.1)), ("Sell", mt5.Sell(SYMBOL, 0.1))]
    calls += [("Close", mt5.Close(SYMBOL)), ("last_error", mt5.last_error())]
    assert_plain(calls)
    assert calls[2][1] is True


@pytest.fixture
def bridge() -> Iterator[Callable[[], Any]]:
    """A bridge serving a simulator on 127.0.0.1; yields a factory of clients."""
    served = ServedBridge(_new_terminal())
    try:
        yield served.client
    finally:
        for opened in OPENED:
            opened.close()
        OPENED.clear()
        served.close()


def test_every_value_through_the_bridge_is_plain(bridge: Callable[[], Any]) -> None:
    """The bridge client gives the same plain values (and local IPC errors are plain too)."""
    client = bridge()
    before = [("last_error before initialize", client.last_error())]
    assert client.account_info() is None
    before.append(("last_error without IPC", client.last_error()))
    assert_plain(before + session(client))


def test_symbol_info_is_plain_when_a_spec_is_configured_with_flag_enums() -> None:
    """A ``SymbolSpec`` may be written with mt5gate's flag enums; ``symbol_info`` still gives
    plain ints for ``filling_mode`` / ``expiration_mode`` / ``order_mode`` / ``order_gtc_mode``."""
    spec = replace(
        default_catalogue()[0],
        filling_mode=SymbolFilling.FOK | SymbolFilling.IOC,
        expiration_mode=SymbolExpiration.GTC | SymbolExpiration.DAY,
        order_mode=SymbolOrderMode.MARKET | SymbolOrderMode.LIMIT,
        order_gtc_mode=SymbolOrdersGtc.DAILY,
        swap_rollover3days=DayOfWeek.WEDNESDAY,
    )
    terminal = SimTerminal(
        SimConfig(symbols=(spec,), history_days=1), clock=VirtualClock(TUESDAY_10)
    )
    assert terminal.initialize(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo")
    info = terminal.symbol_info(spec.name)
    assert info is not None
    assert_plain([("symbol_info", info), ("symbols_get", terminal.symbols_get())])
    assert (info.filling_mode, info.expiration_mode, info.order_mode) == (3, 3, 3)
