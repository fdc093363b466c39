"""``mt5gate bot``: the Telegram bot alone, on the same configuration as ``mt5gate serve``.

::

    MT5GATE_BOT_TOKEN=123:abc MT5GATE_BOT_USERS=111222333:admin mt5gate bot [--config FILE]

With no configuration the bot serves the SIMULATED demo account and says so. The token comes
from ``MT5GATE_BOT_TOKEN`` (or the ``[bot]`` table's ``token_env`` / ``token_file``) and is
never printed or logged. ``mt5gate serve --bot`` runs the same bot inside the HTTP service,
sharing its sessions; run one or the other with a token, not both (Telegram lets one poller
read a bot's updates).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from pydantic import SecretStr

from mt5gate.orders.journal import JournalError
from mt5gate.redaction import RedactingFilter, Redactor
from mt5gate.service.config import ConfigError, ServiceSettings, load_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.owners import owned_elsewhere

if TYPE_CHECKING:  # the bot extra (python-telegram-bot) is imported when a bot is built
    from mt5gate.bot import TelegramBot

__all__ = ["BOT_OWNER", "announce_bot", "build_bot", "build_parser", "main", "run"]

STATE_FILE = "bot-state.json"
#: What the accounts' leases say of the bot alone: it serves no HTTP, so ``mt5gate`` commands
#: cannot send it requests (they say it owns the account instead of trying).
BOT_OWNER: Final[Mapping[str, str]] = MappingProxyType({"kind": "bot"})


def build_parser() -> argparse.ArgumentParser:
    """The ``mt5gate bot`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mt5gate bot",
        description="Answer MT5 accounts in Telegram: prices, positions, health, alerts and "
        "confirmed orders. Token in $MT5GATE_BOT_TOKEN; allowed users in the [bot] table or "
        "$MT5GATE_BOT_USERS (id:role,...). Without --config: one SIMULATED demo account.",
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help="TOML file of accounts and the [bot] table (default: $MT5GATE_CONFIG, else the "
        "simulator)",
    )  # fmt: skip
    return parser


def build_bot(gateway: Gateway, token: SecretStr) -> TelegramBot:
    """The bot for ``gateway``'s accounts; its chats' choices live in the data directory."""
    from mt5gate.bot import TelegramBot

    settings = gateway.settings
    return TelegramBot(gateway.accounts, settings.bot, token,
                       state_path=settings.data_dir / STATE_FILE)  # fmt: skip


def announce_bot(settings: ServiceSettings) -> list[str]:
    """Lines that say how the bot is set up (never the token)."""
    bot = settings.bot
    lines = [f"  Telegram bot: {len(bot.users)} user(s) and {len(bot.chats)} chat(s) allowed"]
    if not bot.users and not bot.chats:
        lines.append("  *** nobody is allowed yet: message the bot to learn your user id, then "
                     "set MT5GATE_BOT_USERS=<id>:admin ***")  # fmt: skip
    return lines


def _configure_logging(settings: ServiceSettings, redactor: Redactor) -> None:
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per poll otherwise
    guard = RedactingFilter(redactor)
    for handler in logging.getLogger().handlers:
        handler.addFilter(guard)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mt5gate bot``; returns the exit status (2 on a configuration problem)."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """``mt5gate bot`` on parsed arguments (:func:`build_parser`'s options)."""
    try:
        settings = load_settings(args.config, os.environ)
        token = settings.bot_token(os.environ)
        _refuse_owned(settings)
        gateway = Gateway.build(settings, os.environ, owner=BOT_OWNER)
        bot = build_bot(gateway, token)
    except (ConfigError, ValueError, OSError, JournalError) as error:
        print(f"mt5gate bot: {error}", file=sys.stderr)
        return 2
    _configure_logging(settings, bot.redactor)
    return asyncio.run(_run(gateway, bot, settings))


def _refuse_owned(settings: ServiceSettings) -> None:
    """The bot alone trades on its accounts: it refuses an account another process owns
    (``mt5gate serve`` runs the same bot inside it, on its own sessions)."""
    for account in settings.accounts:
        owned = owned_elsewhere(settings, account)
        if owned is not None:
            raise ConfigError(
                f"{owned}. Run the bot inside that service (mt5gate serve --bot) or stop it first"
            )


async def _run(gateway: Gateway, bot: TelegramBot, settings: ServiceSettings) -> int:
    from telegram.error import TelegramError  # the bot extra: `mt5gate serve` runs without it

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C still interrupts
            loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    try:
        try:
            await bot.start()
        except TelegramError as error:
            print(f"mt5gate bot: Telegram refused to start: {error.message}", file=sys.stderr)
            return 2
        lines = ["mt5gate bot: polling Telegram for updates (Ctrl+C stops)"]
        lines += [f"  account {a.name!r}: terminal {a.terminal}" for a in settings.accounts]
        if settings.simulated:
            lines.append("  *** SIMULATED terminal (mt5gate.sim): prices and orders are NOT "
                         "real ***")  # fmt: skip
        print("\n".join(lines + announce_bot(settings)), file=sys.stderr, flush=True)
        await stop.wait()
        return 0
    finally:
        await bot.stop()
        await gateway.stop()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
