"""What each front end needs beyond the core library, and the one answer when it is missing.

The core library (the session, the simulator, the terminals and the bridge, the order journal,
health and metrics) installs with numpy, pydantic, msgspec and prometheus-client only. Each
front end is an extra of the distribution::

    pip install 'mt5gate[cli]'        # the mt5gate command (typer, rich, httpx)
    pip install 'mt5gate[service]'    # mt5gate serve: [cli] and FastAPI, uvicorn, Jinja2, ...
    pip install 'mt5gate[bot]'        # mt5gate bot: [cli] and python-telegram-bot
    pip install 'mt5gate[all]'        # the three

:data:`EXTRAS` names the top-level modules each front end's own code imports (its extra in
``pyproject.toml`` installs them; ``tests/release`` checks both lists against the code), and
:func:`needed_for` reads a ``mt5gate`` command line to say which extras it needs, so that the
command says ``the service needs: pip install 'mt5gate[service]'`` instead of a traceback.
``pip install 'mt5gate[service]'`` works with mt5gate already installed from a wheel or a
clone: pip takes the installed distribution and adds only the extra's packages.

This module imports nothing but the standard library: it runs before any front end does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

__all__ = ["EXTRAS", "MissingExtraError", "missing_modules", "needed_for", "require"]

#: The modules each front end imports directly, by the extra that installs them.
EXTRAS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "cli": ("typer", "rich", "httpx"),
        "service": ("fastapi", "starlette", "uvicorn", "websockets", "jinja2", "httpx"),
        "bot": ("telegram",),
    }
)

#: How the answer names each front end.
_WHO: Final[Mapping[str, str]] = MappingProxyType(
    {"cli": "the mt5gate command", "service": "the service", "bot": "the bot"}
)

#: ``mt5gate serve --bot`` also runs the bot (argparse accepts a prefix: ``--bo``).
_BOT_FLAG: Final = "--bot"


class MissingExtraError(Exception):
    """A front end's extra is not installed: the message is the one line to show."""

    def __init__(self, extra: str, modules: Sequence[str]) -> None:
        self.extra = extra
        self.modules = tuple(modules)
        super().__init__(
            f"{_WHO[extra]} needs: pip install 'mt5gate[{extra}]' "
            f"(not installed: {', '.join(self.modules)})"
        )


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them)."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked package counts as absent
            found = False
        if not found:
            missing.append(module)
    return missing


def require(extra: str) -> None:
    """Raise :class:`MissingExtraError` when ``extra`` is not (fully) installed."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(extra, missing)


def needed_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The extras ``mt5gate <argv>`` needs: always ``cli`` (typer parses the command line),
    ``service`` for ``serve``, ``bot`` for ``bot`` and ``serve --bot``. ``bridge``, ``demo``,
    ``journal`` and ``fleet`` run on the core (``fleet`` and a PostgreSQL journal say so
    themselves when they need the ``fleet`` extra)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command == "serve":
        rest = argv[argv.index("serve") + 1 :]
        runs_bot = any(len(arg) > 2 and _BOT_FLAG.startswith(arg) for arg in rest)
        return ("cli", "service", "bot") if runs_bot else ("cli", "service")
    if command == "bot":
        return ("cli", "bot")
    return ("cli",)
