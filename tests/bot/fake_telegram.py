"""A fake Telegram Bot API server for tests: the real python-telegram-bot (PTB) client talks to it
over HTTP on loopback, and sync test code drives it and inspects what the bot did.

Use it from sync test code (the bot under test runs in another thread or event loop)::

    with FakeTelegram(TOKEN) as fake:
        app = (ApplicationBuilder().token(TOKEN)
               .base_url(fake.base_url).base_file_url(fake.base_file_url).build())
        ...  # start the bot polling in its own thread/loop
        fake.send_text("/start", user_id=42)
        menu = fake.wait_message(42, "Choose")
        query_id = fake.press(menu.message_id, menu.button("Positions"), user_id=42)
        assert fake.wait_answer(query_id) == {...}

What it emulates
================
* Transport as PTB speaks it. PTB builds ``base_url + token + "/" + method`` (``base_url`` is
  ``http://127.0.0.1:PORT/bot``) and POSTs every method, getUpdates included, as
  ``application/x-www-form-urlencoded``: a ``str`` parameter is sent as is, everything else
  (ints, bools, lists, dicts such as ``reply_markup``) as its ``json.dumps`` text; ``None``
  parameters are left out; ``multipart/form-data`` only when files are uploaded. The fake
  accepts form, multipart and JSON bodies and the query string (GET or POST), and decodes the
  values by parameter name as Telegram does (ints, bools, JSON objects/arrays; text stays text).
  The token is only accepted in the path ``/bot<token>/<method>``; method names are
  case-insensitive. Answers are Telegram's envelope: ``{"ok": true, "result": ...}`` or
  ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`` with the same
  HTTP status, which is what PTB maps to its exceptions (400 BadRequest, 401/404 InvalidToken,
  403 Forbidden, 409 Conflict, 429 with ``parameters.retry_after`` RetryAfter, other
  NetworkError).
* getUpdates with its real semantics: ``offset`` confirms (forgets) every update with a lower id
  (a negative offset keeps only the last ``-offset``), ``limit`` (1..100), long polling up to
  ``timeout`` seconds (capped at 30) answered as soon as an update is queued, ``allowed_updates``
  remembered and applied when an update is created (as Telegram does), 409 "terminated by other
  getUpdates request" for the older of two concurrent pollers, 409 while a webhook is set.
* Methods: getMe, getUpdates, deleteWebhook (``drop_pending_updates``), setWebhook,
  getWebhookInfo, setMyCommands, getMyCommands, deleteMyCommands (per scope and language),
  sendMessage, editMessageText, editMessageReplyMarkup, deleteMessage, answerCallbackQuery,
  sendChatAction, close, logOut. Anything else answers 404 "Not Found" (what Telegram answers
  for an unknown method), so a bot calling a method the fake does not emulate fails loudly.
* Message state as Telegram keeps it: message ids rise per chat (user and bot messages share
  the sequence); ``text`` is the text after entity parsing (HTML markup removed, entities
  unescaped, leading/trailing whitespace trimmed) with ``entities`` in UTF-16 offsets, as the
  returned Message carries them; editMessageText without ``reply_markup`` removes the inline
  keyboard (Telegram does); the edit count and edit date are kept.
* Telegram's refusals that catch real bot bugs (the descriptions are Telegram's):
  text over 4096 characters, empty text, HTML that Telegram cannot parse (the HTML parser
  follows TDLib's ``parse_html``: allowed tags, attribute syntax, ``</>``, the error messages
  with UTF-8 byte offsets), an unsupported parse_mode, callback_data over 64 bytes, an inline
  button without an action, a message to edit/delete that does not exist, an edit that changes
  nothing, an unknown or already answered callback query, a chat that never wrote to the bot,
  a bot blocked by the user, a wrong token; and any failure on demand with :meth:`fail_next`.
  (A few descriptions are the fake's own wording where Telegram's is not known to it: the
  ``span``/``tg-emoji`` attribute errors and BOT_COMMAND_DESCRIPTION_INVALID.)
* Recording: every request, refused ones included, is an :class:`ApiCall` in :attr:`calls`, in
  arrival order, with its typed parameters, HTTP status, description and result (and, for
  sendMessage and edits, a :class:`FakeMessage` snapshot). A long poll the bot abandons (PTB
  cancels it when stopping) is recorded with status 499, not answered with 409 by the next poll.
  The ``wait_*`` helpers block the calling (test) thread on a condition variable, not on sleeps,
  and on timeout raise AssertionError with the recent calls, pending updates and known chats.

What it does not emulate
========================
* MarkdownV2/Markdown parsing: with those parse modes the text is stored and returned as sent.
* Automatic entities (URLs, mentions, hashtags, bot commands in the bot's own messages),
  ``link_preview_options``, message threads, business connections, inline messages
  (``inline_message_id``), media, files (``/file/bot...`` answers 404), webhooks delivering
  updates (setWebhook only records the URL), rate limits (use :meth:`fail_next` with 429 and
  ``retry_after``; :meth:`drop_next` for a network failure), callback
  query expiry, chats the bot was removed from other than by :meth:`block` (a blocked user's
  ``send_text`` does not unblock; call :meth:`unblock`).
* Strictness on purpose: with ``strict_html=True`` (the default) a ``&`` that does not start a
  complete entity (``&amp;`` ``&lt;`` ``&gt;`` ``&quot;`` ``&#NN;`` ``&#xHH;``, with its ``;``) is
  refused. Telegram itself keeps such an ``&`` literally, but the Bot API documentation says it
  must be escaped, and an unescaped ``&`` is the same bug as an unescaped ``<`` one message later.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "ApiCall",
    "FakeMessage",
    "FakeTelegram",
    "HtmlParseError",
    "canonical_method",
    "parse_html",
]

JSON = dict[str, Any]
_T = TypeVar("_T")

#: Telegram's limits.
MAX_TEXT_LENGTH: Final = 4096
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_POLL_TIMEOUT_S: Final = 30.0
MAX_UPDATES_LIMIT: Final = 100

#: Telegram's descriptions of the refusals the fake produces.
UNAUTHORIZED: Final = "Unauthorized"
NOT_FOUND: Final = "Not Found"
MESSAGE_TOO_LONG: Final = "Bad Request: message is too long"
MESSAGE_EMPTY: Final = "Bad Request: message text is empty"
CANT_PARSE_ENTITIES: Final = "Bad Request: can't parse entities: "
UNSUPPORTED_PARSE_MODE: Final = "Bad Request: unsupported parse_mode"
MESSAGE_TO_EDIT_NOT_FOUND: Final = "Bad Request: message to edit not found"
MESSAGE_TO_DELETE_NOT_FOUND: Final = "Bad Request: message to delete not found"
MESSAGE_TO_REPLY_NOT_FOUND: Final = "Bad Request: message to be replied not found"
MESSAGE_CANT_BE_EDITED: Final = "Bad Request: message can't be edited"
MESSAGE_ID_MISSING: Final = "Bad Request: message identifier is not specified"
MESSAGE_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
CHAT_NOT_FOUND: Final = "Bad Request: chat not found"
CHAT_ID_EMPTY: Final = "Bad Request: chat_id is empty"
BOT_BLOCKED: Final = "Forbidden: bot was blocked by the user"
BOT_KICKED_GROUP: Final = "Forbidden: bot was kicked from the group chat"
BOT_KICKED_SUPERGROUP: Final = "Forbidden: bot was kicked from the supergroup chat"
BUTTON_DATA_INVALID: Final = "Bad Request: BUTTON_DATA_INVALID"
TEXT_BUTTONS_UNALLOWED: Final = (
    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline "
    "keyboard"
)
MARKUP_NOT_OBJECT: Final = "Bad Request: can't parse reply keyboard markup JSON object"
BOT_COMMAND_INVALID: Final = "Bad Request: BOT_COMMAND_INVALID"
BOT_COMMAND_DESCRIPTION_INVALID: Final = "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"
COMMANDS_NOT_ARRAY: Final = "Bad Request: can't parse commands JSON object"
WRONG_CHAT_ACTION: Final = "Bad Request: wrong parameter action in request"
CONFLICT_OTHER_POLLER: Final = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
#: Not Telegram's: what the fake records for a request whose connection it dropped.
DROPPED: Final = "Connection dropped by the fake: the client got no answer"
#: Not Telegram's: what the fake records for a long poll whose client went away.
CLIENT_GONE: Final = "Client Closed Request: the bot abandoned this long poll"
CONFLICT_WEBHOOK: Final = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)

#: The methods the fake answers, as Telegram spells them (and PTB sends them).
METHODS: Final = (
    "getMe",
    "getUpdates",
    "deleteWebhook",
    "setWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "sendChatAction",
    "close",
    "logOut",
)
_CANONICAL: Final = {name.lower(): name for name in METHODS}
_SENDS: Final = frozenset({"sendMessage", "sendChatAction"})
_MESSAGE_CALLS: Final = frozenset(
    {"sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage"}
)
_EDITS: Final = frozenset({"editMessageText", "editMessageReplyMarkup"})

# How form values are typed (Telegram types parameters by name; a form carries only strings).
_INT_PARAMS: Final = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "user_id",
        "from_chat_id",
        "max_connections",
    }
)
_BOOL_PARAMS: Final = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "allow_paid_broadcast",
    }
)
_TEXT_PARAMS: Final = frozenset(
    {
        "text",
        "parse_mode",
        "callback_query_id",
        "url",
        "action",
        "language_code",
        "inline_message_id",
        "business_connection_id",
        "secret_token",
        "ip_address",
        "caption",
        "message_effect_id",
    }
)
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS: Final = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
#: The update types Telegram sends when ``allowed_updates`` is an empty list.
_DEFAULT_UPDATE_TYPES: Final = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
_COMMAND_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")
_BOT_COMMAND_NAME_RE: Final = re.compile(r"[a-z0-9_]{1,32}")


def canonical_method(name: str) -> str:
    """Telegram's spelling of a method name given in any case, or in PTB's snake_case."""
    lowered = name.lower()
    return _CANONICAL.get(lowered) or _CANONICAL.get(lowered.replace("_", ""), name)


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class FakeMessage:
    """A snapshot of one message as the fake (that is, Telegram) keeps it."""

    chat_id: int
    message_id: int
    #: The text as Telegram returns it: markup removed, entities unescaped, whitespace trimmed.
    text: str
    #: The text exactly as the bot sent it (``text`` for messages from users).
    raw_text: str
    parse_mode: str | None
    #: Entities as Telegram returns them (UTF-16 offsets).
    entities: list[JSON]
    #: The inline keyboard as rows of buttons ({"text", "callback_data"} or another action), or
    #: None when the message has none.
    reply_markup: list[list[JSON]] | None
    edit_count: int
    from_bot: bool
    date: int
    #: Any reply_markup the bot sent (a reply keyboard, ForceReply...), not only inline ones.
    raw_reply_markup: JSON | None = None

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row by row, left to right."""
        return [button for row in self.reply_markup or [] for button in row]

    @property
    def callback_data(self) -> list[str]:
        """The callback_data of every callback button, in order."""
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    def button(self, label: str) -> str:
        """The callback_data of the button labelled ``label`` (exactly, else the only button
        whose label contains it)."""
        exact = [b for b in self.buttons if b.get("text") == label]
        found = exact or [b for b in self.buttons if label in str(b.get("text", ""))]
        if len(found) != 1 or "callback_data" not in found[0]:
            labels = [b.get("text") for b in self.buttons]
            raise AssertionError(
                f"message {self.chat_id}/{self.message_id} has no single callback button "
                f"{label!r}; its buttons: {labels}"
            )
        data: str = found[0]["callback_data"]
        return data


