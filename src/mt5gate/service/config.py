"""The service's settings: a TOML file of accounts and API keys, then ``MT5GATE_*`` overrides.

::

    [service]                      # every key optional
    host = "127.0.0.1"
    port = 8000
    data_dir = ".mt5gate"          # journals and the local API key live here
    public_health = true           # /v1/health without a key
    public_metrics = false         # /metrics without a key
    cors_origins = []              # CORS stays off unless origins are listed
    max_body_bytes = 65536
    log_level = "INFO"
    access_log = true              # uvicorn's line per request (query values shown as ***)
    stream_compression = true      # /v1/stream offers permessage-deflate (false saves CPU)
    require_idempotency_key = true # trading writes without an Idempotency-Key get 428

    [[accounts]]                   # at least one
    name = "main"                  # [a-z0-9_-]{1,32}: the {account} of the routes
    terminal = "bridge://10.0.0.5:18812"   # sim | official | bridge://host:port | rpyc://host:port
    login = 12345678
    server = "Broker-Live"
    password_env = "MAIN_PASSWORD" # or password_file = "secrets/main-password" (mode 600)
    token_file = "secrets/bridge-token"    # bridge:// only (or token_env)
    tls = true                     # bridge:// only: reach the bridge over TLS (mt5gate bridge
    tls_ca_file = "bridge-ca.pem"  # --tls-cert): the certificate is always verified, against
                                   # this CA file (default: the system's trusted CAs)
    tls_server_name = "bridge.example.com" # tls only: the name the certificate must match
                                   # (default: the URL's host; for a bridge reached by IP)
    health = { tick_age_fail_s = 120 }     # this account's [health] keys (below)
    # terminal_path = "C:/MT5 A/terminal64.exe"  # official only: the installation it attaches to
    # isolate = "auto"             # official only: auto | process (a child process) | inline
    journal = "main-orders.db"     # relative to data_dir; default <data_dir>/<name>-orders.db
    watch = ["EURUSD"]             # symbols whose ticks the health checks watch
    risk = { max_volume_per_order = 1.0, allowed_symbols = ["EURUSD", "GBPUSD"] }
    reconcile = { settle_s = 5.0, budget_s = 30.0 }  # how lost replies are settled (below)
    lease = { ttl_s = 15.0, renew_s = 5.0, deadline_s = 10.0 }  # one owner per account
    specs = { ttl_s = 5.0 }        # orders reuse a symbol's specification this long (0: never)

    [[accounts]]                   # a simulated account (terminal = "sim", the default)
    name = "replay"
    password_env = "SIM_PASSWORD"  # the simulator's demo password, sim-pass-5001
    sim_start = 2026-01-06T10:00:00        # sim only: the simulated server clock starts at this
                                           # server time (a Tuesday morning: forex open) and runs
                                           # in real time from there; default: now

    [health]                       # health thresholds and market hours, for every account
    tick_age_warn_s = 60           # see mt5gate.service.health_settings for every key
    hours = "forex"                # "forex", "always" or [{ days = "mon-fri", from = "01:00",
    utc_offset_s = 7200            # to = "23:00" }], in the broker's server time

    [bot]                          # the Telegram bot (mt5gate bot, mt5gate serve --bot)
    token_env = "MT5GATE_BOT_TOKEN"        # see mt5gate.bot.settings for every key
    users = [{ id = 123456789, role = "admin" }]

    [bus]                          # the bus between replicas (NATS): see mt5gate.fleet
    url = "nats://127.0.0.1:4222"          # no credentials here: token_env, token_file or
    token_env = "MT5GATE_BUS_TOKEN"        # credentials_file (a NATS .creds file)

    [[api_keys]]                   # none: ``mt5gate serve`` makes a local key
    name = "ci"
    hash = "sha256$<salt>$<digest>"        # mt5gate serve --new-key ci
    scopes = ["read", "trade"]             # read, trade, admin
    rate_per_minute = 600
    burst = 100                            # default rate_per_minute // 6

Relative ``data_dir``, ``password_file``, ``token_file`` and ``tls_ca_file`` in a file are
relative to the file's directory; a relative ``journal`` is relative to ``data_dir``. Secrets
are never in the file: passwords and bridge tokens come from environment variables or secret
files (not readable by every user), read only when the session is built, and held as
``SecretStr``.

Environment overrides (an empty variable counts as unset): ``MT5GATE_CONFIG`` (the file, when
no path is given), ``MT5GATE_HOST``, ``MT5GATE_PORT``, ``MT5GATE_DATA_DIR``,
``MT5GATE_PUBLIC_HEALTH`` and ``MT5GATE_PUBLIC_METRICS`` (true/false/1/0/yes/no/on/off),
``MT5GATE_CORS_ORIGINS`` (comma-separated), ``MT5GATE_MAX_BODY_BYTES``, ``MT5GATE_LOG_LEVEL``,
``MT5GATE_ACCESS_LOG``, ``MT5GATE_STREAM_COMPRESSION`` and
``MT5GATE_REQUIRE_IDEMPOTENCY_KEY`` (booleans as above),
``MT5GATE_API_KEYS``: a JSON list of ``[[api_keys]]`` objects, which replaces the file's,
``MT5GATE_SIM_START`` (an ISO 8601 server time, ``2026-01-06T10:00``): the ``sim_start`` of every
simulated account, ``MT5GATE_BUS_URL`` (the ``url`` of ``[bus]``), and for the bot
``MT5GATE_BOT_USERS`` (``id:role`` pairs, comma-separated:
replaces ``bot.users``) and ``MT5GATE_BOT_API_URL``.

Every problem is one :class:`ConfigError` line naming the file or variable, the dotted field
(``accounts[1].terminal``) and the rule, never a secret value. With neither a file nor
``MT5GATE_CONFIG``, :func:`default_settings` serves one SIMULATED demo account.
"""

from __future__ import annotations

import difflib
import json
import ntpath
import os
import re
import socket
import ssl
import stat
import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mt5gate.bot.settings import AlertPolicy, BotMember, BotSettings
from mt5gate.orders.ownership import LeasePolicy
from mt5gate.orders.policies import ReconcilePolicy
from mt5gate.orders.risk import RiskLimits
from mt5gate.service.auth import KEY_NAME_PATTERN, Scope, check_hash, default_burst
from mt5gate.service.health_settings import HealthSettings, WindowSettings
from mt5gate.session.specs import SPEC_RETCODES, SpecPolicy
from mt5gate.terminal.tls import checked_server_name

