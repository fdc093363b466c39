"""The web console in a real browser: Debian's Chromium, headless, driven by Selenium through
the system's ChromeDriver, against real ``mt5gate serve`` processes on 127.0.0.1.

Nothing is downloaded: the browser and its driver are the system's (``make browser`` installs
them) and Selenium Manager stays offline (``SE_OFFLINE``). The browser only ever talks to the
services started here, on loopback.

One service (the simulated demo account, its clock pinned to ``OPEN_MARKET``) serves most tests,
with three keys: ``admin`` (every scope), ``read`` (read only) and ``trade`` (read and trade).
The test of a lost order reply starts its own: ``mt5gate bridge --terminal sim --faults`` and a
service whose account reaches it over ``bridge://``.

Every test saves screenshots of the pages it visits in ``artifacts/console/`` at the repository
root, and ``FAILED-<test>.png`` (with the browser's log) when it fails.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from mt5gate.service.auth import hash_api_key, new_api_key
from tests.servers.chromium import chromium, missing
from tests.service.conftest import OPEN_MARKET, Served, start_service

ROOT = Path(__file__).resolve().parents[2]
#: Where the screenshots go (``artifacts/`` is ignored by git).
ARTIFACTS = ROOT / "artifacts" / "console"
#: The driver's type: Chrome's (its browser log and DevTools commands are used).
WebDriver = webdriver.Chrome
#: Generous: CI machines are slow and run other tests alongside.
WAIT_S = 30.0
#: The default service's simulated account.
ACCOUNT = "demo"
#: The account of the bridged service (a netting account on the bridge's simulator).
REMOTE = "remote"


@dataclass(frozen=True)
class Keys:
    """The console's keys: every scope, read only, read and trade."""

    admin: str
    read: str
    trade: str


def api_keys_env(keys: Keys) -> dict[str, str]:
    """``MT5GATE_API_KEYS`` for ``keys``. The rate is raised: each open console page makes a
    few API calls a second in the key's name (the book every 2 s, health, chart, latency)."""
    scopes = {"admin": ["read", "trade", "admin"], "read": ["read"], "trade": ["read", "trade"]}
    entries = [{"name": name, "hash": hash_api_key(getattr(keys, name)), "scopes": scoped,
                "rate_per_minute": 6000, "burst": 1000}
               for name, scoped in scopes.items()]  # fmt: skip
    return {"MT5GATE_API_KEYS": json.dumps(entries)}


def api(served: Served, key: str) -> httpx.Client:
    """An HTTP client of ``served``'s API with ``key`` (no proxy: loopback only)."""
    return httpx.Client(base_url=served.base, headers={"X-API-Key": key}, timeout=30.0,
                        trust_env=False)  # fmt: skip


def halted(http: httpx.Client, account: str = ACCOUNT) -> bool:
    """Whether trading on ``account`` is halted, from a health reading taken after this call
    began (the service refreshes health every 5 s; an older reading proves nothing)."""

    def reading() -> dict[str, Any]:
        document = http.get(f"/v1/accounts/{account}/health").json()
        entry: dict[str, Any] = document["checks"]["trading:halt"][0]
        return entry

    first = reading()
    deadline = time.monotonic() + WAIT_S
    while (latest := reading())["time"] == first["time"]:
        assert time.monotonic() < deadline, "no fresh health reading within the wait"
        time.sleep(0.25)
    return latest["observedValue"] is True


# ------------------------------------------------------------------------------ services


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(new_api_key(), new_api_key(), new_api_key())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Served]:
    """``mt5gate serve`` with the simulated demo account and the three keys."""
    data = tmp_path_factory.mktemp("console") / "data"
    data.mkdir(mode=0o700)
    service = start_service(data, env=api_keys_env(keys))
    yield service
    service.stop()


@dataclass
class Bridged:
    """A bridge process (a simulator with a fault plan) and a service trading through it."""

    served: Served
    bridge: subprocess.Popen[bytes]
    bridge_log: Path


