"""The ``last_error()`` values of a failed link to a terminal, spelled once.

The real ``MetaTrader5`` module reports a failure of its named pipe to the terminal with these
codes and texts (``docs/mt5-api/semantics.md`` §2.5); mt5gate's remote terminals (the bridge
client, the child-process host, the RPyC client) report a failure of *their* link the same
way, so the session's reconnection logic treats them all alike. Every one of them imports the
tuples from here. The codes are :class:`~mt5gate.constants.ResultCode`'s, as plain ints (the
real module gives plain ints).
"""

from __future__ import annotations

from typing import Final

from mt5gate.constants import ResultCode

__all__ = [
    "CALL_FAILED",
    "NO_IPC",
    "RECV_FAILED",
    "SEND_FAILED",
    "SUCCESS",
    "IPC_TIMEOUT",
    "LastError",
    "init_failed",
]

#: ``(code, text)`` as ``last_error()`` returns it.
LastError = tuple[int, str]

#: After a call that succeeded.
SUCCESS: Final[LastError] = (int(ResultCode.S_OK), "Success")
#: The call failed on the far side of the link for a reason it does not name (-10000).
CALL_FAILED: Final[LastError] = (int(ResultCode.E_INTERNAL_FAIL), "IPC call failed")
#: The request could not be sent (-10001): nothing reached the terminal.
SEND_FAILED: Final[LastError] = (int(ResultCode.E_INTERNAL_FAIL_SEND), "IPC send failed")
#: The reply could not be read (-10002): the call may have run.
RECV_FAILED: Final[LastError] = (int(ResultCode.E_INTERNAL_FAIL_RECEIVE), "IPC recv failed")
#: No link: never connected, closed, or lost; ``initialize()`` makes a new one (-10004).
NO_IPC: Final[LastError] = (int(ResultCode.E_INTERNAL_FAIL_CONNECT), "No IPC connection")
#: No reply before the call's deadline (-10005): the call may have run.
IPC_TIMEOUT: Final[LastError] = (int(ResultCode.E_INTERNAL_FAIL_TIMEOUT), "IPC timeout")

_INIT_FAILED: Final = int(ResultCode.E_INTERNAL_FAIL_INIT)


def init_failed(reason: str) -> LastError:
    """What ``initialize()`` reports when it cannot reach a terminal (-10003), with why: the
    real module's text begins the same way (``IPC initialize failed, MetaTrader 5 x64 not
    found``)."""
    return (_INIT_FAILED, f"IPC initialize failed, {reason}")
