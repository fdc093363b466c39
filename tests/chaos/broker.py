"""The chaos broker: a simulated trade server in its own process, behind the bridge, with faults.

::

    python -m tests.chaos.broker --port 0 --token-file F --seed S --fault-rate R \\
        [--hang-cap 1.5] [--history-delay-ms 0] [--stats-file stats.json]

It serves a :class:`~mt5gate.sim.terminal.SimTerminal` on a real-time clock through a
:class:`~mt5gate.bridge.server.BridgeServer` on 127.0.0.1 only, prints the same listening line
as ``mt5gate bridge`` (``mt5gate bridge listening on 127.0.0.1:PORT ...``) and serves until
SIGTERM or SIGINT. Being a separate process is the point: the simulated broker, its ledger and
its clock outlive every gateway the harness kills.

Faults fire on ``order_send`` only, each call drawing from a seeded random source, so that a
fraction ``--fault-rate`` of sends meets one of four failures (in equal shares):

* ``reply_lost``: the order executes, the reply is lost with an IPC receive error (-10002);
* ``reply_lost_hang``: the order executes, then the call hangs past the gateway's order
  deadline (``--hang-cap`` seconds) and its reply is lost (-10005);
* ``hang``: the call hangs past the deadline *before* anything executes, then fails (-10005);
* ``disconnect``: the trade-server link drops (the send answers 10031, no connection) and a
  named thread of this process restores it after 0.2-1 s of real time, like a broker
  reconnecting on its own.

Reads are never faulted: the gateway's reconciliation must prove what happened through them.
The symbol traded is BTCUSD, the one instrument of the simulator's catalogue that trades at
every minute of every day, weekends included (CI may run on a Saturday); its quotes tick every
~100 ms here (a configuration of the simulator), so the broker clock visibly moves past a send
within a reconciliation's settle time. The account is the netting demo account: orders of
alternating sides keep one small position instead of thousands.

``--history-delay-ms`` makes the broker's history late: deals and history orders show up in
``history_*_get`` only that long after they happen (``BrokerOptions.history_delay_ms``), while
positions are current at once, as on real servers under load.

The bridge's fencing rule (the highest epoch wins) runs through a :class:`CountingFence`, which
counts per epoch the calls it let through and the calls it refused, and any call it let through
with an epoch below one it had already seen (``stale_admitted``: never, by the rule). A paused
ex-owner's calls show up as refusals of its epoch: the evidence that it did not reach the
terminal.

``--stats-file`` receives, every 0.2 s and at exit, JSON with the faults fired per kind, the
link restorations, the calls the bridge served and the fence's counts (``seq`` counts the
writes, so a reader can wait for a fresh one): evidence that the chaos happened.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from mt5gate.bridge.cli import CliError, read_token
from mt5gate.bridge.server import BridgeServer
from mt5gate.constants import ResultCode
from mt5gate.sim.clock import RealClock
from mt5gate.sim.config import AccountConfig, BrokerOptions, SimConfig, demo_accounts
from mt5gate.sim.faults import Fault, FaultKind, FaultPlan
from mt5gate.sim.market import default_catalogue
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.base import TerminalFencedError
from mt5gate.terminal.fencing import EpochFence

__all__ = [
    "ACCOUNT",
    "FAULT_KINDS",
    "HOST",
    "LISTENING",
    "SYMBOL",
    "CountingFence",
    "LinkRestorer",
    "chaos_config",
    "fault_counts",
    "install_faults",
    "main",
]

log = logging.getLogger("tests.chaos.broker")

#: Loopback only: the chaos broker trades for anyone holding the token.
HOST: Final = "127.0.0.1"
#: The prefix of the line announcing the port (the same as ``mt5gate bridge`` prints).
LISTENING: Final = "mt5gate bridge listening on"
#: The instrument traded: open around the clock, all week, in the default catalogue.
SYMBOL: Final = "BTCUSD"
#: The account traded: the netting demo account of the simulator.
ACCOUNT: Final[AccountConfig] = next(a for a in demo_accounts() if a.login == 5002)
#: The fault kinds installed, in the order the fault plan consults them.
FAULT_KINDS: Final = ("reply_lost", "reply_lost_hang", "hang", "disconnect")
_SEND: Final = frozenset({"order_send"})
_TICK_MS: Final = 100  # BTCUSD's mean tick interval here (the catalogue's is 2 s)


def chaos_config(seed: int, history_delay_ms: int = 0) -> SimConfig:
    """The simulator's configuration: the default catalogue with BTCUSD ticking every ~100 ms,
    one day of history (start-up stays fast), the default accounts, seeded by ``seed``, its
    history ``history_delay_ms`` late."""
    symbols = tuple(
        dataclasses.replace(spec, mean_tick_interval_ms=_TICK_MS) if spec.name == SYMBOL else spec
        for spec in default_catalogue()
    )
    broker = BrokerOptions(history_delay_ms=history_delay_ms)
    return SimConfig(symbols=symbols, history_days=1, seed=seed, broker=broker)


class CountingFence(EpochFence):
    """The bridge's fencing rule, unchanged, with counts of what it let through and refused.

    ``admit`` runs on the bridge's one terminal thread (as :class:`EpochFence`'s does);
    ``check`` also on the connection threads (a stale call is refused before it waits for the
    terminal), so refusals are counted under a lock. The stats writer reads the plain dicts
    from the event loop, which at worst sees a count one call old.
    """

    def __init__(self) -> None:
        super().__init__()
        self.admitted: dict[int, int] = {}  # epoch (0: none) -> calls let through
        self.refused: dict[int, int] = {}  # epoch (0: none) -> calls refused
        self.refused_sends = 0  # order_send calls among the refused
        self.stale_admitted = 0  # let through with an epoch below one seen before: never
        self._seen = 0
        self._refusals = threading.Lock()

    def check(self, function: str, epoch: int | None) -> None:
        try:
            super().check(function, epoch)
        except TerminalFencedError:
            with self._refusals:
                self.refused[epoch or 0] = self.refused.get(epoch or 0, 0) + 1
                self.refused_sends += function == "order_send"
            raise

    def admit(self, function: str, epoch: int | None) -> bool:
        raised = super().admit(function, epoch)  # a refusal was counted by check()
        self.admitted[epoch or 0] = self.admitted.get(epoch or 0, 0) + 1
        if epoch is not None:
            self.stale_admitted += epoch < self._seen
            self._seen = max(self._seen, epoch)
        return raised

    def stats(self) -> dict[str, Any]:
        """JSON-ready counts (epochs as strings: JSON keys)."""
        return {
            "highest": self.highest, "stale_admitted": self.stale_admitted,
            "refused_sends": self.refused_sends,
            "admitted": {str(k): v for k, v in sorted(self.admitted.items())},
            "refused": {str(k): v for k, v in sorted(self.refused.items())},
        }  # fmt: skip


def install_faults(plan: FaultPlan, rate: float, hang_cap_s: float) -> dict[str, Fault]:
    """Install the four probabilistic order_send faults so that about ``rate`` of the sends
    meet one (each rule fires with the same per-call chance ``p``, 1 - (1 - p)**4 = rate)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"the fault rate must be within 0..1 (exclusive), got {rate}")
    if rate == 0.0:
        return {}
    p = 1.0 - (1.0 - rate) ** (1.0 / len(FAULT_KINDS))
    lost, timeout = ResultCode.E_INTERNAL_FAIL_RECEIVE, ResultCode.E_INTERNAL_FAIL_TIMEOUT
    return {
        "reply_lost": plan.reply_lost("order_send", code=lost, times=None, probability=p),
        "reply_lost_hang": plan.reply_lost(
            "order_send", code=timeout, hang=True, cap_s=hang_cap_s, times=None, probability=p
        ),
        "hang": plan.add(
            Fault(FaultKind.HANG, _SEND, delay_s=hang_cap_s, times=None, probability=p)
        ),
        "disconnect": plan.add(Fault(FaultKind.DISCONNECT, _SEND, times=None, probability=p)),
    }


