"""The chaos run's processes: the broker, and gateways whose progress feed a thread follows.

Every child is started by the harness and ended by it (SIGTERM then SIGKILL, by its own pid);
none outlives the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from tests.chaos.broker import HOST, LISTENING

__all__ = [
    "ROOT", "BrokerProcess", "Feed", "GatewayProcess", "environment", "processes_mentioning",
    "write_token",
]  # fmt: skip

ROOT: Final = Path(__file__).resolve().parents[2]
_STOP_TIMEOUT_S: Final = 10.0


def write_token(path: Path) -> str:
    """A fresh random token in a 600 file (the bridge refuses a world-readable one)."""
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a test's leftovers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def environment() -> dict[str, str]:
    """The children's environment: this tree importable (``tests.chaos``), unbuffered output."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen[str], *, gently: bool) -> None:
    """End a child we started: SIGCONT (a paused one cannot die gently), SIGTERM first when
    ``gently``, SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
    if process.poll() is None and gently:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_TIMEOUT_S)
    if process.poll() is None:
        process.kill()
        process.wait(_STOP_TIMEOUT_S)


class BrokerProcess:
    """``python -m tests.chaos.broker`` on a free loopback port, its log in the work dir."""

    def __init__(self, workdir: Path, token_file: Path, *args: str) -> None:
        self.stats_file = workdir / "broker-stats.json"
        self._log = (workdir / "broker.log").open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            _python("tests.chaos.broker", "--port", "0", "--token-file", str(token_file),
                    "--stats-file", str(self.stats_file), *args),
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=ROOT, env=environment(),
        )  # fmt: skip
        self.port = self._read_port()

    def _read_port(self) -> int:
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True,
                         name="chaos-broker-stdout").start()  # fmt: skip
        try:
            line = lines.get(timeout=30.0)
        except queue.Empty:
            line = ""
        if not line.startswith(f"{LISTENING} {HOST}:"):
            self.stop()
            raise RuntimeError(f"the chaos broker did not start (said {line!r}); see broker.log")
        return int(line.split(f"{HOST}:", 1)[1].split()[0])

    def stats(self) -> dict[str, Any]:
        """What the broker last wrote to its stats file (empty if nothing yet)."""
        try:
            loaded: dict[str, Any] = json.loads(self.stats_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded

    def fresh_stats(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Stats written after this call began (two writes later: the first may have been
        under way already)."""
        first = int(self.stats().get("seq", 0))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.stats()
            if int(stats.get("seq", 0)) >= first + 2:
                return stats
            time.sleep(0.05)
        return self.stats()

    def stop(self) -> None:
        """SIGTERM (it writes its final stats), SIGKILL if it does not stop."""
        try:
            _stop(self.process, gently=True)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._log.close()


@dataclass(slots=True)
class Feed:
    """What a gateway said on stdout so far."""

    ready: bool = False
    ready_at: float = 0.0  # monotonic time of the ready line
    epoch: int = 0  # the fencing epoch it owns the account with
    final: int = 0
    finals_here: int = 0  # keys that became final in this run
    recovered: int = 0  # unresolved orders its start-up recovery reconciled
    waits: int = 0  # connect() met another live owner
    races: dict[str, int] = field(default_factory=dict)  # refused rogues: inflight / after
    blocked: bool = False
    probe: str = ""  # fenced: what the bridge did with its last read
    done: bool = False
    eof: bool = False


class GatewayProcess:
    """One run of ``python -m tests.chaos.gateway``; a thread follows its progress feed."""

    def __init__(self, args: list[str], log: IO[str], run: int) -> None:
        log.write(f"\n===== gateway run {run} =====\n")
        log.flush()
        self.run = run
        self.process = subprocess.Popen(
            _python("tests.chaos.gateway", *args), stdout=subprocess.PIPE, stderr=log,
            text=True, cwd=ROOT, env=environment(),
        )  # fmt: skip
        self.started = time.monotonic()
        self.feed = Feed()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._follow, daemon=True,
                                        name=f"chaos-gateway-{run}-stdout")  # fmt: skip
        self._reader.start()

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid

    def _follow(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            with self._changed:
                self._read(line.split())
                self._changed.notify_all()
        with self._changed:
            self.feed.eof = True
            self._changed.notify_all()

    def _read(self, words: list[str]) -> None:
        feed = self.feed
        head, fields = words[:1], dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if head == ["ready"]:
            feed.ready, feed.ready_at = True, time.monotonic()
            feed.final, feed.recovered = int(fields["final"]), int(fields["recovered"])
            feed.epoch = int(fields["epoch"])
        elif head == ["final"]:
            feed.final = int(words[1])
            feed.finals_here += 1
        elif head == ["waiting"]:
            feed.waits += 1
        elif head == ["race"]:
            feed.races[words[2]] = feed.races.get(words[2], 0) + 1
        elif head == ["blocked"]:
            feed.blocked = True
        elif head == ["fenced"]:
            feed.probe = fields.get("probe", "")
        elif head == ["done"]:
            feed.done = True

    def wait_until(self, until: float, reached: Callable[[Feed], bool]) -> bool:
        """Wait until ``reached(feed)``; False if the gateway's output ended (or ``until``, a
        monotonic time, passed) first."""

        def ok() -> bool:
            return reached(self.feed) or self.feed.eof

        with self._changed:
            self._changed.wait_for(ok, timeout=max(until - time.monotonic(), 0.0))
            return not self.feed.eof and reached(self.feed)

    def wait_for(self, until: float, ready: bool = False, final: int | None = None) -> bool:
        """Wait until the gateway is ready / has ``final`` keys final; False if it ended (or
        ``until`` passed) first."""
        return self.wait_until(
            until, lambda f: (not ready or f.ready) and (final is None or f.final >= final)
        )

    def alive(self) -> bool:
        """Whether it still runs (or is paused)."""
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL it now; True if it was alive (a real kill, not a corpse)."""
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(_STOP_TIMEOUT_S)
        return self.process.returncode == -signal.SIGKILL

    def pause(self) -> None:
        """SIGSTOP: it keeps its pid, its sockets and its lease, and runs no code."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def wait(self, until: float) -> int | None:
        """Its exit code, or None when ``until`` passed first."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(max(until - time.monotonic(), 0.0))
        return None

    def close(self) -> None:
        """Make sure it is gone and its pipe is drained."""
        _stop(self.process, gently=False)
        self._reader.join(_STOP_TIMEOUT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()
