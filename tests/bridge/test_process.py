"""The bridge as a real separate process (``python -m mt5gate.bridge.cli``), the CLI's refusals,
and an MT5SessionManager working through the bridge."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mt5gate import MT5SessionManager, OrderRequest
from mt5gate.bridge import cli
from mt5gate.models import Side
from mt5gate.sim import server_ms
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import HEDGING, TOKEN, BridgeProcess


@pytest.fixture
def launch() -> Iterator[Callable[..., BridgeProcess]]:
    """``launch(*args, clock=...)`` starts a bridge process; any still running after the test
    (a failed assertion) is stopped."""
    started: list[BridgeProcess] = []

    def start(*args: str, **options: tuple[str, ...]) -> BridgeProcess:
        started.append(BridgeProcess(*args, **options))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.stop()


def test_a_separate_bridge_process_serves_a_client_and_stops_on_sigterm(
    bridge_process: BridgeProcess,
) -> None:
    terminal = BridgeTerminal("127.0.0.1", bridge_process.port, token=TOKEN)
    assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    assert terminal.server_info is not None
    assert terminal.server_info["terminal"] == "sim"
    tick = terminal.symbol_info_tick("EURUSD")
    assert tick is not None
    assert tick.ask > tick.bid
    sent = terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                                "type_filling": 1, "price": tick.ask})  # fmt: skip
    assert sent is not None, terminal.last_error()
    assert sent.retcode == 10009
    assert terminal.positions_total() == 1
    code, err = bridge_process.stop()
    assert code == 0
    assert "SIMULATED" in err
    assert TOKEN not in err
    assert terminal.symbol_info_tick("EURUSD") is None
    assert terminal.last_error()[0] in (-10001, -10002)


def test_a_session_works_through_the_bridge(bridge_process: BridgeProcess) -> None:
    async def main() -> None:
        terminal = BridgeTerminal.from_url(f"bridge://127.0.0.1:{bridge_process.port}",
                                           token=TOKEN)  # fmt: skip
        async with MT5SessionManager(terminal=terminal, **HEDGING) as session:
            price = await session.get_price("EURUSD")
            assert price.ask > price.bid
            result = await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))
            assert result.retcode == 10009
            positions = await session.positions(symbol="EURUSD")
            assert [p.ticket for p in positions] == [result.order]

    asyncio.run(main())


def test_sim_start_sets_the_simulated_clock_of_a_bridge_process(
    token_file: Path, launch: Callable[..., BridgeProcess]
) -> None:
    """``--sim-start`` on a Saturday: the process says forex is closed and BTCUSD trades, and
    clients see that market (the tests' bridges start on a Tuesday morning instead)."""
    saturday = launch("--token-file", str(token_file), clock=("--sim-start", "2026-01-10T12:00"))
    terminal = BridgeTerminal("127.0.0.1", saturday.port, token=TOKEN)
    assert terminal.initialize(**HEDGING) is True
    terminal.symbol_select("BTCUSD", True)
    btc = terminal.symbol_info_tick("BTCUSD")
    assert btc is not None
    assert btc.time_msc // 86_400_000 == server_ms(2026, 1, 10) // 86_400_000  # that Saturday
    eur = terminal.symbol_info_tick("EURUSD")
    sent = terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                                "type_filling": 1, "price": eur.ask})  # fmt: skip
    assert sent is not None
    assert sent.retcode == 10018  # market closed
    terminal.close()
    code, err = saturday.stop()
    assert code == 0
    assert "server time Sat 2026-01-10 12:00; open now: BTCUSD, ETHUSD, LTCUSD, " in err
    assert "SOLUSD; closed: EURUSD" in err