BRIDGED_CONFIG = """\
[[accounts]]
name = "{name}"
terminal = "bridge://127.0.0.1:{port}"
login = 5002
server = "MetaQuotes-Demo"
password_env = "CONSOLE_TEST_PASSWORD"
token_file = "bridge-token"
reconcile = {{ first_s = 0.05, max_interval_s = 0.2, settle_s = 0.3, budget_s = 1.0, \
replay_budget_s = 1.0, sweep_interval_s = 1.0 }}
"""


def start_bridge(workdir: Path, plan: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``mt5gate bridge --terminal sim --port 0 --faults PLAN`` (clock pinned to
    ``OPEN_MARKET``), its output in a file; the process, the port it listens on and the log."""
    token = workdir / "bridge-token"
    token.write_text(new_api_key() + "\n")
    token.chmod(0o600)
    faults = workdir / "faults.toml"
    faults.write_text(plan)
    log = workdir / "bridge.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "mt5gate.cli", "bridge", "--terminal", "sim", "--port", "0",
             "--sim-start", OPEN_MARKET, "--token-file", str(token), "--faults", str(faults)],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    prefix = "mt5gate bridge listening on 127.0.0.1:"
    while True:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith(prefix)]
        if lines:
            return process, int(lines[0].removeprefix(prefix).split()[0]), log
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the bridge did not start: {log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture
def bridged(tmp_path: Path, keys: Keys) -> Iterator[Callable[[str], Bridged]]:
    """``bridged(plan)``: a bridge serving a simulator with the fault plan ``plan`` (TOML), and
    a service whose account ``remote`` (netting, login 5002) trades through it; both stopped
    after the test."""
    started: list[Bridged] = []

    def start(plan: str) -> Bridged:
        workdir = tmp_path / f"bridged-{len(started)}"
        workdir.mkdir(mode=0o700)
        process, port, log = start_bridge(workdir, plan)
        config = workdir / "serve.toml"
        config.write_text(BRIDGED_CONFIG.format(name=REMOTE, port=port))
        env = {**api_keys_env(keys), "CONSOLE_TEST_PASSWORD": "sim-pass-5002"}
        try:
            service = start_service(workdir / "data", "--config", str(config), env=env)
        except BaseException:
            stop_process(process)
            raise
        started.append(Bridged(service, process, log))
        return started[-1]

    yield start
    for each in started:
        each.served.stop()
        stop_process(each.bridge)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# ------------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium through ChromeDriver, both the system's (nothing is downloaded)."""
    absent = missing()
    if absent:
        pytest.fail(f"{' and '.join(absent)} missing: run `make browser` (Debian's chromium "
                    "and chromium-driver)", pytrace=False)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("FAILED-*"):
        stale.unlink()
    browser = chromium(tmp_path_factory.mktemp("chromium-profile"), {"browser": "ALL"})
    browser.set_page_load_timeout(WAIT_S)
    browser.set_script_timeout(WAIT_S)
    yield browser
    browser.quit()


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest, driver: WebDriver) -> Iterator[None]:
    """A failed test leaves ``FAILED-<test>.png`` and the browser's log next to the others."""
    yield
    report = request.node.stash.get(_REPORTS, {}).get("call")
    if report is not None and report.failed:
        name = request.node.name.replace("/", "_")
        save_page(driver, ARTIFACTS / f"FAILED-{name}.png")
        entries = driver.get_log("browser")  # type: ignore[no-untyped-call]
        text = "\n".join(f"{e['level']} {e['message']}" for e in entries)
        (ARTIFACTS / f"FAILED-{name}.log").write_text(f"{driver.current_url}\n{text}\n")


#: What ChromeDriver says of an element whose document went away under it.
_GONE = ("does not belong to the document", "Node with given id", "stale element")


def _css(selector: str) -> tuple[str, str]:
    """A locator by CSS selector."""
    return (By.CSS_SELECTOR, selector)


def save_page(driver: WebDriver, path: Path) -> None:
    """A screenshot of the whole page (beyond the window, through the DevTools protocol); of
    the window only if that fails."""
    try:
        width, height = driver.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight];"
        )
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))
    except WebDriverException:
        driver.save_screenshot(str(path))


