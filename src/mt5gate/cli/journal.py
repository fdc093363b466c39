"""``mt5gate journal``: the journal's front end (:mod:`mt5gate.orders.cli`) on the account's
journal.

:func:`build_parser` is the journal CLI's own option table with the account options
(``--config`` / ``-c``, ``--account`` / ``-a``) on each sub-command;
:mod:`~mt5gate.cli.frontends` makes the typer sub-app ``mt5gate journal list|show|blocks|
acknowledge`` from it, as for every front end. :func:`run` gives the command its journal:
with none of ``--journal``, ``--store``, ``$MT5GATE_JOURNAL`` and ``$MT5GATE_STORE_URL``, or
with ``--config`` / ``--account`` and no ``--journal`` / ``--store``, it reads the journal of
the account they name (the demo account's without them): the same file ``mt5gate order`` and
``mt5gate serve`` write.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from mt5gate.orders import cli as journal_cli

__all__ = ["build_parser", "resolve_journal", "run"]


def build_parser() -> argparse.ArgumentParser:
    """:func:`mt5gate.orders.cli.build_parser`, each sub-command with the account options."""
    parser = journal_cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _account_options(sub)
    return parser


def _account_options(parser: argparse.ArgumentParser) -> None:
    account = parser.add_argument_group("Account")
    account.add_argument("--config", "-c", type=Path, metavar="FILE",
                         help="the service's TOML file of accounts (default $MT5GATE_CONFIG): "
                              "its account's journal, unless --journal or --store")  # fmt: skip
    account.add_argument(
        "--account",
        "-a",
        metavar="NAME",
        help="the account's name in the configuration (default: the first)",
    )


def resolve_journal(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> argparse.Namespace:
    """``args`` with ``journal`` set to the journal of the account ``--config`` / ``--account``
    name, unless a journal is named already (``--journal``, ``--store``, or without
    ``--config`` / ``--account`` the environment's). Raises ``ConfigError`` when the
    configuration cannot be read."""
    env = os.environ if env is None else env
    if args.journal is not None or args.store is not None:
        return args
    given = args.config is not None or args.account is not None
    if not given and (env.get(journal_cli.ENV_JOURNAL) or env.get(journal_cli.ENV_STORE)):
        return args
    from mt5gate.cli.target import AccountChoice, resolve_target

    choice = AccountChoice(config=args.config, account=args.account)
    return argparse.Namespace(**{**vars(args), "journal": resolve_target(choice, env).journal})


def run(args: argparse.Namespace) -> int:
    """``mt5gate journal`` on parsed arguments: a configuration that cannot be read is
    reported as every command reports it (exit 2), then the journal CLI runs."""
    from mt5gate.cli.failures import Exit, guarded
    from mt5gate.cli.options import Options
    from mt5gate.cli.ui import Ui

    ui = Ui(Options())
    try:
        resolved = guarded(ui.err, lambda: resolve_journal(args), debug=False)
    finally:
        ui.close()
    if isinstance(resolved, Exit):
        return int(resolved)
    return journal_cli.run(resolved)
