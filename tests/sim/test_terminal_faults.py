"""Every scripted fault of the simulated terminal, demonstrated end to end (issue: faults)."""

from __future__ import annotations

import threading
import time

import pytest

from mt5gate.constants import TradeRetcode
from mt5gate.sim import BrokerOptions, SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.sim.conftest import LOGIN, PASSWORD, SERVER, TUESDAY_10, market_request


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (-10001, "IPC send failed"),
        (-10002, "IPC recv failed"),
        (-10004, "No IPC connection"),
        (-10005, "IPC timeout"),
    ],
)
def test_ipc_errors(sim: SimTerminal, code: int, text: str) -> None:
    sim.faults.ipc_error("symbol_info_tick", code)
    assert sim.symbol_info_tick("EURUSD") is None
    assert sim.last_error() == (code, text)
    assert sim.symbol_info_tick("EURUSD") is not None  # one-shot rule
    assert sim.last_error() == (1, "Success")


def test_ipc_error_on_a_boolean_function_returns_false(sim: SimTerminal) -> None:
    sim.faults.ipc_error("symbol_select", -10001)
    assert sim.symbol_select("GBPJPY", True) is False


def test_latency_delays_the_call(sim: SimTerminal) -> None:
    slept: list[float] = []
    sim.faults.sleep = slept.append
    sim.faults.latency("account_info", 0.25, times=2)
    assert sim.account_info() is not None
    assert sim.account_info() is not None
    assert sim.account_info() is not None
    assert slept == [0.25, 0.25]


def test_hang_blocks_until_released_then_times_out(sim: SimTerminal) -> None:
    sim.faults.hang("symbol_info_tick", cap_s=30.0)
    outcome: list[object] = []
    caller = threading.Thread(
        target=lambda: outcome.append(sim.symbol_info_tick("EURUSD")), name="caller"
    )
    caller.start()
    caller.join(0.2)
    assert caller.is_alive(), "a hung call must block"
    sim.faults.release()
    caller.join(10.0)
    assert outcome == [None]
    assert sim.last_error() == (-10005, "IPC timeout")


def test_hang_capped_by_its_deadline(sim: SimTerminal) -> None:
    sim.faults.hang("version", cap_s=0.05)
    started = time.monotonic()
    assert sim.version() is None
    assert time.monotonic() - started >= 0.05
    assert sim.last_error()[0] == -10005


def test_shutdown_breaks_a_hung_call_with_no_ipc(sim: SimTerminal) -> None:
    sim.faults.hang("account_info", cap_s=30.0)
    outcome: list[object] = []
    caller = threading.Thread(target=lambda: outcome.append(sim.account_info()), name="caller")
    caller.start()
    caller.join(0.1)
    sim.shutdown()
    caller.join(10.0)
    assert outcome == [None]
    assert sim.last_error() == (-10004, "No IPC connection")


def test_disconnect_from_trade_server(sim: SimTerminal) -> None:
    before = sim.symbol_info_tick("EURUSD")
    sim.faults.disconnect("order_send")
    result = sim.order_send(market_request(sim))
    assert result is not None
    assert result.retcode == TradeRetcode.CONNECTION
    info = sim.terminal_info()
    assert info is not None
    assert info.connected is False
    sim.step(120)
    assert sim.symbol_info_tick("EURUSD") == before, "no fresh ticks while disconnected"
    sim.set_connected(True)
    assert sim.symbol_info_tick("EURUSD") != before


def test_autotrading_switched_off(sim: SimTerminal) -> None:
    sim.faults.autotrading_off("order_send")
    result = sim.order_send(market_request(sim))
    assert result is not None
    assert (result.retcode, result.comment) == (10027, "AutoTrading disabled by client")
    assert (result.deal, result.order, result.volume) == (0, 0, 0.0)
    info = sim.terminal_info()
    assert info is not None
    assert info.trade_allowed is False


def test_python_api_disabled_gives_minus_8(sim: SimTerminal) -> None:
    sim.flags.tradeapi_disabled = True
    assert sim.order_send(market_request(sim)) is None
    assert sim.last_error()[0] == -8


