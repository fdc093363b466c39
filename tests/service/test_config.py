"""Service settings: defaults, a full TOML file and its round trip, every validation error
naming its file and field, ``MT5GATE_*`` overrides, passwords and bridge tokens from the
environment or secret files, and that no secret reaches a repr, an error or the log."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from mt5gate.orders import LeasePolicy, ReconcilePolicy
from mt5gate.orders.risk import RiskLimits
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import (
    DEFAULT_PASSWORD,
    AccountSettings,
    ApiKeySettings,
    ConfigError,
    RiskSettings,
    ServiceSettings,
    default_settings,
    load_settings,
)
from mt5gate.service.gateway import session_for
from mt5gate.session.specs import SpecPolicy
from mt5gate.sim.terminal import SimTerminal

#: A secret distinctive enough that finding it anywhere means it leaked.
SECRET = "Zq9-distinctive-SECRET-4f1e"
HASH = hash_api_key("mg_test-key", salt=bytes(16))
HASH2 = hash_api_key("mg_other-key", salt=bytes(range(16)))

FULL = f"""
[service]
host = "0.0.0.0"
port = 8443
data_dir = "state"
public_health = false
public_metrics = true
cors_origins = ["https://app.example.com", "http://localhost:3000"]
max_body_bytes = 4096
log_level = "debug"
require_idempotency_key = false

[[accounts]]
name = "main"
terminal = "bridge://10.0.0.5:18812"
login = 12345678
server = "Broker-Live"
password_env = "MAIN_PASSWORD"
token_file = "secrets/bridge-token"
journal = "main.db"
watch = ["EURUSD", "GBPUSD"]

[accounts.risk]
max_volume_per_order = 1
max_positions_per_symbol = 3
max_exposure_per_symbol = 2.5
max_orders_per_minute = 30
allowed_symbols = ["EURUSD", "GBPUSD"]
halted = true

[[accounts]]
name = "paper_2"
terminal = "sim"
login = 5001
server = "MetaQuotes-Demo"
password_file = "secrets/paper-password"
sim_start = 2026-01-06T10:00:00

[[accounts]]
name = "win"
terminal = "official"

[[accounts]]
name = "linux-box"
terminal = "rpyc://mt5.local:18812"

[bot]
token_file = "secrets/bot-token"
api_url = "http://127.0.0.1:8081/bot"
account = "paper_2"
confirm_ttl_s = 30
users = [{{ id = 11, role = "admin", name = "ann" }}, {{ id = 12, role = "trader" }}]
chats = [{{ id = -1001, role = "viewer" }}]
alerts = {{ per_minute = 6, burst = 2, dedupe_s = 60, poll_s = 2, events_s = 0.5 }}

[[api_keys]]
name = "ci"
hash = "{HASH}"
scopes = ["read", "trade"]
rate_per_minute = 120
burst = 5

[[api_keys]]
name = "ops"
hash = "{HASH2}"
scopes = ["admin"]
"""


def write(tmp_path: Path, text: str, name: str = "mt5gate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def account(**fields: Any) -> AccountSettings:
    return AccountSettings(**{"name": "main", **fields})


def problem(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    """The one-line ConfigError that loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


ONE = '[[accounts]]\nname = "main"\n'


# ---------------------------------------------------------------------------------------------
# Defaults


def test_default_settings_serve_one_simulated_demo_account() -> None:
    settings = default_settings()
    assert len(settings.accounts) == 1
    demo = settings.default_account
    assert (demo.name, demo.terminal, demo.login, demo.server) == (
        "demo", "sim", 5001, "MetaQuotes-Demo",
    )  # fmt: skip
    assert demo.simulated
    assert settings.simulated
    assert demo.password({}) == SecretStr(DEFAULT_PASSWORD)
    assert demo.terminal_token({}) is None
    assert demo.risk_limits() is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == Path(".mt5gate")
    assert settings.api_keys == ()
    assert (settings.public_health, settings.public_metrics) == (True, False)
    assert settings.cors_origins == ()
    assert (settings.max_body_bytes, settings.log_level) == (65536, "INFO")
    assert settings.journal_path(demo) == Path(".mt5gate/demo-orders.db")


def test_no_file_and_no_mt5gate_config_is_the_default() -> None:
    assert load_settings(None, {}) == default_settings()
    assert load_settings(None, {"MT5GATE_CONFIG": ""}) == default_settings()


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MT5GATE_CONFIG", raising=False)
    monkeypatch.setenv("MT5GATE_PORT", "9001")
    assert load_settings().port == 9001


