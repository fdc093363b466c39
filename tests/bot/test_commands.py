"""Every read command, the roles and the refusal of strangers, through the real PTB client
talking HTTP to the fake Bot API (one gateway and bot for the module: these only read)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mt5gate.models import OrderKind, OrderRequest, Side
from tests.bot.conftest import ADMIN, GROUP, STRANGER, TOKEN, TRADER, VIEWER, BotRun, bot_settings
from tests.bot.fake_telegram import FakeTelegram


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotRun]:
    fake = FakeTelegram(TOKEN)
    fake.start()
    bot = BotRun(fake, tmp_path_factory.mktemp("bot"), bot_settings(fake)).start()
    try:
        yield bot
    finally:
        bot.stop()
        fake.stop()


def test_start_publishes_the_command_menu_and_help_follows_the_role(run: BotRun) -> None:
    menu = {c["command"] for c in run.fake.commands}
    assert {"price", "account", "positions", "orders", "health", "buy", "sell", "close",
            "halt", "resume", "alerts", "help"} <= menu  # fmt: skip
    viewer = run.ask("/start", VIEWER).text
    assert "you are viewer" in viewer
    assert "/price" in viewer
    assert "SIMULATED" in viewer
    assert "/buy" not in viewer
    assert "/halt" not in viewer
    trader = run.ask("/help", TRADER).text
    assert "/buy" in trader
    assert "/close" in trader
    assert "/halt" not in trader
    admin = run.ask("/help", ADMIN).text
    assert "/halt" in admin
    assert "/resume" in admin


def test_price_shows_each_symbol_with_its_digits_and_spread(run: BotRun) -> None:
    answer = run.ask("/price EURUSD usdjpy", VIEWER)
    assert answer.parse_mode == "HTML"
    assert "<pre>" in answer.raw_text
    rows = {line.split()[0]: line.split() for line in answer.text.splitlines()[2:4]}
    eurusd, usdjpy = rows["EURUSD"], rows["USDJPY"]
    assert re.fullmatch(r"\d\.\d{5}", eurusd[1])
    assert re.fullmatch(r"\d\.\d{5}", eurusd[2])
    assert re.fullmatch(r"\d{3}\.\d{3}", usdjpy[1])
    bid, ask = float(eurusd[1]), float(eurusd[2])
    assert int(eurusd[3]) == round((ask - bid) / 0.00001)
    header = answer.text.splitlines()[1]
    assert header.split() == ["SYMBOL", "BID", "ASK", "SPREAD"]
    # the columns line up: every row is as wide as the header's last column ends
    table = answer.text.splitlines()[1:4]
    assert len({len(line) for line in table}) == 1
    assert "server time" in answer.text


def test_price_of_an_unknown_symbol_says_so_and_keeps_the_others(run: BotRun) -> None:
    answer = run.ask("/price NOPE GBPUSD", VIEWER).text
    assert "GBPUSD" in answer
    assert "No such symbol: NOPE" in answer


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("/price", "name at least one symbol"),
        ("/price " + " ".join(f"S{i}" for i in range(11)), "at most 10 symbols"),
        ("/price EUR<USD", "is not a symbol name"),
        ("/buy EURUSD", "a symbol and a volume are needed"),
        ("/buy EURUSD lots", "volume must be a number"),
        ("/sell EURUSD -1", "volume must be a positive number"),
        ("/buy EURUSD 0.1 stop=1.1", "is not sl=PRICE or tp=PRICE"),
        ("/close abc", "ticket must be a position's number"),
        ("/alerts maybe", "say on or off"),
        ("/account extra", "takes no arguments"),
        ("/positions A B", "at most one symbol"),
        ("/use nowhere", "no account 'nowhere'"),
    ],
)
def test_malformed_commands_get_the_rule_and_their_usage(
    run: BotRun, command: str, rule: str
) -> None:
    answer = run.ask(command, ADMIN)
    assert rule in answer.text
    name = command.split(maxsplit=1)[0]
    assert f"Usage: {name}" in answer.text


def test_account_shows_the_money_in_the_account_currency(run: BotRun) -> None:
    answer = run.ask("/account", VIEWER).text
    assert "Login" in answer
    assert "5001 (MetaQuotes-Demo)" in answer
    assert re.search(r"Balance\s+[\d,]+\.\d\d USD", answer)
    assert "Leverage      1:100" in answer
    assert "hedging" in answer
    assert "SIMULATED" in answer


def test_positions_and_orders_list_what_the_account_holds(run: BotRun) -> None:
    session = run.session
    empty = run.ask("/orders", VIEWER).text
    assert "No pending orders." in empty
    quote = run.run(session.get_price("GBPUSD"))
    limit = OrderRequest("GBPUSD", Side.BUY, 0.2, kind=OrderKind.LIMIT,
                         price=round(quote.ask - 0.01, 5),
                         tp=round(quote.ask + 0.02, 5))  # fmt: skip
    placed = run.run(session.place_order(limit))
    opened = run.run(session.place_order(OrderRequest("USDJPY", Side.SELL, 0.3)))
    orders = run.ask("/orders", VIEWER).text
    assert str(placed.order) in orders
    assert "buy limit" in orders
    assert "0.20" in orders
    assert f"{limit.price:.5f}" in orders
    assert f"-/{limit.tp:.5f}" in orders
    positions = run.ask("/positions", VIEWER).text
    line = next(row for row in positions.splitlines() if row.startswith(str(opened.order)))
    assert line.split()[1:4] == ["USDJPY", "sell", "0.30"]
    assert "Total profit" in positions
    assert "No open positions." in run.ask("/positions EURCHF", VIEWER).text
    assert str(opened.order) in run.ask("/positions usdjpy", VIEWER).text


def test_health_reports_the_status_and_what_does_not_pass(run: BotRun) -> None:
    answer = run.ask("/health", VIEWER).text
    assert "PASS" in answer
    assert "session connected" in answer
    assert re.search(r"(\d+) of \1 checks pass", answer)
    run.session.halt_trading("maintenance")
    try:
        run.run(run.account.monitor.refresh())
        answer = run.ask("/health", VIEWER).text
    finally:
        run.session.resume_trading()
        run.run(run.account.monitor.refresh())
    assert "WARN" in answer
    assert "trading:halt" in answer
    assert "maintenance" in answer


def test_use_lists_the_accounts_and_unknown_text_gets_a_hint(run: BotRun) -> None:
    assert "This chat works with demo. Accounts: demo" in run.ask("/use", VIEWER).text
    assert "This chat works with demo" in run.ask("/use demo", VIEWER).text
    assert "Unknown command" in run.ask("/frobnicate", VIEWER).text
    assert "Try /help" in run.ask("hello there", VIEWER).text


def test_a_viewer_cannot_trade_and_a_trader_cannot_halt(run: BotRun) -> None:
    for command in ("/buy EURUSD 0.1", "/sell EURUSD 0.1", "/close 1"):
        answer = run.ask(command, VIEWER).text
        assert "Your role (viewer) cannot use" in answer
        assert "needs trader" in answer
    for command in ("/halt", "/resume"):
        answer = run.ask(command, TRADER).text
        assert "Your role (trader) cannot use" in answer
        assert "needs admin" in answer
    assert not run.session.risk.halted


def test_a_group_on_the_list_gives_its_members_the_group_role(run: BotRun) -> None:
    answer = run.ask("/price EURUSD", STRANGER + 1, chat_id=GROUP).text
    assert "EURUSD" in answer
    assert "cannot use /buy" in run.ask("/buy EURUSD 0.1", STRANGER + 1, chat_id=GROUP).text
    # the admin keeps their own higher role in the group
    assert "you are admin" in run.ask("/help", ADMIN, chat_id=GROUP).text
    # a command addressed to this bot by name works in groups
    assert "EURUSD" in run.ask(f"/price@{run.fake.username} EURUSD", ADMIN, chat_id=GROUP).text


def test_a_stranger_gets_one_polite_refusal_and_nothing_else(
    run: BotRun, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = STRANGER + 7
    secret_text = "/price EURUSD my-private-words"
    with caplog.at_level(logging.WARNING, logger="mt5gate.bot"):
        first = run.ask(secret_text, stranger)
        assert "not on its list" in first.text
        assert f"user id is {stranger}" in first.text
        assert "EURUSD" not in first.text
        mark = run.say("/account", stranger)
        run.fake.wait_call("getUpdates", since=mark, predicate=lambda c: c.ok, timeout=5)
        run.fake.no_call("sendMessage", chat_id=stranger, within_s=1.0, since=mark)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused
    assert all(str(stranger) in line for line in refused)
    assert not any("my-private-words" in r.getMessage() or "/account" in r.getMessage()
                   for r in caplog.records)  # fmt: skip


def test_a_stranger_pressing_a_button_is_refused_and_nothing_is_sent(run: BotRun) -> None:
    confirmation = run.ask("/buy EURUSD 0.01", TRADER, "Confirm order")
    before = len(run.run(run.session.positions()))
    query = run.fake.press(confirmation.message_id, confirmation.button("Confirm"),
                           user_id=STRANGER + 9, chat_id=TRADER)  # fmt: skip
    answer = run.fake.wait_answer(query)
    assert "not on its list" in answer["text"]
    assert len(run.run(run.session.positions())) == before


def test_html_in_user_input_is_escaped(run: BotRun, tmp_path: Path) -> None:
    answer = run.ask("/use <b>x&y</b>", ADMIN)
    assert "no account '<b>x&y</b>'" in answer.text  # shown as text, not markup
