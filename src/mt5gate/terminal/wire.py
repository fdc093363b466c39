"""The bridge's wire protocol: length-prefixed msgpack frames, values copied by value.

A frame is a 4-byte big-endian length followed by that many bytes of msgpack. A connection
starts with a handshake, then carries one request and one reply per call::

    hello     {"protocol": "mt5gate-bridge", "version": 1, "token": "..."}
    welcome   {"ok": true, "protocol": ..., "version": 1, "terminal": "sim", "simulated": true,
               "mt5gate": "0.2.0", "fencing": true}
              or {"ok": false, "kind": "denied" | "version" | "busy" | ..., "message": "..."}
    request   [request_id, function, args, kwargs]
              or [request_id, function, args, kwargs, epoch]
    reply     [request_id, true, [result, [last_error_code, last_error_text]]]
              or [request_id, false, [kind, message]]

Fencing is a compatible extension of version 1, not a new version. A client that was fenced
(``BridgeTerminal.fence(epoch)``) appends its epoch, a positive int, as a 5th request element;
a bridge that enforces epochs says ``"fencing": true`` in its welcome. The client sends the 5th
element only to such a bridge and refuses to connect to one without it: a bridge older than
fencing decodes requests as 4-element arrays and would silently ignore the epoch, so the owner
would believe itself fenced while a stale client still traded. Old clients keep working with a
new bridge: their 4-element requests carry no epoch, so once the bridge has seen an epoch their
``order_send`` and ``login`` are refused and their reads still answered
(:mod:`mt5gate.terminal.fencing` has the rule). A refused call gets the error kind ``"fenced"``,
whose message starts with ``highest=<epoch>;`` so the client can raise
:class:`~mt5gate.terminal.base.TerminalFencedError` with the epoch that holds the terminal (an
old client shows the message in its "the bridge refused" error).

Results travel by value: msgpack's own scalars, lists and maps, plus two extension types that
decode only into what this module knows. ``EXT_RECORD`` carries ``[record code, fields]`` and
becomes one of the 11 MT5 record classes (a nested ``TradeRequest`` is itself an ``EXT_RECORD``);
``EXT_ARRAY`` carries a dtype code and raw little-endian bytes and becomes a 1-D numpy array of
a whitelisted dtype. Nothing is pickled, nothing is evaluated, no other type is ever created.
Requests carry plain values only: the client turns ``datetime`` arguments into whole seconds
with ``.timestamp()`` itself, as the real module does, so a naive datetime means the client's
local time.

Every decoding failure raises a :class:`ProtocolError` subclass.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from mt5gate.records import (
    RATES_DTYPE,
    TICKS_DTYPE,
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    Record,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)

__all__ = [
    "ARRAY_DTYPES",
    "DEFAULT_PORT",
    "EXT_ARRAY",
    "EXT_RECORD",
    "FENCED",
    "HEADER",
    "MAX_HELLO_FRAME",
    "MAX_REPLY_FRAME",
    "MAX_REQUEST_FRAME",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "RATES_DTYPE",
    "RECORD_CLASSES",
    "TICKS_DTYPE",
    "FrameTooLargeError",
    "MalformedMessageError",
    "ProtocolError",
    "Request",
    "call_deadline",
    "decode_mapping",
    "decode_reply",
    "decode_request",
    "decode_value",
    "encode_error",
    "encode_fenced",
    "encode_frame",
    "encode_mapping",
    "encode_reply",
    "encode_request",
    "encode_value",
    "fenced_highest",
    "frame_length",
    "hello",
    "plain_argument",
    "request_id_of",
]

PROTOCOL_NAME: Final = "mt5gate-bridge"
PROTOCOL_VERSION: Final = 1
DEFAULT_PORT: Final = 18812
HEADER: Final = struct.Struct(">I")

MAX_HELLO_FRAME: Final = 4 * 1024
MAX_REQUEST_FRAME: Final = 64 * 1024
MAX_REPLY_FRAME: Final = 16 * 1024 * 1024

EXT_RECORD: Final = 1
EXT_ARRAY: Final = 2

#: The error kind of a call refused by the bridge's fencing rule.
FENCED: Final = "fenced"

#: Record classes by their wire code (the index). Append only: codes are part of the protocol.
RECORD_CLASSES: Final[tuple[type[Record], ...]] = (
    AccountInfo,
    TerminalInfo,
    SymbolInfo,
    Tick,
    TradeOrder,
    TradePosition,
    TradeDeal,
    OrderSendResult,
    OrderCheckResult,
    BookInfo,
    TradeRequest,
)
_RECORD_CODES: Final = {cls: code for code, cls in enumerate(RECORD_CLASSES)}

#: The only dtypes an array may have on the wire, by code. Append only.
ARRAY_DTYPES: Final[tuple[np.dtype[Any], ...]] = (
    RATES_DTYPE,
    TICKS_DTYPE,
    np.dtype("<f8"),
    np.dtype("<i8"),
    np.dtype("<u8"),
    np.dtype("<i4"),
    np.dtype("<u4"),
    np.dtype("|b1"),
)


class ProtocolError(Exception):
    """Bytes on the wire that are not a valid bridge message."""


class FrameTooLargeError(ProtocolError):
    """A frame longer than the receiver accepts."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the {limit}-byte limit")
        self.length = length
        self.limit = limit


