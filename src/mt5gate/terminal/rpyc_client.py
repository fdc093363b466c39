"""``RPyCTerminal``: the Terminal seam over an RPyC *classic* server (mt5linux and similar).

Users who run MT5 under Wine or on a Windows box often already run an RPyC classic server with
``MetaTrader5`` importable (mt5linux, mt5-remote, ``rpyc_classic``). Used the usual way, every
record field is a network round trip, struct results cannot be pickled, calls are built as
strings for ``eval`` (datetime reprs break) and RPyC's own 60 s timeout cuts slow logins short
(``docs/mt5-api/pitfalls.md`` A8). This client avoids all of that:

* on connect it runs one fixed, literal piece of source on the server (:data:`SERVER_SOURCE`,
  never built from user input) defining a helper that calls ``MetaTrader5.<name>(*args,
  **kwargs)``, reads ``last_error()`` in the same step and turns the result into plain data
  (records become ``("record", type name, fields)``, arrays ``("array", descr, bytes, shape)``);
* each call is ONE request carrying only brine values (str, int, float, bool, None, bytes,
  tuples: dicts travel as tuples of pairs, datetimes as int seconds, taken on the client with
  ``.timestamp()`` like the real module), and ONE reply that brine copies by value: no netrefs,
  no pickle, so a hostile server cannot make the client run code through the reply;
* results are rebuilt as :mod:`mt5gate.records` types and writable numpy arrays;
* only the 32 terminal functions can be called, and the client exposes nothing to the server;
* a refused connection, a broken one and a deadline give the real module's IPC failures
  (``None`` / ``False`` and ``last_error()``), so the session's reconnect logic works unchanged:
  ``-10003`` when ``initialize()`` cannot connect, ``-10004`` while not connected, ``-10002``
  when the connection breaks during a call, ``-10005`` past the deadline. The next
  ``initialize()`` reconnects.

``rpyc`` is an optional dependency (``pip install 'mt5gate[rpyc]'``), imported on first connect.
The classic protocol has no authentication or encryption: keep such servers on loopback or a
trusted network (mt5gate's own bridge is the safe alternative).
"""

from __future__ import annotations

import importlib
import numbers
import threading
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

import numpy as np

from mt5gate.records import (
    RECORD_TYPES,
    TradeDeal,
    TradeOrder,
)
from mt5gate.terminal.base import (
    TERMINAL_FUNCTIONS,
    DateArg,
    Terminal,
    check_call_convention,
    failure_value,
)
from mt5gate.terminal.forwarding import Forwarding
from mt5gate.terminal.ipc import IPC_TIMEOUT, NO_IPC, RECV_FAILED, SUCCESS, LastError, init_failed

__all__ = ["DEFAULT_PORT", "SERVER_SOURCE", "RPyCTerminal"]

#: The port RPyC classic servers (and mt5linux) listen on by default.
DEFAULT_PORT: Final = 18812

#: Run once per connection on the server, in the connection's own namespace. A fixed literal:
#: nothing in it comes from the caller. Kept compatible with old Pythons (no f-strings), since
#: servers under Wine often run an older interpreter than the client.
SERVER_SOURCE: Final = '''
import MetaTrader5 as _mt5gate_module


def _mt5gate_plain(value):
    """A result as brine-only data: records, tuples, arrays and dicts tagged, scalars exact."""
    if value is None or type(value) in (bool, int, float, str, bytes):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, tuple):
        fields = tuple(_mt5gate_plain(item) for item in value)
        if hasattr(value, "_asdict"):
            return ("record", type(value).__name__, fields)
        return ("tuple", fields)
    if isinstance(value, list):
        return ("tuple", tuple(_mt5gate_plain(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((str(k), _mt5gate_plain(v)) for k, v in value.items()))
    if hasattr(value, "dtype") and hasattr(value, "tobytes"):
        if value.ndim == 0:
            return _mt5gate_plain(value.item())
        dtype = value.dtype
        descr = _mt5gate_descr(dtype.descr) if dtype.names else dtype.str
        return ("array", descr, value.tobytes(), tuple(int(n) for n in value.shape))
    raise TypeError("cannot copy a %s result by value" % type(value).__name__)


def _mt5gate_descr(descr):
    """A numpy descr (a list of tuples, maybe nested) as tuples only."""
    if isinstance(descr, (list, tuple)):
        return tuple(_mt5gate_descr(item) for item in descr)
    return descr


def _mt5gate_argument(value):
    """A wire argument back to what the module takes: a tuple of pairs is a dict."""
    if isinstance(value, tuple):
        return dict(value)
    return value


def _mt5gate_call(name, args, kwargs):
    """Call one MetaTrader5 function; the result and last_error() as plain data."""
    function = getattr(_mt5gate_module, name)
    args = tuple(_mt5gate_argument(a) for a in args)
    kwargs = dict((k, _mt5gate_argument(v)) for k, v in kwargs)
    try:
        result = function(*args, **kwargs)
    except Exception as exc:
        error = _mt5gate_module.last_error()
        return ("raised", type(exc).__name__, str(exc), int(error[0]), str(error[1]))
    error = _mt5gate_module.last_error()
    return ("ok", _mt5gate_plain(result), int(error[0]), str(error[1]))
'''

