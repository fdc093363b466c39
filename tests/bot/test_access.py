"""Issue 20, item 3: the access gate decides before it replies, and holds whatever becomes of
the reply. A stranger whose refusal Telegram does not take (429, 400, 403, a network error) gets
nothing more: no handler runs, no order, no halt. The same holds in a real ``mt5gate bot``
process under ``python -O`` (no ``assert`` does access control)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bot.conftest import ADMIN, STRANGER, TOKEN, BotRun
from tests.bot.fake_telegram import BOT_BLOCKED, FakeTelegram
from tests.bot.test_process import bot_env, start_bot

FAILURES = {
    "429": (429, "Too Many Requests: retry after 1", 1),
    "400": (400, "Bad Request: chat not found", None),
    "403": (403, BOT_BLOCKED, None),
}


def fail_refusal(fake: FakeTelegram, how: str) -> None:
    if how == "network":
        fake.drop_next("sendMessage")
    else:
        code, description, retry_after = FAILURES[how]
        fake.fail_next("sendMessage", code, description, retry_after, times=10)


@pytest.mark.parametrize("how", [*FAILURES, "network"])
def test_a_stranger_whose_refusal_fails_gets_nothing_else(bot: BotRun, how: str) -> None:
    fail_refusal(bot.fake, how)
    mark = bot.fake.mark()
    bot.fake.send_text("hello there", user_id=STRANGER)
    bot.fake.wait_call("sendMessage", since=mark)  # the refusal, failed
    bot.fake.send_text("/halt now", user_id=STRANGER)
    bot.fake.send_text("/nonsense", user_id=STRANGER)
    replies = [c for c in bot.fake.calls_to(STRANGER, since=mark) if c.ok]
    bot.fake.no_call("sendMessage", chat_id=STRANGER, within_s=1.0)
    bot.fake.clear_failures()
    assert all("not on its list" in (c.params.get("text") or "") for c in replies), replies
    assert not bot.session.risk.halted
    assert "Confirm order" in bot.ask("/buy EURUSD 0.1", ADMIN).text


def test_the_gate_holds_in_a_real_process_under_python_O(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    started = start_bot(bot_env(fake, tmp_path), tmp_path, python=[sys.executable, "-O"])
    try:
        fake.wait_call("getUpdates", timeout=60)
        fake.fail_next("sendMessage", 403, BOT_BLOCKED)
        mark = fake.mark()
        fake.send_text("secret words 4242", user_id=STRANGER)
        fake.wait_call("sendMessage", since=mark)
        fake.send_text("/halt", user_id=STRANGER)
        fake.send_text("/help", user_id=STRANGER)
        fake.no_call("sendMessage", chat_id=STRANGER, within_s=1.5)
        fake.send_text("/buy EURUSD 0.1", user_id=ADMIN)
        shown = fake.wait_message(ADMIN, "Confirm order", since=mark, timeout=30)
        assert "halted" not in shown.text
    finally:
        code, output = started.stop()
    assert code == 0, output
    assert f"refused a message from user {STRANGER}" in output
    flags = subprocess.run([sys.executable, "-O", "-c", "import sys; print(sys.flags.optimize)"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert flags.stdout.strip() == "1"
    assert TOKEN not in output