class MalformedMessageError(ProtocolError):
    """A frame whose body is not a well-formed message of the expected shape."""


# ------------------------------------------------------------------------------- frames


def encode_frame(body: bytes) -> bytes:
    """Length prefix + body."""
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes, limit: int) -> int:
    """The body length a 4-byte header announces; FrameTooLargeError above ``limit``."""
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise FrameTooLargeError(length, limit)
    return int(length)


# ------------------------------------------------------------------------------- values


def _array_ext(array: npt.NDArray[Any]) -> msgspec.msgpack.Ext:
    for code, dtype in enumerate(ARRAY_DTYPES):
        if array.dtype == dtype:
            data = np.ascontiguousarray(array.reshape(-1)).tobytes()
            return msgspec.msgpack.Ext(EXT_ARRAY, bytes((code,)) + data)
    raise TypeError(f"numpy arrays of dtype {array.dtype} are not sent over the bridge")


#: Types msgspec sends as they are: ``_wire`` passes them through at the cost of one lookup
#: (a record is mostly these, and every reply carries one or more).
_PLAIN_TYPES: Final = frozenset({int, float, str, bool, bytes, type(None)})


def _record_ext(record: Record) -> msgspec.msgpack.Ext:
    code = _RECORD_CODES[type(record)]
    plain = _PLAIN_TYPES
    fields = [field if type(field) in plain else _wire(field) for field in record]
    return msgspec.msgpack.Ext(EXT_RECORD, _ENCODER.encode([code, fields]))


