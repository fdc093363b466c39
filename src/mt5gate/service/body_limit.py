"""The request body limit: 413 for a body over ``max_body_bytes``, declared or streamed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mt5gate.service.problems import Problem, problem_response

__all__ = ["BodyLimit"]


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, declared or streamed (chunked).

    An HTTP/1.x request frames its body by ``Content-Length`` or by ``Transfer-Encoding``, and
    the server delivers no more than that framing says: a declared length within the limit (or
    no body at all, neither header) passes untouched, with nothing read or copied here, which is
    every ``GET``. A declared length over the limit is refused before a byte is read. A chunked
    body (or any body of another protocol version) is read here first (it is small by
    definition) and replayed to the app, or refused once it passes the limit. An over-long body
    is drained up to a cap before the answer, so the client reads the 413 instead of a
    connection reset.
    """

    DRAIN_CAP = 1 << 20

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, streamed = _framing(scope)
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._drain(receive, 0)
            await self._refuse(scope, receive, send)
            return
        if not streamed:  # the server delivers at most the declared length
            await self.app(scope, receive, send)
            return
        body, complete = await self._read(receive)
        if not complete:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The whole body, or (what was read, False) once it passes the limit (drained)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                return b"", False
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True

    async def _drain(self, receive: Receive, seen: int) -> None:
        while seen <= self.DRAIN_CAP:
            message = await receive()
            seen += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(413, "Request too large",
                          f"Request bodies are limited to {self.limit} bytes.",
                          "https://mt5gate.dev/problems/too-large")  # fmt: skip
        await problem_response(problem)(scope, receive, send)


def _framing(scope: Scope) -> tuple[bytes | None, bool]:
    """A request's declared ``Content-Length`` (if any), and whether its body must be counted
    as it arrives: chunked, or a protocol other than HTTP/1.x, whose framing is not a length."""
    declared: bytes | None = None
    chunked = False
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            declared = value
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked or scope.get("http_version") not in ("1.0", "1.1")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the real channel (disconnects)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
