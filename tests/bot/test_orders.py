"""Orders from Telegram: shown, confirmed once, cancelled, expired, refused; through the real
PTB client and the fake Bot API, against the simulated demo account's journal and positions."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mt5gate.models import OrderRequest, Side
from tests.bot.conftest import ADMIN, TRADER, VIEWER, BotRun


def journaled(run: BotRun) -> int:
    """How many orders the demo account's journal holds."""
    session = run.session
    return len(session.journal.summaries(session.pipeline.login))


def test_buy_shows_what_how_much_price_and_margin_then_places_once(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1 tp=1.5 sl=0.9", TRADER, "Confirm order")
    text = shown.text
    assert "BUY 0.10 EURUSD at market" in text
    assert "(ask now)" in text
    assert "SL 0.90000 · TP 1.50000" in text
    assert "Margin needed 108." in text
    assert "free 10,000.00 USD" in text
    assert "Expires in 60 s." in text
    assert [b["text"] for b in shown.buttons] == ["✅ Confirm", "✖ Cancel"]
    assert bot.run(bot.session.positions()) == []  # nothing is sent before the confirmation

    mark = bot.fake.mark()
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    assert bot.fake.wait_answer(query)["text"] == "Sending…"
    done = bot.fake.wait_edit(TRADER, shown.message_id, contains="Done", since=mark)
    assert done.reply_markup is None
    assert "Expires" not in done.text
    positions = bot.run(bot.session.positions())
    assert len(positions) == 1
    assert positions[0].volume == 0.1
    assert positions[0].sl == 0.9
    assert positions[0].tp == 1.5
    (order,) = bot.session.journal.summaries(bot.session.pipeline.login)
    assert f"client id #{order.client_id.sequence}" in done.text
    assert str(positions[0].ticket) in done.text

    # a phone that still shows the old keyboard can press it again
    again = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER, force=True)
    assert "Already done" in bot.fake.wait_answer(again)["text"]
    assert len(bot.run(bot.session.positions())) == 1
    assert journaled(bot) == 1


def test_two_confirm_presses_at_once_place_one_order(bot: BotRun) -> None:
    shown = bot.ask("/sell GBPUSD 0.2", TRADER, "Confirm order")
    data = shown.button("Confirm")
    first = bot.fake.press(shown.message_id, data, user_id=TRADER)
    second = bot.fake.press(shown.message_id, data, user_id=TRADER)  # same getUpdates batch
    answers = {bot.fake.wait_answer(first)["text"], bot.fake.wait_answer(second)["text"]}
    assert "Sending…" in answers
    assert any(a.startswith("Already") for a in answers)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done")
    positions = bot.run(bot.session.positions())
    assert [(p.symbol, p.volume) for p in positions] == [("GBPUSD", 0.2)]
    assert journaled(bot) == 1


def test_the_idempotency_key_holds_even_if_the_confirmation_is_replayed(bot: BotRun) -> None:
    """Below the state machine: the confirmation's key makes the journal answer a repeat with
    the first outcome (as after a restart that forgot the confirmation)."""
    shown = bot.ask("/buy EURUSD 0.05", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_answer(query)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done")
    item = next(iter(bot.bot.confirmations._items.values()))
    repeat = bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.05),
                                             idempotency_key=item.idempotency_key))  # fmt: skip
    (order,) = bot.session.journal.summaries(bot.session.pipeline.login)
    assert repeat.client_id == order.client_id.sequence
    assert len(bot.run(bot.session.positions())) == 1
    assert journaled(bot) == 1


def test_cancel_sends_nothing_and_later_presses_change_nothing(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, shown.button("Cancel"), user_id=TRADER)
    assert "Cancelled" in bot.fake.wait_answer(query)["text"]
    edited = bot.fake.wait_edit(TRADER, shown.message_id, contains="Cancelled")
    assert edited.reply_markup is None
    late = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER, force=True)
    assert "Already cancelled" in bot.fake.wait_answer(late)["text"]
    assert bot.run(bot.session.positions()) == []
    assert journaled(bot) == 0


def test_a_confirmation_expires_on_time_and_a_late_press_sends_nothing(
    make_bot: Callable[..., BotRun],
) -> None:
    bot = make_bot(confirm_ttl_s=0.6)
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Expires in 1 s")
    expired = bot.fake.wait_edit(TRADER, shown.message_id, contains="Expired", timeout=5)
    assert "nothing was sent" in expired.text
    assert expired.reply_markup is None
    late = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER, force=True)
    assert "Expired" in bot.fake.wait_answer(late)["text"]
    assert bot.run(bot.session.positions()) == []
    assert journaled(bot) == 0


