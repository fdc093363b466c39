"""What the client makes of the other end of a bridge:// URL (issue 21).

Nothing there, a wrong token, something that is not a bridge (the gateway's HTTP port), or a
bridge: each ``initialize()`` failure says which, and the session's error carries the hint for
it (never "check the terminal path", never the token). A bridge says in its welcome what it
serves, so a simulator behind it is labelled SIMULATED.

The "other ends" are real TCP servers on loopback: a BridgeServer, and for what is not a bridge
a socket server on a named thread that answers what an HTTP server, or a stranger, answers.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mt5gate.bridge.server import BridgeServer
from mt5gate.errors import MT5InitError
from mt5gate.session import MT5SessionManager, Timeouts
from mt5gate.terminal.bridge import BridgeTerminal
from tests.bridge.conftest import OPENED, TOKEN, CountingTerminal, ServedBridge, new_sim

HTTP_REPLY = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\nInvalid HTTP request"


class Stranger:
    """A TCP server on 127.0.0.1 that answers every connection with ``reply`` (None: says
    nothing and waits) and closes it; served by one named thread, stopped by ``close()``."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="test-stranger")
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                peer, _ = self.listener.accept()
            except TimeoutError:
                continue
            with peer:
                peer.settimeout(2.0)
                try:
                    peer.recv(4096)  # the client's hello
                    if self.reply is None:
                        self.stopping.wait(3.0)
                    else:
                        peer.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def stranger(request: pytest.FixtureRequest) -> Iterator[Stranger]:
    served = Stranger(request.param)
    yield served
    served.close()


def _initialize(port: int, token: str = TOKEN) -> tuple[int, str]:
    terminal = BridgeTerminal("127.0.0.1", port, token=token, connect_timeout_s=1.0)
    OPENED.append(terminal)
    assert terminal.initialize() is False
    return terminal.last_error()


@pytest.mark.parametrize("stranger", [HTTP_REPLY], indirect=True)
def test_an_http_port_is_not_a_bridge(stranger: Stranger) -> None:
    """``HTTP`` read as a frame length is 1,213,486,160 bytes: said as what it is."""
    code, text = _initialize(stranger.port)
    assert code == -10003
    assert text == (f"IPC initialize failed, 127.0.0.1:{stranger.port} is not an mt5gate bridge "
                    "(it answered HTTP: is this the gateway's port?)")  # fmt: skip
    assert "1213486160" not in text
    assert "1,213,486,160" not in text


@pytest.mark.parametrize("stranger", [b"\x15\x03\x01\x00\x02\x02\x46"], indirect=True)
def test_a_tls_alert_says_the_bridge_serves_tls(stranger: Stranger) -> None:
    """A TLS server that answers a plain hello with an alert record (protocol_version)."""
    code, text = _initialize(stranger.port)
    assert code == -10003
    assert text.startswith(f"IPC initialize failed, 127.0.0.1:{stranger.port} is not an mt5gate "
                           "bridge (it answered with a TLS alert; a bridge that serves TLS "
                           "(mt5gate bridge --tls-cert) needs tls = true")  # fmt: skip


@pytest.mark.parametrize(
    ("stranger", "said"),
    [(b"\xff\xff\xff\xff and more", "its first reply begins b'\\xff\\xff\\xff\\xff'"),
     (b"\x00\x00\x00\x03abc", "its first reply is no bridge welcome")],
    indirect=["stranger"],
)  # fmt: skip
def test_any_implausible_first_reply_is_not_a_bridge(stranger: Stranger, said: str) -> None:
    code, text = _initialize(stranger.port)
    assert code == -10003
    assert f"127.0.0.1:{stranger.port} is not an mt5gate bridge ({said}" in text


@pytest.mark.parametrize("stranger", [None], indirect=True)
def test_a_silent_peer_gives_no_answer_to_the_handshake(stranger: Stranger) -> None:
    code, text = _initialize(stranger.port)
    assert (code, text) == (-10003, f"IPC initialize failed, bridge 127.0.0.1:{stranger.port}: "
                                    "no answer to the handshake (IPC timeout)")  # fmt: skip


def _session_error(url: str, token: str = TOKEN) -> MT5InitError:
    """What ``connect()`` of a session on ``url`` raises."""
    session = MT5SessionManager(terminal=url, terminal_token=token, login=5001,
                                password="sim-pass-5001", server="MetaQuotes-Demo",
                                timeouts=Timeouts(connect_s=3.0))  # fmt: skip

    async def main() -> MT5InitError:
        try:
            with pytest.raises(MT5InitError) as caught:
                await session.connect()
            return caught.value
        finally:
            await session.close()

    return asyncio.run(main())


def test_the_session_says_what_is_at_the_other_end(free_port: int) -> None:
    nothing = _session_error(f"bridge://127.0.0.1:{free_port}")
    assert f"no mt5gate bridge listening at 127.0.0.1:{free_port}" in nothing.message
    assert nothing.hint.startswith("Start the bridge there (mt5gate bridge --token-file FILE")
    http = Stranger(HTTP_REPLY)
    try:
        not_a_bridge = _session_error(f"bridge://127.0.0.1:{http.port}")
    finally:
        http.close()
    assert "is not an mt5gate bridge (it answered HTTP" in not_a_bridge.message
    assert "not at an HTTP port such as the gateway's" in not_a_bridge.hint
    bridge = ServedBridge(new_sim())
    try:
        wrong = _session_error(f"bridge://127.0.0.1:{bridge.port}", token="not-the-right-one")
    finally:
        bridge.close()
    assert wrong.message.endswith("refused the token')")
    assert wrong.hint.startswith("Give this side the same token as the bridge")
    for error in (nothing, not_a_bridge, wrong):
        assert "terminal path" not in str(error)
        assert "not-the-right-one" not in str(error)
        assert TOKEN not in str(error)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ what the bridge serves


class _OldBridge(BridgeServer):
    """A bridge from before the ``simulated`` member: only ``terminal`` names its kind."""

    def server_info(self) -> dict[str, Any]:
        info = super().server_info()
        del info["simulated"]
        return info


@pytest.mark.parametrize(
    ("terminal", "options", "simulated"),
    [("sim", {}, True),  # a simulator handed over in code: the bridge sees what it is
     ("wrapped", {"terminal_kind": "sim"}, True),  # mt5gate bridge --terminal sim
     ("wrapped", {"terminal_kind": "official"}, False),  # what it cannot see into, it trusts
     ("wrapped", {"terminal_kind": "sim", "server_class": _OldBridge}, True),
     ("wrapped", {"server_class": _OldBridge}, False)],
)  # fmt: skip
def test_the_welcome_says_whether_the_terminal_is_simulated(
    terminal: str, options: dict[str, Any], simulated: bool
) -> None:
    served = ServedBridge(new_sim() if terminal == "sim" else CountingTerminal(new_sim()),
                          **options)  # fmt: skip
    try:
        client = served.client()
        assert client.simulated is False  # nothing is known before the handshake
        assert client.initialize(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo")
        assert client.simulated is simulated
        assert client.server_info is not None
        assert "path" not in str(client.server_info).lower()
    finally:
        served.close()
    if "server_class" not in options:
        assert served.server.server_info()["simulated"] is simulated
