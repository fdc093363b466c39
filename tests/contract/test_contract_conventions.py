"""Argument conventions: TypeError for positional-only functions, None plus (-2) for the
functions that check their own arguments (semantics 3, 12.3; pitfall B3)."""

from __future__ import annotations

from typing import Any

import pytest

KEYWORD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("symbol_info", (), {"symbol": "EURUSD"}),
    ("symbol_info_tick", (), {"symbol": "EURUSD"}),
    ("symbol_select", ("EURUSD",), {"enable": True}),
    ("market_book_add", (), {"symbol": "EURUSD"}),
    ("market_book_get", (), {"symbol": "EURUSD"}),
    ("market_book_release", (), {"symbol": "EURUSD"}),
    ("copy_rates_from", ("EURUSD", 1, 1_767_693_600), {"count": 10}),
    ("copy_rates_from_pos", ("EURUSD", 1, 0), {"count": 10}),
    ("copy_rates_range", ("EURUSD", 1), {"date_from": 0, "date_to": 1}),
    ("copy_ticks_from", ("EURUSD", 0, 10), {"flags": -1}),
    ("copy_ticks_range", ("EURUSD", 0, 1), {"flags": -1}),
    ("order_calc_margin", (0, "EURUSD", 0.1), {"price": 1.1}),
    ("order_calc_profit", (), {"action": 0, "symbol": "EURUSD", "volume": 1.0}),
    ("history_orders_total", (0,), {"date_to": 1}),
    ("history_deals_total", (), {"date_from": 0, "date_to": 1}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), KEYWORD_CALLS)
def test_positional_only_functions_reject_keywords(
    mt5: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """semantics 3, pitfall B3: METH_VARARGS functions raise TypeError on keywords."""
    with pytest.raises(TypeError):
        getattr(mt5, name)(*args, **kwargs)


WRONG_SCALARS: list[tuple[str, tuple[Any, ...]]] = [
    ("copy_rates_from_pos", ("EURUSD", 16385.0, 0, 10)),  # timeframe as float
    ("copy_rates_from_pos", ("EURUSD", 16385, 0, "10")),  # count as str
    ("copy_rates_from_pos", ("EURUSD", "H1", 0, 10)),  # timeframe as str
    ("copy_rates_from", ("EURUSD", 1, 1_767_693_600, 10.0)),  # count as float
    ("copy_rates_range", ("EURUSD", 1.0, 0, 1)),  # timeframe as float
    ("copy_ticks_from", ("EURUSD", 0, "10", -1)),  # count as str
    ("copy_ticks_range", ("EURUSD", 0, 1, "ALL")),  # flags as str
    ("order_calc_margin", (0, "EURUSD", "0.1", 1.1)),  # volume as str
    ("order_calc_margin", ("BUY", "EURUSD", 0.1, 1.1)),  # action as str
    ("order_calc_profit", (0, "EURUSD", 1.0, 1.1, None)),  # price_close None
]


@pytest.mark.parametrize(("name", "args"), WRONG_SCALARS)
def test_wrong_scalar_types_raise_type_error(mt5: Any, name: str, args: tuple[Any, ...]) -> None:
    """semantics 3: PyArg_ParseTuple formats (Oiii, kOdd...) raise TypeError, not None."""
    with pytest.raises(TypeError):
        getattr(mt5, name)(*args)


WRONG_COUNTS: list[tuple[str, tuple[Any, ...]]] = [
    ("symbol_info", ()),
    ("symbol_info", ("EURUSD", "GBPUSD")),
    ("copy_rates_from_pos", ("EURUSD", 1, 0)),
    ("copy_ticks_range", ("EURUSD", 0, 1)),
    ("order_calc_profit", (0, "EURUSD", 1.0, 1.1)),
    ("history_deals_total", (0,)),
]


@pytest.mark.parametrize(("name", "args"), WRONG_COUNTS)
def test_wrong_argument_count_raises_type_error(mt5: Any, name: str, args: tuple[Any, ...]) -> None:
    """semantics 3: a wrong count of positional arguments raises TypeError."""
    with pytest.raises(TypeError):
        getattr(mt5, name)(*args)


@pytest.mark.parametrize(
    "name", ["account_info", "terminal_info", "version", "symbols_total", "positions_total"]
)
def test_no_argument_functions_reject_arguments(mt5: Any, name: str) -> None:
    """semantics 3: METH_NOARGS functions take no arguments."""
    with pytest.raises(TypeError):
        getattr(mt5, name)(1)


@pytest.mark.parametrize("name", ["positions_get", "orders_get"])
def test_selectors_reject_positional_arguments(mt5: Any, name: str) -> None:
    """semantics 3: positions_get/orders_get take keywords only: positional gives None (-2)."""
    assert getattr(mt5, name)("EURUSD") is None
    assert mt5.last_error()[0] == -2


@pytest.mark.parametrize("name", ["positions_get", "orders_get"])
def test_selectors_with_wrong_ticket_type(mt5: Any, name: str) -> None:
    """semantics 3: a badly typed keyword gives None with (-2), never an exception."""
    assert getattr(mt5, name)(ticket="1") is None
    assert mt5.last_error()[0] == -2


@pytest.mark.parametrize("name", ["positions_get", "orders_get"])
def test_selectors_empty_is_tuple(mt5: Any, name: str) -> None:
    """semantics 10, pitfall B6: nothing open gives (), with (1, 'Success')."""
    assert getattr(mt5, name)() == ()
    assert getattr(mt5, name)(symbol="EURUSD") == ()
    assert getattr(mt5, name)(group="*USD*") == ()
    assert mt5.last_error() == (1, "Success")


def test_datetime_arguments_are_converted_with_timestamp(env: Any, mt5: Any) -> None:
    """semantics 3 'Dates': a datetime goes through .timestamp(); an aware UTC datetime equals
    the same instant given as int seconds."""
    from datetime import UTC, datetime

    now = env.now_s()
    moment = datetime.fromtimestamp(now - 600, tz=UTC)
    by_datetime = mt5.copy_rates_from("EURUSD", 1, moment, 5)
    by_int = mt5.copy_rates_from("EURUSD", 1, now - 600, 5)
    assert by_datetime is not None
    assert by_datetime.tolist() == by_int.tolist()
