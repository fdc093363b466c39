"""Issue 20, item 2: a confirmed order is sent whatever Telegram does around it, the member
always learns the outcome, and a confirmation whose message may not have arrived still expires.
Failures are injected by the fake Bot API: "query is too old" on the press's answer, a cut
connection (a network error) or a 502 on the edits, a reply to sendMessage that is lost."""

from __future__ import annotations

import time
from collections.abc import Callable

from mt5gate.bot.confirm import ConfirmState
from tests.bot.conftest import TRADER, BotRun
from tests.bot.fake_telegram import QUERY_INVALID, FakeMessage


def confirm(bot: BotRun, text: str) -> tuple[int, int]:
    """Ask for ``text``, press Confirm; the confirmation's message id and the mark before."""
    shown = bot.ask(text, TRADER, "Confirm")
    mark = bot.fake.mark()
    bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    return shown.message_id, mark


def test_a_press_whose_answer_fails_still_sends_the_order_and_shows_it(bot: BotRun) -> None:
    bot.fake.fail_next("answerCallbackQuery", 400, QUERY_INVALID)
    message_id, mark = confirm(bot, "/buy EURUSD 0.1")
    done = bot.fake.wait_edit(TRADER, message_id, contains="Done", since=mark)
    assert done.reply_markup is None
    assert [p.volume for p in bot.run(bot.session.positions())] == [0.1]
    again = bot.fake.press(message_id, "confirm:" + done_id(bot), user_id=TRADER, force=True)
    assert "Already done" in bot.fake.wait_answer(again)["text"]


def done_id(bot: BotRun) -> str:
    (item,) = bot.bot.confirmations._items.values()
    return item.id


def test_an_edit_lost_to_the_network_does_not_stop_the_order(bot: BotRun) -> None:
    bot.fake.drop_next("editMessageText")  # the "Sending…" edit
    message_id, mark = confirm(bot, "/sell EURUSD 0.2")
    done = bot.fake.wait_edit(TRADER, message_id, contains="Done", since=mark)
    assert "Expires" not in done.text
    assert [p.volume for p in bot.run(bot.session.positions())] == [0.2]


def test_when_no_edit_goes_through_the_outcome_comes_as_a_new_message(bot: BotRun) -> None:
    bot.fake.fail_next("editMessageText", 502, "Bad Gateway", times=2)
    message_id, mark = confirm(bot, "/buy EURUSD 0.1")
    told = bot.fake.wait_message(TRADER, "Done", since=mark)
    assert told.message_id != message_id
    assert "BUY 0.10 EURUSD" in told.text
    assert len(bot.run(bot.session.positions())) == 1


def test_a_confirmation_whose_message_may_be_lost_still_expires(
    make_bot: Callable[..., BotRun],
) -> None:
    bot = make_bot(confirm_ttl_s=0.5)
    mark = bot.fake.mark()
    bot.fake.drop_next("sendMessage", processed=True)  # shown, but the bot never hears so
    bot.fake.send_text("/buy EURUSD 0.1", user_id=TRADER)
    bot.fake.wait_call("sendMessage", since=mark)
    deadline = time.monotonic() + 10
    while state(bot) is not ConfirmState.EXPIRED:
        assert time.monotonic() < deadline, f"still {state(bot)}"
        time.sleep(0.05)
    shown = shown_despite(bot)
    late = bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    assert "Expired" in bot.fake.wait_answer(late)["text"]
    assert bot.run(bot.session.positions()) == []


def shown_despite(bot: BotRun) -> FakeMessage:
    """The confirmation the member sees although the bot's sendMessage got no answer."""
    (shown,) = [m for m in bot.fake.messages(TRADER) if "Confirm order" in m.text]
    return shown


def state(bot: BotRun) -> ConfirmState | None:
    items = bot.call(lambda: list(bot.bot.confirmations._items.values()))
    return items[0].state if items else None


def test_a_confirmation_shown_despite_a_lost_reply_can_be_confirmed(bot: BotRun) -> None:
    mark = bot.fake.mark()
    bot.fake.drop_next("sendMessage", processed=True)
    bot.fake.send_text("/buy EURUSD 0.1", user_id=TRADER)
    bot.fake.wait_call("sendMessage", since=mark)
    shown = shown_despite(bot)
    mark = bot.fake.mark()
    bot.fake.press(shown.message_id, shown.button("Confirm"), user_id=TRADER)
    bot.fake.wait_edit(TRADER, shown.message_id, contains="Done", since=mark)
    assert len(bot.run(bot.session.positions())) == 1
