"""The systemd units of ``deploy/systemd``: ``systemd-analyze verify`` and ``security`` on them,
and each unit's ``ExecStart=`` run as a real process the way systemd would run it: its
credentials in a private directory, its environment from ``Environment=`` and the example
environment file, its state directory, working directory and umask. This machine has
``systemd-analyze`` but no running systemd, so the hardening settings are checked by
``systemd-analyze``, not enforced."""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import httpx

from mt5gate.terminal.bridge import BridgeTerminal

from .files import (
    SYSTEMD,
    Sandbox,
    Started,
    Unit,
    exec_start,
    free_port,
    installed,
    read_unit,
    seconds,
    start_unit,
    unit_environment,
)

SERVE = SYSTEMD / "mt5gate-serve.service"
BRIDGE = SYSTEMD / "mt5gate-bridge.service"
#: The simulator's hedging demo account, which the example serve.toml names.
PASSWORD = "sim-pass-5001"
HEDGING = {"login": 5001, "password": PASSWORD, "server": "MetaQuotes-Demo"}
#: The bridge's simulated clock starts on a Tuesday morning: forex trades through it any day.
OPEN_MARKET = "--sim-start 2026-01-06T10:00"


def analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path is not None, "systemd-analyze is needed (Debian: apt-get install systemd)"
    return path


def rendered(folder: Path, *units: Path) -> list[Path]:
    """The units with ExecStart= pointing at this environment's mt5gate (verify checks that
    the program exists)."""
    paths = []
    for unit in units:
        path = folder / unit.name
        path.write_text(installed(unit.read_text(encoding="utf-8")), encoding="utf-8")
        paths.append(path)
    return paths


def load(path: Path) -> Unit:
    return read_unit(path, installed(path.read_text(encoding="utf-8")))


def status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.TransportError:
        return None


# ------------------------------------------------------------------ systemd-analyze


