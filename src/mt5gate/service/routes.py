"""What the ``/v1`` routes share: the route classes, :class:`Routes`, ``BASE`` and helpers.

The routes themselves are in :mod:`mt5gate.service.routers`, a module per resource. Scopes:
reads need ``read``; placing, checking, modifying, closing and cancelling need ``trade``;
halting and resuming need ``admin`` (``admin`` implies ``trade`` implies ``read``). Each route
checks its caller's key for its scope, and an account route looks its account up, before
FastAPI parses anything (:class:`AccountRoute`, :class:`~mt5gate.service.security.KeyedRoute`):
401, 403 or 429 first, then 404 for an unknown account, then 422 for what the request itself
gets wrong. The account is a path parameter of the route's own; in the signature it follows the
route's other path parameters, where the OpenAPI document has always listed it.

The gateway a route answers from is resolved by that same check (the app's, or an override of
:func:`~mt5gate.service.deps.current_gateway`) and read by the endpoint from its ``Request``
(:func:`~mt5gate.service.deps.gateway_of`): no endpoint closes over a gateway, and none costs a
dependency to solve.

The routes are added to the app's own router (:class:`Routes`), not included from a router of
their own: FastAPI matches an included router's routes twice per request (once to find the
router, once to pick the route), which cost a fifth of ``GET tick``'s time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.routing import APIRoute

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5ValidationError
from mt5gate.service.gateway import Gateway
from mt5gate.service.security import KeyedRoute
from mt5gate.session.ranges import date_seconds

__all__ = [
    "BASE",
    "AccountName",
    "AccountRoute",
    "AdminRoute",
    "Routes",
    "SymbolName",
    "TradeRoute",
    "in_order",
    "parse_timeframe",
    "rows_of",
]

#: The path of one account; every account route's path starts with it.
BASE: Final = "/v1/accounts/{account}"
AccountName = Annotated[str, Path(description="A configured account name", examples=["demo"])]
SymbolName = Annotated[str, Path(description="Symbol name", examples=["EURUSD"])]


def rows_of(array: Any) -> list[dict[str, Any]]:
    """A numpy structured array (bars, ticks) as JSON-ready rows."""
    names = array.dtype.names or ()
    return [dict(zip(names, row, strict=True)) for row in np.asarray(array).tolist()]


def parse_timeframe(value: str) -> int:
    """``H1`` or ``16385``: the MT5 timeframe constant."""
    if value.isdigit() and int(value) in {int(t) for t in Timeframe}:
        return int(value)
    try:
        return int(Timeframe[value.upper()])
    except KeyError:
        names = ", ".join(t.name for t in Timeframe)
        raise MT5ValidationError(field="timeframe", rule=f"one of {names}") from None


def in_order(date_from: object, date_to: object) -> None:
    """A range whose ``to`` is before its ``from`` is a mistake, not an empty answer: 422."""
    if date_from is None or date_to is None:
        return
    start, end = (date_seconds(d) for d in (date_from, date_to))  # type: ignore[arg-type]
    if start > end:
        raise MT5ValidationError(field="to", rule="not before from")


class AccountRoute(KeyedRoute):
    """A route of one account (``{account}`` in its path), for a caller with the ``read``
    scope: the key is checked, then the account looked up (404 problem for an unknown one)."""

    def check(self, request: Request) -> Gateway:
        gateway = super().check(request)
        gateway.account(request.path_params["account"])
        return gateway


class TradeRoute(AccountRoute):
    """An account route that trades: the ``trade`` scope."""

    key_scope = "trade"


class AdminRoute(AccountRoute):
    """An account route that switches the account's halt: the ``admin`` scope."""

    key_scope = "admin"


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Routes:
    """Adds routes of one route class to a router: ``@read.get(path, tags=[...])`` is
    ``@router.get(path, tags=[...])`` with the route class of ``read`` (FastAPI's decorators
    take no route class of their own)."""

    router: APIRouter
    route_class: type[APIRoute]

    def get(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``GET`` route (``options`` as ``APIRouter.add_api_route`` takes them)."""
        return self._adding(path, "GET", options)

    def post(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``POST`` route."""
        return self._adding(path, "POST", options)

    def patch(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``PATCH`` route."""
        return self._adding(path, "PATCH", options)

    def delete(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``DELETE`` route."""
        return self._adding(path, "DELETE", options)

    def _adding(
        self, path: str, method: str, options: dict[str, Any]
    ) -> Callable[[_Endpoint], _Endpoint]:
        def add(endpoint: _Endpoint) -> _Endpoint:
            self.router.add_api_route(path, endpoint, methods=[method],
                                      route_class_override=self.route_class, **options)  # fmt: skip
            return endpoint

        return add