def test_terminal_restart(sim: SimTerminal) -> None:
    opened = sim.order_send(market_request(sim))
    assert opened is not None
    assert opened.retcode == TradeRetcode.DONE
    sim.symbol_select("GBPJPY", True)
    sim.faults.restart("positions_get")
    assert sim.positions_get() is None
    assert sim.last_error() == (-10004, "No IPC connection")
    assert sim.account_info() is None
    assert sim.initialize()
    positions = sim.positions_get()
    assert positions is not None
    assert [p.ticket for p in positions] == [opened.order], "server state survives a restart"
    symbols = sim.symbols_get("GBPJPY")
    assert symbols is not None
    assert symbols[0].select is False, "Market Watch is reset by a restart"


def test_reply_lost_after_execution(sim: SimTerminal) -> None:
    sim.faults.reply_lost("order_send", code=-10002)
    request = market_request(sim, magic=77_001, comment="lost-reply")
    assert sim.order_send(request) is None
    assert sim.last_error() == (-10002, "IPC recv failed")
    positions = sim.positions_get(symbol="EURUSD")
    assert positions is not None
    assert [p.magic for p in positions] == [77_001], "the order executed on the server"
    deals = sim.history_deals_get(TUESDAY_10 // 1000 - 60, TUESDAY_10 // 1000 + 60)
    assert deals is not None
    assert [d.magic for d in deals if d.symbol == "EURUSD"] == [77_001]


def test_reply_lost_with_a_hang_past_any_deadline(sim: SimTerminal) -> None:
    sim.faults.reply_lost("order_send", hang=True, cap_s=30.0, code=-10005)
    outcome: list[object] = []
    request = market_request(sim, magic=77_002)
    caller = threading.Thread(target=lambda: outcome.append(sim.order_send(request)), name="c")
    caller.start()
    caller.join(0.2)
    assert caller.is_alive()
    sim.faults.release()
    caller.join(10.0)
    assert outcome == [None]
    assert sim.last_error()[0] == -10005
    positions = sim.positions_get()
    assert positions is not None
    assert [p.magic for p in positions] == [77_002]


def test_probabilistic_faults_are_reproducible() -> None:
    def failures(seed: int) -> list[int]:
        terminal = SimTerminal(SimConfig(history_days=1, seed=seed), clock=VirtualClock(TUESDAY_10))
        terminal.initialize()
        terminal.faults.ipc_error("symbol_info_tick", -10002, times=None, probability=0.25)
        return [i for i in range(100) if terminal.symbol_info_tick("EURUSD") is None]

    assert failures(3) == failures(3)
    assert 5 < len(failures(3)) < 50


def test_history_visible_late(clock: VirtualClock) -> None:
    config = SimConfig(history_days=1, broker=BrokerOptions(history_delay_ms=5_000))
    terminal = SimTerminal(config, clock=clock)
    terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    result = terminal.order_send(market_request(terminal))
    assert result is not None
    assert result.retcode == TradeRetcode.DONE
    window = (TUESDAY_10 // 1000 - 3600, TUESDAY_10 // 1000 + 3600)
    assert terminal.history_deals_get(*window, group="EURUSD") == ()
    assert terminal.history_orders_get(ticket=result.order) == ()
    terminal.step(6)
    deals = terminal.history_deals_get(*window, group="EURUSD")
    assert deals is not None
    assert len(deals) == 1


def test_broker_overwrites_comment_on_stop_loss(clock: VirtualClock) -> None:
    config = SimConfig(history_days=1, broker=BrokerOptions(overwrite_sltp_comment=True))
    terminal = SimTerminal(config, clock=clock)
    terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    terminal.market.push_tick("EURUSD", 1.10000, 1.10010)
    opened = terminal.order_send(market_request(terminal, sl=1.09500, comment="mine"))
    assert opened is not None
    assert opened.retcode == TradeRetcode.DONE
    terminal.step(1)
    terminal.market.push_tick("EURUSD", 1.09400, 1.09410)
    deals = terminal.history_deals_get(position=opened.order)
    assert deals is not None
    exit_deal = deals[-1]
    assert exit_deal.reason == 4  # DEAL_REASON_SL
    assert exit_deal.comment.startswith("[sl")
    assert deals[0].comment == "mine"
