"""A lean request handler for the plainest routes: the same answer as FastAPI's, less work.

FastAPI answers every request through one general handler: it records telemetry, builds an
endpoint context for error messages, opens exit stacks for ``yield`` dependencies, and solves
the endpoint's dependency tree, node by node, validating every parameter. For ``GET tick``,
whose endpoint takes the request and two path segments, that work was about half of what the
app did per request (``cProfile`` of the app alone under 64 concurrent requests: 135 µs a
request through FastAPI's handler, 82 µs through this one; the bare FastAPI app of
``bench/service_baseline.py`` took 86 µs).

:func:`lean_handler` builds a handler for a route only when nothing of that work applies to
it (:func:`is_plain`):

* its parameters are the request and path parameters annotated plain ``str``, with no
  constraint, taken from the path as strings (``{name}``, ``{name:path}``), so FastAPI's
  validation would return them unchanged;
* no dependency (none of its own, of its router or of the app), query, header, cookie or body
  parameter, nor any of FastAPI's special ones (``Response``, ``BackgroundTasks``, ...);
* a coroutine endpoint (not a generator, not a stream), FastAPI's default response class and
  a response model.

Its handler calls the endpoint with those values, then validates and serialises the result
with the response model exactly as FastAPI does (``validate_python(from_attributes=True)``,
then ``dump_json`` with the route's ``response_model_*`` options, ``application/json``, the
route's status code); a :class:`~starlette.responses.Response` the endpoint returns is sent as
it is. Exceptions propagate to the app's handlers as before. Every other route keeps FastAPI's
handler. The route object is FastAPI's in both cases, so matching, the OpenAPI document and
``scope["route"]`` (the metrics' route template) do not change. What a lean route does not
give is FastAPI's own per-operation telemetry spans (dependencies, serialisation), which
mt5gate does not switch on. ``tests/service/test_lean.py`` checks, route by route, that both
handlers give the same status, headers and bytes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.convertors import PathConvertor, StringConvertor

__all__ = ["Handler", "is_plain", "lean_handler"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

#: FastAPI's special parameters (the request itself is the one a lean route may take).
_SPECIAL: Final = (
    "websocket_param_name", "http_connection_param_name", "response_param_name",
    "background_tasks_param_name", "security_scopes_param_name",
)  # fmt: skip
_OTHER_PARAMETERS: Final = (
    "query_params", "header_params", "cookie_params", "body_params", "dependencies",
)  # fmt: skip


def is_plain(route: APIRoute) -> bool:
    """Whether ``route`` qualifies for :func:`lean_handler` (the module docstring's list)."""
    dependant, call = route.dependant, route.dependant.call
    return (
        call is not None
        and inspect.iscoroutinefunction(call)
        and not any(getattr(dependant, name, None) for name in _OTHER_PARAMETERS)
        and not any(getattr(dependant, name, None) for name in _SPECIAL)
        and all(_plain_string(field, route) for field in dependant.path_params)
        and route.body_field is None
        and route.response_field is not None
        and isinstance(route.response_class, DefaultPlaceholder)
    )


def _plain_string(field: Any, route: APIRoute) -> bool:
    """A path parameter FastAPI's validation hands on unchanged: ``str``, no constraint, and
    a string from the path (``{name}`` or ``{name:path}``; ``{name:int}`` gives an int, which
    FastAPI would refuse for a ``str``)."""
    info = field.field_info
    convertor = route.param_convertors.get(field.alias)
    return (
        info.annotation is str
        and not info.metadata
        and isinstance(convertor, StringConvertor | PathConvertor)
    )


def lean_handler(route: APIRoute) -> Handler | None:
    """The lean handler of ``route``, or None when the route needs FastAPI's own."""
    if not is_plain(route):
        return None
    call = route.dependant.call
    assert call is not None  # is_plain checked it
    segments = tuple((field.name, field.alias) for field in route.dependant.path_params)
    request_name = route.dependant.request_param_name
    model: TypeAdapter[Any] = TypeAdapter(route.response_model)
    dump: Callable[[Any], bytes] = functools.partial(
        model.dump_json, include=route.response_model_include,
        exclude=route.response_model_exclude, by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
    )  # fmt: skip
    status = route.status_code or 200

    async def handle(request: Request) -> Response:
        found = request.path_params
        values: dict[str, Any] = {name: found[alias] for name, alias in segments}
        if request_name is not None:
            values[request_name] = request
        raw = await call(**values)
        if isinstance(raw, Response):
            return raw
        try:
            value = model.validate_python(raw, from_attributes=True)
        except ValidationError as error:
            raise ResponseValidationError(_located(error), body=raw) from None
        return Response(dump(value), status, media_type="application/json")

    return handle


def _located(error: ValidationError) -> list[dict[str, Any]]:
    """The errors as FastAPI reports a response that fails its model: under ``response``."""
    return [{**item, "loc": ("response", *item["loc"])} for item in error.errors()]
