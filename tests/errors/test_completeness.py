"""Every trade retcode and every ``last_error`` code in surface.json is classified exactly once,
and the groups are the ones DESIGN.md §4 lists. Adding a code to the surface without
classifying it fails here."""

from __future__ import annotations

from typing import Any

import pytest

from mt5gate.constants import ResultCode, TradeRetcode
from mt5gate.errors import (
    ERROR_CLASSES,
    SEND_FAILURE_OUTCOMES,
    SUCCESS_CODE,
    TRADE_OUTCOMES,
    MT5AuthError,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5InitError,
    MT5TimeoutError,
    MT5TradingDisabledError,
    MT5ValidationError,
    Outcome,
    send_failure_outcome,
    trade_outcome,
)


def _codes(surface: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k: v for k, v in surface["constants"].items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def retcodes(surface: dict[str, Any]) -> set[int]:
    codes = set(_codes(surface, "TRADE_RETCODE_").values())
    assert len(codes) == 40  # guards the prefix: the 5.0.6231 surface has 40 retcodes
    return codes


@pytest.fixture(scope="module")
def result_codes(surface: dict[str, Any]) -> set[int]:
    codes = set(_codes(surface, "RES_").values())
    assert len(codes) == 15
    return codes


def test_every_trade_retcode_has_exactly_one_outcome(retcodes: set[int]) -> None:
    assert set(TRADE_OUTCOMES) == retcodes
    assert all(isinstance(outcome, Outcome) for outcome in TRADE_OUTCOMES.values())


def test_the_enum_matches_the_surface(retcodes: set[int], result_codes: set[int]) -> None:
    assert {int(c) for c in TradeRetcode} == retcodes
    assert {int(c) for c in ResultCode} == result_codes


def test_every_last_error_code_but_success_has_one_class(result_codes: set[int]) -> None:
    assert SUCCESS_CODE == 1
    assert set(ERROR_CLASSES) == result_codes - {SUCCESS_CODE}
    assert all(issubclass(cls, MT5Error) for cls in ERROR_CLASSES.values())


def test_every_last_error_code_has_a_send_failure_outcome(result_codes: set[int]) -> None:
    assert set(SEND_FAILURE_OUTCOMES) == result_codes


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        TRADE_OUTCOMES[10009] = Outcome.REJECTED  # type: ignore[index]
    with pytest.raises(TypeError):
        ERROR_CLASSES[-1] = MT5Error  # type: ignore[index]
    with pytest.raises(TypeError):
        SEND_FAILURE_OUTCOMES[-1] = Outcome.REJECTED  # type: ignore[index]


def _group(outcome: Outcome) -> set[int]:
    return {code for code, o in TRADE_OUTCOMES.items() if o is outcome}


def test_design_outcome_groups(retcodes: set[int]) -> None:
    assert _group(Outcome.EXECUTED) == {10008, 10009, 10010}
    assert _group(Outcome.RETRYABLE) == {10004, 10020, 10021, 10024}
    assert _group(Outcome.GATE) == {10017, 10026, 10027}
    assert _group(Outcome.UNKNOWN) == {10011, 10012, 10031}
    rejected = _group(Outcome.REJECTED)
    assert rejected == retcodes - {10008, 10009, 10010, 10004, 10020, 10021, 10024} - {
        10017,
        10026,
        10027,
        10011,
        10012,
        10031,
    }
    # DESIGN.md §4 names these as business rejections explicitly.
    design = {10006, *range(10013, 10017), 10018, 10019, 10022, 10030, 10033, 10034, 10035}
    assert design | {10036, *range(10038, 10046)} <= rejected


@pytest.mark.parametrize(
    ("retcode", "why"),
    [
        (10018, "market closed: a business answer from a live server"),
        (10025, "no changes: harmless, nothing to redo"),
        (10028, "locked: the target is busy, this request was refused"),
        (10007, "canceled by the trader: never resent automatically"),
    ],
)
def test_decided_retcodes_are_rejections(retcode: int, why: str) -> None:
    assert trade_outcome(retcode) is Outcome.REJECTED, why


def test_an_unrecognised_retcode_is_unknown() -> None:
    assert trade_outcome(10099) is Outcome.UNKNOWN
    assert trade_outcome(0) is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-1, MT5DataError),
        (-2, MT5ValidationError),
        (-3, MT5DataError),
        (-4, MT5DataError),
        (-5, MT5DataError),
        (-6, MT5AuthError),
        (-7, MT5AuthError),
        (-8, MT5TradingDisabledError),
        (-10000, MT5ConnectionError),
        (-10001, MT5ConnectionError),
        (-10002, MT5ConnectionError),
        (-10003, MT5InitError),
        (-10004, MT5ConnectionError),
        (-10005, MT5TimeoutError),
    ],
)
def test_error_class_of_each_code(code: int, cls: type[MT5Error]) -> None:
    assert ERROR_CLASSES[code] is cls


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (-10000, Outcome.UNKNOWN),
        (-10001, Outcome.UNKNOWN),
        (-10002, Outcome.UNKNOWN),
        (-10005, Outcome.UNKNOWN),
        (-10004, Outcome.RETRYABLE),  # no pipe existed: the request never left the process
        (-10003, Outcome.RETRYABLE),
        (-2, Outcome.REJECTED),
        (-8, Outcome.GATE),
        (1, Outcome.UNKNOWN),
        (-1, Outcome.UNKNOWN),
        (-12345, Outcome.UNKNOWN),
    ],
)
def test_send_failure_outcomes(code: int, outcome: Outcome) -> None:
    assert send_failure_outcome(code) is outcome


def test_outcome_values() -> None:
    assert [o.value for o in Outcome] == ["executed", "retryable", "rejected", "gate", "unknown"]
