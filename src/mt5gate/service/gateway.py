"""The running service's parts: one session, journal and health monitor per configured account.

:class:`Gateway` is built from :class:`~mt5gate.service.config.ServiceSettings` (the only place
the environment is read is the CLI that loads them), starts every account's session and health
monitor, and closes them on shutdown. An account whose terminal is down at start is not fatal:
its session keeps trying, its readiness fails, and its routes answer 503 meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from mt5gate.errors import MT5DataError, MT5Error, MT5OwnershipError
from mt5gate.files import private_dir
from mt5gate.health import HealthMonitor, HealthStatus, Status, Transition
from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.ownership import owner_id
from mt5gate.orders.store import JournalError, OrderStore
from mt5gate.service.auth import Authenticator
from mt5gate.service.config import AccountSettings, BusSettings, ServiceSettings
from mt5gate.service.simulated import configured_terminal, health_clock, runs_simulator
from mt5gate.service.stores import SharedStore, open_store
from mt5gate.session.manager import MT5SessionManager
from mt5gate.session.observer import LoggingObserver, ObserverGroup, SessionObserver
from mt5gate.session.policies import ReconnectPolicy
from mt5gate.session.resolve import resolve_terminal
from mt5gate.session.state import SessionState
from mt5gate.terminal.base import Terminal

if TYPE_CHECKING:
    from mt5gate.fleet import Fleet
    from mt5gate.metrics import Metrics
    from mt5gate.service.fleet import Conductor

__all__ = [
    "SIMULATED_NOTICE", "AccountRuntime", "Companion", "Gateway", "TerminalFor", "fleet_for",
    "session_for",
]  # fmt: skip

log = logging.getLogger("mt5gate.service")

#: Said on start, in every health response and in ``/v1/accounts`` while any account is simulated.
SIMULATED_NOTICE = (
    "SIMULATED terminal (mt5gate.sim): prices and orders are not real. Configure accounts "
    "(--config FILE) to trade on a real MT5 terminal."
)


#: How often the service asks again for an account another process owns: its lease lapses
#: within ``ttl_s`` (15 s) of that process letting go or dying unseen.
_OWNED_RETRY_S: Final = 2.0

#: Chooses an account's terminal: a Terminal object, or None for the account's configured one.
TerminalFor = Callable[[AccountSettings], Terminal | None]


class Companion(Protocol):
    """Something that runs beside the accounts on their sessions (the Telegram bot): started
    after the accounts, stopped before them."""

    async def start(self) -> None:
        """Start (may raise: the gateway logs it and runs on without the companion)."""

    async def stop(self) -> None:
        """Stop and release everything."""


@dataclass(slots=True)
class AccountRuntime:
    """One account as the service runs it."""

    settings: AccountSettings
    session: MT5SessionManager
    monitor: HealthMonitor
    connect_task: asyncio.Task[None] | None = None
    #: the first connect finished (the account owned, audited and recovered) and health read
    started: bool = False

    @property
    def claimed(self) -> bool:
        """Whether this service runs the account (connecting or connected), rather than
        leaving it to another replica of its fleet."""
        return self.connect_task is not None

    @property
    def name(self) -> str:
        """The account's configured name (the ``{account}`` of the routes)."""
        return self.settings.name

    @property
    def simulated(self) -> bool:
        """Whether the account runs on mt5gate's simulator: a ``sim`` account, or a bridge
        whose welcome said it serves one (known once connected)."""
        return self.settings.simulated or runs_simulator(self.session.terminal)

    @property
    def health(self) -> HealthStatus | None:
        """The latest background health reading (``None`` before the first)."""
        return self.monitor.latest

    @property
    def ready(self) -> bool:
        """Connected (attached, even if degraded), owned, audited and recovered (no unresolved
        order of the last start-up holds orders), and not failing its health checks. Before
        the first connect finished, calls would still wait or be refused: not ready."""
        reading = self.monitor.latest
        attached = self.session.state in (SessionState.CONNECTED, SessionState.DEGRADED)
        return (self.started and attached and self.session.pipeline.ready
                and reading is not None and reading.status != Status.FAIL)  # fmt: skip


