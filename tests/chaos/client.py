"""The chaos client's own memory: which keys it knows are final, kept outside every journal.

A real client of mt5gate remembers what it was told (an order executed with client id C and
ticket T; a key was rejected for good), and an operator may tell it more (a key's order was
found at the broker after the journal that knew it was lost). That memory is the client's, not
the gateway's: it must survive the gateway's journal being lost or replaced, or the client
would send a key it already knows settled. :class:`ClientMemory` is that memory as one
append-only JSON-lines file that the chaos gateway appends to as keys become final and the
harness (playing the operator) appends its settlements to.

Each line is a :class:`Final`. A line torn by a SIGKILL mid-write is ignored when the file is
read: the key is then simply not final in memory, and the client asks the gateway again (the
journal answers), or the operator finds its order at the broker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final as Constant
from typing import Literal

__all__ = ["EXECUTED", "REJECTED", "SETTLED", "ClientMemory", "Final", "Outcome"]

Outcome = Literal["executed", "rejected", "settled"]
#: place_order returned an OrderResult: the key executed, as order ``order`` with ``client_id``.
EXECUTED: Constant[Outcome] = "executed"
#: place_order raised MT5TradeRejected: refused for good, nothing executed.
REJECTED: Constant[Outcome] = "rejected"
#: the operator found the key's order(s) at the broker, unknown to the current journal.
SETTLED: Constant[Outcome] = "settled"


@dataclass(frozen=True, slots=True)
class Final:
    """One key the client knows final, and what it was told about it."""

    key: str
    outcome: Outcome
    #: the client sequence the gateway reported (executed) or the operator found (settled)
    client_ids: tuple[int, ...] = ()
    #: the order tickets the gateway reported (executed) or the operator found (settled)
    orders: tuple[int, ...] = ()
    #: who said so: ``gateway`` or ``operator``
    by: str = "gateway"
    #: which journal generation was current then (0 = the first journal of the run)
    generation: int = 0
    note: str = field(default="", compare=False)

    def line(self) -> str:
        """The JSON line stored for it."""
        return json.dumps(asdict(self), sort_keys=True)


def _parse(line: str) -> Final | None:
    try:
        data = json.loads(line)
        return Final(
            str(data["key"]), data["outcome"], tuple(int(c) for c in data["client_ids"]),
            tuple(int(o) for o in data["orders"]), str(data["by"]), int(data["generation"]),
            str(data.get("note", "")),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None  # a torn last line: the key is not final in memory


class ClientMemory:
    """The append-only file of final keys (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Final]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            parsed = _parse(line)
            if parsed is not None:
                yield parsed

    def finals(self) -> dict[str, Final]:
        """Every final key and the first thing the client was told about it."""
        known: dict[str, Final] = {}
        for final in self:
            known.setdefault(final.key, final)
        return known

    def all(self) -> list[Final]:
        """Every record, in the order written (a key may appear more than once)."""
        return list(self)

    def append(self, final: Final) -> None:
        """Record ``final`` durably (flushed and fsync'd) before the client acts on it. A line
        torn by a kill is closed first, so it cannot swallow this one."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(descriptor).st_size
            torn = size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"
            os.write(descriptor, (("\n" if torn else "") + final.line() + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
