"""The fake Telegram server speaks python-telegram-bot's dialect: the real PTB client (``Bot`` and
a whole ``Application``) runs against it over loopback HTTP, and every refusal the fake emulates
surfaces in PTB as the ``telegram.error`` exception Telegram's answer would raise."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.bot.fake_telegram import FakeTelegram, HtmlParseError, parse_html

T = TypeVar("T")

TOKEN = "7000001:AAH-fake-telegram-selftest-0123456789"
USER = 42
OTHER_USER = 43
GROUP = -500

KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Yes", callback_data="yes")],
        [InlineKeyboardButton("No", callback_data="no")],
    ]
)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


def ptb(fake: FakeTelegram, job: Callable[[Bot], Awaitable[T]], *, token: str = TOKEN) -> T:
    """Run ``job`` with an initialised PTB ``Bot`` pointed at the fake."""

    async def main() -> T:
        async with Bot(token, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
            return await job(bot)

    return asyncio.run(main())


def refusal(fake: FakeTelegram, job: Callable[[Bot], Awaitable[Any]]) -> TelegramError:
    """The PTB exception ``job`` raises."""

    async def expect(bot: Bot) -> TelegramError:
        with pytest.raises(TelegramError) as caught:
            await job(bot)
        return caught.value

    return ptb(fake, expect)


# ------------------------------------------------------------------------------ transport


def test_initialize_calls_get_me_and_learns_the_bot(fake: FakeTelegram) -> None:
    async def job(bot: Bot) -> dict[str, Any]:
        me = await bot.get_me()
        return {"id": bot.id, "username": bot.username, "me": me}

    seen = ptb(fake, job)
    assert seen["id"] == 7000001
    assert seen["username"] == "mt5gate_test_bot"
    me = seen["me"]
    assert me.is_bot
    assert me.can_join_groups
    assert me.first_name == "MT5Gate Test Bot"
    assert [(c.method, c.status) for c in fake.calls] == [("getMe", 200), ("getMe", 200)]


def test_a_wrong_token_is_refused_like_telegram(fake: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        ptb(fake, lambda bot: bot.get_me(), token="7000001:WRONG")
    call = fake.wait_call("getMe")
    assert (call.status, call.description) == (401, "Unauthorized")

    answer = httpx.post(f"{fake.base_url}7000001:WRONG/getMe")
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_raw_http_dialect(fake: FakeTelegram) -> None:
    """Form, JSON, multipart and query-string parameters; case-insensitive method names; 404s."""
    fake.allow_chat(USER)
    url = f"{fake.base_url}{TOKEN}"
    with httpx.Client() as client:
        unknown = client.post(f"{url}/sendTelepathy", data={"chat_id": "42"})
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        assert client.get(f"{fake.base_file_url}{TOKEN}/photos/1.jpg").status_code == 404

        # Form-encoded, as PTB sends it: JSON values are decoded, text stays text.
        form = client.post(
            f"{url}/sendmessage",
            data={"chat_id": "42", "text": "[1, 2]", "reply_markup": KEYBOARD.to_json()},
        )
        assert form.status_code == 200, form.text
        assert form.json()["result"]["text"] == "[1, 2]"
        # JSON body, method name in any case.
        as_json = client.post(f"{url}/SENDMESSAGE", json={"chat_id": "42", "text": "123"})
        assert as_json.json()["result"]["text"] == "123"
        # Query string.
        query = client.get(f"{url}/sendMessage", params={"chat_id": 42, "text": "from a query"})
        assert query.json()["result"]["text"] == "from a query"
        # Multipart (what PTB sends when a file goes along).
        multipart = client.post(
            f"{url}/sendMessage",
            data={"chat_id": "42", "text": "multi", "disable_notification": "true"},
            files={"thumbnail": ("a.txt", b"hello")},
        )
        assert multipart.json()["result"]["text"] == "multi"

    calls = fake.calls
    assert [c.method for c in calls] == ["sendTelepathy"] + ["sendMessage"] * 4
    form_params = calls[1].params
    assert form_params["chat_id"] == 42
    assert form_params["text"] == "[1, 2]"
    assert form_params["reply_markup"] == KEYBOARD.to_dict()
    assert calls[2].params == {"chat_id": 42, "text": "123"}
    assert calls[3].params == {"chat_id": 42, "text": "from a query"}
    assert calls[4].params["disable_notification"] is True
    assert calls[4].params["thumbnail"] == {"filename": "a.txt", "size": 5}
    assert [m.message_id for m in fake.messages(USER)] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------- messages


def test_send_message_returns_and_stores_what_telegram_keeps(fake: FakeTelegram) -> None:
    fake.allow_chat(USER)
    fake.allow_chat(OTHER_USER)

    async def job(bot: Bot) -> list[Any]:
        first = await bot.send_message(
            USER,
            "  <b>Bold</b> &amp; <i>it</i>\n",
            parse_mode=ParseMode.HTML,
            reply_markup=KEYBOARD,
        )
        second = await bot.send_message(USER, "plain")
        elsewhere = await bot.send_message(OTHER_USER, "hi")
        return [first, second, elsewhere]

    first, second, elsewhere = ptb(fake, job)
    assert first.text == "Bold & it"
    assert [(e.type, e.offset, e.length) for e in first.entities] == [
        ("bold", 0, 4),
        ("italic", 7, 2),
    ]
    assert first.from_user.id == 7000001
    assert first.from_user.is_bot
    assert first.chat.id == USER
    assert first.chat.type == "private"
    assert first.reply_markup == KEYBOARD
    assert (first.message_id, second.message_id, elsewhere.message_id) == (1, 2, 1)

    stored = fake.messages(USER)
    assert [m.text for m in stored] == ["Bold & it", "plain"]
    assert stored[0].raw_text == "  <b>Bold</b> &amp; <i>it</i>\n"
    assert stored[0].parse_mode == "HTML"
    assert stored[0].reply_markup == [
        [{"text": "Yes", "callback_data": "yes"}],
        [{"text": "No", "callback_data": "no"}],
    ]
    assert stored[0].callback_data == ["yes", "no"]
    assert stored[0].button("No") == "no"
    assert stored[0].edit_count == 0
    assert stored[1].parse_mode is None
    assert stored[1].reply_markup is None
    sent = fake.wait_message(USER, "Bold")
    assert sent.message_id == 1
    assert [c.method for c in fake.calls_to(USER)] == ["sendMessage", "sendMessage"]


@pytest.mark.parametrize(
    ("markup", "text", "entities"),
    [
        (
            '<a href="https://example.com/x?a=1&amp;b=2">link</a>',
            "link",
            [("text_link", 0, 4, "https://example.com/x?a=1&b=2")],
        ),
        (
            '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>',
            "st",
            [("spoiler", 0, 1, None), ("spoiler", 1, 1, None)],
        ),
        (
            '<pre><code class="language-python">x = 1</code></pre>',
            "x = 1",
            [("pre", 0, 5, "python")],
        ),
        ("&lt;b&gt; &quot;q&quot; &#39;a&#x27; &amp;", "<b> \"q\" 'a' &", []),
        ("<blockquote expandable>q</blockquote>", "q", [("expandable_blockquote", 0, 1, None)]),
        ("😀 <B>x</b>", "😀 x", [("bold", 3, 1, None)]),  # UTF-16 offsets, tags in any case
        ("<s>a</s><u>b</u><code>c</code><b><i>d</i></b>", "abcd", None),
    ],
)
def test_html_is_parsed_as_telegram_does(
    fake: FakeTelegram, markup: str, text: str, entities: list[tuple[Any, ...]] | None
) -> None:
    fake.allow_chat(USER)
    message = ptb(fake, lambda bot: bot.send_message(USER, markup, parse_mode=ParseMode.HTML))
    assert message.text == text
    assert fake.messages(USER)[0].text == text
    assert fake.messages(USER)[0].raw_text == markup
    got = [
        (e.type, e.offset, e.length, e.url or e.language or None)
        for e in sorted(message.entities, key=lambda e: (e.offset, e.type))
    ]
    if entities is None:
        assert [e[0] for e in got] == ["strikethrough", "underline", "code", "bold", "italic"]
    else:
        assert got == entities


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("<p>x</p>", 'unsupported start tag "p" at byte offset 0'),
        ("<b>x", 'can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("x<b", "unclosed start tag at byte offset 1"),
        ("x</b>", "unexpected end tag at byte offset 1"),
        ("P&L", 'character "&" at byte offset 1'),
        ('<span class="x">s</span>', 'tag "span" must have class "tg-spoiler"'),
        ("é<b =x>", 'empty attribute name in the tag "b" at byte offset 2'),
    ],
)
def test_malformed_html_is_refused(fake: FakeTelegram, markup: str, error: str) -> None:
    fake.allow_chat(USER)
    exc = refusal(fake, lambda bot: bot.send_message(USER, markup, parse_mode=ParseMode.HTML))
    assert isinstance(exc, BadRequest)
    assert exc.message.lower().startswith("can't parse entities: " + error.lower())
    assert fake.wait_call("sendMessage").status == 400
    assert fake.messages(USER) == []


def test_parse_html_follows_tdlib() -> None:
    """Cases from TDLib's own tests (test/message_entities.cpp): byte offsets are UTF-8."""
    with pytest.raises(HtmlParseError, match='at byte offset 17, expected "</i>", found "</em>"'):
        parse_html("🏟 🏟&lt;<i>a</em   >")
    with pytest.raises(HtmlParseError, match='Unsupported start tag "abac" at byte offset 13'):
        parse_html("🏟 🏟&lt;<abac aba>")
    with pytest.raises(HtmlParseError, match="Unexpected end of name token at byte offset 27"):
        parse_html("🏟 🏟&lt;<i    aba  =  190azAz-.,")
    with pytest.raises(HtmlParseError, match="unmatched surrogate"):
        parse_html("&#xDFDF;")
    assert parse_html("🏟 🏟<i>🏟 &lt🏟</i>", strict=False) == (
        "🏟 🏟🏟 <🏟",
        [{"type": "italic", "offset": 5, "length": 6}],
    )
    assert parse_html("&ge;&Or;AT&T", strict=False) == ("&ge;&Or;AT&T", [])
    assert parse_html("<a>telegram.org</a>") == (
        "telegram.org",
        [{"type": "text_link", "offset": 0, "length": 12, "url": "http://telegram.org/"}],
    )
    assert parse_html('<pre><code class="language-fift">x</></>')[1] == [
        {"type": "pre", "offset": 0, "length": 1, "language": "fift"}
    ]
    assert parse_html("<b></b>x") == ("x", [])
    with pytest.raises(HtmlParseError, match='Character "&" at byte offset 0'):
        parse_html("&lt")  # complete in Telegram's eyes; the fake wants the ";"


