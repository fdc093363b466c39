"""The simulator's state file: the simulated broker survives a restart of its host process.

One JSON document holds the server (tickets, every account's positions, orders and history), the
market (prices and random-process state), the terminal's Market Watch and switches, and the
clock. It is written atomically (temporary file, fsync, rename, fsync of the folder), so a crash
while saving leaves the previous state intact, never a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mt5gate.files import private_dir
from mt5gate.sim.clock import RealClock, VirtualClock

if TYPE_CHECKING:
    from mt5gate.sim.terminal import SimTerminal

__all__ = ["STATE_VERSION", "StateFileError", "load_state", "save_state", "snapshot"]

STATE_VERSION = 1


class StateFileError(ValueError):
    """A state file that cannot be loaded (wrong version, not JSON, missing parts)."""


def snapshot(terminal: SimTerminal) -> dict[str, Any]:
    """The whole simulated server and terminal as JSON-serialisable data."""
    return {
        "version": STATE_VERSION,
        "clock_ms": terminal.clock.now_ms(),
        "tickets": terminal.tickets.snapshot(),
        "market": terminal.market.snapshot(),
        "accounts": {str(login): b.snapshot() for login, b in terminal.brokers.items()},
        "terminal": terminal.terminal_snapshot(),
    }


def save_state(terminal: SimTerminal, path: Path) -> None:
    """Write :func:`snapshot` to ``path`` atomically, as a file only its owner can read (the
    accounts' positions and history): a missing folder is made with mode 700, and the file is
    created 600 (``mkstemp``'s mode) before anything is written, then renamed over ``path``."""
    data = json.dumps(snapshot(terminal), separators=(",", ":")).encode()
    private_dir(path.parent)  # an existing folder is the caller's choice (the CLI reports it)
    fd, temp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise StateFileError(f"cannot read simulator state file {path}: {error}") from error
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        found = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise StateFileError(
            f"simulator state file {path} has version {found!r}; this mt5gate reads "
            f"version {STATE_VERSION}"
        )
    return data


def load_state(terminal: SimTerminal, path: Path) -> None:
    """Restore a terminal from a file :func:`save_state` wrote.

    A virtual clock jumps forward to the saved time (never back), and so does a real clock
    pinned to a start time (a pinned simulator restarted goes on from where it was); a real
    clock on machine time keeps running, and the market catches up from the saved prices to now.
    """
    data = _read(path)
    try:
        clock = terminal.clock
        if isinstance(clock, VirtualClock) and data["clock_ms"] > clock.now_ms():
            clock.set(int(data["clock_ms"]))
        if isinstance(clock, RealClock):
            clock.resume(int(data["clock_ms"]))
        terminal.tickets.restore(data["tickets"])
        terminal.market.restore(data["market"])
        for login, broker_state in data["accounts"].items():
            terminal.broker_for(int(login)).restore(broker_state)
        terminal.terminal_restore(data["terminal"])
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise StateFileError(f"simulator state file {path} is incomplete: {error!r}") from error