@dataclass
class ApiCall:
    """One request the bot made. Recorded when it arrives; ``status`` is 0 while a long poll is
    still waiting, then the HTTP status of the answer (200 when it succeeded)."""

    method: str
    params: JSON
    at_index: int
    status: int = 0
    description: str | None = None
    result: Any = None
    #: For sendMessage/edits that succeeded: the message's state right after this call.
    message: FakeMessage | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    def __str__(self) -> str:
        params = json.dumps(self.params, ensure_ascii=False, default=repr)
        if len(params) > 240:
            params = params[:237] + "..."
        outcome = "pending" if self.status == 0 else str(self.status)
        detail = f" {self.description}" if self.description else ""
        return f"#{self.at_index} {self.method} -> {outcome}{detail} {params}"


class _ApiError(Exception):
    """A refusal, answered as Telegram answers it."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> _ApiError:
    return _ApiError(400, description)


# --------------------------------------------------------------------------------------------
# HTML, as TDLib's parse_html reads it


class HtmlParseError(ValueError):
    """Telegram could not parse the HTML; the message is what follows "can't parse entities: "."""


_HTML_TAGS: Final = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
        "span",
        "tg-emoji",
    }
)
_SIMPLE_ENTITIES: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_SPACES: Final = " \t\r\n\v"
_URL_SCHEMES: Final = frozenset({"http", "https", "ftp", "tg", "ton", "tonsite"})
_USER_LINK_RE: Final = re.compile(r"tg://user\?id=(\d{1,19})$", re.IGNORECASE)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _decode_html_entity(markup: str, pos: int) -> tuple[str | None, int]:
    """TDLib's decode_html_entity: the character of the entity at ``pos`` (which holds "&") and
    the position after it, or (None, pos) when it is not one Telegram decodes."""
    end = pos + 1
    if markup.startswith("#", end):
        end += 1
        code = 0
        if markup.startswith("x", end):
            end += 1
            while end < len(markup) and markup[end] in "0123456789abcdefABCDEF":
                code = code * 16 + int(markup[end], 16)
                end += 1
        else:
            while end < len(markup) and markup[end].isdigit() and markup[end].isascii():
                code = code * 10 + int(markup[end])
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None, pos
        char = chr(code)
    else:
        while end < len(markup) and markup[end].isascii() and markup[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(markup[pos + 1 : end])
        if named is None:
            return None, pos
        char = named
    if markup.startswith(";", end):
        end += 1
    return char, end


def _normalise_url(url: str) -> str | None:
    """The URL Telegram keeps for a text link, or None when it drops the link."""
    url = url.strip()
    if not url or any(c.isspace() for c in url):
        return None
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url
    if scheme.lower() not in _URL_SCHEMES:
        return None
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    host, tail = rest[:cut], rest[cut:]
    if not host:
        return None
    if not tail.startswith("/"):
        tail = "/" + tail
    return f"{scheme.lower()}://{host}{tail}"


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    utf16_offset: int
    text_index: int


def parse_html(markup: str, *, strict: bool = True) -> tuple[str, list[JSON]]:
    """Parse ``markup`` the way Telegram does for ``parse_mode="HTML"`` (TDLib's parse_html) and
    return the plain text and its entities (Bot API dicts, UTF-16 offsets, sorted).

    Raises :class:`HtmlParseError` with Telegram's message (byte offsets are in UTF-8). With
    ``strict`` a ``&`` that is not a complete entity (with its ``;``) is refused too.
    """
    return _HtmlParser(markup, strict=strict).parse()


class _HtmlParser:
    """One run of TDLib's parse_html over a markup string."""

    def __init__(self, markup: str, *, strict: bool) -> None:
        self.markup = markup
        self.strict = strict
        self.out: list[str] = []  # one character per item
        self.utf16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JSON] = []

    def at(self, pos: int) -> int:
        """The UTF-8 byte offset of a position, as Telegram reports it."""
        return len(self.markup[:pos].encode("utf-8", "surrogatepass"))

    def emit(self, char: str) -> None:
        self.out.append(char)
        self.utf16 += _utf16_len(char)

    def parse(self) -> tuple[str, list[JSON]]:
        markup, i = self.markup, 0
        while i < len(markup):
            char = markup[i]
            if char == "&":
                decoded, end = _decode_html_entity(markup, i)
                if decoded is not None and (not self.strict or markup[end - 1] == ";"):
                    self.emit(decoded)
                    i = end
                    continue
                if self.strict:
                    raise HtmlParseError(
                        f'Character "&" at byte offset {self.at(i)} does not start an HTML '
                        'entity; write "&amp;" (the fake is stricter than Telegram here)'
                    )
            if char != "<":
                self.emit(char)
                i += 1
            elif markup.startswith("/", i + 1):
                i = self.end_tag(i)
            else:
                i = self.start_tag(i)
        if self.stack:
            raise HtmlParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        text = "".join(self.out)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            raise HtmlParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, check "
                "for unmatched surrogate code units"
            )
        for entity in self.entities:
            entity.pop("_language", None)
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return text, self.entities

    def end_tag(self, begin: int) -> int:
        """Read the end tag at ``begin`` ("</"); returns the position after it."""
        markup, n = self.markup, len(self.markup)
        if not self.stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {self.at(begin)}")
        j = begin + 2
        while j < n and markup[j] not in _HTML_SPACES and markup[j] != ">":
            j += 1
        end_name = markup[begin + 2 : j]
        while j < n and markup[j] in _HTML_SPACES:
            j += 1
        if j >= n or markup[j] != ">":
            raise HtmlParseError(f"Unclosed end tag at byte offset {self.at(begin)}")
        open_tag = self.stack.pop()
        if end_name and end_name != open_tag.name:
            raise HtmlParseError(
                f"Unmatched end tag at byte offset {self.at(begin)}, expected "
                f'"</{open_tag.name}>", found "</{end_name}>"'
            )
        self.close(open_tag)
        return j + 1

    def start_tag(self, begin: int) -> int:
        """Read the start tag at ``begin`` ("<"); returns the position after it."""
        markup, n = self.markup, len(self.markup)
        j = begin + 1
        while j < n and markup[j] not in _HTML_SPACES and markup[j] != ">":
            j += 1
        if j >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {self.at(begin)}")
        name = markup[begin + 1 : j].lower()
        tag_at = self.at(begin)
        if name not in _HTML_TAGS:
            raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {tag_at}')
        attrs, j = self.attributes(j, name, tag_at)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {tag_at}')
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise HtmlParseError(
                f'Tag "tg-emoji" must have a numeric attribute "emoji-id" at byte offset {tag_at}'
            )
        self.stack.append(_OpenTag(name, attrs, self.utf16, len(self.out)))
        return j + 1  # past ">"

    def skip_spaces(self, i: int, tag: str, tag_at: int) -> int:
        while i < len(self.markup) and self.markup[i] in _HTML_SPACES:
            i += 1
        if i >= len(self.markup):
            raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {tag_at}')
        return i

    def attributes(self, i: int, tag: str, tag_at: int) -> tuple[dict[str, str], int]:
        """The attributes of a start tag from ``i`` (just after its name), and the position of
        the closing ">"."""
        markup, n = self.markup, len(self.markup)
        attrs: dict[str, str] = {}
        while True:
            i = self.skip_spaces(i, tag, tag_at)
            if markup[i] == ">":
                return attrs, i
            name_start = i
            while i < n and markup[i] not in _HTML_SPACES and markup[i] not in "=>":
                i += 1
            attr = markup[name_start:i].lower()
            if not attr:
                raise HtmlParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset {tag_at}'
                )
            i = self.skip_spaces(i, tag, tag_at)
            if markup[i] != "=":
                attrs.setdefault(attr, "")  # an attribute without a value, such as "expandable"
                continue
            i = self.skip_spaces(i + 1, tag, tag_at)
            value, i = self.attribute_value(i, tag_at)
            attrs.setdefault(attr, value)

    def attribute_value(self, i: int, tag_at: int) -> tuple[str, int]:
        markup, n = self.markup, len(self.markup)
        if markup[i] not in "'\"":
            # A name token: letters, digits, periods and hyphens; not case-sensitive.
            start = i
            while i < n and ((markup[i].isascii() and markup[i].isalnum()) or markup[i] in ".-"):
                i += 1
            if i >= n or (markup[i] not in _HTML_SPACES and markup[i] != ">"):
                raise HtmlParseError(
                    f"Unexpected end of name token at byte offset {self.at(start)}"
                )
            return markup[start:i].lower(), i
        quote = markup[i]
        i += 1
        chars: list[str] = []
        while i < n and markup[i] != quote:
            if markup[i] == "&":
                decoded, end = _decode_html_entity(markup, i)
                if decoded is not None:
                    chars.append(decoded)
                    i = end
                    continue
            chars.append(markup[i])
            i += 1
        if i >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {tag_at}")
        return "".join(chars), i + 1

    def close(self, tag: _OpenTag) -> None:
        """Add the entity a closed tag makes (none when it encloses no text)."""
        entities = self.entities
        offset, length = tag.utf16_offset, self.utf16 - tag.utf16_offset
        if length <= 0:
            return
        span: JSON = {"offset": offset, "length": length}
        last = entities[-1] if entities else None
        same_span = last is not None and last["offset"] == offset and last["length"] == length
        if tag.name in _SIMPLE_ENTITIES:
            entities.append({"type": _SIMPLE_ENTITIES[tag.name], **span})
        elif tag.name == "blockquote":
            kind = "expandable_blockquote" if "expandable" in tag.attrs else "blockquote"
            entities.append({"type": kind, **span})
        elif tag.name == "tg-emoji":
            entities.append(
                {"type": "custom_emoji", **span, "custom_emoji_id": tag.attrs["emoji-id"]}
            )
        elif tag.name == "a":
            url = tag.attrs.get("href") or "".join(self.out[tag.text_index :])
            user = _USER_LINK_RE.match(url)
            if user:
                mentioned = {"id": int(user.group(1)), "is_bot": False, "first_name": "User"}
                entities.append({"type": "text_mention", **span, "user": mentioned})
            elif (normalised := _normalise_url(url)) is not None:
                entities.append({"type": "text_link", **span, "url": normalised})
        elif tag.name == "pre":
            if last is not None and same_span and last["type"] == "code" and last.get("_language"):
                last["type"] = "pre"
                last["language"] = last.pop("_language")
            else:
                entities.append({"type": "pre", **span})
        else:  # code
            cls = tag.attrs.get("class", "")
            language = cls[len("language-") :] if cls.startswith("language-") else ""
            if last is not None and same_span and last["type"] == "pre" and language:
                last["language"] = language
            else:
                entity: JSON = {"type": "code", **span}
                if language:
                    entity["_language"] = language  # becomes pre's language if a pre closes
                entities.append(entity)


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims leading and trailing whitespace of a message; entities follow."""
    trimmed = text.strip()
    if trimmed == text:
        return text, entities
    shift = _utf16_len(text[: len(text) - len(text.lstrip())])
    total = _utf16_len(trimmed)
    kept: list[JSON] = []
    for entity in entities:
        start = max(int(entity["offset"]) - shift, 0)
        end = min(int(entity["offset"]) + int(entity["length"]) - shift, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return trimmed, kept


# --------------------------------------------------------------------------------------------
# Request decoding


def _typed(name: str, value: str) -> Any:
    """A form value typed as Telegram types that parameter."""
    if name in _TEXT_PARAMS:
        return value
    if name in _INT_PARAMS:
        return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
    if name in _BOOL_PARAMS:
        lowered = value.strip().lower()
        if lowered in {"true", "1"}:
            return True
        if lowered in {"false", "0", ""}:
            return False
        return value
    if value[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _multipart_fields(content_type: str, body: bytes) -> Iterator[tuple[str, Any]]:
    parsed = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    assert isinstance(parsed, EmailMessage)
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            yield name, {"filename": part.get_filename(), "size": len(data)}
        else:
            yield name, data.decode("utf-8", "replace")


async def _read_params(request: Request) -> JSON:
    """Parameters from the query string and the body (form, multipart or JSON), typed."""
    params: JSON = {k: _typed(k, v) for k, v in request.query_params.multi_items()}
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return params
    if kind == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise _bad("Bad Request: can't parse JSON encoded request parameters") from exc
        if not isinstance(decoded, dict):
            raise _bad("Bad Request: can't parse JSON encoded request parameters")
        for key, value in decoded.items():
            params[key] = _typed(key, value) if isinstance(value, str) else value
    elif kind == "multipart/form-data":
        for key, value in _multipart_fields(content_type, body):
            params[key] = _typed(key, value) if isinstance(value, str) else value
    else:  # application/x-www-form-urlencoded, what PTB sends
        text = body.decode("utf-8", "replace")
        for key, value in parse_qsl(text, keep_blank_values=True):
            params[key] = _typed(key, value)
    return params


# --------------------------------------------------------------------------------------------
# State


@dataclass
class _Stored:
    """A message as Telegram keeps it (mutable; snapshots are FakeMessage)."""

    chat_id: int
    message_id: int
    sender: JSON
    from_bot: bool
    date: int
    text: str
    raw_text: str
    parse_mode: str | None
    entities: list[JSON]
    keyboard: list[list[JSON]] | None
    raw_markup: JSON | None = None
    edit_count: int = 0
    edit_date: int | None = None
    reply_to: int | None = None
    deleted: bool = False
    forward_origin: JSON | None = None

    def snapshot(self) -> FakeMessage:
        return FakeMessage(
            chat_id=self.chat_id,
            message_id=self.message_id,
            text=self.text,
            raw_text=self.raw_text,
            parse_mode=self.parse_mode,
            entities=copy.deepcopy(self.entities),
            reply_markup=copy.deepcopy(self.keyboard),
            edit_count=self.edit_count,
            from_bot=self.from_bot,
            date=self.date,
            raw_reply_markup=copy.deepcopy(self.raw_markup),
        )


@dataclass
class _Query:
    chat_id: int
    message_id: int
    user_id: int
    answered: bool = False


@dataclass
class _Poll:
    """A getUpdates request being answered."""

    generation: int
    limit: int
    deadline: float
    #: The answer when there is no need to wait.
    immediate: list[JSON] | None


@dataclass
class _Failure:
    code: int
    description: str
    retry_after: int | None


class _Dropped(Response):
    """A connection cut mid-answer: the headers promise a body that never comes, so the client
    sees a network error (httpx ``RemoteProtocolError``; PTB ``NetworkError``)."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # Returning without the body makes the server close the connection (it logs that).


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: only that can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _Server(uvicorn.Server):
    """uvicorn, telling a thread when it accepts connections."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._ready.set()


def _now() -> int:
    return int(time.time())


class FakeTelegram:
    """A fake Telegram Bot API server on 127.0.0.1 for one bot token. See the module docstring.

    Thread-safe: the server runs in its own thread and event loop; every public method may be
    called from any thread.
    """

    def __init__(
        self,
        token: str,
        *,
        bot_id: int = 7000001,
        username: str = "mt5gate_test_bot",
        first_name: str = "MT5Gate Test Bot",
        strict_html: bool = True,
    ) -> None:
        if not token or "/" in token:
            raise ValueError("the token must be non-empty and contain no '/'")
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.first_name = first_name
        self.strict_html = strict_html

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._calls: list[ApiCall] = []
        self._updates: list[JSON] = []  # pending (unconfirmed), by update_id
        self._dropped_updates: list[JSON] = []  # not created: their type was not allowed
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._chats: dict[int, JSON] = {}
        self._blocked: set[int] = set()
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], _Stored] = {}
        self._queries: dict[str, _Query] = {}
        self._answers: dict[str, JSON] = {}
        self._query_ids = itertools.count(4_391_000_000_000_000_001)
        self._failures: dict[str, list[_Failure]] = {}
        self._drops: dict[str, list[bool]] = {}
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._webhook_url = ""
        self._poll_generation = 0

        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = False
        self._app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST"]),
            ]
        )

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeTelegram:
        """Serve on 127.0.0.1 (a free port) in a daemon thread; returns once it accepts
        connections."""
        if self._thread is not None:
            raise RuntimeError("FakeTelegram is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self._port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=3,
        )
        ready = threading.Event()
        self._server = _Server(config, ready)
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._wakeup = asyncio.Event()
            try:
                assert self._server is not None
                loop.run_until_complete(self._server.serve(sockets=[sock]))
            except BaseException as exc:
                failure.append(exc)
            finally:
                ready.set()
                sock.close()
                loop.close()

        self._stopping = False
        self._thread = threading.Thread(target=run, name=f"fake-telegram-{self._port}", daemon=True)
        self._thread.start()
        if not ready.wait(10.0) or failure or not self._server.started:
            self.stop()
            raise RuntimeError(f"the fake Telegram server did not start: {failure!r}")
        return self

    def stop(self) -> None:
        """Stop serving: pending long polls answer at once, then the server shuts down."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        with self._lock:
            self._stopping = True
        self._wake()
        server.should_exit = True
        thread.join(timeout=10.0)
        self._thread = None
        self._server = None
        self._loop = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ``Bot(token, base_url=...)`` / ``ApplicationBuilder().base_url(...)``: PTB appends
        the token, then "/method"."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------------ updates in

    def send_text(
        self,
        text: str,
        *,
        user_id: int,
        chat_id: int | None = None,
        username: str | None = None,
        first_name: str = "Tester",
        chat_type: str | None = None,
        forwarded_from: int | None = None,
    ) -> int:
        """Queue a Message update: ``user_id`` writes ``text`` in a private chat (``chat_id`` =
        ``user_id``) or in ``chat_id`` (a negative id is a "group" unless ``chat_type`` says
        otherwise). A leading "/command" (or "/command@bot") gets its bot_command entity.
        With ``forwarded_from``, ``user_id`` forwards a message that user wrote (Telegram keeps
        its entities and adds ``forward_origin``). Returns the update_id."""
        with self._cond:
            user = self._user(user_id, username, first_name)
            cid = user_id if chat_id is None else chat_id
            self._register_chat(cid, chat_type, user)
            message_id = self._new_message_id(cid)
            stored = _Stored(
                chat_id=cid,
                message_id=message_id,
                sender=user,
                from_bot=False,
                date=_now(),
                text=text,
                raw_text=text,
                parse_mode=None,
                entities=[],
                keyboard=None,
            )
            if forwarded_from is not None:
                stored.forward_origin = {
                    "type": "user", "date": _now(),
                    "sender_user": self._user(forwarded_from, None, "Original"),
                }  # fmt: skip
            command = _COMMAND_RE.match(text)
            if command:
                stored.entities.append(
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command.group())}
                )
            self._messages[(cid, message_id)] = stored
            update_id = self._push_update("message", self._message_json(stored))
        self._wake()
        return update_id

    def press(
        self,
        message_id: int,
        data: str,
        *,
        user_id: int,
        chat_id: int | None = None,
        username: str | None = None,
        first_name: str = "Tester",
        force: bool = False,
    ) -> str:
        """Queue a CallbackQuery update: ``user_id`` presses the button with ``data`` on the bot's
        message ``message_id`` (in the private chat with the user unless ``chat_id``). The query's
        ``message`` is the message as it is now. Returns the new query id.

        A test cannot press a button the message does not show (AssertionError) unless
        ``force``."""
        with self._cond:
            cid = user_id if chat_id is None else chat_id
            stored = self._messages.get((cid, message_id))
            if stored is None or stored.deleted or not stored.from_bot:
                raise AssertionError(
                    f"no message {message_id} from the bot in chat {cid}; "
                    f"bot messages there: {[m.message_id for m in self._bot_messages(cid)]}"
                )
            shown = stored.snapshot().callback_data
            if not force and data not in shown:
                raise AssertionError(
                    f"message {cid}/{message_id} shows no button with callback_data {data!r}; "
                    f"it shows {shown}"
                )
            query_id = str(next(self._query_ids))
            self._queries[query_id] = _Query(cid, message_id, user_id)
            query = {
                "id": query_id,
                "from": self._user(user_id, username, first_name),
                "message": self._message_json(stored),
                "chat_instance": str(-(abs(cid) * 7919 + 1_000_003)),
                "data": data,
            }
            self._push_update("callback_query", query)
        self._wake()
        return query_id

    # ----------------------------------------------------------------- test controls

    def allow_chat(
        self, chat_id: int, *, chat_type: str | None = None, title: str | None = None
    ) -> None:
        """Let the bot send to ``chat_id`` although it never wrote to the bot."""
        with self._cond:
            user = self._user(chat_id, None, "Tester") if chat_id > 0 else None
            chat = self._register_chat(chat_id, chat_type, user)
            if title is not None and chat["type"] != "private":
                chat["title"] = title

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: later sends to the chat answer 403."""
        with self._cond:
            self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._cond:
            self._blocked.discard(chat_id)

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        *,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``error_code`` and
        ``description`` (and ``parameters.retry_after`` when given, as Telegram sends with 429)."""
        name = canonical_method(method)
        with self._cond:
            self._failures.setdefault(name, []).extend(
                [_Failure(error_code, description, retry_after)] * times
            )

    def clear_failures(self) -> None:
        """Forget the failures and drops not yet made (:meth:`fail_next`, :meth:`drop_next`)."""
        with self._cond:
            self._failures.clear()
            self._drops.clear()

    def drop_next(self, method: str, *, times: int = 1, processed: bool = False) -> None:
        """Cut the connection of the next ``times`` calls of ``method`` instead of answering: a
        network error for the bot. With ``processed``, the call takes effect first (the message
        is sent, the press answered) and only its answer is lost, as when a reply is lost on
        the way back. Recorded with status 0 and :data:`DROPPED`."""
        name = canonical_method(method)
        with self._cond:
            self._drops.setdefault(name, []).extend([processed] * times)

    # --------------------------------------------------------------------- inspection

    @property
    def calls(self) -> list[ApiCall]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def mark(self) -> int:
        """The index the next call will get: pass it as ``since`` to look only after now."""
        with self._lock:
            return len(self._calls)

    @property
    def commands(self) -> list[JSON]:
        """The bot's command list for the default scope and all languages."""
        return self.commands_for()

    def commands_for(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self._commands.get(self._scope_key(scope, language_code), []))

    def messages(self, chat_id: int, *, include_user: bool = False) -> list[FakeMessage]:
        """The current state of the bot's messages in a chat (and the users' with
        ``include_user``), in order; deleted ones are left out."""
        with self._lock:
            stored = sorted(
                (
                    m
                    for (cid, _), m in self._messages.items()
                    if cid == chat_id and not m.deleted and (m.from_bot or include_user)
                ),
                key=lambda m: m.message_id,
            )
            return [m.snapshot() for m in stored]

    def message(self, chat_id: int, message_id: int) -> FakeMessage:
        """The current state of one message."""
        with self._lock:
            stored = self._messages.get((chat_id, message_id))
            if stored is None or stored.deleted:
                raise AssertionError(f"no message {chat_id}/{message_id}")
            return stored.snapshot()

    def pending_updates(self) -> list[JSON]:
        """The updates not yet confirmed by the bot."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def answer_for(self, query_id: str) -> JSON | None:
        with self._lock:
            return copy.deepcopy(self._answers.get(query_id))

    def calls_to(self, chat_id: int, since: int = 0) -> list[ApiCall]:
        """sendMessage, edit and deleteMessage calls to a chat (refused ones too), in order."""
        with self._lock:
            return [
                c
                for c in self._calls[since:]
                if c.method in _MESSAGE_CALLS and c.chat_id == chat_id
            ]

    # -------------------------------------------------------------------------- waiting

    def wait_call(
        self,
        method: str,
        *,
        predicate: Callable[[ApiCall], bool] | None = None,
        since: int = 0,
        timeout: float = 10.0,
    ) -> ApiCall:
        """The first call of ``method`` (any spelling) at or after ``since`` for which
        ``predicate`` holds; waits for it up to ``timeout`` seconds."""
        name = canonical_method(method)

        def find() -> ApiCall | None:
            for call in self._calls[since:]:
                if call.method == name and (predicate is None or predicate(call)):
                    return call
            return None

        return self._wait(find, timeout, f"a {name} call", since)

    def wait_message(
        self,
        chat_id: int,
        contains: str | None = None,
        *,
        predicate: Callable[[FakeMessage], bool] | None = None,
        since: int = 0,
        timeout: float = 10.0,
    ) -> FakeMessage:
        """The first message the bot sent (successfully) to ``chat_id`` at or after ``since``
        whose text contains ``contains`` and for which ``predicate`` holds, as it was sent."""

        def find() -> FakeMessage | None:
            for call in self._calls[since:]:
                sent = call.message
                if (
                    call.method == "sendMessage"
                    and sent is not None
                    and sent.chat_id == chat_id
                    and (contains is None or contains in sent.text)
                    and (predicate is None or predicate(sent))
                ):
                    return sent
            return None

        what = f"a message to chat {chat_id}" + (f" containing {contains!r}" if contains else "")
        return self._wait(find, timeout, what, since)

    def wait_edit(
        self,
        chat_id: int,
        message_id: int,
        *,
        contains: str | None = None,
        since: int = 0,
        timeout: float = 10.0,
    ) -> FakeMessage:
        """The first successful edit (text or keyboard) of a message at or after ``since`` whose
        resulting text contains ``contains``; the message as that edit left it."""

        def find() -> FakeMessage | None:
            for call in self._calls[since:]:
                edited = call.message
                if (
                    call.method in _EDITS
                    and edited is not None
                    and edited.chat_id == chat_id
                    and edited.message_id == message_id
                    and (contains is None or contains in edited.text)
                ):
                    return edited
            return None

        what = f"an edit of message {chat_id}/{message_id}" + (
            f" containing {contains!r}" if contains else ""
        )
        return self._wait(find, timeout, what, since)

    def wait_answer(self, query_id: str, timeout: float = 10.0) -> JSON:
        """The parameters of the (successful) answerCallbackQuery for ``query_id``."""

        def find() -> JSON | None:
            answer = self._answers.get(query_id)
            return copy.deepcopy(answer) if answer is not None else None

        return self._wait(find, timeout, f"the answer to callback query {query_id}", 0)

    def no_call(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        within_s: float = 0.5,
        since: int | None = None,
    ) -> None:
        """Assert that no call of ``method`` (to ``chat_id``, when given) arrives at or after
        ``since`` (default: now) for ``within_s`` seconds."""
        name = canonical_method(method)
        start = self.mark() if since is None else since

        def find() -> ApiCall | None:
            for call in self._calls[start:]:
                if call.method == name and (chat_id is None or call.chat_id == chat_id):
                    return call
            return None

        deadline = time.monotonic() + within_s
        with self._cond:
            while (found := find()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)
            raise AssertionError(f"unexpected call: {found}\n{self._dump(start)}")

    def _wait(self, find: Callable[[], _T | None], timeout: float, what: str, since: int) -> _T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (found := find()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:g} s waiting for {what}\n{self._dump(since)}"
                    )
                self._cond.wait(remaining)
            return found

    def _dump(self, since: int = 0) -> str:
        """Recent calls and state, for failure messages (the lock is held)."""
        recent = self._calls[-30:]
        lines = [f"calls since #{since} (of {len(self._calls)}), the last {len(recent)}:"]
        lines += [("  " if c.at_index >= since else "  (before) ") + str(c) for c in recent]
        if not recent:
            lines.append("  (none)")
        lines.append(f"pending updates: {[u['update_id'] for u in self._updates]}")
        if self._dropped_updates:
            lines.append(
                "updates not created (type not in allowed_updates): "
                f"{[u['update_id'] for u in self._dropped_updates]}"
            )
        lines.append(f"known chats: {sorted(self._chats)}; blocked: {sorted(self._blocked)}")
        return "\n".join(lines)

    # --------------------------------------------------------------------- internals

    def _wake(self) -> None:
        """Wake the long polls (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._notify_pollers)

    def _notify_pollers(self) -> None:
        """In the server loop: set the current wakeup event and start a new one."""
        event, self._wakeup = self._wakeup, asyncio.Event()
        if event is not None:
            event.set()

    def _user(self, user_id: int, username: str | None, first_name: str) -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        user["language_code"] = "en"
        return user

    def _bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def _register_chat(self, chat_id: int, chat_type: str | None, user: JSON | None) -> JSON:
        chat = self._chats.get(chat_id)
        if chat is not None:
            return chat
        kind = chat_type or ("private" if chat_id > 0 else "group")
        chat = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = user["first_name"] if user else "Tester"
            if user and "username" in user:
                chat["username"] = user["username"]
        else:
            chat["title"] = f"Test {kind} {chat_id}"
        self._chats[chat_id] = chat
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _bot_messages(self, chat_id: int) -> list[_Stored]:
        return sorted(
            (
                m
                for (cid, _), m in self._messages.items()
                if cid == chat_id and m.from_bot and not m.deleted
            ),
            key=lambda m: m.message_id,
        )

    def _push_update(self, kind: str, payload: JSON) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        update = {"update_id": update_id, kind: payload}
        allowed = self._allowed_updates
        if allowed is not None and kind not in allowed:
            self._dropped_updates.append(update)
        else:
            self._updates.append(update)
        self._cond.notify_all()
        return update_id

    def _message_json(self, stored: _Stored, *, nested: bool = False) -> JSON:
        message: JSON = {
            "message_id": stored.message_id,
            "from": copy.deepcopy(stored.sender),
            "chat": copy.deepcopy(self._chats[stored.chat_id]),
            "date": stored.date,
        }
        if stored.edit_date is not None:
            message["edit_date"] = stored.edit_date
        if stored.forward_origin is not None:
            message["forward_origin"] = copy.deepcopy(stored.forward_origin)
        if stored.reply_to is not None and not nested:
            replied = self._messages.get((stored.chat_id, stored.reply_to))
            if replied is not None:
                message["reply_to_message"] = self._message_json(replied, nested=True)
        message["text"] = stored.text
        if stored.entities:
            message["entities"] = copy.deepcopy(stored.entities)
        if stored.keyboard is not None:
            message["reply_markup"] = {"inline_keyboard": copy.deepcopy(stored.keyboard)}
        return message

    @staticmethod
    def _scope_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    # ----------------------------------------------------------------------- HTTP side

    async def _not_found(self, request: Request) -> Response:
        return self._json(404, _ApiError(404, NOT_FOUND).body())

    @staticmethod
    def _json(status: int, body: JSON) -> Response:
        return Response(
            json.dumps(body, ensure_ascii=False),
            status_code=status,
            media_type="application/json",
        )

    async def _endpoint(self, request: Request) -> Response:
        token = request.path_params["token"]
        sent_name = request.path_params["method"]
        method = _CANONICAL.get(sent_name.lower(), sent_name)
        early: _ApiError | None = None
        try:
            params = await _read_params(request)
        except _ApiError as exc:
            params, early = {}, exc
        with self._cond:
            call = ApiCall(method=method, params=params, at_index=len(self._calls))
            self._calls.append(call)
            self._cond.notify_all()
            try:
                if token != self.token:
                    raise _ApiError(401, UNAUTHORIZED)
                if method not in _CANONICAL.values():
                    raise _ApiError(404, NOT_FOUND)
                if early is not None:
                    raise early
                drops = self._drops.get(method)
                if drops:
                    return self._drop(call, method, params, processed=drops.pop(0))
                failures = self._failures.get(method)
                if failures:
                    failure = failures.pop(0)
                    raise _ApiError(
                        failure.code, failure.description, retry_after=failure.retry_after
                    )
                if method != "getUpdates":
                    return self._finish(call, self._dispatch(method, params))
                poll = self._start_poll(params)
            except _ApiError as exc:
                return self._fail(call, exc)
            if poll.immediate is not None:
                return self._finish(call, poll.immediate)
        try:
            updates = await self._long_poll(poll, request)
        except _ApiError as exc:
            with self._cond:
                return self._fail(call, exc)
        return self._finish(call, updates)

    def _finish(self, call: ApiCall, result: Any) -> Response:
        with self._cond:
            call.status = 200
            call.result = result
            if call.method in _EDITS or call.method == "sendMessage":
                stored = self._messages.get((result["chat"]["id"], result["message_id"]))
                call.message = stored.snapshot() if stored is not None else None
            self._cond.notify_all()
        return self._json(200, {"ok": True, "result": result})

    def _drop(self, call: ApiCall, method: str, params: JSON, *, processed: bool) -> Response:
        """Cut the connection (after doing what ``method`` asks, when ``processed``)."""
        if processed:
            with contextlib.suppress(_ApiError):
                self._dispatch(method, params)
        call.description = DROPPED
        self._cond.notify_all()
        return _Dropped()

    def _fail(self, call: ApiCall, error: _ApiError) -> Response:
        call.status = error.code
        call.description = error.description
        self._cond.notify_all()
        return self._json(error.code, error.body())

    def _dispatch(self, method: str, p: JSON) -> Any:
        handler: Callable[[JSON], Any] = getattr(self, f"_m_{method}")
        return handler(p)

    # ------------------------------------------------------------------------ getUpdates

    def _start_poll(self, p: JSON) -> _Poll:
        """Apply a getUpdates request (under the lock): confirm by offset, supersede older polls,
        answer at once when there is something (or no timeout)."""
        if self._webhook_url:
            raise _ApiError(409, CONFLICT_WEBHOOK)
        offset = p.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        limit = p.get("limit", MAX_UPDATES_LIMIT)
        limit = min(max(limit, 1), MAX_UPDATES_LIMIT) if isinstance(limit, int) else 100
        timeout = p.get("timeout", 0)
        valid = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        timeout_s = min(max(float(timeout), 0.0), MAX_POLL_TIMEOUT_S) if valid else 0.0
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(map(str, allowed)) or _DEFAULT_UPDATE_TYPES
        self._poll_generation += 1
        # The older poll (if any) is woken to answer 409. The loop runs this very code, so the
        # event is set directly.
        self._notify_pollers()
        batch = copy.deepcopy(self._updates[:limit])
        immediate = batch if batch or timeout_s == 0 or self._stopping else None
        deadline = time.monotonic() + timeout_s
        return _Poll(self._poll_generation, limit, deadline, immediate)

    async def _long_poll(self, poll: _Poll, request: Request) -> list[JSON]:
        """Wait for updates, the timeout, a newer poll (409), the server stopping, or the client
        going away (the bot cancelled this request): then it answers 499, which nobody reads."""
        gone = asyncio.ensure_future(_client_gone(request))
        try:
            while True:
                with self._lock:
                    if self._poll_generation != poll.generation:
                        raise _ApiError(409, CONFLICT_OTHER_POLLER)
                    batch = copy.deepcopy(self._updates[: poll.limit])
                    remaining = poll.deadline - time.monotonic()
                    if batch or remaining <= 0 or self._stopping:
                        return batch
                # No await between the check above and taking the event: no wakeup is missed.
                event = self._wakeup
                assert event is not None
                woken = asyncio.ensure_future(event.wait())
                done, _ = await asyncio.wait(
                    {woken, gone}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
                if gone in done:
                    raise _ApiError(499, CLIENT_GONE)
        finally:
            gone.cancel()

    # --------------------------------------------------------------------------- methods

    def _m_getMe(self, p: JSON) -> JSON:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_deleteWebhook(self, p: JSON) -> bool:
        self._webhook_url = ""
        if p.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    def _m_setWebhook(self, p: JSON) -> bool:
        self._webhook_url = str(p.get("url") or "")
        if p.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, p: JSON) -> JSON:
        info: JSON = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url:
            info["max_connections"] = 40
        return info

    def _m_setMyCommands(self, p: JSON) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _bad(COMMANDS_NOT_ARRAY)
        kept: list[JSON] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad(COMMANDS_NOT_ARRAY)
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _BOT_COMMAND_NAME_RE.fullmatch(name):
                raise _bad(BOT_COMMAND_INVALID)
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad(BOT_COMMAND_DESCRIPTION_INVALID)
            kept.append({"command": name, "description": description})
        self._commands[self._scope_key(p.get("scope"), p.get("language_code"))] = kept
        return True

    def _m_getMyCommands(self, p: JSON) -> list[JSON]:
        key = self._scope_key(p.get("scope"), p.get("language_code"))
        return copy.deepcopy(self._commands.get(key, []))

    def _m_deleteMyCommands(self, p: JSON) -> bool:
        self._commands.pop(self._scope_key(p.get("scope"), p.get("language_code")), None)
        return True

    def _m_close(self, p: JSON) -> bool:
        return True

    def _m_logOut(self, p: JSON) -> bool:
        return True

    def _chat(self, p: JSON) -> int:
        chat_id = p.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad(CHAT_ID_EMPTY)
        if not isinstance(chat_id, int) or isinstance(chat_id, bool) or chat_id not in self._chats:
            raise _bad(CHAT_NOT_FOUND)
        return chat_id

    def _check_not_blocked(self, chat_id: int) -> None:
        if chat_id in self._blocked:
            kind = self._chats[chat_id]["type"]
            if kind == "group":
                raise _ApiError(403, BOT_KICKED_GROUP)
            if kind in {"supergroup", "channel"}:
                raise _ApiError(403, BOT_KICKED_SUPERGROUP)
            raise _ApiError(403, BOT_BLOCKED)

    def _text(self, p: JSON) -> tuple[str, list[JSON], str, str | None]:
        """The text as Telegram keeps it, its entities, the raw text and the parse mode."""
        raw = p.get("text")
        raw_text = raw if isinstance(raw, str) else "" if raw is None else str(raw)
        parse_mode = p.get("parse_mode")
        mode = str(parse_mode).lower() if parse_mode else ""
        explicit = p.get("entities")
        entities: list[JSON] = []
        if isinstance(explicit, list) and explicit:
            text = raw_text
            entities = [dict(e) for e in explicit if isinstance(e, dict)]
        elif mode == "html":
            try:
                text, entities = parse_html(raw_text, strict=self.strict_html)
            except HtmlParseError as exc:
                raise _bad(CANT_PARSE_ENTITIES + str(exc)) from exc
        elif mode in {"", "markdown", "markdownv2"}:
            text = raw_text  # Markdown is not emulated
        else:
            raise _bad(UNSUPPORTED_PARSE_MODE)
        text, entities = _trim(text, entities)
        if not text:
            raise _bad(MESSAGE_EMPTY)
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad(MESSAGE_TOO_LONG)
        return text, entities, raw_text, str(parse_mode) if parse_mode else None

    @staticmethod
    def _markup(value: Any) -> tuple[list[list[JSON]] | None, JSON | None]:
        """The inline keyboard (rows) and the raw reply_markup, validated as Telegram does."""
        if value is None:
            return None, None
        if not isinstance(value, dict):
            raise _bad(MARKUP_NOT_OBJECT)
        if "inline_keyboard" not in value:
            return None, copy.deepcopy(value)  # a reply keyboard, ForceReply, removal...
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad(MARKUP_NOT_OBJECT)
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad(MARKUP_NOT_OBJECT)
                if not _BUTTON_ACTIONS & button.keys():
                    raise _bad(TEXT_BUTTONS_UNALLOWED)
                data = button.get("callback_data")
                if data is not None and (
                    not isinstance(data, str)
                    or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise _bad(BUTTON_DATA_INVALID)
        keyboard = [[dict(button) for button in row] for row in rows]
        return (keyboard or None), copy.deepcopy(value)

    def _m_sendMessage(self, p: JSON) -> JSON:
        chat_id = self._chat(p)
        text, entities, raw_text, parse_mode = self._text(p)
        keyboard, raw_markup = self._markup(p.get("reply_markup"))
        reply_to = self._reply_target(chat_id, p)
        self._check_not_blocked(chat_id)
        stored = _Stored(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            sender=self._bot_user(),
            from_bot=True,
            date=_now(),
            text=text,
            raw_text=raw_text,
            parse_mode=parse_mode,
            entities=entities,
            keyboard=keyboard,
            raw_markup=raw_markup,
            reply_to=reply_to,
        )
        self._messages[(chat_id, stored.message_id)] = stored
        return self._message_json(stored)

    def _reply_target(self, chat_id: int, p: JSON) -> int | None:
        parameters = p.get("reply_parameters")
        target: Any = p.get("reply_to_message_id")
        lenient = p.get("allow_sending_without_reply") is True
        if isinstance(parameters, dict):
            target = parameters.get("message_id")
            lenient = lenient or parameters.get("allow_sending_without_reply") is True
        if target is None:
            return None
        stored = self._messages.get((chat_id, target)) if isinstance(target, int) else None
        if stored is None or stored.deleted:
            if lenient:
                return None
            raise _bad(MESSAGE_TO_REPLY_NOT_FOUND)
        return stored.message_id

    def _editable(self, p: JSON, *, missing: str) -> _Stored:
        if p.get("inline_message_id"):
            raise _bad("Bad Request: MESSAGE_ID_INVALID")  # inline messages are not emulated
        chat_id = self._chat(p)
        message_id = p.get("message_id")
        if message_id is None:
            raise _bad(MESSAGE_ID_MISSING)
        stored = self._messages.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if stored is None or stored.deleted:
            raise _bad(missing)
        return stored

    def _m_editMessageText(self, p: JSON) -> JSON:
        stored = self._editable(p, missing=MESSAGE_TO_EDIT_NOT_FOUND)
        if not stored.from_bot:
            raise _bad(MESSAGE_CANT_BE_EDITED)
        text, entities, raw_text, parse_mode = self._text(p)
        # No reply_markup in the edit removes the inline keyboard, as Telegram does.
        keyboard, raw_markup = self._markup(p.get("reply_markup"))
        if (text, entities, keyboard) == (stored.text, stored.entities, stored.keyboard):
            raise _bad(MESSAGE_NOT_MODIFIED)
        stored.text, stored.entities = text, entities
        stored.raw_text, stored.parse_mode = raw_text, parse_mode
        stored.keyboard, stored.raw_markup = keyboard, raw_markup
        stored.edit_count += 1
        stored.edit_date = _now()
        return self._message_json(stored)

    def _m_editMessageReplyMarkup(self, p: JSON) -> JSON:
        stored = self._editable(p, missing=MESSAGE_TO_EDIT_NOT_FOUND)
        if not stored.from_bot:
            raise _bad(MESSAGE_CANT_BE_EDITED)
        keyboard, raw_markup = self._markup(p.get("reply_markup"))
        if keyboard == stored.keyboard:
            raise _bad(MESSAGE_NOT_MODIFIED)
        stored.keyboard, stored.raw_markup = keyboard, raw_markup
        stored.edit_count += 1
        stored.edit_date = _now()
        return self._message_json(stored)

    def _m_deleteMessage(self, p: JSON) -> bool:
        stored = self._editable(p, missing=MESSAGE_TO_DELETE_NOT_FOUND)
        stored.deleted = True
        return True

    def _m_answerCallbackQuery(self, p: JSON) -> bool:
        query_id = p.get("callback_query_id")
        query = self._queries.get(str(query_id)) if query_id is not None else None
        if query is None or query.answered:
            raise _bad(QUERY_INVALID)
        query.answered = True
        self._answers[str(query_id)] = copy.deepcopy(p)
        return True

    def _m_sendChatAction(self, p: JSON) -> bool:
        chat_id = self._chat(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise _bad(WRONG_CHAT_ACTION)
        self._check_not_blocked(chat_id)
        return True
