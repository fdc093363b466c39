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

Every call, from every client, runs on the one :class:`TerminalWorker` the server owns, so the
terminal sees one thread and one call at a time. ``last_error()`` is read in the same worker job
right after the call and travels with the reply, so no other client's call can slip in between.

Fencing (:mod:`mt5gate.terminal.fencing`): the server keeps the highest epoch any client has
shown (one terminal is one account) and checks each call against it in the same worker job,
right before the call: a refused call never reaches the terminal, and a stale call queued behind
a newer owner's first call is refused, not run after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.metadata
import ipaddress
import logging
import ssl
from collections import OrderedDict
from typing import Any, Final, Protocol

from mt5gate.terminal.base import TERMINAL_FUNCTIONS, Terminal, TerminalFencedError
from mt5gate.terminal.fencing import EpochFence
from mt5gate.terminal.wire import (
    MAX_HELLO_FRAME,
    MAX_REPLY_FRAME,
    MAX_REQUEST_FRAME,
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    ProtocolError,
    Request,
    call_deadline,
    decode_mapping,
    decode_request,
    encode_error,
    encode_fenced,
    encode_frame,
    encode_mapping,
    encode_reply,
    frame_length,
    request_id_of,
)
from mt5gate.terminal.worker import (
    DeadlineExceededError,
    TerminalWorker,
    WorkerClosedError,
    WorkerStuckError,
)

__all__ = ["BridgeServer"]

log = logging.getLogger("mt5gate.bridge")

