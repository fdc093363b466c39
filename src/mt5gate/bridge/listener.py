"""The bridge's listening sockets and the one thread that accepts on them.

The acceptor thread (``mt5gate-bridge-accept``) waits on every listening socket and on a wake-up
socket pair at once, so :meth:`Listener.close` stops it at once on every platform (closing a
socket under a thread blocked in ``accept`` does not wake it on Linux). Each accepted socket, with
TCP_NODELAY set, goes to the ``on_accept`` callback on that thread.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = ["Listener"]

log = logging.getLogger("mt5gate.bridge")

_BACKLOG: Final = 100
_RETRY_S: Final = 1.0  # after accept() failed for want of resources


class Listener:
    """Listens on every address of ``host`` (as asyncio does), all on one port."""

    def __init__(self, host: str, port: int, on_accept: Callable[[socket.socket, object], None]):
        """Bind now (OSError if an address cannot be bound); accept after :meth:`start`."""
        self._sockets = _bind(host, port)
        self._on_accept = on_accept
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="mt5gate-bridge-accept",
                                        daemon=True)  # fmt: skip

    @property
    def port(self) -> int:
        return int(self._sockets[0].getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float) -> None:
        """Stop accepting, join the thread and close the sockets."""
        self._wake[1].send(b"\0")
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        for sock in (*self._sockets, *self._wake):
            sock.close()

    def _run(self) -> None:
        woken = self._wake[0]
        with selectors.DefaultSelector() as selector:
            for listening in self._sockets:
                selector.register(listening, selectors.EVENT_READ)
            selector.register(woken, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is woken:
                        return
                    self._accept(key.fileobj)  # type: ignore[arg-type]

    def _accept(self, listening: socket.socket) -> None:
        try:
            sock, peer = listening.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # the client gave up before it was taken
        except OSError as error:  # out of file descriptors, say: let some close first
            log.error("bridge: cannot accept a connection: %s", error)
            time.sleep(_RETRY_S)
            return
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._on_accept(sock, peer)
        except Exception:  # a bug here must cost one connection, never the acceptor
            log.exception("bridge: internal error taking the connection of %s", peer)
            sock.close()


def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to; with port 0, the first one
    picks the port and the others share it."""
    found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)  # fmt: skip
    bound: list[socket.socket] = []
    try:
        for family, address in dict.fromkeys((info[0], info[4]) for info in found):
            where = address
            if bound and port == 0:
                where = (address[0], bound[0].getsockname()[1], *address[2:])
            listening = socket.create_server(where, family=family, backlog=_BACKLOG)
            listening.setblocking(False)
            bound.append(listening)
    except OSError:
        for listening in bound:
            listening.close()
        raise
    return bound
