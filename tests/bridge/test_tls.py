"""BridgeTerminal over real TLS on loopback: the certificate checked against a TLS server name
(``server_hostname``) when the bridge is reached at an IP address, and a failed handshake told
in ``last_error()`` with its reason (untrusted issuer, name mismatch, a bridge without TLS).

The bridges are real BridgeServers on 127.0.0.1; the certificates are issued by a test CA made
with the ``openssl`` command (:mod:`tests.bridge.certificates`)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mt5gate.errors import MT5InitError
from mt5gate.session.resolve import resolve_terminal
from mt5gate.terminal.bridge import BridgeTerminal
from mt5gate.terminal.tls import checked_server_name

from .certificates import issued, make_ca
from .conftest import HEDGING, TOKEN, ServedBridge, new_sim

INIT_FAILED = -10003


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the test CA, a certificate it issued for ``bridge.test`` only (no IP
    address in it), and another CA that issued nothing the bridges use."""
    folder = tmp_path_factory.mktemp("pki")
    issued(folder, "bridge", "DNS:bridge.test")
    make_ca(folder, "other-ca")
    return folder


@pytest.fixture(scope="module")
def tls_bridge(pki: Path) -> Iterator[ServedBridge]:
    """A TLS bridge on 127.0.0.1 whose certificate is issued for ``bridge.test``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "bridge.pem", pki / "bridge-key.pem")
    served = ServedBridge(new_sim(), ssl_context=context)
    yield served
    served.close()


def trusting(pki: Path, ca: str = "test-ca") -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / f"{ca}.pem"))


def test_a_certificate_for_another_name_than_the_url_host_needs_the_server_name(
    pki: Path, tls_bridge: ServedBridge
) -> None:
    by_address = tls_bridge.client(ssl_context=trusting(pki))
    assert by_address.initialize(**HEDGING) is False
    code, text = by_address.last_error()
    assert code == INIT_FAILED
    assert "TLS: certificate verify failed: IP address mismatch" in text
    assert f"(bridge 127.0.0.1:{tls_bridge.port};" in text
    assert "not issued for '127.0.0.1'" in text
    assert "tls_server_name" in text
    assert not by_address.connected

    named = tls_bridge.client(ssl_context=trusting(pki), server_hostname="bridge.test")
    assert named.initialize(**HEDGING) is True
    assert named.symbol_info_tick("EURUSD") is not None
    assert named.server_info is not None
    assert "tls (bridge.test)" in repr(named)


def test_a_wrong_server_name_fails_with_the_reason(pki: Path, tls_bridge: ServedBridge) -> None:
    wrong = tls_bridge.client(ssl_context=trusting(pki), server_hostname="Other.Test")
    assert wrong.initialize(**HEDGING) is False
    code, text = wrong.last_error()
    assert code == INIT_FAILED
    assert "TLS: certificate verify failed: Hostname mismatch" in text
    assert "not issued for 'other.test'" in text  # names compare lower-cased
    assert f"bridge 127.0.0.1:{tls_bridge.port}" in text
    assert TOKEN not in text


def test_the_certificate_is_verified_even_with_a_server_name(
    pki: Path, tls_bridge: ServedBridge
) -> None:
    """The server name changes which name is checked, never whether the issuer is."""
    other = trusting(pki, "other-ca")
    stranger = tls_bridge.client(ssl_context=other, server_hostname="bridge.test")
    assert stranger.initialize(**HEDGING) is False
    text = stranger.last_error()[1]
    assert (f"IPC initialize failed, TLS: certificate verify failed: unable to get local issuer "
            f"certificate [CERTIFICATE_VERIFY_FAILED] (bridge 127.0.0.1:{tls_bridge.port}; "
            "trust the CA") in text  # fmt: skip
    system_cas = ssl.create_default_context()
    system = tls_bridge.client(ssl_context=system_cas, server_hostname="bridge.test")
    assert system.initialize(**HEDGING) is False
    assert "unable to get local issuer certificate" in system.last_error()[1]


def test_a_tls_client_of_a_bridge_without_tls_is_told_so(pki: Path) -> None:
    plain = ServedBridge(new_sim())
    try:
        client = plain.client(ssl_context=trusting(pki), server_hostname="bridge.test")
        assert client.initialize(**HEDGING) is False
        code, text = client.last_error()
        assert code == INIT_FAILED
        assert text.startswith("IPC initialize failed, TLS: the handshake failed: ")
        assert f"(bridge 127.0.0.1:{plain.port}; is the bridge serving TLS?" in text
        assert "_ssl.c" not in text
    finally:
        plain.close()


def test_a_plain_client_of_a_tls_bridge_is_told_to_set_tls(tls_bridge: ServedBridge) -> None:
    """Python's TLS server closes a connection whose first bytes are no TLS handshake, without
    an alert: the plain client hears nothing, and is told the likeliest cause."""
    client = tls_bridge.client()
    assert client.initialize(**HEDGING) is False
    code, text = client.last_error()
    assert code == INIT_FAILED
    where = f"bridge 127.0.0.1:{tls_bridge.port}"
    assert text.startswith(f"IPC initialize failed, {where}: no answer to the handshake (IPC "
                           "recv failed); the connection was closed")  # fmt: skip
    assert "needs tls = true for this account, with tls_ca_file" in text


def test_a_plain_client_told_no_by_a_bridge_gets_no_tls_hint() -> None:
    plain = ServedBridge(new_sim())
    try:
        client = plain.client(token="mg_not-the-token")
        assert client.initialize(**HEDGING) is False
        assert "tls" not in client.last_error()[1]
    finally:
        plain.close()


@pytest.mark.parametrize(
    "name", ["bridge.test", "BRIDGE.test", "localhost", "a-1.b", "127.0.0.1", "::1", "x" * 63]
)
def test_server_names_that_are_host_names_or_addresses(name: str) -> None:
    assert checked_server_name(name) == name.lower()


@pytest.mark.parametrize(
    "name",
    ["", " ", "https://bridge.test", "bridge.test:443", "*.bridge.test", "bridge..test",
     "-bridge.test", "bridge-.test", "bridge test", "bridge.test.", "1.2.3", "x" * 64, "é.test"],
)  # fmt: skip
def test_other_server_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match="must be the host name the bridge's certificate is "):
        checked_server_name(name)
    with pytest.raises(ValueError, match="must be the host name"):
        BridgeTerminal("127.0.0.1", 1, token=TOKEN, ssl_context=ssl.create_default_context(),
                       server_hostname=name)  # fmt: skip


def test_a_server_name_needs_tls() -> None:
    with pytest.raises(ValueError, match=r"server_hostname .* give ssl_context too"):
        BridgeTerminal("127.0.0.1", 1, token=TOKEN, server_hostname="bridge.test")
    token = SecretStr(TOKEN)
    with pytest.raises(MT5InitError, match="give ssl_context too"):
        resolve_terminal("bridge://127.0.0.1:1", token=token, server_hostname="bridge.test")
    context = ssl.create_default_context()
    with pytest.raises(MT5InitError, match="server_hostname must be the host name"):
        resolve_terminal("bridge://127.0.0.1:1", token=token, ssl_context=context,
                         server_hostname="a b")  # fmt: skip


def test_resolve_terminal_passes_the_server_name(pki: Path, tls_bridge: ServedBridge) -> None:
    url = f"bridge://127.0.0.1:{tls_bridge.port}"
    terminal = resolve_terminal(url, token=SecretStr(TOKEN), ssl_context=trusting(pki),
                                server_hostname="bridge.test")  # fmt: skip
    assert isinstance(terminal, BridgeTerminal)
    assert terminal.server_hostname == "bridge.test"
    try:
        assert terminal.initialize(**HEDGING) is True
    finally:
        terminal.close()
