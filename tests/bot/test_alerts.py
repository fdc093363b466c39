"""Alerts through the real client: only to chats that asked, for health transitions, the
circuit breaker, unknown orders, fills and SL/TP closes; deduplicated and rate limited."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from mt5gate.models import OrderRequest, Side
from tests.bot.conftest import ADMIN, GROUP, TRADER, VIEWER, BotRun


def subscribe(bot: BotRun, chat_id: int, user_id: int | None = None) -> int:
    """Turn alerts on in ``chat_id``; returns the mark after the confirmation."""
    bot.ask("/alerts on", user_id or chat_id, "Alerts in this chat are on",
            chat_id=None if user_id is None else chat_id)  # fmt: skip
    return bot.fake.mark()


def alerts_to(bot: BotRun, chat_id: int, since: int) -> list[str]:
    return [c.message.text for c in bot.fake.calls[since:]
            if c.method == "sendMessage" and c.message is not None
            and c.message.chat_id == chat_id]  # fmt: skip


def test_fills_and_take_profit_closes_reach_subscribed_chats_only(bot: BotRun) -> None:
    mark = subscribe(bot, ADMIN)
    subscribe(bot, GROUP, user_id=VIEWER)
    quote = bot.run(bot.session.get_price("EURUSD"))
    tp = round(quote.ask + 0.0005, 5)
    opened = bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1, tp=tp)))
    fill = bot.fake.wait_message(ADMIN, "filled", since=mark)
    assert f"filled BUY 0.10 EURUSD at {opened.price:.5f} (position {opened.order})" in fill.text
    bot.fake.wait_message(GROUP, "filled", since=mark)

    bot.terminal.market.push_tick("EURUSD", tp + 0.001)  # through the take profit
    closed = bot.fake.wait_message(ADMIN, "Take profit hit", since=mark)
    assert f"position {opened.order}, 0.10 EURUSD at" in closed.text
    assert "profit" in closed.text
    assert bot.run(bot.session.positions()) == []
    assert alerts_to(bot, TRADER, mark) == []  # the trader did not ask for alerts


def test_a_stop_loss_close_says_so(bot: BotRun) -> None:
    mark = subscribe(bot, TRADER)
    quote = bot.run(bot.session.get_price("GBPUSD"))
    sl = round(quote.ask + 0.0008, 5)
    opened = bot.run(bot.session.place_order(OrderRequest("GBPUSD", Side.SELL, 0.2, sl=sl)))
    bot.fake.wait_message(TRADER, "filled SELL 0.20 GBPUSD", since=mark)
    bot.terminal.market.push_tick("GBPUSD", sl + 0.001)
    closed = bot.fake.wait_message(TRADER, "Stop loss hit", since=mark)
    assert f"position {opened.order}, 0.20 GBPUSD" in closed.text


def test_health_transitions_are_alerted_and_a_flap_only_once(bot: BotRun) -> None:
    mark = subscribe(bot, ADMIN)
    monitor = bot.account.monitor
    bot.terminal.set_connected(False)  # the terminal loses its trade server
    bot.run(monitor.refresh())
    down = bot.fake.wait_message(ADMIN, "health pass → fail", since=mark)
    assert "terminal:connection" in down.text
    assert "not connected to the trade server" in down.text
    bot.terminal.set_connected(True)
    bot.run(monitor.refresh())
    bot.fake.wait_message(ADMIN, "health fail → pass", since=mark)
    again = bot.fake.mark()
    bot.terminal.set_connected(False)  # the same flap again, within the de-duplication window
    bot.run(monitor.refresh())
    bot.terminal.set_connected(True)
    bot.run(monitor.refresh())
    bot.fake.no_call("sendMessage", chat_id=ADMIN, within_s=1.0, since=again)


def test_the_breaker_opening_and_closing_are_alerted(bot: BotRun) -> None:
    mark = subscribe(bot, ADMIN)
    bot.session.breaker.force_open("kill switch pulled")  # from this (non-loop) thread
    opened = bot.fake.wait_message(ADMIN, "circuit breaker opened", since=mark)
    assert "kill switch pulled" in opened.text
    assert "refused" in opened.text
    bot.session.breaker.release("back to work")
    bot.fake.wait_message(ADMIN, "circuit breaker closed", since=mark)


def test_an_order_with_an_unknown_outcome_is_alerted_then_its_resolution(bot: BotRun) -> None:
    mark = subscribe(bot, ADMIN)
    faults = bot.terminal.faults
    faults.reply_lost("order_send")  # it executes, its reply is lost
    faults.latency("history_orders_get", 0.5, times=3)  # reconciliation takes a while
    result = bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1)))
    unknown = bot.fake.wait_message(ADMIN, "outcome unknown", since=mark)
    assert f"order #{result.client_id}" in unknown.text
    assert "do not resend" in unknown.text
    resolved = bot.fake.wait_message(ADMIN, "resolved", since=mark)
    assert f"order #{result.client_id} resolved: RECONCILED_PRESENT" in resolved.text


def test_an_ordinary_order_is_never_reported_unknown(bot: BotRun) -> None:
    mark = subscribe(bot, ADMIN)
    for _ in range(5):
        bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01)))
    bot.fake.wait_message(ADMIN, "filled", since=mark)
    time.sleep(0.5)  # several unresolved-order rounds
    assert not [t for t in alerts_to(bot, ADMIN, mark) if "unknown" in t]


def test_alerts_are_rate_limited_per_chat(make_bot: Callable[..., BotRun]) -> None:
    from mt5gate.bot.settings import AlertPolicy

    bot = make_bot(alerts=AlertPolicy(poll_s=0.1, events_s=0.1, burst=2, per_minute=1))
    mark = subscribe(bot, ADMIN)
    for _ in range(4):
        bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01)))
    deadline = time.monotonic() + 10
    while len([t for t in alerts_to(bot, ADMIN, mark) if "filled" in t]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # the other two fills come and are held back
    assert len([t for t in alerts_to(bot, ADMIN, mark) if "filled" in t]) == 2
    assert bot.bot.gate._chats[ADMIN].held_back == 2


def test_alerts_off_stops_them_and_the_choice_survives_a_restart(
    make_bot: Callable[..., BotRun],
) -> None:
    bot = make_bot()
    subscribe(bot, ADMIN)
    subscribe(bot, VIEWER)
    assert "are off" in bot.ask("/alerts off", VIEWER).text
    assert "are on" in bot.ask("/alerts", ADMIN).text
    state = json.loads((bot.settings.data_dir / "bot-state.json").read_text())
    assert state["chats"][str(ADMIN)]["alerts"] is True
    assert state["chats"][str(VIEWER)]["alerts"] is False
    bot.stop()
    again = make_bot()
    mark = again.fake.mark()
    again.run(again.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01)))
    again.fake.wait_message(ADMIN, "filled", since=mark)
    time.sleep(0.3)
    assert alerts_to(again, VIEWER, mark) == []


def test_a_chat_that_blocked_the_bot_is_unsubscribed(bot: BotRun) -> None:
    mark = subscribe(bot, VIEWER)
    bot.fake.block(VIEWER)
    bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01)))
    bot.fake.wait_call("sendMessage", since=mark,
                       predicate=lambda c: c.chat_id == VIEWER and c.status == 403)  # fmt: skip
    deadline = time.monotonic() + 5
    while bot.bot.state.chat(VIEWER).alerts:
        assert time.monotonic() < deadline, "the blocked chat stayed subscribed"
        time.sleep(0.05)
