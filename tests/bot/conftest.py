"""The bot under test: a real Gateway (simulated demo account) and a real ``TelegramBot`` on
their own event loop thread, talking real HTTP to :class:`FakeTelegram` on loopback. The demo
account's simulator starts on a weekday morning (``open_market_terminal``): the bot trades forex
on any day.

Tests act as Telegram users through the fake (``send_text``, ``press``) and read what the bot
wrote there; ``BotRun.run`` runs a coroutine on the bot's loop (to read the session, or to
place an order as another client would), ``BotRun.terminal`` is the simulated terminal.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from mt5gate.bot import BotSettings, TelegramBot
from mt5gate.bot.settings import AlertPolicy, BotMember, Limits, Role
from mt5gate.service.config import ServiceSettings, default_settings
from mt5gate.service.gateway import AccountRuntime, Gateway
from mt5gate.session.manager import MT5SessionManager
from mt5gate.sim.terminal import SimTerminal
from tests.bot.fake_telegram import FakeTelegram
from tests.service.conftest import open_market_terminal

T = TypeVar("T")

TOKEN = "7000001:AAH-test-token-do-not-leak-0123456789"
ADMIN, TRADER, VIEWER, STRANGER = 100, 200, 300, 999
GROUP = -500  # a group chat whose members are all viewers


def bot_settings(fake: FakeTelegram, **changes: Any) -> BotSettings:
    """Allowed: an admin, a trader, a viewer and a viewers' group; fast alert polling."""
    settings = BotSettings(
        api_url=fake.base_url,
        users=(BotMember(id=ADMIN, role=Role.ADMIN, name="ann"),
               BotMember(id=TRADER, role=Role.TRADER), BotMember(id=VIEWER, role=Role.VIEWER)),
        chats=(BotMember(id=GROUP, role=Role.VIEWER),),
        alerts=AlertPolicy(poll_s=0.1, events_s=0.1, per_minute=600, burst=50, dedupe_s=300),
        limits=Limits(per_minute=6000, burst=1000, pending=50),  # tests of limits set theirs
    )  # fmt: skip
    # model_copy does not validate: tests may use a confirmation ttl under the 5 s minimum.
    return settings.model_copy(update=changes)


class BotRun:
    """A running gateway and bot (see the module docstring)."""

    def __init__(
        self, fake: FakeTelegram, data_dir: Path, settings: BotSettings, login: int = 5001
    ) -> None:
        self.fake = fake
        base = default_settings()
        demo = base.accounts[0].model_copy(
            update={"login": login, "password_value": SecretStr(f"sim-pass-{login}")}
        )  # the simulator's demo accounts: 5001 hedging, 5002 netting
        self.settings = base.model_copy(
            update={"data_dir": data_dir, "bot": settings, "accounts": (demo,)}
        )
        self.loop = asyncio.new_event_loop()
        self.gateway = Gateway.build(self.settings, {}, terminal_for=open_market_terminal)
        self.bot = TelegramBot(self.gateway.accounts, settings, SecretStr(TOKEN),
                               state_path=data_dir / "bot-state.json",
                               poll_timeout_s=1)  # fmt: skip
        self._thread = threading.Thread(target=self.loop.run_forever, name="bot-loop", daemon=True)

    @property
    def account(self) -> AccountRuntime:
        return self.gateway.accounts["demo"]

    @property
    def session(self) -> MT5SessionManager:
        return self.account.session

    @property
    def terminal(self) -> SimTerminal:
        terminal = self.session.terminal
        assert isinstance(terminal, SimTerminal)
        return terminal

    def start(self) -> BotRun:
        self._thread.start()
        self.run(self.gateway.start())
        deadline = time.monotonic() + 30
        while not self.account.ready:
            assert time.monotonic() < deadline, "the demo account never became ready"
            time.sleep(0.02)
        self.run(self.bot.start())
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.run(self.bot.stop())
            self.run(self.gateway.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

    def run(self, job: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``job`` on the bot's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the bot's loop (for loop-bound objects)."""

        async def job() -> T:
            return function()

        return self.run(job())

    def say(self, text: str, user_id: int, chat_id: int | None = None) -> int:
        """``user_id`` writes ``text``; returns the fake's mark from just before."""
        mark = self.fake.mark()
        self.fake.send_text(text, user_id=user_id, chat_id=chat_id)
        return mark

    def ask(self, text: str, user_id: int, contains: str | None = None, chat_id: int | None = None):
        """Say ``text`` and return the bot's next message to that chat."""
        mark = self.say(text, user_id, chat_id)
        return self.fake.wait_message(user_id if chat_id is None else chat_id, contains, since=mark)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_bot(fake: FakeTelegram, tmp_path: Path) -> Iterator[Callable[..., BotRun]]:
    """``make_bot(login=5001, **bot_settings_changes)``: a started BotRun on the simulator's
    account ``login``, stopped after the test."""
    runs: list[BotRun] = []

    def make(login: int = 5001, **changes: Any) -> BotRun:
        run = BotRun(fake, tmp_path, bot_settings(fake, **changes), login)
        runs.append(run)
        return run.start()

    yield make
    for run in runs:
        run.stop()


@pytest.fixture
def bot(make_bot: Callable[..., BotRun]) -> BotRun:
    return make_bot()


def service_settings(data_dir: Path, fake: FakeTelegram) -> ServiceSettings:
    return default_settings().model_copy(update={"data_dir": data_dir, "bot": bot_settings(fake)})
