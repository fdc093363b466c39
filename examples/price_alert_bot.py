"""A small Telegram price-alert bot on one ``MT5SessionManager`` (python-telegram-bot 22).

Commands (in an allowed chat):

* ``/alert EURUSD above 1.10`` / ``/alert EURUSD below 1.05``: message me once when the bid is at
  or beyond the level (an alert already true fires at the next check);
* ``/alerts``: the chat's active alerts; ``/cancel N``: drop alert N;
* ``/price EURUSD``: bid and ask now; ``/help``.

A background task reads the prices of the alerted symbols from the one session every
``--interval`` seconds and sends each alert at most once, then forgets it. (Not PTB's
``JobQueue``: that needs the ``python-telegram-bot[job-queue]`` extra, APScheduler, which
mt5gate does not depend on; a plain asyncio task on the application's loop does the same.)

Configuration, from the environment (never the command line, where ``ps`` shows it):

* ``PRICE_BOT_TOKEN``: the bot token from @BotFather (required; use a test bot);
* ``PRICE_BOT_CHATS``: comma-separated chat ids allowed to use the bot (your user id is your
  private chat's id). Anyone else gets one answer with their chat id, then silence;
* ``PRICE_BOT_API_URL``: the Bot API base URL (default ``https://api.telegram.org/bot``; the
  tests point it at a fake Telegram server on 127.0.0.1).

.. not-run: needs a Telegram bot token (tests/examples runs it against a fake Telegram server)

Run it on the simulated demo account (it says that the terminal is simulated)::

    export PRICE_BOT_TOKEN='123456789:AA...'  PRICE_BOT_CHATS='111222333'
    .venv/bin/python examples/price_alert_bot.py --interval 5

Options: ``--interval S`` (default 5, or ``PRICE_BOT_INTERVAL``), ``--clock real|virtual`` (the
simulator follows the wall clock by default, so prices move on weekdays and stand still at
weekends; ``virtual`` stands at a weekday morning of 2026), ``--duration S`` (stop by itself).
Ctrl+C or SIGTERM stops it cleanly: polling stops, then the session closes.

The token never reaches the output: httpx logs every request URL at INFO, and Bot API URLs
contain the token (``/bot<token>/getUpdates``), so the httpx logger is set to WARNING; PTB puts
the token in the text of its ``InvalidToken`` error and logs that error itself, so the log
formatter masks the token (``TokenMask``), and a refused token is reported by its class only.
``mt5gate bot`` (docs/bot.md) is the full bot: roles, orders with confirmation, health alerts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Final

from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from mt5gate import MT5DataError, MT5Error, MT5SessionManager, MT5ValidationError
from mt5gate.sim import RealClock, SimTerminal, VirtualClock

log = logging.getLogger("price_alert_bot")

DEFAULT_API_URL: Final = "https://api.telegram.org/bot"
USAGE: Final = (
    "Commands:\n"
    "/alert SYMBOL above|below LEVEL - tell me once when the bid gets there\n"
    "/alerts - this chat's alerts\n"
    "/cancel N - drop alert N\n"
    "/price SYMBOL - bid and ask now"
)

Context = ContextTypes.DEFAULT_TYPE
App = Application[Any, Any, Any, Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Alert:
    number: int
    chat_id: int
    symbol: str
    above: bool  # True: bid >= level; False: bid <= level
    level: float

    def reached(self, bid: float) -> bool:
        return bid >= self.level if self.above else bid <= self.level

    def describe(self) -> str:
        return f"#{self.number} {self.symbol} {'above' if self.above else 'below'} {self.level:g}"


@dataclass
class AlertBot:
    """The bot's state and handlers; one session, one set of alerts (in memory)."""

    session: MT5SessionManager
    allowed_chats: frozenset[int]
    interval_s: float
    alerts: dict[int, Alert] = field(default_factory=dict)
    next_number: int = 1
    refused: set[int] = field(default_factory=set)
    watcher: asyncio.Task[None] | None = None

    # -- life (PTB's post_init / post_stop / post_shutdown hooks) ---------------------------

    async def started(self, application: App) -> None:
        await self.session.connect()
        log.info("session connected: %r", self.session)
        self.watcher = asyncio.get_running_loop().create_task(self.watch(application.bot))
        log.info(
            "watching prices every %g s for chats %s", self.interval_s, sorted(self.allowed_chats)
        )

    async def stopped(self, application: App) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher

    async def shut_down(self, application: App) -> None:
        await self.session.close()
        log.info("session closed")

    # -- access --------------------------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Runs before every handler: chats not on the list get their id once, then silence."""
        chat = update.effective_chat
        if chat is None or chat.id in self.allowed_chats:
            return
        log.warning("refused chat %s", chat.id)
        if chat.id not in self.refused:
            self.refused.add(chat.id)
            await context.bot.send_message(
                chat.id,
                f"This bot is private. Your chat id is {chat.id}: add it to "
                "PRICE_BOT_CHATS to use it.",
            )
        raise ApplicationHandlerStop

    # -- commands ------------------------------------------------------------------------

    async def reply(self, update: Update, text: str) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(text)

    async def help(self, update: Update, context: Context) -> None:
        await self.reply(update, USAGE)

    async def price(self, update: Update, context: Context) -> None:
        args = context.args or []
        if len(args) != 1:
            await self.reply(update, "Usage: /price SYMBOL")
            return
        symbol = normal_symbol(args[0])
        try:
            price = await self.session.get_price(symbol)
        except MT5Error as error:
            await self.reply(update, f"{symbol}: {error.message}")
            return
        await self.reply(update, f"{symbol} bid {price.bid} ask {price.ask}")

    async def alert(self, update: Update, context: Context) -> None:
        args = context.args or []
        chat = update.effective_chat
        if chat is None or len(args) != 3 or args[1].lower() not in ("above", "below"):
            await self.reply(update, "Usage: /alert SYMBOL above|below LEVEL")
            return
        symbol = normal_symbol(args[0])
        try:
            level = float(args[2].replace(",", "."))
        except ValueError:
            await self.reply(update, f"LEVEL must be a number, got {args[2]!r}")
            return
        try:  # a known symbol? (and the price now, to show)
            price = await self.session.get_price(symbol)
        except (MT5DataError, MT5ValidationError):
            await self.reply(update, f"Unknown symbol {symbol!r}")
            return
        except MT5Error as error:
            await self.reply(update, f"Cannot read {symbol} now: {error.message}")
            return
        alert = Alert(self.next_number, chat.id, symbol, args[1].lower() == "above", level)
        self.next_number += 1
        self.alerts[alert.number] = alert
        await self.reply(update, f"Alert {alert.describe()} set (bid now {price.bid}).")

    async def list_alerts(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        mine = [a for a in self.alerts.values() if chat is not None and a.chat_id == chat.id]
        text = "\n".join(a.describe() for a in mine) if mine else "No active alerts."
        await self.reply(update, text)

    async def cancel(self, update: Update, context: Context) -> None:
        args = context.args or []
        chat = update.effective_chat
        number = int(args[0].lstrip("#")) if len(args) == 1 and args[0].lstrip("#").isdigit() else 0
        alert = self.alerts.get(number)
        if chat is None or alert is None or alert.chat_id != chat.id:
            await self.reply(update, "Usage: /cancel N, with N from /alerts")
            return
        del self.alerts[number]
        await self.reply(update, f"Alert {alert.describe()} cancelled.")

    # -- the watcher ---------------------------------------------------------------------

    async def watch(self, bot: Bot) -> None:
        """Every interval: the alerted symbols' prices, then the alerts they reach."""
        while True:
            await self.check(bot)
            await asyncio.sleep(self.interval_s)

    async def check(self, bot: Bot) -> None:
        for symbol in sorted({a.symbol for a in self.alerts.values()}):
            try:
                bid = (await self.session.get_price(symbol)).bid
            except MT5Error as error:  # the session reconnects by itself; try next time
                log.warning("no price for %s: %s", symbol, error)
                continue
            for alert in [a for a in self.alerts.values() if a.symbol == symbol]:
                if alert.reached(bid) and self.alerts.pop(alert.number, None) is not None:
                    side = "above" if alert.above else "below"
                    text = (
                        f"🔔 {symbol} bid {bid} is {side} {alert.level:g} (alert #{alert.number})"
                    )
                    try:
                        await bot.send_message(alert.chat_id, text)
                    except TelegramError as error:
                        log.warning("could not send alert #%s: %s", alert.number, error)


class TokenMask(logging.Formatter):
    """Formats as usual, then masks the token. Quieting httpx is not enough: PTB writes the
    token into the text of its ``InvalidToken`` error, and its own logger prints that error,
    traceback and all, at ERROR when Telegram refuses the token."""

    def __init__(self, token: str, fmt: str) -> None:
        super().__init__(fmt)
        secret = token.partition(":")[2]  # "<bot id>:<secret>": the secret part alone, too
        self.secrets = [s for s in (token, secret) if len(s) >= 8]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "**********")
        return text


