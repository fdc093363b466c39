"""The console's pure parts: health shaping, chart markers, CSRF tokens, the latency trail."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from starlette.requests import Request

from mt5gate.metrics import LatencyTrail, Metrics
from mt5gate.service.auth import Principal
from mt5gate.service.console.access import (
    Visitor,
    csrf_token,
    same_origin,
    valid_csrf,
)
from mt5gate.service.console.api import Reply
from mt5gate.service.console.data import (
    chart_markers,
    deal_window,
    health_summary,
    number,
    snap_markers,
)


def request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


def test_csrf_token_is_an_hmac_of_the_key_and_never_the_key() -> None:
    token = csrf_token("mg_secret")
    expected = hmac.new(b"mg_secret", b"mt5gate-console-csrf", hashlib.sha256).hexdigest()
    assert token == expected
    assert "mg_secret" not in token
    assert csrf_token("mg_other") != token
    who = Visitor(Principal("ops", frozenset({"read"})), "mg_secret", token)
    assert valid_csrf(token, who)
    assert not valid_csrf(None, who)
    assert not valid_csrf(token[:-1] + "0", who)
    assert "mg_secret" not in repr(who)
    assert who.may("read")
    assert not who.may("trade")


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"host": "127.0.0.1:8000"}, True),
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, True),
        ({"host": "gw.example", "origin": "https://gw.example"}, True),
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:9000"}, False),
        ({"host": "127.0.0.1:8000", "origin": "http://evil.example"}, False),
        ({"host": "127.0.0.1:8000", "origin": "null"}, False),
    ],
)
def test_same_origin(headers: dict[str, str], same: bool) -> None:
    assert same_origin(request(headers)) is same


def test_health_summary_names_what_is_wrong() -> None:
    document = {
        "status": "warn",
        "checks": {
            "session:state": [{"status": "pass", "observedValue": "connected"}],
            "circuitBreaker:state": [{"status": "pass", "observedValue": "closed"}],
            "tick:age": [
                {
                    "componentId": "EURUSD",
                    "status": "warn",
                    "observedValue": 75.0,
                    "output": "no tick for 75 s",
                },
                {"componentId": "BTCUSD", "status": "pass", "observedValue": 0.4},
            ],
            "trading:halt": [{"status": "warn", "observedValue": True, "output": "halted: drill"}],
        },
    }
    view = health_summary(document)
    assert view.status == "warn"
    assert view.why == "tick:age: no tick for 75 s; trading:halt: halted: drill"
    assert (view.connection, view.breaker, view.tick_age_s, view.halted) == (
        "connected", "closed", 0.4, True,
    )  # fmt: skip
    assert len(view.checks) == 5
    problem = health_summary({"title": "Forbidden", "status": 403})
    assert problem.status == "fail"
    assert "Forbidden" in problem.why
    assert health_summary({"status": "pass", "checks": {}}).why == "all checks pass"


def test_markers_show_the_accounts_entries_and_exits_on_their_bars() -> None:
    deals = [
        {"symbol": "EURUSD", "type": 0, "entry": 0, "volume": 0.1, "time_msc": 120_500},
        {"symbol": "EURUSD", "type": 1, "entry": 1, "volume": 0.1, "time_msc": 185_000},
        {"symbol": "GBPUSD", "type": 0, "entry": 0, "volume": 0.2, "time_msc": 130_000},
        {"symbol": "EURUSD", "type": 2, "entry": 0, "volume": 0.0, "time_msc": 1_000},  # balance
        {"symbol": "EURUSD", "type": 0, "entry": 0, "volume": 0.3, "time_msc": 10_000},
    ]
    markers = chart_markers(deals, "EURUSD")
    assert [(m["time"], m["shape"], m["text"]) for m in markers] == [
        (10, "arrowUp", "buy in 0.3"),
        (120, "arrowUp", "buy in 0.1"),
        (185, "arrowDown", "sell out 0.1"),
    ]
    snapped = snap_markers(markers, [60, 120, 180])
    assert [m["time"] for m in snapped] == [120, 180]  # the one before the first bar is dropped
    assert snap_markers(markers, []) == []


def test_numbers_for_cells() -> None:
    assert number(1234.5) == "1,234.50"
    assert number(0.12345, 3) == "0.123"
    assert number(None) == "-"
    assert number(float("nan")) == "-"
    assert number("12") == "-"


def test_a_failed_reply_has_a_problem_to_show() -> None:
    assert Reply(403, {"title": "Forbidden", "detail": "no"}).problem["title"] == "Forbidden"
    assert Reply(502, "Bad gateway").problem == {"title": "HTTP 502", "detail": "Bad gateway"}
    assert not Reply(502, None).ok
    assert Reply(202, {}).ok


def test_latency_trail_slots_percentiles_and_bounds() -> None:
    now = [1000.0]
    trail = LatencyTrail(slot_s=5, slots=3, sample=100, clock=lambda: now[0])
    for n in range(1, 101):
        trail.add(n / 1000)
    now[0] += 5
    trail.add(0.5)
    points = trail.points()
    assert [(p.time_ms, p.calls) for p in points] == [(1_000_000, 100), (1_005_000, 1)]
    assert (points[0].p50_ms, points[0].p99_ms) == (50.0, 99.0)
    assert (points[1].p50_ms, points[1].p99_ms) == (500.0, 500.0)
    for _ in range(5):  # only the last three slots are kept
        now[0] += 5
        trail.add(0.001)
    assert len(trail.points()) == 3
    busy = LatencyTrail(slot_s=5, sample=16, clock=lambda: 0.0)
    for n in range(10_000):
        busy.add(n / 10_000)
    point = busy.points()[0]
    assert point.calls == 10_000  # every call counted, 16 kept: memory bounded by the sample
    assert 0 <= point.p50_ms <= point.p99_ms <= 1000
    with pytest.raises(ValueError, match="slot_s"):
        LatencyTrail(slot_s=0)


def test_metrics_feed_each_accounts_trail() -> None:
    metrics = Metrics()
    observer = metrics.observer("demo")
    observer.call_finished("symbol_info_tick", "ok", 0.002)
    observer.call_finished("symbol_info_tick", "ok", 0.004)
    assert metrics.trail("demo").points()[-1].calls == 2
    assert metrics.trail("other").points() == []


def test_the_deals_window_spans_both_clocks() -> None:
    day = 86_400
    assert deal_window(100 * day, None) == {"from": 93 * day, "to": 101 * day}
    assert deal_window(400 * day, 100 * day) == {"from": 93 * day, "to": 401 * day}
    assert deal_window(100 * day, 100 * day + 3 * 3600)["to"] == 101 * day + 3 * 3600