def test_text_refusals(fake: FakeTelegram) -> None:
    fake.allow_chat(USER)
    cases: list[tuple[Callable[[Bot], Awaitable[Any]], str]] = [
        (lambda bot: bot.send_message(USER, "x" * 4097), "Message is too long"),
        (lambda bot: bot.send_message(USER, ""), "Message text is empty"),
        (lambda bot: bot.send_message(USER, " \n "), "Message text is empty"),
        (
            lambda bot: bot.send_message(USER, "<b> </b>", parse_mode=ParseMode.HTML),
            "Message text is empty",
        ),
        (lambda bot: bot.send_message(777, "hello?"), "Chat not found"),
        (
            lambda bot: bot.send_message(USER, "x", parse_mode="Klingon"),
            "Unsupported parse_mode",
        ),
        (
            lambda bot: bot.send_message(
                USER, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a" * 3)]])
            ),
            "Can't parse inline keyboard button: text buttons are unallowed in the inline keyboard",
        ),
        (
            lambda bot: bot.send_message(
                USER,
                "x",
                reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("big", callback_data="é" * 33)]]
                ),
            ),
            "Button_data_invalid",
        ),
        (
            lambda bot: bot.send_message(USER, "re", reply_to_message_id=99),
            "Message to be replied not found",
        ),
    ]
    for job, message in cases:
        exc = refusal(fake, job)
        assert isinstance(exc, BadRequest), (message, exc)
        assert exc.message == message
    assert fake.messages(USER) == []
    # The limits are Telegram's, not lower: 4096 characters (after parsing) and 64 bytes pass.
    ok = ptb(
        fake, lambda bot: bot.send_message(USER, "<b>" + "é" * 4096 + "</b>", parse_mode="HTML")
    )
    assert len(ok.text) == 4096
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="é" * 32)]])
    assert ptb(fake, lambda bot: bot.send_message(USER, "x", reply_markup=keyboard)).message_id == 2


