"""The web console of ``mt5gate serve`` in a real browser (headless Chromium, Selenium).

Each test drives the pages as a user does (the sign-in form, the order form and its
confirmation, the close buttons and their ``confirm()`` dialog, the keyboard) and checks what
the page shows against what the service's HTTP API says happened. Screenshots of every page
visited go to ``artifacts/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys as Key
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from mt5gate.service.console.access import csrf_token
from tests.console.conftest import (
    ACCOUNT,
    REMOTE,
    WAIT_S,
    Bridged,
    Console,
    Keys,
    WebDriver,
    api,
    halted,
)
from tests.service.conftest import Served

POSITIONS = f"/v1/accounts/{ACCOUNT}/positions"
ORDERS = f"/v1/accounts/{ACCOUNT}/orders"


def tickets(http: httpx.Client, account: str = ACCOUNT) -> dict[int, dict[str, Any]]:
    """The account's open positions by ticket, from the API."""
    reply = http.get(f"/v1/accounts/{account}/positions")
    assert reply.status_code == 200, reply.text
    return {p["ticket"]: p for p in reply.json()}


def accept_confirm(driver: WebDriver) -> str:
    """Accept the page's ``confirm()`` dialog; its text."""
    alert = WebDriverWait(driver, WAIT_S).until(ec.alert_is_present())
    text = alert.text
    alert.accept()
    return text


# ----------------------------------------------------------------------------- sign in