def fault_counts(plan: FaultPlan, faults: dict[str, Fault]) -> dict[str, int]:
    """How often each installed fault has fired (every kind listed, zero when not installed)."""
    return {kind: plan.fired(faults[kind]) if kind in faults else 0 for kind in FAULT_KINDS}


class LinkRestorer(threading.Thread):
    """Restores the simulated trade-server link 0.2-1 s (seeded) after a fault dropped it.

    A thread of its own, named, because the bridge's terminal worker may be blocked in a hung
    call; it only flips the link flag back (``SimTerminal.set_connected(True)``), which is what
    a terminal does when it reconnects to its trade server by itself.
    """

    def __init__(self, terminal: SimTerminal, seed: int) -> None:
        super().__init__(name="chaos-link-restorer", daemon=True)
        self.terminal = terminal
        self.restored = 0
        self._random = random.Random(seed ^ 0x5EED)
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            if self.terminal.flags.connected:
                self._stopping.wait(0.02)
                continue
            if self._stopping.wait(self._random.uniform(0.2, 1.0)):
                return
            self.terminal.set_connected(True)
            self.restored += 1
            log.info("trade-server link restored (%d so far)", self.restored)

    def stop(self) -> None:
        """End the thread (it exits within one poll)."""
        self._stopping.set()
        self.join(timeout=2.0)


