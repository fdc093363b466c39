"""An account's trading halt: switched on and off by a key with the ``admin`` scope."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel

from mt5gate.service.deps import gateway_of
from mt5gate.service.inputs import HaltBody
from mt5gate.service.routes import BASE, AccountName, Routes

__all__ = ["Halted", "add"]


class Halted(BaseModel):
    """The halt switch of an account."""

    halted: bool
    reason: str


def add(admin: Routes) -> None:
    """The halt switch's routes (``admin`` scope)."""

    @admin.post(BASE + "/halt", tags=["admin"])
    async def halt(request: Request, account: AccountName, body: HaltBody) -> Halted:
        """Switch the trading halt on: new orders are refused, closing stays possible."""
        session = gateway_of(request).account(account).session
        session.halt_trading(body.reason)
        return Halted(halted=True, reason=session.risk.halt_reason)

    @admin.post(BASE + "/resume", tags=["admin"])
    async def resume(request: Request, account: AccountName) -> Halted:
        """Switch the trading halt off."""
        gateway_of(request).account(account).session.resume_trading()
        return Halted(halted=False, reason="")
