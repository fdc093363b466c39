"""Who is looking at the console: an API key kept in an HttpOnly, SameSite=Strict cookie.

Signing in posts an API key; the service checks it against the configured hashes and sets
the cookie ``mt5gate_console`` to it: ``HttpOnly`` (no script reads it), ``SameSite=Strict``
(no other site's page sends it), ``Secure`` over HTTPS, no expiry (it ends with the browser
session), ``Path=/``. The key never reaches the page, localStorage or a URL. The cookie holding
the key itself, not a server-side session, means any replica of a fleet recognises it and a
restart signs nobody out; signing out deletes it.

Every write carries a CSRF token, as a form field ``csrf`` or an ``X-CSRF-Token`` header (htmx
sends it): ``HMAC-SHA256(key, "mt5gate-console-csrf")``, which only a page that was served to
the key's holder knows. A write whose ``Origin`` names another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from starlette.requests import HTTPConnection

from mt5gate.service.auth import Authenticator, AuthError, Principal

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "Visitor",
    "cookie_key",
    "csrf_token",
    "same_origin",
    "visitor",
]

COOKIE: Final = "mt5gate_console"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "x-csrf-token"
_CSRF_CONTEXT: Final = b"mt5gate-console-csrf"
_MAX_KEY: Final = 512


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in console user: the key's principal, the key (to call the API with) and the
    CSRF token of its pages. ``repr`` never shows the key."""

    principal: Principal
    key: str
    csrf: str

    def __repr__(self) -> str:
        return f"Visitor({self.principal.name!r}, scopes={sorted(self.principal.scopes)})"

    def may(self, scope: str) -> bool:
        """Whether the key holds ``scope`` (the pages hide what it may not do)."""
        return self.principal.allows(scope)


def csrf_token(key: str) -> str:
    """The CSRF token of the pages served to ``key``'s holder."""
    return hmac.new(key.encode("utf-8", "surrogatepass"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def cookie_key(connection: HTTPConnection) -> str | None:
    """The API key in the console's cookie, if any (bounded in length)."""
    key = connection.cookies.get(COOKIE)
    return key if key and len(key) <= _MAX_KEY else None


def visitor(connection: HTTPConnection, authenticator: Authenticator) -> Visitor | None:
    """The signed-in user of a request, or ``None`` (no cookie, or a key no longer valid)."""
    key = cookie_key(connection)
    if key is None:
        return None
    try:
        principal = authenticator.authenticate(key)
    except AuthError:
        return None
    return Visitor(principal, key, csrf_token(key))


def same_origin(connection: HTTPConnection) -> bool:
    """Whether the request comes from this site: no ``Origin`` header (a same-origin GET, or
    a client that is not a browser) or one naming this host and scheme."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def valid_csrf(presented: str | None, who: Visitor) -> bool:
    """Whether ``presented`` is the CSRF token of ``who``'s pages (constant-time compare)."""
    return presented is not None and hmac.compare_digest(presented.encode(), who.csrf.encode())
