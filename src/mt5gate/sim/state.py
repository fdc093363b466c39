"""The simulator's state file: the simulated broker survives a restart of its host process.

It keeps only what cannot be regenerated: every account's balance, positions, pending orders,
history orders, deals and closed tickets, the ticket counter, the terminal's Market Watch and
switches, and the clock. The market is not stored: its history and live ticks are functions of
the seed and the time the market started (kept in the header), and are regenerated on load.

The file is a journal of JSON lines (version 2): a header, then records, each holding what
changed since the one before (per account: positions and orders upserted or gone, history
orders and deals appended). A record is appended and ``fdatasync``-ed before the call that made
it returns, so an order is on disk before its reply, as when the whole state was rewritten on
every order. A crash mid-append leaves a torn last line without its newline: it is dropped on
load (its call never replied) and cut off before the next append. A host that sends the replies
itself (the bridge) may defer that fdatasync to just before the reply
(:attr:`StateJournal.deferred_sync`): one fdatasync then covers the orders of several clients
(group commit). When the records outgrow the state they describe, the file is rewritten as one
record (compaction), atomically: temporary file, fsync, rename, fsync of the folder; so it
grows with trading, not with time or calls.

Files of version 1 (one JSON document with the whole market) still load, market included; the
first save rewrites them as version 2.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mt5gate.files import private_dir
from mt5gate.sim.broker import snapshot as books
from mt5gate.sim.clock import RealClock, VirtualClock

if TYPE_CHECKING:
    from mt5gate.sim.terminal import SimTerminal

__all__ = [
    "LEGACY_VERSION",
    "STATE_VERSION",
    "StateFileError",
    "StateJournal",
    "load_state",
    "save_state",
    "snapshot",
]

STATE_VERSION = 2
LEGACY_VERSION = 1
_KIND = "mt5gate simulator state journal"
#: Records are compacted once they outweigh the state by this much (and this many bytes).
_COMPACT_MIN_BYTES = 256 * 1024


class StateFileError(ValueError):
    """A state file that cannot be loaded (wrong version, not JSON, missing parts)."""


def snapshot(terminal: SimTerminal) -> dict[str, Any]:
    """The whole simulated server and terminal, market included, as version 1 data (what older
    mt5gate wrote; kept to make such files, e.g. in tests)."""
    return {
        "version": LEGACY_VERSION,
        "clock_ms": terminal.clock.now_ms(),
        "tickets": terminal.tickets.snapshot(),
        "market": terminal.market.snapshot(),
        "accounts": {str(login): b.snapshot() for login, b in terminal.brokers.items()},
        "terminal": terminal.terminal_snapshot(),
    }


def save_state(terminal: SimTerminal, path: Path) -> None:
    """Write the terminal's whole state to ``path`` as a compacted journal (see the module)."""
    StateJournal(path).rewrite(terminal)


def load_state(terminal: SimTerminal, path: Path) -> None:
    """Restore a terminal from a state file (either version); see :meth:`StateJournal.load`."""
    StateJournal(path).load(terminal)


@dataclass
class _Seen:
    """What the file holds so far, to write the next record as a difference."""

    tickets: dict[str, Any] | None = None
    terminal: dict[str, Any] | None = None
    accounts: dict[int, books.Mirror] = field(default_factory=dict)


