"""Placement: even, deterministic, honours pins and drains, and moves few accounts on a change."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mt5gate.fleet.placement import assign, rank

logins_st = st.sets(st.integers(1, 10**9), max_size=60)
members_st = st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=6,
                      unique=True)  # fmt: skip


@given(logins_st, members_st)
def test_every_account_has_one_replica_and_the_spread_is_even(
    logins: set[int], members: list[str]
) -> None:
    placed = assign(logins, members)
    assert set(placed) == logins
    assert set(placed.values()) <= set(members)
    loads = Counter(placed.values())
    counts = [loads.get(m, 0) for m in members]
    assert max(counts) - min(counts) <= 1


@given(logins_st, members_st)
def test_every_replica_computes_the_same_answer_whatever_the_order(
    logins: set[int], members: list[str]
) -> None:
    assert assign(sorted(logins), members) == assign(sorted(logins, reverse=True),
                                                     list(reversed(members)))  # fmt: skip


@given(logins_st, members_st, st.data())
def test_pins_hold_while_the_pinned_replica_is_eligible(
    logins: set[int], members: list[str], data: st.DataObject
) -> None:
    pins = {
        login: data.draw(st.sampled_from([*members, "gone"]))
        for login in data.draw(st.lists(st.sampled_from(sorted(logins)), unique=True))
    } if logins else {}  # fmt: skip
    placed = assign(logins, members, pins=pins)
    for login, member in pins.items():
        if member in members:
            assert placed[login] == member
        else:
            assert placed[login] in members


@given(logins_st, members_st, st.data())
def test_a_draining_replica_gets_nothing(
    logins: set[int], members: list[str], data: st.DataObject
) -> None:
    draining = data.draw(st.lists(st.sampled_from(members), unique=True))
    pins = dict.fromkeys(logins, draining[0]) if draining else {}
    placed = assign(logins, members, draining=draining, pins=pins)
    if set(draining) == set(members):
        assert placed == {}
    else:
        assert not set(placed.values()) & set(draining)
        assert set(placed) == logins


def test_a_replica_joining_or_leaving_moves_about_its_share() -> None:
    logins = range(1000, 1100)
    three = assign(logins, ["r1", "r2", "r3"])
    four = assign(logins, ["r1", "r2", "r3", "r4"])
    two = assign(logins, ["r1", "r2"])
    # the ideal is 25 moved to the newcomer, and the leaver's 33 or 34 moved away
    assert sum(three[k] != four[k] for k in logins) <= 30
    assert sum(three[k] != two[k] for k in logins) <= 40


def test_overloading_pins_still_place_everything() -> None:
    pins = dict.fromkeys(range(10), "r1")
    placed = assign(range(12), ["r1", "r2"], pins=pins)
    assert [placed[i] for i in range(10)] == ["r1"] * 10
    assert placed[10] == placed[11] == "r2"


def test_rank_is_stable_and_spreads() -> None:
    assert rank(5001, "r1") == rank(5001, "r1")
    assert len({rank(5001, f"r{i}") for i in range(50)}) == 50
