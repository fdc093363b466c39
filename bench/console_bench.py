"""The web console in headless Chromium: what a first visit loads, how soon it draws, and how
long a tick takes from the simulator to the page's DOM.

One ``mt5gate serve`` (the simulated demo account, its clock pinned to a weekday morning so the
market ticks on any day) and Debian's Chromium through its ChromeDriver (nothing downloaded):

* first load of the overview and of an account page: bytes and requests (the Resource Timing
  entries plus the document), first contentful paint, and for the account page the time until
  the first live quote is in the DOM; side by side with the service's own Swagger UI page
  (``/docs``, all assets local), the usual first web page of an API;
* tick to DOM: for every tick the page shows during the window, the time it was shown minus
  the tick's time (the pinned clock's whole-second shift undone as in ``service_bench``), p50
  and p99; side by side with a bare WebSocket client of ``/v1/stream`` in this process reading
  the same symbols at the same time (what the page adds on top of the stream).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import Row
from bench.service_bench import (
    SERVER_OFFSET_MS,
    _clock_shift_ms,
    _service,
    _wait_ready,
)
from mt5gate.service.auth import hash_api_key, new_api_key

__all__ = ["all_rows", "measure"]

SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "BTCUSD")
_LOAD = """
const nav = performance.getEntriesByType('navigation')[0];
const resources = performance.getEntriesByType('resource');
const paint = performance.getEntriesByName('first-contentful-paint')[0];
const bytes = nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0);
return {bytes: bytes, requests: 1 + resources.length,
        fcp: paint ? paint.startTime : null, loaded: nav.domContentLoadedEventEnd};
"""


def _driver(profile: Path) -> Any:
    from tests.servers.chromium import chromium

    return chromium(profile)


def _keys(key: str) -> str:
    entry = {"name": "bench", "hash": hash_api_key(key), "scopes": ["read"],
             "rate_per_minute": 10**9, "burst": 10**9}  # fmt: skip
    return json.dumps([entry])


def _first_visit(driver: Any, base: str, path: str) -> dict[str, Any]:
    """A cold load of ``path`` (the browser cache disabled through the DevTools protocol)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.get(base + path)
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.readyState") != "complete":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not load within 20 s")
        time.sleep(0.05)
    time.sleep(0.5)  # late resources (the chart script's) land in the timing buffer
    found: dict[str, Any] = driver.execute_script(_LOAD)
    return found


def _first_quote_ms(driver: Any) -> float:
    """Milliseconds from navigation to the first tick in the DOM (waits up to 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = driver.execute_script(
            "return window.mt5gateTicks && window.mt5gateTicks.length ? "
            "window.mt5gateTicks[0][1] - performance.timeOrigin : null"
        )
        if shown is not None:
            return float(shown)
        time.sleep(0.05)
    raise RuntimeError("no quote reached the page within 20 s")


def _every_symbol_shown(driver: Any) -> None:
    """Wait until each quote row shows a tick (the subscription's snapshot of each symbol,
    which can be seconds old, is then behind us)."""
    deadline = time.monotonic() + 20
    script = "return document.querySelectorAll('#quotes tr[data-time-msc]').length"
    while driver.execute_script(script) < len(SYMBOLS):
        if time.monotonic() > deadline:
            raise RuntimeError("not every symbol reached the page within 20 s")
        time.sleep(0.05)


def _without_snapshots(
    ticks: list[tuple[str, int, int, int]],
) -> list[tuple[str, int, int, int]]:
    """The ticks after each symbol's first (a subscription starts with the latest tick, which
    may be seconds old: it measures the market's quietness, not delivery)."""
    seen: set[str] = set()
    live = []
    for tick in ticks:
        if tick[0] in seen:
            live.append(tick)
        seen.add(tick[0])
    return live


async def _raw_stream(port: int, key: str, duration_s: float) -> list[tuple[str, int, int, int]]:
    """A bare ``/v1/stream`` client: each tick's (symbol, time_msc, receipt ns, n)."""
    import websockets

    received: list[tuple[str, int, int, int]] = []
    url = f"ws://127.0.0.1:{port}/v1/stream"
    async with websockets.connect(url, additional_headers={"X-API-Key": key}) as socket:
        await socket.send(json.dumps({"op": "subscribe", "account": "demo",
                                      "ticks": list(SYMBOLS)}))  # fmt: skip
        end = time.monotonic() + duration_s
        while (left := end - time.monotonic()) > 0:
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), left))
            except TimeoutError:
                break
            if message.get("type") == "tick":
                data = message["data"]
                received.append((data["symbol"], data["time_msc"], time.time_ns(), 0))
    return received