def test_blocked_user_and_failures_on_demand(
    fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta
    fake.send_text("hi", user_id=USER)
    fake.send_text("hi all", user_id=USER, chat_id=GROUP)
    fake.block(USER)
    fake.block(GROUP)
    blocked = refusal(fake, lambda bot: bot.send_message(USER, "still there?"))
    assert isinstance(blocked, Forbidden)
    assert blocked.message == "Forbidden: bot was blocked by the user"
    kicked = refusal(fake, lambda bot: bot.send_chat_action(GROUP, "typing"))
    assert isinstance(kicked, Forbidden)
    assert kicked.message == "Forbidden: bot was kicked from the group chat"
    fake.unblock(USER)

    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
    flood = refusal(fake, lambda bot: bot.send_message(USER, "now"))
    assert isinstance(flood, RetryAfter)
    assert flood.retry_after == dtm.timedelta(seconds=3)
    assert ptb(fake, lambda bot: bot.send_message(USER, "now")).text == "now"

    fake.fail_next("send_message", 502, "Bad Gateway", times=2)
    for _ in range(2):
        outage = refusal(fake, lambda bot: bot.send_message(USER, "later"))
        assert type(outage) is NetworkError
        assert outage.message == "Bad Gateway"
    assert ptb(fake, lambda bot: bot.send_message(USER, "later")).text == "later"
    assert [m.text for m in fake.messages(USER)] == ["now", "later"]
    assert [c.status for c in fake.calls_to(USER)] == [403, 429, 200, 502, 502, 200]


def test_a_dropped_connection_is_a_network_error_and_may_still_take_effect(
    fake: FakeTelegram,
) -> None:
    fake.send_text("hi", user_id=USER)
    fake.drop_next("sendMessage")
    lost = refusal(fake, lambda bot: bot.send_message(USER, "never"))
    assert type(lost) is NetworkError
    fake.drop_next("sendMessage", processed=True)
    lost = refusal(fake, lambda bot: bot.send_message(USER, "shown"))
    assert type(lost) is NetworkError
    assert [m.text for m in fake.messages(USER)] == ["shown"]
    assert ptb(fake, lambda bot: bot.send_message(USER, "fine")).text == "fine"


def test_edits_and_deletes(fake: FakeTelegram) -> None:
    fake.send_text("/menu", user_id=USER)

    async def job(bot: Bot) -> dict[str, Any]:
        sent = await bot.send_message(USER, "Pick", reply_markup=KEYBOARD)
        seen: dict[str, Any] = {"sent": sent}
        for name, edit in [
            ("same", bot.edit_message_text("Pick", USER, sent.message_id, reply_markup=KEYBOARD)),
            ("missing", bot.edit_message_text("x", USER, 99)),
            ("user's", bot.edit_message_text("x", USER, 1)),
        ]:
            with pytest.raises(BadRequest) as caught:
                await edit
            seen[name] = caught.value.message
        # Same text without reply_markup: a change (Telegram removes the keyboard).
        seen["unkeyed"] = await bot.edit_message_text("Pick", USER, sent.message_id)
        seen["keyed"] = await bot.edit_message_reply_markup(
            USER, sent.message_id, reply_markup=KEYBOARD
        )
        with pytest.raises(BadRequest) as caught:
            await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=KEYBOARD)
        seen["same markup"] = caught.value.message
        seen["deleted"] = await bot.delete_message(USER, sent.message_id)
        for name, gone in [
            ("edit deleted", bot.edit_message_text("x", USER, sent.message_id)),
            ("delete twice", bot.delete_message(USER, sent.message_id)),
        ]:
            with pytest.raises(BadRequest) as caught:
                await gone
            seen[name] = caught.value.message
        return seen

    seen = ptb(fake, job)
    assert seen["sent"].message_id == 2  # the user's /menu was message 1
    assert seen["same"].startswith("Message is not modified: specified new message content")
    assert seen["missing"] == "Message to edit not found"
    assert seen["user's"] == "Message can't be edited"
    assert seen["unkeyed"].reply_markup is None
    assert seen["unkeyed"].edit_date is not None
    assert seen["keyed"].reply_markup == KEYBOARD
    assert seen["same markup"].startswith("Message is not modified")
    assert seen["deleted"] is True
    assert seen["edit deleted"] == "Message to edit not found"
    assert seen["delete twice"] == "Message to delete not found"
    assert fake.messages(USER) == []
    assert [m.text for m in fake.messages(USER, include_user=True)] == ["/menu"]
    edits = [c for c in fake.calls_to(USER) if c.method.startswith("edit") and c.ok]
    assert [(c.method, c.message and c.message.edit_count) for c in edits] == [
        ("editMessageText", 1),
        ("editMessageReplyMarkup", 2),
    ]
    first_edit = fake.wait_edit(USER, 2)
    assert (first_edit.edit_count, first_edit.reply_markup) == (1, None)
    assert fake.wait_edit(USER, 2, since=edits[1].at_index).callback_data == ["yes", "no"]


