"""Prometheus metrics over a real session on the simulator: every hook is produced by the
session itself (calls, orders, faults, reconnects, the breaker, streams, health probes), and every
value is read back from the rendered exposition text, as Prometheus would see it."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import AsyncGenerator, Callable, Iterator
from importlib.metadata import PackageNotFoundError
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mt5gate import metrics as metrics_module
from mt5gate.constants import ResultCode, TradeRetcode
from mt5gate.errors import MT5ConnectionError
from mt5gate.health import Check, HealthStatus, Status, probe
from mt5gate.metrics import Metrics, PrometheusObserver
from mt5gate.models import OrderRequest, Price, Side
from mt5gate.session import SessionState
from mt5gate.sim import VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import Harness, make_session

ACCOUNT = "main"
PASS = Status.PASS
FORBIDDEN_LABELS = {"ticket", "order", "deal", "position", "client_id", "login", "magic"}


# ------------------------------------------------------------------------------- helpers


def samples(metrics: Metrics) -> list[Sample]:
    """Every sample of the rendered exposition text."""
    body, _ = metrics.render()
    return [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The sample ``name`` whose labels include ``labels``; None when there is none."""
    found = [
        s.value for s in samples(metrics) if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def count(metrics: Metrics, histogram: str, **labels: str) -> float:
    """A histogram's observation count (0 when the series does not exist)."""
    return value(metrics, f"{histogram}_count", **labels) or 0.0


def wall(terminal: SimTerminal) -> Callable[[], int]:
    """UTC now as the simulated broker sees it (server time minus its offset)."""
    clock = terminal.clock
    assert isinstance(clock, VirtualClock)
    return lambda: clock.now_ms() - clock.utc_offset_s * 1000


def reading(*checks: Check) -> HealthStatus:
    return HealthStatus.of(checks, 0)


def check(
    name: str, value: Any, unit: str | None = None, component: str = "x", status: Status = PASS
) -> Check:
    return Check(name, component, "component", status, value, unit)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="1.2.3")


@pytest.fixture
def h(metrics: Metrics) -> Iterator[Harness]:
    """A connected session on account 5001, named and labelled "main"."""
    loop = asyncio.new_event_loop()
    session, sim, clock = make_session(observer=metrics.observer(ACCOUNT), name=ACCOUNT)
    harness = Harness(session, sim, clock, loop)
    harness.run(session.connect())
    yield harness
    sim.faults.clear()
    harness.run(session.close())
    loop.close()


# ------------------------------------------------------------------------ build, render


def test_build_info_carries_the_version_and_python(metrics: Metrics) -> None:
    labels = {"version": "1.2.3", "python": platform.python_version()}
    assert value(metrics, "mt5gate_build_info", **labels) == 1.0
    assert value(Metrics(), "mt5gate_build_info", version=metrics_module.VERSION) == 1.0


def test_the_version_is_unknown_when_mt5gate_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(metrics_module, "_package_version", missing)
    assert metrics_module._installed_version() == "unknown"


def test_render_gives_the_exposition_bytes_and_content_type(metrics: Metrics) -> None:
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE_LATEST
    assert isinstance(body, bytes)
    assert b"# TYPE mt5gate_build_info gauge" in body


# ------------------------------------------------------------------------ session hooks


def test_a_price_read_is_timed_under_its_terminal_function(h: Harness, metrics: Metrics) -> None:
    name, labels = "mt5gate_terminal_call_duration_seconds", {"function": "symbol_info_tick"}
    before = count(metrics, name, account=ACCOUNT, outcome="ok", **labels)
    h.run(h.session.get_price("EURUSD"))
    assert count(metrics, name, account=ACCOUNT, outcome="ok", **labels) == before + 1
    inf = value(metrics, f"{name}_bucket", account=ACCOUNT, outcome="ok", le="+Inf", **labels)
    assert inf == before + 1
    assert value(metrics, f"{name}_bucket", account=ACCOUNT, le="30.0", **labels) == inf


def test_a_session_state_is_one_hot_over_every_state(h: Harness, metrics: Metrics) -> None:
    states = {
        s.labels["state"]: s.value
        for s in samples(metrics)
        if s.name == "mt5gate_session_state" and s.labels["account"] == ACCOUNT
    }
    assert states == {str(s): float(s == SessionState.CONNECTED) for s in SessionState}