def build_parser() -> argparse.ArgumentParser:
    """The command line of the chaos broker."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.broker",
        description="A simulated MT5 broker with order_send faults, served over the bridge "
        "on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--token-file", type=Path, required=True, help="the bridge token (600)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the simulator and the faults")
    parser.add_argument("--fault-rate", type=float, default=0.05,
                        help="share of order_send calls that meet a fault (0..1)")  # fmt: skip
    parser.add_argument("--hang-cap", type=float, default=1.5,
                        help="seconds a hung order_send blocks")  # fmt: skip
    parser.add_argument("--history-delay-ms", type=int, default=0,
                        help="deals and history orders show up this late (ms)")  # fmt: skip
    parser.add_argument("--stats-file", type=Path, help="write fault statistics here (JSON)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def _write_stats(path: Path | None, stats: dict[str, Any]) -> None:
    """Replace ``path`` with ``stats`` atomically (a reader never sees half a file)."""
    if path is None:
        return
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(stats, sort_keys=True), encoding="utf-8")
    os.replace(partial, path)


async def serve(args: argparse.Namespace, token: str) -> None:
    """Build the faulty simulator, serve it until SIGTERM / SIGINT, keep the stats file fresh."""
    terminal = SimTerminal(
        chaos_config(args.seed, args.history_delay_ms), clock=RealClock(),
        faults=FaultPlan(seed=args.seed),
    )  # fmt: skip
    faults = install_faults(terminal.faults, args.fault_rate, args.hang_cap)
    restorer = LinkRestorer(terminal, args.seed)
    server = BridgeServer(terminal, token=token, host=HOST, port=args.port,
                          terminal_kind="sim")  # fmt: skip
    fence = server.fence = CountingFence()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    written = 0

    def stats() -> dict[str, Any]:
        nonlocal written
        written += 1
        return {"faults": fault_counts(terminal.faults, faults), "restored": restorer.restored,
                "calls": server.calls, "fault_rate": args.fault_rate, "fence": fence.stats(),
                "history_delay_ms": args.history_delay_ms, "seq": written}  # fmt: skip

    restorer.start()
    await server.start()
    print(f"{LISTENING} {HOST}:{server.port} (chaos sim terminal, no TLS)", flush=True)
    try:
        while not stop.is_set():
            _write_stats(args.stats_file, stats())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    finally:
        fired = fault_counts(terminal.faults, faults)  # clearing the plan forgets its counts
        terminal.faults.clear()  # wakes a hung call so the worker can be joined
        await server.close()
        restorer.stop()
        final = {**stats(), "faults": fired}
        _write_stats(args.stats_file, final)
        log.info("chaos broker stopped: %s", final)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after SIGTERM / SIGINT, 2 on a usage problem, 1 if it cannot listen."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        token = read_token(args.token_file)
    except CliError as error:
        print(f"chaos broker: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args, token))
    except OSError as error:
        print(f"chaos broker: cannot listen on {HOST}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
