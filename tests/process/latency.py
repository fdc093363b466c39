"""Per-call latency through a ProcessTerminal's pipe, against the same simulator in process.

    .venv/bin/python -m tests.process.latency [calls]

Prints the median and 99th percentile of ``symbol_info_tick``, ``account_info`` and a
100-bar ``copy_rates_from_pos``, in microseconds, and the time to start a child.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any

from mt5gate.terminal.process import ProcessTerminal

from .hosted import build_sim

CREDENTIALS: dict[str, Any] = {"login": 5001, "password": "sim-pass-5001"}
CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("symbol_info_tick", ("EURUSD",)),
    ("account_info", ()),
    ("copy_rates_from_pos", ("EURUSD", 1, 0, 100)),
]


def _percentiles(call: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(n, 200)):  # warm up
        call()
    took: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    took.sort()
    return took[len(took) // 2] * 1e6, took[int(len(took) * 0.99)] * 1e6


def main(n: int = 5000) -> None:
    started = time.perf_counter()
    with ProcessTerminal(build_sim) as child:
        assert child.initialize(**CREDENTIALS), child.last_error()
        print(f"child start + initialize: {(time.perf_counter() - started) * 1000:.0f} ms")
        local = build_sim()
        assert local.initialize(**CREDENTIALS)
        for name, args in CALLS:
            remote = _percentiles(functools.partial(getattr(child, name), *args), n)
            inproc = _percentiles(functools.partial(getattr(local, name), *args), n)
            print(
                f"{name:22} child: median {remote[0]:6.1f} us, p99 {remote[1]:6.1f} us   "
                f"in process: median {inproc[0]:6.1f} us"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
