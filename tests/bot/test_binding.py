"""Issue 20, item 1: a confirmation binds the exact action shown. A close sends the volume it
showed, and is refused and previewed again when its position changed; stops are rounded to the
symbol's digits, shown so and sent so. Against the simulator's netting account (5002), where
another client's buy adds to the same position."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mt5gate.models import OrderRequest, Side
from tests.bot.conftest import TRADER, BotRun

NETTING = 5002


def test_a_close_confirmed_after_the_position_grew_sends_nothing_and_shows_it_again(
    make_bot: Callable[..., BotRun],
) -> None:
    bot = make_bot(login=NETTING)
    bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01)))
    (position,) = bot.run(bot.session.positions())
    shown = bot.ask(f"/close {position.ticket}", TRADER, "Confirm close")
    assert "buy 0.01 EURUSD" in shown.text
    assert "Closing all" in shown.text

    bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.04)))  # another client
    (grown,) = bot.run(bot.session.positions())
    assert (grown.ticket, grown.volume) == (position.ticket, pytest.approx(0.05))

    mark = bot.fake.mark()
    bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    refused = bot.fake.wait_edit(TRADER, shown.message_id, contains="changed", since=mark)
    assert "nothing was sent" in refused.text
    assert refused.reply_markup is None
    again = bot.fake.wait_message(TRADER, "Confirm close", since=mark)
    assert "buy 0.05 EURUSD" in again.text
    assert [p.volume for p in bot.run(bot.session.positions())] == [pytest.approx(0.05)]

    mark = bot.fake.mark()
    bot.fake.press(again.message_id, again.button("Confirm"), user_id=TRADER)
    done = bot.fake.wait_edit(TRADER, again.message_id, contains="Done", since=mark)
    assert f"closed 0.05 of position {position.ticket}" in done.text
    assert bot.run(bot.session.positions()) == []


def test_a_partial_close_sends_the_volume_shown(make_bot: Callable[..., BotRun]) -> None:
    bot = make_bot(login=NETTING)
    bot.run(bot.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.3)))
    (position,) = bot.run(bot.session.positions())
    shown = bot.ask(f"/close {position.ticket} 0.1", TRADER, "Confirm close")
    assert "Closing 0.10 of 0.30" in shown.text
    mark = bot.fake.mark()
    bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done", since=mark)
    assert [p.volume for p in bot.run(bot.session.positions())] == [pytest.approx(0.2)]


def test_stops_are_rounded_to_the_symbols_digits_shown_and_sent_alike(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1 sl=0.9000012345 tp=1.500004999", TRADER, "Confirm order")
    assert "SL 0.90000 · TP 1.50000" in shown.text
    mark = bot.fake.mark()
    bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done", since=mark)
    (position,) = bot.run(bot.session.positions())
    assert (position.sl, position.tp) == (0.9, 1.5)
