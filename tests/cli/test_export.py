"""``mt5gate rates`` and ``mt5gate ticks`` on the command's own session: ranges longer than one
call of the HTTP API (10,000 rows) written whole to CSV or Parquet, read in pages, each row once;
what is refused before anything is connected; what an empty range, an unknown symbol and a
second too busy to page past leave behind (nothing under the output's name).

The simulator's deep history reaches back to 2010: January 2020 is 33,075 M1 bars of EURUSD,
Monday 2020-01-06 57,164 ticks, the same times on any day the tests run. A recorded morning with
many ticks per millisecond (``tests/cli/ticks_data.py``) is served by a real bridge on loopback,
its simulator's clock pinned, so its rows are known to the last digit. The command as a real
process (pipes, a terminal, Ctrl-C): ``test_export_process.py``; through ``mt5gate serve``:
``test_served_export.py``.
"""

from __future__ import annotations

import asyncio
import csv
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest

from mt5gate.cli.failures import Exit
from mt5gate.cli.paging import PAGE_ROWS
from mt5gate.cli.port import Array
from mt5gate.cli.target import AccountChoice, build_session, close_session, resolve_target
from mt5gate.constants import CopyTicks, Timeframe
from mt5gate.records import RATES_DTYPE, TICKS_DTYPE
from tests.cli.conftest import (
    BANNER,
    BRIDGE_PASSWORD,
    Bridge,
    Cli,
    assert_error,
    assert_simulated,
)
from tests.cli.ticks_data import SECOND_MOST, SPAN, recorded_ticks, write_tick_file

JANUARY: Final = ("--from", "2020-01-01", "--to", "2020-02-01")
JANUARY_S: Final = (1577836800, 1580515200)
MONDAY: Final = ("--from", "2020-01-06", "--to", "2020-01-07")
MONDAY_S: Final = (1578268800, 1578355200)
#: Each column's type in a CSV row, by field: the record's own.
_TYPES: Final = {"f": float, "i": int, "u": int}


def read_csv(path: Path, dtype: np.dtype[Any]) -> list[tuple[Any, ...]]:
    """The file's rows, typed as the record's fields; its header must be the fields' names."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == list(dtype.names or ())
    kinds = [_TYPES[dtype.fields[n][0].kind] for n in dtype.names or ()]  # type: ignore[index]
    return [tuple(kind(cell) for kind, cell in zip(kinds, row, strict=True)) for row in rows[1:]]


def direct(cli: Cli, read: str, *args: Any, **kwargs: Any) -> Array:
    """``session.<read>(*args, **kwargs)`` on the session a command builds for the demo
    account (its simulator, on the real clock): what the export must equal."""
    env = {"MT5GATE_DATA_DIR": str(cli.data_dir)}
    target = resolve_target(AccountChoice(), env)

    async def reading() -> Array:
        session = build_session(target, env)
        try:
            await session.connect()
            found: Array = await getattr(session, read)(*args, **kwargs)
            return found
        finally:
            await close_session(session)

    return asyncio.run(reading())


def leftovers(folder: Path) -> list[str]:
    """Temporary files an export left behind (none, ever)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# ----------------------------------------------------------------------------- bars, ticks


def test_a_month_of_m1_bars_is_written_whole_in_pages(cli: Cli) -> None:
    result = cli.ok("rates", "EURUSD", "M1", *JANUARY, "--out", "eurusd.csv")
    assert_simulated(result)
    rows = read_csv(cli.home / "eurusd.csv", RATES_DTYPE)
    assert len(rows) > 3 * PAGE_ROWS  # more than three calls of the HTTP API
    assert result.stdout == (f"{len(rows):,} M1 bars of EURUSD (2020-01-01 00:00:00 .. "
                             "2020-02-01 00:00:00) written to eurusd.csv\n")  # fmt: skip
    times = [row[0] for row in rows]
    assert times == sorted(set(times))  # in order, none twice
    whole = direct(cli, "get_rates", "EURUSD", int(Timeframe.M1), date_from=JANUARY_S[0],
                   date_to=JANUARY_S[1])  # fmt: skip
    assert times == whole["time"].tolist()
    assert JANUARY_S[0] <= times[0]
    assert times[-1] <= JANUARY_S[1]
    assert leftovers(cli.home) == []
    assert "rows" not in result.stderr  # not a terminal: no progress bar


def test_a_day_of_ticks_is_written_whole_in_pages(cli: Cli) -> None:
    summary = cli.json("ticks", "EURUSD", *MONDAY, "--out", "monday.csv")
    rows = read_csv(cli.home / "monday.csv", TICKS_DTYPE)
    assert len(rows) > 2 * PAGE_ROWS
    whole = direct(cli, "get_ticks", "EURUSD", MONDAY_S[0], date_to=MONDAY_S[1])
    assert [row[5] for row in rows] == whole["time_msc"].tolist()
    assert summary == {
        "path": "monday.csv", "format": "csv", "symbol": "EURUSD", "timeframe": None,
        "flags": "all", "from": MONDAY_S[0], "to": MONDAY_S[1], "rows": len(rows),
        "first_time": rows[0][0], "last_time": rows[-1][0],
    }  # fmt: skip


