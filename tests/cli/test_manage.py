"""``mt5gate modify`` on the command's own session (the real simulator), and ``halt`` /
``resume`` without a service: what is shown and asked, what is sent (once per key), what is
refused before anything is sent. Orders are on BTCUSD, which the simulated broker trades every
day and hour. (Through ``mt5gate serve``: ``tests/cli/test_served_manage.py``.)"""

from __future__ import annotations

from typing import Any

import pytest

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.manage import HALT_REASON_MAX, require_reason
from tests.cli.conftest import SYMBOL, Cli, assert_error, assert_simulated, fields


def quote(cli: Cli) -> dict[str, Any]:
    [found] = cli.json("price", SYMBOL)
    return dict(found)


def position(cli: Cli, ticket: int) -> dict[str, Any]:
    [found] = [p for p in cli.positions() if p["ticket"] == ticket]
    return found


def pending(cli: Cli, ticket: int) -> dict[str, Any]:
    [found] = [o for o in cli.json("orders") if o["ticket"] == ticket]
    return dict(found)


def limit_below(cli: Cli) -> int:
    """A buy limit of 0.01 BTCUSD at 80% of the market: its ticket."""
    price = f"{round(quote(cli)['ask'] * 0.8):.2f}"
    placed = cli.json("order", "limit", "buy", SYMBOL, "0.01", price, "--yes")
    return int(placed["order"])