class StateJournal:
    """The state file of one simulator: loads it, appends a record per change, compacts it.

    It writes only while the file is as it left it (same inode and size): when another
    process wrote it meanwhile, or it is of version 1, the next save rewrites it whole.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: False: each record is fdatasync-ed before :meth:`commit` returns. True: its host
        #: calls :meth:`sync` before it replies (the bridge), so one fdatasync can cover the
        #: records of several clients' calls made while the previous one ran (group commit).
        self.deferred_sync = False
        self._seen = _Seen()
        self._stamp: tuple[int, int] | None = None  # (inode, size) after this object's write
        self._state_bytes = 0  # size of the last compacted file
        self._guard = threading.Lock()  # the two counters below
        self._written = self._synced = 0  # records appended, and those known to be on disk
        self._syncing = threading.Lock()  # one fdatasync at a time; the others wait, then share

    @property
    def unsynced(self) -> bool:
        """Whether a record was appended that is not known to be on disk yet."""
        return self._synced < self._written

    def sync(self) -> None:
        """Return once every record appended so far is on disk (thread-safe: a caller that
        waited for another's fdatasync usually finds its own record covered by it)."""
        with self._guard:
            target = self._written
        if self._synced >= target:
            return
        with self._syncing:
            with self._guard:
                if self._synced >= target:
                    return
                upto = self._written
            fd = os.open(self.path, os.O_RDONLY)  # fdatasync flushes the file, not the fd
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
            with self._guard:
                self._synced = max(self._synced, upto)

    # ----------------------------------------------------------------------------- writing

    def commit(self, terminal: SimTerminal) -> None:
        """Put what changed since the last write on disk (durably) before returning."""
        if self._stamp is None or self._stamp != _stamp(self.path) or self._due(terminal):
            self.rewrite(terminal)
            return
        line = _line(self._record(terminal))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            if not self.deferred_sync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        self._stamp = (self._stamp[0], self._stamp[1] + len(line))
        with self._guard:
            self._written += 1
            if not self.deferred_sync:
                self._synced = self._written

    def _due(self, terminal: SimTerminal) -> bool:
        """Compaction: the records since the last one outweigh the state they describe."""
        assert self._stamp is not None
        grown = self._stamp[1] - self._state_bytes
        return grown > max(_COMPACT_MIN_BYTES, self._state_bytes)

    def rewrite(self, terminal: SimTerminal) -> None:
        """Write the whole state as one record, atomically, as a file only its owner can read
        (the accounts' positions and history): a missing folder is made with mode 700, and the
        file is created 600 (``mkstemp``'s mode) before anything is written, then renamed."""
        self._seen = _Seen()
        header = {"version": STATE_VERSION, "kind": _KIND,
                  "market": {"start_ms": terminal.market.start_ms}}  # fmt: skip
        data = _line(header) + _line(self._record(terminal))
        private_dir(self.path.parent)  # an existing folder is the caller's choice (CLI says)
        fd, temp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        self._stamp, self._state_bytes = _stamp(self.path), len(data)
        with self._guard:
            self._synced = self._written  # the whole state is on disk

    def _record(self, terminal: SimTerminal) -> dict[str, Any]:
        """The clock, and whatever else changed since the last record."""
        seen = self._seen
        record: dict[str, Any] = {"clock_ms": terminal.clock.now_ms()}
        tickets, view = terminal.tickets.snapshot(), terminal.terminal_snapshot()
        if tickets != seen.tickets:
            record["tickets"] = seen.tickets = tickets
        if view != seen.terminal:
            record["terminal"] = seen.terminal = view
        accounts = {}
        for login, broker in terminal.brokers.items():
            mirror = seen.accounts.setdefault(login, books.Mirror())
            change = books.changes(broker.engine, broker.request_id, mirror)
            if change:
                accounts[str(login)] = change
        if accounts:
            record["accounts"] = accounts
        return record

    # ----------------------------------------------------------------------------- reading

    def load(self, terminal: SimTerminal) -> None:
        """Restore ``terminal`` from the file. A virtual clock jumps forward to the saved time
        (never back), and so does a real clock pinned to a start time (a pinned simulator
        restarted goes on from where it was); a real clock on machine time keeps running, and
        the market catches up from the saved time to now. The terminal stays detached."""
        raw = _read_bytes(self.path)
        first, _, _ = raw.partition(b"\n")
        header = _parse(self.path, first)
        version = header.get("version") if isinstance(header, dict) else None
        try:
            if version == LEGACY_VERSION:
                _restore_legacy(terminal, header)
                self._stamp = None  # the next save rewrites it as version 2
                return
            if version != STATE_VERSION:
                raise StateFileError(
                    f"simulator state file {self.path} has version {version!r}; this "
                    f"mt5gate reads versions {LEGACY_VERSION} and {STATE_VERSION}"
                )
            valid = self._replay(terminal, header, raw)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, StateFileError):
                raise
            raise StateFileError(
                f"simulator state file {self.path} is incomplete: {error!r}"
            ) from error
        self._after_load(terminal, raw, valid)

    def _replay(self, terminal: SimTerminal, header: dict[str, Any], raw: bytes) -> int:
        """Apply every complete record; returns the length of the file's valid part."""
        state: dict[str, Any] = {"accounts": {}}
        lines = list(_complete_lines(raw))
        for _, line in lines[1:]:  # after the header
            _merge(state, _parse(self.path, line))
        valid = lines[-1][0] if lines else 0
        if "clock_ms" not in state:
            raise KeyError("clock_ms")
        _set_clock(terminal, int(state["clock_ms"]))
        terminal.market.regenerate(int(header["market"]["start_ms"]), int(state["clock_ms"]))
        for login, account in state["accounts"].items():
            terminal.broker_for(int(login)).restore(books.as_dump(account))
        terminal.tickets.restore(state["tickets"])  # after: a new broker's deposit takes one
        terminal.terminal_restore(state["terminal"])
        return valid

    def _after_load(self, terminal: SimTerminal, raw: bytes, valid: int) -> None:
        """Cut a torn last line off, and start writing differences from the loaded state."""
        if valid < len(raw):
            os.truncate(self.path, valid)
        self._seen = _Seen()
        self._record(terminal)  # what the file holds now: the next record is a difference
        self._stamp, self._state_bytes = _stamp(self.path), valid


def _merge(state: dict[str, Any], record: dict[str, Any]) -> None:
    """Fold one record into the state being rebuilt."""
    state["clock_ms"] = record["clock_ms"]
    for key in ("tickets", "terminal"):
        if key in record:
            state[key] = record[key]
    for login, change in record.get("accounts", {}).items():
        books.apply(state["accounts"].setdefault(login, books.empty()), change)


def _complete_lines(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """Each newline-terminated line with the offset just past it; a last line without its
    newline is a torn append (its call never replied) and is left out."""
    start = 0
    while (end := raw.find(b"\n", start)) >= 0:
        yield end + 1, raw[start:end]
        start = end + 1


def _restore_legacy(terminal: SimTerminal, data: dict[str, Any]) -> None:
    """Version 1: the whole state in one document, market included."""
    _set_clock(terminal, int(data["clock_ms"]))
    terminal.market.restore(data["market"])
    for login, broker_state in data["accounts"].items():
        terminal.broker_for(int(login)).restore(broker_state)
    terminal.tickets.restore(data["tickets"])  # after: a new broker's deposit takes one
    terminal.terminal_restore(data["terminal"])


def _set_clock(terminal: SimTerminal, saved_ms: int) -> None:
    clock = terminal.clock
    if isinstance(clock, VirtualClock) and saved_ms > clock.now_ms():
        clock.set(saved_ms)
    if isinstance(clock, RealClock):
        clock.resume(saved_ms)


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise StateFileError(f"cannot read simulator state file {path}: {error}") from error


def _parse(path: Path, line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError as error:
        raise StateFileError(f"cannot read simulator state file {path}: {error}") from error


def _stamp(path: Path) -> tuple[int, int] | None:
    """The file's identity and length: another writer changes one of them."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
