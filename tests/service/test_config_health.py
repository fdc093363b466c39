"""The ``[health]`` table and an account's ``health`` (thresholds and market hours), and the TLS
settings of a bridge account: what they load as, every refusal naming its field and rule, and
that the gateway's health monitors judge by them (on a simulator pinned to a Saturday, so
nothing here depends on today's date)."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from mt5gate.errors import MT5InitError
from mt5gate.health import (
    ALWAYS_OPEN,
    FOREX_WEEK,
    HealthThresholds,
    Status,
    TradingWindow,
    Weekday,
)
from mt5gate.service.config import ConfigError, ServiceSettings, load_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.health_settings import HealthSettings
from mt5gate.session.resolve import resolve_terminal
from mt5gate.sim import RealClock, SimTerminal
from mt5gate.sim.clock import server_ms_of
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import start_service

ONE = '[[accounts]]\nname = "main"\n'
BRIDGE = '[[accounts]]\nname = "main"\nterminal = "bridge://127.0.0.1:18812"\ntoken_env = "T"\n'
#: A Saturday noon, server time: the forex market is closed, the last EURUSD tick is Friday's.
SATURDAY = "2026-01-10T12:00"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mt5gate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# [health]


def test_no_health_settings_are_the_probes_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ONE), {})
    health = settings.account_health(settings.accounts[0])
    assert health.thresholds() == HealthThresholds()
    hours = health.market_hours()
    assert (hours.default, dict(hours.symbols), hours.utc_offset_s) == (FOREX_WEEK, {}, 7200)


def test_a_health_table_and_an_account_override(tmp_path: Path) -> None:
    text = """
[health]
ping_warn_ms = 100
ping_fail_ms = 400
tick_age_warn_s = 30
tick_age_fail_s = 90.5
clock_offset_warn_s = 120
utc_offset_s = 10800
hours = "always"

[health.symbols]
US500 = [{ days = "mon-fri", from = "01:00", to = "23:00" }]
WEEKEND = [
    { days = "fri-mon", from = "00:00", to = "24:00" },
    { days = "wed", from = "12:30", to = "13:00" },
]

[[accounts]]
name = "main"

