"""RPyCTerminal against RPyC's own classic server hosting the simulator: results by value,
as mt5gate record types and real numpy dtypes, in one round trip per call."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import numpy as np
import pytest

from mt5gate.records import (
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)
from mt5gate.sim import SimTerminal, VirtualClock
from mt5gate.terminal import Terminal
from mt5gate.terminal.rpyc_client import RPyCTerminal
from tests.rpyc.classic_server import WEEKDAY_MS
from tests.rpyc.conftest import HEDGING, market_buy
from tests.rpyc.contract_path import RPyCDriver

H1 = 16385
MSG_REQUEST = 1  # rpyc.core.consts.MSG_REQUEST


class Side(IntEnum):
    BUY = 0


def _local_sim() -> SimTerminal:
    """The same simulator in process, to compare dtypes and records with."""
    sim = SimTerminal(clock=VirtualClock(WEEKDAY_MS))
    sim.initialize(**HEDGING)
    return sim


def test_it_is_a_terminal(mt5: RPyCTerminal) -> None:
    assert isinstance(mt5, Terminal)
    assert mt5.connected
    assert "connected" in repr(mt5)


def test_records_come_back_as_mt5gate_types(mt5: RPyCTerminal) -> None:
    account = mt5.account_info()
    assert type(account) is AccountInfo
    assert account.login == 5001
    assert mt5.last_error() == (1, "Success")
    assert type(mt5.terminal_info()) is TerminalInfo
    tick = mt5.symbol_info_tick("EURUSD")
    assert type(tick) is Tick
    assert tick == _local_sim().symbol_info_tick("EURUSD")
    assert type(mt5.symbol_info("EURUSD")) is SymbolInfo
    symbols = mt5.symbols_get()
    assert symbols
    assert all(type(s) is SymbolInfo for s in symbols)
    assert len(symbols) == mt5.symbols_total()
    assert len(mt5.symbols_get(group="*USD*") or ()) < len(symbols)
    version = mt5.version()
    assert isinstance(version, tuple)
    assert version[0] == 500


def test_arrays_have_the_real_dtypes_and_are_writable(mt5: RPyCTerminal) -> None:
    local = _local_sim()
    rates = mt5.copy_rates_from_pos("EURUSD", H1, 0, 10)
    assert isinstance(rates, np.ndarray)
    assert len(rates) == 10
    assert rates.dtype == local.copy_rates_from_pos("EURUSD", H1, 0, 10).dtype
    assert rates.flags.writeable
    np.testing.assert_array_equal(rates, local.copy_rates_from_pos("EURUSD", H1, 0, 10))
    now = WEEKDAY_MS // 1000
    ticks = mt5.copy_ticks_from("EURUSD", now - 600, 50, -1)
    assert ticks is not None
    assert ticks.dtype == local.copy_ticks_from("EURUSD", now - 600, 50, -1).dtype
    assert mt5.copy_ticks_range("EURUSD", now - 600, now, -1) is not None


def test_datetimes_travel_as_seconds_not_reprs(mt5: RPyCTerminal) -> None:
    """pitfall A8: a datetime is converted on the client with .timestamp(), like the module."""
    now = WEEKDAY_MS // 1000
    since = datetime.fromtimestamp(now - 86_400, UTC)
    until = datetime.fromtimestamp(now, UTC)
    by_date = mt5.copy_rates_range("EURUSD", H1, since, until)
    by_int = mt5.copy_rates_range("EURUSD", H1, now - 86_400, now)
    assert by_date is not None
    assert by_int is not None
    assert len(by_date) > 0
    np.testing.assert_array_equal(by_date, by_int)
    from_date = mt5.copy_rates_from("EURUSD", H1, until, 5)
    assert from_date is not None
    assert len(from_date) == 5


def test_order_send_nests_a_trade_request(mt5: RPyCTerminal) -> None:
    request = market_buy(type=Side.BUY, volume=np.float64(0.1), comment="rpyc")
    check = mt5.order_check(request)
    assert type(check) is OrderCheckResult
    assert type(check.request) is TradeRequest
    result = mt5.order_send(request)
    assert type(result) is OrderSendResult, mt5.last_error()
    assert result.retcode == 10009
    assert type(result.request) is TradeRequest
    assert result.request.comment == "rpyc"
    (position,) = mt5.positions_get(symbol="EURUSD") or ()
    assert type(position) is TradePosition
    assert position.ticket == result.order
    assert mt5.positions_total() == 1
    assert mt5.positions_get(ticket=result.order) == (position,)


def test_history_and_pending_orders(mt5: RPyCTerminal, driver: RPyCDriver) -> None:
    opened = mt5.order_send(market_buy())
    assert opened is not None
    assert opened.retcode == 10009
    ask = mt5.symbol_info_tick("EURUSD").ask  # type: ignore[union-attr]
    limit = {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2,
             "price": round(ask - 0.01, 5), "type_filling": 2}  # fmt: skip
    placed = mt5.order_send(limit)
    assert placed is not None
    assert placed.retcode == 10009
    assert mt5.orders_total() == 1
    (order,) = mt5.orders_get(symbol="EURUSD") or ()
    assert type(order) is TradeOrder
    driver.step(60)
    now = driver.now_ms() // 1000
    since = datetime.fromtimestamp(now - 3600, UTC)
    assert mt5.history_orders_total(since, now) == 1
    (done,) = mt5.history_orders_get(since, now) or ()
    assert type(done) is TradeOrder
    assert mt5.history_orders_get(ticket=opened.order) == (done,)
    deals = mt5.history_deals_get(since, now, group="*EURUSD*") or ()
    assert (mt5.history_deals_total(since, now) or 0) >= len(deals) == 1
    assert type(deals[0]) is TradeDeal
    assert mt5.history_deals_get(position=opened.order) == deals


def test_margin_profit_and_book(mt5: RPyCTerminal) -> None:
    margin = mt5.order_calc_margin(0, "EURUSD", 0.1, 1.0991)
    assert isinstance(margin, float)
    assert margin > 0
    profit = mt5.order_calc_profit(0, "EURUSD", 0.1, 1.0991, 1.1001)
    assert profit == pytest.approx(10.0)
    assert mt5.symbol_select("GBPUSD") is True
    assert mt5.symbol_select("GBPUSD", True) is True
    assert mt5.market_book_add("EURUSD") is True
    book = mt5.market_book_get("EURUSD")
    assert book
    assert all(type(level) is BookInfo for level in book)
    assert mt5.market_book_release("EURUSD") is True


def test_failures_keep_the_remote_last_error(mt5: RPyCTerminal) -> None:
    assert mt5.symbol_info("NOSUCH") is None
    assert mt5.last_error()[0] == -4
    assert mt5.symbol_select("NOSUCH", True) is False
    assert mt5.last_error()[0] == -1
    assert mt5.positions_get("EURUSD") is None  # keywords only, as the real module
    assert mt5.last_error()[0] == -2
    assert mt5.orders_get("EURUSD") is None
    assert mt5.last_error()[0] == -2


def test_login_and_shutdown_are_forwarded(mt5: RPyCTerminal) -> None:
    assert mt5.login(5002, "sim-pass-5002", "MetaQuotes-Demo") is True
    assert mt5.account_info().login == 5002  # type: ignore[union-attr]
    assert mt5.login(5002, password="wrong", timeout=1000) is False
    assert mt5.last_error()[0] == -6
    mt5.shutdown()
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10004, "No IPC connection")
    assert mt5.connected  # the RPyC connection stays for the next initialize()
    assert mt5.initialize(timeout=5000, **HEDGING) is True


def test_initialize_forwards_path_and_portable(remote: tuple[RPyCTerminal, RPyCDriver]) -> None:
    terminal, _ = remote
    assert terminal.initialize("C:/MT5/terminal64.exe", portable=True) in (True, False)
    assert terminal.connected


def test_calling_conventions_raise_locally(mt5: RPyCTerminal) -> None:
    """A TypeError of the remote module surfaces as a TypeError here (semantics §3)."""
    with pytest.raises(TypeError):
        mt5.copy_rates_from_pos("EURUSD", "H1", 0, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot send"):
        mt5.symbol_info_tick(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 terminal functions"):
        mt5._call("eval", ("1+1",))
    assert mt5.symbol_info_tick("EURUSD") is not None  # the connection is still fine


def _count_messages(terminal: RPyCTerminal) -> dict[str, int]:
    """Count requests the client sends and requests the server sends back (callbacks)."""
    conn = terminal._conn
    counts = {"sent": 0, "callbacks": 0}
    send, dispatch = conn._send, conn._dispatch_request

    def counting_send(msg: int, seq: int, args: Any) -> None:
        counts["sent"] += msg == MSG_REQUEST
        send(msg, seq, args)

    def counting_dispatch(seq: int, raw_args: Any) -> None:
        counts["callbacks"] += 1
        dispatch(seq, raw_args)

    conn._send, conn._dispatch_request = counting_send, counting_dispatch
    return counts


def test_one_round_trip_per_call(mt5: RPyCTerminal) -> None:
    """Structural: each call is one request and no callbacks, however many fields are read."""
    counts = _count_messages(mt5)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    fields = (tick.time, tick.bid, tick.ask, tick.last, tick.volume, tick.time_msc, tick.flags)
    assert len(fields) == 7
    assert tick.volume_real == 0.0
    assert counts == {"sent": 1, "callbacks": 0}
    result = mt5.order_send(market_buy())
    assert result is not None
    assert (result.retcode, result.request.symbol) == (10009, "EURUSD")
    assert mt5.copy_rates_from_pos("EURUSD", H1, 0, 500) is not None
    assert mt5.positions_get()
    assert mt5.last_error() == (1, "Success")
    assert counts == {"sent": 4, "callbacks": 0}


def test_from_url() -> None:
    terminal = RPyCTerminal.from_url("rpyc://10.0.0.5:1234", call_timeout_s=9.0)
    assert (terminal.host, terminal.port, terminal.call_timeout_s) == ("10.0.0.5", 1234, 9.0)
    assert RPyCTerminal.from_url("rpyc://[::1]").port == 18812
    assert "not connected" in repr(terminal)
    for bad in ("bridge://host:1", "rpyc://", "host:18812"):
        with pytest.raises(ValueError, match="not an rpyc"):
            RPyCTerminal.from_url(bad)