_ALLOWED: Final = frozenset(TERMINAL_FUNCTIONS)
_DISCONNECTS: Final = (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError)


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
    """Serves one :class:`Terminal` to ``BridgeTerminal`` clients (``await start()``/``close()``).

    ``terminal_kind`` ("sim", "official", ...) is announced to clients in the handshake.
    ``max_connections`` bounds authenticated clients, ``max_handshakes`` the sockets still
    waiting to send their hello (for at most ``handshake_timeout_s``; see the module docstring).
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
        self.worker = TerminalWorker("mt5gate-bridge-terminal")
        self._state = _state_file_of(terminal)
        self.fence = EpochFence()  # used on the worker thread only
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()  # every open connection
        # connections waiting for their hello, oldest first, with their writer and peer
        self._pending: OrderedDict[asyncio.Task[Any], tuple[asyncio.StreamWriter, object]] = (
            OrderedDict()
        )
        self._clients: set[asyncio.Task[Any]] = set()  # authenticated connections
        self.calls = 0  # calls handed to the terminal, for tests and metrics

    def __repr__(self) -> str:
        state = "serving" if self._server is not None else "stopped"
        tls = "tls" if self.ssl_context is not None else "plain"
        return f"<BridgeServer {self.host}:{self.port} {tls} {state} kind={self.terminal_kind}>"

    # ------------------------------------------------------------------ life cycle

    @property
    def port(self) -> int:
        """The bound port (the requested one until started; useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting connections; the worker thread starts with it."""
        self._server = await asyncio.start_server(
            self._serve,
            self.host,
            self.requested_port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=self.handshake_timeout_s if self.ssl_context else None,
        )
        self.worker.start()
        tls = "TLS" if self.ssl_context is not None else "plain TCP, no TLS"
        log.info("bridge serving the %s terminal on %s:%s (%s)", self.terminal_kind,
                 self.host, self.port, tls)  # fmt: skip
        if not is_loopback(self.host):
            log.warning(
                "bridge listens on %s, which is not loopback: anyone who can reach port %s and "
                "holds the token can trade on this terminal%s",
                self.host, self.port, "" if self.ssl_context else "; traffic is NOT encrypted",
            )  # fmt: skip

    async def close(self) -> None:
        """Stop accepting, drop every connection, and join the worker thread."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.worker.close(timeout_s=1.0)

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- connections

    @property
    def pending(self) -> int:
        """Connections waiting for their hello now."""
        return len(self._pending)

    @property
    def clients(self) -> int:
        """Authenticated connections now."""
        return len(self._clients)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: handshake within its budget, then requests until the peer goes away."""
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            self._admit_pending(task, writer, peer)
            if await self._handshake(reader, writer, peer, task):
                log.info("bridge: %s connected", peer)
                await self._requests(reader, writer, peer)
        except ProtocolError as error:
            log.warning("bridge: closing %s: %s", peer, error)
        except _DISCONNECTS as error:
            log.debug("bridge: %s went away: %r", peer, error)
        except asyncio.CancelledError:
            log.debug("bridge: closing %s (evicted, or the server is closing)", peer)
        except Exception:  # a bug here must cost one connection, never the server
            log.exception("bridge: internal error on the connection of %s", peer)
        finally:
            self._connections.discard(task)
            self._pending.pop(task, None)
            self._clients.discard(task)
            await _close_writer(writer)
            log.debug("bridge: %s closed", peer)

    def _admit_pending(
        self, task: asyncio.Task[Any], writer: asyncio.StreamWriter, peer: object
    ) -> None:
        """Count a new socket as pending; evict the oldest pending ones over the budget."""
        while len(self._pending) >= self.max_handshakes:
            oldest, (oldest_writer, oldest_peer) = self._pending.popitem(last=False)
            self._evict(oldest, oldest_writer, oldest_peer)
        self._pending[task] = (writer, peer)

    def _evict(self, task: asyncio.Task[Any], writer: asyncio.StreamWriter, peer: object) -> None:
        """Close a pending connection now, with a "busy" word in case it is a real client."""
        limit = self.max_handshakes
        log.warning("bridge: closed %s: no hello yet, and %d newer connections wait for theirs "
                    "(max_handshakes)", peer, limit)  # fmt: skip
        message = f"the bridge lets at most {limit} connections wait for their handshake"
        writer.write(encode_frame(_refusal("busy", message)))  # harmless if the peer is gone
        task.cancel()

    async def _read_frame(self, reader: asyncio.StreamReader, limit: int, timeout: float) -> bytes:
        async with asyncio.timeout(timeout):
            length = frame_length(await reader.readexactly(4), limit)
            return await reader.readexactly(length)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, body: bytes) -> None:
        writer.write(encode_frame(body))
        await writer.drain()

    async def _refuse(self, writer: asyncio.StreamWriter, kind: str, message: str) -> None:
        await self._send(writer, _refusal(kind, message))

    async def _handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: object,
        task: asyncio.Task[Any],
    ) -> bool:
        """Check the hello frame; True when the client may call.

        From the hello's arrival to its verdict nothing awaits: a connection leaves the pending
        budget and, if welcome, joins the clients in one step.
        """
        try:
            body = await self._read_frame(reader, MAX_HELLO_FRAME, self.handshake_timeout_s)
        except TimeoutError:
            log.info("bridge: closing %s: no hello within %g s", peer, self.handshake_timeout_s)
            return False
        self._pending.pop(task, None)
        try:
            refusal = self._check_hello(decode_mapping(body)) or self._check_capacity()
        except ProtocolError as error:
            refusal = ("malformed", f"bad handshake: {error}")
        if refusal is not None:
            log.warning("bridge: handshake of %s refused: %s", peer, refusal[1])
            await self._refuse(writer, *refusal)
            return False
        self._clients.add(task)
        await self._send(writer, encode_mapping(self.server_info()))
        return True

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

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        while True:
            body = await self._read_frame(reader, self.max_frame, self.idle_timeout_s)
            await self._send(writer, await self.answer(body, peer))

    async def answer(self, body: bytes, peer: object = None) -> bytes:
        """The reply frame body for one request frame body (never raises)."""
        try:
            request = decode_request(body)
        except ProtocolError as error:
            return encode_error(request_id_of(body), "malformed", str(error))
        if request.function not in _ALLOWED:
            name = request.function[:64]
            return encode_error(request.request_id, "denied",
                                f"{name!r} is not one of the 32 terminal functions")  # fmt: skip
        return await self._call(request, peer)

    async def _call(self, request: Request, peer: object) -> bytes:
        rid = request.request_id
        try:
            result, last_error = await self.worker.run(
                request.function,
                self._job(request, peer),
                call_deadline(request.function, request.args, request.kwargs, self.call_timeout_s),
            )
        except TerminalFencedError as refused:
            log.warning("bridge: refused %s() of %s: %s", request.function, peer, refused)
            return encode_fenced(rid, refused.highest, str(refused))
        except TypeError as error:  # the terminal's own argument convention
            return encode_error(rid, "TypeError", str(error))
        except DeadlineExceededError as error:
            return encode_error(rid, "timeout", str(error))
        except (WorkerStuckError, WorkerClosedError) as error:
            return encode_error(rid, "busy", str(error))
        except Exception as error:
            log.exception("bridge: %s() raised", request.function)
            return encode_error(rid, "internal", f"{type(error).__name__}: {error}")
        await self._durable()
        return self._encode_result(rid, request.function, result, last_error)

    async def _durable(self) -> None:
        """A simulator with a state file: what the call changed is on disk before its reply.
        The fdatasync runs off the worker thread, so the next client's call goes on meanwhile
        and a later fdatasync covers both (group commit)."""
        if self._state is not None and self._state.state_unsynced:
            await asyncio.to_thread(self._state.sync_state)

    def _job(self, request: Request, peer: object) -> Any:
        """The worker job: the fencing check, the call and, in the same job, its
        ``last_error()``. Check and call are one step on the one worker thread, so no other
        client's call (a newer owner's epoch) can come between them."""
        terminal, fence, function = self.terminal, self.fence, request.function
        args, kwargs, epoch = request.args, request.kwargs, request.epoch

        def job() -> tuple[Any, tuple[int, str]]:
            if fence.admit(function, epoch):
                log.info("bridge: %s holds fencing epoch %d now", peer, epoch)
            self.calls += 1
            result = getattr(terminal, function)(*args, **kwargs)
            return result, tuple(terminal.last_error())  # type: ignore[return-value]

        return job

    def _encode_result(self, rid: int, function: str, result: Any, last_error: Any) -> bytes:
        try:
            body = encode_reply(rid, result, last_error)
        except (TypeError, ValueError) as error:
            log.error("bridge: cannot send the result of %s(): %s", function, error)
            return encode_error(rid, "internal", f"unsendable result: {error}")
        if len(body) + 4 > self.max_reply_frame:
            log.warning("bridge: the reply of %s() is %d bytes, over the %d-byte limit",
                        function, len(body), self.max_reply_frame)  # fmt: skip
            return encode_error(rid, "too_large", f"the reply of {function}() is {len(body)} "
                                f"bytes, over the {self.max_reply_frame}-byte limit")  # fmt: skip
        return body


class _StateFile(Protocol):
    """A simulator that keeps a state file (:class:`~mt5gate.sim.terminal.SimTerminal`)."""

    @property
    def state_unsynced(self) -> bool: ...

    def defer_state_sync(self) -> None: ...

    def sync_state(self) -> None: ...


def _state_file_of(terminal: object) -> _StateFile | None:
    """The terminal, set to leave its state file's fdatasync to the reply (see ``_durable``),
    if it has one; looked up on its class, so a wrapper that records every attribute it is
    asked for (tests) is not called."""
    if not hasattr(type(terminal), "defer_state_sync"):
        return None
    state: _StateFile = terminal  # type: ignore[assignment]
    state.defer_state_sync()
    return state


def _is_simulator(terminal: object) -> bool:
    """Whether ``terminal`` is mt5gate's simulator (by its class's module: nothing imported)."""
    return type(terminal).__module__.startswith("mt5gate.sim.")


def _refusal(kind: str, message: str) -> bytes:
    """The body of a refused handshake."""
    return encode_mapping({"ok": False, "kind": kind, "message": message})


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
