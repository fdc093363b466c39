"""Prometheus metrics for mt5gate: what the sessions do, what the health probes read, HTTP.

One :class:`Metrics` owns every metric on one ``CollectorRegistry``, injected or its own, never
the process-wide default registry: two services (or two tests) in one process do not collide.
Sessions feed it through :meth:`Metrics.observer` (a :class:`PrometheusObserver` per account),
health readings through :meth:`Metrics.observe_health`, the HTTP front end through
:meth:`Metrics.observe_http`; :meth:`Metrics.render` is the ``/metrics`` body::

    metrics = Metrics()
    session = MT5SessionManager(..., name="main", observer=metrics.observer("main"))
    metrics.observe_health("main", await probe(session, symbols=["EURUSD"]))
    body, content_type = metrics.render()

Conventions (RELIABILITY: "one prefix, base units, counters end in _total, no unbounded label
values, a _build_info gauge"): every name starts ``mt5gate_``; durations and ages are seconds
(the health probe's milliseconds are converted); counters end ``_total``. Every label value
comes from a bounded set: the configured account *name* (never the login number), terminal
function names, error class names, ``EventKind`` names, trade retcodes, session and breaker
states, stream kinds (the subscriber number of ``"ticks#3"`` is cut off), the configured watched
symbols, HTTP route templates (never raw paths), known HTTP methods and status codes. No order
id, ticket, deal, client id or login ever becomes a label.

The metrics::

    mt5gate_build_info{version, python}                                   gauge, always 1
    mt5gate_terminal_call_duration_seconds{account, function, outcome}    histogram
    mt5gate_order_events_total{account, kind, retcode}                    counter
    mt5gate_journal_operation_duration_seconds{account, operation}       histogram
    mt5gate_session_state{account, state}                                 gauge, one-hot
    mt5gate_breaker_state{account, state}                                 gauge, one-hot
    mt5gate_breaker_transitions_total{account, from_state, to_state}     counter
    mt5gate_reconnect_attempts_total{account, result}                     counter (ok, failed)
    mt5gate_stream_dropped_items_total{account, stream}                   counter
    mt5gate_health_status{account}                                        gauge: 0 pass, 1 warn,
                                                                          2 fail
    mt5gate_terminal_ping_seconds{account}                                gauge
    mt5gate_tick_age_seconds{account, symbol}                             gauge
    mt5gate_broker_clock_offset_seconds{account}                          gauge
    mt5gate_unresolved_orders{account}                                    gauge
    mt5gate_bus_published_total{account, kind}                            counter (ticks,
                                                                          events, interest)
    mt5gate_bus_dropped_total{account, kind}                              counter
    mt5gate_http_request_duration_seconds{method, route, status}          histogram

Health gauges mirror the latest reading of their account: a measurement with a number sets
its series; a measurement the reading does not carry, or carries without a number ("not
checked", "market closed", no tick), *removes* its series. A stale number would claim a
measurement that was not made; the missing series and ``mt5gate_health_status`` say it instead.
"""

from __future__ import annotations

import platform
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from mt5gate.circuit_breaker import BreakerState, BreakerTransition
from mt5gate.session.observer import SessionObserver
from mt5gate.session.state import SessionState, StateChange

__all__ = [
    "HealthCheck",
    "HealthReading",
    "LatencyPoint",
    "LatencyTrail",
    "Metrics",
    "PrometheusObserver",
    "VERSION",
]


