"""The README's bridge steps run as written, in order, in a fresh directory: the token file it
makes is private and accepted, and the bridge command serves a client holding that token."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from mt5gate.terminal.bridge import BridgeTerminal

ROOT = Path(__file__).resolve().parents[2]
MT5GATE = Path(sys.executable).with_name("mt5gate")
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _bridge_steps() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in _BLOCK.findall(readme) if "mt5gate bridge --terminal sim" in b]
    assert len(blocks) == 1, "the README has one sh block for the bridge"
    return [line for line in blocks[0].splitlines() if line.strip()]


def test_the_readme_makes_a_private_token_and_the_bridge_serves_with_it(tmp_path: Path) -> None:
    make_token, run_bridge = _bridge_steps()
    subprocess.run(["bash", "-c", make_token], cwd=tmp_path, check=True, timeout=30)
    token_file = tmp_path / "token.txt"
    assert token_file.stat().st_mode & 0o077 == 0  # the bridge refuses a file others can read
    token = token_file.read_text().strip()
    assert len(token) >= 32
    argv = shlex.split(run_bridge)
    assert argv[0] == ".venv/bin/mt5gate"
    # as written, plus --port 0: the test must not depend on 18812 being free
    command = [str(MT5GATE), *argv[1:], "--port", "0"]
    bridge = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert bridge.stdout is not None
        line = bridge.stdout.readline()
        assert line.startswith("mt5gate bridge listening on 127.0.0.1:"), line
        port = int(line.split(":")[1].split()[0])
        terminal = BridgeTerminal("127.0.0.1", port, token=token)
        assert terminal.initialize() is True, terminal.last_error()
        assert terminal.server_info is not None
        assert terminal.server_info["simulated"] is True
        terminal.shutdown()
    finally:
        bridge.send_signal(signal.SIGTERM)
        _out, err = bridge.communicate(timeout=15)
    assert token not in err
