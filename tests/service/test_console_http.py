"""The console over real HTTP, without a browser: sign-in, the cookie, CSRF and origin checks,
scopes, exactly-once controls, and the insight routes (health, journal, latency) it draws.

The service runs in this process (uvicorn on a thread, so coverage sees it) on the simulated
demo account, pinned to an open market, with a key of each scope. The browser tests
(tests/console) drive the same pages in Chromium.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets

from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key, new_api_key
from mt5gate.service.config import ApiKeySettings, default_settings
from mt5gate.service.console.access import COOKIE, csrf_token
from mt5gate.service.gateway import Gateway
from mt5gate.sim import RealClock, SimConfig, SimTerminal
from mt5gate.sim.clock import server_ms_of
from tests.service.conftest import OPEN_MARKET, free_port

#: The simulator's deep past starts 2024-01-01 here, not 2010: the chart asks 300 bars of each
#: timeframe, and 300 MN1 bars from 2010 are 16 years of M1 bars to synthesise (1.7 s on an
#: idle core; past the 10 s read deadline, hence 503, with coverage and parallel test workers
#: on two cores). Two years still give MN1 bars.
DEEP_HISTORY_FROM_S = 1_704_067_200


def console_terminal(_: object = None) -> SimTerminal:
    """A real-time simulator at ``OPEN_MARKET`` with two years of deep history."""
    start = server_ms_of(datetime.fromisoformat(OPEN_MARKET))
    config = SimConfig(deep_history_from_s=DEEP_HISTORY_FROM_S)
    return SimTerminal(config, clock=RealClock(start_ms=start))


KEYS = {scope: new_api_key() for scope in ("admin", "trade", "read")}
SCOPES = {"admin": {"read", "trade", "admin"}, "trade": {"read", "trade"}, "read": {"read"}}


class Console:
    """The service on a thread, with one key per scope."""

    def __init__(self, data_dir: Path) -> None:
        keys = tuple(
            ApiKeySettings(name=name, hash=hash_api_key(key), scopes=frozenset(SCOPES[name]))
            for name, key in KEYS.items()
        )
        settings = default_settings().model_copy(update={"data_dir": data_dir, "api_keys": keys})
        self.gateway = Gateway.build(settings, os.environ, terminal_for=console_terminal)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.gateway), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-console")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not (self.server.started and self.gateway.account("demo").ready):
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.02)

    def browser(self, scope: str | None = "admin") -> httpx.Client:
        """A client as a signed-in browser: the cookie, same-origin headers."""
        cookies = {COOKIE: KEYS[scope]} if scope else {}
        return httpx.Client(
            base_url=self.base, cookies=cookies, timeout=30, headers={"Origin": self.base}
        )

    def api(self, scope: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"X-API-Key": KEYS[scope]}, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    served = Console(tmp_path_factory.mktemp("console"))
    yield served
    served.stop()


def form(scope: str, **fields: str) -> dict[str, str]:
    return {"csrf": csrf_token(KEYS[scope]), **fields}


def halted(console: Console) -> bool:
    """The account's halt switch, read from its session (health shows it at the next probe)."""
    return console.gateway.account("demo").session.risk.halted


# ------------------------------------------------------------------------------ signing in


def test_root_and_pages_send_strangers_to_sign_in(console: Console) -> None:
    with httpx.Client(base_url=console.base, timeout=30) as stranger:
        assert stranger.get("/").headers["location"] == "/console"
        for path in (
            "/console",
            "/console/accounts/demo",
            "/console/journal",
            "/console/accounts/demo/chart.json?symbol=EURUSD",
        ):
            answer = stranger.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/console/login"
        htmx = stranger.get("/console/fragments/overview", headers={"HX-Request": "true"})
        assert htmx.status_code == 204
        assert htmx.headers["HX-Redirect"] == "/console/login"
    with httpx.Client(base_url=console.base, cookies={COOKIE: "mg_not-a-key"}) as forged:
        assert forged.get("/console").status_code == 303


def test_sign_in_keeps_the_key_in_an_httponly_strict_cookie(console: Console) -> None:
    with httpx.Client(base_url=console.base, timeout=30) as browser:
        page = browser.get("/console/login")
        assert page.status_code == 200
        assert 'id="api-key"' in page.text
        wrong = browser.post("/console/login", data={"key": "mg_wrong"})
        assert wrong.status_code == 401
        assert "not valid" in wrong.text
        assert COOKIE not in browser.cookies
        signed = browser.post("/console/login", data={"key": KEYS["read"]})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/console"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        assert "Max-Age" not in cookie
        assert "expires" not in cookie.lower()
        overview = browser.get("/console")
        assert overview.status_code == 200
        assert 'data-account="demo"' in overview.text
        assert KEYS["read"] not in overview.text  # the key never reaches the page
        out = browser.post("/console/logout", data=form("read"))
        assert out.status_code == 303
        assert 'mt5gate_console=""' in out.headers["set-cookie"]


