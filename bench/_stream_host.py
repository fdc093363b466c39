"""The service process of the stream benchmark: ``mt5gate serve`` on a paced simulator.

Run as ``python -m bench._stream_host --port P --rate R --mode push|poll --sim-start ISO
--clock-file PATH``. It builds the service exactly as ``mt5gate serve`` does (settings from the
environment: ``MT5GATE_API_KEYS``, ``MT5GATE_DATA_DIR``, ...; the same app, the same uvicorn
settings) with one difference: the simulated account runs on a simulator whose market ticks
``R`` times a second across the benchmark's symbols (``SimConfig.ticks_per_s``, the catalogue
cut to those symbols), on a clock pinned to ``--sim-start``. The clock's shift from machine
time is written to ``--clock-file`` as JSON, so the benchmark turns tick times into machine
times exactly.

``--mode poll`` hides the simulator's :class:`~mt5gate.terminal.base.TickWatch` extension, so
the session polls it as it polls a real terminal (every 50 ms): the design before issue 19.

On a tree without ``SimConfig.ticks_per_s`` (to measure the code before issue 19 with this
benchmark) the pace is set by scaling each symbol's ``mean_tick_interval_ms`` instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mt5gate.sim import RealClock, SimConfig, SymbolSpec
from mt5gate.sim.clock import server_ms_of
from mt5gate.sim.market import default_catalogue
from mt5gate.sim.terminal import SimTerminal

__all__ = ["PolledSim", "main", "paced_config"]


class PolledSim(SimTerminal):
    """The simulator without its ``ticks_after`` extension: a terminal that can only be
    polled, as a real one (a protocol member set to None opts out of the protocol)."""

    ticks_after = None  # type: ignore[assignment]


def paced_config(symbols: Sequence[str], rate: float | None) -> SimConfig:
    """The simulator's configuration: the catalogue cut to ``symbols``, ``rate`` ticks/s
    across them (None: their own pace), one day of history."""
    specs = tuple(s for s in default_catalogue() if s.name in set(symbols))
    fields = {f.name for f in dataclasses.fields(SimConfig)}
    if rate is None or "ticks_per_s" in fields:
        pace: dict[str, Any] = {} if rate is None else {"ticks_per_s": rate}
        return SimConfig(symbols=specs, history_days=1, **pace)
    return SimConfig(symbols=_scaled(specs, rate), history_days=1)  # a tree before issue 19


def _scaled(specs: tuple[SymbolSpec, ...], rate: float) -> tuple[SymbolSpec, ...]:
    own = sum(1000 / s.mean_tick_interval_ms for s in specs)
    scale = own / rate
    return tuple(
        dataclasses.replace(s, mean_tick_interval_ms=max(1, round(s.mean_tick_interval_ms * scale)))
        for s in specs
    )


def _settled() -> dict[str, Any]:
    """``on_started=settle_heap``, as ``mt5gate serve`` passes it (its garbage collector set
    for a server); nothing on a tree from before it."""
    try:
        from mt5gate.service.heap import settle_heap
    except ImportError:
        return {}
    return {"on_started": settle_heap}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--mode", choices=("push", "poll"), default="push")
    parser.add_argument("--symbols", required=True, help="comma-separated")
    parser.add_argument("--sim-start", type=datetime.fromisoformat, required=True)
    parser.add_argument("--clock-file", type=Path, required=True)
    args = parser.parse_args(argv)

    import uvicorn

    from mt5gate.service.app import create_app
    from mt5gate.service.config import load_settings
    from mt5gate.service.gateway import Gateway
    from mt5gate.service.logs import log_config

    clock = RealClock(start_ms=server_ms_of(args.sim_start))
    args.clock_file.write_text(json.dumps({"shift_ms": clock.shift_ms,
                                           "utc_offset_s": clock.utc_offset_s}))  # fmt: skip
    config = paced_config(args.symbols.split(","), args.rate)
    kind = PolledSim if args.mode == "poll" else SimTerminal
    settings = load_settings(None, os.environ).model_copy(update={"port": args.port})
    gateway = Gateway.build(settings, os.environ,
                            terminal_for=lambda account: kind(config, clock=clock))  # fmt: skip
    server = uvicorn.Config(
        create_app(gateway, **_settled()), host=settings.host, port=settings.port,
        log_config=log_config(), log_level=settings.log_level.lower(),
        access_log=settings.access_log, ws_per_message_deflate=settings.stream_compression,
        timeout_graceful_shutdown=20, server_header=False,
    )  # fmt: skip
    uvicorn.Server(server).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
