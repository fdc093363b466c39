"""``mt5gate`` as a real process (the installed script and ``python -m mt5gate.cli``): exit
codes, stdout for scripts and stderr for people, state kept across processes, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from tests.cli.conftest import BANNER, SYMBOL

MT5GATE: Final = Path(sys.executable).parent / "mt5gate"
# A child started by a shell in the background inherits SIGINT ignored; this one wants Ctrl-C.
_WITH_CTRL_C: Final = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from mt5gate.cli import main; sys.exit(main())"
)


def environment(home: Path) -> dict[str, str]:
    """The caller's environment without ``MT5GATE_*`` settings, data in ``home/data``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT5GATE_")}
    env.pop("COLUMNS", None)
    env["MT5GATE_DATA_DIR"] = str(home / "data")
    return env


def mt5gate(home: Path, *args: str, stdin: str = "", module: bool = False,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``mt5gate ARGS`` (or ``python -m mt5gate.cli ARGS``) in ``home``."""
    command = [sys.executable, "-m", "mt5gate.cli"] if module else [str(MT5GATE)]
    return subprocess.run([*command, *args], cwd=home, env=environment(home), input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def show(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def test_price_json_goes_to_stdout_and_the_banner_to_stderr(tmp_path: Path) -> None:
    done = mt5gate(tmp_path, "price", "EURUSD", "--json")
    assert done.returncode == 0, show(done)
    [quote] = json.loads(done.stdout)
    assert quote["symbol"] == "EURUSD"
    assert done.stdout.startswith("[")
    assert BANNER in done.stderr
    assert "\x1b[" not in done.stdout + done.stderr  # not a terminal: no colour codes


def test_an_error_is_exit_3_without_a_traceback(tmp_path: Path) -> None:
    done = mt5gate(tmp_path, "price", "NOSUCH")
    assert done.returncode == 3, show(done)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-2].startswith("error: Not found:")
    assert lines[-1].startswith("hint: ")


def test_health_exit_codes(tmp_path: Path) -> None:
    passing = mt5gate(tmp_path, "health")
    assert passing.returncode == 0, show(passing)
    assert "PASS" in passing.stdout
    failing = mt5gate(tmp_path, "health", "--terminal", "official", "--json")
    assert failing.returncode == 2, show(failing)
    assert json.loads(failing.stdout)["status"] == "fail"


def test_a_position_opened_by_one_process_is_seen_by_the_next(tmp_path: Path) -> None:
    bought = mt5gate(tmp_path, "order", "buy", SYMBOL, "0.01", "--yes", "--json")
    assert bought.returncode == 0, show(bought)
    ticket = json.loads(bought.stdout)["order"]
    listed = mt5gate(tmp_path, "positions", "--json", module=True)
    assert listed.returncode == 0, show(listed)
    assert [p["ticket"] for p in json.loads(listed.stdout)] == [ticket]
    assert (tmp_path / "data" / "sim-demo.json").is_file()


def test_python_m_mt5gate_cli_help(tmp_path: Path) -> None:
    done = mt5gate(tmp_path, "--help", module=True)
    assert done.returncode == 0, show(done)
    assert "Usage: mt5gate [OPTIONS] COMMAND [ARGS]..." in done.stdout
    bare = mt5gate(tmp_path, module=True)
    assert bare.returncode == 2, show(bare)
    assert "Usage: mt5gate" in bare.stdout + bare.stderr


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_ends_a_watch_with_exit_0(tmp_path: Path) -> None:
    command = [sys.executable, "-c", _WITH_CTRL_C, "watch", SYMBOL, "--json", "-i", "0.05"]
    with subprocess.Popen(command, cwd=tmp_path, env=environment(tmp_path), text=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as watching:  # fmt: skip
        assert watching.stdout is not None
        first = watching.stdout.readline()  # the watch is running
        assert json.loads(first)["symbol"] == SYMBOL
        watching.send_signal(signal.SIGINT)
        out, err = watching.communicate(timeout=60)
    assert watching.returncode == 0, err
    assert "interrupted" in err
    assert "Traceback" not in err
    for line in out.splitlines():
        assert json.loads(line)["symbol"] == SYMBOL


def test_an_answer_from_a_pipe_leaves_stdout_pure_json(tmp_path: Path) -> None:
    """ui.py: "stdout carries the answer (a table, or JSON with --json) and nothing else".
    ``typer.confirm(..., err=True)`` writes the prompt to stderr but its last space to stdout
    (click calls ``input(" ")``), so stdout starts with a space before the JSON."""
    done = mt5gate(tmp_path, "order", "buy", SYMBOL, "0.01", "--json", stdin="y\n")
    assert done.returncode == 0, show(done)
    assert "Send this buy order? [y/N]" in done.stderr
    assert done.stdout.startswith("{"), repr(done.stdout[:10])


def test_a_prompt_at_end_of_input_leaves_the_error_on_its_own_line(tmp_path: Path) -> None:
    """Without --yes and with no answer (a script, Ctrl-D), the prompt's line is never ended:
    stderr reads ``Send this buy order? [y/N]:error: not sent``."""
    done = mt5gate(tmp_path, "order", "buy", SYMBOL, "0.01")
    assert done.returncode == 1, show(done)
    assert "error: not sent" in done.stderr
    assert "error: not sent" in done.stderr.splitlines(), show(done)
