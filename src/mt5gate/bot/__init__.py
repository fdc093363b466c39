"""The Telegram bot: prices, positions and health at a glance, alerts, and confirmed orders.

:class:`TelegramBot` answers for the accounts of a gateway (the service's ``AccountRuntime``
values, or anything with a session and a health monitor); :class:`BotSettings` is the ``[bot]``
table of the configuration. ``mt5gate bot`` runs it alone, ``mt5gate serve --bot`` beside the
HTTP service. See ``docs/bot.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mt5gate.bot.app import BotAccount, TelegramBot
    from mt5gate.bot.settings import AlertPolicy, BotMember, BotSettings, Role

__all__ = ["AlertPolicy", "BotAccount", "BotMember", "BotSettings", "Role", "TelegramBot"]

_WHERE: dict[str, str] = {
    "AlertPolicy": "mt5gate.bot.settings",
    "BotAccount": "mt5gate.bot.app",
    "BotMember": "mt5gate.bot.settings",
    "BotSettings": "mt5gate.bot.settings",
    "Role": "mt5gate.bot.settings",
    "TelegramBot": "mt5gate.bot.app",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562).

    Why: the service's configuration reads :mod:`mt5gate.bot.settings` (the ``[bot]`` table),
    which runs this file first; an eager ``mt5gate.bot.app`` here loaded python-telegram-bot
    and httpx into every ``mt5gate`` command, bot or not.
    """
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mt5gate.bot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
