"""``mt5gate bridge --terminal sim --faults plan.toml``: chaos tests without writing Python.

Each test starts the real command (``python -m mt5gate.cli bridge``) with a fault plan file and
talks to it with a real BridgeTerminal.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mt5gate.bridge import cli
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import HEDGING, MT5GATE_BRIDGE, TOKEN, BridgeProcess

BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}

Start = Callable[..., BridgeProcess]


def plan_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return str(path)


def attached(bridge: BridgeProcess) -> BridgeTerminal:
    terminal = BridgeTerminal("127.0.0.1", bridge.port, token=TOKEN, call_timeout_s=10.0)
    assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    return terminal


def test_a_lost_reply_fires_on_order_send_while_the_order_executes(
    start_bridge: Start, tmp_path: Path
) -> None:
    plan = plan_file(tmp_path, '[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\n'
                     "times = 1\n")  # fmt: skip
    bridge = start_bridge("--faults", plan, command=MT5GATE_BRIDGE)
    terminal = attached(bridge)
    assert terminal.order_send(dict(BUY)) is None
    assert terminal.last_error()[0] == -10002
    positions = terminal.positions_get()  # the ledger: the order did execute
    assert positions is not None
    assert [p.volume for p in positions] == [0.1]
    deals = terminal.history_deals_get(position=positions[0].ticket)
    assert deals is not None
    assert len(deals) == 1
    again = terminal.order_send(dict(BUY))  # times = 1: the next send is answered
    assert again is not None
    assert again.retcode == 10009
    terminal.close()
    code, err = bridge.stop()
    assert code == 0
    assert "fault plan with 1 fault(s), history delayed by 0 ms, seed 0" in err


def test_late_history_hides_a_fresh_deal_for_the_configured_delay(
    start_bridge: Start, tmp_path: Path
) -> None:
    bridge = start_bridge("--faults", plan_file(tmp_path, "[history]\ndelay_ms = 1500\n"),
                          command=MT5GATE_BRIDGE)  # fmt: skip
    terminal = attached(bridge)
    sent = terminal.order_send(dict(BUY))
    assert sent is not None
    assert sent.retcode == 10009
    executed = time.monotonic()
    assert terminal.positions_total() == 1  # the position is there at once ...
    assert terminal.history_deals_get(position=sent.order) == ()  # ... its deal is not
    assert terminal.history_orders_get(ticket=sent.order) == ()
    while not terminal.history_deals_get(position=sent.order):
        assert time.monotonic() - executed < 10.0, "the deal never reached history"
        time.sleep(0.1)
    assert time.monotonic() - executed >= 1.2  # ~1.5 s, measured from after the send
    terminal.close()


def test_a_dropped_trade_server_link_comes_back_after_restore_after(
    start_bridge: Start, tmp_path: Path
) -> None:
    plan = plan_file(tmp_path, '[[fault]]\nkind = "disconnect"\nfunctions = ["order_send"]\n'
                     "times = 1\nrestore_after = 1\n")  # fmt: skip
    terminal = attached(start_bridge("--faults", plan))
    refused = terminal.order_send(dict(BUY))
    assert refused is not None
    assert refused.retcode == 10031  # no connection with the trade server
    assert terminal.terminal_info().connected is False
    time.sleep(1.2)
    assert terminal.terminal_info().connected is True
    sent = terminal.order_send(dict(BUY))
    assert sent is not None
    assert sent.retcode == 10009
    terminal.close()


def test_a_bad_plan_is_one_line_and_exit_2_before_anything_listens(
    token_file: Path, tmp_path: Path
) -> None:
    plan = plan_file(tmp_path, '[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\n'
                     'times = 1\n\n[[fault]]\nkind = "hang"\nfunctions = ["order_send"]\n'
                     "times = 1\nsecs = 3\n")  # fmt: skip
    done = subprocess.run(
        [*MT5GATE_BRIDGE, "--terminal", "sim", "--port", "0", "--token-file", str(token_file),
         "--faults", plan],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "listening" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"mt5gate bridge: --faults {plan}: fault 2 (hang): unknown key 'secs' (expected kind, "
        "functions, probability, times, after, when, seconds, code)"
    ]


# --------------------------------------------------------------- the CLI, in this process


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[fault]]\nkind = "explode"\n', "fault 1: kind: 'explode' is not a fault kind"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\nprobability = 2\n',
         "fault 1 (reply_lost): probability: must be within 0..1, got 2"),
        ('[[fault]]\nkind = "ipc_error"\nfunctions = ["buy"]\ntimes = 1\n',
         "fault 1 (ipc_error): functions: 'buy' is not a terminal function"),
    ],
)  # fmt: skip
def test_the_cli_refuses_a_bad_plan(
    token_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    plan = plan_file(tmp_path, text)
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(token_file),
                        "--faults", plan)  # fmt: skip
    assert code == 2
    assert f"mt5gate bridge: --faults {plan}: {message}" in err


def test_faults_are_for_the_simulator_only(
    token_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_file(tmp_path, "")
    code, err = run_cli(capsys, "--terminal", "official", "--token-file", str(token_file),
                        "--faults", plan)  # fmt: skip
    assert code == 2
    assert "--faults is for --terminal sim only" in err


def test_the_plan_builds_the_simulator_it_describes(tmp_path: Path) -> None:
    text = 'seed = 3\n[history]\ndelay_ms = 250\n[[fault]]\nkind = "restart"\n'
    path = Path(plan_file(tmp_path, text + 'functions = ["account_info"]\ntimes = 2\n'))
    plan = cli.read_plan(path)
    assert cli.read_plan(None) is None
    terminal: Any = cli.build_terminal("sim", None, plan)
    assert isinstance(terminal, SimTerminal)
    assert terminal.config.broker.history_delay_ms == 250
    assert terminal.faults.seed == 3
    assert terminal.faults.active
