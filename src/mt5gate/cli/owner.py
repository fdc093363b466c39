"""Who owns the account a command targets, and how the command reaches the owner (issue 15, B).

One owner per account (DESIGN §8): a command never opens a session of its own on an account
that another live process holds, since two processes driving one account could each reconcile
and resend the other's orders. The account's lease, in its journal, says who holds it:

- ``mt5gate serve`` (``kind = "serve"`` and its ``url``): the command sends its calls to the
  service's HTTP API (:class:`~mt5gate.cli.remote.RemoteAccount`) with the service's API key,
  found in the same data directory (``<data_dir>/api-key``, which the service writes when it has
  no keys configured), else in ``$MT5GATE_API_KEY``. The key never comes from the command line,
  and is never printed.
- anything else (another ``mt5gate`` command, ``mt5gate bot``, a library session): it takes no
  requests, so the command says who it is and how to proceed, and stops (exit 3). Waiting
  silently for a lease that may be renewed for hours would look like a hang.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from pydantic import SecretStr

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.target import Target
from mt5gate.orders.store import Lease, describe_owner
from mt5gate.service.owners import find_owner

__all__ = [
    "ENV_API_KEY", "SET_THE_KEY", "ApiKey", "OwningService", "api_key", "owning_service",
]  # fmt: skip

#: The API key of a service that has keys configured (environment only, never an option).
ENV_API_KEY: Final = "MT5GATE_API_KEY"
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class OwningService:
    """The running ``mt5gate serve`` that owns the account: where it listens, and its lease."""

    url: str
    lease: Lease


#: What to do when the service refuses a key from ``$MT5GATE_API_KEY``.
SET_THE_KEY: Final = (
    f"Set ${ENV_API_KEY} to a key of that service with the scope the command needs (read; "
    "trade for orders)."
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """The key a command presents to the service, where it was found (the file or the
    variable, named in messages; the value never is), and what to do if it is refused."""

    value: SecretStr
    source: str = ""
    if_refused: str = SET_THE_KEY


async def owning_service(target: Target, env: Mapping[str, str]) -> OwningService | None:
    """The service to send ``target``'s calls to, or ``None`` when no live process owns the
    account (the command then opens its own session). Any other owner is a ``CommandError``
    (exit 3) that names it and says to try again when it is done."""
    lease = await find_owner(target.settings, target.account, env)
    if lease is None:
        return None
    url = lease.info.get("url")
    if lease.info.get("kind") == "serve" and isinstance(url, str) and _reachable(lease, url):
        return OwningService(url.rstrip("/"), lease)
    raise CommandError(
        f"account {target.account.name!r} (login {lease.login}) is in use by "
        f"{describe_owner(lease)}, which takes no requests from other processes",
        hint=f"Try again when it is done: it frees the account when it ends, or at most "
        f"{target.account.lease.ttl_s:g} s after it stops. To share an account, run it through "
        "mt5gate serve (mt5gate serve --bot for the bot): commands then go through the service.",
        code=Exit.MT5,
    )


def _reachable(lease: Lease, url: str) -> bool:
    """Whether this process can reach ``url``: a loopback address names the service's own
    host, so it serves only processes there (a journal on a shared disk may be leased from
    another machine)."""
    host = urlsplit(url).hostname or ""
    elsewhere = lease.info.get("host") not in (None, socket.gethostname())
    return bool(host) and not (elsewhere and host in _LOOPBACK)


def api_key(target: Target, service: OwningService, env: Mapping[str, str]) -> ApiKey:
    """The service's key: its local key file in the data directory, else ``$MT5GATE_API_KEY``;
    a ``CommandError`` (exit 2) saying how to give one when there is neither."""
    path = target.settings.local_key_file
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        found = ""
    except OSError as error:
        raise CommandError(f"cannot read the API key of mt5gate serve in {path}: "
                           f"{error.strerror or error}",
                           hint="Check the file's owner and permissions (it should be yours, "
                           "mode 600).") from None  # fmt: skip
    if found:
        stale = (f"mt5gate serve writes {path} only while it has no keys configured, so this "
                 f"one may be left from an earlier run: delete it, then {SET_THE_KEY[0].lower()}"
                 f"{SET_THE_KEY[1:]}")  # fmt: skip
        return ApiKey(SecretStr(found), str(path), stale)
    given = env.get(ENV_API_KEY, "").strip()
    if given:
        return ApiKey(SecretStr(given), f"${ENV_API_KEY}")
    raise CommandError(
        f"account {target.account.name!r} is owned by mt5gate serve at {service.url}, and "
        f"there is no API key to reach it: no {path} and no ${ENV_API_KEY}",
        hint=f"Set ${ENV_API_KEY} to a key of that service (scope read; trade for orders). "
        f"mt5gate serve writes {path} itself only when it has no keys configured.",
    )
