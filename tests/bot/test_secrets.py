"""The bot token never reaches a log, an error, a repr or the bot's state file, even with every
logger at DEBUG (httpx logs each request URL, and the URL holds the token)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from telegram.error import InvalidToken

from mt5gate.bot import TelegramBot
from tests.bot.conftest import ADMIN, TOKEN, BotRun, bot_settings
from tests.bot.fake_telegram import FakeTelegram


class Everything(logging.Handler):
    """Keeps every record, rendered, with no filter of its own."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {self.format(record)}")


@pytest.fixture
def everything() -> Callable[[], list[str]]:
    handler = Everything()
    root = logging.getLogger()
    old_level, old_httpx = root.level, logging.getLogger("httpx").level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    yield lambda: handler.lines
    root.removeHandler(handler)
    root.setLevel(old_level)
    logging.getLogger("httpx").setLevel(old_httpx)


def test_the_token_is_masked_in_every_log_line(
    make_bot: Callable[..., BotRun], everything: Callable[[], list[str]]
) -> None:
    bot = make_bot()
    bot.ask("/price EURUSD", ADMIN, "EURUSD")
    bot.ask("/buy EURUSD 0.1", ADMIN, "Confirm order")
    bot.ask("/alerts on", ADMIN, "are on")
    bot.stop()
    lines = everything()
    requests = [line for line in lines if line.startswith("httpx:") and "getUpdates" in line]
    assert requests, "httpx logged no request: the test would prove nothing"
    assert all("/bot**********/getUpdates" in line for line in requests)
    leaked = [line for line in lines if TOKEN in line or TOKEN.split(":")[1] in line]
    assert leaked == []
    assert TOKEN not in repr(bot.bot)
    assert "TelegramBot" in repr(bot.bot)
    assert TOKEN not in (bot.settings.data_dir / "bot-state.json").read_text()


def test_a_rejected_token_raises_without_the_token(
    fake: FakeTelegram, tmp_path: Path, everything: Callable[[], list[str]]
) -> None:
    wrong = "7000001:AAH-another-wrong-token-xyz"
    from mt5gate.service.config import default_settings
    from mt5gate.service.gateway import Gateway

    gateway = Gateway.build(default_settings().model_copy(update={"data_dir": tmp_path}), {})
    bot = TelegramBot(gateway.accounts, bot_settings(fake), SecretStr(wrong),
                      state_path=tmp_path / "bot-state.json")  # fmt: skip

    async def start() -> None:
        try:
            await bot.start()
        finally:
            await bot.stop()

    with pytest.raises(InvalidToken) as raised:
        asyncio.run(start())
    assert "rejected" in str(raised.value)
    assert wrong not in str(raised.value)
    assert not [line for line in everything() if wrong in line or wrong.split(":")[1] in line]


def test_the_bot_needs_an_account_that_exists(fake: FakeTelegram, tmp_path: Path) -> None:
    from mt5gate.service.config import default_settings
    from mt5gate.service.gateway import Gateway

    gateway = Gateway.build(default_settings().model_copy(update={"data_dir": tmp_path}), {})
    with pytest.raises(ValueError, match="at least one account"):
        TelegramBot({}, bot_settings(fake), SecretStr(TOKEN), state_path=tmp_path / "s.json")
    with pytest.raises(ValueError, match="'live' is not a configured account"):
        TelegramBot(gateway.accounts, bot_settings(fake, account="live"), SecretStr(TOKEN),
                    state_path=tmp_path / "s.json")  # fmt: skip


def test_serve_runs_on_without_a_bot_telegram_refuses(
    fake: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside the service the bot is a companion: when it cannot start, the accounts still
    serve and the log says why, without the token."""
    from mt5gate.service.config import default_settings
    from mt5gate.service.gateway import Gateway

    wrong = "7000001:AAH-yet-another-wrong-token"
    gateway = Gateway.build(default_settings().model_copy(update={"data_dir": tmp_path}), {})
    companion = TelegramBot(gateway.accounts, bot_settings(fake), SecretStr(wrong),
                            state_path=tmp_path / "s.json")  # fmt: skip
    gateway.companions.append(companion)

    async def serve() -> bool:
        await gateway.start()
        try:
            await asyncio.wait_for(gateway.accounts["demo"].connect_task, 30)  # type: ignore[arg-type]
            return gateway.accounts["demo"].session.state == "connected"
        finally:
            await gateway.stop()

    with caplog.at_level(logging.ERROR, logger="mt5gate.service"):
        assert asyncio.run(serve())
    failed = [r.getMessage() for r in caplog.records if "could not start" in r.getMessage()]
    assert failed
    assert "InvalidToken" in failed[0]
    assert "running without it" in failed[0]
    assert wrong not in failed[0]
    assert wrong.split(":")[1] not in failed[0]
