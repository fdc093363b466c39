"""The ``mt5gate`` command: read, trade and watch from the shell, and run the front ends.

``mt5gate price EURUSD``, ``account``, ``positions``, ``orders``, ``history``, ``health``,
``watch``, ``order buy|sell|limit|stop``, ``close``, ``cancel``, ``errors`` and ``journal``
work on one account (the SIMULATED demo account unless ``--config`` or ``--terminal`` says
otherwise), through the running ``mt5gate serve`` when it owns the account; ``serve``,
``bot``, ``bridge`` and ``demo`` run the HTTP service, the Telegram bot, the bridge and the
simulator tour. See ``docs/quickref.md`` and ``mt5gate --help``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mt5gate <command> [options]``; returns the exit status (see
    :mod:`mt5gate.cli.failures` for what each code means)."""
    from mt5gate.cli.app import app

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="mt5gate")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0  # pragma: no cover - click always exits in standalone mode
