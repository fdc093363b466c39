"""``mt5gate serve``: the HTTP service, on the simulator unless configured otherwise.

::

    mt5gate serve [--host 127.0.0.1] [--port 8000] [--config FILE]
    mt5gate serve --new-key NAME [--scopes read,trade]    # print a key and its config entry
    mt5gate serve --bot                                   # and the Telegram bot (mt5gate bot)

This is the composition root: the only place the environment is read (``MT5GATE_*``, the
accounts' password and token variables). With no configuration it serves one SIMULATED demo
account and says so loudly. With no API key configured it makes one for this data directory,
stores it in ``<data_dir>/api-key`` (mode 600) and prints that path, never the key.

The port is bound first, before any journal, key or terminal is touched: a second ``serve`` on
a busy port says so at once (exit 2, with a ``--port`` hint) and leaves everything as it was.
uvicorn then serves on that very socket, so no other process can take the port in between.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mt5gate.files import create_private, private_dir, tighten_file
from mt5gate.orders.journal import JournalError
from mt5gate.service.auth import hash_api_key, key_config_snippet, new_api_key
from mt5gate.service.bot_cli import announce_bot, build_bot
from mt5gate.service.config import ApiKeySettings, ConfigError, ServiceSettings, load_settings
from mt5gate.service.simulated import markets_now

if TYPE_CHECKING:
    from mt5gate.service.gateway import Gateway, TerminalFor

__all__ = ["build_parser", "listen", "local_key", "main", "run", "settings_from"]

log = logging.getLogger("mt5gate.service")


def build_parser() -> argparse.ArgumentParser:
    """The ``mt5gate serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mt5gate serve",
        description="Serve MT5 accounts over HTTP (REST, health, metrics). Without --config: "
        "one SIMULATED demo account.",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help="TOML file of accounts and API keys (default: $MT5GATE_CONFIG, else the simulator)",
    )  # fmt: skip
    parser.add_argument(
        "--new-key", metavar="NAME",
        help="print a new API key and its [[api_keys]] entry, then exit",
    )  # fmt: skip
    parser.add_argument(
        "--scopes",
        default="read,trade",
        metavar="LIST",
        help="scopes of --new-key: read, trade, admin",
    )
    parser.add_argument(
        "--bot", action="store_true",
        help="also run the Telegram bot on the same sessions (token in $MT5GATE_BOT_TOKEN)",
    )  # fmt: skip
    return parser


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> ServiceSettings:
    """The settings: the file (or defaults), the environment, then the command line."""
    settings = load_settings(args.config, env)
    update: dict[str, object] = {}
    if args.host is not None:
        update["host"] = args.host
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise ConfigError(f"--port must be 1..65535, got {args.port}")
        update["port"] = args.port
    return settings.model_copy(update=update) if update else settings


def local_key(
    settings: ServiceSettings, *, wait_s: float = 5.0
) -> tuple[ServiceSettings, Path | None]:
    """With no API key configured: one key with every scope, kept in ``<data_dir>/api-key``
    (made once, created with mode 600; reused on later starts, and set to 600 with a warning
    if it was found readable by others). Returns the settings that accept it and the file, or
    the settings unchanged and ``None`` when keys are configured. Replicas sharing a data
    directory share the key: the first makes it, the others read it (``ValueError`` when the
    file stays empty for ``wait_s``)."""
    if settings.api_keys:
        return settings, None
    path = settings.local_key_file
    private_dir(settings.data_dir)  # a looser one is reported once, by Gateway.build
    if path.exists():
        tightened = tighten_file(path)
        if tightened is not None:
            log.warning("%s: the API key in it may have been read; delete the file and restart "
                        "to make a new one", tightened)  # fmt: skip
        key = _written_key(path, wait_s)
    else:
        key = new_api_key()
        try:
            create_private(path, (key + "\n").encode())
        except FileExistsError:  # another replica on this data directory made it first
            key = _written_key(path, wait_s)
    entry = ApiKeySettings(name="local", hash=hash_api_key(key),
                           scopes=frozenset({"read", "trade", "admin"}))  # fmt: skip
    return settings.model_copy(update={"api_keys": (entry,)}), path


def _written_key(path: Path, wait_s: float) -> str:
    """The key in ``path``, which another process may have created and not written yet."""
    deadline = time.monotonic() + wait_s
    while not (key := path.read_text(encoding="utf-8").strip()):
        if time.monotonic() > deadline:
            raise ValueError(f"the API key file {path} is empty; delete it and start again "
                             "to make a new key")  # fmt: skip
        time.sleep(0.02)
    return key


