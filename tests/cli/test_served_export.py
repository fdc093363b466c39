"""``mt5gate rates`` / ``ticks`` through a real ``mt5gate serve`` on loopback: its API answers at
most 10,000 rows a call and has no cursor, so the command pages by time; the files hold the same
rows as an export on a session of the command's own, none lost or repeated at a page boundary.

Two services: the simulated demo account (deep history to 2010: the times of January 2020 are
the same on any simulator), and an account on a real bridge whose simulator replays a recorded
morning with up to a dozen ticks per millisecond (``tests/cli/ticks_data.py``, its clock pinned),
so those files are known to the last digit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from mt5gate.cli.failures import Exit
from mt5gate.cli.paging import PAGE_ROWS
from mt5gate.cli.ui import VIA_SERVICE
from mt5gate.constants import CopyTicks
from mt5gate.records import RATES_DTYPE, TICKS_DTYPE
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.config import demo_accounts
from tests.bridge.conftest import TOKEN, ServedBridge
from tests.cli.conftest import BRIDGE_PASSWORD, Cli, assert_error, explain, flat
from tests.cli.test_export import JANUARY, MONDAY, leftovers, read_csv, span_options
from tests.cli.ticks_data import SECOND_MOST, SPAN, recorded_ticks, write_tick_file
from tests.service.conftest import Served, start_service

_PASSWORD_ENV: Final = "CLI_TEST_RECORDED_PASSWORD"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``mt5gate serve`` of the simulated demo account."""
    served = start_service(tmp_path_factory.mktemp("served-export") / "data")
    yield served
    served.stop()


@dataclasses.dataclass(frozen=True)
class Recorded:
    """``mt5gate serve`` of account ``recorded``, on a bridge whose simulator replays the
    recorded morning; the configuration both it and the commands read."""

    served: Served
    config: Path
    sim: SimTerminal


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    home = tmp_path_factory.mktemp("served-recorded")
    accounts = tuple(dataclasses.replace(a, password=BRIDGE_PASSWORD) if a.login == 5001 else a
                     for a in demo_accounts())  # fmt: skip
    sim = SimTerminal(SimConfig(accounts=accounts, history_days=1),
                      clock=VirtualClock(server_ms(2026, 1, 6, 10)))  # fmt: skip
    sim.market.load_ticks_csv("EURUSD", write_tick_file(home / "recorded.tsv"))
    bridge = ServedBridge(sim, terminal_kind="sim")
    token = home / "bridge-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    config = home / "recorded.toml"
    config.write_text(f'[[accounts]]\nname = "recorded"\nterminal = "bridge://127.0.0.1:'
                      f'{bridge.port}"\nlogin = 5001\nserver = "MetaQuotes-Demo"\n'
                      f'password_env = "{_PASSWORD_ENV}"\ntoken_file = "{token}"\n')  # fmt: skip
    config.chmod(0o600)
    served = start_service(home / "data", "--config", str(config),
                           env={_PASSWORD_ENV: BRIDGE_PASSWORD})  # fmt: skip
    try:
        yield Recorded(served, config, sim)
    finally:
        served.stop()
        bridge.close()


