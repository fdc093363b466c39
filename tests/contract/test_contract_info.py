"""terminal_info / account_info fields, symbols and Market Watch, group filters
(semantics 5, 5.1, 9.3, 11; pitfalls B1, B6)."""

from __future__ import annotations

from typing import Any

import pytest

PY_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _assert_field_types(record: Any, types: dict[str, str]) -> None:
    wrong = {
        name: type(value).__name__
        for name, value in record._asdict().items()
        if type(value) is not PY_TYPES[types[name]]
    }
    assert wrong == {}


# ------------------------------------------------------------------ terminal_info, account_info


def test_terminal_info_fields_and_types(mt5: Any, surface: dict[str, Any]) -> None:
    """semantics 11: TerminalInfo with its documented fields and types; attached and online."""
    info = mt5.terminal_info()
    assert type(info).__name__ == "TerminalInfo"
    _assert_field_types(info, surface["namedtuple_field_types"]["TerminalInfo"])
    assert info.connected is True
    assert info.trade_allowed is True
    assert info.tradeapi_disabled is False
    assert info.maxbars > 0


def test_account_info_fields_and_types(mt5: Any, surface: dict[str, Any]) -> None:
    """semantics 11: AccountInfo with its documented fields and types."""
    account = mt5.account_info()
    assert type(account).__name__ == "AccountInfo"
    _assert_field_types(account, surface["namedtuple_field_types"]["AccountInfo"])
    assert account.login == 5001
    assert account.margin_mode == 2  # RETAIL_HEDGING
    assert account.trade_mode in (0, 1, 2)
    assert account.currency == "USD"


def test_account_relationships_when_flat(mt5: Any) -> None:
    """semantics 9.3: equity = balance + credit + profit, margin_free = equity - margin."""
    a = mt5.account_info()
    assert a.profit == 0.0
    assert a.margin == 0.0
    assert a.equity == pytest.approx(a.balance + a.credit + a.profit)
    assert a.margin_free == pytest.approx(a.equity - a.margin)


def test_netting_account_margin_mode(terminal: Any, netting: dict[str, Any]) -> None:
    """semantics 7.5: account 5002 is netting (margin_mode 0)."""
    assert terminal.initialize(**netting)
    assert terminal.account_info().margin_mode == 0


# ------------------------------------------------------------------ symbols


def test_symbols_total_counts_every_symbol(mt5: Any) -> None:
    """semantics 5: symbols_total() counts every symbol, selected or not, like symbols_get()."""
    symbols = mt5.symbols_get()
    assert type(symbols) is tuple
    assert mt5.symbols_total() == len(symbols) > 0
    assert {type(s).__name__ for s in symbols} == {"SymbolInfo"}
    selected = [s.select for s in symbols]
    assert any(selected)
    assert not all(selected)


def _names(symbols: Any) -> list[str]:
    assert symbols is not None
    return [s.name for s in symbols]


def test_group_substring_mask(mt5: Any) -> None:
    """semantics 5.1: ``*USD*`` selects every name containing USD, and only those."""
    every = _names(mt5.symbols_get())
    assert _names(mt5.symbols_get(group="*USD*")) == [n for n in every if "USD" in n]


def test_group_positional_or_keyword(mt5: Any) -> None:
    """semantics 3: symbols_get accepts group positionally or by keyword."""
    assert _names(mt5.symbols_get("*JPY")) == _names(mt5.symbols_get(group="*JPY"))
    assert all(n.endswith("JPY") for n in _names(mt5.symbols_get("*JPY")))


def test_group_exclusion_after_inclusion(mt5: Any) -> None:
    """semantics 5.1: ``*,!*USD*`` is everything except names containing USD."""
    every = _names(mt5.symbols_get())
    without = _names(mt5.symbols_get(group="*,!*USD*"))
    assert without == [n for n in every if "USD" not in n]
    assert without  # the catalogue has non-USD symbols


def test_group_several_exclusions(mt5: Any) -> None:
    """semantics 5.1: ``*,!*USD*,!*EUR*`` excludes names containing USD or EUR."""
    names = _names(mt5.symbols_get(group="*,!*USD*,!*EUR*"))
    every = _names(mt5.symbols_get())
    assert names == [n for n in every if "USD" not in n and "EUR" not in n]


