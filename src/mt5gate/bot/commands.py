"""The bot's commands as data, and the parsing of their arguments.

:data:`COMMANDS` is the one table of what exists: name, the role it needs, its usage line and
what it does (``/help``, Telegram's command menu and the refusals are all read from it). The
parsers turn a command's words into typed values or raise :class:`UsageError`, whose message
says which word is wrong and why; the bot answers it with the command's usage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from mt5gate.bot.settings import Role
from mt5gate.models import Side

__all__ = [
    "COMMANDS",
    "CloseArgs",
    "CommandSpec",
    "OrderArgs",
    "UsageError",
    "parse_close",
    "parse_order",
    "parse_switch",
    "parse_symbols",
    "spec",
]

_MAX_SYMBOLS: Final = 10
_SYMBOL: Final = re.compile(r"[A-Za-z0-9._#+\-]{1,32}")
#: A number as a person types it: ASCII digits and at most one point. Python's float() also
#: takes "1_0" (ten lots!), other scripts' digits and "1e3": refused here.
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: its name, the role it needs, its usage and what it does."""

    name: str
    role: Role
    usage: str
    summary: str


COMMANDS: Final[tuple[CommandSpec, ...]] = (
    CommandSpec("price", Role.VIEWER, "/price SYMBOL [SYMBOL ...]", "bid, ask and spread"),
    CommandSpec("account", Role.VIEWER, "/account", "balance, equity and margin"),
    CommandSpec("positions", Role.VIEWER, "/positions [SYMBOL]", "open positions"),
    CommandSpec("orders", Role.VIEWER, "/orders [SYMBOL]", "pending orders"),
    CommandSpec("health", Role.VIEWER, "/health", "the gateway's health checks"),
    CommandSpec("alerts", Role.VIEWER, "/alerts on|off", "alerts in this chat"),
    CommandSpec("use", Role.VIEWER, "/use [ACCOUNT]", "the account this chat works with"),
    CommandSpec("help", Role.VIEWER, "/help", "what you can do here"),
    CommandSpec("buy", Role.TRADER, "/buy SYMBOL VOLUME [sl=PRICE] [tp=PRICE]",
                "buy at market, after a confirmation"),
    CommandSpec("sell", Role.TRADER, "/sell SYMBOL VOLUME [sl=PRICE] [tp=PRICE]",
                "sell at market, after a confirmation"),
    CommandSpec("close", Role.TRADER, "/close TICKET [VOLUME]",
                "close a position (or part of it), after a confirmation"),
    CommandSpec("halt", Role.ADMIN, "/halt [REASON]", "refuse every new order"),
    CommandSpec("resume", Role.ADMIN, "/resume", "accept orders again"),
)  # fmt: skip

_BY_NAME: Final = {command.name: command for command in COMMANDS}


def spec(name: str) -> CommandSpec:
    """The command called ``name`` (``KeyError`` for one that does not exist)."""
    return _BY_NAME[name]


class UsageError(ValueError):
    """A command's words do not fit its usage; the message names the word and the rule."""


@dataclass(frozen=True, slots=True)
class OrderArgs:
    """``/buy`` or ``/sell``: what to trade, how much, and optional stops."""

    side: Side
    symbol: str
    volume: float
    sl: float | None = None
    tp: float | None = None


@dataclass(frozen=True, slots=True)
class CloseArgs:
    """``/close``: the position and, for a partial close, the volume."""

    ticket: int
    volume: float | None = None


def parse_symbols(words: list[str], *, at_least: int = 1) -> list[str]:
    """Symbol names (all-lower-case ones upper-cased), without repeats: ``at_least`` to 10."""
    if len(words) < at_least:
        raise UsageError("name at least one symbol")
    if len(words) > _MAX_SYMBOLS:
        raise UsageError(f"at most {_MAX_SYMBOLS} symbols at once, got {len(words)}")
    return list(dict.fromkeys(_symbol(word) for word in words))


def parse_order(side: Side, words: list[str]) -> OrderArgs:
    """``SYMBOL VOLUME [sl=PRICE] [tp=PRICE]`` (``sl`` and ``tp`` in any order)."""
    if len(words) < 2:
        raise UsageError("a symbol and a volume are needed")
    symbol, volume = _symbol(words[0]), _positive("volume", words[1])
    stops: dict[str, float] = {}
    for word in words[2:]:
        key, equals, value = word.partition("=")
        key = key.lower()
        if not equals or key not in ("sl", "tp"):
            raise UsageError(f"{word!r} is not sl=PRICE or tp=PRICE")
        if key in stops:
            raise UsageError(f"{key} is given twice")
        stops[key] = _positive(key, value)
    return OrderArgs(side, symbol, volume, stops.get("sl"), stops.get("tp"))


def parse_close(words: list[str]) -> CloseArgs:
    """``TICKET [VOLUME]``."""
    if not 1 <= len(words) <= 2:
        raise UsageError("a ticket and, to close part of the position, a volume")
    ticket = words[0].removeprefix("#")
    if not (ticket.isascii() and ticket.isdigit()) or int(ticket) <= 0:
        raise UsageError(f"ticket must be a position's number, got {words[0]!r}")
    volume = _positive("volume", words[1]) if len(words) == 2 else None
    return CloseArgs(int(ticket), volume)


def parse_switch(words: list[str]) -> bool | None:
    """``on`` or ``off`` (``None`` when nothing is given: the caller shows the state)."""
    if not words:
        return None
    if len(words) == 1 and words[0].lower() in ("on", "off"):
        return words[0].lower() == "on"
    raise UsageError("say on or off")


def _symbol(word: str) -> str:
    if _SYMBOL.fullmatch(word) is None:
        raise UsageError(f"{word!r} is not a symbol name (letters, digits and . _ # + -)")
    # "eurusd" means EURUSD; a name with capitals is kept as typed ("EURUSDm" is a real name).
    return word if any(c.isupper() for c in word) else word.upper()


def _positive(field: str, word: str) -> float:
    """A positive finite number; a decimal comma is accepted (``0,1``), as phones type it."""
    text = word.replace(",", ".") if "." not in word else word
    value = _float(text)
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise UsageError(f"{field} must be a positive number, got {word!r}")
    if value is None or _NUMBER.fullmatch(text) is None:
        raise UsageError(f"{field} must be a number, got {word!r}")
    return value


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
