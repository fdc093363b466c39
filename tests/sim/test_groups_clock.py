"""The group filter (semantics §5.1) and the server clocks (§4)."""

from __future__ import annotations

import time

import pytest

from mt5gate.sim.clock import RealClock, VirtualClock, server_ms
from mt5gate.sim.groups import matches_group, select_group

NAMES = ["EURUSD", "USDRUB", "EURRUB", "GBPJPY", "XAUUSD", "FORTS.RUB.M5", "EURUSD_T20"]


def test_docs_example_is_a_substring_match() -> None:
    assert select_group(NAMES, "*RU*") == [
        "EURUSD",
        "USDRUB",
        "EURRUB",
        "FORTS.RUB.M5",
        "EURUSD_T20",
    ]


def test_exclusions_apply_after_inclusions() -> None:
    assert select_group(NAMES, "*,!*USD*,!*EUR*") == ["GBPJPY", "FORTS.RUB.M5"]


def test_order_matters_left_to_right() -> None:
    assert select_group(NAMES, "!*USD*,*") == NAMES  # the inclusion re-adds everything


def test_mask_without_star_matches_whole_name_and_spaces_trim() -> None:
    assert select_group(NAMES, "*, !EUR") == NAMES
    assert select_group(NAMES, " EURUSD , GBPJPY ") == ["EURUSD", "GBPJPY"]


def test_case_sensitivity_is_an_option() -> None:
    assert not matches_group("EURUSD", "eur*")
    assert matches_group("EURUSD", "eur*", case_sensitive=False)


def test_empty_group_selects_nothing() -> None:
    assert select_group(NAMES, "") == []


def test_virtual_clock_moves_only_forward() -> None:
    clock = VirtualClock(server_ms(2026, 1, 5))
    assert clock.advance(1.5) == server_ms(2026, 1, 5) + 1500
    assert clock.advance(ms=5) == server_ms(2026, 1, 5) + 1505
    with pytest.raises(ValueError, match="never moves back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="never moves back"):
        clock.set(0)
    clock.set(server_ms(2026, 1, 6))
    assert clock.now_ms() == server_ms(2026, 1, 6)
    assert "VirtualClock" in repr(clock)


def test_real_clock_is_machine_time_plus_offset() -> None:
    clock = RealClock(utc_offset_s=3 * 3600)
    expected = time.time() * 1000 + 3 * 3600 * 1000
    assert abs(clock.now_ms() - expected) < 5_000
    assert "10800" in repr(clock)
