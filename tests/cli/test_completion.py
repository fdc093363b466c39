"""Shell completion of the real ``mt5gate`` script: the commands, their options and the
sub-apps' commands complete, and ``--show-completion`` prints the script a shell sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_process import MT5GATE, environment


def _complete(home: Path, line: str) -> list[str]:
    """What bash completion offers for ``line`` (the word being typed is its last)."""
    words = line.split(" ")
    env = environment(home) | {"_MT5GATE_COMPLETE": "complete_bash",
                               "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}  # fmt: skip
    done = subprocess.run([str(MT5GATE)], cwd=home, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    ("line", "offered"),
    [("mt5gate pr", {"price"}), ("mt5gate po", {"positions"}),
     ("mt5gate price --acc", {"--account"}), ("mt5gate journal ", {"list", "show", "blocks"}),
     ("mt5gate order ", {"buy", "sell"})],
)  # fmt: skip
def test_commands_options_and_sub_commands_complete(
    tmp_path: Path, line: str, offered: set[str]
) -> None:
    assert offered <= set(_complete(tmp_path, line))


def test_nothing_runs_while_completing(tmp_path: Path) -> None:
    """Completing ``mt5gate price EU`` reads no account: no data directory is made."""
    _complete(tmp_path, "mt5gate price EU")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_is_shown_for_each_shell(tmp_path: Path, shell: str) -> None:
    done = subprocess.run([str(MT5GATE), "--show-completion", shell], cwd=tmp_path,
                          env=environment(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "_MT5GATE_COMPLETE" in done.stdout