def test_an_order_counts_intent_sent_and_acknowledged_with_its_retcode(
    h: Harness, metrics: Metrics
) -> None:
    result = h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1)))
    assert result.retcode == TradeRetcode.DONE
    events = {
        (s.labels["kind"], s.labels["retcode"]): s.value
        for s in samples(metrics)
        if s.name == "mt5gate_order_events_total"
    }
    assert events == {("INTENT", ""): 1, ("SENT", ""): 1, ("ACKNOWLEDGED", "10009"): 1}
    journal = "mt5gate_journal_operation_duration_seconds"
    assert count(metrics, journal, account=ACCOUNT, operation="record_intent") >= 1
    assert count(metrics, journal, account=ACCOUNT, operation="record") >= 1
    # the ticket, the order's client id and the login appear in no label value
    secrets = {str(result.order), str(result.client_id), "5001"}
    assert not {v for s in samples(metrics) for v in s.labels.values()} & secrets


def test_a_forced_open_breaker_is_one_hot_and_its_transitions_are_counted(
    h: Harness, metrics: Metrics
) -> None:
    h.session.breaker.force_open("x")
    assert value(metrics, "mt5gate_breaker_state", account=ACCOUNT, state="forced_open") == 1
    assert value(metrics, "mt5gate_breaker_state", account=ACCOUNT, state="closed") == 0
    moved = "mt5gate_breaker_transitions_total"
    assert value(metrics, moved, account=ACCOUNT, from_state="closed", to_state="forced_open") == 1
    h.session.breaker.release()
    assert value(metrics, "mt5gate_breaker_state", account=ACCOUNT, state="forced_open") == 0
    assert value(metrics, "mt5gate_breaker_state", account=ACCOUNT, state="closed") == 1
    assert value(metrics, moved, account=ACCOUNT, from_state="forced_open", to_state="closed") == 1


def test_failed_calls_and_reconnects_are_counted(h: Harness, metrics: Metrics) -> None:
    attempts = "mt5gate_reconnect_attempts_total"
    assert value(metrics, attempts, account=ACCOUNT, result="ok") == 0  # exported from the start
    h.terminal.faults.ipc_error("initialize", ResultCode.E_INTERNAL_FAIL_INIT, times=1)
    h.terminal.restart()
    with pytest.raises(MT5ConnectionError):
        h.run(h.session.call("terminal_info"))
    h.run(h.session.connection.wait_reconnected())
    assert h.session.state == SessionState.CONNECTED
    assert value(metrics, attempts, account=ACCOUNT, result="failed") == 1
    assert value(metrics, attempts, account=ACCOUNT, result="ok") == 1
    calls = "mt5gate_terminal_call_duration_seconds"
    outcomes = {
        s.labels["outcome"]
        for s in samples(metrics)
        if s.name == f"{calls}_count" and s.labels["function"] in ("terminal_info", "initialize")
    }
    assert "ok" in outcomes
    assert outcomes - {"ok"}, "the failed calls carry their error class"
    assert all(o == "ok" or o.startswith("MT5") for o in outcomes)


def test_a_slow_subscriber_s_drops_are_counted_per_stream_kind(
    h: Harness, metrics: Metrics
) -> None:
    dropped = "mt5gate_stream_dropped_items_total"

    async def push(bid: float) -> None:
        await h.session.worker.run("test", lambda: h.terminal.market.push_tick("EURUSD", bid), 5)

    async def main() -> None:
        ticks = h.session.stream_ticks(["EURUSD"], buffer=1)
        slow = cast(AsyncGenerator[Price, None], ticks)
        first = await anext(slow)  # subscribed; now it stops reading
        for i in range(4):
            await push(first.bid + 0.0001 * (i + 1))
            seen = len(h.clock.sleeps)
            while len(h.clock.sleeps) < seen + 3:  # let the poller run a few rounds
                await asyncio.sleep(0.001)
        await slow.aclose()

    h.run(main())
    assert value(metrics, dropped, account=ACCOUNT, stream="ticks") == 3


def test_drop_totals_become_increases_and_subscriber_numbers_are_cut_off(
    metrics: Metrics,
) -> None:
    observer = metrics.observer("a")
    for stream, total in (("ticks#2", 1), ("ticks#2", 2), ("ticks#2", 2), ("ticks#7", 5)):
        observer.stream_dropped(stream, total)
    observer.stream_dropped("trade_events#1", 1)
    assert value(metrics, "mt5gate_stream_dropped_items_total", stream="ticks") == 7
    assert value(metrics, "mt5gate_stream_dropped_items_total", stream="trade_events") == 1
    for n in range(2000):  # subscribers come and go: the memory of their totals is bounded
        observer.stream_dropped(f"ticks#{100 + n}", 1)
    assert len(observer._dropped) == metrics_module._STREAM_MEMORY
    assert value(metrics, "mt5gate_stream_dropped_items_total", stream="ticks") == 2007


