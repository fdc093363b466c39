"""``BridgeTerminal``: a Terminal that forwards each call to an mt5gate bridge over TCP.

It behaves like the ``MetaTrader5`` module in one process, with the bridge in place of the
terminal's named pipe:

* ``initialize()`` connects (lazily, and again after a loss), shakes hands, then forwards;
  a refused connection or handshake gives ``False`` with ``(-10003, 'IPC initialize failed, ...')``
  saying why (a failed TLS handshake: ``TLS: certificate verify failed: <reason> (bridge
  host:port)``, see :mod:`mt5gate.terminal.tls`);
* every other call is one round trip; its ``last_error()`` comes back with the reply and is kept
  here, so ``last_error()`` costs nothing and is exactly the terminal's;
* before ``initialize()`` or after a loss, calls return their failure value (``None`` /
  ``False``) with ``(-10004, 'No IPC connection')``; a socket that breaks mid-call gives
  ``(-10001, 'IPC send failed')`` or ``(-10002, 'IPC recv failed')``, a call past its deadline
  ``(-10005, 'IPC timeout')``, and the connection is dropped (a late reply must not be taken
  for the next call's);
* ``shutdown()`` closes this client's connection only, as a process closing its pipe: the
  terminal behind the bridge stays attached for its other clients;
* positional-only and no-argument functions raise ``TypeError`` on keywords or arguments here,
  with the real module's messages; the terminal's own ``TypeError`` is raised here too;
* after ``fence(epoch)`` every request carries the epoch. A call the bridge refuses (a newer
  owner showed a higher epoch; or, from an unfenced client, an ``order_send`` or ``login``
  once an owner has fenced the bridge) raises
  :class:`~mt5gate.terminal.base.TerminalFencedError` and was not executed. A fenced client
  connects only to a bridge that enforces epochs (see :mod:`mt5gate.terminal.wire`).

Blocking and not thread-safe by contract (one session worker calls it); a lock makes misuse
from two threads merely slow, never a crossed reply.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from mt5gate.constants import ResultCode
from mt5gate.terminal.base import (
    Terminal,
    TerminalFencedError,
    check_call_convention,
    failure_value,
)
from mt5gate.terminal.fencing import checked_epoch
from mt5gate.terminal.forwarding import Forwarding, terminal_signature
from mt5gate.terminal.ipc import (
    CALL_FAILED,
    IPC_TIMEOUT,
    NO_IPC,
    RECV_FAILED,
    SEND_FAILED,
    SUCCESS,
    LastError,
    init_failed,
)
from mt5gate.terminal.tls import checked_server_name, describe_tls_failure
from mt5gate.terminal.wire import (
    DEFAULT_PORT,
    FENCED,
    MAX_REPLY_FRAME,
    MAX_REQUEST_FRAME,
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    ProtocolError,
    call_deadline,
    decode_mapping,
    decode_reply,
    encode_frame,
    encode_request,
    fenced_highest,
    frame_length,
    hello,
)

__all__ = ["BridgeTerminal"]

NO_MEMORY: Final = (int(ResultCode.E_NO_MEMORY), "Terminal: Out of memory")
#: The refusal kind of a handshake whose token the bridge did not accept.
_DENIED: Final = "denied"
_CHUNK: Final = 65536
_TIMEOUT_SLACK_S: Final = 0.001  # how far a read may outrun its call's deadline, at most
_NOT_FENCING: Final = (
    "the bridge does not enforce fencing epochs (an mt5gate from before fencing); "
    "upgrade it before a fenced client may use it"
)


class _IPCError(Exception):
    """A round trip failed; ``error`` is the ``last_error()`` the real module would give."""

    def __init__(self, error: LastError) -> None:
        super().__init__(error[1])
        self.error = error


class _Connection:
    """One socket to the bridge: framed send, framed receive within a deadline.

    A call costs the fewest system calls the deadline allows: the socket's timeout is set once
    per call (in ``send``) and set again only before a read that starts more than a
    millisecond later, and a reply that arrives in one piece is taken without buffering.
    """

    def __init__(self, sock: socket.socket, max_reply_frame: int) -> None:
        self.sock = sock
        self.max_reply_frame = max_reply_frame
        self._buffer = bytearray()
        self._timeout_set = -1.0  # monotonic time the socket's timeout was last set

    def send(self, body: bytes, deadline: float) -> None:
        self._set_timeout(deadline)
        try:
            self.sock.sendall(encode_frame(body))
        except TimeoutError:
            raise _IPCError(IPC_TIMEOUT) from None
        except OSError:
            raise _IPCError(SEND_FAILED) from None

    def receive(self, deadline: float, limit: int | None = None) -> bytes:
        limit = limit or self.max_reply_frame
        if not self._buffer:  # the usual case: the whole reply in one read, taken as it is
            chunk = self._recv(_CHUNK, deadline)
            if len(chunk) >= 4 and len(chunk) == 4 + frame_length(chunk[:4], limit):
                return chunk[4:]
            self._buffer += chunk
        length = frame_length(self._read(4, deadline), limit)
        return self._read(length, deadline)

    def receive_welcome(self, deadline: float) -> bytes:
        """The first frame of a connection: :class:`_NotABridgeError` when its header shows
        that something else answers (an HTTP reply begins ``HTTP``, 1,213,486,160 read as a
        length) or announces more than any welcome holds."""
        header = self._read(4, deadline)
        if header == b"HTTP":
            raise _NotABridgeError("it answered HTTP: is this the gateway's port?")
        if header[:2] == _TLS_ALERT:
            raise _NotABridgeError(f"it answered with a TLS alert; {_SERVES_TLS}")
        try:
            length = frame_length(header, MAX_REQUEST_FRAME)
        except ProtocolError:
            raise _NotABridgeError(f"its first reply begins {header!r}") from None
        return self._read(length, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        buffer = self._buffer
        while len(buffer) < n:
            buffer += self._recv(max(_CHUNK, n - len(buffer)), deadline)
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    def _recv(self, size: int, deadline: float) -> bytes:
        if time.monotonic() - self._timeout_set > _TIMEOUT_SLACK_S:
            self._set_timeout(deadline)
        try:
            chunk = self.sock.recv(size)
        except TimeoutError:
            raise _IPCError(IPC_TIMEOUT) from None
        except OSError:
            raise _IPCError(RECV_FAILED) from None
        if not chunk:
            raise _IPCError(RECV_FAILED)
        return chunk

    def _set_timeout(self, deadline: float) -> None:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            raise _IPCError(IPC_TIMEOUT)
        self.sock.settimeout(remaining)
        self._timeout_set = now

    def close(self) -> None:
        self.sock.close()


class BridgeTerminal(Forwarding):
    """The Terminal seam over an mt5gate bridge (``bridge://host:port``).

    Each of the 32 functions is one round trip (:class:`Forwarding` sends it to
    :meth:`_call`), but for ``initialize`` (connects first), ``shutdown`` (closes this
    client's connection only) and ``last_error`` (answered locally). ``login`` switches the
    terminal behind the bridge to another account: all its clients move.

    With ``ssl_context`` the bridge is reached over TLS, its certificate checked against
    ``server_hostname`` (sent as SNI too) when given, else against ``host``: give it when the
    bridge is reached at an IP address or by another name than its certificate's.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        token: str,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout_s: float = 5.0,
        call_timeout_s: float = 65.0,
        max_reply_frame: int = MAX_REPLY_FRAME,
    ) -> None:
        self.host = host
        self.port = port
        self._token = token
        self.ssl_context = ssl_context
        if server_hostname is not None and ssl_context is None:
            raise ValueError("server_hostname is the name a TLS certificate must match: give "
                             "ssl_context too")  # fmt: skip
        #: the name the bridge's certificate must match (None: ``host``)
        self.server_hostname = (
            None if server_hostname is None else checked_server_name(server_hostname)
        )
        self.connect_timeout_s = connect_timeout_s
        self.call_timeout_s = call_timeout_s
        self.max_reply_frame = max_reply_frame
        self.server_info: dict[str, Any] | None = None
        self._connection: _Connection | None = None
        self._error: LastError = SUCCESS
        self._next_id = 0
        self._lock = threading.Lock()
        self._epoch: int | None = None  # carried by every request once fenced
        self._fencing = False  # the connected bridge enforces epochs

    @classmethod
    def from_url(cls, url: str, *, token: str, **options: Any) -> BridgeTerminal:
        """A client for ``bridge://host[:port]`` (port 18812 by default; no token in the URL)."""
        parts = urlsplit(url)
        if parts.scheme != "bridge" or not parts.hostname:
            raise ValueError(f"not a bridge URL: {url!r} (expected bridge://host:port)")
        if parts.username is not None or parts.password is not None:
            raise ValueError("put the bridge token in token=, never in the URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"a bridge URL is bridge://host:port, got {url!r}")
        return cls(parts.hostname, parts.port or DEFAULT_PORT, token=token, **options)

    def __repr__(self) -> str:
        state = "connected" if self._connection is not None else "disconnected"
        tls = "" if self.ssl_context is None else " tls"
        if self.server_hostname is not None:
            tls += f" ({self.server_hostname})"
        fenced = "" if self._epoch is None else f" epoch={self._epoch}"
        return f"<BridgeTerminal bridge://{self.host}:{self.port}{tls} {state}{fenced}>"

    @property
    def epoch(self) -> int | None:
        """The fencing epoch every request carries (None until :meth:`fence`)."""
        return self._epoch

    def fence(self, epoch: int) -> None:
        """Carry ``epoch`` (a positive int) with every later call (the Fenceable protocol).

        No I/O and no lock: the owner may call it from any thread, and the next request
        carries the new epoch. The bridge learns it with that request (the owner's
        ``initialize()``) and from then on refuses lower epochs; this client does not judge
        epochs itself, the bridge does.
        """
        self._epoch = checked_epoch(epoch)

    @property
    def simulated(self) -> bool:
        """Whether the bridge said in its welcome that it serves mt5gate's simulator, not a
        real MetaTrader 5 (``False`` until the first handshake). A bridge from before the
        ``simulated`` member says it with ``"terminal": "sim"``."""
        info = self.server_info or {}
        return info.get("simulated") is True or info.get("terminal") == "sim"

    @property
    def connected(self) -> bool:
        """Whether a handshaken connection is open (it may still turn out to be broken)."""
        return self._connection is not None

    def close(self) -> None:
        """Close the connection (``initialize()`` opens a new one)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # ------------------------------------------------------------------ connecting

    def _connect(self) -> LastError | None:
        """Open and handshake a connection; the ``last_error`` of a failure, else None."""
        where = f"bridge {self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout_s)
        except ConnectionRefusedError:
            return init_failed(f"no mt5gate bridge listening at {self.host}:{self.port} "
                               "(connection refused)")  # fmt: skip
        except OSError as error:
            return init_failed(f"{where} unreachable: {error}")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self._start_tls(sock, self.ssl_context)
            connection = _Connection(sock, self.max_reply_frame)
            self.server_info = self._handshake(connection)
            self._fencing = self.server_info.get("fencing") is True
        except _TLSFailedError as error:
            sock.close()
            return init_failed(str(error))
        except _NotABridgeError as error:
            sock.close()
            return init_failed(f"{self.host}:{self.port} is not an mt5gate bridge ({error})")
        except _TokenRefusedError:
            sock.close()
            return init_failed(f"the mt5gate bridge at {self.host}:{self.port} refused the token")
        except (OSError, ProtocolError, _IPCError, _HandshakeRefusedError) as error:
            sock.close()
            hint = _plain_hint(error) if self.ssl_context is None else ""
            return init_failed(f"{where}: {_describe(error)}{hint}")
        self._connection = connection
        return None

    def _start_tls(self, sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
        """``sock`` wrapped in TLS, the bridge's certificate verified against the server name;
        :class:`_TLSFailedError` saying why when the handshake fails."""
        name = self.server_hostname or self.host
        sock.settimeout(self.connect_timeout_s)
        try:
            return context.wrap_socket(sock, server_hostname=name)
        except OSError as error:  # ssl.SSLError, a reset or a timeout within the handshake
            where = f"bridge {self.host}:{self.port}"
            raise _TLSFailedError(describe_tls_failure(error, where, name)) from None

    def _handshake(self, connection: _Connection) -> dict[str, Any]:
        deadline = time.monotonic() + self.connect_timeout_s
        connection.send(hello(self._token), deadline)
        try:
            welcome = decode_mapping(connection.receive_welcome(deadline))
        except ProtocolError as error:
            raise _NotABridgeError(f"its first reply is no bridge welcome: {error}") from None
        if welcome.get("ok") is not True:
            if welcome.get("kind") == _DENIED:
                raise _TokenRefusedError
            raise _HandshakeRefusedError(str(welcome.get("message", "refused")))
        if welcome.get("protocol") != PROTOCOL_NAME or welcome.get("version") != PROTOCOL_VERSION:
            raise _HandshakeRefusedError(f"client speaks bridge protocol {PROTOCOL_VERSION}, "
                                    f"server speaks {welcome.get('version')!r}")  # fmt: skip
        if self._epoch is not None and welcome.get("fencing") is not True:
            raise _HandshakeRefusedError(_NOT_FENCING)
        return welcome

    # --------------------------------------------------------------------- calling

    def _call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One round trip; the failure value with an IPC error when the link fails."""
        check_call_convention(function, args, kwargs)
        with self._lock:
            if self._connection is None:
                return self._fail(function, NO_IPC)
            try:
                return self._round_trip(self._connection, function, args, kwargs)
            except _IPCError as error:
                self._drop()
                return self._fail(function, error.error)

    def _fail(self, function: str, error: LastError) -> Any:
        self._error = error
        return failure_value(function)

    def _round_trip(
        self, connection: _Connection, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        epoch = self._epoch
        if epoch is not None and not self._fencing:  # fenced after connecting to an old bridge
            raise _IPCError(init_failed(_NOT_FENCING))
        self._next_id += 1
        rid = self._next_id
        body = _encode(rid, function, args, kwargs, epoch)
        deadline = time.monotonic() + call_deadline(function, args, kwargs, self.call_timeout_s)
        connection.send(body, deadline)
        try:
            reply_id, ok, payload = decode_reply(connection.receive(deadline))
        except ProtocolError:
            raise _IPCError(RECV_FAILED) from None
        if reply_id != rid:
            raise _IPCError(RECV_FAILED)
        if ok:
            result, self._error = payload
            return result
        kind, message = payload
        if kind == FENCED:  # a newer owner holds the terminal: nothing was executed
            raise TerminalFencedError(function, epoch, fenced_highest(message))
        return self._remote_error(function, kind, message)

    def _remote_error(self, function: str, kind: str, message: str) -> Any:
        """A reply saying the call did not produce a result: raise or fail as the module would."""
        if kind == "TypeError":
            raise TypeError(message)
        if kind in ("timeout", "busy"):
            return self._fail(function, IPC_TIMEOUT)
        if kind == "too_large":
            return self._fail(function, NO_MEMORY)
        if kind == "internal":
            return self._fail(function, CALL_FAILED)
        raise ProtocolError(f"the bridge refused {function}(): {kind}: {message}")

    # ------------------------- the 32 functions: Forwarding's, but for these three

    @terminal_signature
    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        """Connect (if not connected), then ``initialize`` the terminal behind the bridge.

        A connection found broken is replaced once, so a restarted bridge is picked up here.
        """
        if self._connection is None:
            failure = self._connect()
            if failure is not None:
                return bool(self._fail("initialize", failure))
        result = self._call("initialize", args, kwargs)
        if result is False and self._error[0] in (SEND_FAILED[0], RECV_FAILED[0]):
            failure = self._connect()
            if failure is not None:
                return bool(self._fail("initialize", failure))
            result = self._call("initialize", args, kwargs)
        return cast("bool", result)

    @terminal_signature
    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Close this client's connection; the terminal stays attached for other clients."""
        check_call_convention("shutdown", args, kwargs)
        self.close()

    @terminal_signature
    def last_error(self, *args: Any, **kwargs: Any) -> LastError:
        """The outcome of this client's last call (kept locally; no round trip)."""
        check_call_convention("last_error", args, kwargs)
        return self._error


if TYPE_CHECKING:

    def _conforms(terminal: BridgeTerminal) -> Terminal:
        return terminal  # mypy proves BridgeTerminal satisfies the Terminal Protocol


class _HandshakeRefusedError(Exception):
    """The bridge answered the hello with a refusal (version, busy)."""


class _TokenRefusedError(_HandshakeRefusedError):
    """The bridge refused this client's token (its message is not repeated: nothing of the
    token, right or wrong, goes into an error)."""


class _TLSFailedError(Exception):
    """The TLS handshake with the bridge failed; the text says why (no secret in it)."""


class _NotABridgeError(Exception):
    """Something other than an mt5gate bridge answered the hello; the text says what."""


#: A TLS alert record begins with its content type (21) and the major version (3).
_TLS_ALERT = b"\x15\x03"
_SERVES_TLS = (
    "a bridge that serves TLS (mt5gate bridge --tls-cert) needs tls = true for this account, "
    "with tls_ca_file when its certificate is not from a CA the system trusts"
)


def _plain_hint(error: BaseException) -> str:
    """For a plain (non-TLS) client whose hello was met by a closed connection: a bridge
    that serves TLS closes a connection that does not start with a TLS handshake, so say so
    (the likeliest cause: a bridge that refuses a client, busy or at its limit, says why)."""
    if isinstance(error, _IPCError) and error.error == RECV_FAILED:
        return f"; the connection was closed without a word: {_SERVES_TLS}"
    return ""


def _describe(error: BaseException) -> str:
    if isinstance(error, _IPCError):
        return f"no answer to the handshake ({error.error[1]})"
    return str(error) or type(error).__name__


def _encode(
    rid: int, function: str, args: tuple[Any, ...], kwargs: dict[str, Any], epoch: int | None
) -> bytes:
    """The request body; TypeError (as the real module would raise) for what cannot travel."""
    try:
        body = encode_request(rid, function, args, kwargs, epoch)
    except TypeError as error:
        raise TypeError(f"{function}(): {error}") from None
    if len(body) + 4 > MAX_REQUEST_FRAME:
        raise ValueError(f"{function}() arguments are {len(body)} bytes, over the bridge's "
                         f"{MAX_REQUEST_FRAME}-byte request limit")  # fmt: skip
    return body
