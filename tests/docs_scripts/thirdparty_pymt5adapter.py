# ruff: noqa
# fmt: off
# pymt5adapter 0.4.4 (written for the official package), used as its README shows.
import pymt5adapter as mt5

with mt5.connected(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo",
                   raise_on_errors=True) as conn:
    print("account", mt5.account_info().login)
    info = mt5.symbol_info("EURUSD")
    print("symbol", info.name, info.digits)
    tick = mt5.symbol_info_tick("EURUSD")
    print("tick", tick.bid < tick.ask)
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME.M1, 0, 10)
    print("rates", len(rates), rates.dtype.names)
    result = mt5.order_send({"action": mt5.TRADE_ACTION.DEAL, "symbol": "EURUSD",
                             "volume": 0.1, "type": mt5.ORDER_TYPE.BUY,
                             "type_filling": mt5.ORDER_FILLING.IOC})
    print("order", result.retcode)
    print("positions", len(mt5.positions_get(symbol="EURUSD")))
