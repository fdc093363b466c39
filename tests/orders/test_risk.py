"""Pre-trade risk limits: each limit at its boundary, the order of checks, the halt switch,
the sliding order-rate window on a fake clock, SymbolBook and RiskLimits validation."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mt5gate.constants import OrderState, OrderType, PositionType
from mt5gate.errors import MT5Error, MT5RiskLimitError, MT5TradingHalted
from mt5gate.models import Order, Position
from mt5gate.orders.risk import (
    RATE_WINDOW_S,
    VOLUME_TOLERANCE,
    RiskGate,
    RiskLimits,
    SymbolBook,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def gate(clock: FakeClock | None = None, **limits: Any) -> RiskGate:
    return RiskGate(RiskLimits(**limits), clock=clock or FakeClock())


def refused(gate: RiskGate, symbol: str = "EURUSD", volume: float = 0.1, **kw: Any) -> Any:
    """The error ``check`` raises (fails the test if it passes)."""
    with pytest.raises(MT5RiskLimitError) as caught:
        gate.check(symbol, volume, **kw)
    return caught.value


def position(symbol: str, volume: float, ticket: int = 1) -> Position:
    return Position(
        ticket, symbol, PositionType.BUY, volume, 1.1, 1.1, 0.0, 0.0, 0.0, 0.0, 0, "", ticket, 0, 0
    )


def order(symbol: str, volume_current: float, ticket: int = 100) -> Order:
    return Order(
        ticket, symbol, OrderType.BUY_LIMIT, OrderState.PLACED, volume_current + 1.0,
        volume_current, 1.0, 0.0, 0.0, 0.0, 0, "", 0, 0, 0, 0, 0,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# No limits


def test_default_gate_lets_everything_through() -> None:
    g = RiskGate()
    assert g.limits == RiskLimits()
    assert not g.needs_book()
    for _ in range(1000):
        g.check("ANYTHING", 1e6)
        g.admit()


@given(
    symbol=st.text(max_size=12),
    volume=st.floats(allow_nan=True, allow_infinity=True),
    positions=st.integers(0, 10_000),
    pending=st.integers(0, 10_000),
    gross=st.floats(0, 1e9),
)
def test_check_never_raises_when_every_limit_is_none(
    symbol: str, volume: float, positions: int, pending: int, gross: float
) -> None:
    g = RiskGate()
    g.check(symbol, volume, SymbolBook(positions, pending, gross))
    g.check(symbol, volume)
    g.admit()


# ---------------------------------------------------------------------------------------------
# Each limit at its boundary


@pytest.mark.parametrize("volume", [0.01, 0.5, 1.0, 1.0 + VOLUME_TOLERANCE / 2])
def test_volume_at_or_under_the_limit_passes(volume: float) -> None:
    gate(max_volume_per_order=1.0).check("EURUSD", volume)


@pytest.mark.parametrize("volume", [1.01, 1.0 + 1e-8, 5.0, math.inf, math.nan])
def test_volume_over_the_limit_is_refused(volume: float) -> None:
    error = refused(gate(max_volume_per_order=1), volume=volume)
    assert error.limit == "max_volume_per_order"
    assert error.allowed == 1.0
    assert error.value == volume or math.isnan(error.value)


def test_volume_message_says_what_and_that_nothing_was_sent() -> None:
    error = refused(gate(max_volume_per_order=1), volume=5)
    assert error.message == (
        "order volume 5 lots exceeds max_volume_per_order (1 lots); nothing was sent"
    )
    assert "RiskLimits" in error.hint


def test_float_sums_are_not_refused_at_the_limit() -> None:
    g = gate(max_volume_per_order=0.3, max_exposure_per_symbol=0.3)
    assert 0.1 + 0.2 > 0.3
    g.check("EURUSD", 0.1 + 0.2, SymbolBook())
    g.check("EURUSD", 0.2, SymbolBook(1, 0, 0.1))


def test_negative_volume_is_measured_by_its_size() -> None:
    error = refused(gate(max_volume_per_order=1), volume=-2)
    assert error.value == 2


def test_symbol_allow_list() -> None:
    g = gate(allowed_symbols=["EURUSD", "USDJPY"])
    g.check("EURUSD", 1)
    g.check("USDJPY", 1)
    error = refused(g, "GBPUSD")
    assert error.limit == "allowed_symbols"
    assert error.value == "GBPUSD"
    assert error.allowed == frozenset({"EURUSD", "USDJPY"})
    assert "'GBPUSD' is not in allowed_symbols (EURUSD, USDJPY)" in error.message
    assert "nothing was sent" in error.message


def test_allow_list_matches_names_exactly() -> None:
    g = gate(allowed_symbols={"EURUSD"})
    for other in ("eurusd", "EURUSD.m", "EURUS"):
        assert refused(g, other).limit == "allowed_symbols"


def test_long_allow_list_is_shortened_in_the_message() -> None:
    names = [f"SYM{i:02d}" for i in range(25)]
    error = refused(gate(allowed_symbols=names), "EURUSD")
    assert "SYM00, SYM01" in error.message
    assert "SYM09 and 15 more" in error.message
    assert "SYM10" not in error.message


def test_empty_allow_list_refuses_every_symbol() -> None:
    error = refused(gate(allowed_symbols=()), "EURUSD")
    assert error.limit == "allowed_symbols"
    assert "every symbol is refused" in error.message


def test_positions_per_symbol_counts_the_new_order() -> None:
    g = gate(max_positions_per_symbol=3)
    assert g.needs_book()
    g.check("EURUSD", 1, SymbolBook(positions=2))
    g.check("EURUSD", 1, SymbolBook(positions=1, pending=1))
    g.check("EURUSD", 1, SymbolBook(pending=2))
    error = refused(g, book=SymbolBook(positions=2, pending=1))
    assert error.limit == "max_positions_per_symbol"
    assert (error.value, error.allowed) == (4, 3)
    assert "EURUSD would have 4 open positions and pending orders" in error.message
    assert "(2 + 1 + 1)" in error.message


def test_positions_limit_of_one_allows_only_a_flat_symbol() -> None:
    g = gate(max_positions_per_symbol=1)
    g.check("EURUSD", 1, SymbolBook())
    assert refused(g, book=SymbolBook(pending=1)).limit == "max_positions_per_symbol"


def test_exposure_per_symbol_is_gross_lots_with_the_new_order() -> None:
    g = gate(max_exposure_per_symbol=2)
    assert g.needs_book()
    g.check("EURUSD", 0.5, SymbolBook(1, 1, 1.5))
    g.check("EURUSD", 2, SymbolBook())
    error = refused(g, volume=0.6, book=SymbolBook(1, 1, 1.5))
    assert error.limit == "max_exposure_per_symbol"
    assert error.value == pytest.approx(2.1)
    assert error.allowed == 2.0
    assert "EURUSD gross exposure would be 2.1 lots" in error.message
    assert "(1.5 open + 0.6 new)" in error.message
    assert "max_exposure_per_symbol (2 lots)" in error.message


def test_exposure_just_over_the_tolerance_is_refused() -> None:
    g = gate(max_exposure_per_symbol=1)
    g.check("EURUSD", 0.5, SymbolBook(1, 0, 0.5 + VOLUME_TOLERANCE / 2))
    assert refused(g, volume=0.5, book=SymbolBook(1, 0, 0.5 + 1e-8)).value > 1


@given(
    bound=st.floats(0.01, 10_000),
    fraction=st.floats(0, 1),
    excess=st.floats(1e-8, 1e4),
)
def test_volume_at_most_the_bound_passes_and_over_it_is_refused(
    bound: float, fraction: float, excess: float
) -> None:
    per_order = gate(max_volume_per_order=bound)
    per_order.check("EURUSD", bound * fraction)
    per_order.check("EURUSD", bound)
    with pytest.raises(MT5RiskLimitError, match="max_volume_per_order"):
        per_order.check("EURUSD", bound + excess)
    per_symbol = gate(max_exposure_per_symbol=bound)
    per_symbol.check("EURUSD", bound * (1 - fraction), SymbolBook(1, 0, bound * fraction))
    with pytest.raises(MT5RiskLimitError, match="max_exposure_per_symbol"):
        per_symbol.check("EURUSD", excess, SymbolBook(1, 0, bound))


# ---------------------------------------------------------------------------------------------
# The order-rate window


def test_rate_limit_slides_with_the_clock() -> None:
    clock = FakeClock()
    g = gate(clock, max_orders_per_minute=3)
    assert not g.needs_book()
    for _ in range(3):
        g.check("EURUSD", 0.1)
        g.admit()
        clock.advance(10)
    # Admitted at t=0, 10, 20; now t=30: the oldest frees at t=60.
    error = refused(g)
    assert error.limit == "max_orders_per_minute"
    assert (error.value, error.allowed) == (4, 3)
    assert "3 orders were sent in the last 60 s" in error.message
    assert "a slot frees in 30.0 s" in error.message
    assert "Wait 30.0 s" in error.hint
    clock.advance(29.9)
    assert "a slot frees in 0.1 s" in refused(g).message
    clock.advance(0.1)
    g.check("EURUSD", 0.1)  # t=60: the first admission slid out of the window
    g.admit()
    assert "a slot frees in 10.0 s" in refused(g).message
    clock.advance(RATE_WINDOW_S)
    g.check("EURUSD", 0.1)


def test_check_alone_does_not_use_up_the_rate() -> None:
    g = gate(max_orders_per_minute=1)
    for _ in range(10):
        g.check("EURUSD", 0.1)
    g.admit()
    assert refused(g).limit == "max_orders_per_minute"


def test_burst_at_one_instant_frees_a_minute_later() -> None:
    clock = FakeClock()
    g = gate(clock, max_orders_per_minute=2)
    g.admit()
    g.admit()
    assert "a slot frees in 60.0 s" in refused(g).message
    clock.advance(59.99)
    assert "a slot frees in 0.1 s" in refused(g).message
    clock.advance(0.01)
    g.check("EURUSD", 0.1)


def test_rate_memory_is_bounded_by_the_limit() -> None:
    clock = FakeClock()
    g = gate(clock, max_orders_per_minute=5)
    for _ in range(10_000):
        g.admit()
        clock.advance(0.001)
    assert len(g._admitted) == 5
    error = refused(g)
    assert error.value == 6


def test_admit_without_a_rate_limit_keeps_nothing() -> None:
    g = gate(max_volume_per_order=1)
    for _ in range(100):
        g.admit()
    assert len(g._admitted) == 0


# ---------------------------------------------------------------------------------------------
# The halt switch


def test_halt_and_resume_with_reason() -> None:
    g = gate()
    assert (g.halted, g.halt_reason) == (False, "")
    g.halt("daily loss limit hit")
    assert (g.halted, g.halt_reason) == (True, "daily loss limit hit")
    error = refused(g)
    assert isinstance(error, MT5TradingHalted)
    assert error.limit == "halted"
    assert (error.value, error.allowed) == (None, None)
    assert error.message == "trading is halted (daily loss limit hit); nothing was sent"
    assert "resume_trading" in error.hint
    g.halt("operator")
    assert g.halt_reason == "operator"
    g.resume()
    assert (g.halted, g.halt_reason) == (False, "")
    g.check("EURUSD", 0.1)


def test_halt_without_a_reason() -> None:
    g = gate()
    g.halt()
    assert (g.halted, g.halt_reason) == (True, "")
    assert refused(g).message == "trading is halted; nothing was sent"


def test_limits_can_start_halted() -> None:
    g = gate(halted=True)
    assert g.halted
    assert g.halt_reason == "RiskLimits.halted is set"
    assert isinstance(refused(g), MT5TradingHalted)
    g.resume()
    g.check("EURUSD", 0.1)
    assert g.limits.halted  # the policy as given; the switch moved


def test_resume_keeps_the_rate_window() -> None:
    g = gate(max_orders_per_minute=1)
    g.admit()
    g.halt("x")
    g.resume()
    assert refused(g).limit == "max_orders_per_minute"


# ---------------------------------------------------------------------------------------------
# Order of checks


_ORDER_OF_CHECKS = (
    "halted",
    "allowed_symbols",
    "max_volume_per_order",
    "max_orders_per_minute",
    "max_positions_per_symbol",
    "max_exposure_per_symbol",
)


@pytest.mark.parametrize("first", range(len(_ORDER_OF_CHECKS)))
def test_checks_run_in_order_and_stop_at_the_first_breach(first: int) -> None:
    # Breach the limit at ``first`` and every limit after it: the refusal names ``first``.
    breached = set(_ORDER_OF_CHECKS[first:])
    limits = RiskLimits(
        max_volume_per_order=1,
        max_positions_per_symbol=1,
        max_exposure_per_symbol=1,
        max_orders_per_minute=1,
        allowed_symbols=frozenset({"EURUSD"}),
        halted="halted" in breached,
    )
    g = RiskGate(limits, clock=FakeClock())
    if "max_orders_per_minute" in breached:
        g.admit()
    symbol = "GBPUSD" if "allowed_symbols" in breached else "EURUSD"
    volume = 5.0 if "max_volume_per_order" in breached else 0.5
    book = SymbolBook(positions=1 if "max_positions_per_symbol" in breached else 0, gross_volume=1)
    assert refused(g, symbol, volume, book=book).limit == _ORDER_OF_CHECKS[first]


def test_missing_book_is_the_callers_bug() -> None:
    for limits in ({"max_positions_per_symbol": 1}, {"max_exposure_per_symbol": 1.0}):
        g = gate(**limits)
        with pytest.raises(ValueError, match="needs a SymbolBook"):
            g.check("EURUSD", 0.1)
        g.halt()
        with pytest.raises(ValueError, match="needs_book"):
            g.check("EURUSD", 0.1)  # reported before any limit, even while halted


def test_book_is_ignored_without_book_limits() -> None:
    gate(max_volume_per_order=1).check("EURUSD", 0.1, SymbolBook(100, 100, 1e6))


# ---------------------------------------------------------------------------------------------
# The errors


@pytest.mark.parametrize("error_class", [MT5RiskLimitError, MT5TradingHalted])
def test_refusals_are_mt5_errors(error_class: type[MT5RiskLimitError]) -> None:
    assert issubclass(error_class, MT5Error)
    assert issubclass(MT5TradingHalted, MT5RiskLimitError)


def test_refusal_survives_pickling() -> None:
    error = refused(gate(max_volume_per_order=1), volume=2)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.limit, copy.value, copy.allowed, str(copy)) == (
        error.limit,
        error.value,
        error.allowed,
        str(error),
    )


# ---------------------------------------------------------------------------------------------
# SymbolBook


def test_symbol_book_counts_only_its_symbol() -> None:
    positions = [
        position("EURUSD", 0.1, 1),
        position("EURUSD", 0.2, 2),
        position("GBPUSD", 5.0, 3),
        position("EURUSD.m", 7.0, 4),
    ]
    orders = [order("EURUSD", 0.3, 10), order("USDJPY", 9.0, 11), order("eurusd", 1.0, 12)]
    book = SymbolBook.of("EURUSD", positions, orders)
    assert (book.positions, book.pending) == (2, 1)
    assert book.gross_volume == pytest.approx(0.6)
    assert SymbolBook.of("XAUUSD", positions, orders) == SymbolBook()


def test_symbol_book_uses_the_orders_remaining_volume() -> None:
    book = SymbolBook.of("EURUSD", [], [order("EURUSD", 0.4)])
    assert book == SymbolBook(0, 1, 0.4)


def test_symbol_book_takes_any_iterable() -> None:
    book = SymbolBook.of("EURUSD", iter([position("EURUSD", 1.0)]), iter(list[Order]()))
    assert book == SymbolBook(1, 0, 1.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("positions", -1),
        ("positions", True),
        ("positions", 1.0),
        ("pending", -1),
        ("pending", None),
        ("gross_volume", -0.1),
        ("gross_volume", math.nan),
        ("gross_volume", math.inf),
        ("gross_volume", "1"),
    ],
)
def test_symbol_book_is_validated(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"SymbolBook.{field} must be"):
        SymbolBook(**{field: value})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# RiskLimits


def test_limits_normalise_their_values() -> None:
    lists: Any = ["A"]  # any iterable of names is accepted, though typed as a frozenset
    limits = RiskLimits(max_volume_per_order=2, max_exposure_per_symbol=3, allowed_symbols=lists)
    assert isinstance(limits.max_volume_per_order, float)
    assert isinstance(limits.max_exposure_per_symbol, float)
    assert limits.allowed_symbols == frozenset({"A"})
    names: Any = iter(("A", "B", "A"))
    assert RiskLimits(allowed_symbols=names).allowed_symbols == frozenset({"A", "B"})
    assert hash(limits) == hash(RiskLimits(2.0, None, 3.0, None, frozenset({"A"})))
    with pytest.raises(AttributeError):
        limits.halted = True  # type: ignore[misc]


_LOT_RULE = "must be a finite number > 0"
_COUNT_RULE = "must be an int >= 1"
_SYMBOL_RULE = "must hold non-empty names"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        *[
            (lots, bad, _LOT_RULE)
            for lots in ("max_volume_per_order", "max_exposure_per_symbol")
            for bad in (0, -1, -0.5, math.nan, math.inf, -math.inf, True, False, "1", [1])
        ],
        *[
            (count, bad, _COUNT_RULE)
            for count in ("max_positions_per_symbol", "max_orders_per_minute")
            for bad in (0, -1, 1.0, 2.5, math.nan, math.inf, True, False, "3")
        ],
        ("allowed_symbols", "EURUSD", "not a string"),
        ("allowed_symbols", b"EURUSD", "not a string"),
        ("allowed_symbols", 5, "must be an iterable"),
        ("allowed_symbols", [""], _SYMBOL_RULE),
        ("allowed_symbols", ["EURUSD", " "], _SYMBOL_RULE),
        ("allowed_symbols", [" EURUSD"], _SYMBOL_RULE),
        ("allowed_symbols", ["EURUSD", 5], _SYMBOL_RULE),
        ("allowed_symbols", [None], _SYMBOL_RULE),
        ("allowed_symbols", [["EURUSD"]], _SYMBOL_RULE),
        ("halted", 1, "must be a bool"),
        ("halted", "false", "must be a bool"),
        ("halted", None, "must be a bool"),
    ],
)
def test_limits_validation_names_the_field_and_rule(field: str, value: object, rule: str) -> None:
    with pytest.raises(ValueError, match=f"RiskLimits.{field} .*{rule}") as caught:
        RiskLimits(**{field: value})  # type: ignore[arg-type]
    assert str(caught.value).endswith(f"got {value!r}") or rule == _SYMBOL_RULE


def test_limits_error_message_matches_the_house_style() -> None:
    with pytest.raises(ValueError) as caught:
        RiskLimits(max_volume_per_order=-1)
    assert str(caught.value) == (
        "RiskLimits.max_volume_per_order must be a finite number > 0, got -1"
    )


@pytest.mark.parametrize(
    "limits",
    [
        RiskLimits(),
        RiskLimits(max_volume_per_order=1e-9, max_exposure_per_symbol=1e9),
        RiskLimits(max_positions_per_symbol=1, max_orders_per_minute=1),
        RiskLimits(allowed_symbols=frozenset(), halted=True),
    ],
)
def test_valid_limits_build(limits: RiskLimits) -> None:
    assert RiskGate(limits).limits is limits


# ---------------------------------------------------------------------------------------------
# repr


def test_repr_shows_the_switch_and_the_limits() -> None:
    g = gate(max_volume_per_order=1)
    assert repr(g) == f"<RiskGate halted=False limits={g.limits!r}>"
    assert "max_volume_per_order=1.0" in repr(g)
    g.halt()
    assert repr(g).startswith("<RiskGate halted=True limits=RiskLimits(")
