"""``/docs`` and ``/redoc`` work offline, and the document gives Swagger UI its Authorize button.

The pages must load everything from the service itself (the vendored Swagger UI and Redoc, the
favicon, ``/openapi.json``): every ``src``/``href`` of their HTML is a local path that the app
answers, no address points at a CDN or a font service, and a Content-Security-Policy keeps the
browser from fetching anything else. The API key is declared as two security schemes
(``X-API-Key`` and ``Authorization: Bearer``) that every protected operation lists, and reading
the key through them behaves as before: the same 401/403/429 problems, the same precedence.

The app is called in process through httpx's ASGI transport, without its lifespan: the gateway
is never started (none of this touches a terminal).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mt5gate.service.app import create_app
from mt5gate.service.auth import Scope, hash_api_key
from mt5gate.service.config import ApiKeySettings, default_settings
from mt5gate.service.docs import CONTENT_SECURITY_POLICY
from mt5gate.service.gateway import Gateway
from tests.servers.chromium import chromium
from tests.service.conftest import InProcess

ADMIN = "mg_docs-admin-0123456789abcdefghijklmnopqrstu"
READER = "mg_docs-reader-0123456789abcdefghijklmnopqrst"
SLOW = "mg_docs-slow-0123456789abcdefghijklmnopqrstuvw"
BASE = "http://127.0.0.1:8000"
PAGES = ("/docs", "/redoc")
#: Any address with a scheme or a host ("//cdn..."): none may appear in the pages.
OFF_SERVER = re.compile(r"(?i)\b(?:https?:)?//[a-z0-9.-]+")
LINK = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""")
SPEC_URL = re.compile(r"""(?:\burl:\s*|spec-url=)["']([^"']+)["']""")


def _key(name: str, secret: str, scopes: set[Scope], **options: Any) -> ApiKeySettings:
    return ApiKeySettings(name=name, hash=hash_api_key(secret), scopes=frozenset(scopes),
                          **options)  # fmt: skip


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    keys = (_key("admin", ADMIN, {"admin"}), _key("reader", READER, {"read"}),
            _key("slow", SLOW, {"read"}, rate_per_minute=1, burst=1))  # fmt: skip
    settings = default_settings().model_copy(
        update={"data_dir": Path(tmp_path_factory.mktemp("docs")), "api_keys": keys}
    )
    return create_app(Gateway.build(settings, os.environ))


class Client:
    """A blocking client of the app in process (one event loop per request; no lifespan),
    as a reverse proxy serving it under ``root_path`` would call it."""

    def __init__(self, app: FastAPI, root_path: str = "") -> None:
        self.transport = httpx.ASGITransport(app=app, root_path=root_path)

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers)

    def request(self, method: str, path: str, headers: dict[str, str] | None) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url=BASE) as http:
                return await http.request(method, path, headers=headers)

        return asyncio.run(send())


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Client:
    return Client(app)


@pytest.fixture(scope="module")
def document(client: Client) -> dict[str, Any]:
    return client.get("/openapi.json").json()  # type: ignore[no-any-return]


def _locals(html: str) -> list[str]:
    """Every address the page makes the browser load (links, scripts, the document)."""
    return LINK.findall(html) + SPEC_URL.findall(html)


# ------------------------------------------------------------------------------ the pages


@pytest.mark.parametrize("page", PAGES)
def test_the_page_loads_only_from_the_service(client: Client, page: str) -> None:
    http = client
    answer = http.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert OFF_SERVER.findall(html) == []
    for banned in ("cdn.jsdelivr.net", "fonts.googleapis.com", "unpkg.com", "tiangolo.com"):
        assert banned not in html
    addresses = _locals(html)
    assert "/openapi.json" in addresses
    assert any(a.startswith("/static/vendor/") and a.endswith(".js") for a in addresses)
    for address in addresses:
        assert address.startswith("/"), address
        assert not address.startswith("//"), address
        fetched = http.get(address)
        assert fetched.status_code == 200, address
        assert fetched.content, address


