"""What the bot writes: Telegram HTML with aligned monospace tables and errors in plain words.

Everything the bot sends goes through here, escaped for Telegram's HTML parse mode (only
``& < >`` need escaping there). Tables are ``<pre>`` blocks, their columns padded to the widest
cell (numbers right-aligned), because a phone shows monospace text as it is. Prices carry the
symbol's own digits; money two decimals with thousands separators.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Final

from mt5gate.errors import (
    CONNECT_FIRST_HINT,
    RECONNECTING_HINT,
    MT5Error,
    MT5NotFoundError,
    MT5TradeError,
    error_title,
)

__all__ = [
    "MAX_MESSAGE",
    "bold",
    "code",
    "error_text",
    "esc",
    "lots",
    "money",
    "price",
    "table",
    "truncate",
]

#: Telegram's limit on a message's text (after entities are parsed; we stay under it raw).
MAX_MESSAGE: Final = 4096
_CUT: Final = "\n… (cut: too long for one message)"


def esc(text: object) -> str:
    """``text`` safe inside Telegram HTML."""
    return html.escape(str(text), quote=False)


def bold(text: object) -> str:
    """``text`` in bold."""
    return f"<b>{esc(text)}</b>"


def code(text: object) -> str:
    """``text`` in monospace."""
    return f"<code>{esc(text)}</code>"


def price(value: float, digits: int) -> str:
    """A price with the symbol's digits (``1.08523`` for EURUSD, ``151.234`` for USDJPY)."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.{max(0, digits)}f}"


def money(value: float) -> str:
    """An amount of account currency: ``12,345.67``."""
    return f"{value:,.2f}" if math.isfinite(value) else "-"


def lots(value: float) -> str:
    """A volume in lots with at least two decimals and no noise: ``0.10``, ``0.015``."""
    text = f"{value:.8f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned monospace table: a ``<pre>`` block, numbers right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    numeric = [all(_numeric(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return " ".join(padded).rstrip()

    body = [line(headers), *(line(row) for row in rows)]
    return f"<pre>{esc(chr(10).join(body))}</pre>"


def _numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace("-", "").replace("+", "").replace(".", "")
    return stripped.isdigit() or cell == "-"


#: What a chat user does when something named is not there: the bot's own commands, never the
#: session's Python hint (``session.positions()``).
NOT_FOUND_HINTS: Final = {
    "symbol": "Symbol names are exact, suffix included (EURUSD.m): "
    "copy one from the terminal's Market Watch.",
    "position": "/positions lists the open ones.",
    "order": "/orders lists the pending ones.",
}


#: A chat user's words for a session not usable yet (the session's hints name Python calls).
SESSION_HINTS: Final = {
    CONNECT_FIRST_HINT: "The account is not connected yet: /health says why; try again soon.",
    RECONNECTING_HINT: "The gateway reconnects by itself: try again soon (/health says why).",
}


def error_text(error: MT5Error) -> str:
    """An error as a person should read it: what happened, in plain words, and what to do."""
    what = error.message
    hint = NOT_FOUND_HINTS[error.kind] if isinstance(error, MT5NotFoundError) else error.hint
    hint = SESSION_HINTS.get(hint, hint)
    if isinstance(error, MT5TradeError) and error.retcode is not None:
        answer = error.comment or "no comment"
        what = f"The trade server answered {error.retcode} “{answer}”."
    elif what and what[-1] not in ".!?":
        what += "."
    return f"❌ {bold(error_title(error))}\n{esc(what)}\n<i>What to do:</i> {esc(hint)}"


_TAG: Final = re.compile(r"<(/?)([a-z-]+)[^>]*>")
_PARTIAL: Final = re.compile(r"(&[^;\s]*|<[^>]*)\Z")
_ROOM: Final = 64  # for the closing tags the cut may need


def truncate(text: str) -> str:
    """``text`` cut to fit one message: at a line end when there is one, never inside a tag
    or an entity, and with every tag left open (``<pre>``, ``<b>``) closed again."""
    if len(text) <= MAX_MESSAGE:
        return text
    cut = text[: MAX_MESSAGE - len(_CUT) - _ROOM]
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    cut = _PARTIAL.sub("", cut)
    open_tags: list[str] = []
    for closing, name in _TAG.findall(cut):
        if not closing:
            open_tags.append(name)
        elif name in open_tags:
            del open_tags[len(open_tags) - 1 - open_tags[::-1].index(name)]
    return cut + "".join(f"</{name}>" for name in reversed(open_tags)) + esc(_CUT)
