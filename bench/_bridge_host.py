"""Processes for the benchmark: a bridge over a rich simulated account on a weekday virtual
clock, and the floor it is compared with.

``python -m bench._bridge_host TOKEN`` serves the bridge; ``python -m bench._bridge_host
--echo`` serves the floor: one connection, answered by a bare echo with the bridge's own socket
setup and framing (:class:`~mt5gate.bridge.link.Link`: TCP_NODELAY, a timeout on every read, one
``sendall`` per frame) and nothing else, no codec and no terminal. Each prints its port and
serves until killed.
"""

from __future__ import annotations

import socket
import sys
import threading

from mt5gate.bridge.link import Link
from mt5gate.bridge.server import BridgeServer
from mt5gate.sim import AccountConfig, SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.wire import MAX_REQUEST_FRAME

RICH = AccountConfig(login=9001, password="bench", balance=1e9, limit_orders=5_000)
IDLE_TIMEOUT_S = 900.0  # the bridge's default


def rich_simulator() -> SimTerminal:
    """The simulator every benchmark path hosts (picklable for the child-process path)."""
    config = SimConfig(accounts=(RICH,), history_days=1)
    return SimTerminal(config, clock=VirtualClock(server_ms(2026, 1, 6, 10)))


def serve(token: str) -> None:
    """The bridge, until the process is killed."""
    with BridgeServer(rich_simulator(), token=token, port=0, terminal_kind="sim") as server:
        print(server.port, flush=True)
        threading.Event().wait()


def echo() -> None:
    """The floor, for one connection: every frame comes back as it came."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print(listener.getsockname()[1], flush=True)
        sock, peer = listener.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the bridge sets it
    link = Link(sock, peer)
    link.set_timeout(IDLE_TIMEOUT_S)
    try:
        while True:
            link.send(link.read_frame(MAX_REQUEST_FRAME))
    except ConnectionError:
        return


if __name__ == "__main__":
    if sys.argv[1] == "--echo":
        echo()
    else:
        serve(sys.argv[1])
