"""``mt5gate bot`` and ``mt5gate serve --bot`` as real processes, polling the fake Bot API on
loopback: they answer, share the service's sessions, refuse bad set-ups with one clear line, and
never write the token anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.bot.conftest import ADMIN, TOKEN, VIEWER
from tests.bot.fake_telegram import FakeTelegram
from tests.service.conftest import OPEN_MARKET, start_service, terminate


def bot_env(fake: FakeTelegram, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT5GATE_")}
    # MT5GATE_SIM_START: the simulated clock starts on a weekday morning, so that the bot's
    # EURUSD orders meet an open market on any day.
    env.update(MT5GATE_BOT_TOKEN=TOKEN, MT5GATE_BOT_API_URL=fake.base_url,
               MT5GATE_BOT_USERS=f"{ADMIN}:admin,{VIEWER}:viewer",
               MT5GATE_DATA_DIR=str(data_dir), MT5GATE_LOG_LEVEL="DEBUG",
               MT5GATE_SIM_START=OPEN_MARKET)  # fmt: skip
    env.update(extra)
    return env


@dataclass
class BotProcess:
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> tuple[int, str]:
        return terminate(self.process), self.output()


def start_bot(
    env: dict[str, str], data_dir: Path, *args: str, python: list[str] | None = None
) -> BotProcess:
    """``mt5gate bot`` as a process (``python``: the interpreter and its flags, e.g. ``-O``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "bot.log"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [*(python or [sys.executable]), "-m", "mt5gate.cli", "bot", *args],
            stdin=subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    return BotProcess(process, log)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    server.start()
    yield server
    server.stop()


def test_mt5gate_bot_answers_confirms_and_stops_cleanly(fake: FakeTelegram, tmp_path: Path) -> None:
    started = start_bot(bot_env(fake, tmp_path), tmp_path)
    try:
        fake.wait_call("getUpdates", timeout=60)
        fake.send_text("/price EURUSD", user_id=VIEWER)
        answer = fake.wait_message(VIEWER, "EURUSD", timeout=30)
        assert "SIMULATED" in answer.text
        shown = fake.wait_message(ADMIN, "Confirm order", since=_say(fake, "/buy EURUSD 0.1"))
        mark = fake.mark()
        fake.press(shown.message_id, shown.button("Confirm"), user_id=ADMIN)
        fake.wait_edit(ADMIN, shown.message_id, contains="Done", since=mark)
        listed = fake.wait_message(ADMIN, "TICKET", since=_say(fake, "/positions")).text
        assert "EURUSD buy  0.10" in listed
    finally:
        code, output = started.stop()
    assert code == 0, output
    assert "SIMULATED" in output
    assert "polling Telegram" in output
    assert "2 user(s) and 0 chat(s) allowed" in output
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output
    assert "Calling Bot API endpoint `getUpdates`" in output  # it logged at DEBUG, masked
    # only the token is masked, never ordinary "key: value" text such as a health reason
    assert "session:state: the session is connecting" in output
    assert "session:**********" not in output


def _say(fake: FakeTelegram, text: str) -> int:
    mark = fake.mark()
    fake.send_text(text, user_id=ADMIN)
    return mark


def test_serve_with_the_bot_shares_the_sessions(fake: FakeTelegram, tmp_path: Path) -> None:
    served = start_service(tmp_path / "data", "--bot", env=bot_env(fake, tmp_path / "data"))
    try:
        fake.wait_call("getUpdates", timeout=60)
        with served.client(headers={"Idempotency-Key": "http-1"}) as client:
            placed = client.post("/v1/accounts/demo/orders",
                                 json={"symbol": "EURUSD", "side": "buy",
                                       "volume": 0.2})  # fmt: skip
            assert placed.status_code == 201, placed.text
            ticket = placed.json()["order"]
        listed = fake.wait_message(ADMIN, str(ticket), since=_say(fake, "/positions"))
        assert "0.20" in listed.text
        shown = fake.wait_message(ADMIN, "Confirm close", since=_say(fake, f"/close {ticket}"))
        mark = fake.mark()
        fake.press(shown.message_id, shown.button("Confirm"), user_id=ADMIN)
        fake.wait_edit(ADMIN, shown.message_id, contains="Done", since=mark)
        with served.client() as client:
            assert client.get("/v1/accounts/demo/positions").json() == []
    finally:
        _code, output = served.stop()
    assert "Telegram bot: 2 user(s)" in output
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output


def test_a_missing_token_is_one_clear_line(tmp_path: Path, fake: FakeTelegram) -> None:
    env = bot_env(fake, tmp_path)
    del env["MT5GATE_BOT_TOKEN"]
    done = subprocess.run([sys.executable, "-m", "mt5gate.cli", "bot"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "the token is missing: set MT5GATE_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_rejected_token_is_reported_without_the_token(tmp_path: Path) -> None:
    wrong = "7000001:AAH-a-wrong-token-that-must-not-show"
    fake = FakeTelegram(TOKEN)  # knows only the right token: the wrong one gets 401
    fake.start()
    try:
        env = bot_env(fake, tmp_path, MT5GATE_BOT_TOKEN=wrong)
        done = subprocess.run([sys.executable, "-m", "mt5gate.cli", "bot"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    finally:
        fake.stop()
    assert done.returncode == 2, done.stderr
    assert "Telegram refused to start" in done.stderr
    assert "rejected" in done.stderr
    assert wrong not in done.stderr + done.stdout
    assert wrong.split(":")[1] not in done.stderr + done.stdout


def test_a_bad_bot_setting_names_the_variable(tmp_path: Path, fake: FakeTelegram) -> None:
    env = bot_env(fake, tmp_path, MT5GATE_BOT_USERS="me:admin")
    done = subprocess.run([sys.executable, "-m", "mt5gate.cli", "bot"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "MT5GATE_BOT_USERS: 'me:admin' is not USER_ID:ROLE" in done.stderr


def test_serve_without_bot_does_not_poll_telegram(fake: FakeTelegram, tmp_path: Path) -> None:
    served = start_service(tmp_path / "data", env=bot_env(fake, tmp_path / "data"))
    try:
        assert httpx.get(served.base + "/livez", timeout=5).status_code == 200
        time.sleep(0.5)
        assert fake.calls == []
    finally:
        served.stop()