def test_modify_sets_then_removes_a_positions_stops(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    ask = quote(cli)["ask"]
    sl, tp = f"{ask - 3000:.2f}", f"{ask + 3000:.2f}"
    result = cli.ok("modify", str(ticket), "--sl", sl, "--tp", tp, "--yes")
    assert_simulated(result)
    summary = fields(result.stderr)
    assert summary["Position"].startswith(f"{ticket}: buy 0.01 {SYMBOL} at ")
    assert (summary["SL"], summary["TP"]) == (f"- -> {sl}", f"- -> {tp}")
    assert summary["Idempotency key"].startswith("cli-")
    assert fields(result.stdout)["Retcode"] == "10009 (Request executed)"
    now = position(cli, ticket)
    assert (f"{now['sl']:.2f}", f"{now['tp']:.2f}") == (sl, tp)
    cleared = cli.ok("modify", str(ticket), "--sl", "0", "--yes")  # 0 removes, TP is kept
    assert (fields(cleared.stderr)["SL"], fields(cleared.stderr)["TP"]) == (
        f"{sl} -> -", f"{tp} (kept)")  # fmt: skip
    after = position(cli, ticket)
    assert (after["sl"], f"{after['tp']:.2f}") == (0.0, tp)


def test_modify_with_the_same_key_sends_once(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    tp = f"{quote(cli)['ask'] + 4000:.2f}"
    first = cli.json("modify", str(ticket), "--tp", tp, "--yes", "--key", "mod-1")
    again = cli.json("modify", str(ticket), "--tp", tp, "--yes", "--key", "mod-1")
    assert first["retcode"] == 10009
    assert again == first  # the first outcome, from the journal
    rows = [o for o in cli.json("journal", "list") if o["idempotency_key"] == "mod-1"]
    assert len(rows) == 1
    other = cli.run("modify", str(ticket), "--tp", "0", "--yes", "--key", "mod-1")
    assert_error(other, Exit.USAGE, "Idempotency key reused for another request")
    assert f"{position(cli, ticket)['tp']:.2f}" == tp


def test_a_modify_not_confirmed_changes_nothing(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    result = cli.run("modify", str(ticket), "--sl", "1000", input="n\n")
    assert_error(result, Exit.NOT_GOOD, "not sent", prompted=True)
    assert f"Modify position {ticket}? [y/N]" in result.stderr
    assert position(cli, ticket)["sl"] == 0.0
    assert len(cli.json("journal", "list")) == 1  # the buy only: nothing was sent


def test_modify_moves_a_pending_orders_price_and_stops(cli: Cli) -> None:
    ticket = limit_below(cli)
    before = pending(cli, ticket)
    price = f"{before['price_open'] - 500:.2f}"
    sl = f"{before['price_open'] - 2500:.2f}"
    result = cli.ok("modify", str(ticket), "--price", price, "--sl", sl, "--yes")
    summary = fields(result.stderr)
    assert summary["Order"] == f"{ticket}: buy limit 0.01 {SYMBOL}"
    assert summary["Price"] == f"{before['price_open']:.2f} -> {price}"
    assert summary["TP"] == "- (kept)"
    after = pending(cli, ticket)
    assert (f"{after['price_open']:.2f}", f"{after['sl']:.2f}", after["tp"]) == (price, sl, 0.0)


def test_stops_on_the_wrong_side_are_refused_and_nothing_changes(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    above = f"{quote(cli)['ask'] + 3000:.2f}"
    result = cli.run("modify", str(ticket), "--sl", above, "--yes")
    assert_error(result, Exit.USAGE, "sl")
    assert position(cli, ticket)["sl"] == 0.0


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        ((), ("nothing to change",)),
        (("--price", "0"), ("--price: 0 is not a price",)),
        (("--price", "-5", "--sl", "1"), ("--price: -5 is not a price",)),
    ],
    ids=["nothing", "zero-price", "negative-price"],
)
def test_what_modify_refuses_before_reading_the_ticket(
    cli: Cli, args: tuple[str, ...], parts: tuple[str, ...]
) -> None:
    assert_error(cli.run("modify", "123", *args, "--yes"), Exit.USAGE, *parts)


def test_a_price_for_a_position_is_refused(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    result = cli.run("modify", str(ticket), "--price", "50000", "--yes")
    assert_error(
        result, Exit.USAGE, "--price moves a pending order", f"{ticket} is an open position"
    )


def test_a_negative_level_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("modify", "123", "--sl", "-1", "--yes")
    assert result.exit_code == 2
    assert "--sl" in result.stderr


def test_modifying_an_unknown_ticket_is_exit_3(cli: Cli) -> None:
    result = cli.run("modify", "99999999", "--sl", "1", "--yes")
    assert_error(result, Exit.MT5, "no open position or pending order with ticket 99999999")


def test_a_rerun_with_a_key_after_the_position_closed_returns_the_first_outcome(cli: Cli) -> None:
    ticket = cli.buy()["order"]
    tp = f"{quote(cli)['ask'] + 4000:.2f}"
    first = cli.json("modify", str(ticket), "--tp", tp, "--yes", "--key", "mod-then-close")
    cli.ok("close", str(ticket), "--yes")
    again = cli.json("modify", str(ticket), "--tp", tp, "--yes", "--key", "mod-then-close")
    assert again == first


# ------------------------------------------------------------------------ the halt switch


@pytest.mark.parametrize("command", [["halt", "news"], ["resume"]])
def test_halt_and_resume_need_the_service_that_owns_the_account(
    cli: Cli, command: list[str]
) -> None:
    """Without ``mt5gate serve`` there is no process whose halt would outlive the command: it
    says so, opens no session (no simulator state is made) and changes nothing."""
    result = cli.run(*command, "--yes")
    assert_error(result, Exit.USAGE, "no mt5gate serve owns account 'demo'",
                 "the halt switch belongs to the process that trades the account")  # fmt: skip
    assert "risk = { halted = true }" in result.stderr
    assert not (cli.data_dir / "sim-demo.json").exists()


def test_the_configured_halt_the_hint_names_refuses_a_commands_order(cli: Cli) -> None:
    """What the hint says to do without a service works: ``risk = { halted = true }``."""
    config = cli.write("halted.toml", '[[accounts]]\nname = "halted"\nlogin = 5001\n'
                       'server = "MetaQuotes-Demo"\npassword_env = "CLI_TEST_PASSWORD"\n'
                       "risk = { halted = true }\n")  # fmt: skip
    env = {"CLI_TEST_PASSWORD": "sim-pass-5001"}
    result = cli.run("order", "buy", SYMBOL, "0.01", "--yes", "--config", str(config), env=env)
    assert_error(result, Exit.MT5, "Trading is halted", "nothing was sent")
    assert "mt5gate resume" in result.stderr
    assert "resume_trading()" not in result.stderr  # the session's hint is for Python code


def test_the_reason_is_trimmed_and_bounded_as_the_service_keeps_it() -> None:
    """(Through a service, a longer one is exit 2: ``test_served_manage.py``.)"""
    with pytest.raises(CommandError, match=f"at most {HALT_REASON_MAX}"):
        require_reason("x" * (HALT_REASON_MAX + 1))
    assert require_reason("  ") == "halted with mt5gate halt"
    assert require_reason(" news ") == "news"
