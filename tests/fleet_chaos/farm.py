"""The fleet chaos test's brokers: many faulty simulated terminals in one process, each behind
its own bridge port (MT5 has one account per terminal), with a recording fence.

::

    python -m tests.fleet_chaos.farm --first-login 9101 --count 6 --token-file F \\
        --seed 1 --fault-rate 0.03 --hang-cap 1.5 --history-delay-ms 2000 --report farm.json

Prints one line of JSON, ``{"<login>": <port>, ...}``, then serves until SIGTERM / SIGINT, and
then writes ``--report``: per login the faults fired, the trade-server links restored, the
calls served, and the fence's record (below). Being a process of its own is the point: the
brokers, their ledgers and their clocks outlive every replica the harness kills.

Each terminal is a simulator of one netting account (login ``first + i``, password
``fchaos-<login>``, see :func:`password_for`) on a real-time clock pinned to a Tuesday morning
(so the market is open whatever the day), BTCUSD ticking every ~100 ms, its history
``--history-delay-ms`` late, and the chaos broker's four ``order_send`` faults
(:func:`tests.chaos.broker.install_faults`: reply lost after execution, reply lost after a
hang, a hang before execution, a dropped trade-server link restored 0.2-1 s later), each
terminal seeded on its own.

**The fence's record.** :class:`RecordingFence` is the bridge's rule (the highest epoch wins)
unchanged; it also records, for every ``order_send`` it lets through, the machine's wall clock
(ms since the Unix epoch, the clock PostgreSQL's ``clock_timestamp()`` reads on this machine)
and the epoch the call carried, and counts the calls it refused per epoch and any call it let
through below an epoch it had seen (``stale_admitted``: never, by the rule). The harness
compares the sends with the store's lease history: epochs never go down over time, and each
epoch's sends fall within that epoch's ownership.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from mt5gate.bridge.cli import CliError, read_token
from mt5gate.bridge.server import BridgeServer
from mt5gate.constants import AccountMarginMode
from mt5gate.sim.clock import RealClock, server_ms
from mt5gate.sim.config import AccountConfig
from mt5gate.sim.faults import FaultPlan
from mt5gate.sim.terminal import SimTerminal
from tests.chaos.broker import HOST, CountingFence, chaos_config, fault_counts
from tests.chaos.broker import install_faults as install_chaos_faults

__all__ = ["RecordingFence", "account_for", "main", "password_for"]

log = logging.getLogger("tests.fleet_chaos.farm")

#: Server time the simulators' clocks start at: Tuesday 2026-01-06 10:00 (markets open).
START_MS: Final = server_ms(2026, 1, 6, 10)


def password_for(login: int) -> str:
    """The simulated account's password."""
    return f"fchaos-{login}"


def account_for(login: int) -> AccountConfig:
    """One rich netting account (orders of both sides keep one small position)."""
    return AccountConfig(login=login, password=password_for(login), balance=1e9,
                         margin_mode=AccountMarginMode.RETAIL_NETTING,
                         limit_orders=100_000)  # fmt: skip


