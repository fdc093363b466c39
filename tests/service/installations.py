"""Simulated MetaTrader 5 installations: the drop-in module as ``MetaTrader5``, in any process.

On Windows, each broker's MetaTrader 5 is an installation of its own (``terminal64.exe`` in its
own folder), logged into that broker's account, and ``initialize(path)`` picks the one to talk
to (semantics §1). :func:`write_package` puts a ``MetaTrader5`` package in a folder; a process
with that folder on ``sys.path`` (a ``spawn`` child inherits the parent's) imports it as the
official package and gets the simulator's drop-in module, whose ``initialize(path, ...)`` attaches
to the simulated installation at ``path``:

* the installations are listed in the environment variable :data:`ENV` (inherited by children):
  ``{"<terminal64.exe path>": {"login": 5001, "state": "<file>"}}``;
* an installation knows only its own broker's account (one demo account of the simulator), so a
  session that reached another installation would fail to log in: a cross-wiring cannot pass
  unseen;
* its broker lives in its state file, as a real broker's trade server outlives a terminal
  process: a child process killed and replaced finds the positions again;
* ``terminal_info().path`` is the installation's folder, as on a real terminal;
* a path that names no installation (or none) fails as the package does when it finds no
  terminal: ``False`` and ``(-10003, 'IPC initialize failed, MetaTrader 5 x64 not found')``.

Paths are compared as the package compares them: normalised and lower-cased.
"""

from __future__ import annotations

import json
import ntpath
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mt5gate.sim import RealClock, SimConfig, SimTerminal, server_ms
from mt5gate.sim import metatrader5 as dropin
from mt5gate.sim.config import demo_accounts

#: The environment variable listing the installations (JSON, see the module docstring).
ENV = "MT5GATE_TEST_INSTALLATIONS"
#: Tuesday 2026-01-06 10:00 server time: the simulated markets start open on any day.
TUESDAY_10 = server_ms(2026, 1, 6, 10)
_NOT_FOUND = (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")

PACKAGE = '''"""MetaTrader5 for the tests: the simulator's drop-in (tests/service/installations)."""
import sys

from tests.service.installations import module

sys.modules[__name__] = module()
'''


def write_package(folder: Path) -> Path:
    """A ``MetaTrader5`` package in ``folder`` (put ``folder`` on ``sys.path``)."""
    package = folder / "MetaTrader5"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(PACKAGE, encoding="utf-8")
    return folder


def listing(installations: dict[str, tuple[int, Path]]) -> str:
    """The :data:`ENV` value for ``{terminal64.exe path: (login, state file)}``."""
    return json.dumps(
        {p: {"login": login, "state": str(s)} for p, (login, s) in installations.items()}
    )


def _key(path: str) -> str:
    return ntpath.normcase(ntpath.normpath(path))


class _Installations:
    """This process's attached installation: built on the first ``initialize`` of its path."""

    def __init__(self) -> None:
        self.terminals: dict[str, SimTerminal] = {}
        self.failed = False  # the last initialize found no installation

    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        path = args[0] if args else kwargs.get("path")
        listed = {_key(p): (p, entry) for p, entry in json.loads(os.environ.get(ENV, "{}")).items()}
        found = listed.get(_key(path)) if isinstance(path, str) else None
        if found is None:
            self.failed = True
            return False
        self.failed = False
        dropin._State.terminal = self._terminal(*found)
        result: bool = dropin.initialize(*args, **kwargs)  # type: ignore[attr-defined]
        return result

    def _terminal(self, path: str, entry: dict[str, Any]) -> SimTerminal:
        key = _key(path)
        if key not in self.terminals:
            account = next(a for a in demo_accounts() if a.login == entry["login"])
            windows = path.replace("/", "\\")
            config = SimConfig(accounts=(account,), history_days=1, path=windows)
            self.terminals[key] = SimTerminal(
                config, clock=RealClock(start_ms=TUESDAY_10), state_file=entry["state"]
            )
        return self.terminals[key]

    def last_error(self) -> tuple[int, str]:
        if self.failed:
            return _NOT_FOUND
        error: tuple[int, str] = dropin.last_error()  # type: ignore[attr-defined]
        return error


def module() -> ModuleType:
    """A ``MetaTrader5`` module: the drop-in's public surface, with an installation-choosing
    ``initialize`` and its ``last_error``."""
    shim = ModuleType("MetaTrader5", dropin.__doc__)
    for name in dir(dropin):
        if not name.startswith("_") or name in ("__version__", "__author__"):
            setattr(shim, name, getattr(dropin, name))
    installations = _Installations()
    shim.initialize = installations.initialize  # type: ignore[attr-defined]
    shim.last_error = installations.last_error  # type: ignore[attr-defined]
    shim.installations = installations  # type: ignore[attr-defined]
    print("mt5gate tests: MetaTrader5 is the SIMULATED terminal", file=sys.stderr)
    return shim
