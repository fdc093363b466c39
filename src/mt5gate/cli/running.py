"""Running a command on its account: resolve it, connect (or go through the ``mt5gate serve``
that owns it), do the work, close, and turn every failure into one line and an exit code.

Apart from :mod:`mt5gate.cli.app` (the declarations) because this is where the gateway's
weight is (the session, the service's configuration, httpx, rich): a command imports it when
it runs, so ``mt5gate --help`` does not.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.markup import escape

from mt5gate.cli.failures import Exit, guarded
from mt5gate.cli.owner import OwningService, api_key, owning_service
from mt5gate.cli.port import AccountPort
from mt5gate.cli.reads import read_health, show_health, unreachable
from mt5gate.cli.target import Target, build_session, close_session, resolve_target
from mt5gate.cli.ui import Options, Ui
from mt5gate.errors import MT5ConnectionError, MT5Error, MT5OwnershipError
from mt5gate.health import HealthStatus
from mt5gate.service.simulated import runs_simulator

if TYPE_CHECKING:
    from mt5gate.cli.remote import RemoteAccount
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["Work", "remote_account", "run_health", "run_on_account"]

Work = Callable[[AccountPort, Ui, Target], Awaitable[Exit]]


def run_on_account(opts: Options, work: Work) -> int:
    """Resolve the account, announce a simulator, run ``work`` on it, close; every failure
    becomes one line, a hint and an exit code.

    One owner per account: when a running ``mt5gate serve`` owns it, ``work`` goes through the
    service's HTTP API (and says so); when another process does, the command names it and
    stops (:mod:`mt5gate.cli.owner`); otherwise it connects a session of its own (with a
    spinner), which holds the account's lease until it closes."""
    ui = Ui(opts)
    try:
        return int(guarded(ui.err, lambda: asyncio.run(_on_account(ui, work)), debug=opts.debug))
    finally:
        ui.close()


async def _on_account(ui: Ui, work: Work) -> Exit:
    target = resolve_target(ui.options.choice, ui.env)
    ui.announce(target)
    service = await owning_service(target, ui.env)
    if service is None:
        done = await _on_own_session(ui, target, work)
        if isinstance(done, Exit):
            return done
        service = done
    async with remote_account(ui, target, service) as remote:
        return await work(remote, ui, await _served_by(ui, target, remote))


async def _on_own_session(ui: Ui, target: Target, work: Work) -> Exit | OwningService:
    """``work`` on a session of the command's own; or, when a service took the account
    between the look-up and the connect, that service (nothing was done yet)."""
    session = build_session(target, ui.env)
    try:
        with ui.err.status(f"Connecting to {target.describe()} ..."):
            try:
                await session.connect()
            except MT5OwnershipError:
                service = await owning_service(target, ui.env)  # another owner: it says who
                if service is None:
                    raise
                return service
        return await work(session, ui, _served(ui, target, session))
    finally:
        await close_session(session)


def _served(ui: Ui, target: Target, session: MT5SessionManager) -> Target:
    """``target``, labelled SIMULATED (and announced as a ``sim`` account is) when the bridge
    the session connected to said that it serves mt5gate's simulator."""
    if target.simulated or not runs_simulator(session.terminal):
        return target
    found = dataclasses.replace(target, bridged_simulator=True)
    ui.announce(found)
    return found


async def _served_by(ui: Ui, target: Target, remote: RemoteAccount) -> Target:
    """``target``, labelled SIMULATED (and announced) when the service that owns it says it
    runs on mt5gate's simulator: behind a bridge, which only the service's session knows."""
    if target.simulated or not await remote.simulated():
        return target
    found = dataclasses.replace(target, bridged_simulator=True)
    ui.announce(found)
    return found


def remote_account(ui: Ui, target: Target, service: OwningService) -> RemoteAccount:
    """The account as ``service`` serves it, with the service's key (exit 2 without one)."""
    from mt5gate.cli.remote import RemoteAccount  # imported here: httpx, only for a service

    key = api_key(target, service, ui.env)
    ui.via(service.url, target.account.name)
    return RemoteAccount(service.url, target.account.name, key)


def run_health(opts: Options, symbols: list[str]) -> int:
    """A terminal that cannot be reached is a failing reading (exit 2), not an error."""
    ui = Ui(opts)

    async def reading() -> Exit:
        target = resolve_target(opts.choice, ui.env)
        ui.announce(target)
        service = await owning_service(target, ui.env)
        if service is not None:
            return show_health(ui, *await _service_health(ui, target, service, symbols))
        try:
            session = build_session(target, ui.env)
        except MT5Error as error:  # no terminal to ask (a package missing, a bad URL)
            return show_health(ui, target, unreachable(error))
        try:
            with ui.err.status(f"Connecting to {target.describe()} ..."):
                try:
                    await session.connect()
                except MT5Error as error:  # the reading says what is wrong
                    ui.note(f"[red]cannot connect:[/] {escape(error.message)}")
            found = _served(ui, target, session)
            return show_health(ui, found, await read_health(session, found, symbols))
        finally:
            await close_session(session)

    try:
        return int(guarded(ui.err, lambda: asyncio.run(reading()), debug=opts.debug))
    finally:
        ui.close()


async def _service_health(ui: Ui, target: Target, service: OwningService,
                          symbols: list[str]) -> tuple[Target, HealthStatus]:  # fmt: skip
    """The latest reading of the service that owns the account (and the account, labelled as
    the service says); a service that does not answer is a failing reading, as a terminal
    that cannot be reached is."""
    if symbols:
        ui.note(f"[yellow]the service reads the ticks of the symbols its configuration watches; "
                f"{escape(' '.join(symbols))} are not read here[/]")  # fmt: skip
    async with remote_account(ui, target, service) as remote:
        try:
            found = await _served_by(ui, target, remote)
            return found, await remote.health()
        except MT5ConnectionError as error:
            return target, unreachable(error, "service")
