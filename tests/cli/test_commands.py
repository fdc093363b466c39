"""The ``mt5gate`` reading commands, account selection, the error reference, the journal and the
front ends, run in process on the real simulator: what each prints, where, and its exit code."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mt5gate.cli.failures import CommandError, Exit, describe, guarded
from mt5gate.cli.reads import parse_when
from mt5gate.cli.reference import error_reference
from mt5gate.cli.render import Digits
from mt5gate.errors import (
    MT5ConnectionError,
    MT5OrderOutcomeUnknown,
    MT5TradeRejected,
    MT5ValidationError,
)
from mt5gate.models import Account, Price
from mt5gate.orders.journal import JournalError
from mt5gate.service.config import ConfigError
from mt5gate.sim.state import StateFileError
from tests.bridge.conftest import TOKEN
from tests.cli.conftest import (
    BANNER,
    BRIDGE_PASSWORD,
    SYMBOL,
    Bridge,
    Cli,
    assert_error,
    assert_simulated,
    explain,
    fields,
    flat,
    free_port,
    table_rows,
)

DIGITS = {"EURUSD": 5, "USDJPY": 3, SYMBOL: 2}

# ------------------------------------------------------------------------------------ price


def test_price_table_writes_each_symbol_in_its_digits(cli: Cli) -> None:
    result = cli.ok("price", "EURUSD", "USDJPY", SYMBOL)
    assert_simulated(result)
    assert "Prices · demo (SIMULATED)" in result.stdout
    rows = {row[0]: row for row in table_rows(result.stdout) if row[0] in DIGITS}
    assert list(rows) == ["EURUSD", "USDJPY", SYMBOL]  # in the order asked
    for name, (_, bid, ask, spread, when) in rows.items():
        digits = DIGITS[name]
        for price in (bid, ask):
            whole, _, decimals = price.partition(".")
            assert whole.isdigit(), (name, price)
            assert len(decimals) == digits, (name, price)
        assert float(bid) < float(ask)
        assert int(spread) == round((float(ask) - float(bid)) * 10**digits)
        datetime.strptime(when, "%Y-%m-%d %H:%M:%S")  # the server time of the tick


def test_price_json_is_a_list_of_quotes_with_their_spread_in_points(cli: Cli) -> None:
    result = cli.ok("price", "EURUSD", SYMBOL, "--json")
    assert_simulated(result)
    quotes = json.loads(result.stdout)  # stdout is nothing but the JSON
    assert [q["symbol"] for q in quotes] == ["EURUSD", SYMBOL]
    for quote in quotes:
        assert set(quote) == {f.name for f in dataclasses.fields(Price)} | {"spread_points"}
        assert 0 < quote["bid"] < quote["ask"]
        point = 10 ** -DIGITS[quote["symbol"]]
        assert quote["spread_points"] == round((quote["ask"] - quote["bid"]) / point)


def test_price_takes_options_before_the_symbols_and_trims_them(cli: Cli) -> None:
    quotes = json.loads(cli.ok("price", "--json", " EURUSD ").stdout)
    assert [q["symbol"] for q in quotes] == ["EURUSD"]


def test_an_unknown_symbol_is_one_line_and_a_hint_exit_3(cli: Cli) -> None:
    result = cli.run("price", "EURUSD", "NOSUCH")
    assert_error(result, Exit.MT5, "error: Not found:", "unknown symbol 'NOSUCH'")
    assert "hint: Symbol names are exact" in result.stderr
    assert "session." not in result.stderr  # the command's hint, not the Python one
    assert_simulated(result)


@pytest.mark.parametrize("args", [("price", "EURUSDX"), ("order", "buy", "EURUSDX", "0.01", "-y")])
def test_a_misspelt_symbol_is_named_with_the_likest_one(cli: Cli, args: tuple[str, ...]) -> None:
    """The price and the order say the same: the name, -4's "not found", and a suggestion."""
    result = cli.run(*args)
    assert_error(result, Exit.MT5, "unknown symbol 'EURUSDX'", "(did you mean EURUSD?)")
    assert "copy one from the terminal's Market Watch" in result.stderr


def test_debug_shows_the_traceback_and_the_debug_logs(cli: Cli) -> None:
    result = cli.run("price", "NOSUCH", "--debug")
    assert result.exit_code == Exit.MT5, explain(result)
    assert "Traceback (most recent call last)" in result.stderr
    assert "MT5NotFoundError" in result.stderr
    assert "session disconnected -> connecting" in flat(result.stderr)  # DEBUG/INFO logs
    assert result.stderr.rstrip().splitlines()[-1].startswith("hint: ")
    assert result.stdout == ""


# ------------------------------------------------------------------------ the banner, --json

READS = [
    ["account"],
    ["positions"],
    ["orders"],
    ["history"],
    ["history", "--orders"],
    ["health"],
    ["price", "EURUSD"],
    ["watch", SYMBOL, "--count", "1", "--interval", "0.05"],
]


