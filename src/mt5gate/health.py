"""Health of one session: a one-shot :func:`probe` and a background :class:`HealthMonitor`.

``await probe(session, symbols=["EURUSD"])`` returns a :class:`HealthStatus` with one
:class:`Check` per concern, in the vocabulary of the IETF draft "Health Check Response Format for
HTTP APIs" (``pass`` / ``warn`` / ``fail``, checks keyed ``"component:measurement"``)::

    session:state          connected pass; connecting, degraded, reconnecting warn; else fail
    terminal:ipc           terminal_info() answers within Timeouts.probe_s (a stuck worker fails
                           at once, without a call)
    terminal:connection    terminal_info().connected: the link to the trade server
    account:login          account_info().login (and server) are the configured ones
    trading:allowed        Algo Trading button, Python API switch, account trade_allowed and
                           trade_expert: warn 'trading disabled' (a gate, not an outage)
    terminal:ping          ping_last in ms against HealthThresholds
    tick:age               per watched symbol, judged only inside its trading hours
    broker:clockOffset     newest open-market tick time minus UTC now, against the broker offset
                           MarketHours expects (a DST change or a wrong setting shows here)
    circuitBreaker:state   closed pass; half-open and disabled warn; open and forced open fail

The "unresolved orders" check of DESIGN §6 joins when the order journal exists.

A probe never raises on terminal failures: a failing call becomes a failing check, and checks
that depend on an unreachable terminal are reported ``warn`` with "not checked: ...". Every call
has the probe deadline, so a probe of a hung terminal returns after about ``probe_s``. The
terminal_info call may take the breaker's half-open trial slot (``probe=True``): the health probe
is the preferred trial call, not a real order.

Times: MT5 stamps ticks with broker *server* time encoded as UTC. :class:`MarketHours` holds
trading windows in server time and the broker's UTC offset; server time now is UTC now plus that
offset. The report time is wall-clock UTC; durations use the session's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mt5gate.circuit_breaker import BreakerState
from mt5gate.errors import MT5DataError, MT5Error, MT5OwnershipError
from mt5gate.models import Account, Price, TerminalStatus
from mt5gate.orders.store import JournalError
from mt5gate.redaction import redact_text
from mt5gate.session.state import SessionState

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = [
    "ALWAYS_OPEN",
    "FOREX_WEEK",
    "Check",
    "HealthMonitor",
    "HealthStatus",
    "HealthThresholds",
    "MarketHours",
    "Status",
    "TradingWindow",
    "Weekday",
    "probe",
    "wall_utc_ms",
]

log = logging.getLogger("mt5gate.health")


# ------------------------------------------------------------------------------ vocabulary


class Status(StrEnum):
    """A check's verdict, as the IETF draft spells it; ``worst`` combines verdicts."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    @staticmethod
    def worst(statuses: Sequence[Status]) -> Status:
        """The most severe of ``statuses`` (``pass`` when there are none)."""
        return max(statuses, key=_SEVERITY.__getitem__, default=Status.PASS)


_SEVERITY = MappingProxyType({Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2})


def wall_utc_ms() -> int:
    """Machine wall-clock time, UTC epoch milliseconds (the default report clock)."""
    return time.time_ns() // 1_000_000