def test_a_press_past_the_deadline_expires_even_before_the_timer(
    make_bot: Callable[..., BotRun],
) -> None:
    bot = make_bot(confirm_ttl_s=30)
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    item = next(iter(bot.bot.confirmations._items.values()))
    item.expires_at = time.monotonic() - 1  # as if the 30 s had passed and the timer lagged
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    assert "Expired" in bot.fake.wait_answer(query)["text"]
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Expired")
    assert bot.run(bot.session.positions()) == []


def test_only_the_member_who_asked_can_confirm(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=ADMIN,
                           chat_id=TRADER)  # fmt: skip
    answer = bot.fake.wait_answer(query)
    assert "Only the member who asked" in answer["text"]
    assert answer.get("show_alert") is True
    assert bot.run(bot.session.positions()) == []
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_answer(query)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done")
    assert len(bot.run(bot.session.positions())) == 1


def test_an_unknown_confirmation_is_refused(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, "confirm:not-a-real-id", user_id=TRADER, force=True)
    assert "no longer known" in bot.fake.wait_answer(query)["text"]
    query = bot.fake.press(shown.message_id, "launch:missiles", user_id=TRADER, force=True)
    assert bot.fake.wait_answer(query)["text"] == "Unknown button."
    assert bot.run(bot.session.positions()) == []


def test_close_shows_the_position_then_closes_all_or_part(bot: BotRun) -> None:
    opened = bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.3)))
    ticket = opened.order
    shown = bot.ask(f"/close {ticket} 0.1", TRADER, "Confirm close")
    assert f"Close position {ticket}: buy 0.30 EURUSD" in shown.text
    assert "Closing 0.10 of 0.30" in shown.text
    assert "(bid now)" in shown.text
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_answer(query)
    done = bot.fake.wait_edit(TRADER, shown.message_id, contains="Done")
    assert f"closed 0.10 of position {ticket}" in done.text
    assert [p.volume for p in bot.run(bot.session.positions())] == [pytest.approx(0.2)]

    shown = bot.ask(f"/close #{ticket}", TRADER, "Confirm close")
    assert "Closing all" in shown.text
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_answer(query)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done")
    assert bot.run(bot.session.positions()) == []


def test_close_refuses_an_unknown_ticket_and_too_much_volume(bot: BotRun) -> None:
    answer = bot.ask("/close 424242", TRADER).text
    assert "Not found" in answer
    assert "no open position 424242" in answer
    assert "/positions" in answer
    opened = bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.1)))
    answer = bot.ask(f"/close {opened.order} 0.5", TRADER).text
    assert "more than the position's 0.1" in answer
    assert "Usage: /close" in answer


def test_an_unknown_symbol_gets_the_chat_s_hint_not_the_session_s(bot: BotRun) -> None:
    answer = bot.ask("/buy EURUSDX 0.1", TRADER).text
    assert "EURUSDX" in answer
    assert "did you mean" in answer
    assert "Market Watch" in answer
    assert "session." not in answer  # the library's Python hint is not for a chat user
    assert bot.run(bot.session.positions()) == []


def test_a_rejected_order_is_explained_in_plain_words(bot: BotRun) -> None:
    answer = bot.ask("/buy EURUSD 99", TRADER)  # the margin is ten times the free margin
    assert "Order rejected" in answer.text
    assert "10019 “No money”" in answer.text
    assert "What to do: Free margin is too low" in answer.text
    assert answer.reply_markup is None
    answer = bot.ask("/buy EURUSD 1000", TRADER).text
    assert "Invalid request" in answer
    assert "within 0.01..100.0 lots" in answer
    answer = bot.ask("/buy EURUSD 0.1234567", TRADER).text
    assert "Invalid request" in answer
    assert "volume" in answer
    assert bot.run(bot.session.positions()) == []


def test_halt_refuses_confirmed_orders_until_resume(bot: BotRun) -> None:
    halted = bot.ask("/halt news at 14:30", ADMIN).text
    assert "halted" in halted
    assert bot.session.risk.halted
    assert "news at 14:30" in (bot.session.risk.halt_reason or "")
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_answer(query)
    refused = bot.fake.wait_edit(TRADER, shown.message_id, contains="Trading is halted")
    assert "What to do:" in refused.text
    assert bot.run(bot.session.positions()) == []
    assert "resumed" in bot.ask("/resume", ADMIN).text
    assert not bot.session.risk.halted
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_answer(query)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done")
    assert len(bot.run(bot.session.positions())) == 1


def test_a_viewer_cannot_confirm_even_with_the_button_data(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    query = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=VIEWER,
                           chat_id=TRADER)  # fmt: skip
    assert "Only the member who asked" in bot.fake.wait_answer(query)["text"]
    assert bot.run(bot.session.positions()) == []
