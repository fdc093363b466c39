"""The two consoles a command writes to, and the options every account command shares.

stdout carries the answer (a table, or JSON with ``--json``) and nothing else, so it can be
piped; stderr carries the rest: the simulator announcement, progress, prompts, errors.
Consoles are made per run (tests swap ``sys.stdout``; a console made at import would keep the
old one). Colour follows rich's rules: none when the stream is not a terminal or ``NO_COLOR``
is set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from mt5gate.cli.options import Options
from mt5gate.cli.render import json_text
from mt5gate.cli.target import Target

__all__ = ["SIMULATED_BANNER", "VIA_SERVICE", "Options", "Ui"]

#: Said on stderr by every command that runs on a simulated account.
SIMULATED_BANNER: Final = (
    "SIMULATED terminal (mt5gate.sim): {account}. Prices and orders are not real. "
    "Use --config FILE or --terminal official to reach a real MetaTrader 5."
)

#: Said on stderr by every command that goes through the ``mt5gate serve`` owning its account.
VIA_SERVICE: Final = "via mt5gate serve at {url}, which owns account {account}"

_PIPE_WIDTH: Final = 160


@dataclass(slots=True)
class Ui:
    """Output of one command run."""

    options: Options
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    out: Console = field(default_factory=lambda: Console(soft_wrap=False))
    err: Console = field(default_factory=lambda: Console(stderr=True))

    _restore: list[tuple[logging.Logger, int, logging.Handler]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.out.is_terminal and not self.env.get("COLUMNS"):
            self.out.width = _PIPE_WIDTH  # a file or pipe: do not cut columns to 80
        self._restore = _configure_logging(self.err, debug=self.options.debug)

    def close(self) -> None:
        """Put the loggers back as they were (the command may run inside another program)."""
        for logger, level, handler in self._restore:
            logger.removeHandler(handler)
            logger.setLevel(level)
        self._restore.clear()

    def announce(self, target: Target) -> None:
        """Say loudly, on stderr, when the account is simulated."""
        if target.simulated:
            text = SIMULATED_BANNER.format(account=target.describe())
            self.err.print(f"[bold yellow]{text}[/]", highlight=False, soft_wrap=True)

    def via(self, url: str, account: str) -> None:
        """Say, on stderr, that the command goes through the service that owns the account."""
        self.err.print(f"[bold]{escape(VIA_SERVICE.format(url=url, account=account))}[/]",
                       highlight=False, soft_wrap=True)  # fmt: skip

    def emit_json(self, value: object) -> None:
        """Print ``value`` as JSON on stdout (plain text: no wrapping, no colour)."""
        self.out.file.write(json_text(value) + "\n")
        self.out.file.flush()

    def note(self, text: str) -> None:
        """A line for the person on stderr (rich markup allowed)."""
        self.err.print(text, highlight=False, soft_wrap=True)


def _configure_logging(
    console: Console, *, debug: bool
) -> list[tuple[logging.Logger, int, logging.Handler]]:
    """mt5gate's warnings (reconnects, journal trouble) on stderr; everything with --debug.
    Returns what :meth:`Ui.close` needs to undo it."""
    changed: list[tuple[logging.Logger, int, logging.Handler]] = []
    for name in ("mt5gate", "asyncio"):
        logger = logging.getLogger(name)
        handler = RichHandler(console=console, show_path=False, show_time=debug)
        changed.append((logger, logger.level, handler))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    return changed