_HELPER: Final = "_mt5gate_call"
_ALLOWED: Final = frozenset(TERMINAL_FUNCTIONS)


#: Exceptions the module raises for calling-convention errors, re-raised as the same type.
_REMOTE_ERRORS: Final[dict[str, type[Exception]]] = {
    "TypeError": TypeError,
    "ValueError": ValueError,
    "OverflowError": OverflowError,
}
_PLAIN_TYPES: Final = (type(None), bool, int, float, str, bytes)


def _rpyc() -> ModuleType:
    """The ``rpyc`` package, imported lazily: it is an optional dependency."""
    try:
        return importlib.import_module("rpyc")
    except ImportError as exc:  # pragma: no cover - rpyc is installed in the dev environment
        raise ImportError(
            "RPyCTerminal needs the optional 'rpyc' package: pip install 'mt5gate[rpyc]'"
        ) from exc


def _scalar(value: object) -> object:
    """A scalar argument as a brine value; datetimes become int seconds, like the real module."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):  # IntEnum, numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # numpy floats
        return float(value)
    if isinstance(value, str):  # StrEnum
        return str(value)
    raise TypeError(f"cannot send a {type(value).__name__} argument to an RPyC server")


def _argument(value: object) -> object:
    """An argument as a brine value: a mapping (a trade request) travels as a tuple of pairs."""
    if isinstance(value, Mapping):
        return tuple((str(key), _scalar(item)) for key, item in value.items())
    return _scalar(value)


def _dtype(descr: Any) -> np.dtype[Any]:
    """The numpy dtype of a wire descr: a type string, or tuples standing for numpy's lists."""
    if isinstance(descr, str):
        return np.dtype(descr)
    return np.dtype([_field(field) for field in descr])


def _field(field: tuple[Any, ...]) -> tuple[Any, ...]:
    """One descr field: a nested structure (a tuple of tuples) goes back to a list."""
    name, kind, *shape = field
    if isinstance(kind, tuple):
        kind = [_field(inner) for inner in kind]
    return (name, kind, *shape)


def decode(value: Any) -> Any:
    """Rebuild a server-side plain result as mt5gate records, tuples and numpy arrays."""
    if not isinstance(value, tuple):
        return value
    tag = value[0]
    if tag == "record":
        fields = tuple(decode(item) for item in value[2])
        record_type = RECORD_TYPES.get(value[1])
        return fields if record_type is None else record_type(fields)
    if tag == "tuple":
        return tuple(decode(item) for item in value[1])
    if tag == "array":
        _, descr, data, shape = value
        return np.frombuffer(bytearray(data), dtype=_dtype(descr)).reshape(shape)
    if tag == "dict":
        return {key: decode(item) for key, item in value[1]}
    raise ValueError(f"unknown value tag {tag!r} from the RPyC server")


