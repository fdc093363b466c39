"""A loopback TCP proxy in front of the bridge that can hold a gateway's ``order_send`` on the
wire: the one place a paused owner's send can still be once it has left the process.

The bridge's frames are a 4-byte big-endian length and a msgpack body (``mt5gate.terminal.wire``)
in which the function name travels as plain bytes. Once :meth:`HoldingProxy.arm` is called,
the first client frame naming ``order_send`` is not forwarded: it, and everything after it on
that connection, waits in the proxy until :meth:`HoldingProxy.release`. Replies are never held.
That is a network delay (Toxiproxy's ``latency`` on one direction, for one request), which no
timeout of the sender can take back: the frame left the gateway, so only the receiver, by its
fencing rule, can still refuse it.

Threads: one accept thread and two pumps per connection, all named, daemonic, and ended by
:meth:`HoldingProxy.close` (which closes every socket they block on).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import Final

__all__ = ["HoldingProxy"]

_HOST: Final = "127.0.0.1"
_NEEDLE: Final = b"order_send"


@dataclass(slots=True)
class _Link:
    """One proxied connection and the frames it holds back."""

    client: socket.socket
    server: socket.socket
    held: list[bytes] | None = None
    threads: list[threading.Thread] = field(default_factory=list)


class HoldingProxy:
    """127.0.0.1:``port`` -> 127.0.0.1:``target`` (module docstring)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server((_HOST, 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._armed = False
        self.caught = threading.Event()  # an order_send is being held
        self._links: list[_Link] = []
        self._accepting = threading.Thread(target=self._accept, name="chaos-proxy-accept",
                                           daemon=True)  # fmt: skip
        self._accepting.start()

    def arm(self) -> None:
        """Hold the next ``order_send`` frame (and what follows it on its connection)."""
        with self._lock:
            self._armed = True

    def release(self) -> int:
        """Forward every held frame now; how many there were."""
        with self._lock:
            count = 0
            for link in self._links:
                for frame in link.held or ():
                    link.server.sendall(frame)
                    count += 1
                link.held = None
            return count

    def close(self) -> None:
        """Close every socket; the threads end on their closed sockets."""
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            for sock in (link.client, link.server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for link in links:
            for thread in link.threads:
                thread.join(5.0)
        self._accepting.join(5.0)

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((_HOST, self.target))
            link = _Link(client, server)
            number += 1
            link.threads = [
                threading.Thread(target=self._upstream, args=(link,), daemon=True,
                                 name=f"chaos-proxy-{number}-up"),
                threading.Thread(target=self._downstream, args=(link,), daemon=True,
                                 name=f"chaos-proxy-{number}-down"),
            ]  # fmt: skip
            with self._lock:
                self._links.append(link)
            for thread in link.threads:
                thread.start()

    def _upstream(self, link: _Link) -> None:
        """Client -> server, frame by frame (a frame is only ever held whole)."""
        pending = b""
        while True:
            try:
                data = link.client.recv(65536)
            except OSError:
                return
            if not data:
                return
            pending += data
            while len(pending) >= 4:
                size = 4 + int.from_bytes(pending[:4], "big")
                if len(pending) < size:
                    break
                frame, pending = pending[:size], pending[size:]
                self._forward(link, frame)

    def _forward(self, link: _Link, frame: bytes) -> None:
        with self._lock:
            if link.held is None and self._armed and _NEEDLE in frame:
                self._armed, link.held = False, []
                self.caught.set()
            if link.held is not None:
                link.held.append(frame)
                return
        try:
            link.server.sendall(frame)
        except OSError:
            return

    @staticmethod
    def _downstream(link: _Link) -> None:
        """Server -> client, unchanged."""
        while True:
            try:
                data = link.server.recv(65536)
                if not data:
                    return
                link.client.sendall(data)
            except OSError:
                return
