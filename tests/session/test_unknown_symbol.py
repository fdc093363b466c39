"""An unknown symbol is one error on every call that names it (issue 21).

The terminal says it differently per function: ``symbol_info`` (-4, 'Terminal: Not found'),
``copy_*`` and ``symbol_select`` (-1, 'Terminal: Call failed'), which also means "not selected"
or "no such history". The session asks ``symbol_info`` when a call fails with either, so an
unknown name is ``MT5NotFoundError`` with code -4 naming the symbol, and a suggestion from the
terminal's own names, whatever call met it; a failure of a symbol that exists stays what it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5DataError, MT5NotFoundError
from mt5gate.models import OrderRequest, Side
from mt5gate.session import MT5SessionManager
from mt5gate.session.observer import SessionObserver
from mt5gate.session.symbols import NAMES_TTL_S, similar_names
from tests.session.conftest import Harness, make_session, run

WRONG = "EURUSDX"
M1 = int(Timeframe.M1)
FROM = datetime(2026, 1, 6, 9)  # server time, inside the simulator's day of history
TO = datetime(2026, 1, 6, 9, 30)

Call = Callable[[MT5SessionManager, str], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "get_price": lambda s, name: s.get_price(name),
    "get_symbol_info": lambda s, name: s.get_symbol_info(name),
    "get_rates": lambda s, name: s.get_rates(name, M1, count=10),
    "get_rates from": lambda s, name: s.get_rates(name, M1, count=10, date_from=FROM),
    "get_rates range": lambda s, name: s.get_rates(name, M1, date_from=FROM, date_to=TO),
    "get_ticks": lambda s, name: s.get_ticks(name, FROM, count=10),
    "get_ticks range": lambda s, name: s.get_ticks(name, FROM, date_to=TO),
    "select_symbol": lambda s, name: s.select_symbol(name),
    "subscribe_book": lambda s, name: s.subscribe_book(name),
    "check_order": lambda s, name: s.check_order(OrderRequest(name, Side.BUY, 0.1)),
    "place_order": lambda s, name: s.place_order(OrderRequest(name, Side.BUY, 0.1)),
    "calc_margin": lambda s, name: s.calc_margin(name, Side.BUY, 0.1),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_call_naming_an_unknown_symbol_says_the_same(harness: Harness, name: str) -> None:
    with pytest.raises(MT5NotFoundError) as caught:
        harness.run(CALLS[name](harness.session, WRONG))
    error = caught.value
    assert isinstance(error, MT5DataError)  # what callers caught before still catches it
    assert (error.kind, error.name, error.field, error.code) == ("symbol", WRONG, "symbol", -4)
    assert error.suggestions == ("EURUSD",)
    assert str(error).startswith(
        "unknown symbol 'EURUSDX': the terminal has no symbol of that name (did you mean EURUSD?)."
    )
    assert error.hint.endswith("session.list_symbols() lists them.")
    assert harness.terminal.positions_get() in ((), None)  # nothing was sent


def test_a_failure_of_a_symbol_that_exists_stays_what_it_was(harness: Harness) -> None:
    """-1 for history beyond what the terminal holds is not "unknown symbol"."""
    with pytest.raises(MT5DataError) as caught:
        harness.run(harness.session.get_rates("EURUSD", M1, count=10, start_pos=10**6))
    assert type(caught.value) is MT5DataError
    assert caught.value.code == -1
    with pytest.raises(MT5DataError) as unsubscribed:
        harness.run(harness.session.get_book("EURUSD"))  # never subscribed: -1 too
    assert type(unsubscribed.value) is MT5DataError


class Calls(SessionObserver):
    """The terminal functions the session called, in order."""

    def __init__(self) -> None:
        self.functions: list[str] = []

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.functions.append(function)


def test_the_names_are_listed_once_for_suggestions_not_per_wrong_call() -> None:
    calls = Calls()
    session, _, clock = make_session(observer=calls)

    async def main() -> list[MT5NotFoundError]:
        async with session:
            found = []
            for name in (WRONG, "eurusd", "NOSUCH", WRONG):
                try:
                    await session.get_symbol_info(name)
                except MT5NotFoundError as error:
                    found.append(error)
            clock.now += NAMES_TTL_S  # later, the broker may have added symbols: read again
            try:
                await session.get_price("GBPUSDD")
            except MT5NotFoundError as error:
                found.append(error)
            return found

    errors = run(main)
    assert [e.suggestions for e in errors] == [("EURUSD",), ("EURUSD",), (), ("EURUSD",),
                                               ("GBPUSD",)]  # fmt: skip
    assert calls.functions.count("symbols_get") == 2


@pytest.mark.parametrize(
    ("wrong", "likest"),
    [("eurusd", ("EURUSD",)), ("EURUSD.m", ("EURUSD",)), ("EURUSDX", ("EURUSD",)),
     ("BTCUSDT", ("BTCUSD",)), ("USDJYP", ("USDJPY",)), ("GOLD", ()), ("NOSUCH", ())],
)  # fmt: skip
def test_suggestions_are_the_likest_names(wrong: str, likest: tuple[str, ...]) -> None:
    names = ["EURUSD", "EURAUD", "GBPUSD", "USDJPY", "BTCUSD", "LTCUSD", "XAUUSD", "XRPUSD"]
    assert similar_names(wrong, names) == likest


def test_a_broker_suffix_is_suggested_for_the_bare_name() -> None:
    names = ["EURUSD.m", "EURUSD.pro", "GBPUSD.m"]
    assert similar_names("EURUSD", names) == ("EURUSD.m", "EURUSD.pro")
    assert similar_names("gbpusd", names) == ("GBPUSD.m",)