[[accounts]]
name = "eu"
health = { tick_age_fail_s = 600, hours = "forex", symbols = { BTCUSD = "always" } }
"""
    settings = load_settings(write(tmp_path, text), {})
    main, eu = (settings.account_health(a) for a in settings.accounts)
    assert main.thresholds() == HealthThresholds(100, 400, 30, 90.5, 120)
    hours = main.market_hours()
    assert (hours.default, hours.utc_offset_s) == (ALWAYS_OPEN, 10800)
    weekdays = (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY,
                Weekday.FRIDAY)  # fmt: skip
    assert hours.windows("US500") == tuple(TradingWindow(d, 60, 1380) for d in weekdays)
    weekend = (Weekday.FRIDAY, Weekday.SATURDAY, Weekday.SUNDAY, Weekday.MONDAY)
    assert hours.windows("WEEKEND") == (
        *(TradingWindow(d, 0, 1440) for d in weekend), TradingWindow(Weekday.WEDNESDAY, 750, 780),
    )  # fmt: skip
    # the account's keys win; the rest, and the other symbols, are [health]'s
    assert eu.thresholds() == HealthThresholds(100, 400, 30, 600, 120)
    eu_hours = eu.market_hours()
    assert (eu_hours.default, eu_hours.utc_offset_s) == (FOREX_WEEK, 10800)
    assert eu_hours.windows("BTCUSD") == ALWAYS_OPEN
    assert eu_hours.windows("US500") == hours.windows("US500")


def test_day_names_may_be_full_listed_or_wrapping() -> None:
    def days(text: str) -> list[int]:
        windows = HealthSettings.model_validate(
            {"hours": [{"days": text, "from": "00:00", "to": "24:00"}]}
        ).market_hours().default  # fmt: skip
        return [w.day for w in windows]

    assert days("Monday") == [1]
    assert days("mon, wed,FRI") == [1, 3, 5]
    assert days("sat-sun") == [6, 0]
    assert days("sun-sat") == list(range(7))
    assert days("mon-fri,thu") == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[health]\nping_warn_ms = 500\nping_fail_ms = 100\n" + ONE,
         "health: need ping_warn_ms <= ping_fail_ms (warn before fail), got 500.0 and 100.0"),
        ("[health]\ntick_age_warn_s = 0\n" + ONE,
         "health.tick_age_warn_s: must be a finite number > 0, got 0"),
        ("[health]\ntick_age_warn_s = nan\n" + ONE, "health.tick_age_warn_s: must be a finite"),
        ('[health]\nping_fail_ms = "1000"\n' + ONE, "health.ping_fail_ms: must be a number > 0"),
        ("[health]\nclock_offset_warn_s = true\n" + ONE, "health.clock_offset_warn_s: must be a"),
        ("[health]\nutc_offset_s = 7200.5\n" + ONE, "health.utc_offset_s: must be a valid integer"),
        ("[health]\nutc_offset_s = 90000\n" + ONE,
         "health.utc_offset_s: must be less than or equal to 50400"),
        ('[health]\nhours = "weekdays"\n' + ONE,
         'health.hours: must be "forex", "always" or a list of windows'),
        ("[health]\nhours = []\n" + ONE, 'health.hours: must be "forex", "always" or a list'),
        ('[health]\nhours = [{ days = "mon-fry", from = "01:00", to = "23:00" }]\n' + ONE,
         "health.hours[0].days: must name days: mon, tue, wed, thu, fri, sat, sun"),
        ('[health]\nhours = [{ days = "mon", from = "1:00", to = "23:00" }]\n' + ONE,
         "health.hours[0].from: must be a time HH:MM from 00:00 to 24:00"),
        ('[health]\nhours = [{ days = "mon", from = "01:00", to = "24:01" }]\n' + ONE,
         "health.hours[0].to: must be a time HH:MM"),
        ('[health]\nhours = [{ days = "mon", from = "22:00", to = "02:00" }]\n' + ONE,
         "health.hours[0]: from (22:00) must come before to (02:00); a session over midnight "
         "is two windows"),
        ('[health]\nhours = [{ days = "mon", form = "01:00", to = "23:00" }]\n' + ONE,
         "health.hours[0].form: unknown field (did you mean 'from'?)"),
        ("[health]\ntick_age = 5\n" + ONE,
         "health.tick_age: unknown field (did you mean 'tick_age_warn_s'?)"),
        ('[health.symbols]\nUS500 = "sometimes"\n' + ONE,
         'health.symbols.US500: must be "forex", "always"'),
        ('[healt]\nhours = "always"\n' + ONE,
         "healt: unknown table or key (did you mean 'health'?)"),
        (ONE + "health = { ping_warn_ms = -1 }\n",
         "accounts[0].health.ping_warn_ms: must be a finite number > 0, got -1"),
        (ONE + "health = { pingwarn_ms = 1 }\n",
         "accounts[0].health.pingwarn_ms: unknown field (did you mean 'ping_warn_ms'?)"),
        (ONE + 'health = { symbols = { X = [{ days = "mon", from = "01:00", to = "01:00" }] } }\n',
         "accounts[0].health.symbols.X[0]: from (01:00) must come before to (01:00)"),
        ("[health]\ntick_age_warn_s = 60\n" + ONE + "health = { tick_age_fail_s = 30 }\n",
         "accounts: [0].health, over [health]: need tick_age_warn_s <= tick_age_fail_s "
         "(warn before fail), got 60.0 and 30.0"),
    ],
)  # fmt: skip
def test_every_health_problem_names_the_field_and_the_rule(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = problem(tmp_path, text)
    assert message.startswith(str(tmp_path / "mt5gate.toml") + ": ")
    assert expected in message


# ---------------------------------------------------------------------------------------------
# TLS to a bridge


def test_tls_settings_of_a_bridge_account(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, BRIDGE + 'tls = true\ntls_ca_file = "ca.pem"\n'), {})
    account = settings.accounts[0]
    assert (account.tls, account.tls_ca_file) == (True, tmp_path / "ca.pem")  # next to the file
    plain = load_settings(write(tmp_path, BRIDGE), {}).accounts[0]
    assert (plain.tls, plain.tls_ca_file, plain.tls_context()) == (False, None, None)
    system = load_settings(write(tmp_path, BRIDGE + "tls = true\n"), {}).accounts[0]
    context = system.tls_context()  # the system's trusted CAs, and always verified
    assert context is not None
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert system.tls_server_name is None  # the URL's host
    named = load_settings(write(tmp_path, BRIDGE + 'tls = true\ntls_server_name = "Bridge.Test"\n'),
                          {}).accounts[0]  # fmt: skip
    assert named.tls_server_name == "bridge.test"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ONE + "tls = true\n",
         "accounts[0]: tls, tls_ca_file and tls_server_name are for bridge:// terminals only"),
        (ONE + 'terminal = "rpyc://h:1"\ntls_ca_file = "ca.pem"\n',
         "accounts[0]: tls, tls_ca_file and tls_server_name are for bridge:// terminals only"),
        (ONE + 'tls_server_name = "bridge.test"\n',
         "accounts[0]: tls, tls_ca_file and tls_server_name are for bridge:// terminals only"),
        (BRIDGE + 'tls_ca_file = "ca.pem"\n', "accounts[0]: tls_ca_file needs tls = true"),
        (BRIDGE + 'tls_server_name = "bridge.test"\n',
         "accounts[0]: tls_server_name needs tls = true (the name is checked against the "
         "bridge's TLS certificate)"),
        (BRIDGE + 'tls = true\ntls_server_name = "https://bridge.test:443"\n',
         "accounts[0].tls_server_name: must be the host name the bridge's certificate is issued "
         "for (letters, digits, '-' and '.', such as bridge.example.com; no scheme, port or "
         "wildcard) or an IP address, got 'https://bridge.test:443'"),
        (BRIDGE + 'tls = true\ntls_server_name = "*.example.com"\n',
         "accounts[0].tls_server_name: must be the host name"),
        (BRIDGE + "tls = true\ntls_server_name = 1\n",
         "accounts[0].tls_server_name: must be a valid string"),
        (BRIDGE + 'tls = "yes"\n', "accounts[0].tls: must be a valid boolean"),
        (BRIDGE + "tls_verify = false\n", "accounts[0].tls_verify: unknown field"),
        (BRIDGE + "tsl = true\n", "accounts[0].tsl: unknown field (did you mean 'tls'?)"),
    ],
)  # fmt: skip
def test_tls_settings_are_refused_where_they_make_no_sense(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in problem(tmp_path, text)


def test_a_ca_file_that_cannot_be_loaded_names_the_account_and_the_file(tmp_path: Path) -> None:
    text = BRIDGE + 'tls = true\ntls_ca_file = "ca.pem"\n'
    account = load_settings(write(tmp_path, text), {}).accounts[0]
    with pytest.raises(ConfigError, match=r"account 'main': cannot load tls_ca_file .*ca\.pem: "):
        account.tls_context()
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"account 'main': cannot load tls_ca_file .*ca\.pem"):
        account.tls_context()
    # the service refuses to build the account, before anything connects
    with pytest.raises(ConfigError, match="tls_ca_file"):
        Gateway.build(load_settings(write(tmp_path, text), {}), {"T": "token"})


def test_a_tls_account_gets_a_bridge_client_with_a_verifying_context(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, BRIDGE + "tls = true\n"), {})
    settings = settings.model_copy(update={"data_dir": tmp_path / "data"})
    gateway = Gateway.build(settings, {"T": "token"})
    terminal = gateway.account("main").session.terminal
    assert isinstance(terminal, BridgeTerminal)
    assert terminal.ssl_context is not None
    assert terminal.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert "tls" in repr(terminal)
    assert terminal.server_hostname is None
    gateway.account("main").session.close_journal()
    text = BRIDGE + 'tls = true\ntls_server_name = "bridge.test"\n'
    named = Gateway.build(load_settings(write(tmp_path, text), {}).model_copy(
        update={"data_dir": tmp_path / "data"}), {"T": "token"})  # fmt: skip
    terminal = named.account("main").session.terminal
    assert isinstance(terminal, BridgeTerminal)
    assert (terminal.host, terminal.server_hostname) == ("127.0.0.1", "bridge.test")
    named.account("main").session.close_journal()
    plain = Gateway.build(load_settings(write(tmp_path, BRIDGE), {}).model_copy(
        update={"data_dir": tmp_path / "data"}), {"T": "token"})  # fmt: skip
    terminal = plain.account("main").session.terminal
    assert isinstance(terminal, BridgeTerminal)
    assert terminal.ssl_context is None
    plain.account("main").session.close_journal()


def test_resolve_terminal_gives_tls_to_bridge_urls_only() -> None:
    context = ssl.create_default_context()
    bridge = resolve_terminal("bridge://127.0.0.1:1", token=SecretStr("t"), ssl_context=context)
    assert isinstance(bridge, BridgeTerminal)
    assert bridge.ssl_context is context
    for spec in ("sim", "rpyc://127.0.0.1:1"):
        with pytest.raises(MT5InitError, match="for bridge://host:port terminals only"):
            resolve_terminal(spec, ssl_context=context)
    with pytest.raises(MT5InitError, match="ssl_context is for a bridge://host:port terminal"):
        resolve_terminal(SimTerminal(), ssl_context=context)


# ---------------------------------------------------------------------------------------------
# The gateway's monitors judge by the settings


def _saturday(settings: ServiceSettings, tmp_path: Path) -> Gateway:
    """The settings' accounts on simulators whose clocks start on a Saturday noon."""
    start = server_ms_of(datetime.fromisoformat(SATURDAY))
    settings = settings.model_copy(update={"data_dir": tmp_path / "data"})
    env = {"SIM_PASSWORD": "sim-pass-5001"}
    return Gateway.build(
        settings, env, terminal_for=lambda _: SimTerminal(clock=RealClock(start_ms=start))
    )


