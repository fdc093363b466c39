"""The ``Idempotency-Key`` header of the routes that trade: required unless configured otherwise.

A write that times out or fails with a 5xx may have reached the broker. Only a key lets the
client ask again safely: the same key and body answer with the first outcome (the exactly-once
pipeline reconciles it), never a second order. Without one, a retry may double the order and
no retry leaves its fate unknown, so placing, modifying, closing and cancelling refuse a missing
key with 428 (``ServiceSettings.require_idempotency_key``, default on).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Header

__all__ = ["HEADER", "MissingIdempotencyKeyError", "idempotency_key"]

HEADER: Final = "Idempotency-Key"


class MissingIdempotencyKeyError(Exception):
    """A trading write came without an ``Idempotency-Key`` while the service requires one
    (answered 428 by :func:`mt5gate.service.problems.problem_for`)."""


def idempotency_key(required: bool) -> Callable[..., Awaitable[str | None]]:
    """A dependency: the request's ``Idempotency-Key`` (``None`` when absent and not
    ``required``; :class:`MissingIdempotencyKeyError` when absent and ``required``)."""

    async def key(
        value: Annotated[str | None, Header(
            alias=HEADER, min_length=1, max_length=128,
            description="Names this one intent (e.g. a UUID made once per order). Same key and "
            "body: the first response again, never a second order; same key, another body: 422",
        )] = None,
    ) -> str | None:  # fmt: skip
        if value is None and required:
            raise MissingIdempotencyKeyError
        return value

    return key
