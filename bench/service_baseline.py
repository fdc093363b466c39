"""The baseline of the service benchmark: the least a FastAPI app can do to serve a tick.

One route, the same path as ``mt5gate serve``'s, whose handler calls the simulator directly
(``SimTerminal(clock=RealClock())`` logged in to the demo account, as the service's default
account is) and returns the tick as JSON: no API key, no rate limit, no middleware, no session,
no thread hop. It runs under uvicorn with the settings ``mt5gate serve`` uses, one worker;
``--sim-start`` starts the simulator's clock at a server time, as ``MT5GATE_SIM_START`` does
the service's::

    python -m bench.service_baseline --port 8001 [--log-level warning] \
        [--sim-start 2026-01-06T10:00]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

from mt5gate.sim import RealClock, SimConfig, SimTerminal
from mt5gate.sim.clock import server_ms_of
from mt5gate.sim.market.catalogue import default_catalogue

__all__ = ["create_app", "limited_simulator", "main"]

#: The simulator's demo account, the one ``mt5gate serve`` serves by default (not a secret).
LOGIN, PASSWORD, SERVER = 5001, "sim-pass-5001", "MetaQuotes-Demo"


def limited_simulator(symbols: Sequence[str]) -> SimConfig:
    """A simulator configuration whose catalogue is ``symbols`` (in catalogue order)."""
    wanted = set(symbols)
    specs = tuple(spec for spec in default_catalogue() if spec.name in wanted)
    missing = sorted(wanted - {spec.name for spec in specs})
    if missing:
        raise SystemExit(f"not in the catalogue: {', '.join(missing)}")
    return SimConfig(symbols=specs)


def create_app(sim_start: datetime | None = None, symbols: Sequence[str] = ()) -> FastAPI:
    """The one-route app over a real-time simulator logged in to the demo account (its clock
    starting at server time ``sim_start`` when given; its catalogue ``symbols`` when given,
    else the whole default one)."""
    start = None if sim_start is None else server_ms_of(sim_start)
    config = limited_simulator(symbols) if symbols else SimConfig()
    terminal = SimTerminal(config=config, clock=RealClock(start_ms=start))
    if not terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER):
        raise RuntimeError(f"the simulator refused the demo login: {terminal.last_error()}")
    app = FastAPI(title="baseline")

    @app.get("/v1/accounts/{account}/symbols/{symbol}/tick")
    async def tick(account: str, symbol: str) -> JSONResponse:
        found = terminal.symbol_info_tick(symbol)
        if found is None:
            raise HTTPException(404, f"no tick for {symbol!r} ({account})")
        return JSONResponse({
            "symbol": symbol, "bid": found.bid, "ask": found.ask, "last": found.last,
            "volume": found.volume, "time_msc": found.time_msc, "flags": found.flags,
        })  # fmt: skip

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the baseline app on 127.0.0.1 with ``mt5gate serve``'s uvicorn settings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--sim-start", type=datetime.fromisoformat, default=None)
    parser.add_argument("--symbols", default="", help="comma-separated catalogue symbols")
    args = parser.parse_args(argv)
    symbols = [name for name in args.symbols.split(",") if name]
    config = uvicorn.Config(
        create_app(args.sim_start, symbols), host="127.0.0.1", port=args.port,
        log_level=args.log_level, timeout_graceful_shutdown=20, server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
