"""The console's routes: pages, the fragments htmx refreshes, the JSON the charts draw, and
the controls. Thin: each reads or acts through :class:`~.api.Api` and renders a template.

Pages need a signed-in visitor (else a redirect to the sign-in page; htmx gets ``HX-Redirect``).
Every POST also needs the page's CSRF token and a same-site ``Origin`` (else 403), and every
control is refused by the API itself when the key lacks the scope (the pages only hide it).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from mt5gate.service.console.access import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Visitor,
    same_origin,
    valid_csrf,
    visitor,
)
from mt5gate.service.console.api import Api, Reply
from mt5gate.service.console.data import (
    DEAL_TYPES,
    DEFAULT_WATCH,
    ORDER_TYPES,
    TIMEFRAMES,
    account_path,
    chart_markers,
    gather_book,
    gather_overview,
    health_summary,
    number,
    snap_markers,
)
from mt5gate.service.gateway import SIMULATED_NOTICE, Gateway
from mt5gate.service.insight import ALARMING

__all__ = ["STATIC_DIR", "add_console"]

HERE: Final = Path(__file__).parent
STATIC_DIR: Final = HERE / "static"
TEMPLATES: Final = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.filters["number"] = number
TEMPLATES.env.globals["ORDER_TYPES"] = ORDER_TYPES
TEMPLATES.env.globals["DEAL_TYPES"] = DEAL_TYPES

#: What the close-all confirmation must be typed as.
CLOSE_ALL_PHRASE: Final = "CLOSE ALL"
_NAME: Final = re.compile(r"^[a-z0-9_-]{1,32}$")
_SYMBOL: Final = re.compile(r"^[A-Za-z0-9._#&+-]{1,32}$")
_DECIMAL: Final = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_MAX_FIELDS: Final = 32


class SignInRequiredError(Exception):
    """The request needs a signed-in visitor (rendered as a redirect to the sign-in page)."""


class ConsoleRefusedError(Exception):
    """A console write refused before it reached the API (CSRF, origin, form)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def add_console(app: FastAPI, gateway: Gateway) -> None:
    """Serve the console at ``/console`` (``/`` redirects there); its assets are the app's
    ``/static`` files (:data:`STATIC_DIR`)."""
    api = Api(app)
    app.state.console_api = api
    app.include_router(_router(gateway, api))

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, _: SignInRequiredError) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/console/login"})
        return RedirectResponse("/console/login", status_code=303)

    @app.exception_handler(ConsoleRefusedError)
    async def refused(request: Request, error: ConsoleRefusedError) -> Response:
        return _alert(request, error.status, "ConsoleRefusedError", error.detail)


