"""The ``mt5gate`` command: a thin dispatcher to the front ends that exist so far.

``mt5gate serve`` runs the HTTP service (see ``docs/service.md``); ``mt5gate bot`` the Telegram
bot (``docs/bot.md``); ``mt5gate demo`` runs the
simulator tour; ``mt5gate bridge ...`` serves a terminal over TCP
(see ``docs/bridge.md``). Each subcommand parses its own arguments; nothing here holds logic.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: subcommand -> module whose ``main(argv) -> int`` runs it
COMMANDS = {
    "demo": "mt5gate.demo",
    "bridge": "mt5gate.bridge.cli",
    "journal": "mt5gate.orders.cli",
    "serve": "mt5gate.service.cli",
    "bot": "mt5gate.service.bot_cli",
}

USAGE = (
    "usage: mt5gate {serve,bot,demo,bridge,journal} [options]"
    "   (mt5gate <command> --help for details)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mt5gate <command> [options]``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    module = COMMANDS.get(args[0])
    if module is None:
        print(f"mt5gate: unknown command {args[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    run: int = importlib.import_module(module).main(args[1:])
    return run


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
