"""One accepted bridge socket: blocking framed reads and writes, by one thread at a time.

A link is served by its connection thread (and, after a call outlived its deadline, by the
thread that relieves it; never by two at once). Other threads only *wake* it: ``wake()`` shuts
the socket down under the thread blocked in ``recv`` so that it returns at once (the server
evicting a socket that has not said hello, or closing), and never reads or writes it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time

from mt5gate.terminal.wire import HEADER, frame_length

__all__ = ["Link", "PeerClosedError"]

_CHUNK = 65536


class PeerClosedError(ConnectionError):
    """The peer closed its end, or the server woke the link to close it."""


class Link:
    """A connected socket with a read buffer; ``peer`` is its address, for logs."""

    def __init__(self, sock: socket.socket, peer: object) -> None:
        self.sock = sock
        self.peer = peer
        self.evicted = False  # set under the server's lock: it closes without serving
        self._buffer = bytearray()
        self._swap = threading.Lock()  # wake() never meets the socket half-wrapped in TLS

    def __repr__(self) -> str:
        return f"<Link {self.peer!r}>"

    def start_tls(self, context: ssl.SSLContext, deadline: float) -> None:
        """The server side of the TLS handshake, finished by ``deadline``."""
        with self._swap:
            self.sock = context.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False
            )
        self.sock.settimeout(_remaining(deadline))
        self.sock.do_handshake()  # CPython bounds the whole handshake by the timeout

    def set_timeout(self, seconds: float) -> None:
        """Each later read or send may block this long."""
        self.sock.settimeout(seconds)

    def read_frame(self, limit: int, deadline: float | None = None) -> bytes:
        """The next frame's body; within ``deadline`` (monotonic) if given, else each read
        within the socket's timeout. FrameTooLargeError over ``limit``."""
        buffer = self._buffer
        if not buffer:  # the usual case: a whole request in one read, taken as it is
            chunk = self._recv(_CHUNK, deadline)
            if len(chunk) >= 4 and len(chunk) == 4 + frame_length(chunk[:4], limit):
                return chunk[4:]
            buffer += chunk
        if len(buffer) < 4:
            self._fill(4, deadline)
        end = 4 + frame_length(bytes(buffer[:4]), limit)
        if len(buffer) < end:
            self._fill(end, deadline)
        body = bytes(buffer[4:end])
        del buffer[:end]
        return body

    def _fill(self, size: int, deadline: float | None) -> None:
        buffer = self._buffer
        while len(buffer) < size:
            buffer += self._recv(max(_CHUNK, size - len(buffer)), deadline)

    def _recv(self, size: int, deadline: float | None) -> bytes:
        if deadline is not None:
            self.sock.settimeout(_remaining(deadline))
        chunk = self.sock.recv(size)
        if not chunk:
            raise PeerClosedError("the peer closed the connection")
        return chunk

    def send(self, body: bytes) -> None:
        """One frame, in one system call when the socket takes it."""
        self.sock.sendall(HEADER.pack(len(body)) + body)

    def wake(self, how: int = socket.SHUT_RDWR) -> None:
        """From another thread: make the serving thread's blocked read return (SHUT_RD leaves
        it able to send a last word). Errors mean the socket is already gone."""
        with self._swap, contextlib.suppress(OSError):  # the TCP socket under any TLS layer
            socket.socket.shutdown(self.sock, how)

    def close(self) -> None:
        self.sock.close()


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining
