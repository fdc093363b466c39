"""The error reference: every MT5 code, what mt5gate raises for it, does about it, and what to do.

Nothing here decides anything. Each entry is read from the tables and functions that decide:
the class is what :func:`~mt5gate.errors.error_from_trade_result` /
:func:`~mt5gate.errors.error_from_last_error` actually raise, the outcome is
:data:`~mt5gate.errors.TRADE_OUTCOMES` or what ``order_send`` returning ``None`` means
(:func:`~mt5gate.errors.order_send_outcome`), the breaker's part is
:func:`~mt5gate.errors.breaker_verdict`, and "what you should do" is the raised error's hint
(``_RETCODE_HINTS``, ``_LAST_ERROR_HINTS``, ``_INIT_HINTS``, else the class's default). Only the
wording of what each *kind* of result leads to lives here, in small rule tables keyed by class
and outcome, so the page stays true when a code moves from one class or outcome to another; and
the few texts no table in the code holds (meanings of codes the simulator has no text for).

``python -m mt5gate.cli.reference`` prints ``docs/errors.md``; ``--write PATH`` writes it and
``--check PATH`` exits 1 when the committed page is stale (a test runs the check too).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from mt5gate.constants import ResultCode, TradeRetcode
from mt5gate.errors import (
    MT5ConnectionError,
    MT5Error,
    MT5OrderOutcomeUnknown,
    MT5TradeRejected,
    Outcome,
    breaker_verdict,
    error_from_check_result,
    error_from_last_error,
    error_from_trade_result,
    order_send_outcome,
    trade_outcome,
)
from mt5gate.session.connection import _NO_IPC
from mt5gate.session.manager import _transient
from mt5gate.session.policies import ReadRetryPolicy, ReconnectPolicy
from mt5gate.sim.broker.retcodes import _COMMENTS
from mt5gate.sim.errors import RESULT_TEXTS

__all__ = [
    "SUCCESS_CLASS",
    "ErrorEntry",
    "Kind",
    "error_reference",
    "find",
    "main",
    "render_markdown",
    "render_text",
]

Kind = Literal["retcode", "last_error"]

#: What the Class column says for a result that raises nothing.
SUCCESS_CLASS: Final = "— (success)"

# ---------------------------------------------------------------------------------------------
# Facts the code does not hold anywhere else
# ---------------------------------------------------------------------------------------------

#: MQL5's descriptions of the retcodes the simulator's comment table (``_COMMENTS``) lacks. Only
#: those: a test fails if one of these shadows a comment, so nothing is said twice.
_MQL5_DESCRIPTIONS: Final[Mapping[int, str]] = MappingProxyType(
    {
        TradeRetcode.ORDER_CHANGED: "Order state changed",
        TradeRetcode.LOCKED: "Request locked for processing",
        TradeRetcode.ONLY_REAL: "Operation is allowed only for live accounts",
        TradeRetcode.CLOSE_ORDER_EXIST: "A close order already exists for the position",
        TradeRetcode.REJECT_CANCEL: (
            "The pending order activation request is rejected, the order is canceled"
        ),
    }
)

#: Other texts the terminal reports with a code, beyond the usual one in the simulator's
#: ``RESULT_TEXTS`` (semantics.md §2.5).
_OTHER_TEXTS: Final[Mapping[int, tuple[str, ...]]] = MappingProxyType(
    {
        ResultCode.E_INVALID_PARAMS: ('Invalid "<field>" argument (the module\'s own check)',),
        ResultCode.E_UNSUPPORTED: (
            "Unsupported authorization mode, OTP or certificate password needed",
        ),
        ResultCode.E_INTERNAL_FAIL_INIT: (
            "IPC initialize failed, Process create failed '<path>'",
            "IPC initialize failed, Pipe server didn't answer in 60 sec",
        ),
    }
)

# The functions whose failures mt5gate translates differently (errors.error_from_last_error);
# any other function stands for "every other call".
_ORDER_SEND: Final = "order_send"
_INITIALIZE: Final = "initialize"
_ANY_CALL: Final = "symbol_info"

# ---------------------------------------------------------------------------------------------
# Rule tables: the wording of what each kind of result leads to
# ---------------------------------------------------------------------------------------------

#: What each outcome means for an order (the "how to read it" section).
_OUTCOME_MEANINGS: Final[Mapping[Outcome, str]] = MappingProxyType(
    {
        Outcome.EXECUTED: "the order was accepted or filled (partially too).",
        Outcome.RETRYABLE: (
            "not executed, and safe to re-price and send again with the same client id."
        ),
        Outcome.REJECTED: "not executed, and final: never retried automatically.",
        Outcome.GATE: "not executed: trading is switched off (terminal, server, account, symbol).",
        Outcome.UNKNOWN: (
            "the order may have executed: it is reconciled by its client id before anything else."
        ),
    }
)

_BREAKER: Final[Mapping[str, str]] = MappingProxyType(
    {"success": "counts a success", "failure": "counts a failure", "ignore": "ignores it"}
)

_EXECUTED: Final = (
    "returns the OrderResult, journaled ACKNOWLEDGED; the same idempotency key returns it again "
    "and sends nothing"
)
_RECONCILES: Final = (
    "journals UNKNOWN and reconciles by client id against the terminal's orders, deals and "
    "positions: returns the OrderResult if the order is there; if it is proven absent, raises "
    "MT5TradeRetryable (or sends it once more with resubmit=True); raises MT5OrderOutcomeUnknown "
    "only if neither is shown within ReconcilePolicy.budget_s"
)
_FINAL: Final = (
    "raises {cls}, journaled REJECTED; the idempotency key keeps this final answer: the same key "
    "raises it again and sends nothing"
)
_REARMS: Final = (
    "raises {cls}, journaled REJECTED; re-arms the idempotency key: the order never executed, so "
    "the same key sends it again with the same client id"
)
_SUCCESS_HINT: Final = (
    "Nothing to fix: read the OrderResult (order, deal, volume, price); a partial fill leaves "
    "the rest of the volume unfilled."
)


# ---------------------------------------------------------------------------------------------
# Entries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """One MT5 code as the reference shows it.

    ``error_class`` is the class raised (for a ``last_error`` code: by any call, with the
    functions that raise another class in parentheses, ``"MT5ConnectionError (order_send:
    MT5OrderOutcomeUnknown; ...)"``); ``outcome`` is the :class:`~mt5gate.errors.Outcome`
    value for the order (for a ``last_error`` code: when ``order_send`` returned ``None``).
    """

    kind: Kind
    code: int
    name: str
    meaning: str
    error_class: str
    outcome: str
    mt5gate_does: str
    you_should: str


def error_reference() -> tuple[ErrorEntry, ...]:
    """Every :class:`TradeRetcode` and every :class:`ResultCode`, in page order: retcodes by
    code, then ``last_error`` codes by absolute value (1, -1, -2, ... as MT5's docs list them).
    """
    entries = [_retcode_entry(code) for code in TradeRetcode]
    entries += [_last_error_entry(code) for code in ResultCode]
    return tuple(sorted(entries, key=_page_order))


def _page_order(entry: ErrorEntry) -> tuple[int, int, int]:
    return (0 if entry.kind == "retcode" else 1, abs(entry.code), -entry.code)


def _retcode_entry(code: TradeRetcode) -> ErrorEntry:
    """A trade retcode: what ``order_send`` returning it leads to."""
    meaning = _COMMENTS.get(code) or _MQL5_DESCRIPTIONS[code]
    sent = error_from_trade_result(code, meaning, None)
    checked = error_from_check_result(code, meaning, None)
    variants = {"order_check": checked} if type(checked) is not type(sent) else {}
    return ErrorEntry(
        kind="retcode",
        code=int(code),
        name=f"TRADE_RETCODE_{code.name}",
        meaning=meaning,
        error_class=_class_text(sent, variants),
        outcome=trade_outcome(code).value,
        mt5gate_does=_sentences(_send_handling(sent), _answered_breaker()),
        you_should=_SUCCESS_HINT if sent is None else sent.hint,
    )


def _last_error_entry(code: ResultCode) -> ErrorEntry:
    """A ``last_error`` code: what a call that returned ``None`` / ``False`` with it leads to."""
    text = RESULT_TEXTS[code]
    call, send, init = (
        error_from_last_error(code, text, function=function)
        for function in (_ANY_CALL, _ORDER_SEND, _INITIALIZE)
    )
    variants = {
        name: error
        for name, error in ((_ORDER_SEND, send), (f"{_INITIALIZE}()", init))
        if type(error) is not type(call)
    }
    return ErrorEntry(
        kind="last_error",
        code=int(code),
        name=f"RES_{code.name}",
        meaning=" / ".join((text, *_OTHER_TEXTS.get(code, ()))),
        error_class=_class_text(call, variants),
        outcome=order_send_outcome(send).value,
        mt5gate_does=_sentences(
            _call_handling(call), f"on {_ORDER_SEND}: {_send_handling(send)}", _breakers(call, send)
        ),
        you_should=_last_error_hints(call, send, init),
    )


def _class_text(error: MT5Error | None, variants: Mapping[str, MT5Error | None]) -> str:
    """``"MT5X"``, or ``"MT5X (function: MT5Y; ...)"`` when some functions raise another class."""
    main = SUCCESS_CLASS if error is None else type(error).__name__
    if not variants:
        return main
    others = "; ".join(f"{where}: {_class_name(other)}" for where, other in variants.items())
    return f"{main} ({others})"


def _class_name(error: MT5Error | None) -> str:
    return "—" if error is None else type(error).__name__


def _send_handling(error: MT5Error | None) -> str:
    """What the order pipeline does with an ``order_send`` that ended in ``error`` (the rules of
    ``session.pipeline``: only a business rejection uses the idempotency key up)."""
    if error is None:
        return _EXECUTED
    if isinstance(error, MT5OrderOutcomeUnknown):
        return _RECONCILES
    rule = _FINAL if isinstance(error, MT5TradeRejected) else _REARMS
    return rule.format(cls=type(error).__name__)


def _call_handling(error: MT5Error) -> str:
    """What the session does when a call other than ``order_send`` fails with ``error``: the
    read retry (``manager._transient``) and the reconnection (``calls._report`` counts every
    connection-class error; ``connection`` gives up on the link at once for -10004)."""
    raises = f"raises {type(error).__name__}"
    if _transient(error):
        attempts = ReadRetryPolicy().attempts
        raises = f"reads are tried up to {attempts} times (ReadRetryPolicy), then it {raises}"
    if error.code == _NO_IPC:
        return f"{raises}; the session reconnects at once"
    if isinstance(error, MT5ConnectionError):
        after = ReconnectPolicy().after_failures
        return f"{raises}; after {after} such failures in a row the session reconnects"
    return raises


def _answered_breaker() -> str:
    """The breaker's part for a retcode. The session reports each terminal call to the breaker
    with the exception the call raised (``session.calls``); an ``order_send`` that returned a
    result raised nothing, whatever its retcode, and the pipeline classifies it afterwards."""
    verdict = _BREAKER[breaker_verdict(None)]
    return f"circuit breaker: {verdict} (the terminal answered; the retcode is not judged)"


def _breakers(call: MT5Error, send: MT5Error) -> str:
    """The breaker's verdict, once when ``order_send`` gets the same one as other calls."""
    on_call, on_send = breaker_verdict(call), breaker_verdict(send)
    if on_call == on_send:
        return f"circuit breaker: {_BREAKER[on_call]}"
    return f"circuit breaker: {_BREAKER[on_call]}; on {_ORDER_SEND}, {_BREAKER[on_send]}"


def _last_error_hints(call: MT5Error, send: MT5Error, init: MT5Error) -> str:
    """The hint of a failing call, plus order_send's and initialize()'s when they say more."""
    hints = [call.hint]
    if send.hint not in hints:
        hints.append(f"On {_ORDER_SEND}: {send.hint}")
    if init.hint not in hints and init.hint != type(init).default_hint:
        hints.append(f"On {_INITIALIZE}(): {init.hint}")
    return " ".join(hints)


def _sentences(*parts: str) -> str:
    """``parts`` as sentences: each capitalised and ended with a full stop."""
    return " ".join(f"{part[0].upper()}{part[1:].rstrip('.')}." for part in parts)


# ---------------------------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------------------------

_PREFIX: Final = re.compile(r"^(?:TRADE_RETCODE_|RES_(?P<severity>[ES]_)?)?")


def find(query: str) -> tuple[ErrorEntry, ...]:
    """The entries for ``query``: a code (``"10019"``, ``"-6"``) or a name, case-insensitive,
    with or without its prefix (``"no_money"``, ``"TRADE_RETCODE_NO_MONEY"``,
    ``"mt5.TRADE_RETCODE_NO_MONEY"``, ``"auth_failed"``, ``"E_AUTH_FAILED"``). Empty when
    nothing matches."""
    wanted = query.strip()
    try:
        number = int(wanted)
    except ValueError:
        key = re.sub(r"[\s-]+", "_", wanted.upper()).removeprefix("MT5.")
        return tuple(e for e in error_reference() if key and key in _aliases(e.name))
    return tuple(entry for entry in error_reference() if entry.code == number)


def _aliases(name: str) -> frozenset[str]:
    """``name`` and its short forms: ``RES_E_AUTH_FAILED`` -> ``E_AUTH_FAILED``,
    ``AUTH_FAILED``; ``TRADE_RETCODE_NO_MONEY`` -> ``NO_MONEY``."""
    match = _PREFIX.match(name)
    assert match is not None  # the pattern matches every string (its prefix may be empty)
    bare = name[match.end() :]
    return frozenset({name, bare, (match["severity"] or "") + bare})


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_COLUMNS: Final = ("Code", "Name", "Meaning", "Class", "Outcome", "What mt5gate does",
                   "What you should do")  # fmt: skip

_INTRO: Final = """\
# MT5 error reference

Every MT5 trade retcode and every `last_error()` code: what it means, the exception mt5gate
raises for it, what mt5gate does about it and what you should do.

This page is generated from mt5gate's error tables and functions (`mt5gate.errors`) by
`python -m mt5gate.cli.reference --write docs/errors.md`; do not edit it by hand. A test
(`tests/cli/test_reference.py`) fails when it differs from what the code does.

## How to read it

### Classes

Every error is an `MT5Error`. The tree (`mt5gate.errors`):

"""

_CATCHING: Final = """
What to catch:

- `MT5Error` catches everything mt5gate raises; `code` is the MT5 code, `hint` what to do.
- `MT5OrderOutcomeUnknown` first when you place orders: the order may exist. Never send it
  again under a new idempotency key; mt5gate keeps reconciling it.
- `MT5TradeError` for any other order that came back without success; its `outcome` says
  whether sending again can help (`MT5TradeRetryable`) or not (`MT5TradeRejected`).
- `MT5TradingDisabledError` when trading is switched off: stop sending orders.
- `MT5ConnectionError` (with `MT5InitError`, `MT5TimeoutError`) when the terminal cannot be
  reached: mt5gate reconnects by itself; try again later. `MT5CircuitBreakerOpen` says when.
- `MT5NotFoundError` (an `MT5DataError`) when a symbol, position or pending order does not
  exist: `kind` and `name` say which. An unknown symbol is code -4 on every call that names
  it (the terminal's `copy_*` and `symbol_select` say -1, `symbol_info` -4), with the likest
  names in `suggestions` ("did you mean EURUSD?"). `mt5gate serve` answers it 404, the
  `mt5gate` command exits 3.

### Outcomes

What a result means for the order (`mt5gate.errors.Outcome`, the Outcome column):

"""

_COLUMNS_HELP: Final = """
### Columns

- **Meaning**: the terminal's text for the code (the MQL5 description where none is recorded).
- **Class**: the exception raised; a function that raises another class for the code is named
  in parentheses.
- **What mt5gate does**: the session and the order pipeline ([session.md](session.md),
  [orders.md](orders.md)): the idempotency key, the journal, reconciliation, reconnection, and
  the circuit breaker (failures open it; one it ignores neither opens nor closes it).
- **What you should do**: the hint the raised error carries (`str(error)` ends with it).
"""

_RETCODES_INTRO: Final = """
## Trade retcodes

`OrderSendResult.retcode`: the trade server's answer to `order_send` (and a failed
`order_check`, whose success is retcode 0).
"""

_LAST_ERRORS_INTRO: Final = """
## last_error codes

`last_error()` after a terminal function returned `None` or `False`. The Outcome column is
what `order_send` returning `None` with the code means for the order.
"""


def render_markdown(entries: Sequence[ErrorEntry] | None = None) -> str:
    """The whole ``docs/errors.md`` page for ``entries`` (all of them by default)."""
    chosen = error_reference() if entries is None else tuple(sorted(entries, key=_page_order))
    parts = [
        _INTRO,
        *_tree_lines(MT5Error, 0),
        _CATCHING,
        *(f"- **{o.value}**: {_OUTCOME_MEANINGS[o]}\n" for o in Outcome),
        _COLUMNS_HELP,
        _RETCODES_INTRO,
        _table(e for e in chosen if e.kind == "retcode"),
        _LAST_ERRORS_INTRO,
        _table(e for e in chosen if e.kind == "last_error"),
    ]
    return "".join(parts)


def _tree_lines(cls: type[MT5Error], depth: int) -> Iterator[str]:
    """``cls`` and its subclasses in ``mt5gate.errors`` as nested bullets, each with the first
    sentence of its docstring (another module's subclasses would make the page depend on what
    was imported)."""
    yield f"{'  ' * depth}- `{cls.__name__}`: {_first_sentence(cls.__doc__ or '')}\n"
    for sub in cls.__subclasses__():
        if sub.__module__ == MT5Error.__module__:
            yield from _tree_lines(sub, depth + 1)


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split()).replace("``", "`")
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]


