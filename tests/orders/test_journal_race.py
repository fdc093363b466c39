"""Processes that open one new journal file at the same moment (a gateway starting while
``mt5gate journal list`` or a test polls the file, two replicas on one file).

Found by running tests/orders/test_crash_recovery.py four times at once: the test's poller and
the gateway both found the new file empty, both ran the schema script, and the gateway died on
``table schema_version already exists``. Every opener must get a working journal.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mt5gate.orders import SqliteJournal

OPENERS = 6
ROUNDS = 4

#: Waits for a shared start time (the wall clock: the same in every process), then opens.
OPEN = """
import sys, time
from mt5gate.orders import SqliteJournal
start = float(sys.argv[2])
while time.time() < start:
    pass
with SqliteJournal(sys.argv[1]) as journal:
    client = journal.record_intent(5001, {"op": "place", "n": sys.argv[3]}, "k" + sys.argv[3])
    print(client.sequence)
"""


def _race(path: Path) -> list[subprocess.CompletedProcess[str]]:
    start = time.time() + 2.0  # after every child's imports
    children = [
        subprocess.Popen([sys.executable, "-c", OPEN, str(path), repr(start), str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(OPENERS)
    ]  # fmt: skip
    done = []
    for child in children:
        out, err = child.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return done


def test_processes_opening_one_new_journal_at_once_all_get_it(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        path = tmp_path / f"orders-{round_}.db"
        results = _race(path)
        failed = [(r.stderr.strip().splitlines() or ["(no output)"])[-1] for r in results
                  if r.returncode != 0]  # fmt: skip
        assert not failed, failed
        with SqliteJournal(path) as journal:
            keys = {journal.by_key(5001, f"k{n}") for n in range(OPENERS)}
        assert None not in keys
        assert len(keys) == OPENERS  # every opener wrote, each its own order