def test_group_exclusion_first_is_undone_by_later_inclusion(mt5: Any) -> None:
    """semantics 5.1: conditions apply left to right from an empty set, so an exclusion listed
    before ``*`` removes nothing."""
    assert _names(mt5.symbols_get(group="!*USD*,*")) == _names(mt5.symbols_get())


def test_group_mask_without_star_matches_whole_name(mt5: Any) -> None:
    """semantics 5.1: a mask without ``*`` must match the whole name."""
    assert _names(mt5.symbols_get(group="EURUSD")) == ["EURUSD"]
    assert mt5.symbols_get(group="EUR") == ()


def test_group_matching_nothing_is_empty_tuple_not_none(mt5: Any) -> None:
    """pitfall B6: an empty selection is (), not None; last_error is Success."""
    assert mt5.symbols_get(group="NOTHING*") == ()
    assert mt5.last_error() == (1, "Success")


def test_symbols_get_bad_group_type(mt5: Any) -> None:
    """semantics 3: keyword-capable functions check their own arguments: None and (-2)."""
    assert mt5.symbols_get(group=42) is None
    assert mt5.last_error()[0] == -2


def test_symbol_info_unknown_is_not_found(mt5: Any) -> None:
    """semantics 5, pitfall B1: symbol_info of a name that does not exist: None, (-4)."""
    assert mt5.symbol_info("NO_SUCH_SYMBOL") is None
    assert mt5.last_error() == (-4, "Terminal: Not found")


def _unselected(mt5: Any) -> str:
    return next(s.name for s in mt5.symbols_get() if not s.select)


def test_symbol_info_of_unselected_symbol_works(mt5: Any, surface: dict[str, Any]) -> None:
    """semantics 5: symbol_info works for existing symbols even when not selected."""
    name = _unselected(mt5)
    info = mt5.symbol_info(name)
    assert info is not None
    assert info.name == name
    assert (info.select, info.visible) == (False, False)
    _assert_field_types(info, surface["namedtuple_field_types"]["SymbolInfo"])


def test_symbol_info_tick_of_unselected_symbol_is_none(mt5: Any) -> None:
    """semantics 5, pitfall B1: symbol_info_tick needs the symbol in Market Watch."""
    assert mt5.symbol_info_tick(_unselected(mt5)) is None


def test_symbol_select_adds_and_removes(mt5: Any) -> None:
    """semantics 5: symbol_select(name, True) adds to Market Watch, False removes."""
    name = _unselected(mt5)
    assert mt5.symbol_select(name, True) is True
    assert mt5.last_error() == (1, "Success")
    assert mt5.symbol_info(name).select is True
    assert mt5.symbol_info_tick(name) is not None
    assert mt5.symbol_select(name, False) is True
    assert mt5.symbol_info(name).select is False
    assert mt5.symbol_info_tick(name) is None


def test_symbol_select_unknown_fails(mt5: Any) -> None:
    """semantics 5, pitfall B1: an unknown name gives False and (-1, 'Terminal: Call failed')."""
    assert mt5.symbol_select("NO_SUCH_SYMBOL", True) is False
    assert mt5.last_error() == (-1, "Terminal: Call failed")


def test_symbol_info_tick_shape(mt5: Any) -> None:
    """semantics 4, 6.1: Tick.time == time_msc // 1000; bid below ask; forex has no last."""
    tick = mt5.symbol_info_tick("EURUSD")
    assert type(tick).__name__ == "Tick"
    assert tick.time == tick.time_msc // 1000
    assert 0 < tick.bid < tick.ask
    assert tick.last == 0.0


def test_symbol_info_prices_follow_the_tick(mt5: Any) -> None:
    """semantics 5: SymbolInfo carries the current bid and ask."""
    tick = mt5.symbol_info_tick("EURUSD")
    info = mt5.symbol_info("EURUSD")
    assert (info.bid, info.ask) == (tick.bid, tick.ask)
    assert info.point == pytest.approx(10.0**-info.digits)


def test_pushed_price_is_what_the_terminal_reports(env: Any, mt5: Any) -> None:
    """semantics 12 (7): one server clock; a new quote is the last tick, stamped now."""
    env.push_tick("EURUSD", 1.20001, 1.20013)
    tick = mt5.symbol_info_tick("EURUSD")
    assert (tick.bid, tick.ask) == (1.20001, 1.20013)
    assert tick.time == env.now_s()
