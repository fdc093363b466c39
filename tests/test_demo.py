"""The README's demo command runs end to end on the simulator and says it is simulated."""

from __future__ import annotations

import io
import subprocess
import sys

from mt5gate import demo
from mt5gate.demo import main, run_demo
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.market import default_catalogue


def test_demo_trades_on_a_weekday() -> None:
    out = io.StringIO()
    assert run_demo(VirtualClock(server_ms(2026, 1, 6, 10)), out)
    text = out.getvalue()
    assert text.splitlines()[0].startswith("mt5gate demo -- SIMULATED")
    assert "account 5001 on MetaQuotes-Demo" in text
    assert "EURUSD: bid" in text
    assert "bought 0.01 EURUSD" in text
    assert "2 deals in history" in text
    assert text.rstrip().endswith("done")


def test_demo_trades_crypto_at_the_weekend() -> None:
    out = io.StringIO()
    assert run_demo(VirtualClock(server_ms(2026, 1, 10, 12)), out)  # a Saturday
    assert "bought 0.01 BTCUSD" in out.getvalue()


def test_demo_says_what_trades_now() -> None:
    out = io.StringIO()
    assert run_demo(VirtualClock(server_ms(2026, 1, 10, 12)), out)  # a Saturday
    assert (
        "markets: server time Sat 2026-01-10 12:00; open now: BTCUSD, ETHUSD, LTCUSD, XRPUSD, "
        "BCHUSD, SOLUSD; closed: EURUSD"
    ) in out.getvalue()


def test_demo_with_no_market_open_says_so() -> None:
    out = io.StringIO()
    clock = VirtualClock(server_ms(2026, 1, 10, 12))
    crypto_closed = SimConfig(
        symbols=tuple(s for s in default_catalogue() if s.name in ("EURUSD", "USDJPY", "XAUUSD"))
    )
    terminal = SimTerminal(crypto_closed, clock=clock)
    terminal.initialize()
    assert not demo._trade(terminal, out)
    assert "no market is open now" in out.getvalue()


def test_demo_module_runs_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mt5gate.demo", "--virtual-time"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SIMULATED" in done.stdout


def test_main_returns_zero_in_process(capsys: object) -> None:
    assert main(["--virtual-time"]) == 0
