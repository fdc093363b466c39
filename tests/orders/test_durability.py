"""An intent is on disk before record_intent returns: proven by SIGKILL in a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mt5gate.orders import EventKind, SqliteJournal

_CHILD = """
import os, signal, sys
from mt5gate.orders import SqliteJournal
journal = SqliteJournal(sys.argv[1])
cid = journal.record_intent(5001, {"symbol": "EURUSD", "volume": 0.1}, "order-A")
print(cid.sequence, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_child(path: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    return int(child.stdout.strip())


def test_intent_survives_sigkill_right_after_return(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    sequence = _run_child(path)
    with SqliteJournal(path) as journal:
        [event] = journal.history(5001, sequence)
        assert event.kind is EventKind.INTENT
        assert event.request == {"symbol": "EURUSD", "volume": 0.1}
        assert journal.unresolved() == [event.client_id]
        assert journal.next_id(5001).sequence > sequence  # the sequence survived: never reused
    assert _run_child(path) == sequence  # the same key after a crash maps to the same order