def test_the_assets_are_served_with_their_types(client: Client) -> None:
    http = client
    links = _locals(http.get("/docs").text) + _locals(http.get("/redoc").text)
    types = {a: http.get(a).headers["content-type"] for a in links}
    assert types["/static/vendor/swagger-ui-dist/swagger-ui-bundle.js"].startswith(
        "text/javascript"
    )
    assert types["/static/vendor/swagger-ui-dist/swagger-ui.css"].startswith("text/css")
    assert types["/static/vendor/redoc/redoc.standalone.js"].startswith("text/javascript")
    assert types["/static/vendor/swagger-ui-dist/favicon-32x32.png"] == "image/png"


@pytest.mark.parametrize("page", PAGES)
def test_the_page_forbids_the_browser_any_other_server(client: Client, page: str) -> None:
    policy = client.get(page).headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for sources in directives.values():
        assert OFF_SERVER.findall(sources) == []
        assert "*" not in sources
        assert "https:" not in sources.split()


def test_swagger_ui_asks_no_online_validator(client: Client) -> None:
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html


@pytest.mark.parametrize("page", PAGES)
def test_behind_a_proxy_the_addresses_carry_its_prefix(app: FastAPI, page: str) -> None:
    http = Client(app, root_path="/gate")
    answer = http.get("/gate" + page)
    assert answer.status_code == 200
    addresses = _locals(answer.text)
    assert addresses
    for address in addresses:
        assert address.startswith("/gate/"), address
        assert http.get(address).status_code == 200, address


def test_the_pages_are_not_in_the_document(document: dict[str, Any]) -> None:
    for path in (*PAGES, "/docs/oauth2-redirect", "/static"):
        assert path not in document["paths"]


# ------------------------------------------------------------------------------ the document


def test_the_document_declares_both_key_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    api_key, bearer = schemes["ApiKey"], schemes["Bearer"]
    assert (api_key["type"], api_key["in"], api_key["name"]) == ("apiKey", "header", "X-API-Key")
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")


def test_every_protected_operation_lists_the_schemes(document: dict[str, Any]) -> None:
    alternatives: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
    protected = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            headers = {p["name"].lower() for p in operation.get("parameters", ())
                       if p["in"] == "header"}  # fmt: skip
            assert "x-api-key" not in headers, (method, path)  # a scheme now, not a parameter
            if path.startswith("/v1/accounts"):
                assert operation["security"] == alternatives, (method, path)
                protected += 1
            for requirement in operation.get("security", ()):
                assert set(requirement) <= set(document["components"]["securitySchemes"])
    assert protected >= 19
    assert "security" not in document["paths"]["/livez"]["get"]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    """Checked against the OpenAPI 3.1 schema by openapi-spec-validator when installed, else by
    schemathesis (a dev dependency, which bundles the official schema): both offline."""
    try:
        from openapi_spec_validator import validate  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        schemathesis = pytest.importorskip("schemathesis")
        schemathesis.openapi.from_dict(document).validate()
    else:
        validate(document)


# ------------------------------------------------------------------------------ behaviour


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": ""}, 401),
        ({"X-API-Key": "mg_wrong"}, 401),
        ({"Authorization": "Bearer mg_wrong"}, 401),
        ({"Authorization": f"Basic {ADMIN}"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"X-API-Key": ADMIN}, 200),
        ({"Authorization": f"Bearer {ADMIN}"}, 200),
        ({"Authorization": f"bearer   {ADMIN}  "}, 200),
        ({"X-API-Key": "", "Authorization": f"Bearer {ADMIN}"}, 200),
        ({"X-API-Key": "mg_wrong", "Authorization": f"Bearer {ADMIN}"}, 401),  # X-API-Key first
        ({"X-API-Key": ADMIN, "Authorization": "Bearer mg_wrong"}, 200),
    ],
)
def test_the_schemes_read_the_key_as_the_probes_do(
    client: Client, headers: dict[str, str], status: int
) -> None:
    """``/metrics`` (not public by default) still reads the key with ``presented_key``: a
    protected route, reading it through the schemes, must answer alike."""
    route, probe = (
        client.get("/v1/accounts", headers=headers),
        client.get("/metrics", headers=headers),
    )
    assert (route.status_code, probe.status_code) == (status, status)
    if status == 401:
        assert route.headers["content-type"] == "application/problem+json"
        assert route.json()["detail"] == probe.json()["detail"]
        assert route.headers["www-authenticate"] == probe.headers["www-authenticate"]


