"""Issue 20, item 4: inbound limits. A member's flood gets as many answers as their token
bucket holds and one notice; a member may have only so many confirmations waiting; a reply
Telegram refuses with 429 is sent again after its ``retry_after``."""

from __future__ import annotations

from collections.abc import Callable

from mt5gate.bot.settings import Limits
from tests.bot.conftest import TRADER, VIEWER, BotRun
from tests.bot.fake_telegram import ApiCall

TOO_MANY = "Too Many Requests: retry after 1"


def test_a_flood_of_commands_gets_the_burst_and_one_notice(make_bot: Callable[..., BotRun]) -> None:
    bot = make_bot(limits=Limits(per_minute=1, burst=3))
    mark = bot.fake.mark()
    for _ in range(20):
        bot.fake.send_text("/price EURUSD", user_id=VIEWER)
    bot.fake.wait_message(VIEWER, "Too many requests", since=mark)
    since = mark
    for _ in range(3):  # the burst's answers (they may come after the notice: slower to make)
        since = bot.fake.wait_call("sendMessage", predicate=is_prices, since=since).at_index + 1
    bot.fake.no_call("sendMessage", chat_id=VIEWER, within_s=1.0)
    texts = [c.params["text"] for c in bot.fake.calls_to(VIEWER, since=mark)]
    assert sum("Prices" in text for text in texts) == 3
    assert sum("Too many requests" in text for text in texts) == 1
    assert "Prices" in bot.ask("/price EURUSD", TRADER).text  # others are not held back


def is_prices(call: ApiCall) -> bool:
    return call.chat_id == VIEWER and "Prices" in str(call.params.get("text"))


def test_confirmations_waiting_are_capped_per_member(make_bot: Callable[..., BotRun]) -> None:
    bot = make_bot(limits=Limits(pending=2, burst=50))
    for _ in range(2):
        bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    refused = bot.ask("/buy EURUSD 0.1", TRADER)
    assert "2 orders waiting for your confirmation" in refused.text
    assert refused.reply_markup is None
    assert "confirm or cancel" in bot.ask("/close 1", TRADER).text
    waiting = bot.call(lambda: len(bot.bot.confirmations._items))
    assert waiting == 2
    first = bot.fake.messages(TRADER)[0]
    query = bot.fake.press(first.message_id, first.button("Cancel"), user_id=TRADER)
    bot.fake.wait_answer(query)
    assert "Confirm order" in bot.ask("/buy EURUSD 0.1", TRADER).text


def test_a_reply_refused_with_429_is_sent_after_retry_after(bot: BotRun) -> None:
    bot.fake.fail_next("sendMessage", 429, TOO_MANY, retry_after=1)
    mark = bot.fake.mark()
    answer = bot.ask("/price EURUSD", VIEWER, "Prices")
    assert answer.text.startswith("Prices")
    statuses = [c.status for c in bot.fake.calls_to(VIEWER, since=mark)]
    assert statuses == [429, 200]


def test_an_edit_refused_with_429_is_made_after_retry_after(bot: BotRun) -> None:
    shown = bot.ask("/buy EURUSD 0.1", TRADER, "Confirm order")
    bot.fake.fail_next("editMessageText", 429, TOO_MANY, retry_after=1, times=2)
    mark = bot.fake.mark()
    bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done", since=mark)
    edits = [c.status for c in bot.fake.calls_to(TRADER, since=mark)]
    assert edits[:2] == [429, 429]
