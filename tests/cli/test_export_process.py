"""``mt5gate rates`` / ``ticks`` as real processes: the progress bar shows on a terminal only
(never in a pipe, so never in a script's or a test's output), ``--quiet`` hides it, and Ctrl-C
leaves no file under the output's name and no temporary file either."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import pytest

from tests.cli.test_imports import _FRONT_ENDS, _GATEWAY, _RICH_HELP, loaded, present
from tests.cli.test_process import environment, show

#: An export that takes a while: a year of ticks, read a thousand at a time.
LONG: Final = ("ticks", "EURUSD", "--from", "2019-01-01", "--to", "2020-01-01", "--out",
               "year.csv", "--page-rows", "1000")  # fmt: skip
SHORT: Final = ("rates", "EURUSD", "M1", "--from", "2020-01-01", "--to", "2020-01-15",
                "--out", "fortnight.csv")  # fmt: skip
# A child started by a shell in the background inherits SIGINT ignored; this one wants Ctrl-C.
_WITH_CTRL_C: Final = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from mt5gate.cli import main; sys.exit(main())"
)
posix_only = pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal and SIGINT: POSIX")


def on_a_terminal(home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``mt5gate ARGS`` with stderr on a pseudo-terminal: exit code, stdout, and what the
    terminal showed."""
    import pty  # POSIX only

    controller, terminal = pty.openpty()
    env = {**environment(home), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    with subprocess.Popen([sys.executable, "-m", "mt5gate.cli", *args], cwd=home, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal,
                          text=True) as process:  # fmt: skip
        os.close(terminal)
        shown = _read_until_closed(controller, deadline=time.monotonic() + 120)
        out, _ = process.communicate(timeout=60)
    os.close(controller)
    return process.returncode, out, shown.decode("utf-8", "replace")


def _read_until_closed(fd: int, deadline: float) -> bytes:
    """Everything written to the terminal until the last writer closes it (EIO on Linux)."""
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@posix_only
def test_the_progress_bar_shows_on_a_terminal_and_quiet_hides_it(tmp_path: Path) -> None:
    code, out, shown = on_a_terminal(tmp_path, *SHORT)
    assert code == 0, shown
    assert "EURUSD M1" in shown
    assert "100%" in shown
    rows = int(out.split(" M1 bars")[0].replace(",", ""))
    assert f"{rows:,} rows" in shown  # the bar counts what was written
    code, out, quiet = on_a_terminal(tmp_path, *SHORT, "--quiet", "--force")
    assert code == 0, quiet
    assert "%" not in quiet
    assert "rows" not in quiet
    assert "SIMULATED" in quiet  # the terminal did get stderr


def test_a_pipe_gets_no_progress_bar(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mt5gate.cli", *SHORT], cwd=tmp_path,
                          env=environment(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, show(done)
    assert done.stdout.endswith("written to fortnight.csv\n")
    assert "\x1b[" not in done.stderr
    assert "%" not in done.stderr
    assert "rows" not in done.stderr


@posix_only
def test_ctrl_c_leaves_no_file_under_the_outputs_name(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", _WITH_CTRL_C, *LONG], cwd=tmp_path,
                          env=environment(tmp_path), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as exporting:  # fmt: skip
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".year.csv.*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        [part] = list(tmp_path.glob(".year.csv.*.part"))  # the export is writing
        while part.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        exporting.send_signal(signal.SIGINT)
        out, err = exporting.communicate(timeout=60)
    assert exporting.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert out == ""
    assert not (tmp_path / "year.csv").exists()
    assert list(tmp_path.glob("*.part")) + list(tmp_path.glob(".*.part")) == []


@pytest.mark.parametrize("command", [["rates", "--help"], ["modify", "--help"], ["halt", "--help"]])
def test_the_new_commands_help_loads_no_more(tmp_path: Path, command: list[str]) -> None:
    ours = tuple(n for n in _GATEWAY if n != "pydantic")  # typer loads pydantic itself
    assert present(loaded(tmp_path, *command), _FRONT_ENDS + ours + _RICH_HELP) == []


def test_an_export_on_its_own_session_loads_no_front_end(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "rates", "EURUSD", "D1", "--from", "2020-01-01", "--to",
                     "2020-01-10", "--out", "days.csv")  # fmt: skip
    assert "mt5gate.sim.terminal" in modules  # it did run, on the simulator
    assert present(modules, _FRONT_ENDS) == []
    assert "pyarrow" not in modules  # CSV does not need it
