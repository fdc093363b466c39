"""RPyC benchmarks: mt5gate's RPyCTerminal against the mt5linux way, on one classic server.

One RPyC classic server subprocess (``rpyc_classic``'s ``SlaveService``, what mt5linux runs)
hosts the simulator's drop-in module as ``MetaTrader5`` on a virtual clock, on loopback.
Figures, each a call plus reading what a caller reads:

- ``symbol_info_tick("EURUSD")`` and its 8 fields: the mt5linux way (``conn.eval`` of a built
  string, exactly as mt5linux does, then every field a netref round trip), the classic-netref
  way (``conn.modules.MetaTrader5.symbol_info_tick(...)``, then the fields), and RPyCTerminal
  (one round trip, fields read locally);
- a market ``order_send`` reading ``retcode`` / ``order`` / ``price`` (each pair opens and
  closes a position), the mt5linux way against RPyCTerminal.

The ratio column is RPyCTerminal's speed-up over the mt5linux way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.rpyc.classic_server import WEEKDAY_MS, ClassicServer

from bench.report import Row
from mt5gate.terminal.rpyc_client import RPyCTerminal

__all__ = ["Mt5linuxWay", "rich_remote_simulator", "rows"]

TICK_FIELDS = ("time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real")
BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}


def _best_rate(action: Callable[[], Any], count: int, repeat: int) -> float:
    """Best calls-per-second of ``count`` calls of ``action`` over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            action()
        best = min(best, time.perf_counter() - started)
    return count / best


def rich_remote_simulator(conn: Any) -> None:
    """A fresh remote simulator with a large account, so thousands of orders never run dry."""
    sim = conn.modules["mt5gate.sim"]
    account = sim.AccountConfig(login=9001, password="bench", balance=1e9, limit_orders=5_000)
    config = sim.SimConfig(accounts=(account,), history_days=1)
    sim.configure(sim.SimTerminal(config, clock=sim.VirtualClock(WEEKDAY_MS)))


def _read(record: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in names)


class Mt5linuxWay:
    """What mt5linux does: a classic connection, calls built as strings for ``eval``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        conn._config["sync_request_timeout"] = 300  # as mt5linux sets it
        conn.execute("import MetaTrader5 as mt5")
        self.module = conn.modules.MetaTrader5

    def tick_eval(self) -> tuple[Any, ...]:
        return _read(self.conn.eval('mt5.symbol_info_tick("EURUSD")'), TICK_FIELDS)

    def tick_netref(self) -> tuple[Any, ...]:
        return _read(self.module.symbol_info_tick("EURUSD"), TICK_FIELDS)

    def buy_and_close(self) -> None:
        opened = self.conn.eval(f"mt5.order_send({BUY!r})")
        retcode, order, _ = _read(opened, ("retcode", "order", "price"))
        assert retcode == 10009, retcode
        close = {**BUY, "type": 1, "position": order}
        closed = self.conn.eval(f"mt5.order_send({close!r})")
        assert _read(closed, ("retcode", "order", "price"))[0] == 10009


def _ours_tick(terminal: RPyCTerminal) -> tuple[Any, ...]:
    return _read(terminal.symbol_info_tick("EURUSD"), TICK_FIELDS)


def _ours_buy_and_close(terminal: RPyCTerminal) -> None:
    opened = terminal.order_send(BUY)
    assert opened is not None
    assert opened.retcode == 10009, opened
    closed = terminal.order_send({**BUY, "type": 1, "position": opened.order})
    assert closed is not None
    assert (closed.retcode, closed.order, closed.price)[0] == 10009


def rows(repeat: int, quick: bool) -> list[Row]:
    """Tick reads and market orders through RPyC: mt5linux way, classic netrefs, ours."""
    ticks, pairs = (300, 100) if quick else (3_000, 1_000)
    with ClassicServer() as server:
        conn = server.connect()
        try:
            rich_remote_simulator(conn)
            classic = Mt5linuxWay(conn)
            assert classic.module.initialize() is True
            terminal = RPyCTerminal(server.host, server.port)
            assert terminal.initialize() is True, terminal.last_error()
            try:
                tick_eval = _best_rate(classic.tick_eval, ticks, repeat)
                tick_netref = _best_rate(classic.tick_netref, ticks, repeat)
                tick_ours = _best_rate(lambda: _ours_tick(terminal), ticks, repeat)
                send_classic = 2 * _best_rate(classic.buy_and_close, pairs, repeat)
                send_ours = 2 * _best_rate(lambda: _ours_buy_and_close(terminal), pairs, repeat)
            finally:
                terminal.close()
        finally:
            conn.close()
    base = "mt5linux way"
    tick = "symbol_info_tick + 8 fields"
    send = "market order_send + retcode/order/price (open + close)"
    return [
        Row("rpyc", f"{tick}, mt5linux way (eval, netref fields)", tick_eval, "calls/s"),
        Row("rpyc", f"{tick}, classic netrefs (conn.modules)", tick_netref, "calls/s",
            base, tick_netref / tick_eval),
        Row("rpyc", f"{tick}, RPyCTerminal (by value)", tick_ours, "calls/s",
            base, tick_ours / tick_eval),
        Row("rpyc", f"{send}, mt5linux way", send_classic, "orders/s"),
        Row("rpyc", f"{send}, RPyCTerminal", send_ours, "orders/s", base, send_ours / send_classic),
    ]  # fmt: skip
