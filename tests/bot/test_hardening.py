"""Issue 20, item 5: forwarded commands are quotes, commands answer only in allowed chats, a
group that is not allowed is refused once, volumes are ASCII numbers, "/x@otherbot" is not
ours, and python-telegram-bot's records never carry what was written, even at DEBUG."""

from __future__ import annotations

import logging

import pytest

from mt5gate.bot.commands import UsageError, parse_order
from mt5gate.models import Side
from tests.bot.conftest import ADMIN, GROUP, STRANGER, TRADER, BotRun

OTHER_GROUP = -777


def test_a_forwarded_halt_does_not_halt(bot: BotRun) -> None:
    mark = bot.fake.mark()
    bot.fake.send_text("/halt", user_id=ADMIN, forwarded_from=TRADER)
    bot.fake.send_text("/halt", user_id=ADMIN, chat_id=GROUP, forwarded_from=TRADER)
    bot.ask("/price EURUSD", ADMIN, "Prices")  # handled after the forwards
    assert not bot.session.risk.halted
    texts = [str(c.params.get("text")) for c in bot.fake.calls_to(ADMIN, since=mark)]
    assert not any("halted" in text for text in texts)


def test_commands_answer_only_in_allowed_chats_and_a_group_is_refused_once(
    bot: BotRun,
) -> None:
    mark = bot.fake.mark()
    bot.fake.send_text("/account", user_id=ADMIN, chat_id=OTHER_GROUP)
    refusal = bot.fake.wait_message(OTHER_GROUP, "only in the chats on its list", since=mark)
    assert str(OTHER_GROUP) in refusal.text
    for member in range(5000, 5020):  # a crowd of strangers
        bot.fake.send_text("/price EURUSD", user_id=member, chat_id=OTHER_GROUP)
    bot.fake.send_text("/account", user_id=ADMIN, chat_id=OTHER_GROUP)
    bot.fake.no_call("sendMessage", chat_id=OTHER_GROUP, within_s=1.0)
    assert len(bot.fake.calls_to(OTHER_GROUP, since=mark)) == 1
    assert "Balance" in bot.ask("/account", ADMIN).text  # in private it answers


def test_commands_for_another_bot_are_ignored(bot: BotRun) -> None:
    mark = bot.say("/x@otherbot", ADMIN, GROUP)
    bot.say("/price@otherbot EURUSD", ADMIN, GROUP)
    assert "Unknown command" in bot.ask("/x@mt5gate_test_bot", ADMIN, chat_id=GROUP).text
    texts = [str(c.params.get("text")) for c in bot.fake.calls_to(GROUP, since=mark)]
    assert sum("Unknown command" in text for text in texts) == 1
    assert not any("Prices" in text for text in texts)


@pytest.mark.parametrize("volume", ["1_0", "\u0661", "1e1", "0x1", "\uff11", "1.0.0", "+1", " 1"])
def test_volumes_are_ascii_digits_with_one_point(volume: str) -> None:
    with pytest.raises(UsageError, match="must be a number"):
        parse_order(Side.BUY, ["EURUSD", volume])
    assert parse_order(Side.BUY, ["EURUSD", "0,5"]).volume == 0.5
    assert parse_order(Side.BUY, ["EURUSD", ".5"]).volume == 0.5


def test_message_texts_never_reach_the_logs_even_at_debug(
    bot: BotRun, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot.ask("/price EURUSD lilac-7731", TRADER)
    bot.ask("/account", ADMIN)
    bot.fake.send_text("private words zebra-4242", user_id=STRANGER)
    bot.fake.wait_message(STRANGER, "not on its list")
    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    assert "Calling Bot API endpoint `sendMessage`" in logged  # PTB did log, at DEBUG
    for secret in ("lilac-7731", "zebra-4242", "10,000.00", "Balance"):
        assert secret not in logged