@pytest.mark.parametrize("args", READS, ids=lambda a: "-".join(a[:2]))
def test_every_account_command_announces_the_simulator_on_stderr(cli: Cli, args: list[str]) -> None:
    result = cli.ok(*args)
    assert_simulated(result)
    assert "demo (login 5001 on MetaQuotes-Demo, terminal sim)" in result.stderr
    assert "(SIMULATED)" in result.stdout  # the table's title says it too


@pytest.mark.parametrize("args", READS, ids=lambda a: "-".join(a[:2]))
def test_json_output_is_pure_json_and_the_banner_stays_on_stderr(cli: Cli, args: list[str]) -> None:
    result = cli.ok(*args, "--json")
    assert_simulated(result)
    lines = result.stdout.splitlines()
    if args[0] == "watch":  # one JSON object per line
        assert lines
        assert all(json.loads(line)["symbol"] == SYMBOL for line in lines)
    else:
        json.loads(result.stdout)


# ---------------------------------------------------------------------- account, positions


def test_account_json_has_the_fields_of_the_account_record(cli: Cli) -> None:
    account = cli.json("account")
    assert list(account) == [f.name for f in dataclasses.fields(Account)]
    assert account["login"] == 5001
    assert account["server"] == "MetaQuotes-Demo"
    assert account["currency"] == "USD"
    assert account["balance"] == account["equity"] == account["margin_free"] > 0


def test_account_table(cli: Cli) -> None:
    result = cli.ok("account")
    rows = fields(result.stdout)
    assert rows["Login"] == "5001 (MetaQuotes-Demo)"
    assert rows["Balance"].endswith(" USD")
    assert rows["Margin level"] == "-"  # no margin used
    assert rows["Leverage"].startswith("1:")
    assert rows["Positions"] == "hedging"
    assert rows["Trading"] == "allowed"


def test_a_new_account_has_no_positions_and_no_orders(cli: Cli) -> None:
    assert "none open" in cli.ok("positions").stdout
    assert "none pending" in cli.ok("orders").stdout
    assert cli.positions() == []
    assert cli.json("orders", "--symbol", SYMBOL) == []


# ------------------------------------------------------------------------------- history


def test_history_of_a_new_account_holds_its_deposit(cli: Cli) -> None:
    deals = cli.json("history")
    assert [d["type"] for d in deals] == [2]  # DEAL_TYPE_BALANCE
    table = cli.ok("history").stdout
    assert "balance" in table
    assert "1 deals" in table
    assert "0 orders" in cli.ok("history", "--orders").stdout


@pytest.mark.parametrize(
    "window",
    [
        ["--from", "2020-01-01"],
        ["--from", "2020-01-01T14:30", "--to", "2099-12-31"],
        ["--from", "2020-01-01T00:00+02:00"],
        ["--from", "today", "--to", "+1d"],
        ["--from", "7d"],
        ["--from", "12h", "--to", "now"],
        ["--from", "2w", "--to", "+90m"],
    ],
    ids=" ".join,
)
def test_history_accepts_every_time_form(cli: Cli, window: list[str]) -> None:
    result = cli.ok("history", *window, "--json")
    assert isinstance(json.loads(result.stdout), list)


def test_a_bad_from_is_a_usage_error_naming_the_forms(cli: Cli) -> None:
    result = cli.run("history", "--from", "yesterday-ish")
    assert result.exit_code == Exit.USAGE, explain(result)
    message = flat(result.stderr)
    assert "--from" in message
    assert "'yesterday-ish' is not a time: use a date (2026-11-20)" in message
    assert "an age such as 12h or 7d, or +1d" in message
    assert BANNER not in result.stderr  # refused before any terminal was built
    assert result.stdout == ""


def test_to_before_from_is_refused(cli: Cli) -> None:
    result = cli.run("history", "--from", "today", "--to", "7d")
    assert_error(result, Exit.USAGE, "--to (", ") is before --from (")
    assert "hint: Swap them." in result.stderr