def _lags(pairs: list[tuple[int, float]]) -> list[float]:
    """Tick-to-DOM milliseconds from the page's (tick time_msc, wall ms when shown)."""
    ticks = [("", msc, int(shown * 1e6), 0) for msc, shown in pairs]
    offset = SERVER_OFFSET_MS + _clock_shift_ms(ticks)
    return [shown - (msc - offset) for msc, shown in pairs]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(window_s: float) -> dict[str, Any]:
    """Load figures of three pages and ``window_s`` seconds of tick-to-DOM latency."""
    key = new_api_key()
    with tempfile.TemporaryDirectory(prefix="mt5gate-console-bench-") as folder:
        scratch = Path(folder)
        server = _service(scratch, "console", _keys(key), "WARNING")
        driver = None
        try:
            _wait_ready(server, "/readyz", key, time.monotonic() + 60)
            base = f"http://127.0.0.1:{server.port}"
            driver = _driver(scratch / "profile")
            driver.get(base + "/console/login")
            driver.find_element("id", "api-key").send_keys(key)
            driver.find_element("id", "sign-in").click()
            found = {"overview": _first_visit(driver, base, "/console"),
                     "account": _first_visit(driver, base, "/console/accounts/demo")}  # fmt: skip
            found["account"]["quote"] = _first_quote_ms(driver)
            found["docs"] = _first_visit(driver, base, "/docs")
            driver.get(base + "/console/accounts/demo")
            _every_symbol_shown(driver)
            driver.execute_script("window.mt5gateTicks.length = 0")  # live ticks from here
            raw = asyncio.run(_raw_stream(server.port, key, window_s))
            pairs = driver.execute_script("return window.mt5gateTicks")
            found["dom"] = _lags([(int(m), float(s)) for m, s in pairs])
            offset = SERVER_OFFSET_MS + _clock_shift_ms(raw)
            live = _without_snapshots(raw)
            found["raw"] = [ns / 1e6 - (msc - offset) for _, msc, ns, _ in live]
            return found
        finally:
            if driver is not None:
                driver.quit()
            server.stop()


def rows_of(found: dict[str, Any], window_s: float) -> list[Row]:
    docs, overview, account = found["docs"], found["overview"], found["account"]
    rows = [
        Row("console", "first load: overview page", overview["bytes"] / 1024, "KB",
            "Swagger UI (/docs)", overview["bytes"] / docs["bytes"]),
        Row("console", "first load: overview requests", overview["requests"], "requests",
            "Swagger UI (/docs)", overview["requests"] / docs["requests"]),
        Row("console", "first load: account page (chart library included)",
            account["bytes"] / 1024, "KB", "Swagger UI (/docs)", account["bytes"] / docs["bytes"]),
        Row("console", "first load: account page requests", account["requests"], "requests"),
        Row("console", "first contentful paint: overview", overview["fcp"], "ms",
            "Swagger UI (/docs)", overview["fcp"] / docs["fcp"]),
        Row("console", "first contentful paint: account page", account["fcp"], "ms"),
        Row("console", "account page: first live quote in the DOM", account["quote"], "ms"),
    ]  # fmt: skip
    dom, raw = found["dom"], found["raw"]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        rows.append(Row("console", f"tick to DOM {label} ({len(dom)} ticks in {window_s:.0f} s)",
                        _percentile(dom, q), "ms", f"bare /v1/stream client {label}",
                        _percentile(dom, q) / _percentile(raw, q)))  # fmt: skip
    rows.append(Row("console", "tick to bare /v1/stream client p50", statistics.median(raw), "ms"))
    return rows


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """The console's figures (one run: the browser and the service start once)."""
    del repeat
    from tests.servers.chromium import missing

    if missing():  # make browser
        return [Row("console", "skipped: no /usr/bin/chromium (make browser)", 0, "")]
    window = 10.0 if quick else 30.0
    return rows_of(measure(window), window)


if __name__ == "__main__":
    from bench.report import render

    print(render(all_rows(1, quick=True)))