# -------------------------------------------------------------------------------- updates


def test_get_updates_offsets_and_limit(fake: FakeTelegram) -> None:
    ids = [
        fake.send_text("/start", user_id=USER, username="ann"),
        fake.send_text("/start@mt5gate_test_bot now", user_id=USER, chat_id=GROUP),
        fake.send_text("hello", user_id=OTHER_USER),
    ]
    assert ids == [1, 2, 3]

    async def job(bot: Bot) -> dict[str, Any]:
        return {
            "all": await bot.get_updates(),
            "again": await bot.get_updates(),  # nothing confirmed yet
            "limited": await bot.get_updates(limit=2),
            "from 3": await bot.get_updates(offset=3),
            "after 3": await bot.get_updates(offset=4),
            "empty": await bot.get_updates(),
        }

    seen = ptb(fake, job)
    start, group_start, hello = seen["all"]
    assert [u.update_id for u in seen["again"]] == [1, 2, 3]
    assert [u.update_id for u in seen["limited"]] == [1, 2]
    assert [u.update_id for u in seen["from 3"]] == [3]
    assert seen["after 3"] == ()
    assert seen["empty"] == ()
    assert start.message.text == "/start"
    assert start.message.from_user.username == "ann"
    assert start.message.chat.type == "private"
    assert start.message.chat.id == USER
    assert [(e.type, e.offset, e.length) for e in start.message.entities] == [("bot_command", 0, 6)]
    assert group_start.message.chat.type == "group"
    assert group_start.message.chat.id == GROUP
    assert group_start.message.entities[0].length == len("/start@mt5gate_test_bot")
    assert hello.message.entities == ()
    assert fake.pending_updates() == []