__all__ = [
    "DEFAULT_PASSWORD",
    "TERMINAL_RULE",
    "AccountSettings",
    "ApiKeySettings",
    "ConfigError",
    "HealthSettings",
    "RiskSettings",
    "ServiceSettings",
    "default_settings",
    "load_settings",
]

#: The simulator's demo account password (``mt5gate.sim`` demo account 5001): not a secret.
DEFAULT_PASSWORD: Final = "sim-pass-5001"
TERMINAL_RULE: Final = "must be sim, official, bridge://host:port or rpyc://host:port"
_LOG_LEVELS: Final = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_ENV_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_ENV_FALSE: Final = frozenset({"0", "false", "no", "off"})
_FROM_FILE: Final = "from_file"
_MAX_LISTED: Final = 10

StrictInt = Annotated[int, Field(strict=True)]
StrictFloat = Annotated[float, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(pattern=KEY_NAME_PATTERN)]


class ConfigError(Exception):
    """A configuration problem: one line naming the file or variable, the field and the rule."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


# ---------------------------------------------------------------------------------------------
# Accounts


class RiskSettings(_Frozen):
    """An account's pre-trade risk limits: the fields of :class:`mt5gate.orders.RiskLimits`,
    checked by ``RiskLimits`` itself (None = no limit)."""

    max_volume_per_order: StrictFloat | None = None
    max_positions_per_symbol: StrictInt | None = None
    max_exposure_per_symbol: StrictFloat | None = None
    max_orders_per_minute: StrictInt | None = None
    allowed_symbols: frozenset[str] | None = None
    halted: StrictBool = False

    @field_validator("*")
    @classmethod
    def _as_risk_limits(cls, value: object, info: ValidationInfo) -> object:
        field = str(info.field_name)
        try:
            one: dict[str, Any] = {field: value}
            RiskLimits(**one)
        except ValueError as error:
            raise ValueError(str(error).removeprefix(f"RiskLimits.{field} ")) from None
        return value

    def limits(self) -> RiskLimits:
        """These limits as :class:`~mt5gate.orders.RiskLimits`."""
        return RiskLimits(**self.model_dump())


class ReconcileSettings(_Frozen):
    """How an order with an unknown outcome is settled: the fields of
    :class:`mt5gate.orders.ReconcilePolicy` (its defaults are chosen for a real terminal),
    checked by ``ReconcilePolicy`` itself."""

    first_s: StrictFloat | StrictInt = 0.1
    multiplier: StrictFloat | StrictInt = 2.0
    max_interval_s: StrictFloat | StrictInt = 2.0
    settle_s: StrictFloat | StrictInt = 5.0
    budget_s: StrictFloat | StrictInt = 30.0
    replay_budget_s: StrictFloat | StrictInt = 10.0
    window_s: StrictFloat | StrictInt = 2 * 86400.0
    require_clock_advance: StrictBool = False
    sweep_interval_s: StrictFloat | StrictInt | None = 60.0
    history_lag_s: StrictFloat | StrictInt = 60.0

    @model_validator(mode="after")
    def _as_policy(self) -> Self:
        try:
            self.policy()
        except ValueError as error:
            raise ValueError(str(error).removeprefix("ReconcilePolicy")) from None
        return self

    def policy(self) -> ReconcilePolicy:
        """These settings as a :class:`~mt5gate.orders.ReconcilePolicy`."""
        sweep = None if self.sweep_interval_s is None else float(self.sweep_interval_s)
        return ReconcilePolicy(
            float(self.first_s), float(self.multiplier), float(self.max_interval_s),
            float(self.settle_s), float(self.budget_s), float(self.replay_budget_s),
            float(self.window_s), self.require_clock_advance, sweep, float(self.history_lag_s),
        )  # fmt: skip


class SpecSettings(_Frozen):
    """How long an order may be built from a symbol specification read earlier
    (:class:`mt5gate.session.specs.SpecPolicy`): ``ttl_s`` seconds, 0 to read it for every
    order; ``refresh_on``, the retcodes after which it is read again (default: those that may
    mean the contract changed)."""

    ttl_s: Annotated[StrictFloat | StrictInt, Field(ge=0)] = 5.0
    refresh_on: tuple[StrictInt, ...] = tuple(sorted(SPEC_RETCODES))

    def policy(self) -> SpecPolicy:
        """These settings as a :class:`~mt5gate.session.specs.SpecPolicy`."""
        return SpecPolicy(float(self.ttl_s), frozenset(self.refresh_on))


class LeaseSettings(_Frozen):
    """How the account's lease is kept (:class:`mt5gate.orders.LeasePolicy`): a lease not
    renewed for ``ttl_s`` is free for another process; the owner renews every ``renew_s`` and
    stops trading after ``deadline_s`` without a renewal (``renew_s < deadline_s < ttl_s``)."""

    ttl_s: StrictFloat | StrictInt = 15.0
    renew_s: StrictFloat | StrictInt = 5.0
    deadline_s: StrictFloat | StrictInt = 10.0

    @model_validator(mode="after")
    def _as_policy(self) -> Self:
        try:
            self.policy()
        except ValueError as error:
            raise ValueError(str(error).removeprefix("LeasePolicy: ")) from None
        return self

    def policy(self) -> LeasePolicy:
        """These settings as a :class:`~mt5gate.orders.LeasePolicy`."""
        return LeasePolicy(float(self.ttl_s), float(self.renew_s), float(self.deadline_s))


class StoreSettings(_Frozen):
    """Where the order journals, idempotency keys, client ids and leases live when replicas
    share them (``[store]``): a PostgreSQL URL, or ``sqlite:///FILE`` (relative to
    ``data_dir``; ``sqlite:////abs/path``) for replicas on one host. Without it each account has
    its own SQLite file.

    The URL may carry a password, so it is a secret: give it with ``url_env`` or ``url_file``
    (or ``MT5GATE_STORE_URL``); ``url`` in the file is for a URL without a password (the
    password then comes from libpq's own ``PGPASSWORD`` or ``.pgpass``)."""

    url: Annotated[str, Field(min_length=1)] | None = None
    url_env: Annotated[str, Field(min_length=1)] | None = None
    url_file: Path | None = None
    #: the PostgreSQL schema of the tables (one database can hold several fleets' stores)
    pg_schema: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "mt5gate"

    @field_validator("url")
    @classmethod
    def _no_password_in_the_file(cls, value: str | None) -> str | None:
        if value is not None:
            _store_url(value)
            if urlsplit(value).password is not None:
                raise ValueError("must not carry a password in the file (use url_env or "
                                 "url_file, or PGPASSWORD)")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [s for s in ("url", "url_env", "url_file") if getattr(self, s) is not None]
        if len(given) > 1:
            raise ValueError(f"give the store's URL one way only, not {' and '.join(given)}")
        if not given:
            raise ValueError("needs url, url_env or url_file (a postgresql:// URL)")
        return self

    def dsn(self, env: Mapping[str, str]) -> SecretStr:
        """The URL, read from its variable or file; ``ConfigError`` naming where, never the
        value, when it is missing or not a ``postgresql://`` URL."""
        if self.url is not None:
            return SecretStr(self.url)
        where, value = "[store]", None
        if self.url_env is not None:
            value = env.get(self.url_env)
            if not value:
                raise ConfigError(f"{where}: the environment variable {self.url_env} (url_env) "
                                  "is not set")  # fmt: skip
        elif self.url_file is not None:
            value = _read_secret_file(where, "url_file", self.url_file, str.strip)
        try:
            _store_url(value or "")
        except ValueError as error:
            source = self.url_env or self.url_file
            raise ConfigError(f"{where}: the URL from {source} {error}") from None
        return SecretStr(str(value).strip())


def _store_url(value: str) -> None:
    """Refuse what is not a PostgreSQL or SQLite URL (the message never echoes the value)."""
    parts = urlsplit(value.strip())
    if parts.scheme in ("postgresql", "postgres"):
        return
    if parts.scheme == "sqlite" and not parts.netloc and parts.path.strip("/"):
        return
    raise ValueError(
        "must be a postgresql://user@host:port/database URL (or sqlite:///FILE "
        "for replicas on one host)"
    )


class FleetSettings(_Frozen):
    """This service as one replica of a fleet (``[fleet]``): replicas share the accounts of
    one configuration over one store, each account owned by one replica at a time, and any
    replica answers for any account (DESIGN §8, docs/guides/fleet.md).

    ``replica``: this replica's name, unique in the fleet (default ``<host>-<port>``).
    ``heartbeat_s``: how often it says it is alive; ``member_ttl_s``: a replica silent for this
    long is gone, and its accounts are taken over. ``advertise_url``: how the other replicas
    reach this one (default the service's own URL)."""

    replica: Name | None = None
    heartbeat_s: StrictFloat | StrictInt = 1.0
    member_ttl_s: StrictFloat | StrictInt = 5.0
    advertise_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    forward_timeout_s: Annotated[StrictFloat | StrictInt, Field(gt=0)] = 30.0

    @model_validator(mode="after")
    def _timing(self) -> Self:
        if not 0 < 2 * self.heartbeat_s <= self.member_ttl_s:
            raise ValueError(
                "need 0 < 2 * heartbeat_s <= member_ttl_s (a replica must miss two heartbeats "
                f"before it counts as gone), got heartbeat_s={self.heartbeat_s}, "
                f"member_ttl_s={self.member_ttl_s}"
            )
        return self


class AccountSettings(_Frozen):
    """One MT5 account the service serves.

    ``password_value`` holds the simulator's demo password for :func:`default_settings` only;
    a configuration file may not set it (:func:`load_settings` refuses it): passwords come from
    ``password_env`` or ``password_file``.
    """

    name: Name
    terminal: str = "sim"
    login: Annotated[StrictInt, Field(gt=0)] | None = None
    server: Annotated[str, Field(min_length=1)] | None = None
    password_env: Annotated[str, Field(min_length=1)] | None = None
    password_file: Path | None = None
    token_env: Annotated[str, Field(min_length=1)] | None = None
    token_file: Path | None = None
    #: reach the bridge over TLS, its certificate verified (against ``tls_ca_file``, else the
    #: system's trusted CAs); bridge:// only
    tls: StrictBool = False
    tls_ca_file: Path | None = None
    #: the host name the bridge's certificate must match (sent as SNI too), for a bridge
    #: reached at an IP address or by another name than its certificate's; default: the URL's
    tls_server_name: str | None = None
    #: this account's health thresholds and market hours, over the service's ``[health]``
    health: HealthSettings | None = None
    #: the terminal installation (its ``terminal64.exe``) an ``official`` account's session
    #: passes to ``initialize(path=...)`` (an absolute path of an ``.exe``)
    terminal_path: str | None = None
    #: where an ``official`` account's package runs: ``auto`` (a child process when the
    #: configuration has several official accounts), ``process`` or ``inline`` (this process)
    isolate: Literal["auto", "process", "inline"] = "auto"
    journal: Path | None = None
    watch: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    risk: RiskSettings | None = None
    reconcile: ReconcileSettings = ReconcileSettings()
    lease: LeaseSettings = LeaseSettings()
    specs: SpecSettings = SpecSettings()
    sim_start: datetime | None = None
    password_value: SecretStr | None = None

    @field_validator("terminal")
    @classmethod
    def _known_terminal(cls, value: str) -> str:
        return _terminal(value)

    @field_validator("tls_server_name")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        return None if value is None else checked_server_name(value)

    @field_validator("terminal_path")
    @classmethod
    def _installation(cls, value: str | None) -> str | None:
        return None if value is None else _terminal_path(value)

    @field_validator("password_value")
    @classmethod
    def _not_from_a_file(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and isinstance(info.context, dict) and info.context.get(_FROM_FILE):
            raise ValueError(
                "is not accepted from a configuration file (use password_env or password_file)"
            )
        return value

    @model_validator(mode="after")
    def _one_source_each(self) -> Self:
        for what, sources in (
            ("password", ("password_env", "password_file", "password_value")),
            ("token", ("token_env", "token_file")),
        ):
            given = [s for s in sources if getattr(self, s) is not None]
            if len(given) > 1:
                raise ValueError(f"give the {what} one way only, not {' and '.join(given)}")
        bridge = self.terminal.startswith("bridge://")
        has_token = self.token_env is not None or self.token_file is not None
        if bridge and not has_token:
            raise ValueError("a bridge:// terminal needs token_env or token_file (its token)")
        if has_token and not bridge:
            raise ValueError("token_env and token_file are for bridge:// terminals only")
        tls_named = self.tls_ca_file is not None or self.tls_server_name is not None
        if (self.tls or tls_named) and not bridge:
            raise ValueError("tls, tls_ca_file and tls_server_name are for bridge:// terminals "
                             "only (TLS to an mt5gate bridge)")  # fmt: skip
        for field, purpose in (("tls_ca_file", "the CA verifies"),
                               ("tls_server_name", "the name is checked against")):  # fmt: skip
            if getattr(self, field) is not None and not self.tls:
                raise ValueError(f"{field} needs tls = true ({purpose} the bridge's TLS "
                                 "certificate)")  # fmt: skip
        if self.sim_start is not None and not self.simulated:
            raise ValueError('sim_start is for simulated accounts only (terminal = "sim")')
        if self.terminal != "official":
            for field, chosen in (("terminal_path", self.terminal_path is not None),
                                  ("isolate", self.isolate != "auto")):  # fmt: skip
                if chosen:
                    raise ValueError(f'{field} is for terminal = "official" only (a bridge\'s '
                                     "terminal is chosen where the bridge runs)")  # fmt: skip
        return self

    @property
    def simulated(self) -> bool:
        """Whether this account runs on mt5gate's simulator, not a real MT5 terminal."""
        return self.terminal == "sim"

    def password(self, env: Mapping[str, str]) -> SecretStr | None:
        """The account's password from its variable or file (``None`` without one: the session
        then attaches to the terminal as it is). ``ConfigError`` when it cannot be read."""
        if self.password_value is not None:
            return self.password_value
        return self._secret("password", self.password_env, self.password_file, env,
                            lambda text: text.rstrip("\r\n"))  # fmt: skip

    def terminal_token(self, env: Mapping[str, str]) -> SecretStr | None:
        """The bridge token from its variable or file (stripped like ``mt5gate bridge
        --token-file`` strips it), ``None`` for other terminals."""
        return self._secret("token", self.token_env, self.token_file, env, str.strip)

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context that reaches this account's bridge (``None`` without
        ``tls``): it verifies the bridge's certificate and host name, against ``tls_ca_file``
        when given, else the system's trusted CAs. ``ConfigError`` when the CA file cannot be
        loaded."""
        if not self.tls:
            return None
        cafile = None if self.tls_ca_file is None else str(self.tls_ca_file)
        try:
            return ssl.create_default_context(cafile=cafile)
        except OSError as error:  # ssl.SSLError too: not a PEM certificate
            reason = error.strerror or str(error)
            raise ConfigError(f"account {self.name!r}: cannot load tls_ca_file "
                              f"{self.tls_ca_file}: {reason}") from None  # fmt: skip

    def risk_limits(self) -> RiskLimits | None:
        """The account's risk limits (``None``: no limits)."""
        return None if self.risk is None else self.risk.limits()

    def _secret(
        self,
        what: str,
        variable: str | None,
        path: Path | None,
        env: Mapping[str, str],
        clean: Callable[[str], str],
    ) -> SecretStr | None:
        where = f"account {self.name!r}"
        if variable is not None:
            value = env.get(variable)
            if value is None:
                raise ConfigError(f"{where}: the environment variable {variable} ({what}_env) "
                                  "is not set")  # fmt: skip
            if not clean(value):
                raise ConfigError(f"{where}: the environment variable {variable} ({what}_env) "
                                  "is empty")  # fmt: skip
            return SecretStr(clean(value))
        if path is None:
            return None
        return SecretStr(_read_secret_file(where, f"{what}_file", path, clean))


def _read_secret_file(where: str, field: str, path: Path, clean: Callable[[str], str]) -> str:
    """A secret file's text, cleaned; refuses a missing, unreadable, empty or world-readable
    file. Messages name the file, never its content."""
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & stat.S_IROTH:
            raise ConfigError(f"{where}: {field} {path} is readable by every user; chmod 600 it")
        text = clean(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot read {field} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {field} {path} is not UTF-8 text") from None
    if not text:
        raise ConfigError(f"{where}: {field} {path} is empty")
    return text


#: What ``terminal_path`` must be.
_TERMINAL_PATH_RULE: Final = (
    "must be the full Windows path of the installation's terminal64.exe, such as "
    '"C:/Program Files/Broker A MT5/terminal64.exe"'
)


def _terminal_path(value: str) -> str:
    """``value`` if it is an absolute Windows path (drive or UNC) of an ``.exe``: the package
    hashes that path to find the installation's pipe, and starts it when it is not running."""
    drive, rest = ntpath.splitdrive(value.strip())
    if not drive or rest[:1] not in ("/", "\\") or not rest.lower().endswith(".exe"):
        raise ValueError(_TERMINAL_PATH_RULE)
    if any(ord(c) < 32 for c in value):
        raise ValueError(_TERMINAL_PATH_RULE + " (no control characters)")
    return value.strip()


def _installation_key(path: str | None) -> str | None:
    """The key two ``terminal_path`` values share when they name the same installation: the
    package lower-cases the normalised path (semantics §1), so case and slashes do not
    count. ``None`` (no path: the package picks the most recently used terminal) is a key
    too."""
    return None if path is None else ntpath.normcase(ntpath.normpath(path))


def _terminal(value: str) -> str:
    """``value`` if it names a terminal ``resolve_terminal`` accepts; the message never echoes it
    (a URL may carry a password by mistake)."""
    if value in ("sim", "official"):
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(TERMINAL_RULE) from None
    if parts.scheme not in ("bridge", "rpyc") or not parts.hostname or port is None:
        raise ValueError(TERMINAL_RULE)
    if parts.username is not None or parts.password is not None:
        raise ValueError(TERMINAL_RULE + ", without credentials in it (use token_env/token_file)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or not 1 <= port <= 65535:
        raise ValueError(TERMINAL_RULE)
    return value


# ---------------------------------------------------------------------------------------------
# API keys


class ApiKeySettings(_Frozen):
    """An API key the service accepts: its name, hash, scopes and rate.

    ``burst`` (how many requests may come at once) defaults to ``rate_per_minute // 6``, at
    least 1, and is always set after validation.
    """

    name: Name
    hash: str = Field(repr=False)
    scopes: frozenset[Scope]
    rate_per_minute: Annotated[StrictInt, Field(gt=0)] = 600
    burst: Annotated[StrictInt, Field(gt=0)] | None = None

    @field_validator("hash")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        return check_hash(value)

    @field_validator("scopes")
    @classmethod
    def _some_scope(cls, value: frozenset[Scope]) -> frozenset[Scope]:
        if not value:
            raise ValueError("must name at least one scope: read, trade or admin")
        return value

    @model_validator(mode="after")
    def _default_burst(self) -> Self:
        if self.burst is None:
            object.__setattr__(self, "burst", default_burst(self.rate_per_minute))
        return self


# ---------------------------------------------------------------------------------------------
# The bus between replicas


class BusSettings(_Frozen):
    """The bus between replicas (NATS; :mod:`mt5gate.fleet`): its ``url`` and, when the server
    wants one, a token (``token_env`` or ``token_file``) or a NATS credentials file
    (``credentials_file``). Never credentials in the URL: it is shown in logs and health."""

    url: str
    token_env: Annotated[str, Field(min_length=1)] | None = None
    token_file: Path | None = None
    credentials_file: Path | None = None
    stream: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "MT5GATE_EVENTS"
    interest_ttl_s: Annotated[StrictFloat | StrictInt, Field(gt=0)] = 6.0
    duplicate_window_s: Annotated[StrictFloat | StrictInt, Field(gt=0)] = 120.0

    @field_validator("url")
    @classmethod
    def _nats_url(cls, value: str) -> str:
        rule = "must be nats://host[:port] or tls://host[:port]"
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError(rule) from None
        if parts.scheme not in ("nats", "tls") or not parts.hostname:
            raise ValueError(rule)
        if parts.username is not None or parts.password is not None:
            raise ValueError(rule + ", without credentials in it (use token_env/token_file)")
        if parts.path not in ("", "/") or parts.query or (port is not None and port < 1):
            raise ValueError(rule)
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        given = [s for s in ("token_env", "token_file", "credentials_file")
                 if getattr(self, s) is not None]  # fmt: skip
        if len(given) > 1:
            raise ValueError(f"give the bus credential one way only, not {' and '.join(given)}")
        return self

    def token(self, env: Mapping[str, str]) -> SecretStr | None:
        """The bus token from its variable or file (``None`` without one)."""
        if self.token_env is not None:
            value = (env.get(self.token_env) or "").strip()
            if not value:
                raise ConfigError(f"bus: the environment variable {self.token_env} (token_env) "
                                  "is not set or empty")  # fmt: skip
            return SecretStr(value)
        if self.token_file is None:
            return None
        return SecretStr(_read_secret_file("bus", "token_file", self.token_file, str.strip))


# ---------------------------------------------------------------------------------------------
# The service


class ServiceSettings(_Frozen):
    """Everything ``mt5gate serve`` needs: where to listen, the accounts, the API keys."""

    host: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "127.0.0.1"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 8000
    data_dir: Path = Path(".mt5gate")
    #: every account's health thresholds and market hours (``[health]``; None: the defaults);
    #: before ``accounts``, which are checked against it
    health: HealthSettings | None = None
    accounts: tuple[AccountSettings, ...]
    api_keys: tuple[ApiKeySettings, ...] = ()
    public_health: StrictBool = True
    public_metrics: StrictBool = False
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: Annotated[StrictInt, Field(gt=0)] = 65536
    log_level: str = "INFO"
    access_log: StrictBool = True  # a line per request (uvicorn's access log) at INFO
    #: ``/v1/stream`` accepts permessage-deflate when a client offers it: less to send, more
    #: CPU (a fifth of the server's at 2,000 ticks/s). False suits clients on the same host/LAN.
    stream_compression: StrictBool = True
    #: Placing, modifying, closing and cancelling need an ``Idempotency-Key`` (else 428): a
    #: keyless write that times out cannot be retried safely. False accepts keyless writes.
    require_idempotency_key: StrictBool = True
    bot: BotSettings = BotSettings()
    store: StoreSettings | None = None
    fleet: FleetSettings | None = None
    #: the bus between replicas (``[bus]``): None runs without one, exactly as a lone service
    bus: BusSettings | None = None

    @field_validator("accounts")
    @classmethod
    def _unique_accounts(
        cls, value: tuple[AccountSettings, ...], info: ValidationInfo
    ) -> tuple[AccountSettings, ...]:
        if not value:
            raise ValueError("at least one account is needed")
        _unique("account", [a.name for a in value])
        health = info.data.get("health") or HealthSettings()  # absent when [health] was invalid
        for index, account in enumerate(value):
            problem = health.merged(account.health).problem()
            if problem is not None and "health" in info.data:
                raise ValueError(f"[{index}].health, over [health]: {problem}")
        return value

    @field_validator("accounts")
    @classmethod
    def _one_session_per_installation(
        cls, value: tuple[AccountSettings, ...]
    ) -> tuple[AccountSettings, ...]:
        official = [a for a in value if a.terminal == "official"]
        _distinct_installations(official)
        inline = [a.name for a in official if a.isolate == "inline"]
        if len(inline) > 1:
            raise ValueError(
                f"accounts {', '.join(map(repr, inline))}: at most one official account may "
                'have isolate = "inline": the MetaTrader5 package keeps one connection per '
                "process, so the second session would re-point the first's"
            )
        return value

    def isolated(self, account: AccountSettings) -> bool:
        """Whether ``account``'s ``official`` package runs in a child process of its own
        (:class:`~mt5gate.terminal.process.ProcessTerminal`): with ``isolate = "process"``,
        and with ``"auto"`` when the configuration has more than one official account (the
        package keeps one connection per process: two in one process cross-wire)."""
        if account.terminal != "official" or account.isolate == "inline":
            return False
        if account.isolate == "process":
            return True
        return sum(a.terminal == "official" for a in self.accounts) > 1

    @field_validator("api_keys")
    @classmethod
    def _unique_keys(cls, value: tuple[ApiKeySettings, ...]) -> tuple[ApiKeySettings, ...]:
        _unique("API key", [k.name for k in value])
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and re.match(r"^https?://[^/\s]+$", origin) is None:
                raise ValueError(
                    f"{origin!r} is not an origin: '*' or scheme://host[:port], no path"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("bot")
    @classmethod
    def _bot_account(cls, value: BotSettings, info: ValidationInfo) -> BotSettings:
        accounts = info.data.get("accounts")  # absent when the accounts were invalid
        names = [account.name for account in accounts or ()]
        if accounts and value.account is not None and value.account not in names:
            raise ValueError(f"account {value.account!r} is not one of the accounts "
                             f"({', '.join(names)})")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _fleet_needs(self) -> Self:
        if self.fleet is None:
            return self
        if self.store is None:
            raise ValueError("fleet: replicas share their accounts through a [store] "
                             "(a postgresql:// URL); add one")  # fmt: skip
        missing = [a.name for a in self.accounts if a.login is None]
        if missing:
            raise ValueError(f"fleet: every account needs its login (the fleet places and "
                             f"leases accounts by login): {', '.join(missing)}")  # fmt: skip
        logins = [a.login for a in self.accounts]
        if len(set(logins)) != len(logins):
            raise ValueError("fleet: two accounts have the same login")
        return self

    def bot_token(self, env: Mapping[str, str]) -> SecretStr:
        """The bot's token from ``bot.token_file`` or its variable (default
        ``MT5GATE_BOT_TOKEN``); ``ConfigError`` naming the source, never the value."""
        if self.bot.token_file is not None:
            return SecretStr(_read_secret_file("bot", "token_file", self.bot.token_file,
                                               str.strip))  # fmt: skip
        variable = self.bot.token_variable
        value = (env.get(variable) or "").strip()
        if not value:
            raise ConfigError(f"bot: the token is missing: set {variable} (the token "
                              "@BotFather gave) or bot.token_file")  # fmt: skip
        return SecretStr(value)

    def account_health(self, account: AccountSettings) -> HealthSettings:
        """``account``'s health settings: its ``health`` keys over ``[health]``'s (then make
        :meth:`~HealthSettings.thresholds` and :meth:`~HealthSettings.market_hours` of it)."""
        return (self.health or HealthSettings()).merged(account.health)

    @property
    def default_account(self) -> AccountSettings:
        """The first configured account."""
        return self.accounts[0]

    @property
    def simulated(self) -> bool:
        """Whether any account runs on the simulator."""
        return any(account.simulated for account in self.accounts)

    @property
    def url(self) -> str:
        """Where the service listens (``http://127.0.0.1:8000``): what other processes are
        told to reach it at (an IPv6 host is bracketed). ``0.0.0.0`` and ``::`` are answered on
        loopback too, so they are given as loopback."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    @property
    def replica(self) -> str:
        """This service's name in its fleet: ``[fleet] replica``, else ``<host>-<port>``."""
        if self.fleet is not None and self.fleet.replica is not None:
            return self.fleet.replica
        return f"{socket.gethostname()}-{self.port}"

    @property
    def advertised_url(self) -> str:
        """Where other replicas reach this one: ``[fleet] advertise_url``, else :attr:`url`."""
        if self.fleet is not None and self.fleet.advertise_url is not None:
            return self.fleet.advertise_url.rstrip("/")
        return self.url

    @property
    def local_key_file(self) -> Path:
        """Where ``mt5gate serve`` keeps the API key it makes when none is configured
        (``<data_dir>/api-key``, mode 600), and where ``mt5gate`` commands find it."""
        return self.data_dir / "api-key"

    def state_file(self, account: AccountSettings) -> Path:
        """Where a simulated ``account``'s broker keeps its state: ``<data_dir>/sim-<name>.json``.
        The service and the ``mt5gate`` commands share it, so they trade with one broker."""
        return self.data_dir / f"sim-{account.name}.json"

    def journal_path(self, account: AccountSettings) -> Path:
        """Where ``account``'s order journal lives: its ``journal`` (relative to ``data_dir``
        when relative), else ``<data_dir>/<name>-orders.db``."""
        if account.journal is None:
            return self.data_dir / f"{account.name}-orders.db"
        return account.journal if account.journal.is_absolute() else self.data_dir / account.journal


def _distinct_installations(official: list[AccountSettings]) -> None:
    """Refuse two official accounts on one terminal installation (or both without a path)."""
    seen: dict[str | None, AccountSettings] = {}
    for account in official:
        first = seen.setdefault(_installation_key(account.terminal_path), account)
        if first is account:
            continue
        which = ("neither has a terminal_path (without one, the package attaches to the terminal "
                 "used most recently, the same one for both)" if account.terminal_path is None
                 else f"both have terminal_path {account.terminal_path!r}")  # fmt: skip
        raise ValueError(
            f"accounts {first.name!r} and {account.name!r} are official accounts on one "
            f"terminal installation: {which}. Two sessions on one terminal installation "
            "cross-wire inside the terminal itself (it is logged into one account at a time). "
            "Give each official account the terminal_path of its own installation"
        )


def _unique(what: str, names: list[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(repeated)}")


# ---------------------------------------------------------------------------------------------
# Loading


def default_settings() -> ServiceSettings:
    """No configuration: one SIMULATED demo account (the simulator's account 5001)."""
    demo = AccountSettings(
        name="demo", terminal="sim", login=5001, server="MetaQuotes-Demo",
        password_value=SecretStr(DEFAULT_PASSWORD),
    )  # fmt: skip
    return ServiceSettings(accounts=(demo,))


def load_settings(
    path: Path | None = None, env: Mapping[str, str] | None = None
) -> ServiceSettings:
    """The settings from ``path`` (else ``$MT5GATE_CONFIG``, else :func:`default_settings`),
    then the ``MT5GATE_*`` overrides of ``env`` (default: ``os.environ``).

    Raises ``ConfigError`` (one line: file or variable, dotted field, rule) on any problem.
    """
    env = os.environ if env is None else env
    if path is None and _env(env, "MT5GATE_CONFIG") is not None:
        path = Path(env["MT5GATE_CONFIG"])
    if path is None:
        data: dict[str, Any] = default_settings().model_dump()
        origins: dict[str, tuple[str, str]] = {}
    else:
        data, origins = _read_file(path)
    _apply_environment(env, data, origins)
    try:
        return ServiceSettings.model_validate(data, context={_FROM_FILE: path is not None})
    except ValidationError as error:
        raise ConfigError(_describe(error, origins)) from None


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


_SERVICE_FIELDS: Final = (
    "host", "port", "data_dir", "public_health", "public_metrics", "cors_origins",
    "max_body_bytes", "log_level", "access_log", "stream_compression",
    "require_idempotency_key",
)  # fmt: skip


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The file's content as ServiceSettings input, and where each top field came from."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read the configuration file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    tables = ("service", "accounts", "api_keys", "bot", "store", "fleet", "bus", "health")
    unknown = sorted(set(raw) - set(tables))
    if unknown:
        hint = _suggest(unknown[0], tables)
        raise ConfigError(f"{path}: {unknown[0]}: unknown table or key{hint}; expected "
                          "[service], [[accounts]], [[api_keys]], [bot], [store], [fleet], "
                          "[bus] and [health]")  # fmt: skip
    service = raw.get("service", {})
    if not isinstance(service, dict):
        raise ConfigError(f"{path}: service: must be a table ([service])")
    misplaced = sorted(set(service) & {"accounts", "api_keys"})
    if misplaced:
        raise ConfigError(f"{path}: service.{misplaced[0]}: unknown field (use [[{misplaced[0]}]] "
                          "at the top level)")  # fmt: skip
    if "accounts" not in raw:
        raise ConfigError(f"{path}: accounts: at least one [[accounts]] entry is needed")
    for table in ("accounts", "api_keys"):
        if table in raw and not _is_list_of_tables(raw[table]):
            raise ConfigError(f"{path}: {table}: must be an array of tables ([[{table}]])")
    base = path.parent
    data: dict[str, Any] = {**service, "accounts": raw["accounts"]}
    if "api_keys" in raw:
        data["api_keys"] = raw["api_keys"]
    if "bot" in raw:
        data["bot"] = _bot_table(path, raw["bot"])
    for table in ("store", "fleet", "bus", "health"):
        if table in raw:
            data[table] = _table(path, table, raw[table])
    if isinstance(data.get("data_dir"), str):
        data["data_dir"] = base / data["data_dir"]
    for account in data["accounts"]:
        for field in ("password_file", "token_file", "tls_ca_file"):
            if isinstance(account.get(field), str):
                account[field] = base / account[field]
    origins = {name: (str(path), f"service.{name}") for name in service}
    origins.update({table: (str(path), table) for table in tables if table != "service"})
    return data, origins


def _bot_table(path: Path, table: object) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: bot: must be a table ([bot])")
    bot = dict(table)
    if isinstance(bot.get("token_file"), str):
        bot["token_file"] = path.parent / bot["token_file"]
    return bot


def _table(path: Path, name: str, table: object) -> dict[str, Any]:
    """``[store]``, ``[fleet]`` or ``[bus]``, its files made relative to the file's folder."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name}: must be a table ([{name}])")
    found = dict(table)
    for field in ("url_file", "token_file", "credentials_file"):
        if isinstance(found.get(field), str):
            found[field] = path.parent / found[field]
    return found


def _is_list_of_tables(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _apply_environment(
    env: Mapping[str, str], data: dict[str, Any], origins: dict[str, tuple[str, str]]
) -> None:
    """``MT5GATE_*`` overrides, parsed here so a bad value names its variable."""
    parsers: dict[str, tuple[str, Callable[[str, str], object]]] = {
        "MT5GATE_HOST": ("host", _text),
        "MT5GATE_PORT": ("port", _integer),
        "MT5GATE_DATA_DIR": ("data_dir", lambda _, value: Path(value)),
        "MT5GATE_PUBLIC_HEALTH": ("public_health", _boolean),
        "MT5GATE_PUBLIC_METRICS": ("public_metrics", _boolean),
        "MT5GATE_CORS_ORIGINS": ("cors_origins", _origins),
        "MT5GATE_MAX_BODY_BYTES": ("max_body_bytes", _integer),
        "MT5GATE_LOG_LEVEL": ("log_level", _text),
        "MT5GATE_ACCESS_LOG": ("access_log", _boolean),
        "MT5GATE_STREAM_COMPRESSION": ("stream_compression", _boolean),
        "MT5GATE_REQUIRE_IDEMPOTENCY_KEY": ("require_idempotency_key", _boolean),
        "MT5GATE_API_KEYS": ("api_keys", _api_keys),
    }
    for variable, (field, parse) in parsers.items():
        value = _env(env, variable)
        if value is not None:
            data[field] = parse(variable, value)
            origins[field] = (variable, "")
    _apply_sim_start(env, data)
    _apply_bot_environment(env, data, origins)
    _apply_fleet_environment(env, data, origins)
    _apply_bus_environment(env, data, origins)


def _apply_fleet_environment(
    env: Mapping[str, str], data: dict[str, Any], origins: dict[str, tuple[str, str]]
) -> None:
    """``MT5GATE_STORE_URL`` (the store's URL, a secret: read from the variable when the
    settings are used, never copied), ``MT5GATE_REPLICA`` and ``MT5GATE_ADVERTISE_URL`` (which
    make this service a replica of a fleet)."""
    if _env(env, "MT5GATE_STORE_URL") is not None:
        data["store"] = {"url_env": "MT5GATE_STORE_URL"}
        origins["store"] = ("MT5GATE_STORE_URL", "store")
    for variable, field in (("MT5GATE_REPLICA", "replica"),
                            ("MT5GATE_ADVERTISE_URL", "advertise_url")):  # fmt: skip
        value = _env(env, variable)
        if value is not None:
            fleet = data["fleet"] = dict(data.get("fleet") or {})
            fleet[field] = value.strip()
            origins[f"fleet.{field}"] = (variable, "fleet")


def _apply_bus_environment(
    env: Mapping[str, str], data: dict[str, Any], origins: dict[str, tuple[str, str]]
) -> None:
    """``MT5GATE_BUS_URL`` as ``bus.url`` (a ``[bus]`` table of its own when the file has
    none)."""
    url = _env(env, "MT5GATE_BUS_URL")
    if url is not None:
        bus = data.get("bus")
        data["bus"] = {**(bus if isinstance(bus, dict) else {}), "url": url.strip()}
        origins["bus"] = ("MT5GATE_BUS_URL", "")


def _apply_sim_start(env: Mapping[str, str], data: dict[str, Any]) -> None:
    """``MT5GATE_SIM_START`` as the ``sim_start`` of every simulated account (a replay of that
    market hour for the whole service; real accounts are left alone)."""
    value = _env(env, "MT5GATE_SIM_START")
    if value is None:
        return
    try:
        start = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError("MT5GATE_SIM_START: must be an ISO 8601 server time such as "
                          "2026-01-06T10:00") from None  # fmt: skip
    for account in data["accounts"]:
        if isinstance(account, dict) and account.get("terminal", "sim") == "sim":
            account["sim_start"] = start


def _apply_bot_environment(
    env: Mapping[str, str], data: dict[str, Any], origins: dict[str, tuple[str, str]]
) -> None:
    """``MT5GATE_BOT_USERS`` and ``MT5GATE_BOT_API_URL`` into the ``bot`` table."""
    users, url = _env(env, "MT5GATE_BOT_USERS"), _env(env, "MT5GATE_BOT_API_URL")
    if users is None and url is None:
        return
    bot = data["bot"] = dict(data.get("bot") or {})
    if users is not None:
        bot["users"] = _bot_users("MT5GATE_BOT_USERS", users)
    if url is not None:
        bot["api_url"] = url.strip()
    # Errors in what a variable gave are blamed on it; the rest of [bot] stays the file's.
    for variable, given, field in (("MT5GATE_BOT_USERS", users, "users"),
                                   ("MT5GATE_BOT_API_URL", url, "api_url")):  # fmt: skip
        if given is not None:
            origins[f"bot.{field}"] = (variable, "bot")


def _bot_users(variable: str, value: str) -> list[dict[str, Any]]:
    """``123:admin,456:viewer`` as ``[[bot.users]]`` entries."""
    users = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        number, _, role = item.partition(":")
        try:
            user_id = int(number.strip())
        except ValueError:
            raise ConfigError(f"{variable}: {item!r} is not USER_ID:ROLE "
                              "(a number, then viewer, trader or admin)") from None  # fmt: skip
        users.append({"id": user_id, "role": role.strip().lower() or "viewer"})
    if not users:
        raise ConfigError(f"{variable}: names no user (give USER_ID:ROLE pairs, or unset it)")
    return users


def _text(_: str, value: str) -> str:
    return value.strip()


def _integer(variable: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"{variable}: must be a whole number") from None


def _boolean(variable: str, value: str) -> bool:
    word = value.strip().lower()
    if word in _ENV_TRUE:
        return True
    if word in _ENV_FALSE:
        return False
    raise ConfigError(f"{variable}: must be true or false (1/0, yes/no, on/off)")


def _origins(_: str, value: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in value.split(",") if origin.strip())


def _api_keys(variable: str, value: str) -> object:
    try:
        keys = json.loads(value)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{variable}: not valid JSON ({error.msg} at line {error.lineno} "
                          f"column {error.colno})") from None  # fmt: skip
    if not _is_list_of_tables(keys):
        raise ConfigError(f"{variable}: must be a JSON list of API key objects "
                          '([{"name": ..., "hash": ..., "scopes": [...]}])')  # fmt: skip
    return keys


# ---------------------------------------------------------------------------------------------
# Error messages


def _describe(error: ValidationError, origins: Mapping[str, tuple[str, str]]) -> str:
    """pydantic's errors as one line: ``<file or variable>: <dotted field>: <rule>``."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = tuple(item["loc"])
        top = str(location[0]) if location else ""
        part = f"{top}.{location[1]}" if len(location) > 1 else top
        source, name = origins.get(part) or origins.get(top, ("settings", top))
        field = name + _dotted(location[1:])
        where = f"{source}: {field.lstrip('.')}" if name else source + field
        problems.append(f"{where}: {_message(item, location)}")
    listed = "; ".join(problems[:_MAX_LISTED])
    more = len(problems) - _MAX_LISTED
    return listed + (f" (and {more} more)" if more > 0 else "")


def _dotted(location: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)


def _message(item: Any, location: tuple[int | str, ...]) -> str:
    kind, message = item["type"], str(item["msg"])
    if kind == "extra_forbidden":
        allowed = _fields_at(location[:-1])
        return "unknown field" + _suggest(str(location[-1]), allowed)
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch" and location and location[-1] == "name":
        return "must be 1 to 32 lower-case letters, digits, '_' or '-'"
    message = message.removeprefix("Value error, ").replace("Input should be", "must be")
    return message.replace("a valid frozenset", "a list").replace("a valid tuple", "a list")


def _suggest(word: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields_at(location: tuple[int | str, ...]) -> tuple[str, ...]:
    """The field names of the model at ``location`` (a table of the file) inside
    ServiceSettings."""
    tables: dict[str, type[BaseModel]] = {
        "accounts": AccountSettings, "api_keys": ApiKeySettings, "risk": RiskSettings,
        "bot": BotSettings, "users": BotMember, "chats": BotMember, "alerts": AlertPolicy,
    }  # fmt: skip
    names = [part for part in location if isinstance(part, str)]
    model = tables.get(names[-1], ServiceSettings) if names else ServiceSettings
    if "health" in names:  # [health], an account's health, or one of their windows
        model = WindowSettings if isinstance(location[-1], int) else HealthSettings
    fields = model.model_fields.items()
    return tuple(info.alias or name for name, info in fields if name != "password_value")