def test_other_timeframes_and_a_format_option(cli: Cli) -> None:
    cli.ok("rates", "EURUSD", "h1", *JANUARY, "--out", "hourly.data", "--format", "csv")
    rows = read_csv(cli.home / "hourly.data", RATES_DTYPE)
    whole = direct(cli, "get_rates", "EURUSD", int(Timeframe.H1), date_from=JANUARY_S[0],
                   date_to=JANUARY_S[1])  # fmt: skip
    assert [row[0] for row in rows] == whole["time"].tolist()
    assert {row[0] % 3600 for row in rows} == {0}


# ------------------------------------------------------------------ ties at page boundaries


def on_bridge(bridge: Bridge) -> tuple[str, ...]:
    """The options that reach the bridge's account (its simulator holds the recorded ticks)."""
    return ("--terminal", bridge.url, "--token-file", str(bridge.token_file), "--login", "5001",
            "--server", "MetaQuotes-Demo")  # fmt: skip


@pytest.fixture
def recorded(cli: Cli, bridge: Bridge) -> tuple[str, ...]:
    """The bridge's simulator replays the recorded morning; the options to reach it."""
    bridge.sim.market.load_ticks_csv("EURUSD", write_tick_file(cli.home / "recorded.tsv"))
    return on_bridge(bridge)


def span_options() -> tuple[str, ...]:
    """:data:`SPAN`: 10:00 to 12:00 on the recorded Monday."""
    return ("--from", "2026-01-05T10:00", "--to", "2026-01-05T12:00")


def test_ticks_sharing_a_millisecond_are_each_written_once(
    cli: Cli, recorded: tuple[str, ...]
) -> None:
    """Pages one larger than the busiest second: most boundaries fall inside a run of ticks
    with one ``time_msc``. The file is the recorded ticks, to the last digit."""
    env = {"MT5GATE_PASSWORD": BRIDGE_PASSWORD}
    for page_rows in (SECOND_MOST + 1, PAGE_ROWS):
        out = f"recorded-{page_rows}.csv"
        cli.ok("ticks", "EURUSD", *span_options(), "--out", out, "--page-rows", str(page_rows),
               *recorded, env=env)  # fmt: skip
        assert read_csv(cli.home / out, TICKS_DTYPE) == recorded_ticks().tolist(), page_rows


@pytest.mark.parametrize("flags", ["info", "trade"])
def test_flags_keep_the_ticks_mt5_keeps(
    cli: Cli, bridge: Bridge, recorded: tuple[str, ...], flags: str
) -> None:
    env = {"MT5GATE_PASSWORD": BRIDGE_PASSWORD}
    cli.ok("ticks", "EURUSD", *span_options(), "--flags", flags, "--out", "kept.csv",
           "--page-rows", str(SECOND_MOST + 1), *recorded, env=env)  # fmt: skip
    which = CopyTicks.INFO if flags == "info" else CopyTicks.TRADE
    mt5 = bridge.sim.copy_ticks_range("EURUSD", SPAN[0], SPAN[1], int(which))
    kept = read_csv(cli.home / "kept.csv", TICKS_DTYPE)
    assert kept == mt5.tolist()
    assert 0 < len(kept) <= len(recorded_ticks())
    assert (len(kept) < len(recorded_ticks())) == (flags == "trade")


def test_a_second_busier_than_a_page_is_refused_and_leaves_no_file(
    cli: Cli, recorded: tuple[str, ...]
) -> None:
    env = {"MT5GATE_PASSWORD": BRIDGE_PASSWORD}
    result = cli.run("ticks", "EURUSD", *span_options(), "--out", "busy.csv", "--page-rows",
                     str(SECOND_MOST), *recorded, env=env)  # fmt: skip
    assert_error(result, Exit.MT5, f"more than {SECOND_MOST} ticks of EURUSD in the second")
    assert "--page-rows" in result.stderr
    assert not (cli.home / "busy.csv").exists()
    assert leftovers(cli.home) == []


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (("rates", "EURUSD", "M7", *JANUARY, "--out", "x.csv"),
         ("TIMEFRAME: 'M7' is not a timeframe",)),
        (("rates", "EURUSD", "M1", "--from", "2020-02-01", "--to", "2020-01-01", "--out", "x.csv"),
         ("--to (2020-01-01 00:00:00) is before --from (2020-02-01 00:00:00)",)),
        (("ticks", "EURUSD", *MONDAY, "--out", "x.txt"),
         ("--out: 'x.txt' does not say its format",)),
        (("ticks", "EURUSD", *MONDAY, "--out", "."), ("is a directory",)),
        (("ticks", "EURUSD", *MONDAY, "--out", "nowhere/x.csv"),
         ("--out: there is no directory nowhere",)),
        (("ticks", "", *MONDAY, "--out", "x.csv"), ("symbol",)),
    ],
    ids=["timeframe", "to-before-from", "extension", "directory", "no-directory", "no-symbol"],
)  # fmt: skip
def test_a_mistake_on_the_command_line_is_exit_2_before_anything_is_connected(
    cli: Cli, args: tuple[str, ...], parts: tuple[str, ...]
) -> None:
    result = cli.run(*args)
    assert_error(result, Exit.USAGE, *parts)
    assert BANNER not in result.stderr  # refused before the account was even looked at
    assert sorted(p.name for p in cli.home.iterdir()) == []  # no file, no data directory


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(cli: Cli) -> None:
    kept = cli.write("eurusd.csv", "mine\n")
    result = cli.run("rates", "EURUSD", "D1", *JANUARY, "--out", "eurusd.csv")
    assert_error(result, Exit.USAGE, "--out: eurusd.csv exists")
    assert "--force" in result.stderr
    assert BANNER not in result.stderr
    assert kept.read_text() == "mine\n"
    cli.ok("rates", "EURUSD", "D1", *JANUARY, "--out", "eurusd.csv", "--force")
    rows = read_csv(kept, RATES_DTYPE)
    assert 20 <= len(rows) <= 23  # the trading days of January 2020
    assert leftovers(cli.home) == []