def test_parse_when_forms() -> None:
    now = datetime(2026, 11, 24, 15, 45, 12, tzinfo=UTC)
    assert parse_when("now", now=now) == now
    assert parse_when(" Today ", now=now) == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_when("90m", now=now) == now - timedelta(minutes=90)
    assert parse_when("12h", now=now) == now - timedelta(hours=12)
    assert parse_when("7d", now=now) == now - timedelta(days=7)
    assert parse_when("2w", now=now) == now - timedelta(weeks=2)
    assert parse_when("+1d", now=now) == now + timedelta(days=1)
    assert parse_when("2026-11-20", now=now) == datetime(2026, 11, 20, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert parse_when("2026-11-20T14:30+02:00") == datetime(2026, 11, 20, 14, 30,
                                                            tzinfo=plus_two)  # fmt: skip
    assert parse_when(now) is now  # a default already parsed
    assert parse_when("5d").tzinfo is not None  # relative to the real clock
    for bad in ("", "d", "7x", "+d", "1.5h", "2026-13-01"):
        with pytest.raises(ValueError, match="is not a time: use a date"):
            parse_when(bad, now=now)


# -------------------------------------------------------------------------------- health


def test_health_passes_on_the_simulator(cli: Cli) -> None:
    result = cli.ok("health")
    assert_simulated(result)
    assert "Health · demo (SIMULATED): PASS" in result.stdout
    names = [row[0] for row in table_rows(result.stdout)]
    assert "session:state" in names
    assert "terminal:connection" in names


def test_health_json_is_health_plus_json(cli: Cli) -> None:
    reading = cli.json("health", SYMBOL)
    assert reading["status"] == "pass"
    assert reading["checks"]["session:state"][0]["observedValue"] == "connected"
    assert "tick:age" in reading["checks"]  # the symbol given is watched
    for checks in reading["checks"].values():
        assert {"status", "componentId", "time"} <= set(checks[0])


def test_health_fails_on_a_symbol_without_ticks(cli: Cli) -> None:
    result = cli.run("health", "NOSUCH")
    assert result.exit_code == Exit.FAIL, explain(result)
    assert "FAIL" in result.stdout
    assert "• tick:age: NOSUCH: no tick" in result.stderr  # why, for the person


def test_health_warns_with_exit_1_when_trading_is_halted(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_TEST_PASSWORD", "sim-pass-5001")
    config = cli.write("halted.toml", '[[accounts]]\nname = "halted"\nlogin = 5001\n'
                       'server = "MetaQuotes-Demo"\npassword_env = "CLI_TEST_PASSWORD"\n'
                       "risk = { halted = true }\n")  # fmt: skip
    result = cli.run("health", "--config", str(config))
    assert result.exit_code == Exit.NOT_GOOD, explain(result)
    assert "Health · halted (SIMULATED): WARN" in result.stdout
    assert "• trading:halt: trading is halted" in result.stderr
    as_json = cli.run("health", "--config", str(config), "--json")
    assert as_json.exit_code == Exit.NOT_GOOD
    assert json.loads(as_json.stdout)["status"] == "warn"


@pytest.mark.parametrize("scheme", ["bridge", "rpyc"])
def test_health_of_an_unreachable_terminal_fails_with_exit_2(cli: Cli, scheme: str) -> None:
    token = cli.write("token", "a-token\n")  # mode 600
    terminal = ["--terminal", f"{scheme}://127.0.0.1:{free_port()}"]
    if scheme == "bridge":
        terminal += ["--token-file", str(token)]
    result = cli.run("health", *terminal)
    assert result.exit_code == Exit.FAIL, explain(result)
    assert "Health · cli: FAIL" in result.stdout
    assert "cannot connect:" in result.stderr
    listening = "no mt5gate bridge listening at" if scheme == "bridge" else "unreachable"
    assert listening in flat(result.stderr)
    assert BANNER not in result.stderr + result.stdout  # not a simulator
    as_json = cli.run("health", *terminal, "--json")
    assert as_json.exit_code == Exit.FAIL, explain(as_json)
    reading = json.loads(as_json.stdout)
    assert reading["status"] == "fail"
    assert reading["checks"]["session:state"][0]["status"] == "fail"


def test_health_of_the_official_terminal_on_linux_fails(cli: Cli) -> None:
    result = cli.run("health", "--terminal", "official")
    assert result.exit_code == Exit.FAIL, explain(result)
    assert "FAIL" in result.stdout
    assert "MetaTrader5 package is not installed" in flat(result.stdout)
    reading = cli.run("health", "--terminal", "official", "--json")
    assert reading.exit_code == Exit.FAIL
    check = json.loads(reading.stdout)["checks"]["terminal:connection"][0]
    assert check["status"] == "fail"
    assert "MetaTrader5 package is not installed" in check["output"]


def test_other_commands_on_the_official_terminal_on_linux_fail_with_exit_3(cli: Cli) -> None:
    result = cli.run("price", "EURUSD", "--terminal", "official")
    assert_error(result, Exit.MT5, "MetaTrader5 package is not installed")


# --------------------------------------------------------------------------------- watch


def test_watch_table_refreshes_count_times(cli: Cli) -> None:
    result = cli.ok("watch", SYMBOL, "EURUSD", "--count", "2", "--interval", "0.05")
    assert_simulated(result)
    assert "Watching · demo (SIMULATED)" in result.stdout
    shown = {row[0] for row in table_rows(result.stdout)}
    assert {SYMBOL, "EURUSD"} <= shown


def test_watch_table_ends_its_line_like_every_other_table(cli: Cli) -> None:
    """On a pipe (not a terminal) rich's Live prints the last table when it stops, without the
    final newline every other command's output has: ``mt5gate watch ... -n 2 > file`` leaves
    a file whose last line is not ended."""
    assert cli.ok("price", SYMBOL).stdout.endswith("┘\n")
    result = cli.ok("watch", SYMBOL, "--count", "2", "--interval", "0.05")
    assert result.stdout.endswith("┘\n"), repr(result.stdout[-10:])


def test_watch_json_is_one_quote_per_line(cli: Cli) -> None:
    result = cli.ok("watch", SYMBOL, "EURUSD", "-n", "3", "-i", "0.05", "--json")
    quotes = [json.loads(line) for line in result.stdout.splitlines()]
    assert [q["symbol"] for q in quotes[:2]] == [SYMBOL, "EURUSD"]  # the first refresh: both
    assert len(quotes) <= 6  # then only quotes that changed
    for quote in quotes:
        assert quote["symbol"] in (SYMBOL, "EURUSD")
        assert quote["bid"] < quote["ask"]
        assert isinstance(quote["spread_points"], int)


def test_watch_refuses_a_too_short_interval(cli: Cli) -> None:
    result = cli.run("watch", SYMBOL, "--interval", "0.001", "--count", "1")
    assert result.exit_code == Exit.USAGE, explain(result)
    assert "--interval" in flat(result.stderr)


# -------------------------------------------------------------------------------- errors


def test_errors_explains_a_retcode(cli: Cli) -> None:
    result = cli.ok("errors", "10019")
    assert result.stdout.startswith("10019 TRADE_RETCODE_NO_MONEY (trade retcode)")
    text = flat(result.stdout)
    assert "Meaning: No money" in text
    assert "Class: MT5TradeRejected" in text
    assert "What you should do: Free margin is too low for this volume." in text
    assert result.stderr == ""  # no terminal, no banner


@pytest.mark.parametrize("query", ["no_money", "TRADE_RETCODE_NO_MONEY", "NO_MONEY"])
def test_errors_finds_a_code_by_its_name(cli: Cli, query: str) -> None:
    assert cli.ok("errors", query).stdout == cli.ok("errors", "10019").stdout


def test_errors_json(cli: Cli) -> None:
    [entry] = json.loads(cli.ok("errors", "no_money", "--json").stdout)
    assert entry["code"] == 10019
    assert entry["kind"] == "retcode"
    assert entry["error_class"] == "MT5TradeRejected"
    every = json.loads(cli.ok("errors", "--json").stdout)
    assert [e["code"] for e in every] == [e.code for e in error_reference()]


def test_errors_without_a_query_is_a_table_of_every_code(cli: Cli) -> None:
    result = cli.ok("errors")
    codes = {row[0] for row in table_rows(result.stdout)}
    assert {str(e.code) for e in error_reference()} <= codes
    assert "TRADE_RETCODE_NO_MONEY" in result.stdout
    widest = max(len(line) for line in result.stdout.splitlines())
    assert 80 < widest <= 160  # a pipe is 160 columns wide, not cut to 80


def test_columns_sets_the_width_of_a_table(cli: Cli) -> None:
    result = cli.ok("errors", env={"COLUMNS": "100"})
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def test_an_unknown_error_code_is_a_usage_error(cli: Cli) -> None:
    """A code or name that MT5 does not have is a mistake on the command line: exit 2."""
    result = cli.run("errors", "no_such_thing")
    assert_error(result, Exit.USAGE, "no MT5 code matches 'no_such_thing'")
    unknown = cli.run("errors", "99999", "--json")
    assert_error(unknown, Exit.USAGE, "no MT5 code matches '99999'", "neither a trade retcode")
    assert unknown.stdout == ""


def test_errors_looks_up_a_negative_last_error_code(cli: Cli) -> None:
    """``mt5gate errors -6`` is the command's own example (its help says "A code (10019,
    -6)"); a negative code must not be read as an option."""
    result = cli.run("errors", "-6")
    assert result.exit_code == 0, explain(result)
    assert result.stdout.startswith("-6 RES_E_AUTH_FAILED (last_error code)")


def test_errors_after_double_dash_reads_a_negative_code(cli: Cli) -> None:
    assert cli.ok("errors", "--", "-6").stdout.startswith("-6 RES_E_AUTH_FAILED")


# --------------------------------------------------------------------- account selection


def test_account_names_an_account_of_the_configuration(cli: Cli, two_accounts: Path) -> None:
    result = cli.ok("account", "--config", str(two_accounts), "--account", "second", "--json")
    assert json.loads(result.stdout)["login"] == 5002
    assert "second (login 5002 on MetaQuotes-Demo, terminal sim)" in result.stderr
    assert_simulated(result)
    table = cli.ok("account", "-c", str(two_accounts), "-a", "second").stdout
    assert "Account · second (SIMULATED)" in table
    assert "netting" in table


def test_the_first_account_is_the_default(cli: Cli, two_accounts: Path) -> None:
    assert cli.json("account", "--config", str(two_accounts))["login"] == 5001


def test_mt5gate_config_names_the_file(cli: Cli, two_accounts: Path) -> None:
    env = {"MT5GATE_CONFIG": str(two_accounts)}
    assert cli.json("account", "--account", "second", env=env)["login"] == 5002


def test_an_unknown_account_names_the_accounts(cli: Cli, two_accounts: Path) -> None:
    result = cli.run("account", "--config", str(two_accounts), "--account", "third")
    assert_error(result, Exit.USAGE, "no account named 'third'", "has: first, second")


def test_login_without_terminal_is_refused(cli: Cli, two_accounts: Path) -> None:
    for extra in (["--login", "5001"], ["--server", "X"], ["--config", str(two_accounts),
                                                          "--login", "5002"]):  # fmt: skip
        result = cli.run("account", *extra)
        assert_error(result, Exit.USAGE, "describe an ad-hoc account: use them with --terminal")


@pytest.mark.parametrize(
    "terminal", ["nonsense", "bridge://host", "http://127.0.0.1:80", "bridge://u:hunter2@h:1"]
)
def test_a_bad_terminal_is_refused(cli: Cli, terminal: str) -> None:
    result = cli.run("account", "--terminal", terminal)
    assert_error(result, Exit.USAGE, "--terminal must be sim, official, bridge://host:port")
    assert "hunter2" not in result.stderr  # a URL is never echoed: it may hold a password


def test_a_bad_account_name_on_the_command_line_is_refused(cli: Cli) -> None:
    result = cli.run("account", "--terminal", "sim", "--account", "Not A Name")
    assert_error(result, Exit.USAGE, "the command line: --account")


def test_a_terminal_option_replaces_the_configured_one(cli: Cli, two_accounts: Path) -> None:
    result = cli.run("health", "-c", str(two_accounts), "-a", "second", "-t", "official")
    assert result.exit_code == Exit.FAIL, explain(result)
    assert "Health · second: FAIL" in result.stdout
    bridged = cli.run("account", "-c", str(two_accounts), "-t", "bridge://127.0.0.1:1")
    assert_error(bridged, Exit.USAGE, "account 'first':", "needs token_env or token_file")


def test_a_configured_sim_start_pins_the_commands_simulator(cli: Cli) -> None:
    """``sim_start`` reaches the simulator a command builds: a Tuesday morning's forex market
    trades, and health judges its ticks on that clock (they would be days old on the wall's).
    ``--terminal`` to a real terminal drops it."""
    text = '[[accounts]]\nname = "replay"\nlogin = 5001\npassword_env = "REPLAY_PASSWORD"\n'
    config = cli.write("replay.toml", text + "sim_start = 2026-01-06T10:00:00\n")
    env = {"REPLAY_PASSWORD": "sim-pass-5001"}
    bought = cli.json("order", "buy", "EURUSD", "0.01", "--yes", "--config", str(config), env=env)
    assert bought["retcode"] == 10009
    day = datetime.fromtimestamp(cli.json("price", "EURUSD", "-c", str(config), env=env)[0]
                                 ["time_msc"] / 1000, UTC).date()  # fmt: skip
    assert day.isoformat() == "2026-01-06"
    health = cli.json("health", "EURUSD", "-c", str(config), env=env)
    assert health["checks"]["tick:age"][0]["status"] == "pass"
    assert health["checks"]["broker:clockOffset"][0]["status"] == "pass"
    real = cli.run("health", "-c", str(config), "-t", "official", env=env)
    assert real.exit_code == Exit.FAIL, explain(real)
    assert "Health · replay: FAIL" in real.stdout  # a reading, not "sim_start is for ..."


def test_health_judges_by_the_configured_market_hours(cli: Cli) -> None:
    """``mt5gate health`` uses ``[health]`` as ``serve`` does: on a Saturday the forex week's
    hours excuse Friday's last tick; with ``hours = "always"`` it is hours old, and fails."""
    text = ('[[accounts]]\nname = "weekend"\nlogin = 5001\npassword_env = "P"\n'
            "sim_start = 2026-01-10T12:00:00\n")  # fmt: skip
    env = {"P": "sim-pass-5001"}
    forex = cli.write("forex.toml", text)
    always = cli.write("always.toml", '[health]\nhours = "always"\n\n' + text)
    closed = cli.json("health", "EURUSD", "-c", str(forex), env=env)["checks"]["tick:age"][0]
    assert closed["status"] == "pass"
    stale = cli.run("health", "EURUSD", "-c", str(always), "--json", env=env)
    assert stale.exit_code == Exit.FAIL, explain(stale)
    assert json.loads(stale.stdout)["checks"]["tick:age"][0]["status"] == "fail"


def test_terminal_kind_settings_are_dropped_with_another_terminal(cli: Cli) -> None:
    """``--terminal sim`` on an account configured for the official package (its installation,
    its child process) or for a TLS bridge: those settings mean nothing to the simulator, so
    the command runs instead of refusing them."""
    official = ('[[accounts]]\nname = "broker"\nterminal = "official"\nlogin = 5001\n'
                'password_env = "P"\nterminal_path = "C:/MT5 A/terminal64.exe"\n'
                'isolate = "process"\n')  # fmt: skip
    bridged = ('[[accounts]]\nname = "far"\nterminal = "bridge://127.0.0.1:1"\nlogin = 5001\n'
               'password_env = "P"\ntoken_env = "T"\ntls = true\n'
               'tls_server_name = "bridge.test"\n')  # fmt: skip
    env = {"P": "sim-pass-5001", "T": "a-bridge-token-0123456789abcdef"}
    for name, text in (("official.toml", official), ("bridged.toml", bridged)):
        config = cli.write(name, text)
        prices = cli.json("price", "EURUSD", "-c", str(config), "-t", "sim", env=env)
        assert prices[0]["symbol"] == "EURUSD"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[accounts]\nname = 1\n", "not valid TOML"),
        ("[service]\nport = 80\n", "at least one [[accounts]] entry is needed"),
        ('[[accounts]]\nname = "x"\nterminal = "sim"\npasword_env = "X"\n',
         "accounts[0].pasword_env: unknown field (did you mean 'password_env'?)"),
    ],
    ids=["toml", "no-accounts", "typo"],
)  # fmt: skip
def test_a_bad_configuration_is_one_line(cli: Cli, text: str, message: str) -> None:
    config = cli.write("bad.toml", text)
    result = cli.run("account", "--config", str(config))
    assert_error(result, Exit.USAGE, "Configuration:", message)
    assert BANNER not in result.stderr