@dataclass(slots=True)
class Gateway:
    """Every account's runtime, the API keys and the metrics of one service."""

    settings: ServiceSettings
    accounts: dict[str, AccountRuntime]
    authenticator: Authenticator
    metrics: Metrics
    started: bool = field(default=False)
    companions: list[Companion] = field(default_factory=list)
    #: the store every account shares (``[store]``), closed with the gateway; ``None``: each
    #: account has its own SQLite journal
    store: SharedStore | None = None
    #: this replica's part in its fleet (``[fleet]``); ``None``: it runs every account
    conductor: Conductor | None = None
    #: the bus between replicas (``[bus]``), one of the companions; ``None`` without one
    bus: Fleet | None = None
    _running: list[Companion] = field(default_factory=list)
    _make: Callable[[AccountSettings], AccountRuntime] | None = None

    @classmethod
    def build(
        cls,
        settings: ServiceSettings,
        env: Mapping[str, str],
        *,
        metrics: Metrics | None = None,
        terminal_for: TerminalFor | None = None,
        owner: Mapping[str, Any] | None = None,
    ) -> Gateway:
        """Sessions, journals and monitors for every configured account (nothing connects yet);
        the data directory is made (mode 700), or reported if other users can enter it.

        ``terminal_for(account)`` may put an account on a terminal of the caller's choosing
        (such as a simulator on a pinned clock, so that tests trade an open market on any day);
        ``None`` from it, or no ``terminal_for``, means the account's configured terminal.
        ``owner`` is what the accounts' leases tell other processes: by default ``mt5gate
        serve`` at ``settings.url``, which ``mt5gate`` commands then send their requests to;
        ``mt5gate bot`` alone serves no HTTP and says ``{"kind": "bot"}``."""
        if metrics is None:  # imported here: prometheus_client, which an mt5gate command (a
            from mt5gate.metrics import Metrics  # session_for of its own) never needs

            metrics = Metrics()
        loose = private_dir(settings.data_dir)
        if loose is not None:
            log.warning(loose)
        choose = terminal_for or _configured
        about = dict(owner) if owner is not None else {"kind": "serve", "url": settings.url}
        store = open_store(settings, env)
        if settings.fleet is not None:  # one owner name for all of this process's leases
            about.update(member=settings.replica, url=settings.advertised_url,
                         owner=owner_id(f"serve:{settings.replica}"))  # fmt: skip

        def make(account: AccountSettings) -> AccountRuntime:
            return _runtime(account, settings, env, metrics, choose(account), about, store)

        accounts = {a.name: make(a) for a in settings.accounts}
        gateway = cls(settings, accounts, Authenticator(settings.api_keys), metrics, store=store,
                      _make=make)  # fmt: skip
        if settings.fleet is not None and store is not None:
            from mt5gate.service.fleet import Conductor  # imported here: httpx, for a fleet

            gateway.conductor = Conductor(gateway, store, settings.fleet, settings.replica,
                                          settings.advertised_url, str(about["owner"]))  # fmt: skip
            gateway.companions.append(gateway.conductor)
        if settings.bus is not None:
            gateway.bus = fleet_for(settings.bus, env, gateway.accounts, metrics)
            gateway.companions.append(gateway.bus)
        return gateway

    @property
    def simulated(self) -> bool:
        """Whether any account runs on the simulator (here, or behind a bridge)."""
        return any(a.simulated for a in self.accounts.values())

    def account(self, name: str) -> AccountRuntime:
        """The runtime of account ``name``; ``MT5DataError`` (404) for an unknown one."""
        found = self.accounts.get(name)
        if found is None:
            raise MT5DataError(
                f"no account named {name!r}; the service has {sorted(self.accounts)}",
                hint="Use one of the configured account names.",
            )
        return found

    async def start(self) -> None:
        """Connect every account in the background and start its health monitor."""
        if self.simulated:
            log.warning(SIMULATED_NOTICE)
        for runtime in self.accounts.values():
            runtime.monitor.on_transition(_health_logger(runtime.name))
            if self.conductor is None:  # a fleet's conductor claims the accounts it places here
                self.connect(runtime)
        self.started = True
        for companion in self.companions:
            try:
                await companion.start()
            except Exception as error:  # the accounts still serve; say so loudly
                log.error("%r could not start (%s: %s); running without it",
                          companion, type(error).__name__, error)  # fmt: skip
                with contextlib.suppress(Exception):
                    await companion.stop()
            else:
                self._running.append(companion)

    def connect(self, runtime: AccountRuntime, *, retry_s: float = _OWNED_RETRY_S) -> None:
        """Start connecting ``runtime`` in the background (it keeps trying while another
        process owns the account, every ``retry_s``), and its health monitor."""
        runtime.connect_task = asyncio.get_running_loop().create_task(
            _connect(runtime, retry_s), name=f"{runtime.name}-connect"
        )
        runtime.monitor.start()

    async def retire(self, name: str) -> AccountRuntime:
        """Close account ``name``'s session (its lease is released) and put a fresh, idle
        runtime in its place: the account is left to another replica, and can be claimed
        again later."""
        old = self.accounts[name]
        if self._make is None:
            raise RuntimeError("Gateway.retire needs a gateway made by Gateway.build")
        await _close(old)
        fresh = self.accounts[name] = self._make(old.settings)
        fresh.monitor.on_transition(_health_logger(name))
        return fresh

    async def stop(self) -> None:
        """Stop companions and monitors, let in-flight work end, close sessions and journals."""
        while self._running:
            companion = self._running.pop()
            try:
                await companion.stop()
            except Exception:
                log.exception("%r did not stop cleanly", companion)
        for runtime in self.accounts.values():
            await _close(runtime)
        if self.store is not None:
            await self.store.close()
        self.started = False


