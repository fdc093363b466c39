"""Frames that do not arrive one per read: split, dribbled or back to back, on both ends.

The bridge server and the client take a frame that arrives whole in one read without buffering;
these tests drive the other paths, and the client's deadline across many reads.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import msgspec
import pytest

from mt5gate.terminal import wire as p
from mt5gate.terminal.bridge import BridgeTerminal

from .conftest import HEDGING, TOKEN, RawClient, ServedBridge


def request(rid: int, function: str, *args: object) -> bytes:
    return p.encode_frame(msgspec.msgpack.encode([rid, function, list(args), {}]))


def test_a_request_split_across_reads_is_answered(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    assert raw.handshake()["ok"] is True
    frame = request(1, "initialize")
    for piece in (frame[:2], frame[2:5], frame[5:]):  # the header itself split in two
        raw.send(piece)
        time.sleep(0.05)
    assert raw.recv_frame() == [1, True, [True, [1, "Success"]]]


def test_requests_back_to_back_in_one_read_are_answered_in_order(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    assert raw.handshake()["ok"] is True
    raw.send(request(1, "initialize") + request(2, "version") + request(3, "terminal_info"))
    replies = [raw.recv_frame() for _ in range(3)]
    assert [reply[0] for reply in replies] == [1, 2, 3]
    assert all(reply[1] is True for reply in replies)


def test_a_hello_and_a_request_in_one_read(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    raw.send(p.encode_frame(p.hello(TOKEN)) + request(1, "initialize"))
    assert raw.recv_frame()["ok"] is True
    assert raw.recv_frame() == [1, True, [True, [1, "Success"]]]


def test_a_frame_over_the_limit_closes_the_connection(bridge: ServedBridge) -> None:
    raw = bridge.raw()
    assert raw.handshake()["ok"] is True
    raw.send(p.HEADER.pack(p.MAX_REQUEST_FRAME + 1) + b"x" * 16)
    assert raw.closed_by_peer()


# ------------------------------------------------------------------------- the client end


class Dribbler:
    """A one-connection server that welcomes the client, then sends each reply ``pieces`` bytes
    at a time with ``pause`` seconds between them."""

    def __init__(self, pieces: int, pause: float) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pieces, self.pause = pieces, pause
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            raw = RawClient.__new__(RawClient)
            raw.sock = conn
            raw.recv_frame()  # the hello
            conn.sendall(p.encode_frame(p.encode_mapping(
                {"ok": True, "protocol": p.PROTOCOL_NAME, "version": 1})))  # fmt: skip
            try:
                while not self.stop.is_set():
                    rid = raw.recv_frame()[0]
                    self.dribble(conn, p.encode_frame(p.encode_reply(rid, True, (1, "Success"))))
            except (ConnectionError, OSError):
                return

    def dribble(self, conn: socket.socket, frame: bytes) -> None:
        for start in range(0, len(frame), self.pieces):
            if self.stop.is_set():
                return
            conn.sendall(frame[start : start + self.pieces])
            time.sleep(self.pause)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def dribbler() -> Iterator[Callable[[int, float], Dribbler]]:
    opened: list[Dribbler] = []

    def make(pieces: int, pause: float) -> Dribbler:
        opened.append(Dribbler(pieces, pause))
        return opened[-1]

    yield make
    for server in opened:
        server.close()


def test_a_reply_in_pieces_is_read_whole(dribbler: Callable[[int, float], Dribbler]) -> None:
    server = dribbler(3, 0.01)
    terminal = BridgeTerminal("127.0.0.1", server.port, token=TOKEN, call_timeout_s=10.0)
    try:
        assert terminal.initialize(**HEDGING) is True
        assert terminal.version() is True  # the scripted reply to every call
        assert terminal.last_error() == (1, "Success")
    finally:
        terminal.close()


def test_a_reply_dribbled_past_the_deadline_is_an_ipc_timeout(
    dribbler: Callable[[int, float], Dribbler],
) -> None:
    # every read brings a byte in well under the deadline; the deadline is the call's, not a read's
    server = dribbler(1, 0.15)
    terminal = BridgeTerminal("127.0.0.1", server.port, token=TOKEN, call_timeout_s=1.0,
                              connect_timeout_s=10.0)  # fmt: skip
    try:
        started = time.monotonic()
        assert terminal.initialize(**HEDGING) is False
        assert time.monotonic() - started < 2.5  # the reply's 30-odd bytes would take ~5 s
        assert terminal.last_error() == (-10005, "IPC timeout")
    finally:
        terminal.close()
