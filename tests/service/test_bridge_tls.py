"""``mt5gate serve`` reaching real ``mt5gate bridge`` processes over TLS (``tls = true``,
``tls_ca_file`` and ``tls_server_name`` on a ``bridge://`` account): a tick read through the
verified connection, an account whose CA does not match failing with a clear certificate
error, not a hang, and a bridge whose certificate is issued for ``bridge.test`` reached at
127.0.0.1 through ``tls_server_name``. Why a handshake failed reaches the user: in
``/v1/health`` and in the 503 a request for the account gets, not only in the log.

The certificates are made here with the ``openssl`` command (self-signed, for 127.0.0.1; and
one for ``bridge.test`` only, issued by a test CA)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bridge.certificates import issued
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


#: One account on a TLS bridge: ``{extra}`` holds its further settings.
ACCOUNT = (
    '[[accounts]]\nname = "{name}"\nterminal = "bridge://127.0.0.1:{port}"\n'
    'login = 5001\nserver = "MetaQuotes-Demo"\npassword_env = "SIM_PASSWORD"\n'
    'token_file = "bridge-token"\ntls = true\ntls_ca_file = "{ca}"\n{extra}'
)


@dataclass
class TLSService:
    """The service, its bridge with a certificate for 127.0.0.1, and its bridge whose
    certificate is issued for ``bridge.test`` only."""

    served: Served
    bridge: BridgeProcess
    named: BridgeProcess


@pytest.fixture(scope="module")
def tls_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSService]:
    """Two TLS bridge processes (simulators on a weekday morning), and a service with accounts
    on them. On the bridge certified for 127.0.0.1: ``secure`` trusts its certificate,
    ``stranger`` trusts another one. On the bridge certified for ``bridge.test``, all three
    trusting its CA: ``named`` sets ``tls_server_name = "bridge.test"``, ``unnamed`` sets no
    name (127.0.0.1 is checked), ``misnamed`` sets ``other.test``."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder, "bridge")
    self_signed(folder, "other")
    named_cert, named_key = issued(folder, "named", "DNS:bridge.test")
    token = folder / "bridge-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    started: list[BridgeProcess] = []
    try:
        for pair in ((cert, key), (named_cert, named_key)):
            started.append(BridgeProcess("--token-file", str(token), "--tls-cert", str(pair[0]),
                                         "--tls-key", str(pair[1])))  # fmt: skip
        bridge, named = started
        accounts = [
            ACCOUNT.format(name="secure", port=bridge.port, ca="bridge.pem", extra=""),
            ACCOUNT.format(name="stranger", port=bridge.port, ca="other.pem", extra=""),
            ACCOUNT.format(name="named", port=named.port, ca="test-ca.pem",
                           extra='tls_server_name = "bridge.test"\n'),
            ACCOUNT.format(name="unnamed", port=named.port, ca="test-ca.pem", extra=""),
            ACCOUNT.format(name="misnamed", port=named.port, ca="test-ca.pem",
                           extra='tls_server_name = "other.test"\n'),
        ]  # fmt: skip
        config = folder / "mt5gate.toml"
        config.write_text("\n".join(accounts))
        served = start_service(folder / "data", "--config", str(config), wait_ready=False,
                               env={"SIM_PASSWORD": "sim-pass-5001"})  # fmt: skip
    except BaseException:
        for process in started:
            process.stop()
        raise
    yield TLSService(served, bridge, named)
    served.stop()
    for process in started:
        process.stop()


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


def test_the_service_reads_a_tick_through_a_verified_tls_bridge(tls_service: TLSService) -> None:
    served = tls_service.served
    with served.client() as http:
        answer = _until(http, "/v1/accounts/secure/symbols/EURUSD/tick", 200)
        assert answer.status_code == 200, (answer.text, served.output()[-3000:])
        tick = answer.json()
        assert tick["ask"] > tick["bid"] > 0
        account = http.get("/v1/accounts/secure").json()
    assert account["login"] == 5001
    _logged(served, "account secure: its bridge")  # connected, and says what the bridge serves
    assert TOKEN not in served.output()