class RecordingFence(CountingFence):
    """The bridge's fencing rule with counts (:class:`CountingFence`) and the record of every
    ``order_send`` let through: ``(wall ms, epoch)`` (module docstring). Runs on the bridge's
    one terminal thread, in the same step as the call it admits."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[tuple[int, int]] = []
        #: when the terminal learned each higher epoch: ``(wall ms, epoch, sends admitted
        #: before it)`` (the count orders it against the sends exactly, whatever the clock)
        self.learned: list[tuple[int, int, int]] = []

    def admit(self, function: str, epoch: int | None) -> bool:
        known = self.learned[-1][1] if self.learned else 0
        raised = super().admit(function, epoch)  # raises TerminalFencedError when refused
        now = time.time_ns() // 1_000_000
        if epoch is not None and epoch > known:
            self.learned.append((now, epoch, len(self.sends)))
        if function == "order_send":
            self.sends.append((now, epoch or 0))
        return raised


class LinkRestorer(threading.Thread):
    """Restores each terminal's trade-server link 0.2-1 s (seeded) after a fault dropped it,
    like a terminal reconnecting by itself: one named thread for the whole farm (the bridges'
    workers may be blocked in hung calls), which only flips the link flag back."""

    def __init__(self, terminals: Sequence[SimTerminal], seed: int) -> None:
        super().__init__(name="farm-link-restorer", daemon=True)
        self.terminals = list(terminals)
        self.restored = [0] * len(self.terminals)
        self._random = random.Random(seed ^ 0x5EED)
        self._done = threading.Event()

    def run(self) -> None:
        due: dict[int, float] = {}
        while not self._done.wait(0.02):
            now = time.monotonic()
            for i, terminal in enumerate(self.terminals):
                if terminal.flags.connected:
                    due.pop(i, None)
                elif i not in due:
                    due[i] = now + self._random.uniform(0.2, 1.0)
                elif now >= due[i]:
                    terminal.set_connected(True)
                    self.restored[i] += 1
                    del due[i]

    def stop(self) -> None:
        """End the thread (within one poll)."""
        self._done.set()
        self.join(timeout=2.0)


@dataclasses.dataclass
class _Broker:
    login: int
    terminal: SimTerminal
    server: BridgeServer
    fence: RecordingFence
    faults: dict[str, Any]

    def report(self) -> dict[str, Any]:
        return {"faults": fault_counts(self.terminal.faults, self.faults),
                "restored": 0, "calls": self.server.calls,
                "fence": self.fence.stats(), "sends": self.fence.sends,
                "learned": self.fence.learned}  # fmt: skip


def _broker(login: int, seed: int, args: argparse.Namespace, token: str) -> _Broker:
    config = dataclasses.replace(chaos_config(seed, args.history_delay_ms),
                                 accounts=(account_for(login),))  # fmt: skip
    terminal = SimTerminal(config, clock=RealClock(start_ms=START_MS),
                           faults=FaultPlan(seed=seed))  # fmt: skip
    faults = install_chaos_faults(terminal.faults, args.fault_rate, args.hang_cap)
    server = BridgeServer(terminal, token=token, host=HOST, port=0, terminal_kind="sim")
    fence = RecordingFence()
    server.fence = fence
    return _Broker(login, terminal, server, fence, faults)


async def serve(args: argparse.Namespace, token: str) -> None:
    """Start every broker, print the ports, serve until SIGTERM / SIGINT, write the report."""
    brokers = [_broker(args.first_login + i, args.seed * 1000 + i, args, token)
               for i in range(args.count)]  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    restorer = LinkRestorer([b.terminal for b in brokers], args.seed)
    restorer.start()
    for broker in brokers:
        await broker.server.start()
    print(json.dumps({str(b.login): b.server.port for b in brokers}), flush=True)
    try:
        await stop.wait()
    finally:
        reports = {}
        for broker in brokers:
            reports[str(broker.login)] = broker.report()  # before clear(): it resets the counts
            broker.terminal.faults.clear()  # wakes a hung call so the worker can be joined
            with contextlib.suppress(Exception):
                await broker.server.close()
        restorer.stop()
        for broker, restored in zip(brokers, restorer.restored, strict=True):
            reports[str(broker.login)]["restored"] = restored
        if args.report is not None:
            partial = args.report.with_name(args.report.name + ".tmp")
            partial.write_text(json.dumps(reports), encoding="utf-8")
            os.replace(partial, args.report)


def build_parser() -> argparse.ArgumentParser:
    """The command line of the farm."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fleet_chaos.farm",
        description="Faulty simulated brokers behind bridges.",
    )
    add = parser.add_argument
    add("--first-login", type=int, required=True)
    add("--count", type=int, required=True)
    add("--token-file", type=Path, required=True)
    add("--seed", type=int, default=1)
    add("--fault-rate", type=float, default=0.03)
    add("--hang-cap", type=float, default=1.5)
    add("--history-delay-ms", type=int, default=2000)
    add("--report", type=Path)
    add("--log-level", default="WARNING")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after SIGTERM / SIGINT, 2 on a bad token file."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        token = read_token(args.token_file)
    except CliError as error:
        print(f"farm: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(args, token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
