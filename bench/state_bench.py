"""The simulator's state file: orders per second through a bridged simulator that keeps one,
against the same bridge without it, and the file's size as trading and time go by.

- **market order_send through the bridge**: open and close pairs of 0.1 lot EURUSD on the rich
  hedging account (counted as orders), from one client, then from several at once (each its
  own connection), to a ``bench._state_host`` bridge process with a state file and without; the
  ratio is what keeping the file costs. Every order is on disk before its reply.
- **file size**: in process, on a virtual clock: after N orders, then after a week of simulated
  time without trading (and one call that saves), beside the size of the whole-state document
  the format of version 1 rewrote on every order (``mt5gate.sim.state.snapshot``, if present).

``python -m bench.state_bench`` runs this section alone (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._bridge_host import RICH
from bench.report import Row, machine, render
from bench.terminal_paths import TOKEN, _buy_and_close
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.bridge import BridgeTerminal

__all__ = ["all_rows"]

CLIENTS = 4


@contextmanager
def _bridge(state_file: Path | None, history_days: int = 1) -> Iterator[int]:
    """A ``bench._state_host`` process; yields its port."""
    argv = [sys.executable, "-m", "bench._state_host", TOKEN]
    argv += [str(state_file) if state_file is not None else "-", str(history_days)]
    host = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        yield int(host.stdout.readline())
    finally:
        host.kill()
        host.wait()


def _client(port: int) -> BridgeTerminal:
    terminal = BridgeTerminal("127.0.0.1", port, token=TOKEN)
    assert terminal.initialize(), terminal.last_error()
    return terminal


def _pairs(terminal: BridgeTerminal, count: int) -> None:
    for _ in range(count):
        _buy_and_close(terminal)


def _rate(port: int, clients: int, pairs: int, repeat: int) -> float:
    """Best orders per second over ``repeat`` runs of ``pairs`` pairs from each client."""
    terminals = [_client(port) for _ in range(clients)]
    best = float("inf")
    try:
        for terminal in terminals:
            _pairs(terminal, 10)  # warm up: the market's history, the first file write
        for _ in range(repeat):
            threads = [threading.Thread(target=_pairs, args=(t, pairs)) for t in terminals]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            best = min(best, time.perf_counter() - started)
    finally:
        for terminal in terminals:
            terminal.close()
    return 2 * pairs * clients / best


def order_rows(repeat: int, quick: bool) -> list[Row]:
    """Orders per second with and without a state file, one client and several."""
    pairs = 50 if quick else 500
    out: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for clients in (1, CLIENTS):
            each = max(1, pairs // clients)
            with _bridge(None) as port:
                bare = _rate(port, clients, each, repeat)
            with _bridge(Path(folder) / f"sim-{clients}.json") as port:
                kept = _rate(port, clients, each, repeat)
            who = "1 client" if clients == 1 else f"{clients} clients"
            out.append(Row("state file", f"bridged order_send, {who}, no state file", bare,
                           "orders/s"))  # fmt: skip
            out.append(Row("state file", f"bridged order_send, {who}, with a state file",
                           kept, "orders/s", "no state file", kept / bare))  # fmt: skip
        out += _default_market_rows(Path(folder), repeat, quick)
    return out


def _default_market_rows(folder: Path, repeat: int, quick: bool) -> list[Row]:
    """One client, with the default 30 days of history (``mt5gate bridge --state-file``'s
    market: the version 1 file held all of it, ~29 MB, rewritten on every order)."""
    pairs = 20 if quick else 100
    with _bridge(folder / "sim-30d.json", history_days=30) as port:
        kept = _rate(port, 1, pairs, repeat)
    return [Row("state file", "bridged order_send, 1 client, with a state file, 30 days of "
                "history", kept, "orders/s")]  # fmt: skip


def size_rows(quick: bool) -> list[Row]:
    """The state file's size after N orders, then after a week without trading."""
    pairs = 100 if quick else 1_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sim.json"
        config = SimConfig(accounts=(RICH,), history_days=1)
        terminal = SimTerminal(config, clock=VirtualClock(server_ms(2026, 1, 6, 10)),
                               state_file=path)  # fmt: skip
        assert terminal.initialize()
        for _ in range(pairs):
            _buy_and_close(terminal)
        traded = path.stat().st_size
        whole = _whole_document(terminal)
        terminal.step(seconds=7 * 86_400)
        terminal.symbol_select("EURUSD", True)  # a call that saves
        week = path.stat().st_size
    label = f"state file after {2 * pairs} orders"
    out = [Row("state file", label, traded / 1e6, "MB")]
    if whole is not None:
        out.append(Row("state file", f"{label}: the whole-state document (version 1)",
                       whole / 1e6, "MB", "state file", whole / traded))  # fmt: skip
    out.append(Row("state file", f"{label}, then a week without trading", week / 1e6, "MB",
                   "after the orders", week / traded))  # fmt: skip
    return out


def _whole_document(terminal: SimTerminal) -> int | None:
    """Bytes of the version 1 document (all the market) for this state, where it exists."""
    from mt5gate.sim import state

    if getattr(state, "LEGACY_VERSION", None) is None:
        return None  # a tree before version 2: the file itself is that document
    return len(json.dumps(state.snapshot(terminal), separators=(",", ":")))


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """Every figure of this benchmark."""
    return order_rows(repeat, quick) + size_rows(quick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    print(render(all_rows(args.repeat, args.quick)))