def _wire(value: Any) -> Any:
    """``value`` with records and arrays replaced by extension objects (msgspec would send a
    record as a plain list, since it is a tuple)."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, Record):
        return _record_ext(value)
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _array_ext(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _enc_hook(value: Any) -> Any:
    raise TypeError(f"values of type {type(value).__name__} are not sent over the bridge")


_ENCODER: Final = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


def encode_value(value: Any) -> bytes:
    """msgpack of one result value (records and arrays as extension types)."""
    return _ENCODER.encode(_wire(value))


def _decode_record(data: memoryview, fields_decoder: msgspec.msgpack.Decoder[Any]) -> Record:
    try:
        code, fields = fields_decoder.decode(data)
    except (TypeError, ValueError) as error:
        raise MalformedMessageError(f"bad record extension: {error}") from None
    if not (type(code) is int and 0 <= code < len(RECORD_CLASSES)) or type(fields) is not list:
        raise MalformedMessageError("bad record extension: unknown code or fields not a list")
    cls = RECORD_CLASSES[code]
    if len(fields) != cls.n_fields:
        raise MalformedMessageError(
            f"{cls.__name__} needs {cls.n_fields} fields, got {len(fields)}"
        )
    return cls(fields)


def _nested_ext_hook(code: int, data: memoryview) -> Any:
    """Inside a record only a TradeRequest may appear, and nothing inside that: nesting is
    bounded, so a hostile reply cannot recurse through extension hooks."""
    if code == EXT_RECORD:
        record = _decode_record(data, _PLAIN_DECODER)
        if type(record) is TradeRequest:
            return record
    raise MalformedMessageError("only a TradeRequest may be nested in a record")


def _decode_array(data: memoryview) -> npt.NDArray[Any]:
    if len(data) < 1 or data[0] >= len(ARRAY_DTYPES):
        raise MalformedMessageError("bad array extension: unknown dtype code")
    dtype = ARRAY_DTYPES[data[0]]
    body = data[1:]
    if len(body) % dtype.itemsize:
        raise MalformedMessageError(f"bad array extension: {len(body)} bytes for {dtype}")
    return np.frombuffer(body, dtype=dtype).copy()  # owned and writable, like the real arrays


def _value_ext_hook(code: int, data: memoryview) -> Any:
    if code == EXT_RECORD:
        return _decode_record(data, _NESTED_DECODER)
    if code == EXT_ARRAY:
        return _decode_array(data)
    raise MalformedMessageError(f"unknown extension type {code}")


def _plain_ext_hook(code: int, data: memoryview) -> Any:
    raise MalformedMessageError(f"extension type {code} is not allowed here")


_VALUE_DECODER: Final = msgspec.msgpack.Decoder(ext_hook=_value_ext_hook)
_NESTED_DECODER: Final = msgspec.msgpack.Decoder(ext_hook=_nested_ext_hook)
_PLAIN_DECODER: Final = msgspec.msgpack.Decoder(ext_hook=_plain_ext_hook)


def _decode(decoder: msgspec.msgpack.Decoder[Any], data: bytes | memoryview) -> Any:
    try:
        return decoder.decode(data)
    except ProtocolError:
        raise
    except RecursionError:
        raise MalformedMessageError("message nested too deeply") from None
    except Exception as error:  # msgspec.DecodeError, or a record/array constructor refusing
        raise MalformedMessageError(f"undecodable message: {error}") from None


def decode_value(data: bytes | memoryview) -> Any:
    """A result value from msgpack: records and arrays rebuilt, anything unknown refused."""
    return _decode(_VALUE_DECODER, data)


def plain_argument(value: Any) -> Any:
    """An argument as the wire carries it: ``datetime`` -> whole seconds of ``.timestamp()``.

    The real module calls ``.timestamp()`` in the caller's process, so a naive datetime is the
    caller's local time; doing it here keeps that meaning whatever the server's time zone.
    """
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


# ----------------------------------------------------------------------------- handshake


def hello(token: str, version: int = PROTOCOL_VERSION) -> bytes:
    """The client's first frame body."""
    return _ENCODER.encode({"protocol": PROTOCOL_NAME, "version": version, "token": token})


def decode_mapping(data: bytes | memoryview) -> dict[str, Any]:
    """A handshake message: a map with string keys and plain values."""
    message = _decode(_PLAIN_DECODER, data)
    if type(message) is not dict or not all(type(key) is str for key in message):
        raise MalformedMessageError("a handshake message must be a map with string keys")
    return message


def encode_mapping(message: Mapping[str, Any]) -> bytes:
    """msgpack of a handshake message."""
    return _ENCODER.encode(dict(message))


# ------------------------------------------------------------------------------ requests


class Request(msgspec.Struct, array_like=True, frozen=True):
    """One call: ``[request_id, function, args, kwargs]``, plus ``epoch`` when fenced."""

    request_id: int
    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    epoch: int | None = None


_REQUEST_DECODER: Final = msgspec.msgpack.Decoder(Request, ext_hook=_plain_ext_hook)
_MAX_ID: Final = 2**63 - 1


def encode_request(
    request_id: int,
    function: str,
    args: Any,
    kwargs: Mapping[str, Any],
    epoch: int | None = None,
) -> bytes:
    """msgpack of a request; ``datetime`` arguments become seconds (see :func:`plain_argument`).

    ``epoch`` is appended as a 5th element only when given: unfenced requests stay the
    4-element arrays every bridge understands.
    """
    plain = _PLAIN_TYPES  # the usual argument passes one lookup, not two conversions
    wire_args = [arg if type(arg) in plain else _wire(plain_argument(arg)) for arg in args]
    wire_kwargs = {
        key: value if type(value) in plain else _wire(plain_argument(value))
        for key, value in kwargs.items()
    }
    message = [request_id, function, wire_args, wire_kwargs]
    if epoch is not None:
        message.append(epoch)
    return _ENCODER.encode(message)


