"""What ``mt5gate serve`` logs, with every URL's query values masked.

A client may put a secret in a query string (``?api_key=...``: the service refuses keys there,
but cannot stop a client from sending one), and uvicorn's access log, its WebSocket lines and
an error that quotes a URL would write it down whole. :func:`log_config` is uvicorn's own
logging configuration with :class:`QueryRedactingFilter` on every handler, and a root handler
for mt5gate's own warnings (bare messages on stderr, as Python's last-resort handler printed
them before), so no line the service writes escapes the filter. The path stays readable for
diagnosis: ``GET /v1/accounts?api_key=*** HTTP/1.1``.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any, Final

__all__ = ["MASKED", "QueryRedactingFilter", "log_config", "redact_query"]

#: What a query value is replaced with.
MASKED: Final = "***"

# A path ("/v1/...") or an absolute URL ("https://host/..."), then "?" and its query, which ends
# at whitespace, a quote or a fragment.
_QUERY: Final = re.compile(
    r"(?P<target>(?:\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"']*|/[^\s?#\"']*))\?(?P<query>[^\s#\"']*)"
)


def _masked(query: str) -> str:
    """``a=1&b=2`` as ``a=***&b=***``; a bare value (no ``=``) is masked whole."""
    parts = (part.partition("=") for part in query.split("&"))
    return "&".join(f"{name}={MASKED}" if equals else (MASKED if name else "")
                    for name, equals, _ in parts)  # fmt: skip


def redact_query(text: str) -> str:
    """``text`` with the values of every path's or URL's query string masked."""
    if "?" not in text:
        return text
    return _QUERY.sub(lambda m: f"{m['target']}?{_masked(m['query'])}", text)


class QueryRedactingFilter(logging.Filter):
    """Masks query values in a record's message and in its string arguments (uvicorn's access
    formatter reads the path from the arguments, so their shape is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redacted(arg) for name, arg in record.args.items()}
        return True


def _redacted(value: object) -> object:
    return redact_query(value) if isinstance(value, str) else value


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, every handler filtered by :class:`QueryRedactingFilter`,
    plus a root handler for mt5gate's warnings (uvicorn still sets its own loggers' levels and
    drops the access log when it is switched off)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_query": {"()": QueryRedactingFilter}}
    config["formatters"]["plain"] = {"format": "%(message)s"}
    config["handlers"]["plain"] = {"class": "logging.StreamHandler", "formatter": "plain",
                                   "stream": "ext://sys.stderr"}  # fmt: skip
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_query"]
    config["root"] = {"handlers": ["plain"], "level": "WARNING"}
    # a fleet's claims and hand-overs are worth a line each (a few per account and fail-over)
    config["loggers"]["mt5gate.fleet"] = {"level": "INFO"}
    return config
