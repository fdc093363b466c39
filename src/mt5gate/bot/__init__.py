"""The Telegram bot: prices, positions and health at a glance, alerts, and confirmed orders.

:class:`TelegramBot` answers for the accounts of a gateway (the service's ``AccountRuntime``
values, or anything with a session and a health monitor); :class:`BotSettings` is the ``[bot]``
table of the configuration. ``mt5gate bot`` runs it alone, ``mt5gate serve --bot`` beside the
HTTP service. See ``docs/bot.md``.
"""

from mt5gate.bot.app import BotAccount, TelegramBot
from mt5gate.bot.settings import AlertPolicy, BotMember, BotSettings, Role

__all__ = ["AlertPolicy", "BotAccount", "BotMember", "BotSettings", "Role", "TelegramBot"]