def test_long_poll_answers_as_soon_as_an_update_arrives(fake: FakeTelegram) -> None:
    async def job(bot: Bot) -> tuple[tuple[Update, ...], float, tuple[Update, ...], float]:
        poll = asyncio.create_task(bot.get_updates(timeout=20))
        await asyncio.to_thread(fake.wait_call, "getUpdates", predicate=lambda c: c.status == 0)
        started = time.monotonic()
        update_id = await asyncio.to_thread(fake.send_text, "ping", user_id=USER)
        updates = await asyncio.wait_for(poll, 5)
        woke = time.monotonic() - started
        assert [u.update_id for u in updates] == [update_id]
        started = time.monotonic()
        idle = await bot.get_updates(offset=update_id + 1, timeout=1)
        return updates, woke, idle, time.monotonic() - started

    updates, woke, idle, waited = ptb(fake, job)
    assert updates[0].message.text == "ping"
    assert woke < 2.0  # not the 20 s timeout
    assert idle == ()
    assert 0.9 <= waited < 5.0  # it really waits for the timeout when nothing comes


def test_the_older_of_two_pollers_gets_409(fake: FakeTelegram) -> None:
    async def main() -> tuple[Conflict, tuple[Update, ...]]:
        urls = {"base_url": fake.base_url, "base_file_url": fake.base_file_url}
        async with Bot(TOKEN, **urls) as first, Bot(TOKEN, **urls) as second:
            older = asyncio.create_task(first.get_updates(timeout=20))
            await asyncio.to_thread(fake.wait_call, "getUpdates", predicate=lambda c: c.status == 0)
            newer = asyncio.create_task(second.get_updates(timeout=20))
            with pytest.raises(Conflict) as caught:
                await asyncio.wait_for(older, 5)
            await asyncio.to_thread(fake.send_text, "after the conflict", user_id=USER)
            return caught.value, await asyncio.wait_for(newer, 5)

    conflict, updates = asyncio.run(main())
    assert conflict.message.startswith("Conflict: terminated by other getUpdates request")
    assert [u.message.text for u in updates] == ["after the conflict"]
    assert [c.status for c in fake.calls if c.method == "getUpdates"] == [409, 200]


