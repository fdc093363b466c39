"""The gateway the ``/v1`` routes answer from, as a FastAPI dependency an app user can swap.

:func:`current_gateway` is the app's gateway (``app.state.gateway``, what ``create_app`` was
given). Overriding it the FastAPI way makes the routes answer from another one, for a test or
an app that embeds the service::

    app.dependency_overrides[current_gateway] = lambda: other_gateway

The routes do not ask FastAPI to solve it, though: a dependency is solved node by node on every
request (on ``GET tick``, 76 more Python calls per request for this one, on 668; 417 more as a
plain function, which FastAPI runs in a worker thread), and the route classes
already need the gateway before FastAPI parses anything, to check the key and look the account
up (:class:`~mt5gate.service.security.KeyedRoute`). So the route's check resolves it once per
request (:func:`resolve_gateway`, honouring an override), keeps it in the request's scope, and
the endpoint takes it from there (:func:`gateway_of` on the ``Request`` FastAPI hands it,
which costs no dependency either). The key check, the account lookup and the endpoint all see
the same gateway.

An override is called as it is, not solved as a dependency: a plain function (not a coroutine
function), called with no argument, or with the request when it takes one. What it returns must
be a :class:`Gateway`; anything else is a ``TypeError`` saying so (a 500 problem).
The override swaps what the routes and ``/v1/stream`` answer from (a stream resolves it when
it opens); the middleware (metrics, body limit, fleet forwarding), the probes (``/livez``,
``/readyz``, ``/v1/health``, ``/metrics``: the process's own health) and the console stay on the
gateway the app was made with, which its lifespan starts and stops.
A gateway swapped in is the caller's to start and stop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Final

from starlette.requests import HTTPConnection

from mt5gate.service.gateway import Gateway

__all__ = ["current_gateway", "gateway_of", "resolve_gateway"]

#: Where :func:`resolve_gateway` keeps a request's gateway in its ASGI scope.
SCOPE_KEY: Final = "mt5gate.gateway"


async def current_gateway(request: HTTPConnection) -> Gateway:
    """The app's gateway (``app.state.gateway``): the dependency to override, and one a route
    of an app user's may take (``Depends(current_gateway)``; a coroutine function, so FastAPI
    does not hand it to a worker thread as it does a plain one)."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def resolve_gateway(request: HTTPConnection) -> Gateway:
    """The gateway this request is answered from: an override of :func:`current_gateway`
    when the app has one, else the app's own; kept in the request's scope for
    :func:`gateway_of`. A route class calls it once, before FastAPI parses the request."""
    app = request.app
    provide = app.dependency_overrides.get(current_gateway)
    # app.state.gateway is current_gateway(request), inlined: this runs on every request
    gateway = app.state.gateway if provide is None else _overridden(provide, request)
    request.scope[SCOPE_KEY] = gateway
    return gateway


def gateway_of(request: HTTPConnection) -> Gateway:
    """The gateway an endpoint answers from: the one its route resolved for this request
    (resolved now if its route did not)."""
    gateway: Gateway | None = request.scope.get(SCOPE_KEY)
    return gateway if gateway is not None else resolve_gateway(request)


def _overridden(provide: Callable[..., Any], request: HTTPConnection) -> Gateway:
    """What an override of :func:`current_gateway` provides (a test's, not the hot path)."""
    arity = len(inspect.signature(provide).parameters)
    gateway = provide() if arity == 0 else provide(request) if arity == 1 else None
    if not isinstance(gateway, Gateway):
        if inspect.iscoroutine(gateway):
            gateway.close()  # an async override's: never awaited, so no warning about it
        raise TypeError(
            "app.dependency_overrides[current_gateway] must be a plain function giving a "
            "Gateway (called with no argument, or with the request), not one giving "
            f"{type(gateway).__name__}"
        )
    return gateway
