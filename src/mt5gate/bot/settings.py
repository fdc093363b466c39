"""The bot's settings: who may talk to it, with which role, and how alerts are paced.

They are the ``[bot]`` table of the service's TOML file (``mt5gate.service.config`` reads the
file and the environment; this module holds only the shapes and their rules)::

    [bot]
    token_env = "MT5GATE_BOT_TOKEN"    # or token_file = "secrets/bot-token" (mode 600)
    api_url = "https://api.telegram.org/bot"   # a local Bot API server (or a test fake) instead
    account = "main"                   # the account commands use until a chat says /use NAME
    confirm_ttl_s = 60                 # an order confirmation expires after this
    alerts = { per_minute = 20, burst = 5, dedupe_s = 300, poll_s = 5, events_s = 1 }
    limits = { per_minute = 30, burst = 10, pending = 3, retries = 3, max_wait_s = 30 }

    [[bot.users]]                      # Telegram user ids and their roles
    id = 123456789
    role = "admin"                     # viewer | trader | admin
    name = "alice"                     # for the logs only

    [[bot.chats]]                      # group chats whose members all get this role
    id = -1001234567890
    role = "viewer"

The token is a secret: it is never in the file and never in these settings; the service's
configuration reads it from ``token_env`` or ``token_file`` when the bot starts.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Final, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AlertPolicy", "BotMember", "BotSettings", "Limits", "Role", "TELEGRAM_API_URL"]

#: Telegram's Bot API (PTB appends the token and the method name).
TELEGRAM_API_URL: Final = "https://api.telegram.org/bot"

StrictInt = Annotated[int, Field(strict=True)]
_TOKEN_LIKE: Final = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
Seconds = Annotated[float, Field(gt=0)]


class Role(StrEnum):
    """What a member may do. Each role may do everything the roles before it may."""

    VIEWER = "viewer"  # read: prices, account, positions, orders, health, alerts
    TRADER = "trader"  # and place and close orders (always after a confirmation)
    ADMIN = "admin"  # and halt and resume trading

    @property
    def rank(self) -> int:
        """The role's order: viewer 1, trader 2, admin 3."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANKS: Final = MappingProxyType({Role.VIEWER: 1, Role.TRADER: 2, Role.ADMIN: 3})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class BotMember(_Frozen):
    """A Telegram user (``[[bot.users]]``) or chat (``[[bot.chats]]``) and its role."""

    id: StrictInt
    role: Role
    name: str = ""

    @field_validator("id")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be a Telegram id (not 0)")
        return value


class AlertPolicy(_Frozen):
    """How alerts are paced, per chat: a token bucket of ``burst`` alerts refilled at
    ``per_minute``; the same alert again within ``dedupe_s`` is dropped; ``poll_s`` is how often
    unresolved orders are looked for."""

    per_minute: Annotated[StrictInt, Field(gt=0, le=1200)] = 20
    burst: Annotated[StrictInt, Field(gt=0, le=100)] = 5
    dedupe_s: Annotated[float, Field(ge=0)] = 300.0
    poll_s: Seconds = 5.0
    events_s: Seconds = 1.0


class Limits(_Frozen):
    """What one member may cost, and how hard the bot insists when Telegram says "slow down".

    Per member, a token bucket of ``burst`` updates (commands, messages, button presses)
    refilled at ``per_minute``: past it, one notice, then silence until it refills. At most
    ``pending`` confirmations may wait for a member's press (each costs terminal calls to make).
    A reply Telegram refuses with 429 is sent again after its ``retry_after``, at most
    ``retries`` times, and not when Telegram asks for more than ``max_wait_s``."""

    per_minute: Annotated[StrictInt, Field(gt=0, le=6000)] = 30
    burst: Annotated[StrictInt, Field(gt=0, le=1000)] = 10
    pending: Annotated[StrictInt, Field(gt=0, le=100)] = 3
    retries: Annotated[StrictInt, Field(ge=0, le=10)] = 3
    max_wait_s: Annotated[float, Field(ge=0, le=300)] = 30.0


class BotSettings(_Frozen):
    """Everything ``mt5gate bot`` needs besides the accounts and the token."""

    token_env: Annotated[str, Field(min_length=1)] | None = None
    token_file: Path | None = None
    api_url: str = TELEGRAM_API_URL
    account: str | None = None
    confirm_ttl_s: Annotated[float, Field(ge=5, le=3600)] = 60.0
    users: tuple[BotMember, ...] = ()
    chats: tuple[BotMember, ...] = ()
    alerts: AlertPolicy = AlertPolicy()
    limits: Limits = Limits()

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://api.telegram.org/bot")
        if parts.username is not None or parts.password is not None or parts.query:
            raise ValueError("must not carry credentials or a query (the token is added to it)")
        if _TOKEN_LIKE.search(parts.path):
            raise ValueError("must not contain the bot token: give it in MT5GATE_BOT_TOKEN or "
                             "token_file (it is added to the URL)")  # fmt: skip
        return value

    @field_validator("users", "chats")
    @classmethod
    def _unique(cls, value: tuple[BotMember, ...]) -> tuple[BotMember, ...]:
        ids = [member.id for member in value]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"ids must be unique; repeated: {', '.join(map(str, repeated))}")
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> Self:
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("give the token one way only, not token_env and token_file")
        return self

    @property
    def token_variable(self) -> str:
        """The environment variable holding the token (default ``MT5GATE_BOT_TOKEN``)."""
        return self.token_env or "MT5GATE_BOT_TOKEN"