def _announce(gateway: Gateway, key_file: Path | None, bot: bool) -> None:
    settings = gateway.settings
    lines = [f"mt5gate serve: http://{settings.host}:{settings.port}  (OpenAPI at /docs)"]
    for account in settings.accounts:
        lines.append(f"  account {account.name!r}: terminal {account.terminal}")
        markets = markets_now(gateway.account(account.name).session.terminal)
        if markets is not None:  # a simulator: what can be traded now, by its own schedule
            lines.append(f"    {account.name}: {markets}")
    if any(a.simulated for a in settings.accounts):
        lines.append("  *** SIMULATED terminal (mt5gate.sim): prices and orders are NOT real ***")
    if key_file is not None:
        url = f"http://{settings.host}:{settings.port}/v1/accounts"
        lines.append(f"  API key (all scopes) in {key_file}")
        lines.append(f'  try: curl -H "X-API-Key: $(cat {key_file})" {url}')
    if bot:
        lines += announce_bot(settings)
    print("\n".join(lines), file=sys.stderr, flush=True)


#: uvicorn's default listen backlog.
_BACKLOG = 2048


class PortError(OSError):
    """The service's address cannot be listened on; the message says why and what to do."""


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` as uvicorn binds one (a TCP socket, so asyncio sets
    ``TCP_NODELAY`` on its connections: without it every answer waits for a delayed ACK), or
    :class:`PortError` saying why not: in use (another ``mt5gate serve``?), not allowed, not
    an address of this machine."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise PortError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose "
                        "another --host") from None  # fmt: skip
    try:
        if os.name != "nt":  # as asyncio: a restart may bind while old connections linger
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortError(f"port {port} on {host} is already in use (another mt5gate serve?); "
                            "start this one on another port with --port, or stop the other "
                            "one") from None  # fmt: skip
        raise PortError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose "
                        "another --host or --port") from None  # fmt: skip
    return sock


def _new_key(name: str, scopes: str) -> int:
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    key, snippet = key_config_snippet(name, wanted)
    print(f"API key (shown once, keep it secret): {key}\n\nAdd to the service's TOML:\n{snippet}")
    return 0


def main(argv: Sequence[str] | None = None, *, terminal_for: TerminalFor | None = None) -> int:
    """Run ``mt5gate serve``; returns the exit status (2 on a configuration problem).
    ``terminal_for`` may put accounts on terminals of the caller's choosing
    (:meth:`Gateway.build`; the service benchmark's simulator of a few symbols)."""
    return run(build_parser().parse_args(argv), terminal_for=terminal_for)


def run(args: argparse.Namespace, *, terminal_for: TerminalFor | None = None) -> int:
    """``mt5gate serve`` on parsed arguments (from :func:`build_parser`'s options, through
    argparse here or the ``mt5gate`` command's typer): bind the port, then serve."""
    try:
        if args.new_key is not None:
            return _new_key(args.new_key, args.scopes)
        settings = settings_from(args, os.environ)
        sock = listen(settings.host, settings.port)  # first: nothing is opened on a busy port
    except (ConfigError, ValueError, OSError) as error:
        print(f"mt5gate serve: {error}", file=sys.stderr)
        return 2
    with sock:
        return _serve(args, settings, sock, terminal_for)


def _serve(
    args: argparse.Namespace,
    settings: ServiceSettings,
    sock: socket.socket,
    terminal_for: TerminalFor | None,
) -> int:
    """Everything after the port is ours: the key, the gateway, then uvicorn on ``sock``."""
    try:
        settings, key_file = local_key(settings)
    except (ValueError, OSError) as error:
        print(f"mt5gate serve: {error}", file=sys.stderr)
        return 2
    import uvicorn

    from mt5gate.service.app import create_app
    from mt5gate.service.gateway import Gateway
    from mt5gate.service.heap import settle_heap
    from mt5gate.service.logs import log_config

    try:
        gateway = Gateway.build(settings, os.environ, terminal_for=terminal_for)
        if args.bot:
            gateway.companions.append(build_bot(gateway, settings.bot_token(os.environ)))
    except (ConfigError, ValueError, OSError, JournalError) as error:
        print(f"mt5gate serve: {error}", file=sys.stderr)
        return 2
    _announce(gateway, key_file, args.bot)
    config = uvicorn.Config(
        create_app(gateway, on_started=settle_heap), host=settings.host, port=settings.port,
        log_config=log_config(), log_level=settings.log_level.lower(),
        access_log=settings.access_log, ws_per_message_deflate=settings.stream_compression,
        timeout_graceful_shutdown=20, server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