def test_callback_queries(fake: FakeTelegram) -> None:
    fake.allow_chat(USER)
    sent = ptb(fake, lambda bot: bot.send_message(USER, "Sure?", reply_markup=KEYBOARD))
    menu = fake.wait_message(USER, "Sure")
    with pytest.raises(AssertionError, match="shows no button"):
        fake.press(menu.message_id, "maybe", user_id=USER)
    query_id = fake.press(menu.message_id, menu.button("Yes"), user_id=USER)

    async def job(bot: Bot) -> dict[str, Any]:
        (update,) = await bot.get_updates()
        query = update.callback_query
        assert query is not None
        seen: dict[str, Any] = {"query": query, "answered": await query.answer("Done")}
        with pytest.raises(BadRequest) as again:
            await query.answer("twice")
        seen["again"] = again.value.message
        with pytest.raises(BadRequest) as unknown:
            await bot.answer_callback_query("123456")
        seen["unknown"] = unknown.value.message
        seen["edited"] = await query.edit_message_text("Confirmed")
        return seen

    seen = ptb(fake, job)
    query = seen["query"]
    assert query.id == query_id
    assert query.data == "yes"
    assert query.from_user.id == USER
    assert query.message.message_id == sent.message_id
    assert query.message.text == "Sure?"
    assert query.message.reply_markup == KEYBOARD
    assert seen["answered"] is True
    too_old = "Query is too old and response timeout expired or query id is invalid"
    assert seen["again"] == seen["unknown"] == too_old
    assert fake.wait_answer(query_id) == {"callback_query_id": query_id, "text": "Done"}
    assert seen["edited"].text == "Confirmed"
    assert fake.wait_edit(USER, sent.message_id, contains="Confirmed").edit_count == 1