def test_systemd_analyze_verifies_both_units_without_a_warning(tmp_path: Path) -> None:
    done = subprocess.run(
        [analyze(), "verify", *map(str, rendered(tmp_path, SERVE, BRIDGE))],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_verify_reports_what_a_broken_unit_gets_wrong(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a program that is not there."""
    (path,) = rendered(tmp_path, SERVE)
    text = path.read_text().replace("ProtectSystem=", "ProtectSystm=")
    path.write_text(text.replace(installed("/opt/mt5gate"), "/nonexistent/mt5gate"))
    done = subprocess.run([analyze(), "verify", str(path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, check=False)  # fmt: skip
    assert done.returncode != 0
    assert "Unknown key 'ProtectSystm'" in done.stderr
    assert "/nonexistent/mt5gate/bin/mt5gate is not executable" in done.stderr


def test_the_units_are_hardened_and_do_not_restart_on_a_configuration_error(
    tmp_path: Path,
) -> None:
    for path in rendered(tmp_path, SERVE, BRIDGE):
        done = subprocess.run([analyze(), "security", "--offline=yes", str(path)],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        level = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
        assert level is not None, done.stdout + done.stderr
        assert float(level.group(1)) <= 2.0, done.stdout
        unit = load(path)
        assert unit.value("Service", "ProtectSystem") == "strict"
        assert unit.value("Service", "NoNewPrivileges") == "yes"
        assert unit.value("Service", "Restart") == "on-failure"
        assert "2" in unit.value("Service", "RestartPreventExitStatus").split()
        assert "root" not in unit.values("Service", "User")
    serve, bridge = load(SERVE), load(BRIDGE)
    assert bridge.value("Service", "DynamicUser") == "yes"
    sysusers = (SYSTEMD / "mt5gate.sysusers.conf").read_text(encoding="utf-8")
    assert re.search(rf"^u {serve.value('Service', 'User')} ", sysusers, re.MULTILINE)
    # the service drains requests for up to 20 s when stopped: the unit must wait longer
    assert seconds(serve.value("Service", "TimeoutStopSec")) > 20


# ------------------------------------------------------------------ the bridge unit


def start_bridge(root: Path, token: str, args: str = "") -> tuple[Started, int]:
    """The bridge unit's ExecStart with its token credential, the example bridge.env, and the
    port left to the bridge (0); the port it says it listens on."""
    unit = load(BRIDGE)
    sandbox = Sandbox(root)
    sandbox.load(unit, {"bridge-token": token + "\n"})
    overrides = {"MT5GATE_BRIDGE_PORT": "0", "MT5GATE_BRIDGE_ARGS": args}
    environment = unit_environment(unit, sandbox, SYSTEMD / "bridge.env", overrides)
    argv = exec_start(unit, sandbox, environment)
    assert argv[argv.index("--token-file") + 1] == str(sandbox.credentials / "bridge-token")
    assert token not in " ".join(argv)
    bridge = start_unit(unit, argv, environment, sandbox)
    listening = "mt5gate bridge listening on 127.0.0.1:"
    bridge.wait_for("the bridge", lambda: listening in bridge.output())
    port = int(bridge.output().split(listening)[1].split()[0])
    return bridge, port


def test_the_bridge_unit_serves_a_client_holding_its_token_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    token = secrets.token_urlsafe(32)
    bridge, port = start_bridge(tmp_path, token, OPEN_MARKET)
    try:
        credential = tmp_path / "credentials" / "bridge-token"
        client = BridgeTerminal("127.0.0.1", port, token=credential.read_text().strip())
        assert client.initialize(**HEDGING) is True, client.last_error()
        tick = client.symbol_info_tick("EURUSD")
        assert tick is not None
        sent = client.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                                  "type_filling": 1, "price": tick.ask})  # fmt: skip
        assert sent is not None, client.last_error()
        assert sent.retcode == 10009
        client.close()
        intruder = BridgeTerminal("127.0.0.1", port, token="not-" + token)
        assert intruder.initialize(**HEDGING) is False
        intruder.close()
    finally:
        code, took = bridge.stop()
    assert code == 0, bridge.output()
    assert took < seconds(bridge.unit.value("Service", "TimeoutStopSec"))
    output = bridge.output()
    assert "SIMULATED" in output
    assert token not in output
    # the simulator's ledger is kept in the state directory (--state-file)
    state = (tmp_path / "state" / "mt5gate-bridge" / "sim.json").read_text()
    assert str(sent.order) in state


# ------------------------------------------------------------------ the serve unit


def test_the_serve_unit_reaches_the_bridge_unit_serves_health_and_orders_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """The two units together, as the example files configure them: serve's account is the
    bridge's simulated terminal; its password and the bridge token are credentials. (The
    bridge's clock is not pinned here: serve judges a bridged terminal's tick age on the
    machine's clock, and an old pinned day fails that check.)"""
    token = secrets.token_urlsafe(32)
    bridge, bridge_port = start_bridge(tmp_path / "bridge", token)
    try:
        serve, data_dir, base = start_serve(tmp_path / "serve", token, bridge_port)
        try:
            check_serving(base, data_dir)
        finally:
            code, took = serve.stop()
        # uvicorn ends a graceful shutdown by raising the SIGTERM it caught again, so the
        # process ends by that signal: systemd counts SIGTERM as a clean exit
        # (SuccessExitStatus=), as it does exit status 0.
        assert code in (0, -signal.SIGTERM), serve.output()
        assert took < seconds(serve.unit.value("Service", "TimeoutStopSec"))
        output = serve.output()
        assert "Application shutdown complete" in output
        assert (data_dir / "main-orders.db").is_file()
        # the journal was closed: SQLite removes its write-ahead log with the last connection
        assert not (data_dir / "main-orders.db-wal").exists()
        for secret in (token, PASSWORD):
            assert secret not in output
    finally:
        assert bridge.stop()[0] == 0


def start_serve(root: Path, token: str, bridge_port: int) -> tuple[Started, Path, str]:
    """The serve unit's ExecStart with the example serve.toml (pointed at the bridge's port)
    and serve.env, on a free loopback port; waits until its account is ready."""
    unit = load(SERVE)
    sandbox = Sandbox(root)
    config = (SYSTEMD / "serve.toml").read_text(encoding="utf-8")
    assert config.count("bridge://127.0.0.1:18812") == 1
    sandbox.load(unit, {
        "serve.toml": config.replace("127.0.0.1:18812", f"127.0.0.1:{bridge_port}"),
        "mt5-password": PASSWORD + "\n",
        "bridge-token": token + "\n",
    })  # fmt: skip
    port = free_port()
    environment = unit_environment(unit, sandbox, SYSTEMD / "serve.env",
                                   {"MT5GATE_PORT": str(port)})  # fmt: skip
    argv = exec_start(unit, sandbox, environment)
    assert argv[1:] == ["serve", "--config", str(sandbox.credentials / "serve.toml")]
    serve = start_unit(unit, argv, environment, sandbox)
    base = f"http://127.0.0.1:{port}"
    serve.wait_for("/readyz", lambda: status(base + "/readyz") == 200)
    assert f"mt5gate serve: http://127.0.0.1:{port}" in serve.output()  # loopback only
    return serve, sandbox.state / "mt5gate", base


def check_serving(base: str, data_dir: Path) -> None:
    """Health answers without a key; the local key in the state directory places an order."""
    health = httpx.get(base + "/v1/health", timeout=10)
    assert health.status_code == 200, health.text
    assert health.headers["content-type"].startswith("application/health+json")
    assert health.json()["status"] in ("pass", "warn")
    assert data_dir.stat().st_mode & 0o777 == 0o700
    key_file = data_dir / "api-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    headers = {"X-API-Key": key_file.read_text().strip(), "Idempotency-Key": "deploy-unit-1"}
    order = {"symbol": "BTCUSD", "side": "buy", "volume": 0.01}  # it trades every day
    placed = httpx.post(base + "/v1/accounts/main/orders", json=order, headers=headers, timeout=30)
    assert placed.status_code == 201, placed.text


# ------------------------------------------------------------------ exit status 2


def test_a_missing_secret_exits_2_which_neither_unit_restarts(tmp_path: Path) -> None:
    """An empty credential is a configuration problem: both programs exit 2 at once, the code
    both units' RestartPreventExitStatus= names."""
    runs = [
        (load(SERVE), "serve.env", {"serve.toml": (SYSTEMD / "serve.toml").read_text(),
                                    "mt5-password": "", "bridge-token": "token\n"}),
        (load(BRIDGE), "bridge.env", {"bridge-token": ""}),
    ]  # fmt: skip
    for unit, env_file, credentials in runs:
        sandbox = Sandbox(tmp_path / unit.name)
        sandbox.load(unit, credentials)
        environment = unit_environment(unit, sandbox, SYSTEMD / env_file, {})
        started = start_unit(unit, exec_start(unit, sandbox, environment), environment, sandbox)
        try:
            code = started.process.wait(timeout=60)
        finally:
            started.kill()
        assert code == 2, started.output()
        assert "is empty" in started.output()
        assert "2" in unit.value("Service", "RestartPreventExitStatus").split()