def test_market_hours_and_thresholds_decide_the_weekend_tick_age(tmp_path: Path) -> None:
    """On a Saturday the last EURUSD tick is Friday's, hours old: with the forex week the market
    is closed and the age not judged; with "always" it is judged, and fails the default limits
    but passes limits configured wide enough."""
    text = """
[[accounts]]
name = "forex"
password_env = "SIM_PASSWORD"
watch = ["EURUSD"]

[[accounts]]
name = "always"
password_env = "SIM_PASSWORD"
watch = ["EURUSD"]
health = { hours = "always" }

[[accounts]]
name = "patient"
password_env = "SIM_PASSWORD"
watch = ["EURUSD"]
health = { hours = "always", tick_age_warn_s = 172800, tick_age_fail_s = 259200 }
"""
    settings = load_settings(write(tmp_path, text), {})
    gateway = _saturday(settings, tmp_path)

    async def readings() -> dict[str, dict[str, object]]:
        found = {}
        try:
            for runtime in gateway.accounts.values():
                await runtime.session.connect()
                reading = await runtime.monitor.refresh()
                (tick,) = [c for c in reading.checks if c.name == "tick:age"]
                found[runtime.name] = {"status": tick.status, "output": tick.output,
                                       "age": tick.observed_value}  # fmt: skip
        finally:
            for runtime in gateway.accounts.values():
                await runtime.session.close()
                runtime.session.close_journal()
        return found

    found = asyncio.run(readings())
    assert found["forex"]["status"] == Status.PASS
    assert found["forex"]["output"] == "market closed"
    age = found["always"]["age"]
    assert isinstance(age, float)
    assert age > 300  # Friday's last tick, hours before Saturday noon
    assert found["always"]["status"] == Status.FAIL
    assert "EURUSD: last tick" in str(found["always"]["output"])
    assert found["patient"]["status"] == Status.PASS
    assert found["patient"]["output"] != "market closed"


