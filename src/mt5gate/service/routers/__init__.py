"""The ``/v1`` routes, a module per resource, each with one ``add`` function:

* :mod:`.accounts`: the account list, an account's info and its terminal's;
* :mod:`.market`: symbols, a symbol, its tick, bars and ticks;
* :mod:`.book`: open positions, pending orders, the history of orders and deals;
* :mod:`.trading`: placing, checking, modifying, closing and cancelling, and where an order of
  an ``Idempotency-Key`` stands;
* :mod:`.admin`: an account's trading halt.

Each route is thin (parse, call the account's session, render) and answers from the request's
gateway (:func:`~mt5gate.service.deps.gateway_of`), which its route class resolved while it
checked the key: the app's, or the override of :func:`~mt5gate.service.deps.current_gateway`.
What the routes share (route classes, :class:`~mt5gate.service.routes.Routes`, ``BASE``) is in
:mod:`mt5gate.service.routes`. :func:`add_routes` puts them all on the app's own router, in the
order of the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter

from mt5gate.service.routers import accounts, admin, book, market, trading
from mt5gate.service.routes import AccountRoute, AdminRoute, Routes, TradeRoute
from mt5gate.service.security import KeyedRoute

__all__ = ["add_routes"]


def add_routes(router: APIRouter, *, key_required: bool) -> None:
    """Every ``/v1`` route of this package, on ``router`` (the app's own); ``key_required``:
    trading writes refuse a missing ``Idempotency-Key`` (428)."""
    read = Routes(router, AccountRoute)
    accounts.add(Routes(router, KeyedRoute), read)
    market.add(read)
    book.add(read)
    trading.add(read, Routes(router, TradeRoute), key_required=key_required)
    admin.add(Routes(router, AdminRoute))