def test_a_bridge_certificate_the_ca_does_not_sign_fails_clearly(tls_service: TLSService) -> None:
    served = tls_service.served
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
    assert (ready["accounts"]["secure"], ready["accounts"]["stranger"]) == (True, False)
    assert answer.json()["title"] == "Account not ready"
    # the reason is in the answer, not only in the log
    reason = ("TLS: certificate verify failed: self-signed certificate "
              f"[CERTIFICATE_VERIFY_FAILED] (bridge 127.0.0.1:{tls_service.bridge.port}; "
              "trust the CA")  # fmt: skip
    assert reason in answer.json()["detail"]
    # the service's own advice, not the session's Python one (await session.connect())
    assert answer.json()["hint"].startswith("The gateway connects the account by itself")
    assert "session" not in answer.json()["detail"].split("trust the CA")[1]


def _state_check(served: Served, account: str, expected: str) -> dict[str, Any]:
    """The ``session:state`` check of ``account`` in ``/v1/health``, once its output says
    ``expected`` (the background monitor reads every few seconds)."""
    deadline = time.monotonic() + 60
    with served.client() as http:
        while True:
            body = http.get("/v1/health").json()
            check: dict[str, Any] = body["checks"].get(f"{account}/session:state", [{}])[0]
            if expected in check.get("output", "") or time.monotonic() > deadline:
                assert TOKEN not in json.dumps(body)
                return check
            time.sleep(0.2)


def test_health_says_why_the_tls_handshake_failed(tls_service: TLSService) -> None:
    served = tls_service.served
    check = _state_check(served, "stranger", "TLS: certificate verify failed")
    assert check["status"] == "fail", check
    output = check["output"]
    assert output.startswith("the session is ")  # disconnected, or connecting again
    assert "the last connect attempt failed:" in output
    assert (f"TLS: certificate verify failed: self-signed certificate [CERTIFICATE_VERIFY_FAILED] "
            f"(bridge 127.0.0.1:{tls_service.bridge.port};") in output  # fmt: skip
    assert "Traceback" not in served.output()


def test_a_certificate_for_bridge_test_is_reached_at_127_0_0_1_with_tls_server_name(
    tls_service: TLSService,
) -> None:
    served, port = tls_service.served, tls_service.named.port
    with served.client() as http:
        answer = _until(http, "/v1/accounts/named/symbols/EURUSD/tick", 200)
        assert answer.status_code == 200, (answer.text, served.output()[-3000:])
        assert answer.json()["ask"] > 0
    # without the name, 127.0.0.1 is checked against a certificate for bridge.test
    check = _state_check(served, "unnamed", "TLS: certificate verify failed")
    assert (f"TLS: certificate verify failed: IP address mismatch, certificate is not valid for "
            f"'127.0.0.1' [CERTIFICATE_VERIFY_FAILED] (bridge 127.0.0.1:{port}; the certificate "
            "is not issued for '127.0.0.1': give the name it is issued for as the TLS server "
            "name (tls_server_name") in check["output"]  # fmt: skip
    # a wrong name fails, with the reason
    check = _state_check(served, "misnamed", "TLS: certificate verify failed")
    assert (
        "Hostname mismatch, certificate is not valid for 'other.test' "
        f"[CERTIFICATE_VERIFY_FAILED] (bridge 127.0.0.1:{port};"
    ) in check["output"]
    with served.client() as http:
        refused = http.get("/v1/accounts/misnamed/symbols/EURUSD/tick")
        ready = http.get("/readyz").json()["accounts"]
    assert refused.status_code == 503
    assert "not issued for 'other.test'" in refused.json()["detail"]
    assert (ready["named"], ready["unnamed"], ready["misnamed"]) == (True, False, False)
