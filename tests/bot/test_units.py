"""The bot's pure parts, without Telegram: roles and the allow-list, the command parsers, the
HTML text helpers, the confirmation state machine, the alert gate and the alert wording, the
state file and the views. Clocks are injected fakes, so nothing here sleeps."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mt5gate.bot.access import AccessList, Refusals
from mt5gate.bot.actions import OrderAction
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
    OrderArgs,
    UsageError,
    parse_close,
    parse_order,
    parse_switch,
    parse_symbols,
    spec,
)
from mt5gate.bot.confirm import Confirmation, Confirmations, ConfirmState, Press, Verdict
from mt5gate.bot.settings import AlertPolicy, BotMember, BotSettings, Role
from mt5gate.bot.state import BotState, ChatState
from mt5gate.bot.text import (
    MAX_MESSAGE,
    error_text,
    esc,
    lots,
    money,
    price,
    table,
    truncate,
)
from mt5gate.bot.views import Digits, health_view, help_view, positions_view, prices_view
from mt5gate.circuit_breaker import BreakerState, BreakerTransition
from mt5gate.constants import DealEntry, DealReason, DealType, PositionType
from mt5gate.errors import (
    RECONNECTING_HINT,
    MT5ConnectionError,
    MT5StateError,
    MT5TradeRejected,
    error_from_trade_result,
)
from mt5gate.health import Check, HealthStatus, Status
from mt5gate.models import Deal, Position, Price, Side


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------------------------------------
# Roles and the allow-list


def test_roles_rank_viewer_trader_admin() -> None:
    assert [r.rank for r in (Role.VIEWER, Role.TRADER, Role.ADMIN)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Role.VIEWER}),
        (Role.TRADER, {Role.VIEWER, Role.TRADER}),
        (Role.ADMIN, {Role.VIEWER, Role.TRADER, Role.ADMIN}),
    ],
)
def test_a_role_allows_itself_and_the_roles_below(role: Role, allowed: set[Role]) -> None:
    assert {needed for needed in Role if role.allows(needed)} == allowed


def access(users: dict[int, Role], chats: dict[int, Role]) -> AccessList:
    settings = BotSettings(
        users=tuple(BotMember(id=i, role=r) for i, r in users.items()),
        chats=tuple(BotMember(id=i, role=r) for i, r in chats.items()),
    )
    return AccessList.of(settings)


def test_the_role_is_the_higher_of_the_user_and_the_chat_entry() -> None:
    allowed = access({1: Role.TRADER, 2: Role.VIEWER}, {-10: Role.VIEWER, -20: Role.ADMIN})
    assert allowed.role(1, 1) is Role.TRADER  # own entry, private chat
    assert allowed.role(1, -10) is Role.TRADER  # own entry beats the chat's lower one
    assert allowed.role(2, -20) is Role.ADMIN  # the chat's entry beats the user's lower one
    assert allowed.role(99, -10) is Role.VIEWER  # a chat entry alone
    assert allowed.role(None, -10) is Role.VIEWER
    assert allowed.role(1, None) is Role.TRADER
    assert allowed.role(99, 99) is None  # a stranger
    assert allowed.role(99, -30) is None
    assert allowed.role(None, None) is None
    assert not allowed.empty


def test_an_empty_allow_list() -> None:
    nobody = AccessList.of(BotSettings())
    assert nobody.empty
    assert nobody.role(1, 1) is None
    assert not access({1: Role.VIEWER}, {}).empty
    assert not access({}, {-1: Role.VIEWER}).empty


def test_a_stranger_is_refused_once() -> None:
    refusals = Refusals()
    assert refusals.first_time(7)
    assert not refusals.first_time(7)
    assert not refusals.first_time(7)
    assert refusals.first_time(8)  # each stranger once


def test_refusals_are_bounded_and_forget_the_oldest() -> None:
    refusals = Refusals(capacity=2)
    assert refusals.first_time(1)
    assert refusals.first_time(2)
    assert refusals.first_time(3)  # past capacity: 1 is forgotten
    assert not refusals.first_time(3)
    assert not refusals.first_time(2)
    assert refusals.first_time(1)  # forgotten, so refused once more
    assert len(refusals._seen) == 2


def test_a_repeat_refusal_counts_as_recent() -> None:
    refusals = Refusals(capacity=2)
    refusals.first_time(1)
    refusals.first_time(2)
    assert not refusals.first_time(1)  # 1 is now the most recent
    refusals.first_time(3)  # so 2 is forgotten, not 1
    assert not refusals.first_time(1)
    assert refusals.first_time(2)


# ---------------------------------------------------------------------------------------------
# Parsers


def usage(parse: Callable[..., object], *args: Any) -> str:
    with pytest.raises(UsageError) as caught:
        parse(*args)
    return str(caught.value)


def test_symbols_are_upper_cased_when_all_lower_case_and_kept_otherwise() -> None:
    assert parse_symbols(["eurusd"]) == ["EURUSD"]
    assert parse_symbols(["EURUSDm", "gbpusd", "US500.cash", "xauusd#"]) == [
        "EURUSDm", "GBPUSD", "US500.cash", "XAUUSD#",
    ]  # fmt: skip
    assert parse_symbols(["eurusd", "EURUSD", "gbpusd"]) == ["EURUSD", "GBPUSD"]  # no repeats
    assert parse_symbols(["btc-usd", "de40_x", "1abc+"]) == ["BTC-USD", "DE40_X", "1ABC+"]


def test_symbol_counts() -> None:
    assert usage(parse_symbols, []) == "name at least one symbol"
    assert parse_symbols([], at_least=0) == []
    assert len(parse_symbols([f"S{i}" for i in range(10)])) == 10
    message = usage(parse_symbols, [f"S{i}" for i in range(11)])
    assert message == "at most 10 symbols at once, got 11"


@pytest.mark.parametrize("word", ["EUR/USD", "EUR USD", "<b>", "EURUSD;", "x" * 33, "", "€UR"])
def test_a_symbol_with_bad_characters_is_refused(word: str) -> None:
    message = usage(parse_symbols, ["EURUSD", word])
    assert message == f"{word!r} is not a symbol name (letters, digits and . _ # + -)"


def test_a_symbol_with_a_trailing_newline_is_refused() -> None:
    # The rule is "letters, digits and . _ # + -"; a newline is none of those.
    assert "is not a symbol name" in usage(parse_symbols, ["EURUSD\n"])


def test_an_order() -> None:
    assert parse_order(Side.BUY, ["eurusd", "0.1"]) == OrderArgs(Side.BUY, "EURUSD", 0.1)
    assert parse_order(Side.SELL, ["GBPUSD", "2"]) == OrderArgs(Side.SELL, "GBPUSD", 2.0)


def test_an_order_with_stops_in_any_order() -> None:
    expected = OrderArgs(Side.BUY, "EURUSD", 0.1, sl=1.07, tp=1.09)
    assert parse_order(Side.BUY, ["EURUSD", "0.1", "sl=1.07", "tp=1.09"]) == expected
    assert parse_order(Side.BUY, ["EURUSD", "0.1", "tp=1.09", "sl=1.07"]) == expected
    assert parse_order(Side.BUY, ["EURUSD", "0.1", "SL=1,07", "TP=1.09"]) == expected
    only_tp = parse_order(Side.SELL, ["EURUSD", "0.1", "tp=1.05"])
    assert (only_tp.sl, only_tp.tp) == (None, 1.05)


def test_a_decimal_comma_is_a_decimal_point() -> None:
    assert parse_order(Side.BUY, ["EURUSD", "0,1"]).volume == 0.1
    assert parse_close(["5", "0,25"]) == CloseArgs(5, 0.25)


def test_an_order_needs_a_symbol_and_a_volume() -> None:
    assert usage(parse_order, Side.BUY, []) == "a symbol and a volume are needed"
    assert usage(parse_order, Side.BUY, ["EURUSD"]) == "a symbol and a volume are needed"


def test_an_order_volume_must_be_a_number() -> None:
    assert usage(parse_order, Side.BUY, ["EURUSD", "lots"]) == "volume must be a number, got 'lots'"
    assert usage(parse_order, Side.BUY, ["EURUSD", "1.0.0"]) == (
        "volume must be a number, got '1.0.0'"
    )


@pytest.mark.parametrize("word", ["-0.1", "0", "0.0", "-0", "nan", "NaN", "inf", "-inf", "1e999"])
def test_an_order_volume_must_be_positive_and_finite(word: str) -> None:
    message = usage(parse_order, Side.BUY, ["EURUSD", word])
    assert message == f"volume must be a positive number, got {word!r}"


def test_stops_must_be_positive_numbers() -> None:
    assert usage(parse_order, Side.BUY, ["EURUSD", "0.1", "sl=x"]) == (
        "sl must be a number, got 'x'"
    )
    assert usage(parse_order, Side.BUY, ["EURUSD", "0.1", "tp=-1"]) == (
        "tp must be a positive number, got '-1'"
    )
    assert usage(parse_order, Side.BUY, ["EURUSD", "0.1", "sl="]) == "sl must be a number, got ''"


@pytest.mark.parametrize("word", ["sl", "ts=1.1", "1.07", "stop=1.1", "=1.1"])
def test_an_unknown_order_word_is_refused(word: str) -> None:
    message = usage(parse_order, Side.BUY, ["EURUSD", "0.1", word])
    assert message == f"{word!r} is not sl=PRICE or tp=PRICE"


def test_a_stop_given_twice_is_refused() -> None:
    assert usage(parse_order, Side.BUY, ["EURUSD", "0.1", "sl=1", "SL=2"]) == "sl is given twice"
    message = usage(parse_order, Side.BUY, ["EURUSD", "0.1", "tp=1", "sl=1", "tp=2"])
    assert message == "tp is given twice"


def test_an_order_symbol_is_checked_too() -> None:
    assert "is not a symbol name" in usage(parse_order, Side.BUY, ["EUR/USD", "0.1"])


def test_close() -> None:
    assert parse_close(["123"]) == CloseArgs(123)
    assert parse_close(["#123"]) == CloseArgs(123)
    assert parse_close(["#123", "0.05"]) == CloseArgs(123, 0.05)


def test_close_needs_one_or_two_words() -> None:
    expected = "a ticket and, to close part of the position, a volume"
    assert usage(parse_close, []) == expected
    assert usage(parse_close, ["1", "0.1", "0.2"]) == expected


@pytest.mark.parametrize("word", ["abc", "#", "##1", "-5", "0", "#0", "1.5", "12a", "+3"])
def test_a_bad_ticket_is_refused(word: str) -> None:
    assert usage(parse_close, [word]) == f"ticket must be a position's number, got {word!r}"


@pytest.mark.parametrize("word", ["²", "①"])
def test_a_unicode_digit_ticket_is_a_usage_error(word: str) -> None:
    # str.isdigit() accepts these but int() does not: the answer must still be the usage.
    assert usage(parse_close, [word]) == f"ticket must be a position's number, got {word!r}"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("x", "volume must be a number, got 'x'"),
        ("0", "volume must be a positive number, got '0'"),
        ("nan", "volume must be a positive number, got 'nan'"),
    ],
)
def test_a_bad_close_volume_is_refused(word: str, message: str) -> None:
    assert usage(parse_close, ["123", word]) == message


def test_switch() -> None:
    assert parse_switch([]) is None
    assert parse_switch(["on"]) is True
    assert parse_switch(["OFF"]) is False
    assert parse_switch(["On"]) is True
    for words in (["yes"], ["on", "off"], ["1"], ["of"]):
        assert usage(parse_switch, words) == "say on or off"


def test_the_command_table() -> None:
    names = [command.name for command in COMMANDS]
    assert len(names) == len(set(names))
    assert {"price", "buy", "sell", "close", "halt", "resume", "help"} <= set(names)
    for command in COMMANDS:
        assert isinstance(command.role, Role)
        assert spec(command.name) is command
        assert command.usage.startswith(f"/{command.name}")
        assert command.usage == f"/{command.name}" or command.usage[len(command.name) + 1] == " "
        assert command.summary
        assert re.fullmatch(r"[a-z]{1,32}", command.name)  # a valid Telegram command name
    assert spec("buy").role is Role.TRADER
    assert spec("halt").role is Role.ADMIN
    assert spec("price").role is Role.VIEWER
    with pytest.raises(KeyError):
        spec("nope")


# ---------------------------------------------------------------------------------------------
# Text


def test_esc_escapes_only_what_telegram_html_needs() -> None:
    assert esc("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert esc("\"quoted\" 'it'") == "\"quoted\" 'it'"
    assert esc(12) == "12"


def test_price_uses_the_symbols_digits() -> None:
    assert price(1.085234, 5) == "1.08523"
    assert price(151.2, 3) == "151.200"
    assert price(30123.456, 0) == "30123"
    assert price(1.5, -1) == "2"  # negative digits are taken as 0
    assert price(math.nan, 5) == "-"
    assert price(math.inf, 5) == "-"


def test_lots_have_two_decimals_at_least_and_no_noise() -> None:
    assert lots(0.1) == "0.10"
    assert lots(1) == "1.00"
    assert lots(0.015) == "0.015"
    assert lots(100.0) == "100.00"
    assert lots(0.1 + 0.2) == "0.30"  # float noise is gone
    assert lots(2.5) == "2.50"


def test_money_has_two_decimals_and_thousands_separators() -> None:
    assert money(12345.678) == "12,345.68"
    assert money(-1234567.0) == "-1,234,567.00"
    assert money(0) == "0.00"
    assert money(math.nan) == "-"


def test_a_table_aligns_numbers_right_and_text_left() -> None:
    out = table(
        ["SYMBOL", "BID", "SIDE"],
        [["EURUSD", "1.08523", "buy"], ["USDJPY", "151.234", "sell"], ["X", "-", "b"]],
    )
    assert out.startswith("<pre>")
    assert out.endswith("</pre>")
    lines = out.removeprefix("<pre>").removesuffix("</pre>").split("\n")
    assert lines == [
        "SYMBOL     BID SIDE",
        "EURUSD 1.08523 buy",
        "USDJPY 151.234 sell",
        "X            - b",
    ]


def test_a_table_with_negative_and_grouped_numbers() -> None:
    out = table(["P"], [["1,234.50"], ["-5.00"]])
    assert out == "<pre>       P\n1,234.50\n   -5.00</pre>"


def test_a_table_escapes_html_after_aligning() -> None:
    out = table(["NAME", "N"], [["a<b", "1"], ["x&y z", "22"]])
    assert "<b" not in out.replace("<pre>", "")
    lines = out.removeprefix("<pre>").removesuffix("</pre>").split("\n")
    assert lines == ["NAME   N", "a&lt;b    1", "x&amp;y z 22"]
    # As Telegram shows them (entities are one character each), the columns line up.
    shown = [line.replace("&lt;", "<").replace("&amp;", "&") for line in lines]
    assert len({len(line) for line in shown}) == 1


def test_an_empty_table_is_its_headers() -> None:
    assert table(["A", "B"], []) == "<pre>A B</pre>"


def test_a_short_message_is_not_truncated() -> None:
    text = "x" * MAX_MESSAGE
    assert truncate(text) is text


def test_truncate_cuts_at_a_line_and_closes_an_open_pre() -> None:
    rows = [[str(i), "EURUSD", "1.08523"] for i in range(500)]
    text = "<b>Positions</b>\n" + table(["N", "SYMBOL", "BID"], rows)
    assert len(text) > MAX_MESSAGE
    out = truncate(text)
    assert len(out) <= MAX_MESSAGE
    assert out.count("<pre>") == out.count("</pre>") == 1
    assert out.endswith("</pre>\n… (cut: too long for one message)")
    body = out.removesuffix("</pre>\n… (cut: too long for one message)")
    assert body.endswith(" EURUSD 1.08523")  # a whole row, not half of one


def test_truncate_a_long_text_without_pre() -> None:
    out = truncate("line\n" * 2000)
    assert len(out) <= MAX_MESSAGE
    assert "<pre>" not in out
    assert "</pre>" not in out
    assert out.endswith("line\n… (cut: too long for one message)")


def test_truncate_a_text_without_newlines() -> None:
    out = truncate("x" * 10_000)
    assert len(out) <= MAX_MESSAGE
    assert out.endswith("x\n… (cut: too long for one message)")


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_truncate_never_cuts_an_html_entity_in_half(shift: int) -> None:
    # One long escaped line (a long word echoed in an answer): Telegram refuses the whole
    # message when an entity such as "&lt;" is cut to "&l".
    out = truncate("z" * shift + esc("<" * 3000))
    body = out.split("\n")[0]
    assert len(out) <= MAX_MESSAGE
    assert re.search(r"&[a-z]*$", body) is None, body[-8:]


def rejected(comment: str) -> MT5TradeRejected:
    error = error_from_trade_result(10019, comment, None)
    assert isinstance(error, MT5TradeRejected)
    return error


def no_money() -> MT5TradeRejected:
    return rejected("No money")


def test_error_text_of_a_rejected_trade() -> None:
    error = no_money()
    text = error_text(error)
    assert text.startswith("❌ <b>Order rejected</b>\n")
    assert "10019" in text
    assert "“No money”" in text
    assert "The trade server answered 10019 “No money”." in text
    assert f"<i>What to do:</i> {esc(error.hint)}" in text
    assert error.hint
    assert error.hint in text


def test_error_text_of_a_trade_without_a_comment() -> None:
    assert "The trade server answered 10019 “no comment”." in error_text(rejected(""))


def test_error_text_of_a_session_not_ready_names_no_python_call() -> None:
    not_ready = error_text(MT5StateError("the session is connecting"))
    reconnecting = error_text(MT5ConnectionError("lost", hint=RECONNECTING_HINT))
    assert "not connected yet: /health says why" in not_ready
    assert "reconnects by itself" in reconnecting
    assert "await" not in not_ready + reconnecting


def test_error_text_of_a_connection_error() -> None:
    error = MT5ConnectionError("IPC timeout")
    text = error_text(error)
    assert text.split("\n")[0] == "❌ <b>Terminal unavailable</b>"
    assert text.split("\n")[1] == "IPC timeout."  # a sentence
    assert "Is the terminal running" in text
    assert "Wait." in error_text(MT5ConnectionError("Wait."))  # no doubled full stop
    assert "Wait.." not in error_text(MT5ConnectionError("Wait."))


def test_error_text_escapes_everything_from_the_error() -> None:
    texts = [
        error_text(MT5ConnectionError("<script>alert(1)</script> & more", hint="use <b> & <i>")),
        error_text(rejected("<script>x</script>")),
    ]
    for text in texts:
        assert "<script>" not in text
        assert "&lt;script&gt;" in text
        tags = re.findall(r"<[^>]*>", text)
        assert set(tags) <= {"<b>", "</b>", "<i>", "</i>"}
    assert "&amp; more" in texts[0]
    assert "use &lt;b&gt; &amp; &lt;i&gt;" in texts[0]


# ---------------------------------------------------------------------------------------------
# Confirmations


def confirmations(ttl_s: float = 60.0) -> tuple[Confirmations, FakeClock]:
    clock = FakeClock()
    return Confirmations(ttl_s, clock), clock


def order(box: Confirmations, user_id: int = 1) -> Confirmation:
    action = OrderAction(Side.BUY, "EURUSD", 0.1)
    return box.new("demo", 10, user_id, action, "<b>BUY</b> 0.10 EURUSD")


def state(item: Confirmation) -> ConfirmState:
    """``item.state``, read afresh (a plain ``item.state`` check narrows it for mypy)."""
    return item.state


def test_a_confirmation_is_pending_until_confirmed() -> None:
    box, clock = confirmations()
    item = order(box)
    assert item.state is ConfirmState.PENDING
    assert item.expires_at == clock.now + 60
    assert box.get(item.id) is item
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.SEND
    assert state(item) is ConfirmState.SENDING


def test_a_second_confirm_sends_nothing() -> None:
    box, _ = confirmations()
    item = order(box)
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.SEND
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.ALREADY
    assert box.press(item.id, 1, Press.CANCEL) is Verdict.ALREADY
    assert item.state is ConfirmState.SENDING
    item.move(ConfirmState.DONE)
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.ALREADY
    assert state(item) is ConfirmState.DONE


def test_a_cancelled_confirmation_cannot_be_confirmed() -> None:
    box, _ = confirmations()
    item = order(box)
    assert box.press(item.id, 1, Press.CANCEL) is Verdict.CANCELLED
    assert item.state is ConfirmState.CANCELLED
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.ALREADY
    assert item.state is ConfirmState.CANCELLED


def test_only_the_member_who_asked_may_press() -> None:
    box, _ = confirmations()
    item = order(box, user_id=1)
    assert box.press(item.id, 2, Press.CONFIRM) is Verdict.NOT_YOURS
    assert box.press(item.id, 2, Press.CANCEL) is Verdict.NOT_YOURS
    assert item.state is ConfirmState.PENDING
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.SEND


def test_a_press_after_the_deadline_expires_it_without_the_timer() -> None:
    box, clock = confirmations(ttl_s=30)
    item = order(box)
    clock.advance(29.9)
    late = order(box)
    clock.advance(0.1)  # item's deadline exactly
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.EXPIRED
    assert item.state is ConfirmState.EXPIRED
    assert box.press(item.id, 1, Press.CONFIRM) is Verdict.EXPIRED  # and stays so
    assert box.press(item.id, 1, Press.CANCEL) is Verdict.EXPIRED
    clock.advance(1000)
    assert box.press(late.id, 1, Press.CANCEL) is Verdict.EXPIRED  # a cancel too
    assert late.state is ConfirmState.EXPIRED


def test_an_unknown_confirmation() -> None:
    box, _ = confirmations()
    order(box)
    assert box.press("no-such-id", 1, Press.CONFIRM) is Verdict.UNKNOWN
    assert box.get("no-such-id") is None


def test_expire_only_expires_pending_confirmations_past_their_deadline() -> None:
    box, clock = confirmations(ttl_s=10)
    pending, sending, cancelled = order(box), order(box), order(box)
    box.press(sending.id, 1, Press.CONFIRM)
    box.press(cancelled.id, 1, Press.CANCEL)
    clock.advance(9.99)
    assert not box.expire(pending)
    assert pending.state is ConfirmState.PENDING
    clock.advance(0.01)
    assert not box.expire(sending)
    assert not box.expire(cancelled)
    assert (sending.state, cancelled.state) == (ConfirmState.SENDING, ConfirmState.CANCELLED)
    assert box.expire(pending)
    assert state(pending) is ConfirmState.EXPIRED
    assert not box.expire(pending)  # once


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], ConfirmState.DONE),
        ([], ConfirmState.FAILED),
        ([], ConfirmState.PENDING),
        ([ConfirmState.SENDING], ConfirmState.CANCELLED),
        ([ConfirmState.SENDING], ConfirmState.EXPIRED),
        ([ConfirmState.SENDING, ConfirmState.DONE], ConfirmState.FAILED),
        ([ConfirmState.SENDING, ConfirmState.FAILED], ConfirmState.SENDING),
        ([ConfirmState.CANCELLED], ConfirmState.SENDING),
        ([ConfirmState.EXPIRED], ConfirmState.PENDING),
    ],
)
def test_a_move_the_machine_does_not_have_is_refused(
    path: list[ConfirmState], bad: ConfirmState
) -> None:
    box, _ = confirmations()
    item = order(box)
    for state in path:
        item.move(state)
    before = item.state
    with pytest.raises(ValueError, match="no move from"):
        item.move(bad)
    assert item.state is before


def test_the_idempotency_key_is_stable_per_confirmation_and_differs_between_them() -> None:
    box, _ = confirmations()
    first, second = order(box), order(box)
    key = first.idempotency_key
    box.press(first.id, 1, Press.CONFIRM)
    first.move(ConfirmState.DONE)
    assert first.idempotency_key == key
    assert key.endswith(first.id)
    assert second.idempotency_key != key


def test_confirmation_ids_look_unguessable() -> None:
    box, _ = confirmations()
    ids = [order(box).id for _ in range(1000)]
    assert len(set(ids)) == 1000
    for item_id in ids:
        assert len(item_id) >= 12
        assert re.fullmatch(r"[A-Za-z0-9_-]+", item_id)
    assert len(set(ids[0])) > 4  # not a counter


def test_old_finished_confirmations_are_forgotten() -> None:
    box, _ = confirmations()
    first = order(box)
    box.press(first.id, 1, Press.CANCEL)
    for _ in range(1000):
        order(box)
    assert box.get(first.id) is None
    assert box.press(first.id, 1, Press.CONFIRM) is Verdict.UNKNOWN


# ---------------------------------------------------------------------------------------------
# The alert gate


def gate(**policy: float) -> tuple[AlertGate, FakeClock]:
    clock = FakeClock()
    fields = {"per_minute": 60, "burst": 3, "dedupe_s": 300.0, **policy}
    return AlertGate(AlertPolicy.model_validate(fields), clock), clock


def alert(n: int) -> Alert:
    return Alert(f"key-{n}", f"alert {n}")


def test_a_burst_passes_then_alerts_are_held_back() -> None:
    alerts, clock = gate(per_minute=60, burst=3)
    assert [alerts.admit(1, alert(n)) for n in range(3)] == ["alert 0", "alert 1", "alert 2"]
    assert alerts.admit(1, alert(3)) is None
    clock.advance(0.5)
    assert alerts.admit(1, alert(4)) is None  # half a token is not one
    clock.advance(0.5)  # per_minute 60: one token a second
    text = alerts.admit(1, alert(5))
    assert text is not None
    assert text.startswith("alert 5\n")
    assert "(2 more alerts held back by the rate limit)" in text
    assert alerts.admit(1, alert(6)) is None
    clock.advance(1)
    text = alerts.admit(1, alert(7))
    assert text == "alert 7\n<i>(1 more alert held back by the rate limit)</i>"
    clock.advance(1)
    assert alerts.admit(1, alert(8)) == "alert 8"  # the count starts again


def test_the_bucket_refills_up_to_the_burst_only() -> None:
    alerts, clock = gate(per_minute=60, burst=2)
    clock.advance(3600)
    assert alerts.admit(1, alert(0)) == "alert 0"
    assert alerts.admit(1, alert(1)) == "alert 1"
    assert alerts.admit(1, alert(2)) is None


def test_the_same_alert_within_the_dedupe_window_is_dropped() -> None:
    alerts, clock = gate(dedupe_s=300, burst=5)
    same = Alert("breaker:demo:open", "opened")
    assert alerts.admit(1, same) == "opened"
    clock.advance(299)
    assert alerts.admit(1, same) is None
    assert alerts.admit(1, Alert("breaker:demo:open", "other text, same key")) is None
    clock.advance(1)  # 300 s after it was sent
    assert alerts.admit(1, same) == "opened"


def test_a_dropped_duplicate_neither_spends_a_token_nor_counts_as_held_back() -> None:
    alerts, _ = gate(burst=2, per_minute=1)
    assert alerts.admit(1, alert(0)) == "alert 0"
    for _ in range(5):
        assert alerts.admit(1, alert(0)) is None
    assert alerts.admit(1, alert(1)) == "alert 1"  # the second token was still there


def test_dedupe_zero_sends_every_repeat() -> None:
    alerts, _ = gate(dedupe_s=0, burst=3)
    assert [alerts.admit(1, alert(0)) for _ in range(3)] == ["alert 0"] * 3


def test_chats_are_independent() -> None:
    alerts, _ = gate(burst=1)
    assert alerts.admit(1, alert(0)) == "alert 0"
    assert alerts.admit(1, alert(1)) is None  # chat 1's bucket is empty
    assert alerts.admit(2, alert(0)) == "alert 0"  # chat 2 has its own bucket and dedupe
    assert alerts.admit(2, alert(1)) is None


def test_forget_drops_a_chats_state() -> None:
    alerts, _ = gate(burst=1)
    assert alerts.admit(1, alert(0)) == "alert 0"
    assert alerts.admit(1, alert(1)) is None
    assert alerts.admit(2, alert(0)) == "alert 0"
    alerts.forget([1, 3])  # 3 was never seen: nothing happens
    assert 1 not in alerts._chats
    assert 2 in alerts._chats
    assert alerts.admit(1, alert(0)) == "alert 0"  # fresh bucket, no dedupe, no held-back count
    assert alerts.admit(2, alert(0)) is None


# ---------------------------------------------------------------------------------------------
# Alert wording


def check(name: str, status: Status, output: str = "") -> Check:
    return Check(name, "terminal", "component", status, output=output)


def reading(*checks: Check) -> HealthStatus:
    return HealthStatus.of(list(checks), 1_700_000_000_000)


GOOD = reading(check("terminal:ping", Status.PASS), check("account:trade", Status.PASS))
SLOW = reading(
    check("terminal:ping", Status.WARN, "ping 400 ms"), check("account:trade", Status.PASS)
)
DOWN = reading(
    check("terminal:ping", Status.FAIL, "no answer <timeout>"),
    check("account:trade", Status.WARN, "AutoTrading off"),
)


def test_a_first_passing_health_reading_is_not_an_alert() -> None:
    assert health_alert("demo", None, GOOD) is None


def test_a_first_failing_health_reading_is_an_alert() -> None:
    found = health_alert("demo", None, SLOW)
    assert found is not None
    assert "unknown → <b>warn</b>" in found.text
    assert "• terminal:ping: ping 400 ms" in found.text


def test_a_health_transition_names_both_statuses_and_the_reasons() -> None:
    worse = health_alert("demo", SLOW, DOWN)
    assert worse is not None
    first, *reasons = worse.text.split("\n")
    assert first == "🛑 <b>demo</b> health warn → <b>fail</b>"
    assert reasons == [
        "• terminal:ping: no answer &lt;timeout&gt;",
        "• account:trade: AutoTrading off",
    ]
    better = health_alert("demo", DOWN, GOOD)
    assert better is not None
    assert better.text == "✅ <b>demo</b> health fail → <b>pass</b>"
    assert better.key != worse.key
    again = health_alert("demo", SLOW, DOWN)
    assert again is not None
    assert again.key == worse.key
    other = health_alert("live", SLOW, DOWN)
    assert other is not None
    assert other.key != worse.key


def test_a_health_alert_lists_five_reasons_at_most() -> None:
    many = reading(*(check(f"c:{i}", Status.WARN, f"bad {i}") for i in range(8)))
    found = health_alert("demo", GOOD, many)
    assert found is not None
    assert found.text.count("\n• ") == 5


def transition(
    old: BreakerState,
    new: BreakerState,
    reason: str = "5 consecutive failures",
    open_for_s: float | None = None,
) -> BreakerTransition:
    return BreakerTransition("demo", old, new, reason, 0.0, open_for_s)


def test_the_breaker_opening_is_an_alert() -> None:
    found = breaker_alert("demo", transition(BreakerState.CLOSED, BreakerState.OPEN,
                                             open_for_s=30.0))  # fmt: skip
    assert found is not None
    assert found.key == "breaker:demo:open"
    assert "circuit breaker <b>opened</b> for 30 s: 5 consecutive failures." in found.text
    assert "refused" in found.text


def test_half_open_is_not_news() -> None:
    assert breaker_alert("demo", transition(BreakerState.OPEN, BreakerState.HALF_OPEN)) is None


def test_the_breaker_closing_again_is_an_alert() -> None:
    found = breaker_alert("demo", transition(BreakerState.HALF_OPEN, BreakerState.CLOSED))
    assert found is not None
    assert found.key == "breaker:demo:closed"
    assert "circuit breaker <b>closed</b>" in found.text
    released = breaker_alert("demo", transition(BreakerState.FORCED_OPEN, BreakerState.CLOSED))
    assert released is not None
    assert released.key == "breaker:demo:closed"


def test_a_forced_open_breaker_is_an_alert_with_its_reason() -> None:
    found = breaker_alert("demo", transition(BreakerState.CLOSED, BreakerState.FORCED_OPEN,
                                             reason="AutoTrading <off>"))  # fmt: skip
    assert found is not None
    assert found.key == "breaker:demo:open"
    assert "<b>opened</b>: AutoTrading &lt;off&gt;." in found.text
    assert " for " not in found.text  # no duration without open_for_s


def test_reopening_from_half_open_is_an_alert_and_open_to_forced_open_is_not() -> None:
    reopened = breaker_alert("demo", transition(BreakerState.HALF_OPEN, BreakerState.OPEN))
    assert reopened is not None
    assert reopened.key == "breaker:demo:open"
    assert breaker_alert("demo", transition(BreakerState.OPEN, BreakerState.FORCED_OPEN)) is None


def deal(
    kind: DealType, entry: DealEntry, reason: DealReason = DealReason.CLIENT, profit: float = 0.0
) -> Deal:
    return Deal(
        ticket=555, order=444, position_id=333, symbol="EURUSD", type=kind, entry=entry,
        reason=reason, volume=0.1, price=1.0852, profit=profit, commission=0.0, swap=0.0,
        fee=0.0, magic=0, comment="", time_msc=1_700_000_000_000,
    )  # fmt: skip


def test_a_fill_is_an_alert() -> None:
    found = deal_alert("demo", deal(DealType.BUY, DealEntry.IN), 5)
    assert found is not None
    assert found.key == "deal:demo:555"
    assert found.text == ("💱 <b>demo</b>: filled BUY 0.10 EURUSD at 1.08520 (position 333)")
    sold = deal_alert("demo", deal(DealType.SELL, DealEntry.IN), 3)
    assert sold is not None
    assert "filled SELL 0.10 EURUSD at 1.085 " in sold.text


@pytest.mark.parametrize(
    ("reason", "title"),
    [
        (DealReason.SL, "Stop loss hit"),
        (DealReason.TP, "Take profit hit"),
        (DealReason.SO, "Stop out"),
        (DealReason.CLIENT, "Closed"),
        (DealReason.EXPERT, "Closed"),
    ],
)
def test_a_close_is_an_alert_naming_why(reason: DealReason, title: str) -> None:
    found = deal_alert("demo", deal(DealType.SELL, DealEntry.OUT, reason, profit=-1234.5), 5)
    assert found is not None
    assert found.text == (
        f"💰 <b>demo</b>: <b>{title}</b>: position 333, 0.10 EURUSD at 1.08520, profit -1,234.50"
    )


@pytest.mark.parametrize("kind", [DealType.BALANCE, DealType.CREDIT, DealType.COMMISSION])
def test_a_non_trade_deal_is_not_an_alert(kind: DealType) -> None:
    assert deal_alert("demo", deal(kind, DealEntry.IN), 5) is None


def test_unresolved_and_resolved_alerts() -> None:
    lost = unresolved_alert("demo", 42)
    assert lost.key == "unresolved:demo:42"
    assert "order #42" in lost.text
    assert "do not resend" in lost.text
    found = resolved_alert("demo", 42, "filled")
    assert found.key == "resolved:demo:42"
    assert found.text == "✅ <b>demo</b>: order #42 resolved: <b>filled</b>."


def test_an_account_name_is_escaped_in_alerts() -> None:
    found = unresolved_alert("a<b", 1)
    assert "<b>a&lt;b</b>" in found.text


# ---------------------------------------------------------------------------------------------
# The state file


def test_the_state_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bot-state.json"
    state = BotState.load(path)
    assert state.chats == {}
    assert not path.exists()  # loading nothing writes nothing
    state.update(10, alerts=True)
    state.update(-20, account="live")
    state.update(30, alerts=True, account="demo")
    state.update(30, alerts=False)  # None leaves the account as it was
    again = BotState.load(path)
    assert again.chats == {
        10: ChatState(True, None), -20: ChatState(False, "live"), 30: ChatState(False, "demo"),
    }  # fmt: skip
    assert again.chat(-20).account == "live"
    assert again.chat(999) == ChatState()  # a chat never seen
    assert 999 not in again.chats  # and asking does not add it
    assert sorted(again.subscribers()) == [10]
    assert json.loads(path.read_text(encoding="utf-8"))["chats"]["10"] == {
        "alerts": True, "account": None,
    }  # fmt: skip


def test_subscribers_are_the_chats_that_want_alerts(tmp_path: Path) -> None:
    state = BotState.load(tmp_path / "s.json")
    assert state.subscribers() == []
    for chat_id in (1, 2, 3):
        state.update(chat_id, alerts=True)
    state.update(2, alerts=False)
    assert sorted(state.subscribers()) == [1, 3]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        "null",
        '{"chats": []}',
        '{"other": {}}',
        '{"chats": {"abc": {"alerts": true}}}',
        '{"chats": {"1": "yes"}}',
        '{"chats": {"1": {}}}',
        '{"chats": {"1": {"alerts": true, "account": 5}}}',
    ],
)
def test_a_corrupt_state_file_is_set_aside(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bot-state.json"
    path.write_text(content, encoding="utf-8")
    state = BotState.load(path)
    assert state.chats == {}
    assert not path.exists()
    assert (tmp_path / "bot-state.json.bad").read_text(encoding="utf-8") == content
    state.update(1, alerts=True)  # and it works afresh
    assert BotState.load(path).subscribers() == [1]


def test_a_non_utf8_state_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "bot-state.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert BotState.load(path).chats == {}
    assert (tmp_path / "bot-state.json.bad").exists()


def test_a_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "bot-state.json"
    state = BotState.load(path)
    state.update(1, alerts=True)
    state.update(2, account="demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot-state.json"]


# ---------------------------------------------------------------------------------------------
# Views


EURUSD = Digits(5, 0.00001)
USDJPY = Digits(3, 0.001)


def quote(symbol: str, bid: float, ask: float, time_msc: int = 1_700_000_000_000) -> Price:
    return Price(symbol, bid, ask, 0.0, 0, time_msc, 0)


def test_prices_view() -> None:
    text = prices_view(
        "<b>Prices</b>",
        [(quote("EURUSD", 1.08523, 1.08535), EURUSD),
         (quote("USDJPY", 151.2, 151.214, 1_700_000_060_000), USDJPY)],
        ["NOPE", "X<Y"],
    )  # fmt: skip
    lines = text.split("\n")
    assert lines[0] == "<b>Prices</b>"
    assert lines[1] == "<pre>SYMBOL     BID     ASK SPREAD"
    assert lines[2] == "EURUSD 1.08523 1.08535     12"
    assert lines[3] == "USDJPY 151.200 151.214     14</pre>"
    assert lines[4] == "server time 2023-11-14 22:14:20"  # the newest tick
    assert lines[5] == "No such symbol: NOPE, X&lt;Y"


def test_prices_view_with_only_missing_symbols() -> None:
    assert prices_view("P", [], ["ABC"]) == "P\nNo such symbol: ABC"


def position(ticket: int, kind: PositionType, profit: float, symbol: str = "EURUSD") -> Position:
    return Position(ticket, symbol, kind, 0.1, 1.08, 1.09, 0.0, 0.0, profit, 0.0, 0, "", ticket,
                    0, 0)  # fmt: skip


def test_positions_view_totals_the_profit() -> None:
    text = positions_view(
        "<b>Positions</b>",
        [position(1, PositionType.BUY, 1234.5), position(2, PositionType.SELL, -34.25),
         position(3, PositionType.BUY, 0.0, "USDJPY")],
        {"EURUSD": EURUSD, "USDJPY": USDJPY},
        "USD",
    )  # fmt: skip
    assert text.endswith("\nTotal profit <b>1,200.25</b> USD")
    assert "1 EURUSD buy  0.10 1.08000 1.09000 1,234.50" in text
    assert "2 EURUSD sell 0.10 1.08000 1.09000   -34.25" in text
    assert "3 USDJPY buy  0.10   1.080   1.090     0.00" in text


def test_positions_view_with_none() -> None:
    assert positions_view("H", [], {}, "USD") == "H\nNo open positions."


def test_help_follows_the_role() -> None:
    viewer = help_view(Role.VIEWER, "demo", ["demo"], simulated=False)
    assert "you are <b>viewer</b>" in viewer
    assert "/price" in viewer
    assert "/health" in viewer
    assert "/buy" not in viewer
    assert "/sell" not in viewer
    assert "/close" not in viewer
    assert "/halt" not in viewer
    assert "/resume" not in viewer
    assert "SIMULATED" not in viewer
    assert "Accounts:" not in viewer
    trader = help_view(Role.TRADER, "demo", ["demo"], simulated=False)
    assert "/buy" in trader
    assert "/close" in trader
    assert "/halt" not in trader
    admin = help_view(Role.ADMIN, "demo", ["demo", "live"], simulated=True)
    assert "/buy" in admin
    assert "/halt" in admin
    assert "/resume" in admin
    assert "SIMULATED" in admin
    assert "Accounts: demo, live" in admin
    for command in COMMANDS:
        assert ("/" + command.name in viewer) == (command.role is Role.VIEWER)


def test_health_view_without_a_reading() -> None:
    assert health_view("H", None, "connecting") == (
        "H\nNo health reading yet (session connecting)."
    )


def test_health_view_lists_what_does_not_pass() -> None:
    text = health_view("H", DOWN, "ready")
    assert "🛑 <b>FAIL</b> · session ready" in text
    assert "<code>terminal:ping</code>: no answer &lt;timeout&gt;" in text
    assert "<code>account:trade</code>: AutoTrading off" in text
    assert text.endswith("0 of 2 checks pass.")
    assert health_view("H", GOOD, "ready").endswith("✅ <b>PASS</b> · session ready\n"
                                                    "2 of 2 checks pass.")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Fixes from the first review


def test_switching_the_breaker_off_or_on_is_not_an_opening_or_a_recovery() -> None:
    assert breaker_alert("demo", transition(BreakerState.CLOSED, BreakerState.DISABLED)) is None
    assert breaker_alert("demo", transition(BreakerState.DISABLED, BreakerState.CLOSED)) is None
    forced = breaker_alert("demo", transition(BreakerState.FORCED_OPEN, BreakerState.CLOSED))
    assert forced is not None
    assert forced.key == "breaker:demo:closed"


def test_repeats_of_a_held_back_alert_count_once() -> None:
    box, clock = gate(burst=1, per_minute=1)
    assert box.admit(1, alert(1)) is not None
    for _ in range(5):
        assert box.admit(1, alert(2)) is None  # the same alert, held back again and again
    assert box.admit(1, alert(3)) is None
    clock.advance(60)
    text = box.admit(1, alert(4))
    assert text is not None
    assert "2 more alerts held back" in text


def test_a_stuck_confirmation_does_not_stop_old_ones_being_forgotten() -> None:
    box, _ = confirmations()
    action = OrderAction(Side.BUY, "EURUSD", 0.1)
    stuck = box.new("demo", 1, 1, action, "x")  # stays PENDING
    for _ in range(1500):
        done = box.new("demo", 1, 1, action, "x")
        box.press(done.id, 1, Press.CANCEL)
    assert len(box._items) == 1000
    assert box.get(stuck.id) is stuck


def test_a_state_file_with_a_string_for_alerts_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "bot-state.json"
    path.write_text('{"chats": {"5": {"alerts": "false", "account": null}}}')
    assert BotState.load(path).subscribers() == []
    assert (tmp_path / "bot-state.json.bad").exists()