def decode_request(data: bytes | memoryview) -> Request:
    """A request, shape-checked; MalformedMessageError otherwise (ext types are refused)."""
    request: Request = _decode(_REQUEST_DECODER, data)
    if not 0 <= request.request_id <= _MAX_ID:
        raise MalformedMessageError(f"request id {request.request_id} out of range")
    if request.epoch is not None and not 1 <= request.epoch <= _MAX_ID:
        raise MalformedMessageError(f"fencing epoch {request.epoch} out of range")
    return request


def request_id_of(data: bytes | memoryview) -> int:
    """Best effort: the id of a request too malformed to decode (0 when there is none)."""
    try:
        message = _PLAIN_DECODER.decode(data)
    except Exception:  # anything undecodable has no id to echo
        return 0
    if type(message) is list and message and type(message[0]) is int:
        return message[0] if 0 <= message[0] <= _MAX_ID else 0
    return 0


# -------------------------------------------------------------------------------- replies


def encode_reply(request_id: int, result: Any, last_error: tuple[int, str]) -> bytes:
    """A success reply: the result and the ``last_error()`` read right after the call."""
    return _ENCODER.encode([request_id, True, [_wire(result), list(last_error)]])


def encode_error(request_id: int, kind: str, message: str) -> bytes:
    """An error reply: ``kind`` is "TypeError", "denied", "malformed", "timeout", "busy",
    "too_large", "internal" or "fenced" (see :func:`encode_fenced`)."""
    return _ENCODER.encode([request_id, False, [kind, message]])


def encode_fenced(request_id: int, highest: int, message: str) -> bytes:
    """The error reply of a call refused by fencing: ``highest=<epoch>; <message>``."""
    return encode_error(request_id, FENCED, f"highest={highest}; {message}")


def fenced_highest(message: str) -> int:
    """The epoch that holds the terminal, from the message of a "fenced" error reply."""
    head, separator, _ = message.partition("; ")
    number = head.removeprefix("highest=")
    if not separator or number == head or not number.isdigit():
        raise MalformedMessageError(f"a fenced reply must start with 'highest=N; ': {message!r}")
    return int(number)


def decode_reply(data: bytes | memoryview) -> tuple[int, bool, Any]:
    """``(request_id, ok, payload)``: payload is ``(result, last_error)`` or ``(kind, message)``."""
    message = decode_value(data)
    if not (type(message) is list and len(message) == 3 and type(message[0]) is int):
        raise MalformedMessageError("a reply must be [request_id, ok, payload]")
    request_id, ok, payload = message
    if type(ok) is not bool or type(payload) is not list or len(payload) != 2:
        raise MalformedMessageError("a reply must be [request_id, ok, [a, b]]")
    if ok:
        return request_id, True, (_tuples(payload[0]), _last_error(payload[1]))
    kind, text = payload
    if type(kind) is not str or type(text) is not str:
        raise MalformedMessageError("an error reply must carry [kind, message] strings")
    return request_id, False, (kind, text)


def _tuples(value: Any) -> Any:
    """msgpack arrays decode as lists; the MT5 API returns tuples (``version()``,
    ``positions_get()``...), never lists."""
    if type(value) is list:
        return tuple(_tuples(item) for item in value)
    if type(value) is dict:
        return {key: _tuples(item) for key, item in value.items()}
    return value


def _last_error(value: Any) -> tuple[int, str]:
    if type(value) is list and len(value) == 2:
        code, text = value
        if type(code) is int and type(text) is str:
            return code, text
    raise MalformedMessageError("last_error must be [int, str]")


# ------------------------------------------------------------------------------ deadlines

#: Where ``initialize`` / ``login`` take their ``timeout`` (milliseconds) positionally.
_TIMEOUT_POSITION: Final = {"initialize": None, "login": 3}


def call_deadline(function: str, args: Any, kwargs: Mapping[str, Any], base_s: float) -> float:
    """Seconds a call may take: ``base_s``, or longer for an ``initialize``/``login`` whose own
    ``timeout`` (ms) asks for more, so the bridge never cuts short what the terminal allows."""
    if function not in _TIMEOUT_POSITION:
        return base_s
    position = _TIMEOUT_POSITION[function]
    timeout = kwargs.get("timeout")
    if timeout is None and position is not None and len(args) > position:
        timeout = args[position]
    if type(timeout) is int and timeout > 0:
        return max(base_s, timeout / 1000 + 5.0)
    return base_s
