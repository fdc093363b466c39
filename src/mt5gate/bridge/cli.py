"""``mt5gate bridge``: serve one terminal (the official package, or the simulator) over TCP.

::

    mt5gate bridge --terminal official --host 127.0.0.1 --port 18812 --token-file token.txt \\
        [--tls-cert cert.pem --tls-key key.pem] [--state-file sim.json] [--faults chaos.toml]
        [--sim-start TIME] [--max-connections 16] [--max-handshakes 8] [--handshake-timeout 5]

Also runnable as ``python -m mt5gate.bridge.cli``. Once listening it prints one line,
``mt5gate bridge listening on HOST:PORT ...``, on stdout (port 0 picks a free port, which that
line names), then serves until SIGINT or SIGTERM. ``--faults`` (simulator only) loads a fault
plan file (:mod:`mt5gate.sim.plan`) for chaos tests; a file that does not validate is a one-line
error and exit 2, before anything listens. The simulator (``--terminal sim``) says on stderr
which of its markets trade now; ``--sim-start 2026-01-06T10:00`` starts its clock at that
server time (a Tuesday morning: forex open), from which it runs in real time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import ssl
import stat
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from mt5gate.bridge.server import BridgeServer
from mt5gate.sim.plan import ChaosPlan, PlanError, load_plan
from mt5gate.terminal.base import Terminal
from mt5gate.terminal.wire import DEFAULT_PORT

__all__ = [
    "CliError",
    "build_parser",
    "build_terminal",
    "main",
    "read_plan",
    "read_token",
    "run",
    "tls_context",
]


class CliError(Exception):
    """A problem with the command line or its files, reported as one line on stderr."""


def build_parser() -> argparse.ArgumentParser:
    """The ``mt5gate bridge`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mt5gate bridge", description="Serve an MT5 terminal to mt5gate clients over TCP."
    )
    parser.add_argument("--terminal", choices=("official", "sim"), required=True,
                        help="the MetaTrader5 package (Windows) or the simulator")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: loopback only)")  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)")  # fmt: skip
    parser.add_argument("--token-file", type=Path, required=True, metavar="FILE",
                        help="file holding the shared token clients must present")  # fmt: skip
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate: serve TLS")
    parser.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert"
    )
    parser.add_argument(
        "--state-file", type=Path, metavar="FILE", help="simulator only: persist its state here"
    )
    parser.add_argument("--faults", type=Path, metavar="FILE",
                        help="simulator only: a fault plan (TOML) for chaos tests")  # fmt: skip
    parser.add_argument("--sim-start", type=_server_time, metavar="TIME",
                        help="simulator only: start its clock at this server time (ISO 8601, "
                        "e.g. 2026-01-06T10:00, a Tuesday morning) and run in real time from "
                        "there (default: now)")  # fmt: skip
    parser.add_argument("--max-connections", type=_positive(int), default=16, metavar="N",
                        help="authenticated clients served at once (default 16)")  # fmt: skip
    parser.add_argument("--max-handshakes", type=_positive(int), default=8, metavar="N",
                        help="connections that may wait for their hello at once; a new one "
                        "closes the oldest (default 8)")  # fmt: skip
    parser.add_argument("--handshake-timeout", type=_positive(float), default=5.0,
                        metavar="SECONDS", help="a connection must send its hello (and finish "
                        "TLS) within this (default 5)")  # fmt: skip
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` above zero."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def _server_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-01-06T10:00"
        ) from None


