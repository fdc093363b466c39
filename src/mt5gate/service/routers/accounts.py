"""The accounts: ``GET /v1/accounts`` (any key) and, per account, its info and its terminal's."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel

from mt5gate.models import Account, TerminalStatus
from mt5gate.service.deps import gateway_of
from mt5gate.service.gateway import SIMULATED_NOTICE, Gateway
from mt5gate.service.routes import BASE, AccountName, Routes

__all__ = ["AccountEntry", "AccountList", "add"]


class AccountEntry(BaseModel):
    """A configured account."""

    name: str
    terminal: str
    simulated: bool
    #: this service runs it and it is ready (in a fleet: false where another replica runs it)
    ready: bool
    #: in a fleet, the replica that owns the account now (``null``: none, or not a fleet)
    owner: str | None = None
    #: in a fleet, the owner's fencing epoch
    epoch: int | None = None


class AccountList(BaseModel):
    """The service's accounts."""

    accounts: list[AccountEntry]
    notes: list[str] = []


def add(keyed: Routes, read: Routes) -> None:
    """The account list (``keyed``: a key of any scope) and the account routes (``read``)."""

    @keyed.get("/v1/accounts", tags=["accounts"])
    async def accounts(request: Request) -> AccountList:
        """The configured accounts and whether each is ready."""
        gateway = gateway_of(request)
        entries = [AccountEntry(name=a.name, terminal=a.settings.terminal,
                                simulated=a.simulated, ready=a.ready,
                                **_owner_of(gateway, a.settings.login))
                   for a in gateway.accounts.values()]  # fmt: skip
        return AccountList(accounts=entries, notes=[SIMULATED_NOTICE] if gateway.simulated else [])

    @read.get(BASE, tags=["accounts"])
    async def account_info(request: Request, account: AccountName) -> Account:
        """The account's login, balance, equity, margin."""
        return await gateway_of(request).account(account).session.get_account_info()

    @read.get(BASE + "/terminal", tags=["accounts"])
    async def terminal_info(request: Request, account: AccountName) -> TerminalStatus:
        """The terminal's link, switches and ping."""
        return await gateway_of(request).account(account).session.get_terminal_info()


def _owner_of(gateway: Gateway, login: int | None) -> dict[str, Any]:
    """The owning replica and epoch of an account, as this replica's last heartbeat saw it."""
    view = gateway.conductor.view if gateway.conductor is not None else None
    lease = view.owner(login) if view is not None and login is not None else None
    if lease is None:
        return {}
    return {"owner": lease.info.get("member"), "epoch": lease.epoch}
