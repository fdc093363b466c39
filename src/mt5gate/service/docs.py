"""The API's interactive docs, offline: Swagger UI at ``/docs`` and Redoc at ``/redoc``.

FastAPI's own ``/docs`` and ``/redoc`` pages load their scripts and styles from
cdn.jsdelivr.net, their favicon from fastapi.tiangolo.com and Redoc's fonts from Google: on a
trading machine without internet access (or behind a proxy that blocks CDNs) they stay blank,
and each visit tells third parties where the service runs. These pages are the same ones
(FastAPI's ``get_swagger_ui_html`` and ``get_redoc_html``) pointed at the copies vendored in
``console/static/vendor/`` (``scripts/vendor_assets.py``), served by the app under
:data:`STATIC_PATH`.

Each page also carries a Content-Security-Policy that lets the browser load nothing from
anywhere but this server. The bundles themselves know a few outside addresses: Swagger UI asks
validator.swagger.io for a badge unless ``validatorUrl`` is null (set here), and Redoc's
sidebar shows a logo from cdn.redoc.ly, with no option to turn it off; under the policy that
image is refused and Redoc hides it.

Swagger UI's *Authorize* button appears because the document declares the API key's security
schemes (:mod:`mt5gate.service.security`). No OAuth2 flow is declared, so no
``/docs/oauth2-redirect`` page is needed.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "FAVICON",
    "REDOC_JS",
    "STATIC_PATH",
    "SWAGGER_CSS",
    "SWAGGER_JS",
    "add_offline_docs",
]

#: Where the app serves ``src/mt5gate/service/console/static`` (a Starlette ``StaticFiles``).
STATIC_PATH: Final = "/static"
_VENDOR: Final = f"{STATIC_PATH}/vendor"
SWAGGER_JS: Final = f"{_VENDOR}/swagger-ui-dist/swagger-ui-bundle.js"
SWAGGER_CSS: Final = f"{_VENDOR}/swagger-ui-dist/swagger-ui.css"
FAVICON: Final = f"{_VENDOR}/swagger-ui-dist/favicon-32x32.png"
REDOC_JS: Final = f"{_VENDOR}/redoc/redoc.standalone.js"

#: The docs pages' policy: everything from this server only. Inline scripts and styles are
#: allowed because FastAPI's pages start Swagger UI with an inline script and both UIs inject
#: their styles; ``data:`` images are Swagger UI's icons, ``blob:`` workers Redoc's search.
CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
))  # fmt: skip

#: Swagger UI's options beyond FastAPI's defaults: no badge from validator.swagger.io.
_SWAGGER_PARAMETERS: Final = {"validatorUrl": None}


def add_offline_docs(app: FastAPI) -> None:
    """Register ``GET /docs`` (Swagger UI) and ``GET /redoc`` (Redoc) on ``app``, both reading
    ``app.openapi_url`` and loading only the vendored files under :data:`STATIC_PATH` (which the
    caller mounts). The app must be created with ``docs_url=None, redoc_url=None`` so FastAPI
    does not register its CDN pages first. Nothing is added when the app has no OpenAPI URL."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=root + SWAGGER_JS, swagger_css_url=root + SWAGGER_CSS,
            swagger_favicon_url=root + FAVICON, swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )  # fmt: skip
        return _confined(page)

    @app.get("/redoc", include_in_schema=False, response_class=HTMLResponse)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=root + REDOC_JS, redoc_favicon_url=root + FAVICON,
            with_google_fonts=False,
        )  # fmt: skip
        return _confined(page)


def _root_path(request: Request) -> str:
    """The prefix a reverse proxy serves the app under (uvicorn's ``--root-path``), as FastAPI's
    own docs pages prefix their URLs: the browser must ask the proxy for the same path."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _confined(page: HTMLResponse) -> HTMLResponse:
    """``page`` with :data:`CONTENT_SECURITY_POLICY`, so the browser fetches nothing from off
    the server, whatever the bundles ask for."""
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page
