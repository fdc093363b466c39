"""The real module's argument conventions (semantics §3, §7.1; pitfalls C3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mt5gate.records import TradeRequest
from mt5gate.sim.args import RequestRules, check_format, date_seconds, parse_request
from mt5gate.sim.errors import SimError

RULES = RequestRules()


def test_format_counts_arguments() -> None:
    with pytest.raises(TypeError, match=r"takes exactly 4 arguments \(3 given\)"):
        check_format("copy_rates_from", "OiOi", ("EURUSD", 1, 0))


@pytest.mark.parametrize(
    ("fmt", "args", "message"),
    [
        ("OiOi", ("EURUSD", 1.0, 0, 10), "cannot be interpreted as an integer"),
        ("Oiii", ("EURUSD", 1, 0, "10"), "cannot be interpreted as an integer"),
        ("kOdd", (0, "EURUSD", "1", 1.1), "must be real number, not str"),
        ("kOdd", (0, "EURUSD", True, 1.1), "must be real number, not bool"),
    ],
)
def test_format_rejects_wrong_scalars(fmt: str, args: tuple[object, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        check_format("f", fmt, args)


def test_format_accepts_ints_for_doubles() -> None:
    check_format("order_calc_margin", "kOdd", (0, "EURUSD", 1, 1.1))


def test_dates_use_timestamp_and_seconds() -> None:
    aware = datetime(2020, 1, 10, tzinfo=UTC)
    assert date_seconds(aware, "date_from") == 1578614400
    assert date_seconds(1578614400, "date_from") == 1578614400
    assert date_seconds(1578614400.9, "date_from") == 1578614400
    naive = datetime(2020, 1, 10)
    assert date_seconds(naive, "date_from") == int(naive.timestamp())  # local time, as MT5 does


@pytest.mark.parametrize("bad", ["2020-01-10", None, True])
def test_bad_dates_name_the_argument(bad: object) -> None:
    with pytest.raises(SimError) as caught:
        date_seconds(bad, "date_to")
    assert caught.value.last_error == (-2, 'Invalid "date_to" argument')


def test_request_defaults_are_echoed() -> None:
    echoed = parse_request({"action": 1, "symbol": "EURUSD", "volume": 0.1}, RULES)
    assert isinstance(echoed, TradeRequest)
    assert echoed.action == 1
    assert echoed.volume == 0.1
    assert (echoed.price, echoed.comment, echoed.magic, echoed.position) == (0.0, "", 0, 0)


@pytest.mark.parametrize(
    ("request_dict", "field"),
    [
        ({"action": 1, "symbol": "EURUSD", "volume": 1}, "volume"),
        ({"action": 1, "symbol": "EURUSD", "volume": None}, "volume"),
        ({"action": 1, "symbol": "EURUSD"}, "volume"),
        ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "price": None}, "price"),
        ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "price": 1}, "price"),
        ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "comment": "x" * 32}, "comment"),
        ({"action": 1.0, "symbol": "EURUSD", "volume": 0.1}, "action"),
        ({"action": 1, "symbol": 7, "volume": 0.1}, "symbol"),
        ({"action": 1, "symbol": "EURUSD", "volume": 0.1, "magic": 2**64}, "magic"),
    ],
)
def test_malformed_fields_are_refused_by_name(request_dict: dict[str, object], field: str) -> None:
    with pytest.raises(SimError) as caught:
        parse_request(request_dict, RULES)
    assert caught.value.last_error == (-2, f'Invalid "{field}" argument')


def test_volume_not_required_to_remove_an_order() -> None:
    assert parse_request({"action": 8, "order": 5}, RULES).order == 5


def test_not_a_dict() -> None:
    with pytest.raises(SimError) as caught:
        parse_request([("action", 1)], RULES)
    assert caught.value.code == -2


def test_unknown_keys_ignored_or_refused_by_rule() -> None:
    request = {"action": 8, "order": 5, "colour": "red"}
    assert parse_request(request, RULES).order == 5
    with pytest.raises(SimError, match="colour"):
        parse_request(request, RequestRules(reject_unknown_keys=True))


def test_int_price_allowed_by_rule_but_never_int_volume() -> None:
    lenient = RequestRules(int_price_allowed=True)
    assert parse_request({"action": 1, "volume": 0.1, "price": 2}, lenient).price == 2.0
    with pytest.raises(SimError, match="volume"):
        parse_request({"action": 1, "volume": 1}, lenient)
