"""``mt5gate fleet``: see and steer the replicas that share a configuration's accounts.

::

    mt5gate fleet status [--config FILE] [--json]   accounts, owners, epochs, lease ages,
                                                    replicas (live, draining)
    mt5gate fleet drain REPLICA                     hand its accounts over, take no new ones
    mt5gate fleet undrain REPLICA
    mt5gate fleet move ACCOUNT REPLICA              pin an account to a replica
    mt5gate fleet unpin ACCOUNT

It talks to the fleet's store (``[store]`` of the configuration), not to a replica: it works
while replicas are down. The replicas act on a change at their next heartbeat (``heartbeat_s``).
The store's URL is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mt5gate.fleet.placement import assign
from mt5gate.orders.store import JournalError
from mt5gate.service.config import ConfigError, ServiceSettings, load_settings
from mt5gate.service.stores import SharedStore, open_store

__all__ = ["build_parser", "fleet_status", "main", "run"]


def build_parser() -> argparse.ArgumentParser:
    """The ``mt5gate fleet`` argument parser."""
    parser = argparse.ArgumentParser(prog="mt5gate fleet",
                                     description="See and steer a fleet of mt5gate serve "
                                     "replicas (through their shared [store]).")  # fmt: skip
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the fleet's TOML file (default: $MT5GATE_CONFIG)")  # fmt: skip
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="accounts, owners, epochs, lease ages, replicas")
    status.add_argument("--json", action="store_true", help="one JSON document")
    for name, what in (("drain", "hand its accounts over and take no new ones"),
                       ("undrain", "take accounts again")):  # fmt: skip
        actions.add_parser(name, help=what).add_argument("replica")
    move = actions.add_parser("move", help="pin an account to a replica")
    move.add_argument("account")
    move.add_argument("replica")
    actions.add_parser("unpin", help="let placement choose again").add_argument("account")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run ``mt5gate fleet``; 0 done, 1 refused (unknown replica), 2 bad configuration."""
    return run(build_parser().parse_args(argv), env)


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """``mt5gate fleet`` on parsed arguments (:func:`build_parser`'s options and ``action``)."""
    env = os.environ if env is None else env
    try:
        settings = load_settings(args.config, env)
        store = open_store(settings, env)
        if store is None:
            raise ConfigError("mt5gate fleet needs a configuration with a [store] (the "
                              "fleet's database): give --config or $MT5GATE_CONFIG")  # fmt: skip
    except ConfigError as error:
        print(f"mt5gate fleet: {error}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_act(args, settings, store))
    except (JournalError, ConfigError) as error:
        print(f"mt5gate fleet: {error}", file=sys.stderr)
        return 2


async def _act(args: argparse.Namespace, settings: ServiceSettings, store: SharedStore) -> int:
    try:
        if args.action == "status":
            status = await fleet_status(settings, store)
            print(json.dumps(status, indent=2) if args.json else _table(status))
            return 0
        return await _steer(args, settings, store)
    finally:
        await store.close()


async def _steer(args: argparse.Namespace, settings: ServiceSettings, store: SharedStore) -> int:
    if args.action in ("drain", "undrain"):
        if not await store.set_draining(args.replica, args.action == "drain"):
            print(f"mt5gate fleet: no replica named {args.replica!r} has ever run",
                  file=sys.stderr)  # fmt: skip
            return 1
        print(f"replica {args.replica}: {args.action}ed; the fleet acts at its next heartbeat")
        return 0
    login = _login(settings, args.account)
    await store.place(login, args.replica if args.action == "move" else None)
    where = f"pinned to {args.replica}" if args.action == "move" else "placed by the fleet"
    print(f"account {args.account}: {where} (effective at the next heartbeat)")
    return 0


def _login(settings: ServiceSettings, name: str) -> int:
    for account in settings.accounts:
        if account.name == name and account.login is not None:
            return account.login
    names = ", ".join(a.name for a in settings.accounts)
    raise ConfigError(f"no account named {name!r} in the configuration ({names})")


async def fleet_status(settings: ServiceSettings, store: SharedStore) -> dict[str, Any]:
    """The fleet as its store has it: replicas and accounts, with where each should be."""
    now = await store.now_ms()
    members = await store.members()
    live = [m for m in members if m.live(now)]
    leases = {lease.login: lease for lease in await store.leases()}
    pins = await store.placements()
    logins = [a.login for a in settings.accounts if a.login is not None]
    desired = assign(logins, [m.id for m in live], draining=[m.id for m in live if m.draining],
                     pins=pins)  # fmt: skip
    accounts = []
    for account in settings.accounts:
        lease = leases.get(account.login or 0)
        held = lease is not None and lease.live(now)
        accounts.append({
            "account": account.name, "login": account.login,
            "owner": lease.info.get("member", lease.owner) if held and lease else None,
            "epoch": lease.epoch if lease else None,
            "lease_age_s": round((now - lease.acquired_utc_ms) / 1000, 1) if lease else None,
            "lease_expires_in_s": round((lease.expires_utc_ms - now) / 1000, 1) if held and lease
            else None,
            "placed_on": desired.get(account.login or 0), "pinned_to": pins.get(account.login or 0),
        })  # fmt: skip
    replicas = [{"replica": m.id, "live": m.live(now), "draining": m.draining,
                 "url": m.info.get("url"),
                 "heartbeat_expires_in_s": round((m.expires_utc_ms - now) / 1000, 1),
                 "accounts": sum(1 for a in accounts if a["owner"] == m.id)}
                for m in members]  # fmt: skip
    return {"replicas": replicas, "accounts": accounts}


def _table(status: dict[str, Any]) -> str:
    lines = ["replicas:"]
    for r in status["replicas"]:
        state = "live" if r["live"] else "gone"
        state += ", draining" if r["draining"] else ""
        lines.append(f"  {r['replica']:<24} {state:<16} {r['accounts']:>4} accounts  {r['url']}")
    lines.append("accounts:")
    lines.append(f"  {'account':<20} {'login':>12} {'owner':<24} {'epoch':>16} {'age s':>8} "
                 f"{'placed on':<24}")  # fmt: skip
    for a in status["accounts"]:
        lines.append(f"  {a['account']:<20} {a['login']!s:>12} {a['owner'] or '-':<24} "
                     f"{a['epoch'] or '-'!s:>16} {a['lease_age_s'] or '-'!s:>8} "
                     f"{a['placed_on'] or '-':<24}")  # fmt: skip
    return "\n".join(lines)
