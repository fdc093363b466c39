"""Service benchmarks: ``mt5gate serve`` as a real process on loopback, side by side.

Figures (issue 6, item 11):
- ``GET /v1/accounts/demo/symbols/EURUSD/tick`` at 64 concurrent keep-alive connections:
  requests per second and latency p50/p99, against a minimal FastAPI app
  (``bench/service_baseline.py``: one route calling ``SimTerminal.symbol_info_tick`` directly)
  under the same uvicorn settings, one worker each, both with the log level at WARNING (no
  access log); and ``mt5gate serve`` as it starts by default (INFO: an access-log line per
  request). The same pair again on a simulator of one symbol (``LEAN_SYMBOLS``; the service
  through ``bench/service_host.py``): the default catalogue's 60 symbols make each terminal
  call cost about 1 ms, which the baseline pays per request and the service once per batch of
  concurrent requests, so only the one-symbol pair compares the service's own cost. The load
  comes from ``bench/service_load.py`` in its own process; the five servers run side by side
  and are measured in alternating rounds, best of ``repeat`` each;
- resident memory (VmRSS) of the service idle after start-up (against the baseline app idle),
  after one ``GET symbols`` (the simulator then builds every symbol's market) and after the
  tick benchmark.

The ``/v1/stream`` fan-out has its own benchmark, ``bench/stream_bench.py`` (issue 19).

The simulators of the service and of the baseline start on a weekday morning (``SIM_START``) and
run in real time from there, so every run measures the same open forex market, whatever the
day and hour (a weekend's closed market has no ticks to stream and none to generate).
:func:`_clock_shift_ms` turns such a simulator's tick times back into machine times (the
console benchmark uses it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench.report import Row
from bench.service_load import HttpSpec, WsSpec
from mt5gate.service.auth import hash_api_key, new_api_key
from mt5gate.sim import RealClock

__all__ = ["all_rows"]

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "demo"
TICK_PATH = f"/v1/accounts/{ACCOUNT}/symbols/EURUSD/tick"
CONNECTIONS = 64
SYMBOLS = (
    "EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD",
    "USDCAD", "EURJPY", "GBPJPY", "EURGBP", "XAUUSD",
)  # fmt: skip
#: The simulator's server time is UTC plus this (``RealClock``'s default, which the service uses).
SERVER_OFFSET_MS = RealClock().utc_offset_s * 1000
#: The catalogue of the second service/baseline pair: a terminal call as cheap as a real one.
LEAN_SYMBOLS = ("EURUSD",)
#: Server time at which the benchmarked simulators' clocks start: a Tuesday morning, forex open.
SIM_START = "2026-01-06T10:00"
_START_S = 60.0
_CLIENT_START_S = 0.5  # a load process's interpreter start-up, before its warm-up


@dataclass
class _Server:
    """A server process of the benchmark, its port and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def rss_mib(self) -> float:
        """Resident memory now (VmRSS), MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kib) / 1024

    def cpu_s(self) -> float:
        """User plus system CPU seconds of every thread so far."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> _Server:
    port = _free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", *args, "--port", str(port)], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return _Server(name, process, port, log)


def _service(
    scratch: Path, name: str, keys: str, log_level: str | None, symbols: tuple[str, ...] = ()
) -> _Server:
    """``mt5gate serve`` with its own data directory and the benchmark's API key (on a
    simulator of ``symbols`` only, when given: ``bench.service_host``)."""
    env = {**os.environ, "MT5GATE_DATA_DIR": str(scratch / name), "MT5GATE_API_KEYS": keys,
           "MT5GATE_SIM_START": SIM_START}  # fmt: skip
    for unwanted in ("MT5GATE_CONFIG", "MT5GATE_LOG_LEVEL"):
        env.pop(unwanted, None)
    if log_level is not None:
        env["MT5GATE_LOG_LEVEL"] = log_level
    command = ["bench.service_host", "--symbols", ",".join(symbols)] if symbols else [
        "mt5gate.cli", "serve"]  # fmt: skip
    return _spawn(name, command, env, scratch / f"{name}.log")


def _baseline(scratch: Path, name: str, log_level: str, symbols: tuple[str, ...] = ()) -> _Server:
    args = ["bench.service_baseline", "--log-level", log_level, "--sim-start", SIM_START]
    if symbols:
        args += ["--symbols", ",".join(symbols)]
    return _spawn(name, args, dict(os.environ), scratch / f"{name}.log")


def _get(port: int, path: str, key: str) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"X-API-Key": key})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def _status(port: int, path: str, key: str) -> int:
    return _get(port, path, key)[0]


def _check_symbols(server: _Server, key: str) -> None:
    """``GET symbols`` once: the stream's symbols must be the account's. It also makes the
    simulator build every symbol's market (~25 MiB), which the service's first order sweep
    does 60 s after start anyway; done now, it stays out of the later memory figures."""
    status, body = _get(server.port, f"/v1/accounts/{ACCOUNT}/symbols", key)
    names = {entry["name"] for entry in json.loads(body)} if status == 200 else set()
    missing = sorted(set(SYMBOLS) - names)
    if missing:
        raise RuntimeError(f"{server.name}: GET symbols answered {status}, missing {missing}")


