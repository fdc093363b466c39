"""Which account a command talks to, and the session to it.

Every command that reads or trades takes the same choice, in this order:

- ``--config FILE`` (else ``$MT5GATE_CONFIG``): the service's TOML of accounts, and
  ``--account NAME`` picks one (default: the first). The command then uses that account's
  terminal, secrets, journal and risk limits, exactly as ``mt5gate serve`` would, so
  ``mt5gate journal`` and the service see the same orders.
- ``--terminal official|bridge://host:port|rpyc://host:port`` without a file: an ad-hoc account
  on that terminal (``--login`` / ``--server``, the password from ``$MT5GATE_PASSWORD``, a
  bridge token from ``--token-file``). Without a login the session attaches to the terminal as
  it is logged in.
- nothing: the simulator's demo account (login 5001), announced on stderr on every run.

A simulated account keeps its state in ``<data_dir>/sim-<account>.json``, so the position that
``mt5gate order buy`` opened is there for ``mt5gate positions`` and ``mt5gate close``. Secrets
never come from the command line (a process list shows arguments to every user).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from pydantic import ValidationError

from mt5gate.cli.options import AccountChoice
from mt5gate.files import private_dir, tighten_file
from mt5gate.service.config import (
    AccountSettings,
    ConfigError,
    ServiceSettings,
    load_settings,
)
from mt5gate.service.gateway import session_for
from mt5gate.service.simulated import simulator
from mt5gate.service.stores import open_store
from mt5gate.session.manager import MT5SessionManager
from mt5gate.terminal.base import Terminal

__all__ = [
    "CLI_OWNER",
    "ENV_PASSWORD",
    "AccountChoice",
    "Target",
    "build_session",
    "close_session",
    "resolve_target",
    "simulator_for",
]

log = logging.getLogger("mt5gate.cli")

#: The password of an ad-hoc ``--terminal`` account (never a command-line option).
ENV_PASSWORD: Final = "MT5GATE_PASSWORD"
#: What a command's lease tells other processes: ``mt5gate cli (pid 4242, host)``, which
#: takes no requests from them (they say so and stop, see :mod:`mt5gate.cli.owner`).
CLI_OWNER: Final[Mapping[str, str]] = MappingProxyType({"kind": "cli"})
_ADHOC_NAME: Final = "cli"


@dataclass(frozen=True, slots=True)
class Target:
    """The account a command runs against, with the settings it came from."""

    settings: ServiceSettings
    account: AccountSettings
    #: the account's bridge said, once connected, that it serves mt5gate's simulator
    bridged_simulator: bool = False

    @property
    def simulated(self) -> bool:
        """Whether the account runs on mt5gate's simulator (here, or behind its bridge)."""
        return self.account.simulated or self.bridged_simulator

    @property
    def state_file(self) -> Path:
        """Where a simulated account's terminal keeps its state between commands."""
        return self.settings.state_file(self.account)

    @property
    def journal(self) -> Path:
        """The account's order journal file."""
        return self.settings.journal_path(self.account)

    def describe(self) -> str:
        """``demo (login 5001 on MetaQuotes-Demo, terminal sim)`` for messages."""
        login = f"login {self.account.login}" if self.account.login else "attached login"
        server = f" on {self.account.server}" if self.account.server else ""
        return f"{self.account.name} ({login}{server}, terminal {self.account.terminal})"


def resolve_target(choice: AccountChoice, env: Mapping[str, str]) -> Target:
    """The account ``choice`` names; ``ConfigError`` (one line) when it cannot be used."""
    adhoc = choice.terminal is not None and choice.config is None and not env.get("MT5GATE_CONFIG")
    if adhoc:
        return _adhoc(choice, env)
    if choice.login is not None or choice.server is not None or choice.token_file is not None:
        raise ConfigError(
            "--login, --server and --token-file describe an ad-hoc account: use them with "
            "--terminal and without --config (a configured account has its own)"
        )
    settings = load_settings(choice.config, env)
    account = _pick(settings, choice.account)
    if choice.terminal is not None:
        account = _with_terminal(account, choice.terminal)
    return Target(settings, account)


def _pick(settings: ServiceSettings, name: str | None) -> AccountSettings:
    if name is None:
        return settings.default_account
    for account in settings.accounts:
        if account.name == name:
            return account
    names = ", ".join(a.name for a in settings.accounts)
    raise ConfigError(f"--account: no account named {name!r}; the configuration has: {names}")


def _with_terminal(account: AccountSettings, terminal: str) -> AccountSettings:
    data = account.model_dump()
    data["terminal"] = terminal
    # Settings that belong to the configured terminal's kind mean nothing to another kind.
    if terminal != "sim":
        data["sim_start"] = None  # the simulated clock's start
    if terminal != "official":
        data.update(terminal_path=None, isolate="auto")  # the installation, the child process
    if not terminal.startswith("bridge://"):
        data.update(tls=False, tls_ca_file=None, tls_server_name=None,  # a bridge's
                    token_env=None, token_file=None)  # fmt: skip
    return _validated(data, f"account {account.name!r}")


def _adhoc(choice: AccountChoice, env: Mapping[str, str]) -> Target:
    data: dict[str, object] = {
        "name": choice.account or _ADHOC_NAME,
        "terminal": choice.terminal,
        "login": choice.login,
        "server": choice.server,
        "password_env": ENV_PASSWORD if env.get(ENV_PASSWORD) else None,
        "token_file": choice.token_file,
    }
    account = _validated(data, "the command line")
    settings = load_settings(None, env)  # data_dir and the other MT5GATE_* overrides
    return Target(settings.model_copy(update={"accounts": (account,)}), account)


def _validated(data: Mapping[str, object], where: str) -> AccountSettings:
    try:
        return AccountSettings.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        option = {"terminal": "--terminal", "login": "--login", "server": "--server",
                  "token_file": "--token-file", "name": "--account"}.get(field, field)  # fmt: skip
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where}: {option} {message}".replace(":  ", ": ")) from None


def build_session(target: Target, env: Mapping[str, str]) -> MT5SessionManager:
    """The (not yet connected) session to ``target``; a simulated account gets a real-time
    simulator that keeps its state in the data directory (made with mode 700; one other users
    can enter is reported, as is a state file they could read, which is set to 600). Its lease
    says it is an ``mt5gate`` command (:data:`CLI_OWNER`)."""
    for warning in (private_dir(target.settings.data_dir), tighten_file(target.state_file)):
        if warning is not None:
            log.warning(warning)
    store = open_store(target.settings, env)  # a fleet's: the command leases and journals there
    return session_for(target.account, target.settings, env, terminal=simulator_for(target),
                       owner=CLI_OWNER, store=store, own_store=True)  # fmt: skip


async def close_session(session: MT5SessionManager) -> None:
    """Close the session and its journal."""
    try:
        await session.close()
    finally:
        session.close_journal()


def simulator_for(target: Target) -> Terminal | None:
    """For a sim account, the simulator on the account's clock (``sim_start``) with its state
    file; ``None`` (the account's own terminal) otherwise."""
    if not target.account.simulated:
        return None
    return simulator(target.account, target.state_file)