async def _close(runtime: AccountRuntime) -> None:
    """Stop the account's monitor and connect task, close its session and journal."""
    await runtime.monitor.stop()
    if runtime.connect_task is not None:
        runtime.connect_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, MT5Error):
            await runtime.connect_task
    await runtime.session.close()
    runtime.session.close_journal()


def session_for(
    account: AccountSettings,
    settings: ServiceSettings,
    env: Mapping[str, str],
    *,
    terminal: Terminal | None = None,
    observer: SessionObserver | None = None,
    owner: Mapping[str, Any] | None = None,
    store: OrderStore | None = None,
    own_store: bool = False,
) -> MT5SessionManager:
    """The session of a configured account (not connected): its terminal (or ``terminal``, an
    object standing in for it, such as a simulator with a state file; a ``sim`` account's own
    is a simulator on its clock, pinned by ``sim_start``), its secrets read from ``env``, its
    journal file (or ``store``, the accounts' shared store, which the session closes with itself
    when ``own_store``), risk limits, reconciliation and lease settings. The service and the
    ``mt5gate`` command both build sessions here, so a command sees the orders the service
    journaled. A ``bridge://`` account with ``tls`` reaches its bridge over TLS (its CA file is
    read here, like its secrets; the certificate checked against ``tls_server_name``, else the
    URL's host). An ``official`` account's package runs in a child process of
    the session's own when ``settings.isolated(account)`` (several official accounts, or
    ``isolate = "process"``), and its ``terminal_path`` goes to ``initialize()``. ``observer``
    is added to the logging one (state changes, breaker transitions and reconnects are
    logged). ``owner`` tells other processes who owns the account while this session holds its
    lease (``{"kind": "serve", "url": ...}``; an ``owner`` item there is the lease's owner
    name, else a fresh one is made). ``store``: the store the service's accounts share
    (``[store]``), instead of the account's SQLite file."""
    logs = LoggingObserver(logging.getLogger(f"mt5gate.session.{account.name}"))
    about = dict(owner or {"kind": "session"})
    password, token = account.password(env), account.terminal_token(env)
    chosen = configured_terminal(account, settings) if terminal is None else terminal
    if isinstance(chosen, str) and account.tls:
        chosen = resolve_terminal(chosen, token=token, ssl_context=account.tls_context(),
                                  server_hostname=account.tls_server_name)  # fmt: skip
    return MT5SessionManager(
        terminal=chosen,
        isolate=terminal is None and settings.isolated(account),
        login=account.login, path=account.terminal_path,
        password=password, server=account.server,
        terminal_token=token,
        journal=store if store is not None else SqliteJournal(settings.journal_path(account)),
        risk=account.risk_limits(),
        reconcile=account.reconcile.policy(), lease=account.lease.policy(),
        specs=account.specs.policy(),
        owner=str(about.get("owner") or owner_id(str(about.get("kind", "session")))),
        owner_info={k: v for k, v in about.items() if k != "owner"},
        observer=logs if observer is None else ObserverGroup(logs, observer),
        name=account.name, reconnect=ReconnectPolicy(max_s=30.0),
        own_store=own_store if store is not None else None,
    )  # fmt: skip