def _first_line(error: BaseException) -> str:
    """An exception's message without the remote traceback RPyC appends to it."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RPyCTerminal(Forwarding):
    """A Terminal on the far side of an RPyC classic server that can import ``MetaTrader5``.

    Each of the 32 functions is one request (:class:`~mt5gate.terminal.forwarding.Forwarding`
    sends it to :meth:`_call`), but for ``initialize`` and ``login`` (connecting, and a
    deadline that covers the login's own timeout), ``last_error`` (answered locally) and
    ``history_*_get`` (a ``None`` date is left out, as ``ticket=`` / ``position=`` want).

    Blocking and not thread-safe by contract, like every Terminal; a lock still keeps two
    threads from interleaving on one connection. ``initialize()`` connects (or reconnects);
    ``close()`` drops the connection. ``shutdown()`` is forwarded: on a shared server it
    detaches every client of that server's ``MetaTrader5`` module, as it does for mt5linux.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        connect_timeout_s: float = 5.0,
        call_timeout_s: float = 65.0,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.call_timeout_s = call_timeout_s
        self._conn: Any = None
        self._helper: Any = None
        self._last_error: LastError = SUCCESS
        self._lock = threading.RLock()

    @classmethod
    def from_url(cls, url: str, **options: float) -> RPyCTerminal:
        """``rpyc://host[:port]`` (port 18812 when left out); ``options`` go to the constructor."""
        parts = urlsplit(url)
        if parts.scheme != "rpyc" or not parts.hostname:
            raise ValueError(f"not an rpyc://host:port URL: {url!r}")
        return cls(parts.hostname, parts.port or DEFAULT_PORT, **options)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"RPyCTerminal(rpyc://{self.host}:{self.port}, {state})"

    @property
    def connected(self) -> bool:
        """Whether a connection to the server is open (as far as this client knows)."""
        return self._conn is not None and not self._conn.closed

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> str | None:
        """Open the connection and install the helper; an error text when that fails."""
        rpyc = _rpyc()
        factory = importlib.import_module("rpyc.utils.factory")
        streams = importlib.import_module("rpyc.core.stream")
        services = importlib.import_module("rpyc.core.service")
        where = f"RPyC server rpyc://{self.host}:{self.port}"
        try:
            stream = streams.SocketStream.connect(
                self.host, self.port, timeout=self.connect_timeout_s, attempts=1, nodelay=True
            )
        except OSError as exc:
            return f"{where} unreachable: {exc}"
        config = {"sync_request_timeout": self.connect_timeout_s}
        # FakeSlaveService: the client exposes nothing the server could call or import. Setting
        # up the connection does no I/O; the first round trips are the two below.
        conn = factory.connect_stream(stream, services.FakeSlaveService, config)
        try:
            conn.root.execute(SERVER_SOURCE)
            helper = conn.root.namespace[_HELPER]
        except Exception as exc:
            self._abort(conn)
            return f"{where} is not an RPyC classic server with MetaTrader5: {_first_line(exc)}"
        self._conn, self._helper = conn, rpyc.async_(helper)
        return None

    @staticmethod
    def _abort(conn: Any) -> None:
        """Close ``conn`` without waiting on the server: the socket first, then RPyC's side."""
        with suppress(Exception):
            conn._channel.stream.close()
        with suppress(Exception):
            conn.close()

    def _drop(self) -> None:
        if self._conn is not None:
            self._abort(self._conn)
        self._conn = self._helper = None

    def close(self) -> None:
        """Drop the connection (the remote terminal stays as it is). Safe to call twice."""
        with self._lock:
            self._drop()

    def __enter__(self) -> RPyCTerminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the one round trip -----------------------------------------------------------------

    def _call(
        self,
        name: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        deadline_s: float | None = None,
    ) -> Any:
        """Call ``MetaTrader5.<name>`` remotely: one request, one by-value reply; the module's
        failure value (``None`` / ``False``) when the call cannot be made.

        A keyword given as ``None`` is left out (``None`` is the seam's "not given"): the
        remote module keeps its own defaults and checks. Positional arguments go as given, so
        the module refuses them where it takes keywords only (-2), as it would locally.
        """
        if name not in _ALLOWED:
            raise ValueError(f"{name!r} is not one of the 32 terminal functions")
        check_call_convention(name, args, kwargs or {})
        wire_args = tuple(_argument(a) for a in args)
        wire_kwargs = tuple(
            (key, _argument(item)) for key, item in (kwargs or {}).items() if item is not None
        )
        with self._lock:
            if not self.connected:
                self._drop()
                self._last_error = NO_IPC
                return failure_value(name)
            reply = self._round_trip(name, wire_args, wire_kwargs, deadline_s)
        if reply is None:
            return failure_value(name)
        return self._unpack(name, reply)

    def _round_trip(
        self, name: str, args: tuple[Any, ...], kwargs: tuple[Any, ...], deadline_s: float | None
    ) -> tuple[Any, ...] | None:
        """The request and its reply, or ``None`` (connection dropped, last_error set)."""
        try:
            pending = self._helper(name, args, kwargs)
            pending.set_expiry(deadline_s or self.call_timeout_s)
            return cast("tuple[Any, ...]", pending.value)
        except TimeoutError:  # RPyC's "result expired" is the builtin TimeoutError
            self._last_error = IPC_TIMEOUT
        except (EOFError, OSError):
            self._last_error = RECV_FAILED
        self._drop()
        return None

    def _unpack(self, name: str, reply: tuple[Any, ...]) -> Any:
        """Record last_error and return the decoded result, or re-raise the remote exception."""
        if reply[0] == "raised":
            _, kind, message, code, text = reply
            self._last_error = (code, text)
            raise _REMOTE_ERRORS.get(kind, RuntimeError)(
                message if kind in _REMOTE_ERRORS else f"{name}() raised {kind}: {message}"
            )
        _, result, code, text = reply
        self._last_error = (code, text)
        return decode(result)

    # -- the 32 functions: Forwarding's, but for these (connecting, deadlines, options) ------

    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
        portable: bool = False,
    ) -> bool:
        """Connect (or reconnect) to the server, then ``initialize`` the remote module."""
        with self._lock:
            if not self.connected:
                self._drop()
                problem = self._connect()
                if problem is not None:
                    self._last_error = init_failed(problem)
                    return False
        options: dict[str, Any] = {"login": login, "password": password, "server": server}
        if timeout != 60000:
            options["timeout"] = timeout
        if portable:
            options["portable"] = portable
        args = () if path is None else (path,)
        deadline = self._login_deadline(timeout)
        return bool(self._call("initialize", args, options, deadline_s=deadline))

    def _login_deadline(self, timeout_ms: object) -> float:
        """A login may take its whole ``timeout``: never cut it short (pitfall A8)."""
        wait = timeout_ms / 1000 + 5 if isinstance(timeout_ms, int | float) else 0.0
        return max(self.call_timeout_s, wait)

    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
    ) -> bool:
        options: dict[str, Any] = {"password": password, "server": server}
        if timeout != 60000:
            options["timeout"] = timeout
        deadline = self._login_deadline(timeout)
        return bool(self._call("login", (login,), options, deadline_s=deadline))

    def last_error(self) -> tuple[int, str]:
        """The outcome of this client's last call, read on the server in the same step."""
        return self._last_error

    def history_orders_get(
        self,
        date_from: DateArg | None = None,
        date_to: DateArg | None = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        options = {"group": group, "ticket": ticket, "position": position}
        found = self._history("history_orders_get", date_from, date_to, **options)
        return cast("tuple[TradeOrder, ...] | None", found)

    def history_deals_get(
        self,
        date_from: DateArg | None = None,
        date_to: DateArg | None = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...] | None:
        options = {"group": group, "ticket": ticket, "position": position}
        found = self._history("history_deals_get", date_from, date_to, **options)
        return cast("tuple[TradeDeal, ...] | None", found)

    def _history(self, name: str, date_from: object, date_to: object, **options: object) -> Any:
        """``history_*_get``: the dates given (both, or none with ``ticket=`` / ``position=``)
        and the options given; the module refuses a ``None`` date."""
        dates = tuple(d for d in (date_from, date_to) if d is not None)
        return self._call(name, dates, options)


if TYPE_CHECKING:

    def _conforms(terminal: RPyCTerminal) -> Terminal:
        return terminal  # mypy proves RPyCTerminal satisfies the Terminal Protocol
