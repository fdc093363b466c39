"""Client order ids: the magic bit layout, namespace filtering and comment tags."""

from __future__ import annotations

import pytest

from mt5gate.orders.ids import (
    COMMENT_LIMIT,
    DEFAULT_NAMESPACE,
    MAX_SEQUENCE,
    ClientOrderId,
    parse_comment_tag,
    tag_comment,
)


@pytest.mark.parametrize("sequence", [1, 2, 35, 36, 123_456_789, MAX_SEQUENCE])
@pytest.mark.parametrize("namespace", [0, 1, DEFAULT_NAMESPACE, 0xFFFF])
def test_magic_round_trip(sequence: int, namespace: int) -> None:
    cid = ClientOrderId(5001, sequence, namespace)
    assert cid.magic >> 48 == namespace
    assert cid.magic & (2**48 - 1) == sequence
    assert 0 < cid.magic < 2**64
    assert ClientOrderId.from_magic(cid.magic, namespace, login=5001) == cid


def test_default_magic_layout() -> None:
    assert ClientOrderId(7, 0x2A).magic == 0x6D67_0000_0000_002A


@pytest.mark.parametrize(
    "magic", [0, 42, (0x1234 << 48) | 5, DEFAULT_NAMESPACE << 48, -1, 2**64, True, 1.5]
)
def test_foreign_magic_is_not_ours(magic: object) -> None:
    assert ClientOrderId.from_magic(magic, login=5001) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("login", "sequence", "namespace", "error"),
    [
        (0, 1, DEFAULT_NAMESPACE, ValueError),
        (5001, 0, DEFAULT_NAMESPACE, ValueError),
        (5001, MAX_SEQUENCE + 1, DEFAULT_NAMESPACE, ValueError),
        (5001, 1, 0x10000, ValueError),
        (5001, 1, -1, ValueError),
        ("5001", 1, DEFAULT_NAMESPACE, TypeError),
        (5001, True, DEFAULT_NAMESPACE, TypeError),
        (5001, 1, 1.0, TypeError),
    ],
)
def test_ranges_are_validated(
    login: object, sequence: object, namespace: object, error: type
) -> None:
    with pytest.raises(error):
        ClientOrderId(login, sequence, namespace)  # type: ignore[arg-type]


def test_from_magic_validates_namespace() -> None:
    with pytest.raises(ValueError, match="16 bits"):
        ClientOrderId.from_magic(1, 0x1_0000, login=1)


def test_comment_tag_is_base36() -> None:
    assert ClientOrderId(1, 1).comment_tag == "mg:1"
    assert ClientOrderId(1, 36).comment_tag == "mg:10"
    assert ClientOrderId(1, MAX_SEQUENCE).comment_tag == "mg:2rrvthnxtr"
    assert len(ClientOrderId(1, MAX_SEQUENCE).comment_tag) <= 13


@pytest.mark.parametrize("sequence", [1, 99, 1_000_000, MAX_SEQUENCE])
@pytest.mark.parametrize(
    "user", ["", "scalper", "x" * 200, "  spaced   out\ttext  ", "a b " * 20, "é" * 40]
)
def test_tagged_comment_fits_and_keeps_the_tag(sequence: int, user: str) -> None:
    cid = ClientOrderId(5001, sequence)
    comment = tag_comment(user, cid)
    assert len(comment) <= COMMENT_LIMIT
    assert comment.startswith(cid.comment_tag)
    assert parse_comment_tag(comment) == sequence


def test_short_user_comment_is_kept_whole() -> None:
    assert tag_comment("grid buy", ClientOrderId(1, 35)) == "mg:z grid buy"
    assert tag_comment("", ClientOrderId(1, 35)) == "mg:z"


@pytest.mark.parametrize(
    "comment",
    [None, "", "hello", "mg:", "xmg:12", "mg:12x!", "mg:ABC", "[sl 1.2345]", "mg:00000000000"],
)
def test_comments_without_our_tag(comment: str | None) -> None:
    assert parse_comment_tag(comment) is None


def test_tag_found_after_broker_prefix() -> None:
    assert parse_comment_tag("[tp 1.1] mg:1z") == 71
