"""The OpenAPI document has an example answer for every route, and each one is valid.

The examples come from the simulator (:mod:`mt5gate.service.examples`); here each is validated
against the response model of its route, so a model that changes without its example (or an
example that stops matching its route) fails the suite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from mt5gate.service.app import create_app
from mt5gate.service.config import default_settings
from mt5gate.service.examples import STATIC_EXAMPLES, simulated_examples
from mt5gate.service.gateway import Gateway


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[APIRoute]]:
    settings = default_settings().model_copy(
        update={"data_dir": Path(tmp_path_factory.mktemp("openapi"))}
    )
    app = create_app(Gateway.build(settings, os.environ))
    return app.openapi(), _api_routes(app.routes)


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every documented route, including those of included routers."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            found.append(route)
        elif hasattr(route, "original_router"):  # FastAPI's wrapper of an included router
            found += _api_routes(route.original_router.routes)
    return found


def _success(operation: dict[str, Any]) -> dict[str, Any]:
    responses = operation["responses"]
    return responses.get("200") or responses["201"]


def test_every_route_has_an_example(document: tuple[dict[str, Any], list[APIRoute]]) -> None:
    schema, routes = document
    missing = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            content = _success(operation).get("content", {})
            if not content or any("example" not in media for media in content.values()):
                missing.append(f"{method} {path}")
    assert missing == []
    documented = {(m, p) for p, item in schema["paths"].items() for m in item}
    assert documented == {(m.lower(), r.path) for r in routes for m in r.methods}
    assert len(documented) == 28


def test_examples_fit_their_routes(document: tuple[dict[str, Any], list[APIRoute]]) -> None:
    _, routes = document
    examples = {**STATIC_EXAMPLES, **simulated_examples()}
    checked = 0
    for route in routes:
        for method in route.methods:
            example = examples[(method.lower(), route.path)]
            if route.response_model is not None:
                TypeAdapter(route.response_model).validate_python(example)  # raises if not
                checked += 1
    assert checked >= 17  # every /v1 route with a model (the probes answer plain JSON)


def test_examples_are_real_simulator_answers() -> None:
    examples = simulated_examples()
    placed = examples[("post", "/v1/accounts/{account}/orders")]
    assert placed["retcode"] == 10009  # TRADE_RETCODE_DONE
    (position,) = examples[("get", "/v1/accounts/{account}/positions")]
    assert position["volume"] == 0.1  # 0.2 bought, 0.1 closed by the close example
    assert position["ticket"] == placed["order"]
    (pending,) = examples[("get", "/v1/accounts/{account}/orders")]
    assert pending["type"] == 2  # the buy limit; the other one was removed
    assert simulated_examples() is examples  # built once per process