def test_the_simulator_state_file_survives_a_restart(
    token_file: Path, tmp_path: Path, launch: Callable[..., BridgeProcess]
) -> None:
    state = tmp_path / "sim.json"
    first = launch("--token-file", str(token_file), "--state-file", str(state))
    terminal = BridgeTerminal("127.0.0.1", first.port, token=TOKEN)
    assert terminal.initialize(**HEDGING) is True
    tick = terminal.symbol_info_tick("EURUSD")
    terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                         "type_filling": 1, "price": tick.ask})  # fmt: skip
    terminal.close()
    assert first.stop()[0] == 0
    second = launch("--token-file", str(token_file), "--state-file", str(state))
    terminal = BridgeTerminal("127.0.0.1", second.port, token=TOKEN)
    assert terminal.initialize(**HEDGING) is True
    assert terminal.positions_total() == 1
    # the pinned clock went on from the saved time: a new order is not older than the first
    (first_position,) = terminal.positions_get()
    tick = terminal.symbol_info_tick("EURUSD")
    again = terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                                 "type_filling": 1, "price": tick.ask})  # fmt: skip
    assert again is not None
    assert again.retcode == 10009
    newest = max(terminal.positions_get(), key=lambda p: p.ticket)
    assert newest.time_msc >= first_position.time_msc
    terminal.close()
    assert second.stop()[0] == 0


# ------------------------------------------------------------------------------ the CLI


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def test_an_empty_token_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    empty.chmod(0o600)
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(empty))
    assert code == 2
    assert "is empty" in err


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_world_readable_token_file_is_refused(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file.chmod(0o644)
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(token_file))
    assert code == 2
    assert "chmod 600" in err


def test_a_missing_token_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(missing))
    assert code == 2
    assert "cannot read the token file" in err
    make_one = err.split("make one with ", 1)[1].strip()
    subprocess.run(["bash", "-c", make_one], check=True, timeout=30)  # what it says works
    assert len(cli.read_token(missing)) >= 32


def test_tls_needs_both_files_that_load(
    token_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(token_file),
                        "--tls-cert", "c.pem")  # fmt: skip
    assert code == 2
    assert "both --tls-cert and --tls-key" in err
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(token_file),
                        "--tls-cert", str(bogus), "--tls-key", str(bogus))  # fmt: skip
    assert code == 2
    assert "cannot load the TLS certificate" in err


def test_the_official_terminal_needs_the_metatrader5_package(
    token_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)  # not installed, whatever the host
    code, err = run_cli(capsys, "--terminal", "official", "--token-file", str(token_file))
    assert code == 2
    assert "Windows only" in err
    assert "docs/bridge.md" in err
    code, err = run_cli(capsys, "--terminal", "official", "--token-file", str(token_file),
                        "--state-file", "s.json")  # fmt: skip
    assert code == 2
    assert "--state-file is for --terminal sim only" in err
    code, err = run_cli(capsys, "--terminal", "official", "--token-file", str(token_file),
                        "--sim-start", "2026-01-06T10:00")  # fmt: skip
    assert code == 2
    assert "--sim-start is for --terminal sim only" in err


def test_a_bad_sim_start_is_a_usage_error(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--terminal", "sim", "--token-file", str(token_file), "--sim-start", "monday"])
    assert stopped.value.code == 2
    assert "'monday' is not an ISO 8601 time such as 2026-01-06T10:00" in capsys.readouterr().err


def test_the_official_terminal_is_the_metatrader5_module(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5gate.sim import metatrader5

    monkeypatch.setitem(sys.modules, "MetaTrader5", metatrader5)
    assert cli.build_terminal("official", None) is metatrader5


def test_a_port_in_use_is_reported(
    token_file: Path, capsys: pytest.CaptureFixture[str], bridge_process: BridgeProcess
) -> None:
    code, err = run_cli(capsys, "--terminal", "sim", "--token-file", str(token_file),
                        "--port", str(bridge_process.port))  # fmt: skip
    assert code == 1
    assert "cannot listen" in err


def test_serve_runs_until_sigterm_in_process(token_file: Path) -> None:
    """``serve()`` itself (the subprocess tests run it out of coverage's sight)."""
    from mt5gate.bridge.server import BridgeServer

    from .conftest import new_sim

    async def main() -> None:
        server = BridgeServer(new_sim(), token=TOKEN, port=0, terminal_kind="sim")
        task = asyncio.create_task(cli.serve(server))
        while server.port == 0:
            await asyncio.sleep(0.01)
        terminal = BridgeTerminal("127.0.0.1", server.port, token=TOKEN)
        assert await asyncio.to_thread(terminal.initialize) is True
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 10)
        terminal.close()

    asyncio.run(main())
