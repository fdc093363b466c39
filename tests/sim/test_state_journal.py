"""The state file as a journal: only the brokers are kept, a record per change, restores exact,
old (version 1) files still load, a torn last record is dropped, the file grows with trading."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from mt5gate.constants import OrderType, TradeAction, TradeRetcode
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.state import STATE_VERSION, snapshot
from mt5gate.sim.terminal import SimTerminal
from tests.sim.conftest import LOGIN, PASSWORD, SERVER, TUESDAY_10, market_request

NETTING = 5002


def _terminal(path: Path | None, clock_ms: int = TUESDAY_10) -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(clock_ms), state_file=path)


def _send(terminal: SimTerminal, request: dict[str, Any]) -> int:
    result = terminal.order_send(request)
    assert result is not None
    assert result.retcode in (TradeRetcode.DONE, TradeRetcode.PLACED), result
    return int(result.order)


def _trade(terminal: SimTerminal) -> None:
    """Positions opened, one partly and one fully closed, pending orders placed and one
    removed, SL/TP set, time passing in between (swaps, triggers), and a second account."""
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    first = _send(terminal, market_request(terminal))
    second = _send(terminal, market_request(terminal, "GBPUSD", OrderType.SELL, volume=0.3))
    assert isinstance(terminal.clock, VirtualClock)
    terminal.step(seconds=3600)
    close = market_request(terminal, side=OrderType.SELL, position=first)
    _send(terminal, close)
    _send(terminal, market_request(terminal, "GBPUSD", OrderType.BUY, volume=0.1, position=second))
    tick = terminal.symbol_info_tick("EURUSD")
    assert tick is not None
    pending = {"action": int(TradeAction.PENDING), "symbol": "EURUSD", "volume": 0.2,
               "type": int(OrderType.BUY_LIMIT), "price": round(tick.ask - 0.01, 5),
               "type_filling": 2}  # fmt: skip
    kept = _send(terminal, pending)
    gone = _send(terminal, dict(pending, price=round(tick.ask - 0.02, 5)))
    _send(terminal, {"action": int(TradeAction.REMOVE), "order": gone})
    sltp = {"action": int(TradeAction.SLTP), "symbol": "GBPUSD", "position": second,
            "sl": round(tick.bid + 0.5, 5)}  # fmt: skip
    _send(terminal, sltp)
    assert kept
    terminal.step(seconds=86_400)  # a rollover: swaps
    assert terminal.login(NETTING, password=f"sim-pass-{NETTING}", server=SERVER)
    _send(terminal, market_request(terminal))


def _same(a: SimTerminal, b: SimTerminal) -> None:
    assert a.brokers.keys() == b.brokers.keys()
    for login, broker in a.brokers.items():
        assert b.brokers[login].snapshot() == broker.snapshot(), login
    assert b.tickets.snapshot() == a.tickets.snapshot()
    assert b.terminal_snapshot() == a.terminal_snapshot()
    assert b.clock.now_ms() == a.clock.now_ms()


def test_every_order_is_a_record_and_reloads_identically(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    first = _terminal(path)
    _trade(first)
    lines = path.read_bytes().splitlines()
    assert json.loads(lines[0])["version"] == STATE_VERSION
    assert len(lines) > 8, "a record appended per order, not a rewrite"
    assert b'"m1"' not in path.read_bytes(), "no market data"
    again = _terminal(path)
    _same(first, again)
    # and it goes on: tickets continue, one more record, still identical
    assert again.initialize()
    newer = _send(again, market_request(again))
    assert newer > max(first.brokers[NETTING].engine.ledger.positions)
    _same(again, _terminal(path))


def test_the_market_is_regenerated(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    first = _terminal(path)
    _trade(first)
    again = _terminal(path)
    assert again.initialize()
    now = first.clock.now_ms() // 1000
    for symbol in ("EURUSD", "GBPUSD"):
        ticks = [t.copy_ticks_range(symbol, now - 7200, now, -1) for t in (first, again)]
        rates = [t.copy_rates_from_pos(symbol, 1, 0, 3000) for t in (first, again)]
        for mine, theirs in (ticks, rates):
            assert mine is not None
            assert theirs is not None
            assert mine.tolist() == theirs.tolist()


def test_a_version_1_file_loads_and_is_rewritten_as_version_2(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    first = _terminal(None)
    _trade(first)
    path.write_bytes(json.dumps(snapshot(first), separators=(",", ":")).encode())  # as v1 did
    old = _terminal(path)
    _same(first, old)
    assert old.initialize()
    _send(old, market_request(old))
    assert json.loads(path.read_bytes().splitlines()[0])["version"] == STATE_VERSION
    _same(old, _terminal(path))


def test_a_torn_last_record_is_dropped_and_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    first = _terminal(path)
    _trade(first)
    whole = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(b'{"clock_ms":1,"accounts":{"5001":{"bal')  # a crash mid-append
    again = _terminal(path)
    _same(first, again)
    assert path.read_bytes() == whole
    assert again.initialize()
    _send(again, market_request(again))
    _same(again, _terminal(path))


def test_the_file_grows_with_trading_not_with_time(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    terminal = _terminal(path)
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    _send(terminal, market_request(terminal))
    traded = path.stat().st_size
    terminal.step(seconds=7 * 86_400)
    assert terminal.positions_total() == 1
    assert path.stat().st_size == traded
    for _ in range(400):  # records are compacted: the file stays near the state's size
        _send(terminal, market_request(terminal, volume=0.01))
    assert path.stat().st_size < 2 * 256 * 1024 + 100_000
    _same(terminal, _terminal(path))


def test_another_writer_makes_the_next_save_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    one = _terminal(path)
    assert one.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    _send(one, market_request(one))
    other = _terminal(path)
    assert other.initialize()
    _send(other, market_request(other))  # appended by another process
    _send(one, market_request(one))  # one does not append to a file it did not leave so
    assert len(path.read_bytes().splitlines()) == 2
    _same(one, _terminal(path))


def test_a_deferred_sync_is_done_before_the_reply_and_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bridge's way: the call appends its record, the host syncs before replying; records
    appended while one fdatasync ran are covered by the next single one."""
    path = tmp_path / "sim.json"
    terminal = _terminal(path)
    terminal.defer_state_sync()
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    _send(terminal, market_request(terminal))  # the first save writes the file whole
    assert not terminal.state_unsynced
    synced: list[int] = []
    real = os.fdatasync

    def counted(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counted)
    for _ in range(3):  # three clients' orders while no sync ran
        _send(terminal, market_request(terminal))
    assert synced == []
    assert terminal.state_unsynced
    threads = [threading.Thread(target=terminal.sync_state) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(synced) == 1
    assert not terminal.state_unsynced
    _same(terminal, _terminal(path))