def test_allowed_updates_apply_when_an_update_is_created(fake: FakeTelegram) -> None:
    fake.allow_chat(USER)
    sent = ptb(fake, lambda bot: bot.send_message(USER, "Sure?", reply_markup=KEYBOARD))
    fake.press(sent.message_id, "yes", user_id=USER)  # created before: delivered

    async def restrict(bot: Bot) -> tuple[Update, ...]:
        return await bot.get_updates(allowed_updates=["message"])

    (update,) = ptb(fake, restrict)
    assert update.callback_query is not None
    fake.press(sent.message_id, "no", user_id=USER)  # not created: type not allowed
    fake.send_text("typed", user_id=USER)
    updates = ptb(fake, lambda bot: bot.get_updates(offset=update.update_id + 1))
    assert [u.message.text for u in updates if u.message] == ["typed"]
    assert len(updates) == 1


def test_commands_webhooks_and_small_methods(fake: FakeTelegram) -> None:
    fake.send_text("hi", user_id=USER)
    commands = [BotCommand("start", "Start"), BotCommand("positions", "Open positions")]

    async def job(bot: Bot) -> dict[str, Any]:
        seen: dict[str, Any] = {
            "set": await bot.set_my_commands(commands),
            "scoped": await bot.set_my_commands(
                [BotCommand("admin", "Admin")], scope=BotCommandScopeChat(USER)
            ),
            "get": await bot.get_my_commands(),
            "get scoped": await bot.get_my_commands(scope=BotCommandScopeChat(USER)),
            "info": await bot.get_webhook_info(),
            "action": await bot.send_chat_action(USER, "typing"),
            "hook": await bot.set_webhook("https://example.com/hook"),
        }
        for name, refused in [
            ("bad command", bot.set_my_commands([BotCommand("Start!", "x")])),
            ("bad action", bot.send_chat_action(USER, "dancing")),
        ]:
            with pytest.raises(BadRequest) as caught:
                await refused
            seen[name] = caught.value.message
        with pytest.raises(Conflict) as conflict:
            await bot.get_updates()
        seen["poll with hook"] = conflict.value.message
        seen["hook info"] = await bot.get_webhook_info()
        seen["unhook"] = await bot.delete_webhook(drop_pending_updates=True)
        seen["after"] = await bot.get_updates()
        seen["deleted"] = await bot.delete_my_commands()
        seen["close"] = await bot.close()
        seen["log out"] = await bot.log_out()
        return seen

    seen = ptb(fake, job)
    assert seen["set"] is seen["scoped"] is seen["action"] is seen["hook"] is True
    assert seen["get"] == tuple(commands)
    assert [c.command for c in seen["get scoped"]] == ["admin"]
    assert seen["info"].url == ""
    assert seen["info"].pending_update_count == 1
    assert seen["bad command"] == "Bot_command_invalid"
    assert seen["bad action"] == "Wrong parameter action in request"
    assert "can't use getUpdates method while webhook is active" in seen["poll with hook"]
    assert seen["hook info"].url == "https://example.com/hook"
    assert seen["unhook"] is True
    assert seen["after"] == ()
    assert seen["deleted"] is seen["close"] is seen["log out"] is True
    assert fake.commands == []
    assert [c["command"] for c in fake.commands_for({"type": "chat", "chat_id": USER})] == ["admin"]


