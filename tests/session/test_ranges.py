"""Ranges of bars and ticks through the session: chunked under ``maxbars``, bounded by ``count``.

MT5 refuses a ``copy_rates_range`` spanning more than ``maxbars`` bars with (-2) and no partial
result (pitfalls B2); the session walks such a range in windows. These tests run a real session
over the simulator (whose deep history reaches back to 2010) with a small ``maxbars``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5ValidationError
from mt5gate.session import MT5SessionManager
from mt5gate.session.observer import SessionObserver
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal

from .conftest import TUESDAY_10, make_session, run

M1, H1, D1 = int(Timeframe.M1), int(Timeframe.H1), int(Timeframe.D1)
JAN_2020 = int(datetime(2020, 1, 6, tzinfo=UTC).timestamp())  # a Monday
DEEP_FROM = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())


class Calls(SessionObserver):
    """Counts terminal calls by function."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.count[function, outcome] += 1


def _session(maxbars: int) -> tuple[MT5SessionManager, SimTerminal, Calls]:
    terminal = SimTerminal(
        SimConfig(history_days=1, maxbars=maxbars), clock=VirtualClock(TUESDAY_10)
    )
    calls = Calls()
    session, _, _ = make_session(terminal, observer=calls)
    return session, terminal, calls


def _reference(lo: int, hi: int, timeframe: int = M1) -> np.ndarray:
    """The bars a twin terminal (same seed, same start) gives in one call without the limit."""
    twin = SimTerminal(SimConfig(history_days=1, maxbars=10**7), clock=VirtualClock(TUESDAY_10))
    assert twin.initialize()
    bars = twin.copy_rates_range("EURUSD", timeframe, lo, hi)
    assert bars is not None
    return bars


def test_a_range_beyond_maxbars_comes_whole_in_windows() -> None:
    session, terminal, calls = _session(maxbars=1000)
    lo, hi = JAN_2020, JAN_2020 + 3 * 86_400 - 1  # three weekdays: ~4,300 M1 bars

    async def go() -> np.ndarray:
        async with session:
            return await session.get_rates("EURUSD", M1, date_from=lo, date_to=hi)

    bars = run(go)
    assert terminal.initialize()
    assert terminal.copy_rates_range("EURUSD", M1, lo, hi) is None  # one call fails (-2)
    assert terminal.last_error()[0] == -2
    expected = _reference(lo, hi)
    assert len(expected) > 4000
    assert bars.dtype == expected.dtype
    assert np.array_equal(bars, expected)  # no bar lost or repeated at a window's edge
    assert calls.count["copy_rates_range", "ok"] >= 5  # windows of at most 1,000 bars


def test_count_takes_the_first_bars_of_a_huge_range_in_few_calls() -> None:
    session, _terminal, calls = _session(maxbars=1000)

    async def go() -> tuple[np.ndarray, np.ndarray]:
        async with session:
            m1 = await session.get_rates("EURUSD", M1, count=3, date_from=0, date_to=32535215999)
            d1 = await session.get_rates("EURUSD", D1, count=5, date_from=0, date_to=32535215999)
            return m1, d1

    m1, d1 = run(go)
    assert len(m1) == 3
    assert len(d1) == 5
    first = _reference(DEEP_FROM, DEEP_FROM + 7 * 86_400)
    assert np.array_equal(m1, first[:3])  # the first bars of history, from 1970 on
    assert m1["time"][0] >= DEEP_FROM
    assert np.array_equal(d1, _reference(DEEP_FROM, DEEP_FROM + 30 * 86_400, D1)[:5])
    windows = (
        calls.count["copy_rates_range", "ok"]
        + calls.count["copy_rates_range", "MT5ValidationError"]
    )
    assert windows < 80  # 1970 to 2010 crossed by doubling windows, not minute by minute


def test_a_grown_window_the_terminal_refuses_is_halved() -> None:
    session, _terminal, calls = _session(maxbars=500)
    lo = DEEP_FROM - 40 * 86_400  # empty weeks first: the window grows, then meets dense bars

    async def go() -> np.ndarray:
        async with session:
            return await session.get_rates("EURUSD", M1, count=450, date_from=lo, date_to=JAN_2020)

    bars = run(go)
    assert calls.count["copy_rates_range", "MT5ValidationError"] >= 1  # refused (-2) once at least
    assert np.array_equal(bars, _reference(DEEP_FROM, DEEP_FROM + 7 * 86_400)[:450])


def test_an_empty_range_is_an_empty_array_and_a_reversed_one_is_refused() -> None:
    session, _, calls = _session(maxbars=1000)

    async def go() -> tuple[np.ndarray, list[MT5ValidationError]]:
        async with session:
            before = await session.get_rates("EURUSD", H1, date_from=1000, date_to=2000)
            refused = []
            for ask in (
                session.get_rates("EURUSD", H1, date_from=JAN_2020, date_to=1000),
                session.get_ticks("EURUSD", JAN_2020, date_to=1000),
                session.history_deals(JAN_2020, 1000),
            ):
                with pytest.raises(MT5ValidationError) as caught:
                    await ask
                refused.append(caught.value)
            return before, refused

    before, refused = run(go)
    dtype = _reference(JAN_2020, JAN_2020 + 3600, H1).dtype
    assert len(before) == 0
    assert before.dtype == dtype
    assert {(e.field, e.rule) for e in refused} == {("date_to", "not before date_from")}
    assert calls.count["copy_ticks_range", "ok"] == 0


def test_ticks_of_a_range_with_a_count_are_its_first_ticks() -> None:
    session, terminal, calls = _session(maxbars=1000)
    lo, hi = JAN_2020 + 3600, JAN_2020 + 3660  # Monday 01:00, in session

    async def go() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        async with session:
            few = await session.get_ticks("EURUSD", lo, count=5, date_to=hi)
            capped = await session.get_ticks("EURUSD", lo, count=100_000, date_to=hi)
            everything = await session.get_ticks("EURUSD", 0, count=2, date_to=32535215999)
            return few, capped, everything

    few, capped, everything = run(go)
    assert terminal.initialize()
    whole = terminal.copy_ticks_range("EURUSD", lo, hi, -1)
    assert whole is not None
    assert len(whole) > 5
    assert np.array_equal(few, whole[:5])
    assert np.array_equal(capped, whole)  # the count is a cap: nothing after ``to``
    assert len(everything) == 2
    assert everything["time"][0] >= DEEP_FROM
    assert calls.count["copy_ticks_range", "ok"] == 0  # a count bounds the work: copy_ticks_from


@pytest.mark.parametrize("count", [0, -1, True, 1.5, "3"])
def test_a_count_that_is_not_a_positive_int_is_refused_before_any_call(count: object) -> None:
    session, _, calls = _session(maxbars=1000)

    async def go() -> None:
        async with session:
            before = sum(calls.count.values())
            for ask in (
                session.get_rates("EURUSD", M1, count=count, date_from=0, date_to=JAN_2020),  # type: ignore[arg-type]
                session.get_ticks("EURUSD", 0, count=count),  # type: ignore[arg-type]
            ):
                with pytest.raises(MT5ValidationError) as caught:
                    await ask
                assert (caught.value.field, caught.value.rule) == ("count", "an int >= 1")
            assert sum(calls.count.values()) == before

    run(go)