@pytest.fixture
def routed(cli: Cli, serve: Served, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The command on the demo service's data directory: it goes through the service."""
    monkeypatch.setenv("MT5GATE_DATA_DIR", str(serve.data_dir))
    return Cli(cli.home, serve.data_dir)


def on_own_session(cli: Cli) -> dict[str, str]:
    """The environment of a command on its own data directory (no service owns it there)."""
    return {"MT5GATE_DATA_DIR": str(cli.home / "own")}


def test_a_month_of_m1_bars_through_the_service_is_the_same_as_on_a_session(
    routed: Cli, serve: Served
) -> None:
    through = routed.run("rates", "EURUSD", "M1", *JANUARY, "--out", "served.csv")
    assert through.exit_code == 0, explain(through)
    assert VIA_SERVICE.format(url=serve.base, account="demo") in flat(through.stderr)
    routed.ok("rates", "EURUSD", "M1", *JANUARY, "--out", "own.csv", env=on_own_session(routed))
    served = read_csv(routed.home / "served.csv", RATES_DTYPE)
    own = read_csv(routed.home / "own.csv", RATES_DTYPE)
    assert len(served) > 3 * PAGE_ROWS  # four calls of the API at least
    assert [row[0] for row in served] == [row[0] for row in own]
    assert len({row[0] for row in served}) == len(served)


def test_a_day_of_ticks_through_the_service_in_small_pages(routed: Cli) -> None:
    """Pages of 997 rows: some sixty boundaries in one day."""
    args = ("ticks", "EURUSD", *MONDAY, "--page-rows", "997")
    routed.ok(*args, "--out", "served.csv")
    routed.ok(*args, "--out", "own.csv", env=on_own_session(routed))
    served = [row[5] for row in read_csv(routed.home / "served.csv", TICKS_DTYPE)]
    own = [row[5] for row in read_csv(routed.home / "own.csv", TICKS_DTYPE)]
    assert len(served) > 2 * PAGE_ROWS
    assert served == own


def test_an_unknown_symbol_through_the_service_is_exit_3_and_leaves_no_file(routed: Cli) -> None:
    result = routed.run("ticks", "NOSUCH", *MONDAY, "--out", "nosuch.csv")
    assert_error(result, Exit.MT5, "Not found")
    assert not (routed.home / "nosuch.csv").exists()
    assert leftovers(routed.home) == []


# -------------------------------------------------------------------- ties, through the API


def through_recorded(cli: Cli, recorded: Recorded, *args: str) -> tuple[int, str]:
    """``mt5gate ARGS`` on account ``recorded`` (through its service): exit code, stderr."""
    env = {"MT5GATE_DATA_DIR": str(recorded.served.data_dir), _PASSWORD_ENV: BRIDGE_PASSWORD}
    result = cli.run(*args, "--config", str(recorded.config), env=env)
    return result.exit_code, result.stderr


def test_ticks_sharing_a_millisecond_through_the_service_are_each_written_once(
    cli: Cli, recorded: Recorded
) -> None:
    """Pages one larger than the busiest second (some 140 calls: past the key's burst, so the
    command also waits out the service's rate limit), then of a hundred."""
    for page_rows in (SECOND_MOST + 1, 100):
        out = f"recorded-{page_rows}.csv"
        code, err = through_recorded(cli, recorded, "ticks", "EURUSD", *span_options(),
                                     "--out", out, "--page-rows", str(page_rows))  # fmt: skip
        assert code == 0, err
        assert f"via mt5gate serve at {recorded.served.base}" in flat(err)
        assert read_csv(cli.home / out, TICKS_DTYPE) == recorded_ticks().tolist(), page_rows


def test_trade_ticks_through_the_service_are_those_mt5_keeps(cli: Cli, recorded: Recorded) -> None:
    """The service's route has no filter: the command keeps what COPY_TICKS_TRADE keeps."""
    code, err = through_recorded(cli, recorded, "ticks", "EURUSD", *span_options(), "--flags",
                                 "trade", "--out", "trades.csv")  # fmt: skip
    assert code == 0, err
    mt5 = recorded.sim.copy_ticks_range("EURUSD", SPAN[0], SPAN[1], int(CopyTicks.TRADE))
    kept = read_csv(cli.home / "trades.csv", TICKS_DTYPE)
    assert kept == mt5.tolist()
    assert 0 < len(kept) < len(recorded_ticks())


def test_a_second_busier_than_a_page_through_the_service_is_refused(
    cli: Cli, recorded: Recorded
) -> None:
    code, err = through_recorded(cli, recorded, "ticks", "EURUSD", *span_options(), "--out",
                                 "busy.csv", "--page-rows", str(SECOND_MOST))  # fmt: skip
    assert code == Exit.MT5, err
    assert f"more than {SECOND_MOST} ticks of EURUSD in the second" in err
    assert list(cli.home.glob("*busy*")) == []
