"""The bridge server: one terminal, served over TCP to authenticated clients, call by call.

Safety comes from what the server does *not* do: it evaluates nothing, resolves no attributes
from the wire beyond the 32 names of :data:`~mt5gate.terminal.base.TERMINAL_FUNCTIONS`, unpickles
nothing and copies every value. Each connection must present the token (compared in constant
time) before its first call; frames are size-limited; connections are counted and time out.

Connections are counted in two budgets, so that sockets without the token cannot lock out the
clients that hold it. A socket that has not yet sent its hello is *pending*: at most
``max_handshakes`` are pending at once, each for at most ``handshake_timeout_s``, and a new
socket that finds the budget full closes the *oldest* pending one at once. A real client sends
its hello the moment it connects and is authenticated within a round trip, so however many idle
sockets an attacker keeps opening, a real client gets in unless the attacker opens
``max_handshakes`` new sockets within that round trip (a flood, for a firewall to stop).
Closing the newcomer instead would let an attacker who refreshes ``max_handshakes`` idle sockets
every ``handshake_timeout_s`` keep every real client out for good. Authenticated clients count
against ``max_connections`` only, and are always served while under it.

Each connection is served by its own thread with blocking sockets (named
``mt5gate-bridge-conn-N``, started, counted and joined by the server): it reads a request, runs
the call on the terminal itself and writes the reply, with no hand-off to another thread. The
:class:`~mt5gate.bridge.gate.TerminalGate` lets one thread at a time into the terminal, so the
terminal still sees one call at a time; ``last_error()`` is read right after the call while the
thread is still inside, and travels with the reply, so no other client's call can slip in
between. The gate keeps the deadlines: a call waits for its turn within its deadline ("timeout"
past it), a call that outlives its deadline in the terminal is answered "timeout" by the gate's
watchdog while a fresh thread takes over its connection, and while it stays stuck new calls are
answered "busy". One more thread accepts connections (``mt5gate-bridge-accept``).

Fencing (:mod:`mt5gate.terminal.fencing`): the server keeps the highest epoch any client has
shown (one terminal is one account) and checks each call against it inside the gate, right
before the call: a refused call never reaches the terminal, and a stale call waiting behind a
newer owner's first call is refused, not run after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.metadata
import ipaddress
import itertools
import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from typing import Any, Final

from mt5gate.bridge.calls import CallAnswerer, HandedOverError
from mt5gate.bridge.gate import TerminalGate
from mt5gate.bridge.link import Link
from mt5gate.bridge.listener import Listener
from mt5gate.terminal.base import Terminal
from mt5gate.terminal.fencing import EpochFence
from mt5gate.terminal.wire import (
    MAX_HELLO_FRAME,
    MAX_REPLY_FRAME,
    MAX_REQUEST_FRAME,
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    ProtocolError,
    decode_mapping,
    encode_mapping,
)

__all__ = ["BridgeServer"]

log = logging.getLogger("mt5gate.bridge")

_DISCONNECTS: Final = (ConnectionError, TimeoutError, ssl.SSLError)
_JOIN_S: Final = 2.0  # how long stop() waits for the threads, together


def _mt5gate_version() -> str:
    try:
        return importlib.metadata.version("mt5gate")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "unknown"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost`` (no DNS lookup)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BridgeServer:
    """Serves one :class:`Terminal` to ``BridgeTerminal`` clients, on threads it owns.

    ``listen()`` / ``stop()``, or ``await start()`` / ``await close()`` from asyncio code, or
    either as a context manager. ``terminal_kind`` ("sim", "official", ...) is announced to
    clients in the handshake. ``max_connections`` bounds authenticated clients,
    ``max_handshakes`` the sockets still waiting to send their hello (for at most
    ``handshake_timeout_s``; see the module docstring).
    """

    def __init__(
        self,
        terminal: Terminal,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 18812,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 16,
        max_handshakes: int = 8,
        max_frame: int = MAX_REQUEST_FRAME,
        max_reply_frame: int = MAX_REPLY_FRAME,
        handshake_timeout_s: float = 5.0,
        call_timeout_s: float = 65.0,
        idle_timeout_s: float = 900.0,
        terminal_kind: str = "custom",
    ) -> None:
        if not token:
            raise ValueError("the bridge needs a non-empty token")
        if max_connections < 1 or max_handshakes < 1 or handshake_timeout_s <= 0:
            raise ValueError("max_connections, max_handshakes and handshake_timeout_s must be > 0")
        if call_timeout_s <= 0 or idle_timeout_s <= 0:
            raise ValueError("call_timeout_s and idle_timeout_s must be > 0")
        self.terminal = terminal
        self._token = token.encode()
        self.host = host
        self.requested_port = port
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.max_handshakes = max_handshakes
        self.max_frame = max_frame
        self.max_reply_frame = max_reply_frame
        self.handshake_timeout_s = handshake_timeout_s
        self.call_timeout_s = call_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.terminal_kind = terminal_kind
        # every call's deadline is at least call_timeout_s (call_deadline): the watchdog's horizon
        self.gate = TerminalGate("mt5gate-bridge-watchdog", horizon_s=call_timeout_s)
        self._answerer = CallAnswerer(terminal, self.gate, self._hand_over,
                                      call_timeout_s=call_timeout_s,
                                      max_reply_frame=max_reply_frame)  # fmt: skip
        self._lock = threading.Lock()  # guards everything below
        self._closing = False
        self._listener: Listener | None = None
        self._links: set[Link] = set()  # every open connection
        self._pending: OrderedDict[Link, None] = OrderedDict()  # waiting for hello, oldest first
        self._clients: set[Link] = set()  # authenticated connections
        self._threads: set[threading.Thread] = set()  # connection threads alive
        self._serial = itertools.count(1)

    def __repr__(self) -> str:
        state = "serving" if self._listener is not None else "stopped"
        tls = "tls" if self.ssl_context is not None else "plain"
        return f"<BridgeServer {self.host}:{self.port} {tls} {state} kind={self.terminal_kind}>"

    @property
    def fence(self) -> EpochFence:
        """The highest fencing epoch shown to this bridge, and the rule it applies."""
        return self._answerer.fence

    @fence.setter
    def fence(self, fence: EpochFence) -> None:
        self._answerer.fence = fence

    @property
    def calls(self) -> int:
        """Calls handed to the terminal so far, for tests and metrics."""
        return self._answerer.calls

    # ------------------------------------------------------------------ life cycle

    @property
    def port(self) -> int:
        """The bound port (the requested one until started; useful with port 0)."""
        listener = self._listener
        return self.requested_port if listener is None else listener.port

    def listen(self) -> None:
        """Bind, and accept and serve connections on this server's threads (returns at once).
        OSError when the address cannot be bound."""
        if self._closing:
            raise RuntimeError("a stopped bridge server does not start again")
        if self._listener is not None:
            return
        self._listener = Listener(self.host, self.requested_port, self._accept)
        self.gate.start()
        self._listener.start()
        tls = "TLS" if self.ssl_context is not None else "plain TCP, no TLS"
        log.info("bridge serving the %s terminal on %s:%s (%s)", self.terminal_kind,
                 self.host, self.port, tls)  # fmt: skip
        if not is_loopback(self.host):
            log.warning(
                "bridge listens on %s, which is not loopback: anyone who can reach port %s and "
                "holds the token can trade on this terminal%s",
                self.host, self.port, "" if self.ssl_context else "; traffic is NOT encrypted",
            )  # fmt: skip

    def stop(self) -> None:
        """Stop accepting, drop every connection and join every thread. A thread inside a
        terminal call that does not return within a few seconds is left to finish it (logged)."""
        with self._lock:
            self._closing = True
            links = list(self._links)
        if self._listener is not None:
            self._listener.close(_JOIN_S)
        self.gate.close(_JOIN_S)
        for link in links:
            link.wake()
        self._join_threads()
        self._listener = None

    def _join_threads(self) -> None:
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + _JOIN_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [thread.name for thread in threads if thread.is_alive()]
        if left:
            busy = self.gate.busy()
            log.warning("bridge: stopped, but %s still inside the terminal (%s)", ", ".join(left),
                        "idle" if busy is None else f"{busy[0]}() for {busy[1]:.1f} s")  # fmt: skip

    async def start(self) -> None:
        """:meth:`listen`, for asyncio code (binding does not block)."""
        self.listen()

    async def close(self) -> None:
        """:meth:`stop`, off the event loop (it joins threads)."""
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __enter__(self) -> BridgeServer:
        self.listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- accepting

    @property
    def pending(self) -> int:
        """Connections waiting for their hello now."""
        return len(self._pending)

    @property
    def clients(self) -> int:
        """Authenticated connections now."""
        return len(self._clients)

    def _accept(self, sock: socket.socket, peer: object) -> None:
        """The acceptor thread: count a new socket and start its thread."""
        sock.settimeout(self.handshake_timeout_s)  # blocking, whatever the platform inherits
        link = Link(sock, peer)
        with self._lock:
            if self._closing:
                sock.close()
                return
            evicted = self._admit_pending(link)
            self._links.add(link)
            started = self._start_thread(link, None)
        for old in evicted:
            log.warning("bridge: closed %s: no hello yet, and %d newer connections wait for "
                        "theirs (max_handshakes)", old.peer, self.max_handshakes)  # fmt: skip
        if not started:
            self._forget(link)

    def _admit_pending(self, link: Link) -> list[Link]:
        """Lock held: count a new socket as pending; evict the oldest pending ones over the
        budget (their threads wake and close them with a "busy" word)."""
        evicted = []
        while len(self._pending) >= self.max_handshakes:
            oldest, _ = self._pending.popitem(last=False)
            oldest.evicted = True
            oldest.wake(socket.SHUT_RD)
            evicted.append(oldest)
        self._pending[link] = None
        return evicted

    def _start_thread(self, link: Link, first_reply: bytes | None) -> bool:
        """Lock held: a named thread to serve ``link``; False if none could be started."""
        name = f"mt5gate-bridge-conn-{next(self._serial)}"
        thread = threading.Thread(target=self._serve, args=(link, first_reply), name=name,
                                  daemon=True)  # fmt: skip
        try:
            thread.start()
        except RuntimeError as error:  # the process is out of threads
            log.error("bridge: no thread to serve %s: %s", link.peer, error)
            return False
        self._threads.add(thread)
        return True

    def _forget(self, link: Link) -> None:
        with self._lock:
            self._links.discard(link)
            self._pending.pop(link, None)
            self._clients.discard(link)
        link.close()
        log.debug("bridge: %s closed", link.peer)

    # ----------------------------------------------------------------- connections

    def _serve(self, link: Link, first_reply: bytes | None) -> None:
        """One connection's thread: handshake, then requests until the peer goes away; or,
        taking over from a thread stuck in the terminal, ``first_reply`` and then requests."""
        handed_over = False
        try:
            if first_reply is None:
                if not self._handshake(link):
                    return
                log.info("bridge: %s connected", link.peer)
            else:
                link.send(first_reply)
            self._requests(link)
        except HandedOverError:
            handed_over = True
        except ProtocolError as error:
            log.warning("bridge: closing %s: %s", link.peer, error)
        except _DISCONNECTS as error:
            log.debug("bridge: %s went away: %r", link.peer, error)
        except Exception as error:  # a bug here must cost one connection, never the server
            if self._closing and isinstance(error, OSError):  # its socket was shut under it
                log.debug("bridge: %s closed by the stop: %r", link.peer, error)
            else:
                log.exception("bridge: internal error on the connection of %s", link.peer)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
            if not handed_over:
                self._forget(link)

    def _handshake(self, link: Link) -> bool:
        """TLS (if configured) and the hello, within the handshake deadline; True when the
        client may call."""
        deadline = time.monotonic() + self.handshake_timeout_s
        try:
            if self.ssl_context is not None:
                link.start_tls(self.ssl_context, deadline)
            body = link.read_frame(MAX_HELLO_FRAME, deadline)
        except (OSError, ProtocolError) as error:  # OSError: disconnects, timeouts, TLS
            if link.evicted:
                self._say_busy(link)
                return False
            if isinstance(error, TimeoutError):
                log.info("bridge: closing %s: no hello within %g s", link.peer,
                         self.handshake_timeout_s)  # fmt: skip
                return False
            raise
        refusal = self._verdict(link, body)
        if link.evicted:
            self._say_busy(link)
            return False
        if refusal is not None:
            log.warning("bridge: handshake of %s refused: %s", link.peer, refusal[1])
            link.send(_refusal(*refusal))
            return False
        link.send(encode_mapping(self.server_info()))
        return True

    def _verdict(self, link: Link, body: bytes) -> tuple[str, str] | None:
        """The refusal of a hello, or None: then the connection is a client. It leaves the
        pending budget and, if welcome, joins the clients in one step."""
        try:
            refusal = self._check_hello(decode_mapping(body))
        except ProtocolError as error:
            refusal = ("malformed", f"bad handshake: {error}")
        with self._lock:
            if link.evicted:
                return None
            self._pending.pop(link, None)
            if refusal is None:
                refusal = self._check_capacity()
            if refusal is None:
                self._clients.add(link)
        return refusal

    def _say_busy(self, link: Link) -> None:
        """The last word to a socket evicted before its hello (harmless if it is gone)."""
        limit = self.max_handshakes
        message = f"the bridge lets at most {limit} connections wait for their handshake"
        with contextlib.suppress(OSError, ValueError):
            link.send(_refusal("busy", message))

    def _check_capacity(self) -> tuple[str, str] | None:
        """The refusal of an authenticated client over ``max_connections``, or None."""
        if len(self._clients) < self.max_connections:
            return None
        return "busy", f"the bridge serves at most {self.max_connections} connections"

    def _check_hello(self, hello: dict[str, Any]) -> tuple[str, str] | None:
        """``(kind, message)`` of the refusal, or None when the hello is good."""
        if hello.get("protocol") != PROTOCOL_NAME:
            return "malformed", f"not an {PROTOCOL_NAME} client"
        version = hello.get("version")
        if version != PROTOCOL_VERSION or type(version) is not int:
            return ("version", f"client speaks bridge protocol {version!r}, "
                    f"server speaks {PROTOCOL_VERSION}")  # fmt: skip
        token = hello.get("token")
        if type(token) is not str or not hmac.compare_digest(token.encode(), self._token):
            return "denied", "invalid token"
        return None

    def server_info(self) -> dict[str, Any]:
        """What the welcome frame tells a client: the protocol, and what it serves. The
        terminal's kind ("sim", "official", ...) and whether it is mt5gate's simulator
        (``simulated``: a client labels it SIMULATED as it does a local one); never a path or
        anything else of the machine's."""
        return {
            "ok": True,
            "protocol": PROTOCOL_NAME,
            "version": PROTOCOL_VERSION,
            "terminal": self.terminal_kind,
            "simulated": self.terminal_kind == "sim" or _is_simulator(self.terminal),
            "mt5gate": _mt5gate_version(),
            "fencing": True,
        }

    # -------------------------------------------------------------------- requests

    def _requests(self, link: Link) -> None:
        link.set_timeout(self.idle_timeout_s)
        answer = self._answerer.answer
        while True:
            link.send(answer(link.read_frame(self.max_frame), link))

    def answer(self, body: bytes, link: Link | None = None) -> bytes:
        """The reply frame body for one request frame body (see :class:`CallAnswerer`)."""
        return self._answerer.answer(body, link)

    def _hand_over(self, link: Link, reply: bytes) -> bool:
        """The watchdog: serve ``link`` from a fresh thread, which sends ``reply`` first; False
        while the server stops (the stuck thread answers then)."""
        with self._lock:
            return not self._closing and self._start_thread(link, reply)


def _is_simulator(terminal: object) -> bool:
    """Whether ``terminal`` is mt5gate's simulator (by its class's module: nothing imported)."""
    return type(terminal).__module__.startswith("mt5gate.sim.")


def _refusal(kind: str, message: str) -> bytes:
    """The body of a refused handshake."""
    return encode_mapping({"ok": False, "kind": kind, "message": message})