def test_parquet_without_pyarrow_names_the_extra(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    for args in (("--out", "x.parquet"), ("--out", "x.csv", "--format", "parquet")):
        result = cli.run("rates", "EURUSD", "M1", *JANUARY, *args)
        assert_error(result, Exit.USAGE, "--format parquet needs pyarrow, which is not installed")
        assert "pip install 'mt5gate[parquet]'" in result.stderr
    assert sorted(p.name for p in cli.home.iterdir()) == []


def test_an_unknown_symbol_is_exit_3_and_leaves_no_file(cli: Cli) -> None:
    result = cli.run("rates", "NOSUCH", "M1", *JANUARY, "--out", "nosuch.csv")
    assert_error(result, Exit.MT5, "Not found")
    assert not (cli.home / "nosuch.csv").exists()
    assert leftovers(cli.home) == []


def test_an_empty_range_writes_the_header_and_says_so(cli: Cli) -> None:
    """Saturday and Sunday: the forex market is closed, so there is no bar."""
    result = cli.ok("rates", "EURUSD", "M1", "--from", "2020-01-04", "--to",
                    "2020-01-05T12:00", "--out", "weekend.csv", "--json")  # fmt: skip
    assert json.loads(result.stdout)["rows"] == 0
    assert "no bars in that range" in result.stderr
    assert read_csv(cli.home / "weekend.csv", RATES_DTYPE) == []


# ---------------------------------------------------------------------------- parquet


def parquet_rows(path: Path) -> tuple[Any, list[tuple[Any, ...]]]:
    """A Parquet file's schema and rows."""
    parquet = importlib.import_module("pyarrow.parquet")
    table = parquet.read_table(path)
    columns = (table.column(name).to_pylist() for name in table.schema.names)
    assert parquet.ParquetFile(path).num_row_groups >= 1
    return table.schema, list(zip(*columns, strict=True))


def test_parquet_holds_the_same_rows_as_csv_with_their_types(
    cli: Cli, recorded: tuple[str, ...]
) -> None:
    """On the bridge's simulator (its clock pinned): both files of one range hold the same
    rows, to the last digit. pyarrow is the optional extra mt5gate[parquet], installed with
    the dev tools (without it, ``test_parquet_without_pyarrow_names_the_extra`` holds)."""
    env = {"MT5GATE_PASSWORD": BRIDGE_PASSWORD}
    for out in ("ticks.parquet", "ticks.csv"):
        cli.ok("ticks", "EURUSD", *span_options(), "--out", out, "--page-rows",
               str(SECOND_MOST + 1), *recorded, env=env)  # fmt: skip
    schema, rows = parquet_rows(cli.home / "ticks.parquet")
    assert schema.names == list(TICKS_DTYPE.names or ())
    assert [str(t) for t in schema.types] == [
        "int64", "double", "double", "double", "uint64", "int64", "uint32", "double"]  # fmt: skip
    about = json.loads(schema.metadata[b"mt5gate"])
    assert (about["symbol"], about["flags"], about["from"]) == ("EURUSD", "all", SPAN[0])
    assert rows == read_csv(cli.home / "ticks.csv", TICKS_DTYPE) == recorded_ticks().tolist()
    for out in ("bars.parquet", "bars.csv"):
        cli.ok("rates", "EURUSD", "M1", *JANUARY, "--out", out, *recorded, env=env)
    schema, bars = parquet_rows(cli.home / "bars.parquet")
    assert [str(t) for t in schema.types] == [
        "int64", "double", "double", "double", "double", "uint64", "int32", "uint64"]  # fmt: skip
    assert json.loads(schema.metadata[b"mt5gate"])["timeframe"] == "M1"
    assert bars == read_csv(cli.home / "bars.csv", RATES_DTYPE)
    assert len(bars) > 3 * PAGE_ROWS
