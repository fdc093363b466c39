"""A current third-party library written for the official package, run unchanged over the
drop-in: pdmt5 1.2.3 (2026), its README Quick Start plus a market order opened and closed.

The library is installed with ``pip install --no-deps`` (its ``MetaTrader5`` requirement is
``sys_platform == 'win32'`` only, and the Makefile pins its pure dependencies). The script runs
in a real subprocess through the ``run_script`` launcher (conftest.py): a SimTerminal on a
virtual clock at a weekday, ``mt5gate.sim.install()``, nothing else added.

A second, older library runs too: pymt5adapter 0.4.4 (2020). It reads ``MetaTrader5.Tick``
(and the other 10 record types) and ``MetaTrader5._RawOrder`` at import; the real module has
them (``_core`` adds the record types with PyModule_AddObject and ``from ._core import *``
re-exports them; ``_RawOrder`` is defined in ``__init__.py``), and so does the drop-in now.

Not run here: aiomql 4.1.2 needs Python >= 3.13 and imports mplfinance (matplotlib) at import.
It copies the API functions into a class and calls them through ``self``; the real functions
are C builtins that do not bind, and the drop-in's functions behave the same way
(``tests/test_surface.py::test_functions_do_not_bind_as_methods``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

VERSION = "1.2.3"
SCRIPT = Path(__file__).resolve().parent / "docs_scripts" / "thirdparty_pdmt5.py"
INSTALL = (
    f"pip install --no-deps pdmt5=={VERSION} pydantic==2.14.3 pydantic-core==2.50.4 "
    "annotated-types==0.8.0 typing-inspection==0.4.5"
)


@pytest.fixture(scope="module")
def pdmt5_run(run_script: Any) -> dict[str, Any]:
    """What pdmt5 returned in the subprocess, as one JSON object."""
    if importlib.util.find_spec("pdmt5") is None:
        pytest.fail(f"pdmt5 is not installed; `make` installs it: {INSTALL}")
    done = run_script(SCRIPT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result: dict[str, Any] = json.loads(lines[0])
    assert result["pdmt5"] == VERSION
    return result


def test_connects_and_logs_in_with_its_config(
    pdmt5_run: dict[str, Any], hedging: dict[str, Any]
) -> None:
    """Mt5DataClient(config=Mt5Config(...)) as a context manager: initialize, then the account."""
    assert pdmt5_run["account"]["login"] == hedging["login"]
    assert pdmt5_run["account"]["server"] == hedging["server"]
    assert pdmt5_run["account"]["currency"] == "USD"
    assert pdmt5_run["version"]["mt5_terminal_version"] == 500
    assert pdmt5_run["last_error"] == [1, "Success"]


def test_tick_as_dict(pdmt5_run: dict[str, Any]) -> None:
    """symbol_info_tick_as_dict: the eight Tick fields, bid < ask, time == time_msc // 1000."""
    tick = pdmt5_run["tick"]
    assert list(tick) == [
        "time",
        "bid",
        "ask",
        "last",
        "volume",
        "time_msc",
        "flags",
        "volume_real",
    ]
    assert 0 < tick["bid"] < tick["ask"]
    assert tick["time"] == tick["time_msc"] // 1000


def test_rates_have_the_real_dtype(pdmt5_run: dict[str, Any], surface: dict[str, Any]) -> None:
    """copy_rates_from_pos gives the official structured dtype; the DataFrame keeps its columns."""
    expected = [list(field) for field in surface["numpy_dtypes"]["RATES_DTYPE"]]
    assert pdmt5_run["rates_dtype"] == expected
    frame = pdmt5_run["rates_df"]
    assert frame["rows"] == 10
    assert frame["columns"] == [name for name, _ in expected]
    assert frame["time"].startswith("datetime64")


def test_market_order_filled_and_closed(pdmt5_run: dict[str, Any]) -> None:
    """order_send_as_dict opens a BUY (10009 DONE), then a SELL on that position closes it."""
    opened, closed = pdmt5_run["open"], pdmt5_run["close"]
    assert opened["retcode"] == 10009
    assert opened["deal"] > 0
    assert opened["volume"] == 0.1
    assert opened["price"] == pdmt5_run["tick"]["ask"]
    [position] = pdmt5_run["positions_after_open"]
    assert position == {"ticket": opened["order"], "type": 0, "volume": 0.1, "magic": 42}
    assert closed["retcode"] == 10009
    assert closed["deal"] > opened["deal"]
    assert pdmt5_run["positions_after_close"] == 0
    entries = [(d["order"], d["position_id"], d["type"], d["entry"]) for d in pdmt5_run["deals"]]
    assert entries == [
        (opened["order"], position["ticket"], 0, 0),  # DEAL_TYPE_BUY, DEAL_ENTRY_IN
        (closed["order"], position["ticket"], 1, 1),  # DEAL_TYPE_SELL, DEAL_ENTRY_OUT
    ]


PYMT5ADAPTER = Path(__file__).resolve().parent / "docs_scripts" / "thirdparty_pymt5adapter.py"


def test_pymt5adapter_readme_flow(run_script: Any) -> None:
    """pymt5adapter 0.4.4 unchanged: connected(), symbol, tick, rates, a filled order."""
    if importlib.util.find_spec("pymt5adapter") is None:
        pytest.fail("pymt5adapter is not installed; `make` installs it (pymt5adapter==0.4.4)")
    done = run_script(PYMT5ADAPTER)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines())
    assert lines["account"] == "5001"
    assert lines["symbol"] == "EURUSD 5"
    assert lines["tick"] == "True"
    assert lines["rates"].startswith("10 ('time', 'open', 'high', 'low', 'close', 'tick_volume'")
    assert lines["order"] == "10009"
    assert lines["positions"] == "1"