def _iso(utc_ms: int) -> str:
    moment = datetime.fromtimestamp(utc_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Check:
    """One measurement of one component; ``name`` is the draft's "component:measurement" key."""

    name: str
    component_id: str
    component_type: str
    status: Status
    observed_value: float | int | str | bool | None = None
    observed_unit: str | None = None
    output: str = ""
    time: str = ""  # ISO-8601 UTC of the reading

    def to_json(self) -> dict[str, Any]:
        """The draft's check object; empty fields (and ``output`` on pass) are left out."""
        body: dict[str, Any] = {
            "componentId": self.component_id,
            "componentType": self.component_type,
            "observedValue": self.observed_value,
            "observedUnit": self.observed_unit,
            "status": str(self.status),
            "time": self.time,
            "output": self.output if self.status != Status.PASS else "",
        }
        return {k: v for k, v in body.items() if v is not None and v != ""}


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """A whole reading: the worst check decides ``status``; ``reasons`` explain warn and fail."""

    status: Status
    checks: tuple[Check, ...]
    time_ms: int  # wall-clock UTC of the reading
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, checks: Sequence[Check], time_ms: int) -> HealthStatus:
        """The reading made of ``checks``."""
        reasons = tuple(f"{c.name}: {c.output}" for c in checks if c.status != Status.PASS)
        status = Status.worst([c.status for c in checks])
        return cls(status, tuple(checks), time_ms, reasons)

    def to_health_json(self) -> dict[str, Any]:
        """The ``application/health+json`` body (serve 503 when ``status`` is fail)."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for check in self.checks:
            grouped.setdefault(check.name, []).append(check.to_json())
        body: dict[str, Any] = {"status": str(self.status), "checks": grouped}
        if self.reasons:
            body["output"] = "; ".join(self.reasons)
        return body


# ------------------------------------------------------------------------------- policies


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Where measurements turn warn and fail."""

    ping_warn_ms: float = 250.0
    ping_fail_ms: float = 1000.0
    tick_age_warn_s: float = 60.0
    tick_age_fail_s: float = 300.0
    clock_offset_warn_s: float = 300.0  # |observed broker offset - expected offset|

    def __post_init__(self) -> None:
        pairs = (
            (self.ping_warn_ms, self.ping_fail_ms),
            (self.tick_age_warn_s, self.tick_age_fail_s),
        )
        if any(not 0 < warn <= fail for warn, fail in pairs) or self.clock_offset_warn_s <= 0:
            raise ValueError("HealthThresholds: need 0 < warn <= fail and clock_offset_warn_s > 0")


class Weekday(IntEnum):
    """Days of the server week, numbered as MT5 does (Sunday = 0)."""

    SUNDAY = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6


@dataclass(frozen=True, slots=True)
class TradingWindow:
    """Open on ``day`` from ``start_min`` to ``end_min`` (exclusive), minutes of server time."""

    day: Weekday
    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_min < self.end_min <= 1440:
            raise ValueError(f"TradingWindow needs 0 <= start < end <= 1440, got {self}")

    def contains(self, day: int, minute: int) -> bool:
        """Whether minute ``minute`` of weekday ``day`` lies in this window."""
        return day == self.day and self.start_min <= minute < self.end_min


W = Weekday
#: The usual forex week in server time: Monday 00:05 to Friday 23:55 (as the simulator trades).
FOREX_WEEK: tuple[TradingWindow, ...] = (
    TradingWindow(W.MONDAY, 5, 1440),
    *(TradingWindow(d, 0, 1440) for d in (W.TUESDAY, W.WEDNESDAY, W.THURSDAY)),
    TradingWindow(W.FRIDAY, 0, 1435),
)
#: Around the clock, every day (crypto CFDs).
ALWAYS_OPEN: tuple[TradingWindow, ...] = tuple(TradingWindow(d, 0, 1440) for d in Weekday)

_DAY_MS = 86_400_000
_EPOCH_WEEKDAY = 4  # 1970-01-01 was a Thursday


