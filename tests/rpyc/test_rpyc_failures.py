"""Lost, refused, hung and foreign servers give the real module's IPC failures, never a hang
or an RPyC exception: ``None`` / ``False`` and ``last_error()`` (semantics §2.4, §2.5)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from mt5gate.terminal.rpyc_client import RPyCTerminal
from tests.rpyc.classic_server import ClassicServer
from tests.rpyc.conftest import HEDGING
from tests.rpyc.contract_path import RPyCDriver

NO_IPC = (-10004, "No IPC connection")
RECV_FAILED = (-10002, "IPC recv failed")
TIMEOUT = (-10005, "IPC timeout")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def own_server() -> Iterator[ClassicServer]:
    """A classic server subprocess of this test alone (it may be killed)."""
    with ClassicServer() as server:
        yield server


def test_calls_before_initialize_are_not_connected() -> None:
    terminal = RPyCTerminal("127.0.0.1", _free_port())
    assert terminal.last_error() == (1, "Success")
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    assert terminal.symbol_select("EURUSD", True) is False
    assert terminal.initialize() is False  # nothing listens there
    code, text = terminal.last_error()
    assert code == -10003
    assert text.startswith("IPC initialize failed, RPyC server")
    assert "unreachable" in text
    terminal.shutdown()  # not connected: nothing to forward
    assert terminal.last_error() == NO_IPC
    terminal.close()
    terminal.close()


def test_server_killed_then_restarted_on_the_same_port(own_server: ClassicServer) -> None:
    terminal = RPyCTerminal(own_server.host, own_server.port, connect_timeout_s=2.0)
    assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    own_server.stop()
    assert terminal.account_info() is None
    assert terminal.last_error() == RECV_FAILED
    assert not terminal.connected
    assert terminal.symbol_info_tick("EURUSD") is None
    assert terminal.last_error() == NO_IPC
    assert terminal.initialize(**HEDGING) is False
    assert terminal.last_error()[0] == -10003
    with ClassicServer(port=own_server.port) as again:
        assert again.port == own_server.port
        assert terminal.initialize(**HEDGING) is True  # reconnects
        assert terminal.account_info() is not None
    terminal.close()


def test_connection_cut_under_the_client(own_server: ClassicServer) -> None:
    with RPyCTerminal.from_url(own_server.url) as terminal:
        assert terminal.initialize(**HEDGING) is True, terminal.last_error()
        terminal._conn._channel.stream.close()
        assert terminal.order_send({"action": 1}) is None
        assert terminal.last_error() == RECV_FAILED
        assert terminal.initialize(**HEDGING) is True, terminal.last_error()
        assert terminal.version() is not None
    assert not terminal.connected


def test_a_hung_call_times_out_and_the_next_initialize_reconnects(
    own_server: ClassicServer,
) -> None:
    control = own_server.connect()
    control.execute("import time, MetaTrader5\nMetaTrader5.version = lambda: time.sleep(3)\n")
    terminal = RPyCTerminal(own_server.host, own_server.port, call_timeout_s=0.3)
    assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    assert terminal.version() is None
    assert terminal.last_error() == TIMEOUT
    assert not terminal.connected
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    assert terminal.initialize(**HEDGING) is True  # a new connection, a new server thread
    assert terminal.account_info() is not None
    terminal.close()
    control.close()


def test_login_deadlines_never_cut_a_login_short() -> None:
    """pitfall A8: RPyC's own timeout fired before a slow login finished."""
    terminal = RPyCTerminal("127.0.0.1", 1, call_timeout_s=65.0)
    assert terminal._login_deadline(60000) == 65.0
    assert terminal._login_deadline(120000) == 125.0
    assert terminal._login_deadline("60000") == 65.0


def test_other_remote_exceptions_become_runtime_errors(
    mt5: RPyCTerminal, driver: RPyCDriver
) -> None:
    driver.conn.execute(
        "import MetaTrader5\n"
        "_saved = MetaTrader5.terminal_info\n"
        "def _broken():\n"
        "    raise KeyError('boom')\n"
        "MetaTrader5.terminal_info = _broken\n"
    )
    try:
        with pytest.raises(RuntimeError, match=r"terminal_info\(\) raised KeyError"):
            mt5.terminal_info()
    finally:
        driver.conn.execute("import MetaTrader5\nMetaTrader5.terminal_info = _saved\n")
    assert mt5.terminal_info() is not None


def test_a_server_that_is_not_rpyc() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def accept_and_hang_up() -> None:
        connection, _ = listener.accept()
        connection.close()

    threading.Thread(target=accept_and_hang_up, daemon=True).start()
    terminal = RPyCTerminal("127.0.0.1", listener.getsockname()[1], connect_timeout_s=2.0)
    assert terminal.initialize() is False
    code, text = terminal.last_error()
    assert code == -10003
    assert "not an RPyC classic server" in text
    listener.close()


def test_an_rpyc_server_that_is_not_classic() -> None:
    with ClassicServer(service="VoidService") as server:
        terminal = RPyCTerminal(server.host, server.port, connect_timeout_s=2.0)
        assert terminal.initialize() is False
        code, text = terminal.last_error()
        assert code == -10003
        assert "not an RPyC classic server with MetaTrader5" in text
        assert not terminal.connected
