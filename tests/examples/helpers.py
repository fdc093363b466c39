"""Helpers that run ``examples/*.py`` as real child processes, as a reader would run them.

Each example runs with ``sys.executable`` in a temporary working directory, with an environment
built from an allow-list (no API keys, tokens or mt5gate settings of the developer's shell leak
in). Short scripts are run to completion with their output captured (``subprocess.run`` reads
both pipes); long-running ones (servers, the bot) write their output to a file, never to a pipe
nobody reads: a full pipe would block the child on its next log line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.service.conftest import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: What a child may inherit from the test's environment; everything else is left out.
_INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
    "VIRTUAL_ENV",
)


def example_env(**extra: str) -> dict[str, str]:
    """A minimal environment for an example (plus ``extra``)."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(PYTHONUNBUFFERED="1", PYTHONNOUSERSITE="1", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def run_example(
    name: str, *args: str, cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` to completion and return its exit code and output."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=example_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Running:
    """A long-running example: its process and the file its output goes to."""

    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait, and return the exit code and everything it wrote."""
        return terminate(self.process), self.output()


def start_example(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Running:
    """Start ``examples/<name>`` in the background, its stdout and stderr going to a file."""
    log = cwd / f"{Path(name).stem}-{time.monotonic_ns()}.log"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args],
            cwd=cwd,
            env=env or example_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    return Running(process, log)


def wait_http(running: Running, url: str, ready: Callable[[httpx.Response], bool]) -> None:
    """Poll ``url`` until ``ready(response)``; fail with the child's output if it dies or
    takes more than 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(
                f"the example exited {running.process.returncode}:\n{running.output()}"
            )
        try:
            if ready(httpx.get(url, timeout=2.0)):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    running.stop()
    raise AssertionError(f"{url} did not answer within 30 s:\n{running.output()}")


__all__ = [
    "EXAMPLES",
    "ROOT",
    "Running",
    "example_env",
    "free_port",
    "run_example",
    "start_example",
    "wait_http",
]