# ------------------------------------------------------------------------------- health


def test_a_probe_sets_the_health_gauges(h: Harness, metrics: Metrics) -> None:
    status = h.run(probe(h.session, symbols=["EURUSD"], utc_now_ms=wall(h.terminal)))
    metrics.observe_health(ACCOUNT, status)
    assert value(metrics, "mt5gate_health_status", account=ACCOUNT) == 0
    assert value(metrics, "mt5gate_terminal_ping_seconds", account=ACCOUNT) == 0.035  # 35 ms
    age = value(metrics, "mt5gate_tick_age_seconds", account=ACCOUNT, symbol="EURUSD")
    assert age is not None
    assert 0 <= age < 1
    offset = value(metrics, "mt5gate_broker_clock_offset_seconds", account=ACCOUNT)
    assert offset == pytest.approx(7200, abs=1)
    assert value(metrics, "mt5gate_unresolved_orders", account=ACCOUNT) == 0


def test_a_reading_without_a_measurement_removes_its_series(h: Harness, metrics: Metrics) -> None:
    def observe(symbols: list[str]) -> None:
        status = h.run(probe(h.session, symbols=symbols, utc_now_ms=wall(h.terminal)))
        metrics.observe_health(ACCOUNT, status)

    observe(["EURUSD", "GBPUSD"])
    assert value(metrics, "mt5gate_tick_age_seconds", symbol="GBPUSD") is not None
    observe(["EURUSD"])  # a symbol no longer watched: its series goes
    assert value(metrics, "mt5gate_tick_age_seconds", symbol="EURUSD") is not None
    assert value(metrics, "mt5gate_tick_age_seconds", symbol="GBPUSD") is None
    h.run(h.session.worker.run("test", lambda: h.terminal.set_connected(False), 5))
    observe(["EURUSD"])  # no trade server: the ping was not measured
    assert value(metrics, "mt5gate_health_status", account=ACCOUNT) == 2
    assert value(metrics, "mt5gate_terminal_ping_seconds", account=ACCOUNT) is None


def test_health_gauges_follow_units_and_skip_what_is_not_a_number(metrics: Metrics) -> None:
    warned = reading(
        check("terminal:ping", 250.0, "ms", status=Status.WARN),
        check("broker:clockOffset", 3600, "s"),
        check("orders:unresolved", 2),
        check("tick:age", 12.5, "s", component="EURUSD"),
        check("tick:age", None, "s", component="GBPUSD"),  # no tick: no series
    )
    metrics.observe_health("a", warned)
    assert value(metrics, "mt5gate_health_status", account="a") == 1
    assert value(metrics, "mt5gate_terminal_ping_seconds", account="a") == 0.25
    assert value(metrics, "mt5gate_broker_clock_offset_seconds", account="a") == 3600
    assert value(metrics, "mt5gate_unresolved_orders", account="a") == 2
    assert value(metrics, "mt5gate_tick_age_seconds", account="a", symbol="EURUSD") == 12.5
    assert value(metrics, "mt5gate_tick_age_seconds", account="a", symbol="GBPUSD") is None
    odd = reading(
        check("terminal:ping", 250.0, "minutes"),  # a unit it cannot convert
        check("orders:unresolved", True),  # a boolean is not a count
        check("broker:clockOffset", "soon", "s"),
    )
    metrics.observe_health("a", odd)
    for name in ("terminal_ping_seconds", "unresolved_orders", "broker_clock_offset_seconds"):
        assert value(metrics, f"mt5gate_{name}", account="a") is None
    assert value(metrics, "mt5gate_tick_age_seconds", account="a", symbol="EURUSD") is None


def test_a_crashed_probe_fails_and_leaves_other_accounts_alone(metrics: Metrics) -> None:
    healthy = reading(check("terminal:ping", 35.0, "ms"), check("tick:age", 1, "s", "EURUSD"))
    metrics.observe_health("a", healthy)
    metrics.observe_health("b", healthy)
    metrics.observe_health("a", reading(check("health:probe", None, status=Status.FAIL)))
    assert value(metrics, "mt5gate_health_status", account="a") == 2
    assert value(metrics, "mt5gate_terminal_ping_seconds", account="a") is None
    assert value(metrics, "mt5gate_tick_age_seconds", account="a") is None
    assert value(metrics, "mt5gate_health_status", account="b") == 0
    assert value(metrics, "mt5gate_terminal_ping_seconds", account="b") == 0.035
    assert value(metrics, "mt5gate_tick_age_seconds", account="b", symbol="EURUSD") == 1