def test_sign_in_from_another_site_is_refused(console: Console) -> None:
    with httpx.Client(base_url=console.base, timeout=30) as browser:
        answer = browser.post(
            "/console/login", data={"key": KEYS["admin"]}, headers={"Origin": "http://evil.example"}
        )
        assert answer.status_code == 403
        assert COOKIE not in answer.headers.get("set-cookie", "")


def test_sign_out_needs_the_csrf_token(console: Console) -> None:
    with console.browser() as browser:
        assert browser.post("/console/logout", data={"csrf": "x"}).status_code == 403


# ------------------------------------------------------------------------------------ pages


def test_every_page_and_fragment_renders(console: Console) -> None:
    with console.browser() as browser:
        expected = {
            "/console": 'id="accounts"',
            "/console/fragments/overview": 'data-account="demo"',
            "/console/accounts/demo": 'id="order-form"',
            "/console/accounts/demo/fragments/book": 'id="positions"',
            "/console/accounts/demo/fragments/health": 'id="health-checks"',
            "/console/journal": 'class="grid journal"',
            "/console/journal?account=demo": "Orders journal: demo",
            "/console/fragments/journal": 'data-account="demo"',
        }
        for path, marker in expected.items():
            page = browser.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            assert marker in page.text, path
        assert browser.get("/console/accounts/nope").status_code == 404
        assert browser.get("/console/journal?account=nope").status_code == 404


def test_overview_shows_health_simulation_and_money(console: Console) -> None:
    with console.browser() as browser:
        row = browser.get("/console/fragments/overview").text
    assert 'data-status="pass"' in row or 'data-status="warn"' in row
    assert "SIMULATED" in row
    assert "connected" in row
    assert "closed" in row
    assert re.search(r"\d[\d,]*\.\d\d USD", row)  # equity with its currency


def test_read_key_sees_no_controls_and_is_refused_anyway(console: Console) -> None:
    with console.browser("read") as browser:
        page = browser.get("/console/accounts/demo").text
        assert 'id="trade-controls"' not in page
        assert 'id="admin-controls"' not in page
        assert 'id="close-all-form"' not in page
        refused = browser.post("/console/accounts/demo/halt", data=form("read", reason="x"))
        assert refused.status_code == 200
        assert 'data-status="403"' in refused.text
        review = browser.post(
            "/console/accounts/demo/orders/review",
            data=form("read", symbol="EURUSD", side="buy", volume="0.01"),
        )
        assert 'id="review-problem"' in review.text
        assert "trade" in review.text
    assert not halted(console)


