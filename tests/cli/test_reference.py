"""The error reference (``mt5gate.cli.reference``, ``docs/errors.md``): complete, consistent with
what mt5gate raises and does for each code, and committed up to date."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import mt5gate.errors as errors_module
from mt5gate.circuit_breaker import BreakerPolicy
from mt5gate.cli import reference
from mt5gate.cli.reference import (
    SUCCESS_CLASS,
    ErrorEntry,
    Kind,
    error_reference,
    find,
    main,
    render_markdown,
    render_text,
)
from mt5gate.constants import MT5_CONSTANTS, ResultCode, TradeRetcode
from mt5gate.errors import (
    _INIT_HINTS,
    _LAST_ERROR_HINTS,
    _RETCODE_HINTS,
    SEND_FAILURE_OUTCOMES,
    TRADE_OUTCOMES,
    MT5Error,
    MT5OrderOutcomeUnknown,
    Outcome,
    error_from_check_result,
    error_from_last_error,
    error_from_trade_result,
)
from mt5gate.records import OrderSendResult
from mt5gate.session import MT5SessionManager, ReconcilePolicy, ReconnectPolicy
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.broker.retcodes import _COMMENTS
from mt5gate.sim.errors import RESULT_TEXTS
from mt5gate.sim.terminal import SimTerminal

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
ENTRIES = error_reference()
BY_KEY = {(e.kind, e.code): e for e in ENTRIES}
RETCODES = [e for e in ENTRIES if e.kind == "retcode"]
LAST_ERRORS = [e for e in ENTRIES if e.kind == "last_error"]


def entry(code: int, kind: Kind = "retcode") -> ErrorEntry:
    return BY_KEY[(kind, code)]


def last_error(code: int) -> ErrorEntry:
    return entry(code, "last_error")


def primary_class(error_class: str) -> str:
    """The class raised by any call: the text before the parenthesised variants."""
    return error_class.split(" (", maxsplit=1)[0]


def class_name(error: MT5Error | None) -> str:
    return "—" if error is None else type(error).__name__


# ------------------------------------------------------------------------------ completeness


def test_every_code_appears_exactly_once() -> None:
    counts = Counter((e.kind, e.code) for e in ENTRIES)
    expected = {("retcode", int(c)) for c in TradeRetcode} | {
        ("last_error", int(c)) for c in ResultCode
    }
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert len(RETCODES) == len(TradeRetcode)
    assert len(LAST_ERRORS) == len(ResultCode)


def test_entries_are_in_page_order() -> None:
    kinds = [e.kind for e in ENTRIES]
    assert kinds == ["retcode"] * len(RETCODES) + ["last_error"] * len(LAST_ERRORS)
    assert [e.code for e in RETCODES] == sorted(int(c) for c in TradeRetcode)
    assert [e.code for e in LAST_ERRORS][:4] == [1, -1, -2, -3]
    assert [abs(e.code) for e in LAST_ERRORS] == sorted(abs(int(c)) for c in ResultCode)


def test_names_are_the_mt5_constant_names() -> None:
    for e in ENTRIES:
        assert MT5_CONSTANTS[e.name] == e.code, e.name
    assert entry(10019).name == "TRADE_RETCODE_NO_MONEY"
    assert last_error(-6).name == "RES_E_AUTH_FAILED"


def test_every_entry_is_filled_in() -> None:
    for e in ENTRIES:
        assert all((e.meaning, e.error_class, e.mt5gate_does, e.you_should)), e
        assert not e.meaning.startswith("Retcode "), e  # the simulator's fallback text
        assert e.outcome in {o.value for o in Outcome}, e


# ------------------------------------------------------------------------------ meanings


def test_retcode_meanings_are_the_terminal_comments_else_mql5() -> None:
    extra = reference._MQL5_DESCRIPTIONS
    assert not set(extra) & set(_COMMENTS)  # nothing said twice
    assert set(extra) | set(_COMMENTS) == {int(c) for c in TradeRetcode}
    for e in RETCODES:
        assert e.meaning == _COMMENTS.get(e.code, extra.get(e.code)), e.code


def test_last_error_meanings_start_with_the_terminal_text() -> None:
    for e in LAST_ERRORS:
        assert e.meaning.split(" / ")[0] == RESULT_TEXTS[e.code], e.code
    assert "OTP or certificate" in last_error(-7).meaning
    assert 'Invalid "<field>" argument' in last_error(-2).meaning


# ------------------------------------------------------------------------------ classes, outcomes


def test_retcode_classes_are_what_order_send_and_order_check_raise() -> None:
    for e in RETCODES:
        sent = error_from_trade_result(e.code, "comment", {})
        checked = error_from_check_result(e.code, "comment", {})
        if sent is None:
            assert e.error_class == SUCCESS_CLASS, e.code
        else:
            assert primary_class(e.error_class) == class_name(sent), e.code
        if type(checked) is type(sent):
            assert "order_check" not in e.error_class, e.code
        else:
            assert f"order_check: {class_name(checked)}" in e.error_class, e.code


def test_last_error_classes_are_what_each_function_raises() -> None:
    for e in LAST_ERRORS:
        text = RESULT_TEXTS[e.code]
        call = error_from_last_error(e.code, text, function="positions_get")
        send = error_from_last_error(e.code, text, function="order_send")
        init = error_from_last_error(e.code, text, function="initialize")
        assert primary_class(e.error_class) == class_name(call), e.code
        for where, error in (("order_send", send), ("initialize()", init)):
            variant = f"{where}: {class_name(error)}"
            assert (variant in e.error_class) is (type(error) is not type(call)), (e.code, where)


def test_outcomes_are_the_tables() -> None:
    for e in RETCODES:
        assert e.outcome == TRADE_OUTCOMES[e.code].value, e.code
    for e in LAST_ERRORS:
        assert e.outcome == SEND_FAILURE_OUTCOMES[e.code].value, e.code


def test_the_handling_follows_the_outcome() -> None:
    expected = {
        Outcome.EXECUTED: "Returns the OrderResult",
        Outcome.REJECTED: "keeps this final answer",
        Outcome.RETRYABLE: "re-arms the idempotency key",
        Outcome.GATE: "re-arms the idempotency key",
        Outcome.UNKNOWN: "Journals UNKNOWN and reconciles",
    }
    for e in RETCODES:
        assert expected[Outcome(e.outcome)] in e.mt5gate_does, e.code
    for e in LAST_ERRORS:  # order_send's None: only a retcode uses a key up
        unknown = e.outcome == Outcome.UNKNOWN
        assert ("On order_send: journals UNKNOWN and reconciles" in e.mt5gate_does) is unknown
        assert ("re-arms the idempotency key" in e.mt5gate_does) is not unknown


# ------------------------------------------------------------------------------ spot checks


def test_done_is_a_success() -> None:
    done = entry(TradeRetcode.DONE)
    assert done.error_class == SUCCESS_CLASS
    assert done.outcome == "executed"
    assert done.mt5gate_does.startswith("Returns the OrderResult")
    assert error_from_trade_result(10009, "Request executed", {}) is None


def test_no_money_is_a_final_rejection() -> None:
    no_money = entry(TradeRetcode.NO_MONEY)
    assert no_money.error_class == "MT5TradeRejected"
    assert no_money.outcome == "rejected"
    assert "the idempotency key keeps this final answer" in no_money.mt5gate_does
    assert no_money.you_should == _RETCODE_HINTS[TradeRetcode.NO_MONEY]


def test_requote_is_retryable_and_re_arms_the_key() -> None:
    requote = entry(TradeRetcode.REQUOTE)
    assert requote.error_class == "MT5TradeRetryable"
    assert requote.outcome == "retryable"
    assert "re-arms the idempotency key" in requote.mt5gate_does


def test_autotrading_off_is_a_gate() -> None:
    gate = entry(TradeRetcode.CLIENT_DISABLES_AT)
    assert gate.error_class == "MT5TradingDisabledError"
    assert gate.outcome == "gate"
    assert gate.you_should == _RETCODE_HINTS[TradeRetcode.CLIENT_DISABLES_AT]


@pytest.mark.parametrize("code", [-10000, -10001, -10002, -10005])
def test_a_lost_reply_is_reconciled(code: int) -> None:
    lost = last_error(code)
    assert lost.outcome == "unknown"
    assert "order_send: MT5OrderOutcomeUnknown" in lost.error_class
    assert "On order_send: journals UNKNOWN and reconciles" in lost.mt5gate_does
    assert "Circuit breaker: counts a failure" in lost.mt5gate_does
    assert "On order_send: Do not resend" in lost.you_should


def test_no_ipc_connection_was_never_sent_and_reconnects_at_once() -> None:
    no_ipc = last_error(ResultCode.E_INTERNAL_FAIL_CONNECT)
    assert no_ipc.outcome == "retryable"
    assert no_ipc.error_class.startswith("MT5ConnectionError")
    assert "the session reconnects at once" in no_ipc.mt5gate_does
    assert "re-arms the idempotency key" in no_ipc.mt5gate_does


def test_transient_ipc_failures_are_retried_for_reads() -> None:
    assert "Reads are tried up to 3 times" in last_error(-10001).mt5gate_does
    assert "Reads are tried" not in last_error(-10005).mt5gate_does  # a hung terminal
    assert "after 3 such failures in a row" in last_error(-10005).mt5gate_does


def test_auth_failed_is_an_auth_error_ignored_by_the_breaker() -> None:
    auth = last_error(ResultCode.E_AUTH_FAILED)
    assert auth.error_class == "MT5AuthError"
    assert auth.outcome == "rejected"
    assert "Circuit breaker: ignores it" in auth.mt5gate_does
    assert "Check login, password and server" in auth.you_should


def test_hints_come_from_the_tables() -> None:
    for code, hint in _RETCODE_HINTS.items():
        assert entry(code).you_should == hint
    for code, hint in _LAST_ERROR_HINTS.items():
        assert last_error(code).you_should.startswith(hint)
    for code, hint in _INIT_HINTS.items():
        assert hint in last_error(code).you_should
    default = errors_module.MT5TradeRejected.default_hint
    assert entry(TradeRetcode.REJECT).you_should == default


# ------------------------------------------------------------------------------ the live breaker


async def _breaker_state_after_order_send(fault: str) -> str:
    """The breaker after one order_send, on a session tripping at the first failure."""
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    session = MT5SessionManager(
        terminal=sim, login=5001, password="sim-pass-5001", server="MetaQuotes-Demo",
        breaker=BreakerPolicy(consecutive_failures=1),
        reconnect=ReconnectPolicy(enabled=False),
        reconcile=ReconcilePolicy(sweep_interval_s=None),
    )  # fmt: skip
    async with session:
        if fault == "retcode":
            answer = (10031, 0, 0, 0.0, 0.0, 0.0, 0.0, "No connection", 0, 0, None)
            sim.order_send = lambda *_: OrderSendResult(answer)  # type: ignore[method-assign]
            await session.call("order_send", {"action": 1, "symbol": "EURUSD"})
        else:
            sim.faults.ipc_error("order_send", ResultCode.E_INTERNAL_FAIL_RECEIVE)
            with pytest.raises(MT5OrderOutcomeUnknown):
                await session.call("order_send", {"action": 1, "symbol": "EURUSD"})
        return str(session.breaker.snapshot().state.name)


def test_the_breaker_column_is_what_a_live_session_does() -> None:
    """A retcode reaches the breaker as an answered call; a lost reply as a failure."""
    assert asyncio.run(_breaker_state_after_order_send("retcode")) == "CLOSED"
    assert "Circuit breaker: counts a success" in entry(TradeRetcode.CONNECTION).mt5gate_does
    assert asyncio.run(_breaker_state_after_order_send("ipc")) == "OPEN"
    assert "Circuit breaker: counts a failure" in last_error(-10002).mt5gate_does


# ------------------------------------------------------------------------------ find


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("10019", [("retcode", 10019)]),
        (" -6 ", [("last_error", -6)]),
        ("1", [("last_error", 1)]),
        ("-1", [("last_error", -1)]),
        ("TRADE_RETCODE_NO_MONEY", [("retcode", 10019)]),
        ("no_money", [("retcode", 10019)]),
        ("No Money", [("retcode", 10019)]),
        ("trade_retcode_done", [("retcode", 10009)]),
        ("done", [("retcode", 10009)]),
        ("auth_failed", [("last_error", -6)]),
        ("E_AUTH_FAILED", [("last_error", -6)]),
        ("res_e_auth_failed", [("last_error", -6)]),
        ("mt5.RES_S_OK", [("last_error", 1)]),
        ("internal-fail-receive", [("last_error", -10002)]),
    ],
)
def test_find(query: str, expected: list[tuple[str, int]]) -> None:
    assert [(e.kind, e.code) for e in find(query)] == expected


@pytest.mark.parametrize("query", ["", "  ", "12345", "NO_SUCH_CODE", "TRADE_RETCODE_", "RES_"])
def test_find_nothing(query: str) -> None:
    assert find(query) == ()


# ------------------------------------------------------------------------------ rendering


def test_render_text() -> None:
    lines = render_text(entry(TradeRetcode.NO_MONEY)).splitlines()
    assert lines[0] == "10019 TRADE_RETCODE_NO_MONEY (trade retcode)"
    assert lines[1].split(maxsplit=1) == ["Meaning:", "No money"]
    assert [line.split(":")[0] for line in lines[1:]] == [
        "Meaning", "Class", "Outcome", "What mt5gate does", "What you should do"
    ]  # fmt: skip
    assert render_text(last_error(-10002)).splitlines()[3].startswith("Outcome (order_send): ")


def _table_rows(page: str, heading: str) -> list[list[str]]:
    section = page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


@pytest.mark.parametrize(
    ("heading", "count"), [("Trade retcodes", len(TradeRetcode)), ("last_error codes", 15)]
)
def test_markdown_tables_are_well_formed(heading: str, count: int) -> None:
    header, rule, *rows = _table_rows(render_markdown(), heading)
    assert header[:4] == ["Code", "Name", "Meaning", "Class"]
    assert header[-2:] == ["What mt5gate does", "What you should do"]
    assert rule == ["---"] * len(header)
    assert len(rows) == count
    for row in rows:
        assert len(row) == len(header), row
        assert all(row), row
        assert not re.search(r"(?<!\\)[<>]", " ".join(row)), row  # no raw HTML


def test_cells_escape_pipes_and_html() -> None:
    odd = ErrorEntry("retcode", 1, "X", "a | b <c>", "K", "", "does\nthis", "do | that")
    page = render_markdown([odd])
    assert "| 1 | `X` | a \\| b \\<c\\> | K | — | does this | do \\| that |" in page
    assert "## last_error codes" in page


def test_the_tree_lists_every_error_class_once() -> None:
    page = render_markdown()
    for name in errors_module.__all__:
        cls = getattr(errors_module, name)
        if isinstance(cls, type) and issubclass(cls, MT5Error):
            assert page.count(f"- `{name}`: ") == 1, name
    assert "  - `MT5TradeRejected`: The trade server refused" in page
    assert all(f"- **{o.value}**: " in page for o in Outcome)


def test_the_tree_leaves_out_subclasses_from_elsewhere() -> None:
    class ElsewhereError(MT5Error):
        """Defined outside mt5gate.errors: importing it must not change the page."""

    assert "ElsewhereError" not in render_markdown()
    assert ElsewhereError in MT5Error.__subclasses__()


def test_short_names_only_drop_known_prefixes() -> None:
    assert reference._aliases("RES_E_FAIL") == {"RES_E_FAIL", "E_FAIL", "FAIL"}
    assert reference._aliases("TRADE_RETCODE_DONE") == {"TRADE_RETCODE_DONE", "DONE"}
    assert reference._aliases("OTHER") == {"OTHER"}


def test_the_page_says_how_it_is_made() -> None:
    page = render_markdown()
    assert page.startswith("# MT5 error reference\n")
    assert "python -m mt5gate.cli.reference --write docs/errors.md" in page
    assert render_markdown(list(reversed(ENTRIES))) == page  # order does not depend on input


# ------------------------------------------------------------------------------ the command


def test_the_committed_page_is_up_to_date() -> None:
    assert DOCS_PAGE.read_text(encoding="utf-8") == render_markdown(), (
        "docs/errors.md is stale: run .venv/bin/python -m mt5gate.cli.reference "
        "--write docs/errors.md"
    )
    assert main(["--check", str(DOCS_PAGE)]) == 0


def test_check_fails_on_a_changed_copy(tmp_path: Path, capsys: Any) -> None:
    copy = tmp_path / "errors.md"
    copy.write_text(render_markdown().replace("No money", "Plenty of money"), encoding="utf-8")
    assert main(["--check", str(copy)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is out of date" in err
    assert "--write" in err


def test_check_fails_on_a_missing_file(tmp_path: Path, capsys: Any) -> None:
    assert main(["--check", str(tmp_path / "absent.md")]) == 1
    assert "cannot be read" in capsys.readouterr().err


def test_write_then_check(tmp_path: Path) -> None:
    target = tmp_path / "errors.md"
    assert main(["--write", str(target)]) == 0
    assert target.read_bytes() == render_markdown().encode("utf-8")
    assert main(["--check", str(target)]) == 0


def test_prints_the_page_by_default(capsys: Any) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render_markdown()


def test_write_and_check_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--write", str(tmp_path / "a"), "--check", str(tmp_path / "b")])
    assert exited.value.code == 2
