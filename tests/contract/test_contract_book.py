"""Depth of market: market_book_add / get / release (semantics 6.3)."""

from __future__ import annotations

from typing import Any

SELL, BUY = 1, 2


def test_book_get_needs_a_subscription(mt5: Any) -> None:
    """semantics 6.3: call market_book_add(sym) first; without it there is no book."""
    assert mt5.market_book_get("EURUSD") is None


def test_book_levels_and_ordering(mt5: Any) -> None:
    """semantics 6.3: a tuple of BookInfo; sell levels first, highest price down, then buy
    levels highest price down; every sell above every buy."""
    assert mt5.market_book_add("EURUSD") is True
    book = mt5.market_book_get("EURUSD")
    assert type(book) is tuple
    assert book
    assert {type(level).__name__ for level in book} == {"BookInfo"}
    types = [level.type for level in book]
    sells = [level for level in book if level.type == SELL]
    buys = [level for level in book if level.type == BUY]
    assert sells
    assert buys
    assert types == [SELL] * len(sells) + [BUY] * len(buys)
    sell_prices = [level.price for level in sells]
    buy_prices = [level.price for level in buys]
    assert sell_prices == sorted(sell_prices, reverse=True)
    assert buy_prices == sorted(buy_prices, reverse=True)
    assert min(sell_prices) > max(buy_prices)


def test_book_volumes_int_and_float(mt5: Any) -> None:
    """semantics 6.3: BookInfo(type, price, volume:int, volume_dbl:float)."""
    mt5.market_book_add("EURUSD")
    for level in mt5.market_book_get("EURUSD"):
        assert type(level.volume) is int
        assert type(level.volume_dbl) is float
        assert level.volume > 0


def test_book_brackets_the_quote(mt5: Any) -> None:
    """semantics 6.3: the best sell is at or above the ask... the best buy at or below the bid."""
    mt5.market_book_add("EURUSD")
    tick = mt5.symbol_info_tick("EURUSD")
    book = mt5.market_book_get("EURUSD")
    assert min(level.price for level in book if level.type == SELL) >= tick.ask
    assert max(level.price for level in book if level.type == BUY) <= tick.bid


def test_book_release_ends_the_subscription(mt5: Any) -> None:
    """semantics 6.3: market_book_release(sym) ends the subscription."""
    assert mt5.market_book_add("EURUSD")
    assert mt5.market_book_release("EURUSD") is True
    assert mt5.market_book_get("EURUSD") is None


def test_book_release_without_subscription_fails(mt5: Any) -> None:
    """semantics 2.4/6.3: a boolean function that fails returns False."""
    assert mt5.market_book_release("GBPUSD") is False


def test_book_add_unknown_symbol_fails(mt5: Any) -> None:
    """semantics 5: an unknown symbol cannot be subscribed: False."""
    assert mt5.market_book_add("NO_SUCH_SYMBOL") is False