def test_signing_in_keeps_the_key_in_an_httponly_strict_cookie_only(
    console: Console, keys: Keys
) -> None:
    console.open("/")
    console.visible("#api-key")
    assert console.path == "/console/login"  # / -> /console -> the sign-in page
    console.shot("login")

    console.type("#api-key", "mg_" + "x" * 43)
    console.click("#sign-in")
    assert "not valid" in console.text("#login-error")
    assert not [c for c in console.driver.get_cookies() if c["name"] == "mt5gate_console"]
    console.shot("login-error")
    assert all("401 (Unauthorized)" in e for e in console.errors())  # the refused sign-in

    console.sign_in(keys.admin)
    row = console.visible(f"#accounts tr[data-account={ACCOUNT}]")
    assert console.path == "/console"
    assert "admin" in console.text("#signed-in-as")
    console.shot("overview")
    cookies = {c["name"]: c for c in console.driver.get_cookies()}
    cookie = cookies["mt5gate_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert "expiry" not in cookie  # a session cookie: it ends with the browser session
    seen = console.driver.execute_script("""
        const dump = {};
        for (const store of [window.localStorage, window.sessionStorage]) {
          for (let i = 0; i < store.length; i++) dump[store.key(i)] = store.getItem(store.key(i));
        }
        return JSON.stringify([dump, document.cookie, location.href, window.name]);
    """)
    assert keys.admin not in seen
    assert keys.admin not in console.driver.page_source
    console.until(ec.staleness_of(row), "the overview's rows were not refreshed (every 3 s)")
    console.visible(f"#accounts tr[data-account={ACCOUNT}]")

    console.click("#sign-out")
    console.visible("#api-key")
    assert console.path == "/console/login"
    assert "mt5gate_console" not in {c["name"] for c in console.driver.get_cookies()}
    console.open("/console")
    console.visible("#api-key")
    assert console.path == "/console/login"
    assert console.errors() == []


# ------------------------------------------------------------------------ live quotes


#: Whether a chart's drawing is as wide and high as its box (lightweight-charts draws in a
#: table of canvases inside it).
FILLS = """
const box = document.querySelector(arguments[0]);
const drawn = box && box.querySelector("table");
if (!drawn || box.clientWidth === 0) return false;
const inner = drawn.getBoundingClientRect();
return Math.abs(inner.width - box.clientWidth) <= 2
  && Math.abs(inner.height - box.clientHeight) <= 2;
"""


def fills(chart: str) -> Callable[[WebDriver], bool]:
    """A wait condition: ``chart`` is drawn as wide and high as its box."""
    return lambda driver: bool(driver.execute_script(FILLS, chart))


def test_a_quote_changes_on_its_own_over_the_stream(console: Console, keys: Keys) -> None:
    console.sign_in(keys.admin)
    console.account()
    bid = "#quotes tr[data-symbol=EURUSD] td.bid"
    first = console.until(lambda _: (t := console.find(bid).text.strip()) not in ("", "-") and t,
                          "no EURUSD quote arrived over the stream")  # fmt: skip
    assert float(first) > 0
    assert console.text("#stream-state") == "live"
    changed = console.until(lambda _: (t := console.find(bid).text.strip()) != first and t,
                            "the EURUSD bid never changed")  # fmt: skip
    assert float(changed) > 0
    console.until(lambda _: int(console.find("#chart").get_attribute("data-bars") or 0) > 0,
                  "the chart drew no bars")  # fmt: skip
    console.until(lambda _: console.find("#latency").get_attribute("data-points") is not None,
                  "the latency plot was never loaded")  # fmt: skip
    console.present("#health #health-checks tbody tr")
    for chart in ("#chart", "#latency"):  # each fills its box, also once the layout settled
        console.until(fills(chart), f"{chart} does not fill its box")
    console.shot("account")
    assert console.errors() == []


# --------------------------------------------------------------------- place and close


def test_an_order_placed_and_closed_through_the_forms(
    console: Console, served: Served, keys: Keys
) -> None:
    with api(served, keys.admin) as http:
        before = tickets(http)
        console.sign_in(keys.trade)
        console.account()
        assert console.find_all("#trade-controls")
        assert not console.find_all("#admin-controls")  # a trade key is no admin

        console.fill_order("EURUSD", "buy", "0.01")
        key, margin = console.review()
        assert key.startswith("console-order-")
        assert float(margin.replace(",", "")) > 0
        console.shot("order-confirm")
        result = console.result_of(lambda: console.click("#confirm-order"))
        assert result.get_attribute("data-status") == "201", result.text
        assert "done: retcode 10009" in result.text
        console.gone("#order-confirm")

        opened = {t: p for t, p in tickets(http).items() if t not in before}
        assert len(opened) == 1, opened
        ((ticket, position),) = opened.items()
        assert (position["symbol"], position["volume"], position["type"]) == ("EURUSD", 0.01, 0)
        status = http.get(f"/v1/accounts/{ACCOUNT}/requests/{key}").json()
        assert status["outcome"] == "executed", status
        row = f"#positions tr[data-ticket='{ticket}']"
        console.visible(row)
        console.shot("position")

        def close() -> None:
            console.click(f"{row} button.close-position")
            assert f"Close position {ticket}" in accept_confirm(console.driver)

        closing = console.result_of(close)
        assert closing.get_attribute("data-status") == "200", closing.text
        assert f"Close #{ticket}" in closing.text
        console.gone(row)
        console.until(lambda _: int(console.find("#chart").get_attribute("data-markers") or 0)
                      >= 2, "the chart does not mark the entry and the exit")  # fmt: skip
        console.shot("position-closed")

        assert ticket not in tickets(http)
        opened_s = position["time_msc"] // 1000  # broker server time
        window = {"from": opened_s - 86_400, "to": opened_s + 86_400}
        deals = http.get(f"/v1/accounts/{ACCOUNT}/history/deals", params=window).json()
        mine = [(d["entry"], d["volume"]) for d in deals if d["position_id"] == ticket]
        assert sorted(mine) == [(0, 0.01), (1, 0.01)]  # in and out, once each
        assert set(tickets(http)) == set(before)
    assert console.errors() == []


def test_the_book_lists_the_deals_of_a_closed_position(
    console: Console, served: Served, keys: Keys
) -> None:
    """History is asked in broker server time: the pinned simulator's is months behind."""
    with api(served, keys.admin) as http:
        placed = http.post(ORDERS, headers={"Idempotency-Key": "console-deals-open"},
                           json={"symbol": "EURUSD", "side": "buy", "volume": 0.01})  # fmt: skip
        assert placed.status_code == 201, placed.text
        ticket = placed.json()["order"]
        closed = http.post(f"{POSITIONS}/{ticket}/close", json={},
                           headers={"Idempotency-Key": "console-deals-close"})  # fmt: skip
        assert closed.status_code == 200, closed.text
    deals = {placed.json()["deal"]: "in", closed.json()["deal"]: "out"}
    console.sign_in(keys.read)
    console.account()  # the book is read after the deals were made
    console.shot("deals")
    rows = [row.text.split() for row in console.find_all("#deals tbody tr:not(.empty)")]
    shown = {int(cells[0]): cells for cells in rows}
    assert set(deals) <= set(shown), rows  # a simulator's clock is months behind this one's
    for deal, entry in deals.items():
        assert entry in shown[deal], shown[deal]


# --------------------------------------------------------------------------------- halt


def test_a_halted_account_refuses_an_order_placed_in_the_console(
    console: Console, served: Served, keys: Keys
) -> None:
    with api(served, keys.admin) as http:
        before = tickets(http)
        try:
            console.sign_in(keys.admin)
            console.account()
            console.type("#halt-reason", "browser test")
            done = console.result_of(lambda: console.click("#halt"))
            assert done.get_attribute("data-status") == "200", done.text
            assert "trading halted (browser test)" in done.text
            assert halted(http)

            console.fill_order("EURUSD", "buy", "0.01")
            console.review()
            refused = console.result_of(lambda: console.click("#confirm-order"))
            assert refused.get_attribute("data-status") == "409", refused.text
            assert "failed" in (refused.get_attribute("class") or "")
            assert "Trading is halted" in refused.text
            console.shot("halted-refused")
            assert tickets(http).keys() == before.keys()

            console.open("/console")
            console.until(lambda _: "halted" in console.find(
                f"#accounts tr[data-account={ACCOUNT}] th").text, "no halted badge")  # fmt: skip
            console.shot("overview-halted")

            console.account()
            resumed = console.result_of(lambda: console.click("#resume"))
            assert resumed.get_attribute("data-status") == "200", resumed.text
            assert "trading resumed" in resumed.text
        finally:
            http.post(f"/v1/accounts/{ACCOUNT}/resume")
        assert not halted(http)
    assert console.errors() == []


# ------------------------------------------------------------------------------ read only

FORGED = """
const [url, body, token, done] = arguments;
const headers = {"Content-Type": "application/x-www-form-urlencoded"};
if (token) headers["X-CSRF-Token"] = token;
fetch(url, {method: "POST", body, headers})
  .then(async (r) => {
    const page = new DOMParser().parseFromString(await r.text(), "text/html");
    const answer = page.querySelector(".result, .alert");
    done([r.status, answer ? answer.dataset.status : null, answer ? answer.className : "",
          answer ? answer.textContent.trim() : ""]);
  })
  .catch((e) => done([0, null, "", String(e)]));
"""


def test_a_read_only_key_sees_no_controls_and_forged_posts_are_refused(
    console: Console, served: Served, keys: Keys
) -> None:
    halt = f"/console/accounts/{ACCOUNT}/halt"
    with api(served, keys.admin) as http:
        placed = http.post(ORDERS, headers={"Idempotency-Key": "console-read-only-setup"},
                           json={"symbol": "EURUSD", "side": "buy", "volume": 0.01})  # fmt: skip
        assert placed.status_code == 201, placed.text
        ticket = placed.json()["order"]
        try:
            console.sign_in(keys.read)
            console.account()
            console.visible(f"#positions tr[data-ticket='{ticket}']")  # a position to close ...
            assert not console.find_all("button.close-position")  # ... but no button
            assert not console.find_all(".close-form, .cancel-order")
            assert not console.find_all("#trade-controls, #order-form, #close-all-form")
            assert not console.find_all("#admin-controls, #halt-form, #resume-form")
            assert "read" in console.text("#signed-in-as")
            console.shot("read-only")

            run: Callable[..., list[Any]] = console.driver.execute_async_script
            no_token = run(FORGED, halt, "reason=x", None)
            assert no_token[:2] == [403, "403"], no_token
            assert "CSRF" in no_token[3]
            token = console.find("meta[name=csrf-token]").get_attribute("content")
            assert token
            read_only = run(FORGED, halt, "reason=x", token)
            assert read_only[:2] == [200, "403"], read_only  # the API refuses the read key
            assert "failed" in read_only[2]
            assert "refused (403)" in read_only[3]

            cookie = {"mt5gate_console": keys.admin}  # a key that could halt, from elsewhere
            with httpx.Client(base_url=served.base, cookies=cookie, trust_env=False,
                              timeout=30.0) as outside:  # fmt: skip
                wrong = outside.post(halt, data={"reason": "x", "csrf": "0" * 64})
                assert wrong.status_code == 403, wrong.text
                right = csrf_token(keys.admin)
                evil = outside.post(halt, data={"reason": "x", "csrf": right},
                                    headers={"Origin": "http://evil.example"})  # fmt: skip
                assert evil.status_code == 403, evil.text
                assert "another site" in evil.text
                # the same cookie and token from this site's page pass (the refusals above
                # were the token's and the origin's): reviewing an order sends nothing
                same = outside.post(f"/console/accounts/{ACCOUNT}/orders/review",
                                    data={"csrf": right, "symbol": "EURUSD", "side": "buy",
                                          "kind": "market", "volume": "0.01"},
                                    headers={"Origin": served.base})  # fmt: skip
                assert same.status_code == 200, same.text
                assert 'id="order-confirm"' in same.text
            assert not halted(http)
        finally:
            http.post(f"{POSITIONS}/{ticket}/close", json={},
                      headers={"Idempotency-Key": "console-read-only-teardown"})  # fmt: skip
    assert [e.split(" - ")[0] for e in console.errors()] == [served.base + halt]  # the forged one


# ------------------------------------------------------------------- a lost order reply

#: The order executes, its reply is lost, and the netting account's history is late: the
#: position it raised shows it exists, but not yet that it is this order, so reconciliation
#: cannot tell within its 1 s budget (202); once the deal reaches history it is settled.
LOST_REPLY = """\
[history]
delay_ms = 6000

[[fault]]
kind = "reply_lost"
functions = ["order_send"]
after = 1
times = 1
"""


def history(console: Console, row: str) -> list[str]:
    """The kinds of the steps in a journal row's history (each step reads "time KIND...")."""
    steps = [step.text for step in console.find_all(f"{row} ol.history li")]
    kinds = [re.search(r"\b([A-Z][A-Z_]{2,})\b", step) for step in steps]
    assert all(kinds), steps
    return [kind.group(1) for kind in kinds if kind]


def test_an_order_whose_reply_is_lost_shows_as_unknown_in_the_journal(
    driver: WebDriver, bridged: Callable[[str], Bridged], keys: Keys
) -> None:
    remote = bridged(LOST_REPLY)
    console = Console(driver, remote.served.base)
    with api(remote.served, keys.admin) as http:
        setup = http.post(f"/v1/accounts/{REMOTE}/orders", headers={"Idempotency-Key": "setup"},
                          json={"symbol": "EURUSD", "side": "buy", "volume": 0.01})  # fmt: skip
        assert setup.status_code == 201, setup.text  # the fault lets one order_send through

        console.sign_in(keys.admin)
        console.account(REMOTE)
        console.fill_order("EURUSD", "buy", "0.01")
        key, _ = console.review()
        result = console.result_of(lambda: console.click("#confirm-order"))
        assert result.get_attribute("data-status") == "202", result.text
        assert "outcome unknown" in result.text
        assert key in result.text
        console.shot("unknown-result")

        console.open(f"/console/journal?account={REMOTE}")
        row = f"table.journal[data-account={REMOTE}] tr[data-key='{key}']"
        console.visible(row)
        assert "UNKNOWN" in history(console, row)
        assert " ".join(console.find(f"{row} td.request").text.split()) == (
            "place market buy 0.01 EURUSD"
        )
        console.shot("journal")

        # the journal page refreshes itself; once the deal is in history it is settled
        console.until(lambda _: console.find(row).get_attribute("data-state")
                      == "RECONCILED_PRESENT", "never reconciled")  # fmt: skip
        assert history(console, row)[-2:] == ["UNKNOWN", "RECONCILED_PRESENT"]
        assert "alarming" not in (console.find(row).get_attribute("class") or "")
        console.shot("journal-reconciled")

        status = http.get(f"/v1/accounts/{REMOTE}/requests/{key}").json()
        assert status["outcome"] == "executed", status
        volumes = [p["volume"] for p in tickets(http, REMOTE).values()]
        assert volumes == [0.02], volumes  # netting: the setup and the lost order, once each
    assert console.errors() == []


# ------------------------------------------------------------------------------ keyboard

NAMES = """
const names = [];
for (const field of document.querySelectorAll(
    "form input:not([type=hidden]), form select, form button, form textarea")) {
  const labels = [...(field.labels || [])].map((l) => l.textContent.trim()).join(" ");
  const by = (field.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
    .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ");
  const own = field.tagName === "BUTTON" ? field.textContent.trim() : "";
  const name = [field.getAttribute("aria-label") || "", by, labels, own, field.title || ""]
    .join(" ").trim();
  names.push([field.id || field.name || field.outerHTML.slice(0, 80), name]);
}
return names;
"""


def focused(driver: WebDriver) -> str:
    """The id of the element that has the keyboard focus (else its tag and first class)."""
    answer: str = driver.execute_script("""
        const e = document.activeElement;
        if (!e) return "";
        return e.id || e.tagName.toLowerCase() + (e.classList.length ? "." + e.classList[0] : "");
    """)
    return answer


def test_the_console_is_used_with_the_keyboard(
    console: Console, served: Served, keys: Keys
) -> None:
    with api(served, keys.admin) as http:
        placed = http.post(ORDERS, headers={"Idempotency-Key": "console-keyboard-setup"},
                           json={"symbol": "EURUSD", "side": "buy", "volume": 0.01})  # fmt: skip
        assert placed.status_code == 201, placed.text
        ticket = placed.json()["order"]
        try:
            keyboard_walk(console, keys, ticket)
        finally:
            http.post(f"{POSITIONS}/{ticket}/close", json={},
                      headers={"Idempotency-Key": "console-keyboard-teardown"})  # fmt: skip


def keyboard_walk(console: Console, keys: Keys, ticket: int) -> None:
    """Tab to the order form, review and cancel with the keyboard; every control is named; a
    book control with the keyboard focus keeps it across the book's refreshes."""
    console.sign_in(keys.admin)
    console.account()
    row = console.visible(f"#positions tr[data-ticket='{ticket}']")
    order_fields = ["order-symbol", "order-side", "order-kind", "order-volume", "order-price",
                    "order-sl", "order-tp"]  # fmt: skip
    for field in order_fields:
        labels = console.find_all(f"label[for={field}]")
        assert len(labels) == 1, field
        assert labels[0].text.strip(), field

    console.driver.execute_script("document.activeElement && document.activeElement.blur();")
    keyboard = ActionChains(console.driver)
    visited: list[str] = []
    for _ in range(150):
        keyboard.send_keys(Key.TAB).perform()
        visited.append(focused(console.driver))
        if visited[-1] == "review-order":
            break
    assert visited[-1] == "review-order", visited
    assert visited[0] == "a.skip"  # the skip link comes first
    assert visited[-8:] == [*order_fields, "review-order"], visited
    assert "button.close-position" in visited  # the book's controls are on the way
    outline = console.driver.execute_script(
        "return getComputedStyle(document.activeElement).outlineStyle;"
    )
    assert outline == "solid", outline  # the focus is visible
    console.shot("keyboard")

    keyboard.send_keys(Key.ENTER).perform()  # review with the keyboard
    console.visible("#order-confirm")
    keyboard.send_keys(Key.TAB).perform()
    assert focused(console.driver) == "confirm-order"
    keyboard.send_keys(Key.TAB).perform()
    assert focused(console.driver) == "cancel-review"

    names = console.driver.execute_script(NAMES)
    unnamed = [field for field, name in names if not name]
    assert not unnamed, unnamed
    for element in console.find_all("#main form :is(input:not([type=hidden]), select, button)"):
        assert element.accessible_name.strip(), element.get_attribute("outerHTML")

    keyboard.send_keys(Key.ENTER).perform()  # cancel the review with the keyboard
    console.gone("#order-confirm")

    # On a position's Close button, the book (refreshed every 2 s) must not take the focus
    # away: wait for the health panel's refresh (every 5 s), two of the book's meanwhile.
    volume = f"close-volume-{ticket}"

    def in_volume(_: WebDriver) -> bool:  # (again if a refresh already under way took it)
        if focused(console.driver) != volume:
            console.click(f"#{volume}")
        busy = "htmx-request" in (console.find("#book").get_attribute("class") or "")
        return not busy and focused(console.driver) == volume

    console.until(in_volume, "could not stay in the close volume field")
    keyboard.send_keys(Key.TAB).perform()
    assert focused(console.driver) == "button.close-position"
    console.until(ec.staleness_of(console.find("#health-status")), "health never refreshed")
    assert focused(console.driver) == "button.close-position", "the book took the focus"
    keyboard.send_keys(Key.TAB).perform()  # out of the book: it refreshes again
    console.until(ec.staleness_of(row), "the book is no longer refreshed")
    assert console.errors() == []