@dataclass(frozen=True, slots=True)
class MarketHours:
    """When each symbol trades, in server time, and the broker's UTC offset (policy as data).

    MT5's Python API does not expose trading sessions, so they are configured: ``default``
    for every symbol, ``symbols`` per symbol. ``utc_offset_s`` is the broker server's offset
    from UTC (most MT5 servers run UTC+2 in winter and UTC+3 in summer: set it for yours; the
    ``broker:clockOffset`` check warns when the ticks say otherwise).
    """

    default: tuple[TradingWindow, ...] = FOREX_WEEK
    symbols: Mapping[str, tuple[TradingWindow, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    utc_offset_s: int = 7200

    def windows(self, symbol: str) -> tuple[TradingWindow, ...]:
        """The trading windows of ``symbol``."""
        return self.symbols.get(symbol, self.default)

    def is_open(self, symbol: str, server_ms: int) -> bool:
        """Whether ``symbol`` trades at server time ``server_ms``."""
        day = (server_ms // _DAY_MS + _EPOCH_WEEKDAY) % 7
        minute = (server_ms % _DAY_MS) // 60_000
        return any(w.contains(day, minute) for w in self.windows(symbol))

    def server_ms(self, utc_ms: int) -> int:
        """Server time at UTC time ``utc_ms``."""
        return utc_ms + self.utc_offset_s * 1000


# ----------------------------------------------------------------------------------- probe


@dataclass(frozen=True, slots=True)
class _Failure:
    """A call that did not produce a record, and why (error class and message)."""

    reason: str


_SESSION = MappingProxyType(
    {
        SessionState.CONNECTED: Status.PASS,
        SessionState.CONNECTING: Status.WARN,
        SessionState.DEGRADED: Status.WARN,
        SessionState.RECONNECTING: Status.WARN,
        SessionState.DISCONNECTED: Status.FAIL,
        SessionState.CLOSED: Status.FAIL,
    }
)
_BREAKER = MappingProxyType(
    {
        BreakerState.CLOSED: Status.PASS,
        BreakerState.HALF_OPEN: Status.WARN,
        BreakerState.DISABLED: Status.WARN,
        BreakerState.OPEN: Status.FAIL,
        BreakerState.FORCED_OPEN: Status.FAIL,
    }
)
_ATTACHED = frozenset({SessionState.CONNECTED, SessionState.DEGRADED, SessionState.RECONNECTING})


def _judge(value: float, warn: float, fail: float) -> Status:
    return Status.FAIL if value >= fail else Status.WARN if value >= warn else Status.PASS


async def probe(
    session: MT5SessionManager,
    *,
    symbols: Sequence[str] = (),
    market_hours: MarketHours | None = None,
    thresholds: HealthThresholds | None = None,
    utc_now_ms: Callable[[], int] = wall_utc_ms,
) -> HealthStatus:
    """One health reading of ``session`` (see the module docstring); never raises on terminal
    failures and returns within about ``session.timeouts.probe_s``.

    ``utc_now_ms`` is the wall clock (injected by tests that run the simulator's virtual time).
    """
    hours = market_hours or MarketHours()
    limits = thresholds or HealthThresholds()
    return await _Probe(session, tuple(symbols), hours, limits, utc_now_ms()).run()


class _Probe:
    """One probe run: the calls, then one check per concern."""

    def __init__(
        self,
        session: MT5SessionManager,
        symbols: tuple[str, ...],
        hours: MarketHours,
        limits: HealthThresholds,
        utc_ms: int,
    ) -> None:
        self.session = session
        self.symbols = symbols
        self.hours = hours
        self.limits = limits
        self.utc_ms = utc_ms
        self.server_ms = hours.server_ms(utc_ms)
        self.time = _iso(utc_ms)
        self.ipc_ms = 0.0
        self.waited = ""  # what terminal_info queued behind, if anything
        password = session.credentials.password
        self.secrets = (password,) if password is not None else ()

    def check(
        self,
        name: str,
        component: tuple[str, str],
        status: Status,
        value: float | str | bool | None = None,
        unit: str | None = None,
        output: str = "",
    ) -> Check:
        """A check stamped with the reading's time; its text is redacted (no secret leaves)."""
        ident, text = self.redact(component[0]), self.redact(output)
        value = self.redact(value) if isinstance(value, str) else value
        return Check(name, ident, component[1], status, value, unit, text, self.time)

    def redact(self, text: str) -> str:
        """``text`` with the session's password masked wherever it occurs."""
        return redact_text(text, self.secrets) if text else text

    async def run(self) -> HealthStatus:
        checks = [self.session_check()]
        terminal = await self.terminal()
        checks.append(self.ipc_check(terminal))
        if isinstance(terminal, TerminalStatus):
            checks += await self.terminal_checks(terminal)
        else:
            checks += self.skipped(f"not checked: {terminal.reason}")
        checks.append(self.breaker_check())
        checks += await self.order_checks()
        return HealthStatus.of(checks, self.utc_ms)

    # -- calls ---------------------------------------------------------------------------

    async def call(self, function: str, *args: Any, probe: bool = False) -> Any:
        """A terminal call with the probe deadline, a ``_Failure`` instead of any exception.

        The deadline runs from when the terminal is free: a call in flight that is within its
        own deadline (a long ``copy_ticks_range``) is work, not a fault, so the probe waits for
        it; a call past its deadline makes the worker stuck and the probe fails at once."""
        try:
            deadline = self.session.timeouts.probe_s + self.session.worker.time_left()
            return await self.session.caller.call(function, *args, deadline_s=deadline, probe=probe)
        except MT5Error as error:
            return _Failure(f"{type(error).__name__}: {error.message}")
        except Exception as error:  # a probe never raises: a closed worker, a broken transport
            return _Failure(f"{type(error).__name__}: {error}")

    async def terminal(self) -> TerminalStatus | _Failure:
        """terminal_info(), unless the session is detached or the worker is stuck in a call."""
        state = self.session.state
        if state not in _ATTACHED:
            return _Failure(f"the session is {state}")
        busy = self.session.worker.busy()
        if self.session.worker.stuck and busy is not None:
            return _Failure(f"the terminal has been busy with {busy[0]}() for {busy[1]:.1f} s")
        if busy is not None:
            self.waited = f"queued behind {busy[0]}() (running {busy[1]:.1f} s)"
        started = self.session.clock.monotonic()
        record = await self.call("terminal_info", probe=True)
        self.ipc_ms = (self.session.clock.monotonic() - started) * 1000
        return record if isinstance(record, _Failure) else TerminalStatus.from_record(record)

    async def account(self) -> Account | _Failure:
        record = await self.call("account_info")
        return record if isinstance(record, _Failure) else Account.from_record(record)

    async def prices(self) -> dict[str, Price | _Failure]:
        """The watched symbols' ticks, read concurrently (each with the probe deadline)."""
        found = await asyncio.gather(*(self.price(s) for s in self.symbols))
        return dict(zip(self.symbols, found, strict=True))

    async def price(self, symbol: str) -> Price | _Failure:
        """The symbol's tick; selects it in Market Watch first when the terminal says so."""
        tick = await self.call("symbol_info_tick", symbol)
        if isinstance(tick, _Failure) and tick.reason.startswith(MT5DataError.__name__):
            await self.call("symbol_select", symbol, True)
            tick = await self.call("symbol_info_tick", symbol)
        return tick if isinstance(tick, _Failure) else Price.from_tick(symbol, tick)

    # -- checks --------------------------------------------------------------------------

    def session_check(self) -> Check:
        state = self.session.state
        component = ("session", "component")
        output = f"the session is {state}"
        failure = self.session.last_connect_failure
        if failure is not None and state not in (SessionState.CONNECTED, SessionState.DEGRADED):
            output += f"; the last connect attempt failed: {failure}"
        return self.check("session:state", component, _SESSION[state], str(state), None, output)

    def ipc_check(self, terminal: TerminalStatus | _Failure) -> Check:
        component = ("terminal", "system")
        if isinstance(terminal, TerminalStatus):
            ipc = round(self.ipc_ms, 3)
            return self.check("terminal:ipc", component, Status.PASS, ipc, "ms", self.waited)
        state = self.session.state
        status = Status.WARN if state not in _ATTACHED else Status.FAIL
        return self.check("terminal:ipc", component, status, None, None, terminal.reason)

    async def terminal_checks(self, terminal: TerminalStatus) -> list[Check]:
        """Everything that needs an answering terminal: account, switches, ping, ticks, clock."""
        account, ticks = await asyncio.gather(self.account(), self.prices())
        return [
            self.connection_check(terminal),
            self.auth_check(account),
            self.trading_check(terminal, account),
            self.latency_check(terminal),
            *(self.tick_check(symbol, price) for symbol, price in ticks.items()),
            *self.clock_checks(ticks),
        ]

    def skipped(self, why: str) -> list[Check]:
        """The terminal-dependent checks, reported warn: nothing could be measured."""
        names = (
            ("terminal:connection", ("terminal", "system")),
            ("account:login", ("account", "system")),
            ("trading:allowed", ("trading", "system")),
            ("terminal:ping", ("terminal", "system")),
            *(("tick:age", (symbol, "component")) for symbol in self.symbols),
        )
        return [self.check(name, comp, Status.WARN, None, None, why) for name, comp in names]

    def connection_check(self, terminal: TerminalStatus) -> Check:
        component = ("terminal", "system")
        if terminal.connected:
            return self.check("terminal:connection", component, Status.PASS, True)
        output = "the terminal is not connected to the trade server"
        return self.check("terminal:connection", component, Status.FAIL, False, None, output)

    def auth_check(self, account: Account | _Failure) -> Check:
        component = ("account", "system")
        if isinstance(account, _Failure):
            return self.check("account:login", component, Status.FAIL, None, None, account.reason)
        expected = self.session.credentials
        wrong = expected.login is not None and account.login != expected.login
        wrong = wrong or (expected.server is not None and account.server != expected.server)
        output = (
            f"logged into {account.login} on {account.server!r}, expected "
            f"{expected.login} on {expected.server!r}"
        )
        status, output = (Status.FAIL, output) if wrong else (Status.PASS, "")
        return self.check("account:login", component, status, account.login, None, output)

    def trading_check(self, terminal: TerminalStatus, account: Account | _Failure) -> Check:
        gates = [
            (not terminal.trade_allowed, "Algo Trading is off in the terminal"),
            (terminal.tradeapi_disabled, "the terminal disables trading from Python"),
        ]
        if not isinstance(account, _Failure):
            gates.append((not account.trade_allowed, "the account may not trade (investor?)"))
            gates.append((not account.trade_expert, "the server forbids automated trading"))
        closed = [why for shut, why in gates if shut]
        status = Status.WARN if closed else Status.PASS
        output = "trading disabled: " + ", ".join(closed) if closed else ""
        component = ("trading", "system")
        return self.check("trading:allowed", component, status, not closed, None, output)

    def latency_check(self, terminal: TerminalStatus) -> Check:
        component = ("terminal", "system")
        if not terminal.connected:
            output = "not measured: no trade server connection"
            return self.check("terminal:ping", component, Status.WARN, None, "ms", output)
        ping, limits = terminal.ping_ms, self.limits
        status = _judge(ping, limits.ping_warn_ms, limits.ping_fail_ms)
        output = f"ping {ping:.0f} ms"
        return self.check("terminal:ping", component, status, round(ping, 3), "ms", output)

    def tick_check(self, symbol: str, price: Price | _Failure) -> Check:
        """Tick age, judged only while ``symbol`` trades (a weekend quote is not stale)."""
        component = (symbol, "component")
        if isinstance(price, _Failure):
            output = f"{symbol}: no tick: {price.reason}"
            return self.check("tick:age", component, Status.FAIL, None, "s", output)
        age = round(max(0.0, (self.server_ms - price.time_msc) / 1000), 3)
        if not self.hours.is_open(symbol, self.server_ms):
            return self.check("tick:age", component, Status.PASS, age, "s", "market closed")
        limits = self.limits
        status = _judge(age, limits.tick_age_warn_s, limits.tick_age_fail_s)
        output = f"{symbol}: last tick {age:.0f} s ago"
        return self.check("tick:age", component, status, age, "s", output)

    def clock_checks(self, ticks: Mapping[str, Price | _Failure]) -> list[Check]:
        """Broker time minus UTC, from the newest tick of a symbol trading now (none: none)."""
        if not ticks:
            return []
        component = ("broker", "system")
        live = [
            p.time_msc
            for s, p in ticks.items()
            if isinstance(p, Price) and self.hours.is_open(s, self.server_ms)
        ]
        if not live:
            output = "market closed"
            return [self.check("broker:clockOffset", component, Status.PASS, None, "s", output)]
        offset = round((max(live) - self.utc_ms) / 1000, 3)
        drift = offset - self.hours.utc_offset_s
        status = Status.WARN if abs(drift) > self.limits.clock_offset_warn_s else Status.PASS
        output = (
            f"broker time is UTC{offset:+.0f} s, MarketHours expects "
            f"UTC{self.hours.utc_offset_s:+d} s (daylight saving? stale feed?)"
        )
        return [self.check("broker:clockOffset", component, status, offset, "s", output)]

    def breaker_check(self) -> Check:
        stats = self.session.breaker.snapshot()
        status = _BREAKER[stats.state]
        output = f"circuit breaker {stats.state}: {stats.reason}"
        component = (stats.name, "component")
        value = str(stats.state)
        return self.check("circuitBreaker:state", component, status, value, None, output)

    def _ownership_checks(self, component: tuple[str, str]) -> list[Check]:
        """Who owns the account (the lease and its epoch), and whether new orders are stopped
        because the broker holds orders of ours the journal never issued."""
        pipeline = self.session.pipeline
        try:
            fence = pipeline.ownership.fence()
        except MT5OwnershipError as lost:
            owner = self.check("orders:ownership", component, Status.FAIL, None, None, str(lost))
        else:
            output = f"this process owns the account (epoch {fence.epoch})"
            owner = self.check("orders:ownership", component, Status.PASS, fence.epoch, None,
                               output)  # fmt: skip
        block = pipeline.blocked
        if block is None:
            return [owner, self.check("orders:block", component, Status.PASS, 0, None, "")]
        output = (
            f"new orders are stopped: {block.reason}. Check those orders at the broker, then "
            f"run `mt5gate journal acknowledge --login {block.login} --note '...'`"
        )
        count = len(block.sequences)
        return [owner, self.check("orders:block", component, Status.FAIL, count, None, output)]

    async def order_checks(self) -> list[Check]:
        """The order pipeline: unresolved orders, the last sweep's findings, the halt switch.

        Read from the journal (never the terminal). Before the first connect there is no
        account to read them for, and no check."""
        pipeline = self.session.pipeline
        try:
            unresolved = await pipeline.unresolved()
        except MT5Error:  # not connected yet, or closed: no account to speak for
            return []
        except JournalError as broken:
            component = ("order journal", "datastore")
            return [self.check("orders:journal", component, Status.FAIL, None, None, str(broken))]
        component = (f"account {pipeline.login}", "datastore")
        tags = ", ".join(c.comment_tag for c in unresolved[:5])
        status = Status.WARN if unresolved else Status.PASS
        output = f"orders with an unknown outcome, being reconciled: {tags}" if unresolved else ""
        checks = [self.check("orders:unresolved", component, status, len(unresolved), None, output)]
        found = len(pipeline.last_audit_unexpected) + len(pipeline.last_audit_duplicates)
        output = (
            f"the last sweep found orders the journal cannot account for (unexpected "
            f"{list(pipeline.last_audit_unexpected)}, duplicate "
            f"{list(pipeline.last_audit_duplicates)}); see `mt5gate journal list`"
        )
        status = Status.FAIL if found else Status.PASS
        checks.append(self.check("orders:audit", component, status, found, None, output))
        checks += self._ownership_checks(component)
        halted = self.session.risk.halted
        output = f"trading is halted: {self.session.risk.halt_reason or 'no reason given'}"
        status = Status.WARN if halted else Status.PASS
        checks.append(self.check("trading:halt", component, status, halted, None, output))
        return checks


# --------------------------------------------------------------------------------- monitor

Transition = Callable[[HealthStatus | None, HealthStatus], None]


class HealthMonitor:
    """Probes ``session`` every ``interval_s`` in a background task it owns.

    ``latest`` is served at once, so readers (a readiness endpoint, a bot) never wait on the
    terminal. ``on_transition`` callbacks get ``(old, new)`` readings whenever the overall status
    changes (``old`` is None for the first reading), in the order they happened.
    """

    def __init__(
        self, session: MT5SessionManager, *, interval_s: float = 5.0, **probe_options: Any
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"HealthMonitor interval_s must be > 0, got {interval_s}")
        self.session = session
        self.interval_s = interval_s
        self.probe_options = probe_options
        self.latest: HealthStatus | None = None
        self._callbacks: list[Transition] = []
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        status = self.latest.status if self.latest else "unknown"
        return f"<HealthMonitor {self.session.name!r} {status} running={self.running}>"

    @property
    def running(self) -> bool:
        """Whether the background task is alive."""
        return self._task is not None and not self._task.done()

    def on_transition(self, callback: Transition) -> Callable[[], None]:
        """Call ``callback(old, new)`` on every change of overall status; returns an unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def start(self) -> None:
        """Start probing in the background (idempotent; needs a running event loop)."""
        if not self.running:
            name = f"{self.session.name}-health"
            self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def stop(self) -> None:
        """Stop probing and wait for the task to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh(self) -> HealthStatus:
        """Probe now, keep the reading as ``latest``, tell callbacks if the status changed."""
        reading = await self._reading()
        old, self.latest = self.latest, reading
        if old is None or old.status != reading.status:
            self._notify(old, reading)
        return reading

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await self.session.clock.sleep(self.interval_s)

    async def _reading(self) -> HealthStatus:
        try:
            return await probe(self.session, **self.probe_options)
        except Exception as error:  # a bug must not end the monitor: report it as a failure
            log.exception("health probe failed")
            return _crashed(error, self.probe_options.get("utc_now_ms", wall_utc_ms))

    def _notify(self, old: HealthStatus | None, new: HealthStatus) -> None:
        for callback in list(self._callbacks):
            try:
                callback(old, new)
            except Exception:  # one broken listener must not silence the others
                log.exception("health transition callback failed")


def _crashed(error: Exception, clock: Callable[[], int]) -> HealthStatus:
    now = clock()
    output = f"the probe itself failed: {type(error).__name__}"
    check = Check(
        "health:probe", "mt5gate", "component", Status.FAIL, None, None, output, _iso(now)
    )
    return HealthStatus.of([check], now)