def test_settings_are_frozen() -> None:
    settings = default_settings()
    with pytest.raises(ValidationError):
        settings.port = 1
    with pytest.raises(ValidationError):
        settings.default_account.name = "x"


# ---------------------------------------------------------------------------------------------
# A full file


def test_a_full_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), {})
    assert (settings.host, settings.port) == ("0.0.0.0", 8443)
    assert settings.data_dir == tmp_path / "state"  # relative to the file
    assert (settings.public_health, settings.public_metrics) == (False, True)
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert (settings.max_body_bytes, settings.log_level) == (4096, "DEBUG")
    assert settings.require_idempotency_key is False
    main, paper, win, box = settings.accounts
    assert settings.default_account is main
    assert (main.name, main.terminal, main.login, main.server) == (
        "main", "bridge://10.0.0.5:18812", 12345678, "Broker-Live",
    )  # fmt: skip
    assert main.password_env == "MAIN_PASSWORD"
    assert main.token_file == tmp_path / "secrets/bridge-token"
    assert main.watch == ("EURUSD", "GBPUSD")
    assert settings.journal_path(main) == tmp_path / "state" / "main.db"
    assert main.risk_limits() == RiskLimits(
        max_volume_per_order=1.0, max_positions_per_symbol=3, max_exposure_per_symbol=2.5,
        max_orders_per_minute=30, allowed_symbols=frozenset({"EURUSD", "GBPUSD"}), halted=True,
    )  # fmt: skip
    assert not main.simulated
    assert paper.simulated
    assert settings.simulated
    assert paper.password_file == tmp_path / "secrets/paper-password"
    assert paper.sim_start == datetime(2026, 1, 6, 10)
    assert main.sim_start is None
    assert settings.journal_path(paper) == tmp_path / "state" / "paper_2-orders.db"
    assert (win.terminal, win.login, win.password({}), win.terminal_token({})) == (
        "official", None, None, None,
    )  # fmt: skip
    assert (box.terminal, box.simulated, box.watch, box.risk) == (
        "rpyc://mt5.local:18812", False, (), None,
    )  # fmt: skip
    ci, ops = settings.api_keys
    assert (ci.name, ci.hash, ci.scopes, ci.rate_per_minute, ci.burst) == (
        "ci", HASH, frozenset({"read", "trade"}), 120, 5,
    )  # fmt: skip
    assert (ops.scopes, ops.rate_per_minute, ops.burst) == (frozenset({"admin"}), 600, 100)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    items = sorted(value) if isinstance(value, frozenset) else value
    return "[" + ", ".join(toml_value(item) for item in items) + "]"


def to_toml(settings: ServiceSettings) -> str:
    """The settings written back as a configuration file."""

    def table(fields: dict[str, Any]) -> str:
        return "".join(f"{k} = {toml_value(v)}\n" for k, v in fields.items() if v is not None)

    dumped = settings.model_dump(exclude={"accounts", "api_keys", "bot"})
    text = "[service]\n" + table(dumped) + "\n[bot]\n" + table(settings.bot.model_dump())
    for item in settings.accounts:
        text += "\n[[accounts]]\n" + table(item.model_dump(exclude={"password_value"}))
    for key in settings.api_keys:
        text += "\n[[api_keys]]\n" + table(key.model_dump())
    return text


def test_a_full_file_round_trips(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), {})
    (tmp_path / "elsewhere").mkdir()
    again = load_settings(write(tmp_path / "elsewhere", to_toml(settings)), {})
    assert again == settings


def test_a_minimal_file_takes_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ONE), {})
    assert settings.accounts == (AccountSettings(name="main"),)
    assert settings.default_account.simulated
    assert settings.model_dump(exclude={"accounts"}) == default_settings().model_dump(
        exclude={"accounts"}
    )


def test_mt5gate_config_names_the_file_and_an_explicit_path_wins(tmp_path: Path) -> None:
    named = write(tmp_path, ONE, "named.toml")
    other = write(tmp_path, ONE.replace("main", "other"), "other.toml")
    env = {"MT5GATE_CONFIG": str(named)}
    assert load_settings(None, env).default_account.name == "main"
    assert load_settings(other, env).default_account.name == "other"