class Console:
    """The console of one service as a user sees it in the browser."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    # -------------------------------------------------------------- finding and waiting

    def wait(self, timeout: float = WAIT_S) -> WebDriverWait[WebDriver]:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,))  # fmt: skip

    def until(self, condition: Callable[[WebDriver], Any], message: str = "") -> Any:
        """``condition``'s first truthy answer, re-asked until then; an element that went away
        with its page or fragment meanwhile (htmx swaps, navigation) only means "not yet"."""

        def asked(driver: WebDriver) -> Any:
            try:
                return condition(driver)
            except WebDriverException as error:
                if any(sign in str(error.msg) for sign in _GONE):
                    return False
                raise

        return self.wait().until(asked, message)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def present(self, css: str) -> WebElement:
        found: WebElement = self.until(ec.presence_of_element_located(_css(css)), css)
        return found

    def visible(self, css: str) -> WebElement:
        shown: WebElement = self.until(ec.visibility_of_element_located(_css(css)), css)
        return shown

    def gone(self, css: str) -> None:
        self.until(lambda d: not d.find_elements(By.CSS_SELECTOR, css), f"{css} still there")

    def text(self, css: str) -> str:
        """The text of ``css`` once it is there (re-read if the element was swapped)."""
        text: str = self.until(lambda _: self.find(css).text or " ", css)
        return text.strip()

    def click(self, css: str) -> None:
        """Click ``css``, found afresh (htmx swaps fragments under us every few seconds)."""

        def clicked(_: WebDriver) -> bool:
            try:
                self.find(css).click()
            except (StaleElementReferenceException, NoSuchElementException,
                    ElementClickInterceptedException):  # fmt: skip
                return False
            return True

        self.until(clicked, f"could not click {css}")

    def type(self, css: str, text: str) -> None:
        field = self.visible(css)
        field.clear()
        field.send_keys(text)

    def shot(self, name: str) -> None:
        """Save a screenshot of the whole page as ``artifacts/console/<name>.png``."""
        save_page(self.driver, ARTIFACTS / f"{name}.png")

    def errors(self) -> list[str]:
        """The browser's SEVERE log lines since the last call (script errors, failed loads)."""
        entries = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    # ----------------------------------------------------------------------- the pages

    @property
    def path(self) -> str:
        """The current URL without the service's address."""
        return self.driver.current_url.removeprefix(self.base)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def sign_in(self, key: str) -> None:
        """Sign in through the form, from a browser holding no cookie of this site."""
        self.open("/console/login")
        self.driver.delete_all_cookies()
        self.open("/console/login")
        self.type("#api-key", key)
        self.click("#sign-in")
        self.until(lambda _: self.path == "/console" and self.find_all("#signed-in-as"),
                   f"not signed in: at {self.path}")  # fmt: skip

    def account(self, name: str = ACCOUNT) -> None:
        """Open the account's page and wait for its book (the positions table)."""
        self.open(f"/console/accounts/{name}")
        self.present("#book #positions")

    def result_of(self, action: Callable[[], None]) -> WebElement:
        """Do ``action`` and return the answer it adds at the top of ``#results``."""
        before = len(self.find_all("#results > *"))
        action()
        self.until(lambda _: len(self.find_all("#results > *")) > before, "no new result")
        return self.find("#results > :first-child")

    def fill_order(self, symbol: str = "EURUSD", side: str = "buy", volume: str = "0.01") -> None:
        self.type("#order-symbol", symbol)
        Select(self.find("#order-side")).select_by_value(side)
        Select(self.find("#order-kind")).select_by_value("market")
        self.type("#order-volume", volume)

    def review(self) -> tuple[str, str]:
        """Review the order form: the confirmation's idempotency key and margin."""
        self.click("#review-order")
        self.until(lambda _: self.find_all("#order-confirm, #review-problem"), "no review")
        problem = self.find_all("#review-problem")
        assert not problem, f"the review was refused: {problem[0].text}"
        self.visible("#confirm-order")
        return self.text("#confirm-key"), self.text("#confirm-margin")


@pytest.fixture
def console(driver: WebDriver, served: Served) -> Console:
    """The default service's console in the browser."""
    return Console(driver, served.base)
