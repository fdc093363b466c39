"""``mt5gate journal``: the journal CLI (:mod:`mt5gate.orders.cli`) on the account's journal.

``mt5gate journal list`` with none of ``--journal``, ``--store``, ``$MT5GATE_JOURNAL`` and
``$MT5GATE_STORE_URL`` reads the journal of the account that ``--config`` / ``--account`` name
(the demo account's without them): the same file ``mt5gate order`` and ``mt5gate serve``
write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from mt5gate.cli.target import AccountChoice, resolve_target
from mt5gate.orders.cli import ENV_JOURNAL, ENV_STORE

__all__ = ["journal_args"]

_OURS = ("--config", "--account")
_ACTIONS = frozenset({"list", "show", "blocks", "acknowledge"})


def journal_args(args: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """``args`` for :func:`mt5gate.orders.cli.main`: ``--config``/``--account`` replaced by
    ``--journal <that account's journal>`` unless a journal is already named. Raises
    ``ConfigError`` when the configuration cannot be read."""
    env = os.environ if env is None else env
    rest, given = _split(args)
    if "-h" in rest or "--help" in rest:
        return rest
    named = any(a.split("=")[0] in ("--journal", "--store") for a in rest)
    if named or ((env.get(ENV_JOURNAL) or env.get(ENV_STORE)) and not given):
        return rest
    if not _ACTIONS & set(rest):
        return rest  # no list/show: the journal CLI says what is missing
    config = given.get("--config")
    choice = AccountChoice(config=Path(config) if config else None, account=given.get("--account"))
    return [*rest, "--journal", str(resolve_target(choice, env).journal)]


def _split(args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The arguments without ``--config X`` / ``--account X`` (also ``=`` forms, ``-c``/``-a``),
    and those values."""
    rest: list[str] = []
    given: dict[str, str] = {}
    short = {"-c": "--config", "-a": "--account"}
    items = iter(args)
    for arg in items:
        name, _, value = arg.partition("=")
        name = short.get(name, name)
        if name in _OURS:
            given[name] = value if value else next(items, "")
        else:
            rest.append(arg)
    return rest, given