def fleet_for(
    bus: BusSettings,
    env: Mapping[str, str],
    accounts: Mapping[str, AccountRuntime],
    metrics: Metrics,
) -> Fleet:
    """The bus companion of the ``[bus]`` table: publishes what this process owns, reads the
    rest (its token is read here, from its variable or file, and goes nowhere else)."""
    # imported here: only a service with a [bus] needs the bus (an ``mt5gate`` command never)
    from mt5gate.fleet import Bus, BusOptions, Fleet

    token = bus.token(env)
    options = BusOptions(
        bus.url, token=None if token is None else token.get_secret_value(),
        credentials_file=bus.credentials_file, stream=bus.stream,
        duplicate_window_s=float(bus.duplicate_window_s),
    )  # fmt: skip
    return Fleet(Bus(options), _Sessions(accounts), metrics=metrics,
                 interest_ttl_s=float(bus.interest_ttl_s))  # fmt: skip


class _Sessions(Mapping[str, MT5SessionManager]):
    """The accounts' current sessions, read live: a fleet's hand-over replaces an account's
    runtime (and session), and the bus must follow the new one."""

    def __init__(self, accounts: Mapping[str, AccountRuntime]) -> None:
        self._accounts = accounts

    def __getitem__(self, name: str) -> MT5SessionManager:
        return self._accounts[name].session

    def __iter__(self) -> Iterator[str]:
        return iter(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)


def _configured(_: AccountSettings) -> Terminal | None:
    return None


def _runtime(
    account: AccountSettings,
    settings: ServiceSettings,
    env: Mapping[str, str],
    metrics: Metrics,
    terminal: Terminal | None,
    owner: Mapping[str, Any],
    store: OrderStore | None,
) -> AccountRuntime:
    observer = metrics.observer(account.name)
    session = session_for(account, settings, env, terminal=terminal, observer=observer,
                          owner=owner, store=store)  # fmt: skip
    clock = health_clock(session.terminal)
    health = settings.account_health(account)
    monitor = HealthMonitor(
        session, interval_s=5.0, symbols=account.watch, utc_now_ms=clock,
        thresholds=health.thresholds(), market_hours=health.market_hours(),
    )  # fmt: skip
    return AccountRuntime(account, session, monitor)


async def _connect(runtime: AccountRuntime, owned_retry_s: float = _OWNED_RETRY_S) -> None:
    """Connect until it works (the session reconnects by itself once connected)."""
    delay = 1.0
    while True:
        try:
            await runtime.session.connect()
            log.info("account %s connected", runtime.name)
            if runtime.simulated and not runtime.settings.simulated:
                log.warning("account %s: its bridge (%s) serves a SIMULATED terminal "
                            "(mt5gate.sim): prices and orders are not real",
                            runtime.name, runtime.settings.terminal)  # fmt: skip
            await runtime.monitor.refresh()
            runtime.started = True
            return
        except MT5OwnershipError as owned:
            log.warning("account %s: %s; trying again in %g s (it is taken over once the "
                        "other owner lets go or its lease expires)",
                        runtime.name, owned.message, owned_retry_s)  # fmt: skip
            await asyncio.sleep(owned_retry_s)
        except (MT5Error, JournalError) as error:  # a journal locked by a paused writer
            log.warning("account %s: connect failed (%s); retrying in %.0f s",
                        runtime.name, error, delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _health_logger(name: str) -> Transition:
    def changed(old: HealthStatus | None, new: HealthStatus) -> None:
        was = old.status if old is not None else "unknown"
        log.warning("account %s health %s -> %s %s", name, was, new.status, list(new.reasons))

    return changed
