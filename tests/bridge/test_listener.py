"""The bridge's listener: one accepting thread, stopped at once by close(), that survives a
failure to take one connection."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from mt5gate.bridge.listener import Listener


def test_a_failure_to_take_one_connection_costs_only_that_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    taken: list[socket.socket] = []
    accepted = threading.Event()

    def on_accept(sock: socket.socket, peer: object) -> None:
        if not taken:
            taken.append(sock)  # the socket is closed by the listener after the failure
            raise RuntimeError("a bug taking the connection")
        taken.append(sock)
        accepted.set()

    listener = Listener("127.0.0.1", 0, on_accept)
    listener.start()
    try:
        with caplog.at_level(logging.ERROR, logger="mt5gate.bridge"):
            first = socket.create_connection(("127.0.0.1", listener.port), 5.0)
            assert first.recv(1) == b""  # closed by the listener
            second = socket.create_connection(("127.0.0.1", listener.port), 5.0)
            assert accepted.wait(5.0)
        assert "internal error taking the connection of ('127.0.0.1'" in caplog.text
        assert taken[1].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close(5.0)
        for sock in (*taken, first, second):
            sock.close()


def test_close_stops_the_thread_at_once_and_frees_the_port() -> None:
    listener = Listener("127.0.0.1", 0, lambda sock, peer: sock.close())
    listener.start()
    port = listener.port
    started = time.monotonic()
    listener.close(5.0)
    assert time.monotonic() - started < 2.0
    assert "mt5gate-bridge-accept" not in [t.name for t in threading.enumerate()]
    socket.create_server(("127.0.0.1", port)).close()  # the port is free again