def test_writes_without_the_csrf_token_or_from_another_site_are_refused(
    console: Console,
) -> None:
    with console.browser() as browser:
        missing = browser.post("/console/accounts/demo/halt", data={"reason": "forged"})
        wrong = browser.post("/console/accounts/demo/halt", data={"csrf": "0" * 64})
        foreign = browser.post(
            "/console/accounts/demo/halt",
            data=form("admin"),
            headers={"Origin": "http://evil.example"},
        )
        other_key = browser.post("/console/accounts/demo/halt", data=form("read"))
        unreadable = browser.post(
            "/console/accounts/demo/halt",
            content=b"\xff\xfe=\xff",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    for answer in (missing, wrong, foreign, other_key):
        assert answer.status_code == 403
        assert 'role="alert"' in answer.text
    assert unreadable.status_code in (400, 403)
    assert not halted(console)


def test_halt_and_resume_through_the_console(console: Console) -> None:
    with console.browser() as browser:
        done = browser.post("/console/accounts/demo/halt", data=form("admin", reason="drill"))
        assert "trading halted (drill)" in done.text
        assert halted(console)
        refused = browser.post(
            "/console/accounts/demo/orders/place",
            data=form(
                "admin",
                symbol="EURUSD",
                side="buy",
                volume="0.01",
                idempotency_key="console-test-halted",
            ),
        )
        assert 'data-status="409"' in refused.text
        resumed = browser.post("/console/accounts/demo/resume", data=form("admin"))
        assert "trading resumed" in resumed.text
    assert not halted(console)


def test_an_order_is_reviewed_with_its_margin_and_key_then_placed_once(console: Console) -> None:
    with console.browser("trade") as browser:
        review = browser.post(
            "/console/accounts/demo/orders/review",
            data=form("trade", symbol="EURUSD", side="buy", volume="0.02", sl="", tp=""),
        )
        assert 'id="order-confirm"' in review.text
        margin = re.search(r'id="confirm-margin">([^<]+)<', review.text)
        key = re.search(r'id="confirm-key">([^<]+)<', review.text)
        assert margin
        assert float(margin.group(1).replace(",", "")) > 0
        assert key
        assert key.group(1).startswith("console-order-")
        fields = form(
            "trade",
            symbol="EURUSD",
            side="buy",
            kind="market",
            volume="0.02",
            idempotency_key=key.group(1),
        )
        first = browser.post("/console/accounts/demo/orders/place", data=fields)
        again = browser.post("/console/accounts/demo/orders/place", data=fields)  # double click
    assert 'data-status="201"' in first.text
    assert "retcode 10009" in first.text
    deal = re.search(r"deal (\d+)", first.text)
    assert deal
    with console.browser("read") as browser:  # the broker's clock is months behind this one's
        book = browser.get("/console/accounts/demo/fragments/book?clock=EURUSD").text
    assert f"<td>{deal.group(1)}</td>" in book.split('id="deals"')[1]
    order = re.search(r"order (\d+)", first.text)
    assert order
    assert f"order {order.group(1)}" in again.text
    positions = console.api().get("/v1/accounts/demo/positions").json()
    mine = [p for p in positions if p["volume"] == 0.02 and p["symbol"] == "EURUSD"]
    assert len(mine) == 1
    status = console.api().get(f"/v1/accounts/demo/requests/{key.group(1)}").json()
    assert status["state"] == "ACKNOWLEDGED"
    assert status["result"]["order"] == int(order.group(1))


def test_a_bad_field_is_named(console: Console) -> None:
    with console.browser() as browser:
        review = browser.post(
            "/console/accounts/demo/orders/review",
            data=form("admin", symbol="EURUSD", side="buy", volume="lots"),
        )
    assert 'id="review-problem"' in review.text
    assert "volume" in review.text


def test_partial_close_close_and_close_all(console: Console) -> None:
    api = console.api()
    for n in range(2):
        api.post(
            "/v1/accounts/demo/orders",
            headers={"Idempotency-Key": f"console-ca-{n}"},
            json={"symbol": "GBPUSD", "side": "buy", "volume": 0.1},
        ).raise_for_status()
    tickets = [
        p["ticket"]
        for p in api.get("/v1/accounts/demo/positions").json()
        if p["symbol"] == "GBPUSD"
    ]
    with console.browser() as browser:
        partial = browser.post(
            f"/console/accounts/demo/positions/{tickets[0]}/close",
            data=form("admin", volume="0.04", idempotency_key="console-pc"),
        )
        assert 'data-status="200"' in partial.text, partial.text
        left = {p["ticket"]: p["volume"] for p in api.get("/v1/accounts/demo/positions").json()}
        assert left[tickets[0]] == pytest.approx(0.06)
        book = browser.get("/console/accounts/demo/fragments/book").text
        assert f'data-ticket="{tickets[0]}"' in book
        assert "close-position" in book
        unconfirmed = browser.post("/console/accounts/demo/close-all", data=form("admin"))
        assert unconfirmed.status_code == 422
        assert "CLOSE ALL" in unconfirmed.text
        assert len(api.get("/v1/accounts/demo/positions").json()) >= 2
        closed = browser.post(
            "/console/accounts/demo/close-all", data=form("admin", confirm="CLOSE ALL")
        )
    assert 'id="close-all-result"' in closed.text
    assert "refused" not in closed.text
    assert api.get("/v1/accounts/demo/positions").json() == []


def test_pending_order_cancel(console: Console) -> None:
    api = console.api()
    tick = api.get("/v1/accounts/demo/symbols/EURUSD/tick").json()
    placed = api.post(
        "/v1/accounts/demo/orders",
        headers={"Idempotency-Key": "console-pend"},
        json={
            "symbol": "EURUSD",
            "side": "buy",
            "kind": "limit",
            "volume": 0.01,
            "price": round(tick["bid"] - 0.01, 5),
        },
    )
    ticket = placed.json()["order"]
    with console.browser() as browser:
        book = browser.get("/console/accounts/demo/fragments/book").text
        assert f'data-ticket="{ticket}"' in book
        assert "buy limit" in book
        done = browser.post(
            f"/console/accounts/demo/orders/{ticket}/cancel",
            data=form("admin", idempotency_key="console-cancel"),
        )
    assert 'data-status="200"' in done.text
    assert all(o["ticket"] != ticket for o in api.get("/v1/accounts/demo/orders").json())


def test_chart_json_has_bars_and_the_accounts_markers(console: Console) -> None:
    api = console.api()
    api.post(
        "/v1/accounts/demo/orders",
        headers={"Idempotency-Key": "console-chart"},
        json={"symbol": "USDJPY", "side": "sell", "volume": 0.01},
    ).raise_for_status()
    with console.browser("read") as browser:
        chart = browser.get(
            "/console/accounts/demo/chart.json", params={"symbol": "USDJPY", "timeframe": "M1"}
        ).json()
        assert len(chart["bars"]) > 10
        assert {"time", "open", "high", "low", "close"} <= set(chart["bars"][0])
        times = {bar["time"] for bar in chart["bars"]}
        sells = [m for m in chart["markers"] if m["shape"] == "arrowDown"]
        assert sells
        assert all(m["time"] in times for m in chart["markers"])
        for timeframe in ("H1", "MN1", "16385"):
            assert (
                browser.get(
                    "/console/accounts/demo/chart.json",
                    params={"symbol": "USDJPY", "timeframe": timeframe},
                ).status_code
                == 200
            )
        bad = browser.get(
            "/console/accounts/demo/chart.json", params={"symbol": "USDJPY", "timeframe": "H7"}
        )
        assert bad.status_code == 422
        assert "timeframe" in bad.text
        assert (
            browser.get("/console/accounts/demo/chart.json", params={"symbol": "<x>"}).status_code
            == 400
        )
        latency = browser.get("/console/accounts/demo/latency.json").json()
    assert latency
    assert latency[-1]["calls"] > 0
    assert latency[-1]["p99_ms"] >= latency[-1]["p50_ms"]


# ------------------------------------------------------------------------- insight routes


def test_account_health_route(console: Console) -> None:
    answer = console.api("read").get("/v1/accounts/demo/health")
    assert answer.headers["content-type"].startswith("application/health+json")
    assert {"session:state", "circuitBreaker:state", "trading:halt"} <= set(answer.json()["checks"])
    assert console.api("read").get("/v1/accounts/nope/health").status_code == 404


def test_journal_route_lists_orders_newest_first_with_history(console: Console) -> None:
    api = console.api()
    for n in range(2):
        api.post(
            "/v1/accounts/demo/orders",
            headers={"Idempotency-Key": f"console-j{n}"},
            json={"symbol": "EURUSD", "side": "sell", "volume": 0.01},
        ).raise_for_status()
    page = api.get("/v1/accounts/demo/journal", params={"limit": 2}).json()
    keys = [o["idempotency_key"] for o in page["orders"]]
    assert keys == ["console-j1", "console-j0"]
    kinds = [step["kind"] for step in page["orders"][0]["history"]]
    assert kinds[:2] == ["INTENT", "SENT"]
    assert kinds[-1] == "ACKNOWLEDGED"
    assert page["orders"][0]["alarming"] is False
    assert page["orders"][0]["advice"] == ""
    open_ = api.get("/v1/accounts/demo/journal", params={"unresolved": "true"}).json()
    assert open_["orders"] == []
    assert api.get("/v1/accounts/demo/journal", params={"limit": 0}).status_code == 422
    with console.browser("read") as browser:
        rows = browser.get("/console/fragments/journal").text
    assert 'data-key="console-j1"' in rows
    assert 'data-state="ACKNOWLEDGED"' in rows


def test_the_stream_takes_the_console_cookie_from_this_site_only(console: Console) -> None:
    url = f"ws://127.0.0.1:{console.port}/v1/stream"
    cookie = {"Cookie": f"{COOKIE}={KEYS['read']}"}

    async def first_message(origin: str) -> dict[str, object]:
        headers = {**cookie, "Origin": origin}
        async with websockets.connect(url, additional_headers=headers) as socket:
            await socket.send(
                json.dumps({"op": "subscribe", "account": "demo", "ticks": ["EURUSD"]})
            )
            return dict(json.loads(await asyncio.wait_for(socket.recv(), 10)))

    same = asyncio.run(first_message(f"http://127.0.0.1:{console.port}"))
    assert same["type"] == "subscribed"
    foreign = asyncio.run(first_message("http://evil.example"))
    assert foreign["type"] == "error"  # the subscribe was read as a failed authentication
