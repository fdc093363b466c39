"""How a command ends: exit codes, and every failure as one line plus a hint.

Scripts branch on the exit code, people read the line. A traceback is a bug report, not an
answer: it is printed only with ``--debug``. Errors are mapped here once, by type.

======  =====================================================================================
code    meaning
======  =====================================================================================
0       done (``health``: pass)
1       done, but not good: ``health`` warns, ``journal list --unresolved`` found orders, an
        order was declined at the prompt, or ``--yes`` was needed and not given
2       ``health`` fails; or the command line, configuration or request is invalid (nothing
        was sent)
3       MT5 said no or could not be reached: a refused order, a closed market, a terminal down,
        the circuit open, a symbol or ticket not found
4       an order's outcome is unknown: do not resend; ``mt5gate journal show`` follows it
5       mt5gate itself failed (a bug: rerun with ``--debug`` and report the traceback)
130     interrupted (Ctrl-C)
======  =====================================================================================
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from rich.console import Console
from rich.markup import escape

from mt5gate.errors import (
    MT5ConnectionError,
    MT5Error,
    MT5NotFoundError,
    MT5OrderOutcomeUnknown,
    MT5StateError,
    MT5TradeError,
    MT5TradingHalted,
    MT5ValidationError,
    error_title,
)

__all__ = ["CommandError", "Exit", "describe", "guarded"]

T = TypeVar("T")

#: How the command lists what an :class:`~mt5gate.errors.MT5NotFoundError` did not find: the
#: hint a person gets instead of the session's Python one.
NOT_FOUND_HINTS: Final = {
    "symbol": "Symbol names are exact, suffix included (EURUSD.m, EURUSDx): copy one from the "
    "terminal's Market Watch.",
    "position": "mt5gate positions lists the open ones.",
    "order": "mt5gate orders lists the pending ones.",
}

#: A halt is lifted where it was set: the service's switch by ``mt5gate resume``, the TOML's by
#: the TOML (the session's hint, ``session.resume_trading()``, is for Python code).
HALTED_HINT: Final = (
    "When it is safe to: mt5gate resume (through the mt5gate serve that owns the account), "
    "or set risk.halted = false in the account's TOML."
)


#: The command's words for a session that is not usable yet (the session's hints name Python
#: calls, the service's name its routes): the same two situations, however the command met them.
NOT_READY_HINT: Final = "The account is not connected yet: mt5gate health says why; try again."
RECONNECTING_HINT: Final = (
    "mt5gate reconnects by itself: try again shortly (mt5gate health says why it is down)."
)


class Exit(IntEnum):
    """The exit codes of every ``mt5gate`` command (see the module docstring)."""

    OK = 0
    NOT_GOOD = 1
    FAIL = 2
    USAGE = 2
    MT5 = 3
    UNKNOWN_OUTCOME = 4
    BUG = 5
    INTERRUPTED = 130


class CommandError(Exception):
    """A problem the command found itself: the line to print, its hint and the exit code."""

    def __init__(self, message: str, *, hint: str = "", code: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


@dataclass(frozen=True, slots=True)
class Described:
    """A failure as the user sees it."""

    title: str
    message: str
    hint: str
    code: Exit


def describe(error: BaseException) -> Described:
    """The line, hint and exit code for ``error`` (any exception)."""
    # imported here: only a failure needs them, and the configuration's module loads pydantic
    from mt5gate.orders.journal import JournalError
    from mt5gate.service.config import ConfigError

    if isinstance(error, CommandError):
        return Described("", error.message, error.hint, error.code)
    if isinstance(error, MT5Error):
        return _mt5(error)
    if isinstance(error, ConfigError):
        return Described("Configuration", str(error), "Fix the file or option it names.",
                         Exit.USAGE)  # fmt: skip
    if isinstance(error, JournalError):
        return Described("Journal", str(error), "Check the journal file and its permissions.",
                         Exit.USAGE)  # fmt: skip
    if _is_state_file_error(error):
        return Described("Simulator state", str(error),
                         "Delete that file to start the simulated account afresh.",
                         Exit.USAGE)  # fmt: skip
    if isinstance(error, OSError):
        return Described("System", f"{error.strerror or error}"
                         + (f": {error.filename}" if error.filename else ""),
                         "Check the path and its permissions.", Exit.MT5)  # fmt: skip
    name = type(error).__name__
    return Described("Internal error", f"{name}: {error}",
                     "This is a bug in mt5gate: rerun with --debug and report the traceback.",
                     Exit.BUG)  # fmt: skip


def _mt5(error: MT5Error) -> Described:
    message = error.message
    if isinstance(error, MT5TradeError) and error.retcode is not None:
        comment = error.comment or "no comment"
        message = f"the trade server answered {error.retcode} ({comment}). {message}"
    code = Exit.MT5
    if isinstance(error, MT5OrderOutcomeUnknown):
        code = Exit.UNKNOWN_OUTCOME
    elif isinstance(error, MT5ValidationError):  # refused before anything was sent
        code = Exit.USAGE
    hint = error.hint
    if isinstance(error, MT5NotFoundError):
        hint = NOT_FOUND_HINTS[error.kind]
    elif isinstance(error, MT5TradingHalted):
        hint = HALTED_HINT
    elif isinstance(error, MT5StateError | MT5ConnectionError):
        hint = _session_hint(hint)
    return Described(error_title(error), message.rstrip("."), hint, code)


def _session_hint(hint: str) -> str:
    """The command's words for the session's (or, through ``mt5gate serve``, the service's)
    hint of a session not usable yet; any other hint as it is."""
    from mt5gate import errors
    from mt5gate.service.problems import SESSION_HINTS  # a failure's path only

    ours = {errors.CONNECT_FIRST_HINT: NOT_READY_HINT, errors.RECONNECTING_HINT: RECONNECTING_HINT}
    ours |= {SESSION_HINTS[library]: said for library, said in ours.items()}
    return ours.get(hint, hint)


def _is_state_file_error(error: BaseException) -> bool:
    from mt5gate.sim.state import StateFileError

    return isinstance(error, StateFileError)


def report(console: Console, error: BaseException, *, debug: bool) -> Exit:
    """Print ``error`` on ``console`` (stderr) as one line and a hint; its exit code."""
    found = describe(error)
    if debug:
        console.print(escape("".join(traceback.format_exception(error))), highlight=False)
    title = f"[bold]{escape(found.title)}:[/] " if found.title else ""
    console.print(f"[bold red]error:[/] {title}{escape(found.message)}", highlight=False,
                  soft_wrap=True)  # fmt: skip
    if found.hint:
        console.print(f"[yellow]hint:[/] {escape(found.hint)}", highlight=False, soft_wrap=True)
    return found.code


def guarded(console: Console, work: Callable[[], T], *, debug: bool) -> T | Exit:
    """``work()``, or the exit code of the failure it raised, reported on ``console``."""
    try:
        return work()
    except KeyboardInterrupt:
        console.print("interrupted", highlight=False)
        return Exit.INTERRUPTED
    except Exception as error:
        return report(console, error, debug=debug)
