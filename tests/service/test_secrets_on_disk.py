"""Secrets stay out of logs and other users' reach (audit A8).

* A key sent as ``?api_key=...`` is refused, and must not be written whole into the access log
  (or any line the service writes): query values are masked, the path stays.
* The data directory is created 0700, the API key file and the simulator's state file 0600,
  with those modes from the start (the tests clear the umask, so a mode that came from it would
  show). An existing directory other users can enter is reported, not changed; an existing
  secret file they could read is set to 0600 and reported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from mt5gate.cli.target import AccountChoice, build_session, close_session, resolve_target
from mt5gate.service import cli
from mt5gate.service.auth import verify
from mt5gate.service.config import default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.logs import QueryRedactingFilter, log_config, redact_query
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.service.conftest import start_service

SECRETS = ("mg_in-the-query-0123456789", "tok-9876543210", "mg_websocket-query-key-42")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_umask() -> Iterator[None]:
    """A umask of 0 while the test runs: modes must come from how files are created."""
    previous = os.umask(0)
    yield
    os.umask(previous)


# ---------------------------------------------------------------------- logs


def test_query_values_are_masked_in_the_service_log(tmp_path: Path) -> None:
    served = start_service(tmp_path)
    try:
        with served.client(key="") as http:
            refused = http.get("/v1/accounts", params={"api_key": SECRETS[0]})
            alive = http.get(f"/livez?token={SECRETS[1]}&debug")
        port = served.base.rsplit(":", 1)[1]
        url = f"ws://127.0.0.1:{port}/v1/stream?api_key={SECRETS[2]}"
        with connect(url, additional_headers={"X-API-Key": served.key}) as ws:
            ws.send('{"op": "ping"}')
            ws.recv(timeout=10)
        time.sleep(0.3)  # the access line is written after the response
    finally:
        _, output = served.stop()
    assert (refused.status_code, alive.status_code) == (401, 200)
    for secret in SECRETS:
        assert secret not in output
    assert '"GET /v1/accounts?api_key=*** HTTP/1.1" 401' in output
    assert '"GET /livez?token=***&*** HTTP/1.1" 200' in output
    assert "WebSocket /v1/stream?api_key=***" in output


def test_the_filter_masks_messages_and_arguments() -> None:
    line = ("1.2.3.4:5", "GET", "/v1/x?api_key=s3cret&a=1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s" %d', line,
                               None)  # fmt: skip
    named = logging.LogRecord("mt5gate", logging.WARNING, "", 0, "see %(url)s",
                              None, None)  # fmt: skip
    named.args = {"url": "https://example.invalid/hook?sig=s3cret", "n": 3}
    bare = logging.LogRecord("mt5gate", logging.WARNING, "", 0, "GET /a?b=s3cret", None, None)
    for item in (record, named, bare):
        assert QueryRedactingFilter().filter(item)
        assert "s3cret" not in item.getMessage()
    assert record.getMessage() == '1.2.3.4:5 - "GET /v1/x?api_key=***&a=***" 200'
    assert redact_query("no query? none here") == "no query? none here"
    config = log_config()
    assert all(h["filters"] == ["redact_query"] for h in config["handlers"].values())
    assert config["root"]["handlers"] == ["plain"]


# ---------------------------------------------------------------------- files


def test_a_new_data_directory_and_key_file_are_private_from_the_start(
    tmp_path: Path, no_umask: None
) -> None:
    data = tmp_path / "fresh" / ".mt5gate"
    settings = default_settings().model_copy(update={"data_dir": data})
    _, key_file = cli.local_key(settings)
    assert key_file is not None
    assert (mode(data), mode(key_file)) == (0o700, 0o600)


def test_a_loose_data_directory_is_reported_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "shared"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    gateway = Gateway.build(default_settings().model_copy(update={"data_dir": data}), {})
    try:
        assert mode(data) == 0o755
        assert f"chmod 700 {data}" in caplog.text
    finally:
        asyncio.run(gateway.stop())


def test_a_loose_key_file_is_tightened_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    _, key_file = cli.local_key(settings)
    assert key_file is not None
    key_file.chmod(0o644)
    again, _ = cli.local_key(settings)
    assert mode(key_file) == 0o600
    assert "mode 644" in caplog.text
    assert "make a new one" in caplog.text
    assert verify(key_file.read_text().strip(), again.api_keys[0].hash)  # still the same key


def test_the_simulators_state_file_is_private(tmp_path: Path, no_umask: None) -> None:
    state = tmp_path / "new-folder" / "sim-demo.json"
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(), state_file=state)
    assert sim.initialize(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo")
    tick = sim.symbol_info_tick("EURUSD")
    assert tick is not None
    sim.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                    "price": tick.ask, "type_filling": 1})  # fmt: skip
    sim.shutdown()
    assert (mode(state.parent), mode(state)) == (0o700, 0o600)


def test_the_cli_tightens_a_loose_state_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"MT5GATE_DATA_DIR": str(tmp_path)}
    target = resolve_target(AccountChoice(), env)
    SimTerminal(SimConfig(history_days=1)).save_state(target.state_file)
    target.state_file.chmod(0o644)
    session = build_session(target, env)
    asyncio.run(close_session(session))
    assert mode(target.state_file) == 0o600
    assert f"{target.state_file} was open to other users (mode 644)" in caplog.text
