"""The simulator's internal failure signal.

Parts of the simulator raise :class:`SimError` with the MT5 ``last_error`` code and text; the
terminal facade is the one place that turns it into the real module's convention (``None`` /
``False`` plus ``last_error()``).
"""

from __future__ import annotations

from mt5gate.constants import ResultCode

__all__ = [
    "RESULT_TEXTS",
    "SUCCESS",
    "result_error",
    "CALL_FAILED",
    "INVALID_PARAMS",
    "NOT_FOUND",
    "SimError",
]


class SimError(Exception):
    """A call failed as the real terminal would fail it: ``code`` and ``text`` of last_error.

    ``code`` is kept as a plain ``int`` even when given a ``ResultCode``: the real module's
    ``last_error()`` returns ``(int, str)``, and an enum breaks ``json.dumps`` and RPyC.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(int(code), str(text))
        self.code = int(code)
        self.text = str(text)

    @property
    def last_error(self) -> tuple[int, str]:
        """The ``(code, text)`` pair ``last_error()`` reports for this failure."""
        return (self.code, self.text)


def CALL_FAILED() -> SimError:
    """(-1, 'Terminal: Call failed'): unknown or unselected symbol in copy_*, symbol_select."""
    return SimError(ResultCode.E_FAIL, "Terminal: Call failed")


def INVALID_PARAMS() -> SimError:
    """(-2, 'Terminal: Invalid params'): too many bars, bad timeframe."""
    return SimError(ResultCode.E_INVALID_PARAMS, "Terminal: Invalid params")


def NOT_FOUND() -> SimError:
    """(-4, 'Terminal: Not found'): symbol_info of a name that does not exist."""
    return SimError(ResultCode.E_NOT_FOUND, "Terminal: Not found")


#: The text ``last_error()`` reports for each code (semantics §2.5).
RESULT_TEXTS: dict[int, str] = {
    ResultCode.S_OK: "Success",
    ResultCode.E_FAIL: "Terminal: Call failed",
    ResultCode.E_INVALID_PARAMS: "Terminal: Invalid params",
    ResultCode.E_NO_MEMORY: "Terminal: Out of memory",
    ResultCode.E_NOT_FOUND: "Terminal: Not found",
    ResultCode.E_INVALID_VERSION: (
        "Terminal: Incompatible versions, please install the latest version of Terminal "
        "and Python module"
    ),
    ResultCode.E_AUTH_FAILED: "Terminal: Authorization failed",
    ResultCode.E_UNSUPPORTED: "Terminal: Unsupported function",
    ResultCode.E_AUTO_TRADING_DISABLED: "Auto-Trading using Python API disabled in Terminal",
    ResultCode.E_INTERNAL_FAIL: "IPC call failed",
    ResultCode.E_INTERNAL_FAIL_SEND: "IPC send failed",
    ResultCode.E_INTERNAL_FAIL_RECEIVE: "IPC recv failed",
    ResultCode.E_INTERNAL_FAIL_INIT: "IPC initialize failed, MetaTrader 5 x64 not found",
    ResultCode.E_INTERNAL_FAIL_CONNECT: "No IPC connection",
    ResultCode.E_INTERNAL_FAIL_TIMEOUT: "IPC timeout",
}

#: ``last_error()`` after a successful call: plain ``int`` code, as the real module gives.
SUCCESS: tuple[int, str] = (int(ResultCode.S_OK), "Success")


def result_error(code: int) -> SimError:
    """The SimError for ``code`` with the terminal's usual text."""
    return SimError(code, RESULT_TEXTS.get(code, "Terminal: Call failed"))
