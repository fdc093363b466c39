"""``mt5gate order``, ``close`` and ``cancel`` on the real simulator: what is asked, what is sent
(exactly once), what is refused before anything is sent, and the state the next command sees.

Orders are on BTCUSD, which the simulated broker trades every day and hour."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mt5gate.cli.failures import Exit
from tests.cli.conftest import (
    BANNER,
    SYMBOL,
    Bridge,
    Cli,
    assert_error,
    assert_simulated,
    explain,
    fields,
    table_rows,
)


def quote(cli: Cli) -> dict[str, Any]:
    """The current BTCUSD quote."""
    [found] = cli.json("price", SYMBOL)
    return dict(found)


def level(value: float) -> str:
    """A BTCUSD price in its digits."""
    return f"{value:.2f}"


# ------------------------------------------------------------------------------ market orders


def test_buy_with_yes_opens_a_position_the_next_command_sees(cli: Cli) -> None:
    result = cli.ok("order", "buy", SYMBOL, "0.01", "--yes")
    assert_simulated(result)
    sent = fields(result.stdout)
    assert sent["Retcode"] == "10009 (Request executed)"
    assert sent["Volume"] == "0.01"
    ticket = int(sent["Order"])
    summary = fields(result.stderr)  # shown before sending
    assert summary["Order"] == f"buy 0.01 {SYMBOL}"
    assert summary["Account"] == "demo (login 5001 on MetaQuotes-Demo, terminal sim)"
    assert summary["Idempotency key"].startswith("cli-")
    assert f"Sending once with idempotency key {summary['Idempotency key']}" in result.stderr
    assert "Send this buy order?" not in result.stderr  # --yes: no question
    assert (cli.data_dir / "sim-demo.json").is_file()  # the simulated account's state
    [position] = cli.positions()  # a new process-like run reads it back
    assert position["ticket"] == ticket
    assert position["symbol"] == SYMBOL
    assert position["type"] == 0
    assert position["volume"] == 0.01
    table = cli.ok("positions").stdout
    [row] = [r for r in table_rows(table) if r[0] == str(ticket)]
    assert row[1:4] == [SYMBOL, "buy", "0.01"]
    assert row[4] == level(position["price_open"])
    assert "1 open, profit" in table


def test_sell_json(cli: Cli) -> None:
    result = cli.json("order", "sell", SYMBOL, "0.02", "--yes")
    assert result["retcode"] == 10009
    assert result["volume"] == 0.02
    [position] = cli.positions("--symbol", SYMBOL)
    assert position["type"] == 1  # sell
    assert position["ticket"] == result["order"]
    assert cli.positions("--symbol", "EURUSD") == []


def test_the_account_shows_the_margin_an_open_position_uses(cli: Cli) -> None:
    cli.buy("0.05")
    account = cli.json("account")
    assert account["margin"] > 0
    assert account["margin_free"] < account["equity"]
    rows = fields(cli.ok("account").stdout)
    assert rows["Margin level"].endswith(" %")


def test_buy_answered_yes_at_the_prompt(cli: Cli) -> None:
    result = cli.ok("order", "buy", SYMBOL, "0.01", input="y\n")
    assert "Send this buy order? [y/N]" in result.stderr
    assert "10009" in result.stdout
    assert len(cli.positions()) == 1


@pytest.mark.parametrize("answer", ["n\n", "\n", ""], ids=["no", "enter", "end-of-input"])
def test_an_order_not_confirmed_is_not_sent(cli: Cli, answer: str) -> None:
    result = cli.run("order", "buy", SYMBOL, "0.01", input=answer)
    assert_error(result, Exit.NOT_GOOD, "error: not sent", prompted=True)
    assert "hint: Nothing was sent. Add --yes to skip the question." in result.stderr
    assert "Send this buy order? [y/N]" in result.stderr
    assert "Sending once" not in result.stderr
    assert cli.positions() == []
    assert cli.json("history", "--orders") == []


def test_the_same_key_sends_once_and_returns_the_first_outcome(cli: Cli) -> None:
    first = cli.buy("0.01", "--key", "my-key-1")
    again = cli.buy("0.01", "--key", "my-key-1")
    assert again["order"] == first["order"]
    assert again["deal"] == first["deal"]
    assert [p["ticket"] for p in cli.positions()] == [first["order"]]
    other = cli.run("order", "buy", SYMBOL, "0.02", "--key", "my-key-1", "--yes")
    assert_error(other, Exit.USAGE, "Idempotency key reused for another request")
    assert len(cli.positions()) == 1


def test_the_same_key_returns_the_first_outcome_even_when_the_check_would_now_refuse(
    cli: Cli,
) -> None:
    """The docstring of ``mt5gate.cli.trade``: "Running the same command again with the same
    --key never places a second order; it returns the first one's outcome." Rerunning is what
    a user does after a lost reply; here the first order's own margin makes ``order_check``
    refuse the same order now (no money), and the rerun must still give the first outcome."""
    first = cli.buy("0.15", "--key", "big-one")  # uses most of the free margin
    again = cli.run("order", "buy", SYMBOL, "0.15", "--key", "big-one", "--yes", "--json")
    assert again.exit_code == 0, explain(again)
    assert json.loads(again.stdout)["order"] == first["order"]
    assert len(cli.positions()) == 1


def test_stops_are_set_on_the_position(cli: Cli) -> None:
    ask = quote(cli)["ask"]
    sl, tp = level(ask - 2000), level(ask + 2000)
    result = cli.ok("order", "buy", SYMBOL, "0.01", "--sl", sl, "--tp", tp, "--yes",
                    "--comment", "from the cli")  # fmt: skip
    summary = fields(result.stderr)
    assert summary["SL / TP"] == f"{sl} / {tp}"
    [position] = cli.positions()
    assert (position["sl"], position["tp"]) == (float(sl), float(tp))
    [row] = table_rows(cli.ok("positions").stdout)
    assert row[6:8] == [sl, tp]


def test_stops_on_the_wrong_side_are_refused_and_nothing_is_sent(cli: Cli) -> None:
    ask = quote(cli)["ask"]
    result = cli.run("order", "buy", SYMBOL, "0.01", "--sl", level(ask + 2000), "--yes")
    assert_error(result, Exit.USAGE, "Invalid request: sl must be below the entry price")
    assert cli.positions() == []


@pytest.mark.parametrize("volume", ["0.001", "0.015", "25"])
def test_an_invalid_volume_is_exit_2_and_nothing_is_sent(cli: Cli, volume: str) -> None:
    result = cli.run("order", "buy", SYMBOL, volume, "--yes")
    assert_error(result, Exit.USAGE, "Invalid request: volume must be")
    assert "Sending once" not in result.stderr
    assert cli.positions() == []
    assert cli.json("history", "--orders") == []


@pytest.mark.parametrize("volume", ["-1", "-0.5", "-1e-3", "0", "nan"])
def test_a_volume_not_above_zero_is_refused_before_connecting(cli: Cli, volume: str) -> None:
    """``-1`` is a value, not an unknown option ("No such option: -1"): the command says what is
    wrong with it, exit 2, before it connects (no SIMULATED banner, nothing sent)."""
    result = cli.run("order", "buy", SYMBOL, volume, "--yes", "--sl", "-2")
    assert result.exit_code == Exit.USAGE, explain(result)
    assert "Invalid value for 'VOLUME': must be > 0" in result.stderr
    assert "No such option" not in result.stderr
    assert BANNER not in result.stderr
    assert cli.positions() == []


def test_a_negative_price_or_ticket_is_refused_by_its_own_rule(cli: Cli) -> None:
    limit = cli.run("order", "limit", "buy", SYMBOL, "0.01", "-100", "--yes")
    assert limit.exit_code == Exit.USAGE, explain(limit)
    assert "Invalid value for 'PRICE': must be > 0; got -100" in limit.stderr
    close = cli.run("close", "-5", "--yes")
    assert close.exit_code == Exit.USAGE, explain(close)
    assert "Invalid value for 'TICKET'" in close.stderr
    assert "No such option" not in limit.stderr + close.stderr
    misspelt = cli.run("order", "buy", SYMBOL, "0.01", "--yes", "--sll", "1")
    assert "No such option: --sll" in misspelt.stderr  # an unknown option is still named


@pytest.mark.parametrize("volume", ["abc", "inf"])
def test_a_volume_that_is_not_a_number_is_a_usage_error(cli: Cli, volume: str) -> None:
    result = cli.run("order", "buy", SYMBOL, volume, "--yes")
    assert result.exit_code == Exit.USAGE, explain(result)
    assert "Usage: mt5gate order buy" in result.stderr


def test_an_order_the_server_refuses_is_exit_3_with_its_retcode(cli: Cli) -> None:
    result = cli.run("order", "buy", SYMBOL, "10", "--yes")  # 10 BTC: far beyond the margin
    assert_error(result, Exit.MT5, "Order rejected:", "10019", "No money")
    assert "hint: Free margin is too low for this volume." in result.stderr
    assert "Send this buy order?" not in result.stderr  # refused before the question
    assert cli.positions() == []


def test_risk_limits_of_the_configured_account_refuse_an_order(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_TEST_PASSWORD", "sim-pass-5001")
    config = cli.write("capped.toml", '[[accounts]]\nname = "capped"\nlogin = 5001\n'
                       'server = "MetaQuotes-Demo"\npassword_env = "CLI_TEST_PASSWORD"\n'
                       "risk = { max_volume_per_order = 0.01 }\n")  # fmt: skip
    result = cli.run("order", "buy", SYMBOL, "0.02", "--yes", "--config", str(config))
    assert_error(result, Exit.MT5, "Risk limit:", "max_volume_per_order", "nothing was sent")
    assert cli.positions("--config", str(config)) == []


# ------------------------------------------------------------------------------ pending orders


def test_limit_order_is_listed_then_cancelled(cli: Cli) -> None:
    below = level(round(quote(cli)["ask"] * 0.9))
    result = cli.ok("order", "limit", "buy", SYMBOL, "0.01", below, "--yes")
    summary = fields(result.stderr)
    assert summary["Order"] == f"buy limit 0.01 {SYMBOL}"
    assert summary["At price"] == below
    ticket = int(fields(result.stdout)["Order"])
    [order] = cli.json("orders")
    assert order["ticket"] == ticket
    assert order["price_open"] == float(below)
    table = cli.ok("orders").stdout
    [row] = [r for r in table_rows(table) if r[0] == str(ticket)]
    assert row[1:5] == [SYMBOL, "buy limit", "0.01", below]
    assert "1 pending" in table
    assert cli.positions() == []

    cancelled = cli.ok("cancel", str(ticket), "--yes")
    assert "Cancelled" in cancelled.stdout
    assert f"{ticket}: buy limit 0.01 {SYMBOL} at {below}" in cancelled.stderr
    assert cli.json("orders") == []
    again = cli.run("cancel", str(ticket), "--yes")
    assert_error(again, Exit.MT5, f"no pending order with ticket {ticket}")


def test_cancel_declined_keeps_the_order(cli: Cli) -> None:
    below = level(round(quote(cli)["bid"] * 0.8))
    placed = cli.json("order", "limit", "buy", SYMBOL, "0.01", below, "--yes")
    result = cli.run("cancel", str(placed["order"]), input="n\n")
    assert_error(result, Exit.NOT_GOOD, "not sent", prompted=True)
    assert f"Cancel pending order {placed['order']}?" in result.stderr
    assert [o["ticket"] for o in cli.json("orders")] == [placed["order"]]
    cancelled = cli.json("cancel", str(placed["order"]), "--yes", "--key", "cancel-1")
    assert cancelled["retcode"] == 10009


def test_stop_sell_order(cli: Cli) -> None:
    below = level(round(quote(cli)["bid"] * 0.9))
    placed = cli.json("order", "stop", "sell", SYMBOL, "0.01", below, "--yes")
    [order] = cli.json("orders", "--symbol", SYMBOL)
    assert order["ticket"] == placed["order"]
    assert order["type"] == 5  # ORDER_TYPE_SELL_STOP
    assert "sell stop" in cli.ok("orders").stdout


def test_a_limit_on_the_wrong_side_of_the_market_is_refused(cli: Cli) -> None:
    above = level(round(quote(cli)["ask"] * 1.2))
    result = cli.run("order", "limit", "buy", SYMBOL, "0.01", above, "--yes")
    assert_error(result, Exit.MT5, "10015", "Invalid price")
    assert cli.json("orders") == []


def test_a_side_other_than_buy_or_sell_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("order", "limit", "hold", SYMBOL, "0.01", "100", "--yes")
    assert result.exit_code == Exit.USAGE, explain(result)


# ----------------------------------------------------------------------------------- closing


def test_close_part_then_all_of_a_position(cli: Cli) -> None:
    ticket = cli.buy("0.05")["order"]
    part = cli.ok("close", str(ticket), "--volume", "0.02", "--yes")
    assert "Closed" in part.stdout
    summary = fields(part.stderr)
    assert summary["Closing"] == "0.02 lots"
    assert summary["Position"].startswith(f"{ticket}: buy 0.05 {SYMBOL} at ")
    [position] = cli.positions()
    assert position["ticket"] == ticket
    assert position["volume"] == pytest.approx(0.03)

    rest = cli.json("close", str(ticket), "--yes")
    assert rest["retcode"] == 10009
    assert rest["volume"] == pytest.approx(0.03)
    assert cli.positions() == []
    deals = [d for d in cli.json("history") if d["position_id"] == ticket]
    assert [d["entry"] for d in deals] == [0, 1, 1]  # in, out, out


def test_close_asks_and_a_no_keeps_the_position(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    result = cli.run("close", str(ticket), input="n\n")
    assert_error(result, Exit.NOT_GOOD, "not sent", prompted=True)
    assert f"Close 0.01 lots of position {ticket}?" in result.stderr
    assert "0.01 lots (all)" in result.stderr
    assert [p["ticket"] for p in cli.positions()] == [ticket]
    assert "Closed" in cli.ok("close", str(ticket), input="y\n").stdout
    assert cli.positions() == []


def test_closing_an_unknown_ticket_is_exit_3(cli: Cli) -> None:
    result = cli.run("close", "99", "--yes")
    assert_error(result, Exit.MT5, "no open position with ticket 99")
    assert "hint: mt5gate positions lists the open ones." in result.stderr
    assert cli.run("close", "0", "--yes").exit_code == Exit.USAGE  # a ticket is >= 1


def test_closing_again_with_the_same_key_returns_the_first_outcome(cli: Cli) -> None:
    """Like ``order``, ``close`` "sends exactly once" with its idempotency key, printed so that
    a rerun with ``--key`` is safe: the rerun must give the first close's outcome, not fail on
    the position it closed."""
    ticket = cli.buy()["order"]
    first = cli.json("close", str(ticket), "--key", "close-1", "--yes")
    again = cli.run("close", str(ticket), "--key", "close-1", "--yes", "--json")
    assert again.exit_code == 0, explain(again)
    assert json.loads(again.stdout)["order"] == first["order"]


# ------------------------------------------------------------------------------------ history


def test_history_shows_the_deals_and_orders_of_an_order(cli: Cli) -> None:
    sent = cli.buy()
    deals = cli.json("history")
    [deal] = [d for d in deals if d["order"] == sent["order"]]
    assert deal["symbol"] == SYMBOL
    assert deal["ticket"] == sent["deal"]
    assert deal["volume"] == 0.01
    orders = cli.json("history", "--orders", "--from", "today")
    assert [o["ticket"] for o in orders] == [sent["order"]]
    table = cli.ok("history", "--orders").stdout
    assert "1 orders" in table
    assert str(sent["order"]) in table
    assert "2 deals" in cli.ok("history", "--from", "30d").stdout  # the deposit and the buy


def test_history_tables_write_prices_in_the_symbols_digits(cli: Cli) -> None:
    """render.py: "Prices are written in the symbol's digits". The deals and history orders
    tables print ``f"{price:g}"``: a BTCUSD price (2 digits, ~43000) loses its cents
    (43123.81 is shown as 43123.8, 43120.50 as 43120.5)."""
    sent = cli.buy()
    [deal] = [d for d in cli.json("history") if d["order"] == sent["order"]]
    [row] = [r for r in table_rows(cli.ok("history").stdout) if r[1] == str(sent["deal"])]
    assert row[8] == level(deal["price"])
    [order] = cli.json("history", "--orders")
    [row] = [r for r in table_rows(cli.ok("history", "--orders").stdout)
             if r[1] == str(sent["order"])]  # fmt: skip
    assert row[6] == level(order["price_open"])


# ------------------------------------------------------------------------------------ journal


def test_journal_lists_the_orders_of_the_account(cli: Cli) -> None:
    result = cli.ok("order", "buy", SYMBOL, "0.01", "--yes", "--key", "journal-key-1")
    ticket = fields(result.stdout)["Order"]
    listed = cli.ok("journal", "list")  # no --journal: the demo account's journal
    [line] = [x for x in listed.stdout.splitlines() if "journal-key-1" in x]
    assert "ACKNOWLEDGED" in line
    assert ticket in line
    assert "10009" in line
    unresolved = cli.ok("journal", "list", "--unresolved")
    assert "no orders match" in unresolved.stdout
    shown = cli.ok("journal", "show", "--key", "journal-key-1", "--login", "5001")
    assert ticket in shown.stdout


def test_journal_of_a_configured_account(cli: Cli, two_accounts: Path) -> None:
    on_second = ("--config", str(two_accounts), "--account", "second")
    cli.ok("order", "buy", SYMBOL, "0.01", "--yes", "--key", "second-key", *on_second)
    cli.ok("order", "buy", SYMBOL, "0.01", "--yes", "--key", "second-key-2", *on_second)
    [position] = cli.positions(*on_second)  # account 5002 nets the two buys into one
    assert position["volume"] == pytest.approx(0.02)
    listed = cli.ok("journal", "list", *on_second).stdout
    assert "second-key" in listed
    assert "5002" in listed
    short = cli.ok("journal", "list", "-c", str(two_accounts), "-a", "second").stdout
    assert short == listed
    first = cli.run("journal", "list", "--config", str(two_accounts))  # first: its own journal
    assert first.exit_code == Exit.USAGE, explain(first)
    assert f"no order journal at {cli.data_dir / 'first-orders.db'}" in first.stderr
    assert (cli.data_dir / "sim-second.json").is_file()


# ------------------------------------------------------------------------------------- bridge


def test_trading_through_a_real_bridge(cli: Cli, bridge: Bridge) -> None:
    """Forex on the bridge's simulator (its clock is a Tuesday morning): the same commands,
    and the SIMULATED banner, since the bridge's welcome says what it serves."""
    on = ("--terminal", bridge.url, "--token-file", str(bridge.token_file))
    sent = cli.json("order", "buy", "EURUSD", "0.1", "--yes", *on)
    assert sent["retcode"] == 10009
    [position] = cli.json("positions", *on)
    assert position["ticket"] == sent["order"]
    closed = cli.ok("close", str(sent["order"]), "--yes", *on)
    assert BANNER in closed.stderr
    assert "cli (attached login, terminal bridge://127.0.0.1:" in closed.stderr
    assert cli.json("positions", *on) == []