def test_a_missing_configuration_file_is_one_line(cli: Cli) -> None:
    result = cli.run("price", "EURUSD", "--config", "nowhere.toml")
    assert_error(result, Exit.USAGE, "cannot read the configuration file nowhere.toml")


def test_a_password_variable_that_is_not_set_is_named(
    cli: Cli, two_accounts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLI_TEST_SECOND_PASSWORD")
    result = cli.run("account", "-c", str(two_accounts), "-a", "second")
    assert_error(result, Exit.USAGE, "CLI_TEST_SECOND_PASSWORD (password_env) is not set")


def test_an_ad_hoc_simulator_logs_in_with_mt5gate_password(cli: Cli) -> None:
    env = {"MT5GATE_PASSWORD": "sim-pass-5002"}
    args = ("account", "--terminal", "sim", "--login", "5002", "--server", "MetaQuotes-Demo")
    result = cli.ok(*args, "--json", env=env)
    assert json.loads(result.stdout)["login"] == 5002
    assert "cli (login 5002 on MetaQuotes-Demo, terminal sim)" in result.stderr
    attached = cli.ok("account", "--terminal", "sim")
    assert "cli (attached login, terminal sim)" in attached.stderr


def test_a_real_bridge_serves_an_ad_hoc_account(cli: Cli, bridge: Bridge) -> None:
    args = ("--terminal", bridge.url, "--token-file", str(bridge.token_file), "--login", "5001",
            "--server", "MetaQuotes-Demo")  # fmt: skip
    env = {"MT5GATE_PASSWORD": BRIDGE_PASSWORD}
    result = cli.ok("account", *args, "--json", env=env)
    assert json.loads(result.stdout)["login"] == 5001
    # the bridge's welcome says it serves the simulator: labelled as a local one is
    assert BANNER in result.stderr
    assert "terminal bridge://" in flat(result.stderr)
    assert "Prices · cli (SIMULATED)" in cli.ok("price", "EURUSD", *args, env=env).stdout
    wrong = cli.run("account", *args, env={"MT5GATE_PASSWORD": "not-it"})
    assert_error(wrong, Exit.MT5, "Authorization failed")


# ---------------------------------------------------------------------------------- secrets


def test_no_command_prints_a_password_or_a_token(
    cli: Cli, bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_TEST_BRIDGE_PASSWORD", BRIDGE_PASSWORD)
    config = cli.write("live.toml", f'[[accounts]]\nname = "live"\nterminal = "{bridge.url}"\n'
                       'login = 5001\nserver = "MetaQuotes-Demo"\n'
                       'password_env = "CLI_TEST_BRIDGE_PASSWORD"\n'
                       f'token_file = "{bridge.token_file.name}"\n')  # fmt: skip
    on = ("--config", str(config))
    runs = [
        cli.ok("account", *on, "--debug"),
        cli.ok("price", "EURUSD", *on),
        cli.ok("order", "buy", "EURUSD", "0.1", "--yes", *on, "--debug"),
        cli.ok("positions", *on, "--json"),
        cli.ok("health", *on, "--debug"),
        cli.run("price", "NOSUCH", *on, "--debug"),
        cli.run("order", "buy", "EURUSD", "50", "--yes", *on, "--debug"),
        cli.ok("journal", "list", *on),
    ]
    assert runs[-3].exit_code == Exit.MT5
    assert "Traceback" in runs[-3].stderr
    assert "10009" in runs[2].stdout
    for result in runs:
        for secret in (BRIDGE_PASSWORD, TOKEN):
            assert secret not in result.stdout + result.stderr, explain(result)


def test_a_wrong_password_fails_without_showing_it(
    cli: Cli, two_accounts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Wrong-Pangolin-5521"
    monkeypatch.setenv("CLI_TEST_FIRST_PASSWORD", secret)
    result = cli.run("price", "EURUSD", "--config", str(two_accounts), "--debug")
    assert result.exit_code == Exit.MT5, explain(result)
    assert "Traceback" in result.stderr
    assert "error: Terminal not logged in:" in result.stderr
    assert "Authorization failed" in result.stderr
    assert secret not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------- journal


def test_journal_help_is_a_sub_app(cli: Cli) -> None:
    """``mt5gate journal`` is a typer sub-app (its help in the layout of every command, no
    longer argparse's ``usage:``), built from the journal CLI's option table."""
    result = cli.ok("journal", "--help")
    assert result.stdout.startswith("Usage: mt5gate journal [OPTIONS] COMMAND [ARGS]...")
    for action in ("list", "show", "blocks", "acknowledge"):
        assert f"\n  {action} " in result.stdout, action
    listing = cli.ok("journal", "list", "-h").stdout
    assert listing.startswith("Usage: mt5gate journal list [OPTIONS]")
    for option in ("--journal FILE", "--store URL", "--state KIND [KIND ...]", "--unresolved",
                   "-c, --config FILE", "-a, --account NAME"):  # fmt: skip
        assert option in listing, option
    assert "\nAccount:\n" in listing


def test_journal_of_an_account_that_never_ran_is_missing(cli: Cli) -> None:
    result = cli.run("journal", "list")
    assert result.exit_code == Exit.USAGE, explain(result)
    assert f"no order journal at {cli.data_dir / 'demo-orders.db'}" in result.stderr


def test_journal_with_an_unknown_account_is_a_configuration_error(cli: Cli) -> None:
    result = cli.run("journal", "list", "--account", "nope")
    assert_error(result, Exit.USAGE, "no account named 'nope'", "has: demo")


def test_journal_of_an_empty_account(cli: Cli) -> None:
    cli.ok("account")  # the session creates the account's journal
    assert "no orders match" in cli.ok("journal", "list").stdout
    assert "no orders match" in cli.ok("journal", "list", "--unresolved").stdout


def test_journal_honours_mt5gate_journal_unless_an_account_is_named(
    cli: Cli, two_accounts: Path
) -> None:
    cli.ok("account", "-c", str(two_accounts), "-a", "second")
    other = cli.home / "elsewhere.db"
    env = {"MT5GATE_JOURNAL": str(other)}
    assert f"no order journal at {other}" in cli.run("journal", "list", env=env).stderr
    named = cli.run("journal", "list", f"--config={two_accounts}", "--account=second", env=env)
    assert named.exit_code == 0, explain(named)
    assert "no orders match" in named.stdout


def test_journal_account_options_mix_with_the_journals_own(cli: Cli, two_accounts: Path) -> None:
    """``--config`` / ``--account`` (``-c`` / ``-a``) name the journal wherever they stand among
    the journal's options (after ``--state A B`` too), and a ``--journal`` named with them is
    the one read."""
    cli.ok("account", "-c", str(two_accounts), "-a", "second")  # the session creates it
    listed = cli.run("journal", "list", "--state", "INTENT", "UNKNOWN", "-a", "second", "-c",
                     str(two_accounts), "--unresolved")  # fmt: skip
    assert listed.exit_code == 0, explain(listed)
    assert "no orders match" in listed.stdout
    assert "no account is blocked" in cli.ok("journal", "blocks", "-c", str(two_accounts),
                                             "--account=second").stdout  # fmt: skip
    other = cli.home / "elsewhere.db"
    named = cli.run("journal", "show", "--ticket", "7", "-c", str(two_accounts), "-a", "second",
                    "--journal", str(other))  # fmt: skip
    assert named.exit_code == Exit.USAGE, explain(named)
    assert f"no order journal at {other}" in named.stderr


# ------------------------------------------------------------------------------ front ends


@pytest.mark.parametrize("name", ["serve", "bot", "bridge", "fleet"])
def test_front_ends_print_their_help_as_every_command(cli: Cli, name: str) -> None:
    """Typer commands made from the front ends' option tables (tests/cli/test_frontends.py):
    the same layout as ``mt5gate price --help``."""
    result = cli.ok(name, "--help")
    assert result.stdout.startswith(f"Usage: mt5gate {name} [OPTIONS]")
    assert "\nOptions:\n" in result.stdout


def test_front_ends_refuse_a_missing_required_option(cli: Cli) -> None:
    result = cli.run("bridge", "--terminal", "sim")  # --token-file is required
    assert result.exit_code == 2
    assert "mt5gate bridge" in result.stderr
    assert "Missing option '--token-file'" in result.stderr


def test_demo_runs(cli: Cli) -> None:
    result = cli.ok("demo", "--virtual-time")
    assert "SIMULATED" in result.stdout
    assert result.stdout.rstrip().endswith("done")


def test_demo_help_names_the_command(cli: Cli) -> None:
    result = cli.ok("demo", "--help")
    assert result.stdout.startswith("Usage: mt5gate demo [OPTIONS]")
    assert "--virtual-time" in result.stdout


def test_help_lists_every_command(cli: Cli) -> None:
    result = cli.ok("--help")
    for name in ("price", "account", "positions", "orders", "history", "health", "watch",
                 "order", "close", "cancel", "errors", "journal", "serve", "bot", "bridge",
                 "demo"):  # fmt: skip
        assert f" {name} " in result.stdout, name
    assert "--account" in cli.ok("price", "--help").stdout  # the shared options
    assert "--yes" in cli.ok("order", "buy", "--help").stdout


# ------------------------------------------------------------------------------ exit codes


def test_exit_codes_of_each_kind_of_failure() -> None:
    cases: list[tuple[BaseException, Exit, str]] = [
        (CommandError("no such ticket", code=Exit.MT5), Exit.MT5, ""),
        (CommandError("not sent", code=Exit.NOT_GOOD), Exit.NOT_GOOD, ""),
        (MT5TradeRejected("order_send() returned 10019", retcode=10019, comment="No money"),
         Exit.MT5, "Order rejected"),
        (MT5OrderOutcomeUnknown("the reply was lost", retcode=None), Exit.UNKNOWN_OUTCOME,
         "Order outcome unknown"),
        (MT5ValidationError(field="volume", rule="must be > 0"), Exit.USAGE, "Invalid request"),
        (MT5ConnectionError("terminal down"), Exit.MT5, ""),
        (ConfigError("bad file"), Exit.USAGE, "Configuration"),
        (JournalError("locked"), Exit.USAGE, "Journal"),
        (StateFileError("torn"), Exit.USAGE, "Simulator state"),
        (FileNotFoundError(2, "No such file or directory", "x.json"), Exit.MT5, "System"),
        (RuntimeError("boom"), Exit.BUG, "Internal error"),
    ]  # fmt: skip
    for error, code, title in cases:
        found = describe(error)
        assert found.code == code, error
        if title:
            assert found.title == title, error
    assert describe(cases[2][0]).message.startswith("the trade server answered 10019 (No money)")
    assert describe(cases[9][0]).message == "No such file or directory: x.json"
    assert describe(OSError("plain")).message == "plain"
    bug = describe(RuntimeError("boom"))
    assert bug.message == "RuntimeError: boom"
    assert "This is a bug in mt5gate" in bug.hint


def test_guarded_turns_failures_into_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    console = Console(stderr=True)

    def interrupted() -> int:
        raise KeyboardInterrupt

    def broken() -> int:
        raise RuntimeError("boom [red]")

    assert guarded(console, lambda: 7, debug=False) == 7
    assert guarded(console, interrupted, debug=False) == 130
    assert "interrupted" in capsys.readouterr().err
    assert guarded(console, broken, debug=False) == Exit.BUG
    err = capsys.readouterr().err
    assert "error: Internal error: RuntimeError: boom [red]" in err  # markup is escaped
    assert "Traceback" not in err
    assert guarded(console, broken, debug=True) == Exit.BUG
    assert "Traceback" in capsys.readouterr().err

    def refused() -> int:
        raise CommandError("no hint here", code=Exit.MT5)

    assert guarded(console, refused, debug=False) == Exit.MT5
    assert capsys.readouterr().err == "error: no hint here\n"  # no title, no hint line


CORRUPT_STATES = {
    "not-json": "{",
    "other-version": '{"version": 2}',
    "incomplete": '{"version": 1}',
    "accounts-not-a-table": json.dumps({"version": 1, "clock_ms": 0, "tickets": {"next": 1},
                                        "market": {"done_ms": 0, "symbols": {}},
                                        "accounts": [], "terminal": {}}),
}  # fmt: skip


@pytest.mark.parametrize("text", CORRUPT_STATES.values(), ids=CORRUPT_STATES.keys())
def test_a_corrupt_simulator_state_file_is_exit_2_with_a_hint_to_delete_it(
    cli: Cli, text: str
) -> None:
    cli.data_dir.mkdir()
    (cli.data_dir / "sim-demo.json").write_text(text, encoding="utf-8")
    result = cli.run("account")
    assert_error(result, Exit.USAGE, "Simulator state:", "sim-demo.json")
    assert "hint: Delete that file to start the simulated account afresh." in result.stderr


def test_a_corrupt_journal_is_exit_2(cli: Cli) -> None:
    cli.data_dir.mkdir()
    (cli.data_dir / "demo-orders.db").write_bytes(b"not a database" * 100)
    assert_error(cli.run("account"), Exit.USAGE, "Journal:", "not a readable SQLite database")
    assert cli.run("journal", "list").exit_code == Exit.USAGE


def test_a_data_directory_that_is_a_file_is_a_system_error(cli: Cli) -> None:
    blocker = cli.write("blocker", "")
    result = cli.run("account", env={"MT5GATE_DATA_DIR": str(blocker)})
    assert_error(result, Exit.MT5, "System:", str(blocker))


def test_digits_write_unset_levels_as_a_dash() -> None:
    assert Digits(2, 0.01).price(0.0) == "-"
    assert Digits(3, 0.001).price(148.2) == "148.200"
    quote = Price(SYMBOL, 100.0, 100.5, 0.0, 0, 0, 0)
    assert Digits(2, 0.01).spread_points(quote) == 50
    assert Digits(2, 0.0).spread_points(quote) == 0


def test_help_is_plain_with_each_commands_summary_in_full(cli: Cli) -> None:
    """The help is plain text (no rich panels) but keeps what they showed: each command's first
    paragraph unabridged, and the shared options under Account and Output."""
    listed = cli.ok("--help").stdout
    assert "╭" not in listed
    words = " ".join(listed.split())  # wrapped to the terminal's width
    assert "coloured. Exit 0 pass, 1 warn, 2 fail (for scripts and cron)." in words
    price = cli.ok("price", "--help").stdout
    assert price.index("Arguments:") < price.index("Account:") < price.index("Output:")
    account = price[price.index("Account:") : price.index("Output:")]
    assert "--terminal" in account
    assert "--json" not in account
    assert "--json" in price[price.index("Output:") :]
