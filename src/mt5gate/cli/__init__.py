"""The ``mt5gate`` command: read, trade and watch from the shell, and run the front ends.

``mt5gate price EURUSD``, ``account``, ``positions``, ``orders``, ``history``, ``health``,
``watch``, ``order buy|sell|limit|stop``, ``close``, ``cancel``, ``modify``, ``halt``,
``resume``, ``rates``, ``ticks``, ``errors`` and ``journal`` work on one account (the SIMULATED
demo account unless ``--config`` or ``--terminal`` says otherwise), through the running
``mt5gate serve`` when it owns the account; ``serve``, ``bot``, ``bridge`` and ``demo`` run the
HTTP service, the Telegram bot, the bridge and the simulator tour. See ``docs/quickref.md`` and
``mt5gate --help``; ``mt5gate --version`` says which mt5gate this is.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main", "version_line"]

#: The option that prints :func:`version_line` (answered before typer is imported).
VERSION_OPTION = "--version"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mt5gate <command> [options]``; returns the exit status (see
    :mod:`mt5gate.cli.failures` for what each code means)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [VERSION_OPTION]:  # eager, as typer's own --version would be, and faster
        print(version_line())
        return 0
    from mt5gate.extras import MissingExtraError, needed_for, require

    try:  # each front end is an extra: say which one to install, not a traceback
        for extra in needed_for(args):
            require(extra)
    except MissingExtraError as missing:
        print(f"mt5gate: {missing}", file=sys.stderr)
        return 2
    from mt5gate.cli.app import app

    try:
        app(args=args, prog_name="mt5gate")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0  # pragma: no cover - click always exits in standalone mode


def version_line() -> str:
    """``mt5gate 0.2.0``: the installed distribution's version (what pip installed), else the
    package's own ``__version__`` (a source tree on ``sys.path`` that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mt5gate {version('mt5gate')}"
    except PackageNotFoundError:
        from mt5gate import __version__

        return f"mt5gate {__version__}"
