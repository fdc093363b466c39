# ruff: noqa
# fmt: off
# pdmt5 1.2.3 (written for the official package), used as its README's Quick Start shows:
# an Mt5Config, the Mt5DataClient context manager (initialize + login), account, tick and rates,
# then its order_send primitive to open a market BUY and close it by position ticket.
# Prints one JSON object with what the library returned.
import json

import pdmt5
from pdmt5 import Mt5Config, Mt5DataClient, parse_order_type, parse_timeframe

config = Mt5Config(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo", timeout=60000)

with Mt5DataClient(config=config) as client:
    out = {"pdmt5": pdmt5.__version__, "version": client.version_as_dict()}
    out["account"] = {k: v for k, v in client.account_info_as_dict().items()
                      if k in ("login", "server", "currency", "balance")}
    out["tick"] = client.symbol_info_tick_as_dict(symbol="EURUSD", skip_to_datetime=True)
    rates = client.copy_rates_from_pos(symbol="EURUSD", timeframe=parse_timeframe("M1"),
                                       start_pos=0, count=10)
    out["rates_dtype"] = [[name, rates.dtype[name].str] for name in rates.dtype.names]
    frame = client.copy_rates_from_pos_as_df(symbol="EURUSD", timeframe=parse_timeframe("M1"),
                                             start_pos=0, count=10)
    out["rates_df"] = {"rows": len(frame), "columns": list(frame.columns),
                       "time": str(frame["time"].dtype)}

    opened = client.order_send_as_dict({
        "action": client.mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1,
        "type": parse_order_type("BUY"), "price": out["tick"]["ask"], "deviation": 10,
        "type_filling": client.mt5.ORDER_FILLING_IOC, "magic": 42, "comment": "pdmt5 open"})
    out["open"] = {k: opened[k] for k in ("retcode", "deal", "order", "volume", "price")}
    positions = client.positions_get_as_dicts(symbol="EURUSD", skip_to_datetime=True)
    out["positions_after_open"] = [{k: p[k] for k in ("ticket", "type", "volume", "magic")}
                                   for p in positions]

    bid = client.symbol_info_tick_as_dict(symbol="EURUSD", skip_to_datetime=True)["bid"]
    closed = client.order_send_as_dict({
        "action": client.mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1,
        "type": parse_order_type("SELL"), "position": positions[0]["ticket"], "price": bid,
        "deviation": 10, "type_filling": client.mt5.ORDER_FILLING_IOC, "magic": 42,
        "comment": "pdmt5 close"})
    out["close"] = {k: closed[k] for k in ("retcode", "deal", "order", "volume", "price")}
    out["positions_after_close"] = len(client.positions_get_as_df(symbol="EURUSD"))
    deals = client.history_deals_get_as_dicts(position=positions[0]["ticket"], skip_to_datetime=True)
    out["deals"] = [{k: d[k] for k in ("ticket", "order", "position_id", "type", "entry", "volume")}
                    for d in deals]
    out["last_error"] = list(client.last_error())

print(json.dumps(out, default=str))