def test_a_missing_key_is_refused_with_the_authenticators_words(client: Client) -> None:
    answer = client.get("/v1/accounts")
    assert answer.json()["detail"] == (
        "This needs an API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'."
    )
    wrong = client.get("/v1/accounts", headers={"Authorization": "Bearer mg_wrong"})
    assert wrong.json()["detail"] == "The API key is not valid for this service."


def test_scopes_and_rates_still_apply_through_either_scheme(client: Client) -> None:
    for sent in ({"X-API-Key": READER}, {"Authorization": f"Bearer {READER}"}):
        refused = client.request("POST", "/v1/accounts/demo/halt", sent)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
    first = client.get("/v1/accounts", headers={"Authorization": f"Bearer {SLOW}"})
    second = client.get("/v1/accounts", headers={"X-API-Key": SLOW})
    assert (first.status_code, second.status_code) == (200, 429)
    assert int(second.headers["retry-after"]) > 0


# ------------------------------------------------------------------------------ in a browser


def _chromium(profile: Path) -> Any:
    """Headless Chromium logging its pages' network events."""
    return chromium(profile, {"performance": "ALL"})


def _off_server_loads(driver: Any, origin: str) -> list[str]:
    """The network requests (http, https, ws, wss) that went anywhere but ``origin`` and were
    not blocked by the page's Content-Security-Policy."""
    asked: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            asked[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            blocked.add(params["requestId"])
    network = ("http:", "https:", "ws:", "wss:")  # chrome:// pages are the browser's own
    return [url for rid, url in asked.items() if rid not in blocked
            and url.startswith(network) and not url.startswith(origin + "/")]  # fmt: skip


@pytest.mark.slow
def test_in_a_browser_the_docs_work_offline_and_authorize(tmp_path: Path) -> None:
    """Swagger UI renders from the vendored files, its Authorize dialog offers both schemes and
    *Try it out* then succeeds; Redoc renders; neither page loads anything from elsewhere."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = InProcess(tmp_path, ADMIN)
    origin = f"http://127.0.0.1:{server.port}"
    driver = _chromium(tmp_path / "profile")
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(origin + "/docs")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
        driver.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize").click()
        dialog = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".modal-ux"))
        assert "ApiKey" in dialog.text
        assert "Bearer" in dialog.text
        dialog.find_element(By.CSS_SELECTOR, "input").send_keys(ADMIN)
        dialog.find_element(By.CSS_SELECTOR, "button.authorize").click()
        dialog.find_element(By.CSS_SELECTOR, "button.btn-done").click()
        operation = driver.find_element(By.ID, "operations-accounts-accounts_v1_accounts_get")
        operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda d: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
        operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        operation.find_element(By.CSS_SELECTOR, ".execute").click()
        status = ".live-responses-table tbody .response-col_status"
        wait.until(lambda d: operation.find_elements(By.CSS_SELECTOR, status))
        assert operation.find_element(By.CSS_SELECTOR, status).text.strip() == "200"
        assert _off_server_loads(driver, origin) == []
        driver.get(origin + "/redoc")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-section-id]"))
        assert "mt5gate" in driver.find_element(By.TAG_NAME, "h1").text
        assert _off_server_loads(driver, origin) == []
    finally:
        driver.quit()
        server.stop()