def _installed_version() -> str:
    try:
        return _package_version("mt5gate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


#: The installed mt5gate's version ("unknown" when it is not installed), for build_info.
VERSION: Final = _installed_version()

# Buckets, in seconds.
#: Terminal calls: reads over the terminal's IPC take well under a millisecond to a few ms;
#: order_send waits for the trade server (tens to hundreds of ms); calls that time out sit at
#: the Timeouts (seconds); initialize/login may take tens of seconds. 0.5 ms .. 30 s.
CALL_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: Journal operations are fsync'd SQLite writes: ~0.1 ms to a few ms on an SSD, tens of ms on
#: a slow or scanned disk; a second is already pathological (it holds up an order). 0.1 ms .. 1 s.
JOURNAL_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
#: HTTP requests: reads answer in milliseconds, orders wait for the trade server (hundreds of
#: ms), a request stuck on a timeout takes seconds. 1 ms .. 10 s.
HTTP_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

_HEALTH_VALUE: Final = {"pass": 0, "warn": 1, "fail": 2}
#: Methods exported as they are; anything else a client sends becomes "other" (bounded).
_HTTP_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
#: Subscribers whose drop totals are remembered per observer (oldest forgotten first).
_STREAM_MEMORY: Final = 1024


class _Children:
    """The labelled children of one histogram, kept by label values.

    ``Histogram.labels()`` checks and joins the values under a lock on each call (about
    2.3 µs of the 4 µs a sample costs here); the HTTP and terminal-call histograms take a sample
    per request and per call from a small, fixed set of label values (route templates, the 32
    functions), so each child is looked up once. Only for metrics whose series are never
    removed: a removed child kept here would be updated without being exported."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Histogram] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        """One sample of the series ``labels``."""
        child = self._children.get(labels)
        if child is None:  # two threads may both get here: labels() returns the same child
            child = self._children[labels] = self._metric.labels(*labels)
        child.observe(value)


class HealthCheck(Protocol):
    """What the gauges read of a :class:`mt5gate.health.Check`."""

    @property
    def name(self) -> str: ...
    @property
    def component_id(self) -> str: ...
    @property
    def observed_value(self) -> float | int | str | bool | None: ...
    @property
    def observed_unit(self) -> str | None: ...


class HealthReading(Protocol):
    """What the gauges read of a :class:`mt5gate.health.HealthStatus`.

    Structural, so that ``mt5gate.metrics`` and ``mt5gate.health`` stay independent siblings in
    the import-linter layer contract (``mt5gate.health | mt5gate.metrics``).
    """

    @property
    def status(self) -> str: ...  # a health.Status: "pass", "warn" or "fail"
    @property
    def checks(self) -> Sequence[HealthCheck]: ...


class Metrics:
    """All of mt5gate's Prometheus metrics on one registry (injected; never the global default
    registry, so tests and several services do not collide)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, version: str = VERSION
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        self._symbols: dict[str, set[str]] = {}  # account -> symbols with a tick-age series
        self._trails: dict[str, LatencyTrail] = {}
        r = self.registry
        self.build_info = Gauge(
            "mt5gate_build_info", "mt5gate build: version and Python, always 1",
            ["version", "python"], registry=r,
        )  # fmt: skip
        self.build_info.labels(version=version, python=platform.python_version()).set(1)
        self.call_duration = Histogram(
            "mt5gate_terminal_call_duration_seconds",
            "Terminal calls by function and outcome ('ok' or the error class name)",
            ["account", "function", "outcome"], buckets=CALL_BUCKETS, registry=r,
        )  # fmt: skip
        self.call_children = _Children(self.call_duration)
        self.order_events = Counter(
            "mt5gate_order_events_total",
            "Order journal events by kind (EventKind) and trade retcode ('' when none)",
            ["account", "kind", "retcode"], registry=r,
        )  # fmt: skip
        self.journal_duration = Histogram(
            "mt5gate_journal_operation_duration_seconds",
            "Order journal operations (fsync'd writes), as long as the caller waited",
            ["account", "operation"], buckets=JOURNAL_BUCKETS, registry=r,
        )  # fmt: skip
        self.session_state = Gauge(
            "mt5gate_session_state", "Session state, one-hot: 1 for the current state",
            ["account", "state"], registry=r,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "mt5gate_breaker_state", "Circuit breaker state, one-hot: 1 for the current state",
            ["account", "state"], registry=r,
        )  # fmt: skip
        self.breaker_transitions = Counter(
            "mt5gate_breaker_transitions_total", "Circuit breaker transitions",
            ["account", "from_state", "to_state"], registry=r,
        )  # fmt: skip
        self.reconnects = Counter(
            "mt5gate_reconnect_attempts_total", "Reconnection attempts by result (ok, failed)",
            ["account", "result"], registry=r,
        )  # fmt: skip
        self.stream_dropped = Counter(
            "mt5gate_stream_dropped_items_total",
            "Stream items dropped for slow subscribers, by stream kind",
            ["account", "stream"], registry=r,
        )  # fmt: skip
        self.health_status = Gauge(
            "mt5gate_health_status", "Latest health reading: 0 pass, 1 warn, 2 fail",
            ["account"], registry=r,
        )  # fmt: skip
        self.terminal_ping = Gauge(
            "mt5gate_terminal_ping_seconds", "Terminal to trade server ping (latest reading)",
            ["account"], registry=r,
        )  # fmt: skip
        self.tick_age = Gauge(
            "mt5gate_tick_age_seconds", "Age of the last tick of a watched symbol (latest reading)",
            ["account", "symbol"], registry=r,
        )  # fmt: skip
        self.clock_offset = Gauge(
            "mt5gate_broker_clock_offset_seconds",
            "Broker server time minus UTC, from the newest tick (latest reading)",
            ["account"], registry=r,
        )  # fmt: skip
        self.unresolved_orders = Gauge(
            "mt5gate_unresolved_orders",
            "Orders with an unknown outcome, being reconciled (latest reading)",
            ["account"], registry=r,
        )  # fmt: skip
        self.bus_published = Counter(
            "mt5gate_bus_published_total",
            "Messages published on the bus (kind: ticks, events, interest)",
            ["account", "kind"], registry=r,
        )  # fmt: skip
        self.bus_dropped = Counter(
            "mt5gate_bus_dropped_total",
            "Messages not published (bus down) or dropped for slow readers, by kind",
            ["account", "kind"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "mt5gate_http_request_duration_seconds",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=r,
        )  # fmt: skip
        self._http_children = _Children(self.http_duration)

    def bus_sent(self, account: str, kind: str, published: bool = True) -> None:
        """Count one bus message of ``kind`` for ``account``: published, or dropped."""
        counter = self.bus_published if published else self.bus_dropped
        counter.labels(account, kind).inc()

    def trail(self, account: str) -> LatencyTrail:
        """The recent terminal-call latency of ``account`` (p50/p99 per time slot), fed by the
        same observations as ``mt5gate_terminal_call_duration_seconds``."""
        with self._lock:
            return self._trails.setdefault(account, LatencyTrail())

    def observer(self, account: str) -> PrometheusObserver:
        """A session observer feeding these metrics, labelled ``account`` (the configured account
        name). Use one per session; it starts the state gauges at disconnected / closed."""
        return PrometheusObserver(self, account)

    def observe_health(self, account: str, status: HealthReading) -> None:
        """Make ``account``'s health gauges mirror ``status``, a ``health.HealthStatus`` (see the
        module docstring)."""
        with self._lock:
            self.health_status.labels(account).set(_HEALTH_VALUE[str(status.status)])
            found = _by_name(status.checks)
            one = (account,)
            _mirror(self.terminal_ping, one, _seconds(found.get("terminal:ping", [])))
            _mirror(self.clock_offset, one, _seconds(found.get("broker:clockOffset", [])))
            _mirror(self.unresolved_orders, one, _number(found.get("orders:unresolved", [])))
            ages = {c.component_id: _seconds([c]) for c in found.get("tick:age", [])}
            for symbol in self._symbols.get(account, set()) - ages.keys():
                self.tick_age.remove(account, symbol)
            for symbol, age in ages.items():
                _mirror(self.tick_age, (account, symbol), age)
            self._symbols[account] = {s for s, age in ages.items() if age is not None}

    def observe_http(self, method: str, route: str, status: int, duration_s: float) -> None:
        """One HTTP request. ``route`` must be the route *template*
        (``/v1/accounts/{account}/tick/{symbol}``), never the raw path; ``status`` is exported
        as the exact code (the service answers with a small fixed set of codes); a method
        outside the standard ones is exported as "other"."""
        verb = method.upper()
        verb = verb if verb in _HTTP_METHODS else "other"
        self._http_children.observe((verb, route, str(int(status))), duration_s)

    def render(self) -> tuple[bytes, str]:
        """The exposition body of every metric in the registry, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class PrometheusObserver(SessionObserver):
    """The session hooks of one account, turned into :class:`Metrics` samples."""

    def __init__(self, metrics: Metrics, account: str) -> None:
        self.metrics = metrics
        self.account = account
        self._trail = metrics.trail(account)
        self._calls = metrics.call_children
        self._lock = threading.Lock()
        self._dropped: OrderedDict[str, int] = OrderedDict()  # subscriber -> total reported
        self._one_hot(metrics.session_state, SessionState, SessionState.DISCONNECTED)
        self._one_hot(metrics.breaker_state, BreakerState, BreakerState.CLOSED)
        for result in ("ok", "failed"):  # both series exist from the start, at 0
            metrics.reconnects.labels(account, result)

    def _one_hot(self, gauge: Gauge, states: Iterable[str], current: str) -> None:
        for state in states:
            gauge.labels(self.account, str(state)).set(1 if state == current else 0)

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self._calls.observe((self.account, function, outcome), duration_s)
        self._trail.add(duration_s)

    def state_changed(self, change: StateChange) -> None:
        self._one_hot(self.metrics.session_state, SessionState, change.new)

    def breaker_changed(self, transition: BreakerTransition) -> None:
        self._one_hot(self.metrics.breaker_state, BreakerState, transition.new)
        counter = self.metrics.breaker_transitions
        counter.labels(self.account, str(transition.old), str(transition.new)).inc()

    def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
        self.metrics.reconnects.labels(self.account, "ok" if ok else "failed").inc()

    def stream_dropped(self, stream: str, dropped: int) -> None:
        """``stream`` names a subscriber ("ticks#3") and ``dropped`` is its running total: the
        counter gets the increase, labelled with the stream kind only ("ticks")."""
        with self._lock:
            before = self._dropped.pop(stream, 0)
            self._dropped[stream] = dropped
            if len(self._dropped) > _STREAM_MEMORY:
                self._dropped.popitem(last=False)
        if dropped > before:
            kind = stream.partition("#")[0]
            self.metrics.stream_dropped.labels(self.account, kind).inc(dropped - before)

    def order_event(self, kind: str, retcode: int | None) -> None:
        code = "" if retcode is None else str(int(retcode))
        self.metrics.order_events.labels(self.account, kind, code).inc()

    def journal_written(self, operation: str, duration_s: float) -> None:
        self.metrics.journal_duration.labels(self.account, operation).observe(duration_s)


# ------------------------------------------------------------------------------- helpers


def _by_name(checks: Iterable[HealthCheck]) -> dict[str, list[HealthCheck]]:
    found: dict[str, list[HealthCheck]] = {}
    for check in checks:
        found.setdefault(check.name, []).append(check)
    return found


def _number(checks: list[HealthCheck]) -> float | None:
    """The first check's value when it is a number (booleans and strings are not)."""
    if not checks:
        return None
    value = checks[0].observed_value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _seconds(checks: list[HealthCheck]) -> float | None:
    """The first check's value in seconds (health readings use "s" and "ms")."""
    value = _number(checks)
    if value is None:
        return None
    unit = checks[0].observed_unit
    if unit == "ms":
        return value / 1000
    return value if unit == "s" else None


def _mirror(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    """Set the series to ``value``, or remove it when there is none."""
    if value is None:
        gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)


# ---------------------------------------------------------------------------------------------
# Latency over time (the console's plot)


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """The terminal calls of one time slot: when it started (epoch ms), how many, and their
    median and 99th percentile in milliseconds."""

    time_ms: int
    calls: int
    p50_ms: float
    p99_ms: float


class LatencyTrail:
    """Terminal-call durations in fixed time slots (``slot_s`` seconds, the last ``slots``
    kept), each slot a uniform sample of at most ``sample`` durations (reservoir sampling), so
    memory is bounded whatever the call rate: at the defaults 120 slots x 256 floats, ten
    minutes of history. Percentiles are computed when read, from the sample.

    Histograms (``/metrics``) answer "how slow overall"; this answers "since when", which a
    Prometheus server would give from the histogram, but a lone gateway has no Prometheus."""

    def __init__(
        self,
        *,
        slot_s: float = 5.0,
        slots: int = 120,
        sample: int = 256,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
    ) -> None:
        if slot_s <= 0 or slots < 1 or sample < 1:
            raise ValueError("slot_s must be > 0, slots and sample >= 1")
        self.slot_s, self.sample = slot_s, sample
        self._clock = clock
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._slots: deque[tuple[int, list[float], list[int]]] = deque(maxlen=slots)

    def add(self, duration_s: float) -> None:
        """One call's duration (any thread)."""
        index = int(self._clock() // self.slot_s)
        with self._lock:
            if not self._slots or self._slots[-1][0] != index:
                self._slots.append((index, [], [0]))
            _, kept, seen = self._slots[-1]
            seen[0] += 1
            if len(kept) < self.sample:
                kept.append(duration_s)
            else:  # reservoir sampling: each call kept with probability sample / seen
                slot = self._random.randrange(seen[0])
                if slot < self.sample:
                    kept[slot] = duration_s

    def points(self) -> list[LatencyPoint]:
        """One point per slot that saw calls, oldest first."""
        with self._lock:
            slots = [(index, sorted(kept), seen[0]) for index, kept, seen in self._slots]
        return [
            LatencyPoint(round(index * self.slot_s * 1000), seen,
                         _quantile(kept, 0.50) * 1000, _quantile(kept, 0.99) * 1000)
            for index, kept, seen in slots if kept
        ]  # fmt: skip


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of a sorted, non-empty sequence (nearest rank)."""
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]
