"""``TelegramBot``: the accounts of a gateway, answered in Telegram (python-telegram-bot v22).

The bot is thin: access control (:mod:`~mt5gate.bot.access`) runs first on every update;
commands parse their words (:mod:`~mt5gate.bot.commands`), call the account's
:class:`~mt5gate.session.manager.MT5SessionManager` and render the answer
(:mod:`~mt5gate.bot.views`); orders go through a confirmation (:mod:`~mt5gate.bot.confirm`);
alerts from health, the circuit breaker, the journal and the trade events pass the
:class:`~mt5gate.bot.alerts.AlertGate` to the chats that asked for them.

It runs in the caller's event loop (``start`` / ``stop``), so ``mt5gate serve`` runs it beside
the HTTP service on the same sessions, and ``mt5gate bot`` runs it alone. Every task it makes is
its own and is cancelled by ``stop``; it starts no thread. The token is held as a
``SecretStr``; the HTTP client's and PTB's loggers get a filter that masks it (PTB's own
``InvalidToken`` message contains it), and nothing here ever prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import SecretStr
from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from mt5gate.bot.access import AccessList, Refusals
from mt5gate.bot.actions import Action, CloseAction, OrderAction
from mt5gate.bot.alerts import (
    Alert,
    AlertGate,
    breaker_alert,
    deal_alert,
    health_alert,
    resolved_alert,
    unresolved_alert,
)
from mt5gate.bot.commands import (
    COMMANDS,
    CloseArgs,
    CommandSpec,
    OrderArgs,
    UsageError,
    parse_close,
    parse_order,
    parse_switch,
    parse_symbols,
    spec,
)
from mt5gate.bot.confirm import (
    Confirmation,
    Confirmations,
    ConfirmState,
    Press,
    TooManyWaitingError,
    Verdict,
)
from mt5gate.bot.limits import Admission, Throttle, patiently
from mt5gate.bot.settings import BotSettings, Role
from mt5gate.bot.state import BotState
from mt5gate.bot.text import code, error_text, esc, truncate
from mt5gate.bot.views import (
    Digits,
    account_view,
    close_summary,
    done_view,
    health_view,
    help_view,
    order_summary,
    orders_view,
    positions_view,
    prices_view,
    title,
)
from mt5gate.circuit_breaker import BreakerTransition
from mt5gate.errors import (
    MT5DataError,
    MT5Error,
    MT5OrderOutcomeUnknown,
    error_from_check_result,
)
from mt5gate.health import HealthMonitor, HealthStatus
from mt5gate.models import Deal, OrderResult, Side
from mt5gate.redaction import RedactingFilter, Redactor
from mt5gate.session.manager import MT5SessionManager
from mt5gate.session.streams import TradeEventKind

__all__ = ["BotAccount", "Reply", "TelegramBot", "protect_logs"]

log = logging.getLogger("mt5gate.bot")

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]

#: Loggers that may see the token: httpx logs every request URL (``/bot<token>/getUpdates``).
_LEAKY_LOGGERS: Final = ("httpx", "httpcore", "telegram")
#: PTB loggers made only when a Bot or an Application is built (after the filters go on): made
#: here first, so that PTB gets these very loggers, filters included.
_LATE_LOGGERS: Final = ("telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Application",
                        "telegram.ext.Updater")  # fmt: skip
_REFUSAL: Final = (
    "Sorry, this bot is private and you are not on its list.\n"
    "Your Telegram user id is {user_id}: an operator can add it to the bot's settings."
)
_GROUP_REFUSAL: Final = (
    "Sorry, this bot is private and answers only in the chats on its list.\n"
    "This chat's id is {chat_id}: an operator can add it to the bot's settings."
)
_NO_KEYS: Final = re.compile(r"(?!)")  # matches no key name
_FAILED: Final = "❌ Something went wrong on our side; it was logged. Nothing was sent."
_CHANGED: Final = ("⚠️ The position changed since it was shown: nothing was sent. "
                   "Its new state follows, to confirm again.")  # fmt: skip


class BotAccount(Protocol):
    """What the bot needs of an account (the service's ``AccountRuntime`` is one)."""

    @property
    def name(self) -> str:
        """The account's configured name."""

    @property
    def session(self) -> MT5SessionManager:
        """Its session."""

    @property
    def monitor(self) -> HealthMonitor:
        """Its health monitor (started by whoever owns the account)."""

    @property
    def simulated(self) -> bool:
        """Whether its terminal is mt5gate's simulator."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A command's answer: HTML text and, for confirmations, the buttons and what they confirm."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None
    pending: Confirmation | None = None


class HideContent(logging.Filter):
    """Keep what people wrote and what the bot answered out of python-telegram-bot's records,
    at any level: an argument that is not a plain name or number (the parameters of an API
    call, an update, a returned message: texts, balances) is replaced by ``<hidden>``. So
    "Calling Bot API endpoint `sendMessage` with parameters `<hidden>`" is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {key: _shown(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_shown(value) for value in record.args)
        return True


_PLAIN: Final = re.compile(r"[\w.:/@-]{0,64}")


def _shown(value: object) -> object:
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and _PLAIN.fullmatch(value)
    ):
        return value
    return "<hidden>"


def protect_logs(redactor: Redactor) -> Callable[[], None]:
    """Mask the redactor's secrets in every record of the loggers that may see the token, and
    hide message contents from python-telegram-bot's (:class:`HideContent`).

    A filter on a logger only sees records made on that very logger, so it goes on each of
    them that exists now (PTB and httpx create theirs when imported). Returns an undo.
    """
    names = [
        name for name in logging.Logger.manager.loggerDict
        if any(name == p or name.startswith(p + ".") for p in _LEAKY_LOGGERS)
    ]  # fmt: skip
    loggers = [logging.getLogger(name) for name in {*names, *_LEAKY_LOGGERS, *_LATE_LOGGERS}]
    guard, hide = RedactingFilter(redactor), HideContent()
    for logger in loggers:
        if logger.name.startswith("telegram"):  # first: the guard formats the message
            logger.addFilter(hide)
        logger.addFilter(guard)

    def undo() -> None:
        for logger in loggers:
            logger.removeFilter(guard)
            logger.removeFilter(hide)

    return undo


class TelegramBot:
    """The Telegram front end of a set of accounts (see the module docstring)."""

    def __init__(
        self,
        accounts: Mapping[str, BotAccount],
        settings: BotSettings,
        token: SecretStr,
        *,
        state_path: Path,
        clock: Callable[[], float] = time.monotonic,
        poll_timeout_s: int = 10,
    ) -> None:
        if not accounts:
            raise ValueError("the bot needs at least one account")
        self.accounts = dict(accounts)
        self.settings = settings
        self.default_account = settings.account or next(iter(self.accounts))
        if self.default_account not in self.accounts:
            raise ValueError(f"bot.account {self.default_account!r} is not a configured account")
        self.access = AccessList.of(settings)
        self.refusals = Refusals()
        self.confirmations = Confirmations(settings.confirm_ttl_s, clock)
        self.gate = AlertGate(settings.alerts, clock)
        self.throttle = Throttle(settings.limits, clock)
        self.state = BotState.load(state_path)
        # Only the token: key=value masking would garble ordinary lines ("session:state: ...").
        self.redactor = Redactor([token], keys=_NO_KEYS)
        self.poll_timeout_s = poll_timeout_s
        # Before PTB sees the token: its bot logs the API URL (token included) at DEBUG.
        self._undo: list[Callable[[], None]] = [protect_logs(self.redactor)]
        self.application = self._build(token)
        self._commands: dict[str, Callable[[_Ask], Awaitable[Reply]]] = {
            "price": self._price, "account": self._account, "positions": self._positions,
            "orders": self._orders, "health": self._health, "alerts": self._alerts,
            "use": self._use, "help": self._help, "buy": self._buy, "sell": self._sell,
            "close": self._close, "halt": self._halt, "resume": self._resume,
        }  # fmt: skip
        self._digits: dict[tuple[str, str], Digits] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Task[str]] = set()  # confirmed orders in flight
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running = False

    def __repr__(self) -> str:
        return (f"<TelegramBot accounts={sorted(self.accounts)} users={len(self.access.users)} "
                f"chats={len(self.access.chats)} running={self._running}>")  # fmt: skip

    # -- life ------------------------------------------------------------------------------

    def _build(self, token: SecretStr) -> Application[Any, Any, Any, Any, Any, Any]:
        api_url = self.settings.api_url
        file_url = api_url[: -len("bot")] + "file/bot" if api_url.endswith("/bot") else api_url
        application = (
            ApplicationBuilder().token(token.get_secret_value()).base_url(api_url)
            .base_file_url(file_url).concurrent_updates(True).build()
        )  # fmt: skip
        application.add_handler(TypeHandler(Update, self._gate), group=-1)
        typed = ~filters.FORWARDED  # a forwarded "/halt" is a quote, not a command
        for command in COMMANDS:
            application.add_handler(
                CommandHandler(command.name, self._command(command), filters=typed)
            )
        application.add_handler(CommandHandler("start", self._command(spec("help")), typed))
        application.add_handler(CallbackQueryHandler(self._on_press))
        application.add_handler(MessageHandler(filters.COMMAND & typed, self._unknown))
        application.add_handler(MessageHandler(filters.TEXT & filters.ChatType.PRIVATE,
                                               self._chatter))  # fmt: skip
        application.add_error_handler(self._on_error)
        return application

    async def start(self) -> None:
        """Check the token (``getMe``), publish the command menu, poll for updates and start
        watching for alerts. Raises PTB's ``InvalidToken`` (its message masked) or
        ``NetworkError`` when Telegram cannot be reached."""
        application = self.application
        try:
            await application.initialize()
        except TelegramError as error:
            raise type(error)(self.redactor.redact_text(error.message)) from None
        await self._publish_commands()
        await application.start()
        if application.updater is None:
            raise RuntimeError("the Telegram application was built without an updater")
        await application.updater.start_polling(
            poll_interval=0.0, timeout=self.poll_timeout_s,
            allowed_updates=["message", "callback_query"],
        )  # fmt: skip
        self._running = True
        self._watch_alerts()
        log.info("telegram bot @%s polling for %s", application.bot.username, sorted(self.accounts))

    async def stop(self) -> None:
        """Stop watching and polling, let handlers in flight finish, release everything."""
        self._running = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await asyncio.gather(*self._sending, return_exceptions=True)  # orders finish, reported
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        application = self.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        with contextlib.suppress(TelegramError):
            await application.shutdown()
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    async def _publish_commands(self) -> None:
        """Telegram's command menu (what everyone may run); a failure is not fatal."""
        menu = [BotCommand(c.name, c.summary) for c in COMMANDS]
        try:
            await self.application.bot.set_my_commands(menu)
        except TelegramError as error:
            log.warning("could not publish the command menu: %s", error)

    def _spawn(self, job: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(job, name=f"bot-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- access ----------------------------------------------------------------------------

    async def _gate(self, update: Update, context: Context) -> None:
        """Runs before every handler. Who may go on is decided first, from the ids and the
        member's rate limit alone; anyone else is stopped whatever becomes of their refusal
        (sending it may fail: a 429, a 403, a network error), so nothing here can fail open."""
        role = self._role(update)
        admission = Admission.PASS if role is None else self.throttle.admit(_sender(update))
        if role is not None and admission is Admission.PASS:
            return
        try:
            if role is None:
                await self._refuse(update, context)
            elif admission is Admission.NOTICE:
                await self._slow_down(update)
        except TelegramError as error:
            log.warning("could not send a refusal: %s", error.message)
        finally:
            raise ApplicationHandlerStop  # always, whatever the refusal's fate

    async def _slow_down(self, update: Update) -> None:
        """The one notice a member past their rate limit gets (then silence until it refills)."""
        log.warning("rate limit: dropping updates from user %s", _sender(update))
        limits = self.settings.limits
        text = (f"Too many requests: at most {limits.burst} at once and {limits.per_minute} a "
                "minute. Wait a little; what you sent meanwhile is ignored.")  # fmt: skip
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.effective_chat is not None:
            await self.application.bot.send_message(update.effective_chat.id, text)

    async def _refuse(self, update: Update, context: Context) -> None:
        """The one refusal a stranger gets (logged with the ids only, never the message)."""
        user, chat = update.effective_user, update.effective_chat
        kind = "button" if update.callback_query is not None else "message"
        log.warning("refused a %s from user %s in chat %s", kind,
                    user.id if user else None, chat.id if chat else None)  # fmt: skip
        if update.callback_query is not None:  # a popup only the presser sees
            if user is not None and self.refusals.first_time(user.id):
                await update.callback_query.answer(_REFUSAL.format(user_id=user.id),
                                                   show_alert=True)  # fmt: skip
            return
        if chat is None or not self.refusals.first_time(chat.id):  # once per chat, not member
            return
        private = chat.type == ChatType.PRIVATE
        text = (_REFUSAL.format(user_id=chat.id) if private
                else _GROUP_REFUSAL.format(chat_id=chat.id))  # fmt: skip
        await context.bot.send_message(chat.id, text)

    def _role(self, update: Update) -> Role | None:
        """The role of the update's sender in its chat; ``None`` for a stranger."""
        user, chat = update.effective_user, update.effective_chat
        private = chat is None or chat.type == ChatType.PRIVATE
        return self.access.role(user.id if user else None, chat.id if chat else None, private)

    # -- commands --------------------------------------------------------------------------

    def _command(self, command: CommandSpec) -> Handler:
        async def handle(update: Update, context: Context) -> None:
            chat, user = update.effective_chat, update.effective_user
            if chat is None or user is None:
                return
            role = self._role(update)
            if role is None:  # the gate stops strangers; checked again, never assumed
                return
            if not role.allows(command.role):
                text = (f"Your role ({esc(role)}) cannot use /{esc(command.name)}: it needs "
                        f"{esc(command.role)}. Ask an admin.")  # fmt: skip
                await self._send(chat.id, text)
                return
            ask = _Ask(
                chat.id, user.id, role, list(context.args or []), self._chat_account(chat.id)
            )
            await self._post(chat.id, await self._answer(command, ask))

        return handle

    async def _post(self, chat_id: int, reply: Reply) -> None:
        """Send ``reply``; a confirmation in it expires on time whether or not it arrived."""
        try:
            sent = await self._send(chat_id, reply.text, reply.keyboard)
        except TelegramError as error:
            log.warning("could not answer chat %s: %s", chat_id, error.message)
            sent = None
        if reply.pending is not None:
            self._await_confirmation(reply.pending, sent)

    async def _answer(self, command: CommandSpec, ask: _Ask) -> Reply:
        """The reply to a command; errors become plain words, never a traceback."""
        try:
            return await self._commands[command.name](ask)
        except UsageError as error:
            return Reply(f"{esc(error)}\nUsage: {code(command.usage)}")
        except TooManyWaitingError as error:
            return Reply(esc(error))
        except MT5Error as error:
            return Reply(error_text(error))
        except Exception:
            log.exception("/%s failed", command.name)
            return Reply(_FAILED)

    def _chat_account(self, chat_id: int) -> BotAccount:
        chosen = self.state.chat(chat_id).account
        return self.accounts.get(chosen or "", self.accounts[self.default_account])

    def _heading(self, ask: _Ask, what: str) -> str:
        return title(ask.account.name, ask.account.simulated, what)

    async def _symbol(self, account: BotAccount, symbol: str) -> Digits:
        """The digits and point of ``symbol`` (read once per account)."""
        key = (account.name, symbol)
        found = self._digits.get(key)
        if found is None:
            info = await account.session.get_symbol_info(symbol)
            found = self._digits[key] = Digits(info.digits, info.point)
        return found

    async def _price(self, ask: _Ask) -> Reply:
        symbols = parse_symbols(ask.words)
        quotes, missing = [], []
        for symbol in symbols:
            try:
                digits = await self._symbol(ask.account, symbol)
                quotes.append((await ask.account.session.get_price(symbol), digits))
            except MT5DataError:
                missing.append(symbol)
        return Reply(prices_view(self._heading(ask, "Prices"), quotes, missing))

    async def _account(self, ask: _Ask) -> Reply:
        self._no_words(ask)
        info = await ask.account.session.get_account_info()
        return Reply(account_view(self._heading(ask, "Account"), info))

    async def _positions(self, ask: _Ask) -> Reply:
        symbol = self._optional_symbol(ask)
        session = ask.account.session
        positions = await session.positions(symbol=symbol)
        digits = {p.symbol: await self._symbol(ask.account, p.symbol) for p in positions}
        currency = (await session.get_account_info()).currency
        return Reply(positions_view(self._heading(ask, "Positions"), positions, digits, currency))

    async def _orders(self, ask: _Ask) -> Reply:
        symbol = self._optional_symbol(ask)
        orders = await ask.account.session.orders(symbol=symbol)
        digits = {o.symbol: await self._symbol(ask.account, o.symbol) for o in orders}
        return Reply(orders_view(self._heading(ask, "Pending orders"), orders, digits))

    async def _health(self, ask: _Ask) -> Reply:
        self._no_words(ask)
        account = ask.account
        reading = account.monitor.latest
        state = str(account.session.state)
        return Reply(health_view(self._heading(ask, "Health"), reading, state))

    async def _alerts(self, ask: _Ask) -> Reply:
        wanted = parse_switch(ask.words)
        if wanted is not None:
            self.state.update(ask.chat_id, alerts=wanted)
            if not wanted:
                self.gate.forget([ask.chat_id])
        on = self.state.chat(ask.chat_id).alerts
        what = "on: health, circuit breaker, unknown orders, fills and closes" if on else "off"
        return Reply(f"Alerts in this chat are {what}.")

    async def _use(self, ask: _Ask) -> Reply:
        if len(ask.words) > 1:
            raise UsageError("name one account")
        if ask.words:
            name = ask.words[0]
            if name not in self.accounts:
                raise UsageError(f"no account {name!r}; there are {', '.join(self.accounts)}")
            self.state.update(ask.chat_id, account=name)
        current = self._chat_account(ask.chat_id).name
        listed = ", ".join(f"<b>{esc(n)}</b>" if n == current else esc(n) for n in self.accounts)
        return Reply(f"This chat works with {esc(current)}. Accounts: {listed}")

    async def _help(self, ask: _Ask) -> Reply:
        return Reply(help_view(ask.role, ask.account.name, list(self.accounts),
                               ask.account.simulated))  # fmt: skip

    async def _halt(self, ask: _Ask) -> Reply:
        reason = " ".join(ask.words) or "no reason given"
        ask.account.session.halt_trading(f"{reason} (Telegram user {ask.user_id})")
        return Reply(f"🛑 Trading on {esc(ask.account.name)} is {code('halted')}: new orders are "
                     "refused (closing stays possible). /resume to lift it.")  # fmt: skip

    async def _resume(self, ask: _Ask) -> Reply:
        self._no_words(ask)
        ask.account.session.resume_trading()
        return Reply(f"✅ Trading on {esc(ask.account.name)} resumed.")

    def _no_words(self, ask: _Ask) -> None:
        if ask.words:
            raise UsageError("this command takes no arguments")

    def _optional_symbol(self, ask: _Ask) -> str | None:
        if len(ask.words) > 1:
            raise UsageError("at most one symbol")
        return parse_symbols(ask.words)[0] if ask.words else None

    # -- orders ----------------------------------------------------------------------------

    async def _buy(self, ask: _Ask) -> Reply:
        args = parse_order(Side.BUY, ask.words)
        self.confirmations.make_room(ask.user_id, self.settings.limits.pending)
        return await self._preview_order(ask, args)

    async def _sell(self, ask: _Ask) -> Reply:
        args = parse_order(Side.SELL, ask.words)
        self.confirmations.make_room(ask.user_id, self.settings.limits.pending)
        return await self._preview_order(ask, args)

    async def _preview_order(self, ask: _Ask, args: OrderArgs) -> Reply:
        """Check the order with the terminal, then show it with Confirm and Cancel (its stops at
        the symbol's digits: the confirmation binds the order exactly as shown)."""
        session = ask.account.session
        digits = await self._symbol(ask.account, args.symbol)
        action = OrderAction.of(args, digits.digits)
        check = await session.check_order(action.request())
        refusal = error_from_check_result(check.retcode, check.comment, None)
        if refusal is not None:  # no money, market closed...: say so now, offer no button
            raise refusal
        quote = await session.get_price(args.symbol)
        at = quote.ask if args.side is Side.BUY else quote.bid
        margin = await session.calc_margin(args.symbol, args.side, args.volume, at)
        account = await session.get_account_info()
        summary = order_summary(self._heading(ask, "Confirm order"), action, quote, digits,
                                margin, account, self.settings.confirm_ttl_s)  # fmt: skip
        return self._confirmation(ask.account, ask.chat_id, ask.user_id, action, summary)

    async def _close(self, ask: _Ask) -> Reply:
        args = parse_close(ask.words)
        self.confirmations.make_room(ask.user_id, self.settings.limits.pending)
        return await self._preview_close(ask.account, ask.chat_id, ask.user_id, args)

    async def _preview_close(
        self, account: BotAccount, chat_id: int, user_id: int, args: CloseArgs
    ) -> Reply:
        """Show the position and how much of it closes, with Confirm and Cancel; the
        confirmation binds the position's side and volume as shown and the volume to close."""
        session = account.session
        found = await session.positions(ticket=args.ticket)
        if not found:
            raise MT5DataError(f"no open position {args.ticket} on {account.name}",
                               hint="See /positions for the open ones.")  # fmt: skip
        position = found[0]
        if args.volume is not None and args.volume > position.volume:
            raise UsageError(f"volume {args.volume:g} is more than the position's "
                             f"{position.volume:g}")  # fmt: skip
        action = CloseAction.of(args, position)
        digits = await self._symbol(account, position.symbol)
        quote = await session.get_price(position.symbol)
        currency = (await session.get_account_info()).currency
        heading = title(account.name, account.simulated, "Confirm close")
        summary = close_summary(heading, action, position, quote, digits, currency,
                                self.settings.confirm_ttl_s)  # fmt: skip
        return self._confirmation(account, chat_id, user_id, action, summary)

    def _confirmation(
        self, account: BotAccount, chat_id: int, user_id: int, action: Action, summary: str
    ) -> Reply:
        item = self.confirmations.new(account.name, chat_id, user_id, action, summary)
        keyboard = InlineKeyboardMarkup([[
            InlineKeyboardButton("✅ Confirm", callback_data=f"{Press.CONFIRM}:{item.id}"),
            InlineKeyboardButton("✖ Cancel", callback_data=f"{Press.CANCEL}:{item.id}"),
        ]])  # fmt: skip
        return Reply(summary, keyboard, item)

    def _await_confirmation(self, item: Confirmation, message_id: int | None) -> None:
        """Remember where the confirmation is shown and expire it on time (also when its
        message could not be delivered: a reply lost on the way back may still have shown it)."""
        item.message_id = message_id
        delay = max(0.0, item.expires_at - self.confirmations.clock())
        loop = asyncio.get_running_loop()
        self._timers[item.id] = loop.call_later(
            delay, lambda: self._spawn(self._expire(item), f"expire-{item.id}")
        )

    async def _expire(self, item: Confirmation) -> None:
        self._timers.pop(item.id, None)
        if self.confirmations.expire(item):
            await self._settle(item, "⌛ Expired: nothing was sent.")

    async def _on_press(self, update: Update, context: Context) -> None:
        """A button: confirm or cancel (only the asker's presses count). No Telegram call here
        decides anything: the press's answer and the edits may fail, the verdict stands."""
        query, user = update.callback_query, update.effective_user
        if query is None or user is None or self._role(update) is None:
            return
        button, _, confirmation_id = (query.data or "").partition(":")
        try:
            press = Press(button)
        except ValueError:
            await self._quietly(query.answer("Unknown button."), "answer a press")
            return
        verdict = self.confirmations.press(confirmation_id, user.id, press)
        item = self.confirmations.get(confirmation_id)
        if verdict is Verdict.SEND and item is not None:
            self._locate(item, query)
            await self._confirmed(item, query)
            return
        answer = _PRESS_ANSWERS[verdict].format(state=item.state if item else "")
        alert = verdict in (Verdict.NOT_YOURS, Verdict.UNKNOWN)
        await self._quietly(query.answer(answer, show_alert=alert), "answer a press")
        if item is not None and verdict in (Verdict.CANCELLED, Verdict.EXPIRED):
            outcome = "✖ Cancelled" if verdict is Verdict.CANCELLED else "⌛ Expired"
            await self._settle(item, f"{outcome}: nothing was sent.")

    @staticmethod
    def _locate(item: Confirmation, query: CallbackQuery) -> None:
        """The confirmation's message, from the press, when sending it seemed to fail (its
        answer was lost, but the member saw it and pressed)."""
        message = query.message
        if item.message_id is None and message is not None and message.chat.id == item.chat_id:
            item.message_id = message.message_id

    async def _confirmed(self, item: Confirmation, query: CallbackQuery) -> None:
        """Send the confirmed order first, on its own task, so that no Telegram call (the
        press's answer, the "Sending…" edit) can hold it back or lose it; then show the outcome
        (:meth:`_report`)."""
        sending = asyncio.get_running_loop().create_task(
            self._execute(item), name=f"bot-send-{item.id}"
        )
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)
        await self._quietly(query.answer(_PRESS_ANSWERS[Verdict.SEND]), "answer a press")
        await self._settle(item, "⏳ Sending…")
        outcome = await asyncio.shield(sending)
        await self._report(item, outcome)
        if item.state is ConfirmState.CHANGED:
            await self._preview_again(item)

    async def _report(self, item: Confirmation, outcome: str) -> None:
        """The outcome in place of the confirmation; when that edit fails, in a new message.
        If Telegram takes neither, it is logged (and /positions shows what happened)."""
        if await self._settle(item, outcome):
            return
        try:
            await self._send(item.chat_id, self._outcome_text(item, outcome))
        except TelegramError as error:
            log.warning("confirmation %s ended %s but could not be reported: %s", item.id,
                        item.state, error.message)  # fmt: skip

    async def _execute(self, item: Confirmation) -> str:
        """Send the confirmed action once, exactly as shown (its idempotency key makes a repeat
        harmless); a close whose position changed since is refused (CHANGED), nothing sent."""
        account = self.accounts[item.account]
        action = item.action
        try:
            if isinstance(action, CloseAction) and not await self._still_shown(account, action):
                item.move(ConfirmState.CHANGED)
                return _CHANGED
            result = await self._send_order(account.session, action, item.idempotency_key)
        except MT5OrderOutcomeUnknown as error:
            item.move(ConfirmState.FAILED)
            return error_text(error) + "\nAn alert follows when the outcome is known."
        except MT5Error as error:
            item.move(ConfirmState.FAILED)
            return error_text(error)
        except Exception:
            item.move(ConfirmState.FAILED)
            log.exception("confirmed order %s failed", item.id)
            return _FAILED
        item.move(ConfirmState.DONE)
        digits = self._digits.get((account.name, action.symbol), Digits(5, 0.0)).digits
        return done_view(action, result, digits)

    @staticmethod
    async def _still_shown(account: BotAccount, action: CloseAction) -> bool:
        """Whether the position to close is still as it was shown."""
        found = await account.session.positions(ticket=action.ticket)
        return action.matches(found[0] if found else None)

    async def _send_order(
        self, session: MT5SessionManager, action: Action, key: str
    ) -> OrderResult:
        if isinstance(action, OrderAction):
            return await session.place_order(action.request(), idempotency_key=key)
        return await session.close_position(action.ticket, volume=action.volume,
                                            idempotency_key=key)  # fmt: skip

    async def _preview_again(self, item: Confirmation) -> None:
        """After a CHANGED confirmation: the close as it would be now, to confirm afresh."""
        action = item.action
        if not isinstance(action, CloseAction):
            return
        args = CloseArgs(action.ticket, None if action.whole else action.volume)
        account = self.accounts[item.account]
        try:
            reply = await self._preview_close(account, item.chat_id, item.user_id, args)
        except (UsageError, MT5Error) as error:
            text = error_text(error) if isinstance(error, MT5Error) else esc(error)
            reply = Reply(text)
        await self._post(item.chat_id, reply)

    async def _settle(self, item: Confirmation, outcome: str) -> bool:
        """Show the confirmation's outcome in place of its last line ("Expires in"), without
        the buttons; whether the message shows it now (never raises: Telegram failing must not
        stop what follows)."""
        if item.message_id is None:
            return False
        try:
            await patiently(lambda: self.application.bot.edit_message_text(
                self._outcome_text(item, outcome), chat_id=item.chat_id,
                message_id=item.message_id, parse_mode=ParseMode.HTML, reply_markup=None,
            ), self.settings.limits)  # fmt: skip
        except BadRequest as error:
            if "not modified" in error.message:
                return True
            log.warning("could not update confirmation %s: %s", item.id, error.message)
            return False
        except TelegramError as error:
            log.warning("could not update confirmation %s: %s", item.id, error.message)
            return False
        return True

    @staticmethod
    def _outcome_text(item: Confirmation, outcome: str) -> str:
        return truncate(f"{item.summary.rsplit(chr(10), 1)[0]}\n{outcome}")

    async def _quietly(self, call: Awaitable[object], what: str) -> bool:
        """Make a Telegram call whose failure must not stop what follows; whether it worked."""
        try:
            await call
        except TelegramError as error:
            log.warning("could not %s: %s", what, error.message)
            return False
        return True

    # -- other messages --------------------------------------------------------------------

    async def _unknown(self, update: Update, context: Context) -> None:
        chat, message = update.effective_chat, update.effective_message
        command = (message.text or "").split(maxsplit=1)[0] if message else ""
        _, at, addressee = command.partition("@")
        if at and addressee.lower() != (context.bot.username or "").lower():
            return  # "/x@otherbot": for another bot in the group
        if chat is not None and self._role(update) is not None:
            await self._send(chat.id, "Unknown command. /help lists what you can do.")

    async def _chatter(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is not None and self._role(update) is not None:
            await self._send(chat.id, "Commands start with /. Try /help.")

    async def _on_error(self, update: object, context: Context) -> None:
        """Errors outside the commands (network, Telegram refusals): logged, masked."""
        error = context.error
        if isinstance(error, Forbidden):
            log.warning("telegram refused a message: %s", error.message)
            return
        log.warning("telegram bot error: %s: %s", type(error).__name__,
                    self.redactor.redact_text(str(error)))  # fmt: skip

    async def _send(self, chat_id: int, text: str,
                    keyboard: InlineKeyboardMarkup | None = None) -> int | None:  # fmt: skip
        """Send HTML to a chat; the message id, or ``None`` when Telegram refused it."""
        try:
            sent = await patiently(lambda: self.application.bot.send_message(
                chat_id, truncate(text), parse_mode=ParseMode.HTML, reply_markup=keyboard
            ), self.settings.limits)  # fmt: skip
        except Forbidden as error:
            log.warning("chat %s cannot be written to: %s", chat_id, error.message)
            return None
        message_id: int = sent.message_id
        return message_id

    # -- alerts ----------------------------------------------------------------------------

    def _watch_alerts(self) -> None:
        loop = asyncio.get_running_loop()
        for account in self.accounts.values():
            name = account.name
            self._undo.append(account.monitor.on_transition(self._health_listener(name)))
            self._undo.append(account.session.breaker.subscribe(
                self._breaker_listener(name, loop)))  # fmt: skip
            self._spawn(self._watch_deals(account), f"{name}-deals")
            self._spawn(self._watch_unresolved(account), f"{name}-unresolved")

    def _health_listener(self, name: str) -> Callable[[HealthStatus | None, HealthStatus], None]:
        def changed(old: HealthStatus | None, new: HealthStatus) -> None:
            self.publish(health_alert(name, old, new))

        return changed

    def _breaker_listener(
        self, name: str, loop: asyncio.AbstractEventLoop
    ) -> Callable[[BreakerTransition], None]:
        """Breaker transitions may come from a terminal worker thread: hop to the loop."""

        def moved(move: BreakerTransition) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self.publish, breaker_alert(name, move))

        return moved

    async def _watch_deals(self, account: BotAccount) -> None:
        """Fills and closes, from the session's trade events (re-subscribed if they end)."""
        policy = self.settings.alerts
        while True:
            try:
                async for event in account.session.trade_events(interval_s=policy.events_s):
                    if event.kind is TradeEventKind.DEAL_ADDED and isinstance(event.item, Deal):
                        await self._deal(account, event.item)
            except MT5Error as error:
                log.info("account %s: trade events paused (%s)", account.name, error)
            await asyncio.sleep(policy.poll_s)

    async def _deal(self, account: BotAccount, deal: Deal) -> None:
        try:
            digits = (await self._symbol(account, deal.symbol)).digits
        except MT5Error:
            digits = 5
        self.publish(deal_alert(account.name, deal, digits))

    async def _watch_unresolved(self, account: BotAccount) -> None:
        """Orders whose outcome is unknown, and their resolution, from the journal.

        An order merely in flight is unresolved too (INTENT, SENT) for the blink of a send, so
        it is reported only once the journal says UNKNOWN or it is still open a round later."""
        reported: set[int] = set()
        seen: set[int] = set()
        while True:
            with contextlib.suppress(MT5Error):  # not connected yet: nothing new to say
                now = set(await account.session.unresolved_orders())
                for client_id in sorted(now - reported):
                    stuck = client_id in seen
                    if stuck or await account.session.order_state(client_id) == "UNKNOWN":
                        reported.add(client_id)
                        self.publish(unresolved_alert(account.name, client_id))
                for client_id in sorted(reported - now):
                    state = await account.session.order_state(client_id)
                    reported.discard(client_id)
                    self.publish(resolved_alert(account.name, client_id, state or "resolved"))
                seen = now
            await asyncio.sleep(self.settings.alerts.poll_s)

    def publish(self, alert: Alert | None) -> None:
        """Send ``alert`` to every subscribed chat the gate lets it through to."""
        if alert is None or not self._running:
            return
        for chat_id in self.state.subscribers():
            text = self.gate.admit(chat_id, alert)
            if text is not None:
                self._spawn(self._deliver(chat_id, text), f"alert-{chat_id}")

    async def _deliver(self, chat_id: int, text: str) -> None:
        try:
            sent = await self._send(chat_id, text)
        except TelegramError as error:
            log.warning("alert to chat %s failed: %s", chat_id, error.message)
            return
        if sent is None:  # blocked or removed: stop writing to it
            self.state.update(chat_id, alerts=False)


def _sender(update: Update) -> int:
    """Whose update this is, for the rate limit (the chat, for an update without a user)."""
    user, chat = update.effective_user, update.effective_chat
    return user.id if user is not None else chat.id if chat is not None else 0


@dataclass(frozen=True, slots=True)
class _Ask:
    """One command as the bot handles it: who, where, the words, the account."""

    chat_id: int
    user_id: int
    role: Role
    words: list[str]
    account: BotAccount


_PRESS_ANSWERS: Final = {
    Verdict.CANCELLED: "Cancelled: nothing was sent.",
    Verdict.EXPIRED: "Expired: nothing was sent. Ask again.",
    Verdict.NOT_YOURS: "Only the member who asked can confirm or cancel this order.",
    Verdict.UNKNOWN: "This confirmation is no longer known (the bot restarted?). Nothing was "
    "sent; ask again.",
    Verdict.ALREADY: "Already {state}: nothing more is sent.",
    Verdict.SEND: "Sending…",
}