def read_token(path: Path) -> str:
    """The token in ``path``, stripped; refuses a missing, empty or world-readable file."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise CliError(
            f"cannot read the token file {path}: {error.strerror}; make one with "
            f"(umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path})"
        ) from None
    if not token:
        raise CliError(f"the token file {path} is empty; put a long random secret in it")
    if os.name == "posix" and path.stat().st_mode & stat.S_IROTH:
        raise CliError(f"the token file {path} is readable by every user; chmod 600 it")
    return token


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server TLS context from ``--tls-cert``/``--tls-key`` (both or neither)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise CliError("TLS needs both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise CliError(f"cannot load the TLS certificate or key: {error}") from None
    return context


def read_plan(path: Path | None) -> ChaosPlan | None:
    """The fault plan of ``--faults``, validated; CliError naming the entry and key if not."""
    if path is None:
        return None
    try:
        return load_plan(path)
    except PlanError as error:
        raise CliError(f"--faults {error}") from None


def build_terminal(
    kind: str,
    state_file: Path | None,
    plan: ChaosPlan | None = None,
    sim_start: datetime | None = None,
) -> Terminal:
    """The terminal to serve: the official package (imported only here) or a simulator (its
    clock starting at ``sim_start``, server time, when given), with the faults and history
    delay of ``plan`` when one is given."""
    if kind == "sim":
        return _simulator(state_file, plan, sim_start)
    for option, value in (("--state-file", state_file), ("--sim-start", sim_start)):
        if value is not None:
            raise CliError(f"{option} is for --terminal sim only")
    if plan is not None:
        raise CliError("--faults is for --terminal sim only: a real terminal fails by itself")
    try:
        module = importlib.import_module("MetaTrader5")
    except ImportError:
        raise CliError(
            "--terminal official needs the MetaTrader5 package, which exists for Windows only "
            "(pip install MetaTrader5). On Linux run the bridge with a Windows Python inside "
            "the Wine prefix of the terminal; see docs/bridge.md."
        ) from None
    terminal: Terminal = module
    return terminal


def _simulator(
    state_file: Path | None, plan: ChaosPlan | None, sim_start: datetime | None
) -> Terminal:
    from mt5gate.sim.clock import RealClock, server_ms_of
    from mt5gate.sim.config import BrokerOptions, SimConfig
    from mt5gate.sim.terminal import SimTerminal

    clock = RealClock(start_ms=None if sim_start is None else server_ms_of(sim_start))
    config, faults = SimConfig(), None
    if plan is not None:
        config = SimConfig(broker=BrokerOptions(history_delay_ms=plan.history_delay_ms))
        faults = plan.fault_plan()
    sim = SimTerminal(config, clock=clock, faults=faults, state_file=state_file)
    print("mt5gate bridge: serving the SIMULATED terminal (mt5gate.sim), not a real MT5\n"
          f"mt5gate bridge: {sim.market.trading_now().describe()}", file=sys.stderr)  # fmt: skip
    if plan is not None:
        print(f"mt5gate bridge: fault plan with {len(plan.faults)} fault(s), history delayed by "
              f"{plan.history_delay_ms} ms, seed {plan.seed}", file=sys.stderr)  # fmt: skip
    return sim


async def serve(server: BridgeServer) -> None:
    """Run ``server`` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # pragma: no cover - Windows: no loop signal handlers
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    await server.start()
    tls = "TLS" if server.ssl_context is not None else "no TLS"
    print(f"mt5gate bridge listening on {server.host}:{server.port} "
          f"({server.terminal_kind} terminal, {tls})", flush=True)  # fmt: skip
    try:
        await stop.wait()
    finally:
        await server.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mt5gate.bridge.cli`` (the core only: no typer needed): 0
    after a clean stop, 2 on a usage problem."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """``mt5gate bridge`` on parsed arguments (:func:`build_parser`'s options, through
    argparse here or the ``mt5gate`` command's typer)."""
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        token = read_token(args.token_file)
        context = tls_context(args.tls_cert, args.tls_key)
        plan = read_plan(args.faults)
        terminal = build_terminal(args.terminal, args.state_file, plan, args.sim_start)
    except CliError as error:
        print(f"mt5gate bridge: {error}", file=sys.stderr)
        return 2
    server = BridgeServer(
        terminal, token=token, host=args.host, port=args.port, ssl_context=context,
        max_connections=args.max_connections, max_handshakes=args.max_handshakes,
        handshake_timeout_s=args.handshake_timeout, terminal_kind=args.terminal,
    )  # fmt: skip
    try:
        asyncio.run(serve(server))
    except KeyboardInterrupt:  # pragma: no cover - Ctrl+C where loop signal handlers are missing
        return 0
    except OSError as error:
        print(f"mt5gate bridge: cannot listen on {args.host}:{args.port}: {error}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