# --------------------------------------------------------------------------------- HTTP


def test_http_requests_are_timed_by_route_template(metrics: Metrics) -> None:
    route = "/v1/accounts/{account}/tick/{symbol}"
    metrics.observe_http("get", route, 200, 0.004)
    metrics.observe_http("GET", route, 200, 0.02)
    metrics.observe_http("POST", "/v1/accounts/{account}/orders", 503, 2.0)
    metrics.observe_http("BREW", "unmatched", 404, 0.001)  # an odd method stays bounded
    name = "mt5gate_http_request_duration_seconds"
    assert count(metrics, name, method="GET", route=route, status="200") == 2
    assert value(metrics, f"{name}_sum", method="GET", route=route) == pytest.approx(0.024)
    assert value(metrics, f"{name}_bucket", method="GET", le="0.005") == 1
    assert count(metrics, name, method="POST", status="503") == 1
    assert count(metrics, name, method="other", route="unmatched", status="404") == 1


# ------------------------------------------------------------------ conventions, isolation


def test_every_metric_follows_the_prometheus_conventions(h: Harness, metrics: Metrics) -> None:
    # fill every family: calls, orders, journal, breaker, drops, health, HTTP
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1)))
    h.session.breaker.force_open("x")
    h.session.breaker.release()
    h.session.observer.stream_dropped("ticks#1", 1)
    status = h.run(probe(h.session, symbols=["EURUSD"], utc_now_ms=wall(h.terminal)))
    metrics.observe_health(ACCOUNT, status)
    metrics.observe_http("GET", "/metrics", 200, 0.001)
    metrics.bus_sent(ACCOUNT, "events")
    metrics.bus_sent(ACCOUNT, "ticks", published=False)
    body, _ = metrics.render()
    families = list(text_string_to_metric_families(body.decode()))
    kinds = {f.name: f.type for f in families}
    assert kinds["mt5gate_build_info"] == "gauge"
    assert {"counter", "gauge", "histogram"} <= set(kinds.values())
    for family in families:
        assert family.name.startswith("mt5gate_"), family.name
        assert family.samples, f"{family.name} has no samples"
        words = family.name.split("_")
        assert not {"ms", "milliseconds", "minutes", "hours", "percent"} & set(words), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        created = family.name.endswith("_created")  # the client's start time of a series
        if not created and (family.type == "histogram" or {"duration", "age"} & set(words)):
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            assert not FORBIDDEN_LABELS & set(sample.labels), sample
            assert all(v != str(h.session.credentials.login) for v in sample.labels.values())
    for collected in metrics.registry.collect():  # the registry's own view agrees
        assert collected.name.startswith("mt5gate_")
        if collected.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in collected.samples)


def test_two_metrics_share_nothing_and_leave_the_default_registry_alone() -> None:
    first, second = Metrics(), Metrics(CollectorRegistry())
    assert first.registry is not second.registry
    first.observe_http("GET", "/v1/accounts", 200, 0.01)
    first.observer("a").order_event("INTENT", None)
    name = "mt5gate_http_request_duration_seconds"
    assert count(first, name, route="/v1/accounts") == 1
    assert count(second, name, route="/v1/accounts") == 0
    assert value(second, "mt5gate_order_events_total", kind="INTENT") is None
    assert not [m for m in REGISTRY.collect() if m.name.startswith("mt5gate_")]


def test_the_observer_is_a_session_observer_for_one_account(metrics: Metrics) -> None:
    observer = metrics.observer("a")
    assert isinstance(observer, PrometheusObserver)
    assert observer.account == "a"
    assert value(metrics, "mt5gate_session_state", account="a", state="disconnected") == 1
    assert value(metrics, "mt5gate_breaker_state", account="a", state="closed") == 1
    observer.order_event("REJECTED", TradeRetcode.NO_MONEY)
    assert value(metrics, "mt5gate_order_events_total", kind="REJECTED") == 1
    assert value(metrics, "mt5gate_order_events_total", retcode=str(int(TradeRetcode.NO_MONEY)))