def test_absolute_paths_stay_and_journals_may_be_absolute(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    text = (f'[service]\ndata_dir = "{elsewhere}"\n[[accounts]]\nname = "a"\n'
            f'password_file = "{elsewhere}/pw"\njournal = "{elsewhere}/j.db"\n')  # fmt: skip
    settings = load_settings(write(tmp_path / "", text), {})
    assert settings.data_dir == elsewhere
    assert settings.default_account.password_file == elsewhere / "pw"
    assert settings.journal_path(settings.default_account) == elsewhere / "j.db"


def test_reconcile_and_lease_settings_reach_the_session(tmp_path: Path) -> None:
    """The settle rules and the lease are per account, from the TOML (issue 15, A1 and B)."""
    path = write(tmp_path, ONE + "reconcile = { settle_s = 8, budget_s = 45.5, "
                 "require_clock_advance = true, sweep_interval_s = 30 }\n"
                 "lease = { ttl_s = 30, renew_s = 10, deadline_s = 20 }\n")  # fmt: skip
    (main,) = load_settings(path, {}).accounts
    policy = main.reconcile.policy()
    assert (policy.settle_s, policy.budget_s, policy.require_clock_advance) == (8.0, 45.5, True)
    assert policy.sweep_interval_s == 30.0
    assert main.lease.policy() == LeasePolicy(30.0, 10.0, 20.0)
    (default,) = load_settings(write(tmp_path, ONE, "plain.toml"), {}).accounts
    assert default.reconcile.policy() == ReconcilePolicy()  # the library's defaults
    assert default.lease.policy() == LeasePolicy()


def test_spec_settings_reach_the_session(tmp_path: Path) -> None:
    """How long orders reuse a symbol's specification is per account, from the TOML; the
    session a service builds gets it."""
    path = write(tmp_path, ONE + "specs = { ttl_s = 0 }\n")
    env = {"MAIN_PASSWORD": "x", "MT5GATE_DATA_DIR": str(tmp_path / "data")}
    settings = load_settings(path, env)
    assert settings.default_account.specs.policy() == SpecPolicy(0.0)
    settings.data_dir.mkdir()
    session = session_for(settings.default_account, settings, env, terminal=SimTerminal())
    assert session.spec_policy == SpecPolicy(0.0)
    session.close_journal()
    codes = write(tmp_path, ONE + "specs = { ttl_s = 2.5, refresh_on = [10014] }\n", "c.toml")
    assert load_settings(codes, {}).default_account.specs.policy() == SpecPolicy(2.5, {10014})
    (default,) = load_settings(write(tmp_path, ONE, "plain.toml"), {}).accounts
    assert default.specs.policy() == SpecPolicy()  # the library's default


def test_risk_settings_cover_every_risk_limit() -> None:
    limits = {f.name for f in dataclasses.fields(RiskLimits)}
    assert set(RiskSettings.model_fields) == limits
    assert RiskSettings().limits() == RiskLimits()


def test_hashes_are_normalised_and_burst_defaults() -> None:
    entry = ApiKeySettings(name="k", hash=HASH.upper().replace("SHA256", "sha256"),
                           scopes=frozenset({"read"}), rate_per_minute=5)  # fmt: skip
    assert (entry.hash, entry.burst) == (HASH, 1)
    assert "sha256$" not in repr(entry)


# ---------------------------------------------------------------------------------------------
# Every validation error names its file, its field and the rule


BAD_TERMINALS = [
    "mt4", "SIM", "", "bridge://", "bridge://host", "bridge://:18812", "rpyc://h:99999",
    "rpyc://h:0", "bridge://h:1/path", "bridge://h:1?tls=1", "http://h:1", "bridge://h:port",
]  # fmt: skip


@pytest.mark.parametrize("terminal", BAD_TERMINALS)
def test_a_bad_terminal_names_the_field_and_the_rule(tmp_path: Path, terminal: str) -> None:
    text = ONE + '[[accounts]]\nname = "b"\nterminal = "' + terminal + '"\n'
    message = problem(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'mt5gate.toml'}: accounts[1].terminal: ")
    assert "must be sim, official, bridge://host:port or rpyc://host:port" in message


def test_credentials_in_a_terminal_url_are_refused_and_not_echoed(tmp_path: Path) -> None:
    text = f'[[accounts]]\nname = "a"\nterminal = "bridge://user:{SECRET}@host:18812"\n'
    message = problem(tmp_path, text)
    assert "accounts[0].terminal" in message
    assert "without credentials" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ONE + ONE, "accounts: account names must be unique; repeated: main"),
        ("accounts = []\n", "accounts: at least one account is needed"),
        ("[service]\nport = 8000\n", "accounts: at least one [[accounts]] entry is needed"),
        ("[service]\nport = 0\n" + ONE, "service.port: must be greater than or equal to 1"),
        ("[service]\nport = 70000\n" + ONE, "service.port: must be less than or equal to 65535"),
        ('[service]\nport = "80"\n' + ONE, "service.port: must be a valid integer"),
        ("[service]\nport = true\n" + ONE, "service.port: must be a valid integer"),
        ("[service]\nprot = 80\n" + ONE, "service.prot: unknown field (did you mean 'port'?)"),
        ("[service]\nzzz = 1\n" + ONE, "service.zzz: unknown field"),
        ("[service]\npublic_health = 1\n" + ONE, "service.public_health: must be a valid boolean"),
        ('[service]\nhost = ""\n' + ONE, "service.host: String should have at least 1 character"),
        ('[service]\nlog_level = "loud"\n' + ONE, "service.log_level: must be one of CRITICAL"),
        ("[service]\nmax_body_bytes = 0\n" + ONE, "service.max_body_bytes: must be greater than 0"),
        ('[service]\ncors_origins = ["https://a.b/path"]\n' + ONE,
         "service.cors_origins: 'https://a.b/path' is not an origin"),
        ('[service]\ncors_origins = "*"\n' + ONE, "service.cors_origins: must be a list"),
        ('[[accounts]]\nname = "Main"\n', "accounts[0].name: must be 1 to 32 lower-case"),
        ('[[accounts]]\nname = "' + "a" * 33 + '"\n', "accounts[0].name: must be 1 to 32"),
        ("[[accounts]]\nlogin = 5\n", "accounts[0].name: is required"),
        (ONE + "login = 0\n", "accounts[0].login: must be greater than 0"),
        (ONE + 'login = "5001"\n', "accounts[0].login: must be a valid integer"),
        (ONE + 'pasword_env = "X"\n',
         "accounts[0].pasword_env: unknown field (did you mean 'password_env'?)"),
        (ONE + 'password_value = "x"\n',
         "accounts[0].password_value: is not accepted from a configuration file"),
        (ONE + 'password_env = "A"\npassword_file = "b"\n',
         "accounts[0]: give the password one way only, not password_env and password_file"),
        ('[[accounts]]\nname = "a"\nterminal = "bridge://h:1"\n',
         "accounts[0]: a bridge:// terminal needs token_env or token_file"),
        ('[[accounts]]\nname = "a"\nterminal = "bridge://h:1"\ntoken_env = "A"\ntoken_file = "b"\n',
         "accounts[0]: give the token one way only, not token_env and token_file"),
        (ONE + 'token_env = "T"\n', "accounts[0]: token_env and token_file are for bridge://"),
        (ONE + 'watch = ["EURUSD", ""]\n', "accounts[0].watch[1]: String should have at least"),
        (ONE + "risk = { max_volume_per_order = -1 }\n",
         "accounts[0].risk.max_volume_per_order: must be a finite number > 0, got -1"),
        (ONE + "risk = { max_exposure_per_symbol = nan }\n",
         "accounts[0].risk.max_exposure_per_symbol: must be a finite number > 0"),
        (ONE + "risk = { max_positions_per_symbol = 0 }\n",
         "accounts[0].risk.max_positions_per_symbol: must be an int >= 1"),
        (ONE + "risk = { max_orders_per_minute = true }\n",
         "accounts[0].risk.max_orders_per_minute: must be a valid integer"),
        (ONE + 'risk = { max_volume_per_order = "1" }\n',
         "accounts[0].risk.max_volume_per_order: must be a valid number"),
        (ONE + 'risk = { allowed_symbols = "EURUSD" }\n',
         "accounts[0].risk.allowed_symbols: must be a list"),
        (ONE + 'risk = { allowed_symbols = [" EURUSD"] }\n',
         "accounts[0].risk.allowed_symbols: must hold non-empty names"),
        (ONE + "risk = { max_lots = 1 }\n",
         "accounts[0].risk.max_lots: unknown field"),
        (ONE + "risk = 5\n", "accounts[0].risk: must be a valid dictionary"),
        (ONE + "reconcile = { settle_s = -1 }\n",
         "accounts[0].reconcile: .settle_s must be >= 0, got -1"),
        (ONE + 'reconcile = { settle_s = "5" }\n', "accounts[0].reconcile.settle_s"),
        (ONE + "reconcile = { settle = 5 }\n", "accounts[0].reconcile.settle: unknown field"),
        (ONE + "specs = { ttl_s = -1 }\n",
         "accounts[0].specs.ttl_s: must be greater than or equal to 0"),
        (ONE + 'specs = { refresh_on = ["10014"] }\n',
         "accounts[0].specs.refresh_on[0]: must be a valid integer"),
        (ONE + "lease = { ttl_s = 5, renew_s = 5 }\n",
         "accounts[0].lease: need 0 < renew_s < deadline_s < ttl_s"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\nscopes = ["read", "root"]\n',
         "api_keys[0].scopes[1]: must be 'read', 'trade' or 'admin'"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\nscopes = []\n',
         "api_keys[0].scopes: must name at least one scope"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\n', "api_keys[0].scopes: is required"),
        (ONE + '[[api_keys]]\nname = "k"\nhash = "abc"\nscopes = ["read"]\n',
         "api_keys[0].hash: must be sha256$<salt: 32 hex digits>$<digest: 64 hex digits>"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\nscopes = ["read"]\n'
         "rate_per_minute = 0\n", "api_keys[0].rate_per_minute: must be greater than 0"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\nscopes = ["read"]\nburst = 0\n',
         "api_keys[0].burst: must be greater than 0"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\nscopes = ["read"]\nscope = "x"\n',
         "api_keys[0].scope: unknown field (did you mean 'scopes'?)"),
        (ONE + f'[[api_keys]]\nname = "k"\nhash = "{HASH}"\nscopes = ["read"]\n' * 2,
         "api_keys: API key names must be unique; repeated: k"),
    ],
)  # fmt: skip
def test_every_validation_error_names_the_file_and_the_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = problem(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'mt5gate.toml'}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[service\n", "not valid TOML: "),
        ("[[acounts]]\nname = 'a'\n", "acounts: unknown table or key (did you mean 'accounts'?)"),
        ("server = 'x'\n" + ONE, "server: unknown table or key (did you mean 'service'?)"),
        ("service = 5\n" + ONE, "service: must be a table ([service])"),
        ("accounts = 5\n", "accounts: must be an array of tables ([[accounts]])"),
        ('accounts = ["main"]\n', "accounts: must be an array of tables"),
        ("api_keys = 5\n" + ONE, "api_keys: must be an array of tables ([[api_keys]])"),
        ("[service]\naccounts = []\n" + ONE, "service.accounts: unknown field (use [[accounts]]"),
    ],
)  # fmt: skip
def test_the_file_shape_is_checked_first(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problem(tmp_path, text)


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the configuration file .*nope\.toml"):
        load_settings(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_settings(tmp_path, {})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[[accounts]]")
    with pytest.raises(ConfigError, match=r"binary\.toml: not UTF-8 text"):
        load_settings(binary, {})


def test_many_problems_are_listed_on_one_line_then_counted(tmp_path: Path) -> None:
    text = "".join(f'[[accounts]]\nname = "a{n}"\nterminal = "bad"\n' for n in range(13))
    message = problem(tmp_path, text)
    assert message.count("must be sim, official") == 10
    assert message.endswith(" (and 3 more)")
    assert "accounts[9].terminal" in message
    assert "accounts[10]" not in message


def test_constructing_in_code_validates_too() -> None:
    with pytest.raises(ValidationError, match="must be sim, official"):
        account(terminal="nope")
    with pytest.raises(ValidationError, match="at least one account"):
        ServiceSettings(accounts=())
    assert ServiceSettings(accounts=(account(),), log_level="warning").log_level == "WARNING"
    assert ServiceSettings(accounts=(account(),), cors_origins=("*",)).cors_origins == ("*",)


# ---------------------------------------------------------------------------------------------
# Environment overrides


def test_every_environment_override(tmp_path: Path) -> None:
    keys = [{"name": "env-key", "hash": HASH, "scopes": ["admin"], "rate_per_minute": 60}]
    env = {
        "MT5GATE_HOST": " 0.0.0.0 ",
        "MT5GATE_PORT": "9000",
        "MT5GATE_DATA_DIR": "var/mt5gate",
        "MT5GATE_PUBLIC_HEALTH": "false",
        "MT5GATE_PUBLIC_METRICS": "YES",
        "MT5GATE_CORS_ORIGINS": "https://a.example, ,http://b.example:8080",
        "MT5GATE_MAX_BODY_BYTES": "1024",
        "MT5GATE_LOG_LEVEL": "warning",
        "MT5GATE_ACCESS_LOG": "off",
        "MT5GATE_STREAM_COMPRESSION": "0",
        "MT5GATE_REQUIRE_IDEMPOTENCY_KEY": "no",
        "MT5GATE_API_KEYS": json.dumps(keys),
    }
    for settings in (load_settings(None, env), load_settings(write(tmp_path, FULL), env)):
        assert (settings.host, settings.port) == ("0.0.0.0", 9000)
        assert settings.data_dir == Path("var/mt5gate")
        assert (settings.public_health, settings.public_metrics) == (False, True)
        assert settings.cors_origins == ("https://a.example", "http://b.example:8080")
        assert (settings.max_body_bytes, settings.log_level) == (1024, "WARNING")
        assert settings.access_log is False
        assert settings.stream_compression is False
        assert settings.require_idempotency_key is False
        (only,) = settings.api_keys  # replaces the file's keys
        assert (only.name, only.scopes, only.burst) == ("env-key", frozenset({"admin"}), 10)


@pytest.mark.parametrize(
    ("word", "value"),
    [("1", True), ("true", True), ("On", True), ("0", False), ("FALSE", False), ("no", False)],
)
def test_environment_booleans(word: str, value: bool) -> None:
    settings = load_settings(None, {"MT5GATE_PUBLIC_METRICS": word, "MT5GATE_PUBLIC_HEALTH": word})
    assert settings.public_metrics is value
    assert settings.public_health is value


def test_empty_environment_variables_count_as_unset(tmp_path: Path) -> None:
    names = ("MT5GATE_HOST", "MT5GATE_PORT", "MT5GATE_API_KEYS", "MT5GATE_PUBLIC_HEALTH",
             "MT5GATE_CORS_ORIGINS")  # fmt: skip
    env = dict.fromkeys(names, "")
    assert load_settings(None, env) == default_settings()
    assert len(load_settings(write(tmp_path, FULL), env).api_keys) == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MT5GATE_PORT": "eighty"}, "MT5GATE_PORT: must be a whole number"),
        ({"MT5GATE_PORT": "0"}, "MT5GATE_PORT: must be greater than or equal to 1"),
        ({"MT5GATE_PORT": "65536"}, "MT5GATE_PORT: must be less than or equal to 65535"),
        ({"MT5GATE_MAX_BODY_BYTES": "-1"}, "MT5GATE_MAX_BODY_BYTES: must be greater than 0"),
        ({"MT5GATE_PUBLIC_HEALTH": "maybe"}, "MT5GATE_PUBLIC_HEALTH: must be true or false"),
        ({"MT5GATE_PUBLIC_METRICS": "2"}, "MT5GATE_PUBLIC_METRICS: must be true or false"),
        ({"MT5GATE_LOG_LEVEL": "chatty"}, "MT5GATE_LOG_LEVEL: must be one of CRITICAL"),
        ({"MT5GATE_HOST": "a b"}, "MT5GATE_HOST: String should match pattern"),
        ({"MT5GATE_CORS_ORIGINS": "example.com"}, "MT5GATE_CORS_ORIGINS: 'example.com' is not"),
        ({"MT5GATE_API_KEYS": "[{"}, "MT5GATE_API_KEYS: not valid JSON (Expecting property name"),
        ({"MT5GATE_API_KEYS": '{"name": "k"}'}, "MT5GATE_API_KEYS: must be a JSON list of API"),
        ({"MT5GATE_API_KEYS": '["k"]'}, "MT5GATE_API_KEYS: must be a JSON list of API"),
        ({"MT5GATE_API_KEYS": json.dumps([{"name": "k", "hash": HASH, "scopes": ["root"]}])},
         "MT5GATE_API_KEYS[0].scopes[0]: must be 'read', 'trade' or 'admin'"),
        ({"MT5GATE_API_KEYS": json.dumps([{"name": "k", "hash": "x", "scopes": ["read"]}])},
         "MT5GATE_API_KEYS[0].hash: must be sha256$"),
        ({"MT5GATE_API_KEYS": json.dumps([{"name": "k", "hash": HASH, "scopes": ["read"],
                                           "rate_per_min": 5}])},
         "MT5GATE_API_KEYS[0].rate_per_min: unknown field (did you mean 'rate_per_minute'?)"),
        ({"MT5GATE_API_KEYS": "[]", "MT5GATE_PORT": "0"}, "MT5GATE_PORT: must be greater"),
    ],
)  # fmt: skip
def test_a_bad_environment_value_names_its_variable(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    for path in (None, write(tmp_path, ONE)):
        with pytest.raises(ConfigError) as caught:
            load_settings(path, env)
        assert str(caught.value).startswith(expected)


def test_mt5gate_sim_start_pins_every_simulated_account_only(tmp_path: Path) -> None:
    env = {"MT5GATE_SIM_START": " 2026-01-10T12:00 "}
    (demo,) = load_settings(None, env).accounts
    assert demo.sim_start == datetime(2026, 1, 10, 12)
    main, paper, win, box = load_settings(write(tmp_path, FULL), env).accounts
    assert paper.sim_start == datetime(2026, 1, 10, 12)  # replaces the file's
    assert (main.sim_start, win.sim_start, box.sim_start) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[accounts]]\nname = "w"\nterminal = "official"\nsim_start = 2026-01-06T10:00:00\n',
         'accounts[0]: sim_start is for simulated accounts only (terminal = "sim")'),
        (ONE + 'sim_start = "next tuesday"\n', "accounts[0].sim_start: must be a valid datetime"),
    ],
)  # fmt: skip
def test_sim_start_is_a_time_for_simulated_accounts(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in problem(tmp_path, text)
    with pytest.raises(ConfigError, match="MT5GATE_SIM_START: must be an ISO 8601 server time"):
        load_settings(None, {"MT5GATE_SIM_START": "tuesday"})


def test_mt5gate_config_pointing_nowhere_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_settings(None, {"MT5GATE_CONFIG": str(tmp_path / "missing.toml")})


# ---------------------------------------------------------------------------------------------
# Passwords and tokens


def test_password_and_token_from_the_environment() -> None:
    main = account(terminal="bridge://h:18812", login=1, password_env="PW", token_env="TOKEN")
    env = {"PW": f"{SECRET} \n", "TOKEN": f"  {SECRET}-token\n"}
    password, token = main.password(env), main.terminal_token(env)
    assert isinstance(password, SecretStr)
    assert isinstance(token, SecretStr)
    assert password.get_secret_value() == f"{SECRET} "  # only the line end is stripped
    assert token.get_secret_value() == f"{SECRET}-token"  # stripped like `mt5gate bridge`


def test_password_and_token_from_files(tmp_path: Path) -> None:
    pw = secret_file(tmp_path / "pw", f"{SECRET}\r\n")
    tok = secret_file(tmp_path / "tok", f"\n{SECRET}-token \n", mode=0o640)
    main = account(terminal="bridge://h:18812", password_file=pw, token_file=tok)
    assert main.password({}) == SecretStr(SECRET)
    assert main.terminal_token({}) == SecretStr(f"{SECRET}-token")


def test_relative_secret_files_are_found_next_to_the_configuration(tmp_path: Path) -> None:
    secret_file(tmp_path / "secrets" / "paper-password", SECRET + "\n")
    secret_file(tmp_path / "secrets" / "bridge-token", SECRET + "-token\n")
    settings = load_settings(write(tmp_path, FULL), {"MAIN_PASSWORD": SECRET + "-main"})
    main, paper = settings.accounts[:2]
    assert main.password({"MAIN_PASSWORD": SECRET + "-main"}) == SecretStr(SECRET + "-main")
    assert main.terminal_token({}) == SecretStr(SECRET + "-token")
    assert paper.password({}) == SecretStr(SECRET)


def test_no_password_configured_is_none() -> None:
    assert account().password({"ANY": "x"}) is None
    assert account().terminal_token({}) is None


@pytest.mark.parametrize(
    ("fields", "call", "expected"),
    [
        ({"password_env": "MISSING_PW"}, "password",
         "account 'main': the environment variable MISSING_PW (password_env) is not set"),
        ({"password_env": "EMPTY"}, "password",
         "account 'main': the environment variable EMPTY (password_env) is empty"),
        ({"terminal": "bridge://h:1", "token_env": "MISSING_TOKEN"}, "terminal_token",
         "account 'main': the environment variable MISSING_TOKEN (token_env) is not set"),
        ({"terminal": "bridge://h:1", "token_env": "BLANK"}, "terminal_token",
         "account 'main': the environment variable BLANK (token_env) is empty"),
    ],
)  # fmt: skip
def test_a_missing_variable_names_the_account_and_the_variable(
    fields: dict[str, Any], call: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        getattr(account(**fields), call)({"EMPTY": "\n", "BLANK": "  \n", "OTHER": SECRET})
    assert str(caught.value) == expected


def test_a_missing_secret_file_names_the_account_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as caught:
        account(password_file=missing).password({})
    assert str(caught.value) == (
        f"account 'main': cannot read password_file {missing}: No such file or directory"
    )
    with pytest.raises(ConfigError, match=r"cannot read token_file .*: Is a directory"):
        account(terminal="bridge://h:1", token_file=tmp_path).terminal_token({})


def test_an_empty_or_binary_secret_file_is_refused(tmp_path: Path) -> None:
    empty = secret_file(tmp_path / "empty", "\n")
    with pytest.raises(ConfigError, match=r"account 'main': password_file .*empty is empty"):
        account(password_file=empty).password({})
    binary = secret_file(tmp_path / "binary", "")
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"password_file .*binary is not UTF-8 text"):
        account(password_file=binary).password({})


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    open_pw = secret_file(tmp_path / "pw", SECRET, mode=0o644)
    with pytest.raises(ConfigError) as caught:
        account(password_file=open_pw).password({})
    assert str(caught.value) == (
        f"account 'main': password_file {open_pw} is readable by every user; chmod 600 it"
    )
    open_token = secret_file(tmp_path / "tok", SECRET, mode=0o604)
    with pytest.raises(ConfigError, match=r"token_file .* is readable by every user"):
        account(terminal="bridge://h:1", token_file=open_token).terminal_token({})
    open_pw.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert account(password_file=open_pw).password({}) == SecretStr(SECRET)


# ---------------------------------------------------------------------------------------------
# Secrets stay secret


def test_secrets_never_reach_a_repr_an_error_or_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pw = secret_file(tmp_path / "pw", SECRET)
    token = secret_file(tmp_path / "token", SECRET + "-token")
    text = (f'[[accounts]]\nname = "a"\nterminal = "bridge://h:18812"\n'
            f'password_file = "{pw}"\ntoken_file = "{token}"\n'
            '[[accounts]]\nname = "b"\npassword_env = "B_PW"\n')  # fmt: skip
    env = {"B_PW": SECRET + "-env", "MT5GATE_API_KEYS": json.dumps(
        [{"name": "k", "hash": hash_api_key(SECRET + "-key"), "scopes": ["read"]}])}  # fmt: skip
    settings = load_settings(write(tmp_path, text), env)
    first, second = settings.accounts
    secrets = [first.password(env), first.terminal_token(env), second.password(env)]
    assert [s.get_secret_value() for s in secrets if s is not None] == [
        SECRET, SECRET + "-token", SECRET + "-env",
    ]  # fmt: skip
    coded = ServiceSettings(accounts=(account(password_value=SecretStr(SECRET)),))
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(coded), str(coded),
             coded.model_dump_json(), repr(secrets), str(secrets)]  # fmt: skip

    errors: list[str] = []
    bad_inputs = [
        f'[[accounts]]\nname = "a"\nterminal = "bridge://u:{SECRET}@h:1"\n',
        f'[[accounts]]\nname = "a"\npassword_value = "{SECRET}"\n',
        f'[[accounts]]\nname = "a"\nlogin = "{SECRET}"\n',
        f'[[accounts]]\nname = "{SECRET}"\n',
        f'[[accounts]]\nname = "a"\n[[api_keys]]\nname = "k"\nhash = "mg_{SECRET}"\n'
        'scopes = ["read"]\n',
    ]  # fmt: skip
    for number, bad in enumerate(bad_inputs):
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, bad, f"bad{number}.toml"), {})
        errors.append(str(caught.value))
    for env_value in ({"MT5GATE_API_KEYS": json.dumps([{"name": "k", "hash": SECRET,
                                                        "scopes": ["read"]}])},
                      {"MT5GATE_API_KEYS": f"[{SECRET}"}, {"MT5GATE_PORT": SECRET},
                      {"MT5GATE_PUBLIC_HEALTH": SECRET}):  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            load_settings(None, env_value)
        errors.append(str(caught.value))
    open_file = secret_file(tmp_path / "open", SECRET, mode=0o644)
    for unreadable in (account(password_env="PW"), account(password_file=open_file)):
        with pytest.raises(ConfigError) as caught:
            unreadable.password({"OTHER": SECRET})
        errors.append(str(caught.value))
    with pytest.raises(ValidationError) as invalid:
        AccountSettings(name="a", terminal=f"bridge://u:{SECRET}@h:1")
    errors.append(str(invalid.value))

    assert len(errors) == 12
    for text_shown in [*shown, *errors, caplog.text]:
        assert SECRET not in text_shown
        assert SECRET.lower() not in text_shown.lower()


def test_idempotency_keys_are_required_unless_switched_off(tmp_path: Path) -> None:
    assert load_settings(None, {}).require_idempotency_key is True
    back_on = {"MT5GATE_REQUIRE_IDEMPOTENCY_KEY": "true"}
    assert load_settings(write(tmp_path, FULL), back_on).require_idempotency_key is True
    with pytest.raises(ConfigError, match="MT5GATE_REQUIRE_IDEMPOTENCY_KEY: must be true or"):
        load_settings(None, {"MT5GATE_REQUIRE_IDEMPOTENCY_KEY": "maybe"})
