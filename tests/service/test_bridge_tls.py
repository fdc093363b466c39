"""``mt5gate serve`` reaching a real ``mt5gate bridge`` process over TLS (``tls = true`` and
``tls_ca_file`` on a ``bridge://`` account): a tick read through the verified connection, and
an account whose CA does not match failing with a clear certificate error, not a hang.

The certificates are made here with the ``openssl`` command (self-signed, for 127.0.0.1)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bridge.conftest import TOKEN, BridgeProcess

from .conftest import Served, start_service


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (``openssl req -x509``)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, BridgeProcess]]:
    """A TLS bridge process (a simulator on a weekday morning), and a service with two accounts
    on it: ``secure`` trusts the bridge's certificate, ``stranger`` trusts another one."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder, "bridge")
    self_signed(folder, "other")
    token = folder / "bridge-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    bridge = BridgeProcess("--token-file", str(token), "--tls-cert", str(cert),
                           "--tls-key", str(key))  # fmt: skip
    account = (
        '[[accounts]]\nname = "{name}"\nterminal = "bridge://127.0.0.1:{port}"\n'
        'login = 5001\nserver = "MetaQuotes-Demo"\npassword_env = "SIM_PASSWORD"\n'
        'token_file = "bridge-token"\ntls = true\ntls_ca_file = "{ca}"\n'
    )
    config = folder / "mt5gate.toml"
    secure = account.format(name="secure", port=bridge.port, ca="bridge.pem")
    stranger = account.format(name="stranger", port=bridge.port, ca="other.pem")
    config.write_text(secure + "\n" + stranger)
    try:
        served = start_service(folder / "data", "--config", str(config), wait_ready=False,
                               env={"SIM_PASSWORD": "sim-pass-5001"})  # fmt: skip
    except BaseException:
        bridge.stop()
        raise
    yield served, bridge
    served.stop()
    bridge.stop()


def _until(check: httpx.Client, path: str, status: int, timeout_s: float = 60.0) -> httpx.Response:
    """GET ``path`` until it answers ``status`` (the account connects in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check.get(path)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _logged(served: Served, text: str, timeout_s: float = 60.0) -> None:
    """Wait until the service has logged ``text``."""
    deadline = time.monotonic() + timeout_s
    while text not in served.output():
        assert time.monotonic() < deadline, served.output()[-3000:]
        time.sleep(0.1)


def test_the_service_reads_a_tick_through_a_verified_tls_bridge(
    tls_service: tuple[Served, BridgeProcess],
) -> None:
    served, _ = tls_service
    with served.client() as http:
        answer = _until(http, "/v1/accounts/secure/symbols/EURUSD/tick", 200)
        assert answer.status_code == 200, (answer.text, served.output()[-3000:])
        tick = answer.json()
        assert tick["ask"] > tick["bid"] > 0
        account = http.get("/v1/accounts/secure").json()
    assert account["login"] == 5001
    _logged(served, "account secure: its bridge")  # connected, and says what the bridge serves
    assert TOKEN not in served.output()


def test_a_bridge_certificate_the_ca_does_not_sign_fails_clearly(
    tls_service: tuple[Served, BridgeProcess],
) -> None:
    served, _ = tls_service
    _logged(served, "account stranger: connect failed")
    lines = [line for line in served.output().splitlines() if "account stranger" in line]
    failed = next(line for line in lines if "connect failed" in line)
    assert "CERTIFICATE_VERIFY_FAILED" in failed
    assert "Traceback" not in served.output()
    assert not any("account stranger connected" in line for line in lines)
    with served.client() as http:
        started = time.monotonic()
        answer = http.get("/v1/accounts/stranger/symbols/EURUSD/tick")
        assert time.monotonic() - started < 10  # refused, not left hanging
        assert answer.status_code == 503
        ready = httpx.get(served.base + "/readyz", timeout=5).json()
    assert ready["accounts"] == {"secure": True, "stranger": False}
    assert answer.json()["title"] == "Account not ready"