def normal_symbol(text: str) -> str:
    """``eurusd`` -> ``EURUSD``; a name with capitals is kept (``EURUSDm`` is a real name)."""
    return text.upper() if text.islower() else text


def build(token: str, api_url: str, alert_bot: AlertBot) -> App:
    file_url = api_url[: -len("bot")] + "file/bot" if api_url.endswith("/bot") else api_url
    application: App = (
        ApplicationBuilder()
        .token(token)
        .base_url(api_url)
        .base_file_url(file_url)
        .post_init(alert_bot.started)
        .post_stop(alert_bot.stopped)
        .post_shutdown(alert_bot.shut_down)
        .build()
    )
    application.add_handler(TypeHandler(Update, alert_bot.gate), group=-1)
    application.add_handler(CommandHandler(["start", "help"], alert_bot.help))
    application.add_handler(CommandHandler("price", alert_bot.price))
    application.add_handler(CommandHandler("alert", alert_bot.alert))
    application.add_handler(CommandHandler("alerts", alert_bot.list_alerts))
    application.add_handler(CommandHandler("cancel", alert_bot.cancel))
    return application


def parse_chats(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.replace(" ", "").split(",") if part)


def main() -> int:
    parser = argparse.ArgumentParser(description="Telegram price alerts from one MT5 session")
    parser.add_argument(
        "--interval", type=float, default=float(os.environ.get("PRICE_BOT_INTERVAL", "5"))
    )
    parser.add_argument("--clock", choices=("real", "virtual"), default="real")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--poll-timeout", type=int, default=10, help="getUpdates long poll, s")
    args = parser.parse_args()

    token = os.environ.get("PRICE_BOT_TOKEN", "").strip()
    handler = logging.StreamHandler()
    handler.setFormatter(TokenMask(token, "%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # httpx logs every request at INFO with its URL, and a Bot API URL holds the token
    # (https://api.telegram.org/bot<token>/getUpdates). WARNING keeps those lines out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)

    if not token:
        print("set PRICE_BOT_TOKEN to your (test) bot's token from @BotFather", file=sys.stderr)
        return 2
    try:
        allowed = parse_chats(os.environ.get("PRICE_BOT_CHATS", ""))
    except ValueError:
        print("PRICE_BOT_CHATS must be comma-separated chat ids", file=sys.stderr)
        return 2
    if not allowed:
        log.warning("PRICE_BOT_CHATS is empty: nobody may use the bot (each chat gets its id)")
    api_url = os.environ.get("PRICE_BOT_API_URL", DEFAULT_API_URL)

    print("*** SIMULATED terminal (mt5gate.sim): prices are not real ***", flush=True)
    terminal = SimTerminal(clock=RealClock() if args.clock == "real" else VirtualClock())
    session = MT5SessionManager(
        terminal=terminal,
        login=5001,
        password="sim-pass-5001",
        server="MetaQuotes-Demo",
        name="price-bot",
    )
    alert_bot = AlertBot(session, allowed, max(0.05, args.interval))
    application = build(token, api_url, alert_bot)
    if args.duration is not None:
        loop = asyncio.new_event_loop()  # run_polling uses the current loop: set it up first
        asyncio.set_event_loop(loop)
        loop.call_later(args.duration, application.stop_running)
    try:
        # Handles SIGINT and SIGTERM: stops polling, runs post_stop and post_shutdown.
        application.run_polling(allowed_updates=["message"], timeout=args.poll_timeout)
    except InvalidToken:
        print("Telegram refused the token (InvalidToken); check PRICE_BOT_TOKEN", file=sys.stderr)
        return 1
    except TelegramError as error:
        print(f"Telegram could not be reached: {type(error).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
