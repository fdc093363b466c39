"""What the user chose on the command line, in types that cost nothing to import.

``mt5gate.cli.app`` declares every command with these in its signatures, and typer reads
the signatures to build ``mt5gate --help``; so they live here, apart from the modules that
do the work (rich, pydantic, the session, the service's configuration), which a command
imports only when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = ["AccountChoice", "FileFormat", "Options", "SideChoice", "TickSet"]


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """What the user said on the command line about the account (all optional)."""

    config: Path | None = None
    account: str | None = None
    terminal: str | None = None
    login: int | None = None
    server: str | None = None
    token_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """What every account command takes: which account, ``--json`` and ``--debug``."""

    choice: AccountChoice = field(default_factory=AccountChoice)
    json: bool = False
    debug: bool = False


class SideChoice(StrEnum):
    """``buy|sell`` as the command line takes it: the values of :class:`mt5gate.models.Side`
    (a test keeps them equal), declared here because ``mt5gate.models`` loads numpy."""

    BUY = "buy"
    SELL = "sell"


class FileFormat(StrEnum):
    """``--format`` of ``mt5gate rates`` and ``ticks`` (by default, the output's extension)."""

    CSV = "csv"
    PARQUET = "parquet"


class TickSet(StrEnum):
    """``--flags`` of ``mt5gate ticks``: MT5's ``COPY_TICKS_ALL``, ``_INFO`` (bid or ask
    changed) or ``_TRADE`` (last or volume changed)."""

    ALL = "all"
    INFO = "info"
    TRADE = "trade"