def test_v1_health_of_a_served_weekend_reports_by_the_configured_settings(tmp_path: Path) -> None:
    """``mt5gate serve`` with a ``[health]`` table and an account override, its simulators
    pinned to a Saturday: /v1/health judges each account's tick age by its own settings."""
    text = """
[health]
hours = "always"

[[accounts]]
name = "always"
login = 5001
password_env = "SIM_PASSWORD"
watch = ["EURUSD"]

[[accounts]]
name = "patient"
login = 5001
password_env = "SIM_PASSWORD"
watch = ["EURUSD"]
health = { tick_age_warn_s = 172800, tick_age_fail_s = 259200 }

[[accounts]]
name = "forex"
login = 5001
password_env = "SIM_PASSWORD"
watch = ["EURUSD"]
health = { hours = "forex" }
"""
    config = write(tmp_path, text)
    served = start_service(tmp_path / "data", "--config", str(config), wait_ready=False,
                           sim_start=SATURDAY, env={"SIM_PASSWORD": "sim-pass-5001"})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            body = httpx.get(served.base + "/v1/health", timeout=5).json()
            ticks = {name: body["checks"].get(f"{name}/tick:age", [{}])[0]
                     for name in ("always", "patient", "forex")}  # fmt: skip
            if all("observedValue" in tick for tick in ticks.values()):
                break
            assert time.monotonic() < deadline, (body, served.output()[-2000:])
            time.sleep(0.2)
    finally:
        served.stop()
    assert ticks["always"]["status"] == "fail"
    assert ticks["always"]["observedValue"] > 3600  # Friday's last tick
    assert "EURUSD: last tick" in ticks["always"]["output"]
    # as old, and passing: within the wide limits, or not judged (the forex market is closed)
    assert ticks["patient"]["status"] == ticks["forex"]["status"] == "pass"
    assert ticks["patient"]["observedValue"] > 3600
    assert ticks["forex"]["observedValue"] > 3600
    assert body["status"] == "fail"  # the "always" account fails its tick age
