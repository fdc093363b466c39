"""The quick reference works as written: every ``$ mt5gate ...`` line of its ``console`` blocks
runs, in order, as a real process in one fresh directory (a newcomer's first session), with the
exit code the page states (``# exit N``, else 0); every ``python`` block runs too."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKREF = ROOT / "docs" / "quickref.md"
MT5GATE = Path(sys.executable).with_name("mt5gate")
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(QUICKREF.read_text()) if lang == kind]


def _commands() -> list[tuple[list[str], int]]:
    commands = []
    for block in _blocks("console"):
        for line in block.splitlines():
            if not line.startswith("$ "):
                continue
            text = line[2:]
            expected = 0
            found = _EXIT.search(text)
            if found is not None:
                expected = int(found.group(1))
                text = text[: found.start()]
            commands.append((shlex.split(text), expected))
    return commands


def _env(tmp_path: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{MT5GATE.parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path)
    env["COLUMNS"] = "160"
    return env


def test_the_page_has_commands_for_every_section() -> None:
    verbs = {argv[1] for argv, _ in _commands()}
    assert all(argv[0] == "mt5gate" for argv, _ in _commands())
    assert {
        "price",
        "account",
        "positions",
        "history",
        "watch",
        "order",
        "close",
        "errors",
        "health",
        "journal",
    } <= verbs


def test_every_console_line_runs_in_order(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for argv, expected in _commands():
        done = subprocess.run(
            [str(MT5GATE), *argv[1:]],
            check=False,
            cwd=tmp_path,
            env=env,
            timeout=120,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        shown = f"$ {shlex.join(argv)}\n{done.stdout}\n{done.stderr}"
        assert done.returncode == expected, shown
        assert "Traceback" not in done.stderr, shown
        if argv[1] in ("price", "account", "positions", "health"):
            assert "SIMULATED" in done.stderr, shown
    # the second `buy` with the same key opened nothing: one BTCUSD position, then closed
    journal = subprocess.run(
        [str(MT5GATE), "journal", "list", "--json"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert journal.stdout.count('"first-order"') == 1, journal.stdout


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_blocks_run(tmp_path: Path, index: int) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(_blocks("python")[index])
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "pass" in done.stdout
