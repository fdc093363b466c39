"""The operator's side of a lost journal: replacing the file (the accident), and the runbook
that lifts the block it causes.

The accident, at a kill (the gateway is dead): the journal in use is *retired* (copied with the
sqlite3 backup API into the run's archive, where the checker reads it later, then removed with
its WAL and shared-memory files) and replaced by an empty file, or by a backup taken with the
same API at an earlier kill.

The runbook, once the restarted gateway stopped with the account blocked, as a person would
follow it:

1. wait until the broker's history is complete (its known lag has passed since the gateway
   stopped: the history is what the next steps read);
2. list the broker's orders in our id namespace that the journal in use never issued (it knows
   no INTENT for them), and tell from each order's comment (``chaos-<i>``) which client key it
   belongs to;
3. record those keys as settled in the client's own memory, so that the client never sends
   them again (a journal that forgot a key cannot protect it: only the client can);
4. run the real ``mt5gate journal blocks --json`` (what was found) and ``mt5gate journal
   acknowledge --journal FILE --login N --note ...`` (lifts the block) commands.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mt5gate.orders.evidence import collect
from mt5gate.orders.journal import SqliteJournal
from tests.chaos.broker import ACCOUNT
from tests.chaos.checker import Ledger, key_of_comment
from tests.chaos.client import SETTLED, ClientMemory
from tests.chaos.client import Final as Told
from tests.chaos.processes import ROOT, environment

__all__ = [
    "Settlement",
    "backup",
    "issued_sequences",
    "mt5gate_command",
    "replace",
    "retire",
    "settle",
]

_SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def backup(journal: Path, target: Path) -> None:
    """A consistent copy of ``journal`` in ``target`` (the sqlite3 backup API), 0600."""
    target.unlink(missing_ok=True)
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    source = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def retire(journal: Path, archive: Path) -> None:
    """Keep the journal in use as ``archive`` (for the checker), then remove it for good."""
    backup(journal, archive)
    for suffix in ("", *_SIDE_FILES):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)


def replace(journal: Path, source: Path | None) -> None:
    """Put an empty file (``source`` None) or a copy of ``source`` where the journal was."""
    if source is None:
        os.close(os.open(journal, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return
    shutil.copyfile(source, journal)
    os.chmod(journal, 0o600)


def issued_sequences(journal: Path) -> set[int]:
    """Client sequences the journal issued (an INTENT exists), read-only (an empty file, not
    yet a journal, issued none)."""
    if journal.stat().st_size == 0:
        return set()
    with SqliteJournal(journal, readonly=True) as opened:
        return {s.client_id.sequence for s in opened.summaries(ACCOUNT.login)
                if s.request is not None}  # fmt: skip


def mt5gate_command(*args: str) -> list[str]:
    """The installed ``mt5gate`` command (beside this Python), or its entry point."""
    script = Path(sys.executable).with_name("mt5gate")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from mt5gate.cli import main; sys.exit(main())",
            *args]  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mt5gate_command(*args), capture_output=True, text=True, cwd=ROOT,
                          env=environment(), timeout=60, check=False)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the operator found and did."""

    keys: tuple[str, ...]  # keys whose orders the operator found at the broker
    new_keys: tuple[str, ...]  # of those, keys the client did not know final: settled now
    orders: int  # broker orders the journal never issued
    blocked: tuple[int, ...]  # sequences ``mt5gate journal blocks`` listed
    acknowledged: bool  # ``mt5gate journal acknowledge`` exited 0
    output: str  # what the two commands said (for the log)


def settle(
    journal: Path,
    read_ledger: Callable[[], Ledger],
    memory: ClientMemory,
    generation: int,
    stopped_at: float,
    history_delay_s: float,
) -> Settlement:
    """The runbook (module docstring): the ledger is read once the history's lag has passed
    since the gateway stopped (``stopped_at``, monotonic)."""
    time.sleep(max(stopped_at + history_delay_s + 1.0 - time.monotonic(), 0.0))
    ledger = read_ledger()
    evidence = collect(ACCOUNT.login, ledger.orders, ledger.deals)
    unknown = sorted(set(evidence) - issued_sequences(journal))
    by_key: dict[str, list[int]] = {}
    for sequence in unknown:
        for order in evidence[sequence].orders:
            key = key_of_comment(order.comment)
            if key is not None:
                by_key.setdefault(key, []).append(sequence)
    known = memory.finals()
    new_keys = tuple(sorted(set(by_key) - set(known)))
    for key in new_keys:
        sequences = by_key[key]
        tickets = sorted({t for s in sequences for t in evidence[s].tickets})
        memory.append(Told(key, SETTLED, tuple(sorted(set(sequences))), tuple(tickets),
                           "operator", generation, "found at the broker"))  # fmt: skip
    listed = _run("journal", "blocks", "--journal", str(journal), "--json")
    blocked = _blocked_sequences(listed.stdout)
    note = f"chaos operator: {len(unknown)} orders checked at the broker, {len(by_key)} keys " \
           "settled in the client's memory"  # fmt: skip
    ack = _run("journal", "acknowledge", "--journal", str(journal), "--login",
               str(ACCOUNT.login), "--note", note)  # fmt: skip
    output = "\n".join(x for x in (listed.stdout, listed.stderr, ack.stdout, ack.stderr) if x)
    return Settlement(tuple(sorted(by_key)), new_keys, len(unknown), blocked,
                      ack.returncode == 0, output)  # fmt: skip


def _blocked_sequences(text: str) -> tuple[int, ...]:
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    blocks = data if isinstance(data, list) else [data]
    return tuple(sorted({int(s) for b in blocks if isinstance(b, dict)
                         for s in b.get("sequences", ())}))  # fmt: skip