def _table(entries: Iterator[ErrorEntry]) -> str:
    rows = [_row(_COLUMNS), _row(("---",) * len(_COLUMNS))]
    rows += [_row(_cells(entry)) for entry in entries]
    return "\n" + "".join(rows)


def _cells(entry: ErrorEntry) -> tuple[str, ...]:
    return (
        str(entry.code),
        f"`{entry.name}`",
        _escape(entry.meaning),
        _escape(entry.error_class),
        entry.outcome or "—",
        _escape(entry.mt5gate_does),
        _escape(entry.you_should),
    )


def _row(cells: Sequence[str]) -> str:
    return f"| {' | '.join(cells)} |\n"


def _escape(text: str) -> str:
    """``text`` safe in a table cell: one line, ``|`` escaped, ``<x>`` not read as HTML."""
    one_line = " ".join(text.split())
    return re.sub(r"([|<>])", r"\\\1", one_line)


def render_text(entry: ErrorEntry) -> str:
    """A few plain lines about ``entry``, for a terminal (``mt5gate errors 10019``)."""
    retcode = entry.kind == "retcode"
    fields = [
        ("Meaning", entry.meaning),
        ("Class", entry.error_class),
        ("Outcome" if retcode else "Outcome (order_send)", entry.outcome),
        ("What mt5gate does", entry.mt5gate_does),
        ("What you should do", entry.you_should),
    ]
    width = max(len(label) for label, _ in fields) + 2
    title = f"{entry.code} {entry.name} ({'trade retcode' if retcode else 'last_error code'})"
    lines = [title, *(f"{label + ':':<{width}}{value}" for label, value in fields if value)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mt5gate.cli.reference [--write PATH | --check PATH]``: print the page, write
    it, or exit 1 when the file at PATH is not what the code generates (0 when it is)."""
    parser = argparse.ArgumentParser(
        prog="python -m mt5gate.cli.reference",
        description="Print docs/errors.md, the MT5 error reference generated from mt5gate's "
        "error tables.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", type=Path, help="write the page to PATH")
    group.add_argument("--check", metavar="PATH", type=Path, help="exit 1 if PATH is stale")
    args = parser.parse_args(argv)
    page = render_markdown()
    if args.write is not None:
        args.write.write_text(page, encoding="utf-8", newline="\n")
        return 0
    if args.check is not None:
        return _check(args.check, page)
    sys.stdout.write(page)
    return 0


def _check(path: Path, page: str) -> int:
    """0 when ``path`` holds ``page``; else 1, with the command that fixes it on stderr."""
    try:
        current = path.read_text(encoding="utf-8")
    except OSError as error:
        current = None
        reason = f"cannot be read ({error.strerror or error})"
    else:
        reason = "is out of date"
    if current == page:
        return 0
    fix = f"python -m mt5gate.cli.reference --write {path}"
    print(f"{path} {reason}: regenerate it with `{fix}`", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