def test_update_ids_are_unique_under_concurrency(fake: FakeTelegram) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def user(user_id: int) -> None:
        for n in range(25):
            update_id = fake.send_text(f"msg {n}", user_id=user_id)
            with lock:
                ids.append(update_id)

    threads = [threading.Thread(target=user, args=(100 + k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == list(range(1, 101))
    updates = ptb(fake, lambda bot: bot.get_updates())
    assert [u.update_id for u in updates] == list(range(1, 101))
    for user_id in range(100, 104):  # message ids rise per chat
        assert [u.message.message_id for u in updates if u.message.chat.id == user_id] == list(
            range(1, 26)
        )


# ---------------------------------------------------------------------------- test helpers


def test_wait_helpers_fail_with_a_dump(fake: FakeTelegram) -> None:
    fake.allow_chat(USER)
    ptb(fake, lambda bot: bot.send_message(USER, "first"))
    with pytest.raises(AssertionError) as missing:
        fake.wait_message(USER, "second", timeout=0.2)
    assert "waiting for a message to chat 42 containing 'second'" in str(missing.value)
    assert "#1 sendMessage -> 200" in str(missing.value)  # #0 was getMe
    with pytest.raises(AssertionError, match="unexpected call: #1 sendMessage"):
        fake.no_call("sendMessage", chat_id=USER, since=0, within_s=0.1)
    fake.no_call("sendMessage", chat_id=USER, within_s=0.1)  # nothing new
    fake.no_call("sendMessage", chat_id=OTHER_USER, since=0, within_s=0.1)
    with pytest.raises(AssertionError, match="timed out"):
        fake.wait_answer("nope", timeout=0.1)
    with pytest.raises(AssertionError, match="no message 7 from the bot"):
        fake.press(7, "yes", user_id=USER)


def test_stop_answers_a_pending_long_poll_at_once() -> None:
    fake = FakeTelegram(TOKEN).start()
    answers: list[httpx.Response] = []
    poller = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{fake.base_url}{TOKEN}/getUpdates", data={"timeout": "30"}, timeout=40)
        )
    )
    poller.start()
    fake.wait_call("getUpdates", predicate=lambda c: c.status == 0)
    started = time.monotonic()
    fake.stop()
    poller.join(5)
    assert time.monotonic() - started < 3.0
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"ok": True, "result": []})]
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{fake.base_url}{TOKEN}/getMe")


# ---------------------------------------------------------------------------- Application


@contextlib.contextmanager
def running(app: Application[Any, Any, Any, Any, Any, Any]) -> Iterator[list[BaseException]]:
    """Run ``app`` polling on its own loop thread (as the bot under test runs); yields the
    errors its handlers raise."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ptb-app", daemon=True)
    thread.start()
    errors: list[BaseException] = []

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_error_handler(on_error)

    async def up() -> None:
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)

    async def down() -> None:
        assert app.updater is not None
        await app.updater.stop()
        await app.stop()
        await app.shutdown()

    asyncio.run_coroutine_threadsafe(up(), loop).result(15)
    try:
        yield errors
    finally:
        asyncio.run_coroutine_threadsafe(down(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_a_real_application_against_the_fake(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_html(
            "<b>Welcome</b>, confirm?",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Confirm", callback_data="confirm")]]
            ),
        )

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Done")
        await query.edit_message_text(f"Confirmed: {query.data}")

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button))

    with running(app) as errors:
        fake.send_text("/start", user_id=USER)
        menu = fake.wait_message(USER, "Welcome")
        assert menu.text == "Welcome, confirm?"
        assert menu.raw_text == "<b>Welcome</b>, confirm?"
        assert menu.parse_mode == "HTML"
        query_id = fake.press(menu.message_id, menu.button("Confirm"), user_id=USER)
        assert fake.wait_answer(query_id) == {"callback_query_id": query_id, "text": "Done"}
        edited = fake.wait_edit(USER, menu.message_id, contains="Confirmed")
        assert (edited.text, edited.edit_count, edited.reply_markup) == (
            "Confirmed: confirm",
            1,
            None,
        )

        # In a group, a command addressed to another bot is not ours; updates are handled in
        # order, so once the second reply is there the first was handled (and ignored).
        mark = fake.mark()
        fake.send_text("/start@other_bot", user_id=USER, chat_id=GROUP)
        fake.send_text("/start@mt5gate_test_bot", user_id=USER, chat_id=GROUP)
        fake.wait_message(GROUP, "Welcome", since=mark)
        assert [c.method for c in fake.calls_to(GROUP, since=mark)] == ["sendMessage"]
        assert errors == []

    assert fake.pending_updates() == []  # the updater confirmed everything when it stopped
    polls = [c for c in fake.calls if c.method == "getUpdates"]
    # The poll the updater cancelled when stopping is seen as abandoned (499), not superseded
    # (409) by the updater's last getUpdates, which confirms what it handled.
    assert {c.status for c in polls[:-1]} <= {200, 499}, [str(c) for c in polls]
    assert polls[-1].status == 200
    assert polls[-1].params["timeout"] == 0
