"""Route matching that costs little for the routes a request is not for.

A request is matched against the app's routes in order until one fits; ``GET tick`` passes a
dozen others first (the probes, then the account routes before it). FastAPI asks each of them
through its ``APIRoute.matches``, which juggles per-request routing context before it tries the
route's path pattern, several Python calls per route. A :class:`QuickRoute` tries its pattern
first and answers "no match" at once when the path does not fit; any other request goes to
FastAPI's own matching, so a match, a 405 for the wrong method and everything FastAPI records
for a matched route are unchanged.

A :class:`QuickRoute` also answers through :func:`~mt5gate.service.lean.lean_handler` when its
endpoint is plain enough for it (a request and ``str`` path segments, a response model), and
through FastAPI's own handler otherwise.

The shortcut tests the route's own path. That is the path FastAPI matches for a route on the
app's router, where ``create_app`` puts every route of this kind; a route of an *included*
router is matched by FastAPI against its prefixed path, so these classes are not for routers
that get included. Behind a proxy that sets ``root_path`` the shortcut stands aside.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from mt5gate.service.lean import Handler, lean_handler

__all__ = ["QuickRoute"]


class QuickRoute(APIRoute):
    """An ``APIRoute`` that refuses a path its pattern does not match before anything else,
    and answers through the lean handler where it can."""

    def get_route_handler(self) -> Handler:
        return lean_handler(self) or super().get_route_handler()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        quick = scope["type"] == "http" and not scope.get("root_path")
        if quick and self.path_regex.match(scope["path"]) is None:
            return Match.NONE, {}
        return super().matches(scope)
