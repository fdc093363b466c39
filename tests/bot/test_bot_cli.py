"""``mt5gate bot``'s main() in this process (so coverage sees it): it starts the gateway and
the bot, answers, and stops on SIGTERM with exit 0; set-up problems exit 2 with one line."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

import pytest

from mt5gate.orders import SqliteJournal
from mt5gate.service import bot_cli
from tests.bot.conftest import ADMIN, TOKEN
from tests.bot.fake_telegram import FakeTelegram


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeTelegram, tmp_path: Path) -> Path:
    for name in [n for n in os.environ if n.startswith("MT5GATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MT5GATE_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MT5GATE_BOT_API_URL", fake.base_url)
    monkeypatch.setenv("MT5GATE_BOT_USERS", f"{ADMIN}:admin")
    monkeypatch.setenv("MT5GATE_DATA_DIR", str(tmp_path))
    return tmp_path


def test_main_runs_until_sigterm(
    env: Path, fake: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    answered: list[str] = []
    leased: list[dict[str, object]] = []

    def user() -> None:
        try:
            fake.wait_call("getUpdates", timeout=60)
            fake.send_text("/price EURUSD", user_id=ADMIN)
            answered.append(fake.wait_message(ADMIN, "EURUSD", timeout=30).text)
            with SqliteJournal(env / "demo-orders.db", readonly=True) as journal:
                lease = journal.lease(5001)
            leased.append(dict(lease.info) if lease is not None else {})
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=user)
    thread.start()
    code = bot_cli.main([])
    thread.join(30)
    assert code == 0
    assert answered
    assert "SIMULATED" in answered[0]
    # The bot alone serves no HTTP: its lease says so, and mt5gate commands name it, not a URL.
    assert leased[0]["kind"] == "bot"
    assert "url" not in leased[0]
    err = capsys.readouterr().err
    assert "polling Telegram" in err
    assert "*** SIMULATED terminal" in err
    assert "1 user(s) and 0 chat(s) allowed" in err
    assert TOKEN not in err


def test_main_says_who_is_allowed_when_nobody_is(
    env: Path, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("MT5GATE_BOT_USERS")

    def stranger() -> None:
        try:
            fake.wait_call("getUpdates", timeout=60)
            fake.send_text("/help", user_id=4242)
            fake.wait_message(4242, "Your Telegram user id is 4242", timeout=30)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=stranger)
    thread.start()
    assert bot_cli.main([]) == 0
    thread.join(30)
    assert "nobody is allowed yet" in capsys.readouterr().err


def test_main_refuses_a_rejected_token(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MT5GATE_BOT_TOKEN", "7000001:AAH-not-the-token")
    assert bot_cli.main([]) == 2
    err = capsys.readouterr().err
    assert "Telegram refused to start" in err
    assert "AAH-not-the-token" not in err


def test_main_refuses_a_bad_configuration(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gate.toml"
    config.write_text('[[accounts]]\nname = "demo"\n\n[bot]\naccount = "live"\n')
    assert bot_cli.main(["--config", str(config)]) == 2
    assert (
        "gate.toml: bot: account 'live' is not one of the accounts (demo)"
        in capsys.readouterr().err
    )


def test_main_refuses_an_account_that_a_running_service_owns(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One owner per account: the bot alone would trade on the demo account behind the
    service's back; it says who owns it and how to proceed instead (issue 15, B)."""
    info = {"kind": "serve", "pid": os.getpid(), "host": socket.gethostname(),
            "url": "http://127.0.0.1:8000"}  # fmt: skip
    with SqliteJournal(env / "demo-orders.db") as journal:  # the service's journal
        journal.acquire(5001, "serve:elsewhere", 60.0, info)
    assert bot_cli.main([]) == 2
    err = capsys.readouterr().err
    assert "account 'demo' (login 5001) is owned by mt5gate serve" in err
    assert "http://127.0.0.1:8000" in err
    assert "mt5gate serve --bot" in err