def _alert(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    context = {"title": title, "detail": detail, "status": status}
    page = TEMPLATES.TemplateResponse(request, "_alert.html", context, status_code=status)
    page.headers.update(SECURITY_HEADERS)
    return page


def _router(gateway: Gateway, api: Api) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    def who(request: Request) -> Visitor:
        found = visitor(request, gateway.authenticator)
        if found is None:
            raise SignInRequiredError
        return found

    async def writer(request: Request) -> tuple[Visitor, dict[str, str]]:
        """The visitor of a write and its form, after the CSRF and origin checks."""
        found = who(request)
        form = await _form(request)
        token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not same_origin(request):
            raise ConsoleRefusedError(403, "This form was posted from another site.")
        if not valid_csrf(token, found):
            raise ConsoleRefusedError(
                403, "The form's CSRF token is missing or wrong: reload the page."
            )
        return found, form

    _session_routes(router, gateway, who)
    _page_routes(router, gateway, api, who)
    _data_routes(router, api, who)
    _control_routes(router, api, writer)
    return router


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form (htmx's and plain forms'), first value of each field, bounded."""
    raw = await request.body()
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleRefusedError(
            400, "The form could not be read (URL-encoded UTF-8 expected)."
        ) from None
    return {name: values[0] for name, values in parsed.items()}


#: Every console answer: scripts only from this site and never evaluated from strings (htmx's
#: eval is off), no framing (clickjacking), no sniffing, no referrer leaving the site.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _page(request: Request, template: str, who: Visitor | None, **context: Any) -> HTMLResponse:
    gateway: Gateway = request.app.state.gateway
    base = {"who": who, "simulated": gateway.simulated, "notice": SIMULATED_NOTICE,
            "accounts": sorted(gateway.accounts)}  # fmt: skip
    page = TEMPLATES.TemplateResponse(request, template, {**base, **context})
    page.headers.update(SECURITY_HEADERS)
    return page


def _account(gateway: Gateway, name: str) -> str:
    """A configured account's name, or 404."""
    if name not in gateway.accounts:
        raise ConsoleRefusedError(404, f"No account named {name!r} is configured.")
    return name


# ------------------------------------------------------------------------------ sign in / out


def _session_routes(router: APIRouter, gateway: Gateway, who: Callable[[Request], Visitor]) -> None:
    @router.get("/login")
    async def login_page(request: Request) -> HTMLResponse:
        return _page(request, "login.html", None, error="")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        key = form.get("key", "").strip()
        if not same_origin(request):
            raise ConsoleRefusedError(403, "The sign-in form was posted from another site.")
        try:
            gateway.authenticator.authenticate(key or None)
        except Exception:
            page = _page(request, "login.html", None, error="That API key is not valid here.")
            page.status_code = 401
            return page
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        found = who(request)
        form = await _form(request)
        if not same_origin(request) or not valid_csrf(form.get(CSRF_FIELD), found):
            raise ConsoleRefusedError(403, "The sign-out form's CSRF token is missing or wrong.")
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


# ------------------------------------------------------------------------------------- pages


def _page_routes(
    router: APIRouter, gateway: Gateway, api: Api, who: Callable[[Request], Visitor]
) -> None:
    @router.get("")
    async def overview(request: Request) -> HTMLResponse:
        visitor_ = who(request)
        rows, notes = await gather_overview(api, visitor_.key)
        return _page(request, "overview.html", visitor_, rows=rows, notes=notes)

    @router.get("/fragments/overview")
    async def overview_rows(request: Request) -> HTMLResponse:
        visitor_ = who(request)
        rows, notes = await gather_overview(api, visitor_.key)
        return _page(request, "_overview_rows.html", visitor_, rows=rows, notes=notes)

    @router.get("/accounts/{name}")
    async def account(request: Request, name: str) -> HTMLResponse:
        visitor_ = who(request)
        name = _account(gateway, name)
        watch = await _watch_list(api, visitor_.key, gateway, name)
        return _page(request, "account.html", visitor_, name=name, watch=watch,
                     timeframes=TIMEFRAMES, phrase=CLOSE_ALL_PHRASE)  # fmt: skip

    @router.get("/accounts/{name}/fragments/book")
    async def book(request: Request, name: str) -> HTMLResponse:
        visitor_ = who(request)
        name = _account(gateway, name)
        clock = request.query_params.get("clock") or _wanted(gateway, name)[0]
        found = await gather_book(api, visitor_.key, name, clock if _SYMBOL.match(clock) else None)
        return _page(request, "_book.html", visitor_, name=name, book=found,
                     token=_control_key)  # fmt: skip

    @router.get("/accounts/{name}/fragments/health")
    async def health(request: Request, name: str) -> HTMLResponse:
        visitor_ = who(request)
        reply = await api.get(account_path(_account(gateway, name), "/health"), visitor_.key)
        return _page(request, "_health.html", visitor_, name=name,
                     health=health_summary(reply.body))  # fmt: skip

    @router.get("/journal")
    async def journal(request: Request, account: str | None = None) -> HTMLResponse:
        visitor_ = who(request)
        chosen = _account(gateway, account) if account else None
        pages = await _journals(api, visitor_.key, gateway, chosen)
        return _page(request, "journal.html", visitor_, pages=pages, chosen=chosen)

    @router.get("/fragments/journal")
    async def journal_rows(request: Request, account: str | None = None) -> HTMLResponse:
        visitor_ = who(request)
        chosen = _account(gateway, account) if account else None
        pages = await _journals(api, visitor_.key, gateway, chosen)
        return _page(request, "_journal_rows.html", visitor_, pages=pages, chosen=chosen)


def _wanted(gateway: Gateway, name: str) -> list[str]:
    """The account's ``watch`` symbols, then :data:`DEFAULT_WATCH` (duplicates possible)."""
    return [*gateway.accounts[name].settings.watch, *DEFAULT_WATCH]


async def _watch_list(api: Api, key: str, gateway: Gateway, name: str) -> list[str]:
    """The account's watched symbols, then the defaults, those the terminal has."""
    wanted = _wanted(gateway, name)
    reply = await api.get(account_path(name, "/symbols"), key)
    known = {s.get("name") for s in reply.body} if reply.ok else set(wanted)
    return [s for i, s in enumerate(wanted) if s in known and s not in wanted[:i]][:8]


async def _journals(
    api: Api, key: str, gateway: Gateway, chosen: str | None
) -> list[dict[str, Any]]:
    """The journal of one account or of each, with the alarming orders counted."""
    pages = []
    for name in [chosen] if chosen else sorted(gateway.accounts):
        reply = await api.get(account_path(name, "/journal"), key, limit=200)
        orders = reply.body.get("orders", []) if reply.ok else []
        problem = "" if reply.ok else str(reply.problem.get("detail", ""))
        alarming = sum(1 for o in orders if o.get("state") in ALARMING)
        pages.append({"name": name, "orders": orders, "problem": problem, "alarming": alarming})
    return pages


def _control_key(action: str) -> str:
    """A fresh Idempotency-Key for a control rendered now: a double click, or a retry after a
    lost answer, sends the same key, so the action happens once."""
    return f"console-{action}-{secrets.token_urlsafe(12)}"


# -------------------------------------------------------------------------------- chart data


def _data_routes(router: APIRouter, api: Api, who: Callable[[Request], Visitor]) -> None:
    @router.get("/accounts/{name}/chart.json")
    async def chart(request: Request, name: str, symbol: str, timeframe: str = "M1") -> Response:
        visitor_ = who(request)
        if not _NAME.match(name) or not _SYMBOL.match(symbol):
            return JSONResponse({"detail": "bad account or symbol"}, status_code=400)
        bars = await api.get(account_path(name, f"/symbols/{quote(symbol)}/rates"), visitor_.key,
                             timeframe=timeframe, count=300)  # fmt: skip
        if not bars.ok:
            return JSONResponse(bars.problem, status_code=bars.status)
        rows = [{"time": b["time"], "open": b["open"], "high": b["high"], "low": b["low"],
                 "close": b["close"]} for b in bars.body]  # fmt: skip
        markers = await _markers(api, visitor_.key, name, symbol, rows)
        spec = await api.get(account_path(name, f"/symbols/{quote(symbol)}"), visitor_.key)
        digits = int(spec.body.get("digits", 5)) if spec.ok else 5
        return JSONResponse({"bars": rows, "markers": markers, "digits": digits})

    @router.get("/accounts/{name}/latency.json")
    async def latency(request: Request, name: str) -> Response:
        visitor_ = who(request)
        if not _NAME.match(name):
            return JSONResponse({"detail": "bad account"}, status_code=400)
        reply = await api.get(account_path(name, "/latency"), visitor_.key)
        return JSONResponse(reply.body if reply.ok else reply.problem, status_code=reply.status)


async def _markers(
    api: Api, key: str, name: str, symbol: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if not rows:
        return []
    first, last = int(rows[0]["time"]), int(rows[-1]["time"])  # broker server time
    window = {"from": max(0, first - 86_400), "to": max(int(time.time()), last) + 86_400}
    deals = await api.get(account_path(name, "/history/deals"), key, **window)
    found = chart_markers(deals.body if deals.ok else [], symbol)
    return snap_markers(found, [int(r["time"]) for r in rows])


# ---------------------------------------------------------------------------------- controls

Writer = Callable[[Request], Awaitable[tuple[Visitor, dict[str, str]]]]


def _value(form: dict[str, str], name: str) -> Any:
    """A form field as the API wants it: a number when it reads as one, ``None`` when blank,
    else the text (so the API's validation names the field and the rule)."""
    text = form.get(name, "").strip()
    if not text:
        return None
    return float(text) if _DECIMAL.match(text) else text


def _order_body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": form.get("symbol", "").strip(),
                            "side": form.get("side", ""), "kind": form.get("kind", "market"),
                            "volume": _value(form, "volume")}  # fmt: skip
    for name in ("price", "sl", "tp"):
        value = _value(form, name)
        if value is not None and (name != "price" or body["kind"] != "market"):
            body[name] = value
    return body


def _control_routes(router: APIRouter, api: Api, writer: Writer) -> None:
    @router.post("/accounts/{name}/orders/review")
    async def review(request: Request, name: str) -> HTMLResponse:
        visitor_, form = await writer(request)
        body = _order_body(form)
        check = await api.call("POST", account_path(name, "/orders/check"), visitor_.key,
                               body=body)  # fmt: skip
        return _page(request, "_review.html", visitor_, name=name, body=body, check=check,
                     key=_control_key("order"))  # fmt: skip

    @router.post("/accounts/{name}/orders/place")
    async def place(request: Request, name: str) -> HTMLResponse:
        visitor_, form = await writer(request)
        reply = await api.call("POST", account_path(name, "/orders"), visitor_.key,
                               body=_order_body(form), idempotency_key=_key(form))  # fmt: skip
        return _result(request, visitor_, "Order", reply, form)

    @router.post("/accounts/{name}/positions/{ticket}/close")
    async def close(request: Request, name: str, ticket: int) -> HTMLResponse:
        visitor_, form = await writer(request)
        body = {"volume": _value(form, "volume")} if form.get("volume") else {}
        reply = await api.call("POST", account_path(name, f"/positions/{ticket}/close"),
                               visitor_.key, body=body, idempotency_key=_key(form))  # fmt: skip
        return _result(request, visitor_, f"Close #{ticket}", reply, form)

    @router.post("/accounts/{name}/orders/{ticket}/cancel")
    async def cancel(request: Request, name: str, ticket: int) -> HTMLResponse:
        visitor_, form = await writer(request)
        reply = await api.call("DELETE", account_path(name, f"/orders/{ticket}"), visitor_.key,
                               idempotency_key=_key(form))  # fmt: skip
        return _result(request, visitor_, f"Cancel #{ticket}", reply, form)

    @router.post("/accounts/{name}/halt")
    async def halt(request: Request, name: str) -> HTMLResponse:
        visitor_, form = await writer(request)
        reason = form.get("reason", "").strip() or "halted from the console"
        reply = await api.call("POST", account_path(name, "/halt"), visitor_.key,
                               body={"reason": reason})  # fmt: skip
        return _result(request, visitor_, "Halt", reply, form)

    @router.post("/accounts/{name}/resume")
    async def resume(request: Request, name: str) -> HTMLResponse:
        visitor_, form = await writer(request)
        reply = await api.call("POST", account_path(name, "/resume"), visitor_.key)
        return _result(request, visitor_, "Resume", reply, form)

    @router.post("/accounts/{name}/close-all")
    async def close_all(request: Request, name: str) -> HTMLResponse:
        visitor_, form = await writer(request)
        if form.get("confirm", "").strip() != CLOSE_ALL_PHRASE:
            raise ConsoleRefusedError(
                422, f"Type {CLOSE_ALL_PHRASE} to confirm closing every position."
            )
        listed = await api.get(account_path(name, "/positions"), visitor_.key)
        if not listed.ok:
            return _result(request, visitor_, "Close all", listed, form)
        batch = _key(form) or _control_key("close-all")
        replies = [(p["ticket"], await api.call(
            "POST", account_path(name, f"/positions/{p['ticket']}/close"), visitor_.key,
            body={}, idempotency_key=f"{batch}-{p['ticket']}")) for p in listed.body]  # fmt: skip
        return _page(request, "_close_all.html", visitor_, replies=replies)


def _key(form: dict[str, str]) -> str | None:
    key = form.get("idempotency_key", "").strip()
    return key[:128] or None


def _result(
    request: Request, who: Visitor, action: str, reply: Reply, form: dict[str, str]
) -> HTMLResponse:
    return _page(request, "_result.html", who, action=action, reply=reply,
                 key=_key(form))  # fmt: skip