def _wait_ready(server: _Server, path: str, key: str, deadline: float) -> None:
    while _status(server.port, path, key) != 200:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} was not ready within {_START_S:.0f} s")
        time.sleep(0.2)


def _key_setting(key: str) -> str:
    """``MT5GATE_API_KEYS`` with one read key whose rate limit the benchmark never reaches."""
    entry = {"name": "bench", "hash": hash_api_key(key), "scopes": ["read"],
             "rate_per_minute": 10**9, "burst": 10**9}  # fmt: skip
    return json.dumps([entry])


# ------------------------------------------------------------------------------- HTTP load


@dataclass(frozen=True)
class _HttpRun:
    rate: float  # requests/s
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float  # share of one core over the window
    client_cpu: float

    @property
    def per_cpu_s(self) -> float:
        """Requests per CPU-second of the server (all its threads): what a request costs,
        whatever share of the cores the server got on a shared machine."""
        return self.rate / self.server_cpu if self.server_cpu > 0 else 0.0


def _sleep_until(wall: float) -> None:
    time.sleep(max(0.0, wall - time.time()))


def _load(kind: str, spec: HttpSpec | WsSpec, **pipes: Any) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.service_load", kind, json.dumps(asdict(spec))]
    return subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, **pipes)


def _http_run(server: _Server, key: str, warmup_s: float, duration_s: float) -> _HttpRun:
    t0 = time.time() + _CLIENT_START_S + warmup_s
    spec = HttpSpec(server.port, TICK_PATH, key, CONNECTIONS, t0, t0 + duration_s)
    client = _load("http", spec)
    try:
        _sleep_until(spec.t0)
        cpu = server.cpu_s()
        _sleep_until(spec.t1)
        cpu = server.cpu_s() - cpu
        out, _ = client.communicate(timeout=duration_s + 60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    found = json.loads(out)
    return _HttpRun(found["requests"] / found["seconds"], found["p50_ms"], found["p99_ms"],
                    found["errors"], cpu / duration_s, found["cpu_s"] / duration_s)  # fmt: skip


def _clock_shift_ms(ticks: list[tuple[Any, ...]]) -> int:
    """How far the service's pinned simulated clock is from machine time (server offset aside).

    A pinned ``RealClock`` is the machine clock shifted by whole seconds, so a tick's time minus
    its receipt time is that shift minus the delivery latency; with latencies well under half a
    second, rounding the median to whole seconds gives the shift exactly.
    """
    if not ticks:
        return 0
    ahead = statistics.median(msc - SERVER_OFFSET_MS - ns / 1e6 for _, msc, ns, _ in ticks)
    return round(ahead / 1000) * 1000


# ------------------------------------------------------------------------------------ rows


@dataclass(frozen=True)
class _Sizes:
    idle_s: float
    warmup_s: float
    duration_s: float


def _servers(stack: ExitStack, scratch: Path, key: str) -> list[_Server]:
    """The service at WARNING, the baseline at WARNING, the service at its default level, then
    the service and the baseline on a simulator of ``LEAN_SYMBOLS``; each stopped when
    ``stack`` closes. All five have answered one tick request on return."""
    keys = _key_setting(key)
    starts: list[Callable[[], _Server]] = [
        lambda: _service(scratch, "mt5gate", keys, "WARNING"),
        lambda: _baseline(scratch, "baseline", "warning"),
        lambda: _service(scratch, "mt5gate-default", keys, None),
        lambda: _service(scratch, "mt5gate-lean", keys, "WARNING", LEAN_SYMBOLS),
        lambda: _baseline(scratch, "baseline-lean", "warning", LEAN_SYMBOLS),
    ]
    servers = []
    for start in starts:
        servers.append(start())
        stack.callback(servers[-1].stop)
    deadline = time.monotonic() + _START_S
    probes = ("/readyz", TICK_PATH, "/readyz", "/readyz", TICK_PATH)
    for server, probe in zip(servers, probes, strict=True):
        _wait_ready(server, probe, key, deadline)
        _wait_ready(server, TICK_PATH, key, deadline)
    return servers


def _best(runs: list[_HttpRun]) -> _HttpRun:
    return max(runs, key=lambda run: run.rate)


def _measure(repeat: int, sizes: _Sizes) -> dict[str, Any]:
    key = new_api_key()
    with tempfile.TemporaryDirectory(prefix="mt5gate-bench-") as scratch, ExitStack() as stack:
        service, baseline, default, lean, lean_baseline = _servers(stack, Path(scratch), key)
        time.sleep(sizes.idle_s)
        rss = {"idle": service.rss_mib(), "baseline": baseline.rss_mib()}
        for server in (service, default):
            _check_symbols(server, key)
        rss["symbols"] = service.rss_mib()
        measured = {"service": service, "baseline": baseline, "default": default,
                    "lean": lean, "lean_baseline": lean_baseline}  # fmt: skip
        runs: dict[str, list[_HttpRun]] = {name: [] for name in measured}
        for _ in range(repeat):
            for name, server in measured.items():
                runs[name].append(_http_run(server, key, sizes.warmup_s, sizes.duration_s))
        rss["loaded"] = service.rss_mib()
    best = {name: _best(found) for name, found in runs.items()}
    return {"rss": rss, "http": best}


def all_rows(repeat: int, quick: bool, *, verbose: bool = False) -> list[Row]:
    """Every service figure, side by side in one run (HTTP: best of ``repeat``)."""
    sizes = _Sizes(2.0, 0.5, 2.0) if quick else _Sizes(5.0, 1.0, 5.0)
    found = _measure(repeat, sizes)
    _warn(found["http"], verbose)
    return _rows(found["http"], found["rss"])


def _warn(http: dict[str, _HttpRun], verbose: bool) -> None:
    """Say on stderr what would make a figure wrong (errors), or, when ``verbose``, the CPU
    shares that show who was the bottleneck."""
    errors = sum(run.errors for run in http.values())
    if verbose or errors:
        for name, run in http.items():
            print(f"service bench: {name}: {run}", file=sys.stderr)


def _lean_rows(http: dict[str, _HttpRun]) -> list[Row]:
    """The service against the baseline on the one-symbol simulator."""
    svc, base = http["lean"], http["lean_baseline"]
    tick = f"GET tick, {CONNECTIONS} connections, {len(LEAN_SYMBOLS)}-symbol simulator"
    return [
        Row("service", f"{tick}: minimal FastAPI app (baseline)", base.rate, "requests/s"),
        Row("service", f"{tick}: mt5gate serve", svc.rate, "requests/s",
            "minimal FastAPI app", svc.rate / base.rate),
        Row("service", f"{tick}: mt5gate serve, per CPU-second", svc.per_cpu_s, "requests",
            "baseline per CPU-second", svc.per_cpu_s / base.per_cpu_s),
        Row("service", f"{tick}: baseline latency p50", base.p50_ms, "ms"),
        Row("service", f"{tick}: mt5gate serve latency p50", svc.p50_ms, "ms",
            "baseline p50", svc.p50_ms / base.p50_ms),
        Row("service", f"{tick}: baseline latency p99", base.p99_ms, "ms"),
        Row("service", f"{tick}: mt5gate serve latency p99", svc.p99_ms, "ms",
            "baseline p99", svc.p99_ms / base.p99_ms),
    ]  # fmt: skip


def _rows(http: dict[str, _HttpRun], rss: dict[str, float]) -> list[Row]:
    svc, base, default = http["service"], http["baseline"], http["default"]
    tick = f"GET tick, {CONNECTIONS} connections"
    return [
        Row("service", f"{tick}: minimal FastAPI app (baseline)", base.rate, "requests/s"),
        Row("service", f"{tick}: mt5gate serve", svc.rate, "requests/s",
            "minimal FastAPI app", svc.rate / base.rate),
        Row("service", f"{tick}: mt5gate serve, default log (access log)", default.rate,
            "requests/s", "log level WARNING", default.rate / svc.rate),
        Row("service", f"{tick}: mt5gate serve, per CPU-second", svc.per_cpu_s, "requests",
            "baseline per CPU-second", svc.per_cpu_s / base.per_cpu_s),
        Row("service", f"{tick}: baseline latency p50", base.p50_ms, "ms"),
        Row("service", f"{tick}: mt5gate serve latency p50", svc.p50_ms, "ms",
            "baseline p50", svc.p50_ms / base.p50_ms),
        Row("service", f"{tick}: baseline latency p99", base.p99_ms, "ms"),
        Row("service", f"{tick}: mt5gate serve latency p99", svc.p99_ms, "ms",
            "baseline p99", svc.p99_ms / base.p99_ms),
        *_lean_rows(http),
        Row("service", "RSS idle: minimal FastAPI app (baseline)", rss["baseline"], "MiB"),
        Row("service", "RSS idle: mt5gate serve", rss["idle"], "MiB",
            "baseline idle", rss["idle"] / rss["baseline"]),
        Row("service", "RSS after GET symbols (every simulated market built): mt5gate serve",
            rss["symbols"], "MiB", "idle", rss["symbols"] / rss["idle"]),
        Row("service", "RSS after the tick benchmark: mt5gate serve", rss["loaded"], "MiB",
            "after GET symbols", rss["loaded"] / rss["symbols"]),
    ]  # fmt: skip


if __name__ == "__main__":
    import argparse

    from bench.report import render

    parser = argparse.ArgumentParser(description="the service benchmarks alone")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(render(all_rows(args.repeat, args.quick, verbose=True)))
