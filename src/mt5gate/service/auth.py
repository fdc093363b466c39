"""API keys: making them, hashing them for the configuration, checking them, rate-limiting them.

A key is ``"mg_" + secrets.token_urlsafe(32)`` (256 random bits). The configuration holds only
its hash, ``sha256$<salt: 16 bytes hex>$<sha256(salt + key) hex>``: a salted fast hash is the
standard choice for high-entropy machine tokens (GitHub and most API gateways do the same).
A slow password hash (scrypt, argon2) protects *guessable* secrets against offline guessing;
a 256-bit random key cannot be guessed either way, and a deliberately slow hash would cost
tens of milliseconds and megabytes on every request, turning each unauthenticated request into
a cheap denial of service.

:class:`Authenticator` answers three questions per request, each failing with an
:class:`AuthError` the service renders as problem JSON:

* ``authenticate(presented)``: which configured key is this? (401 when missing or unknown)
* ``authorize(principal, scope)``: may it do this? (403) ``admin`` implies ``trade``
  implies ``read``;
* ``admit(principal)``: is it within its rate? (429 with ``Retry-After``) One token bucket
  per key: ``burst`` requests at once, refilled at ``rate_per_minute``.

The presented key is never stored, logged or echoed: verdicts are cached under
``sha256(presented)``, and no error text or repr contains it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    from mt5gate.service.config import ApiKeySettings

__all__ = [
    "CACHE_SIZE",
    "KEY_NAME_PATTERN",
    "KEY_PREFIX",
    "SCOPES",
    "AuthError",
    "Authenticator",
    "ForbiddenError",
    "Principal",
    "RateLimitedError",
    "Scope",
    "UnauthenticatedError",
    "check_hash",
    "default_burst",
    "hash_api_key",
    "key_config_snippet",
    "new_api_key",
    "verify",
]

Scope = Literal["read", "trade", "admin"]
#: Every scope, weakest first: each one implies those before it.
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
_LEVEL: Final[Mapping[str, int]] = {scope: level for level, scope in enumerate(SCOPES, 1)}

#: What every key made by :func:`new_api_key` starts with (lets secret scanners spot leaks).
KEY_PREFIX: Final = "mg_"
#: Names of API keys (and of accounts): they appear in logs, metrics and TOML.
KEY_NAME_PATTERN: Final = r"^[a-z0-9_-]{1,32}$"
#: Verdicts kept by an :class:`Authenticator` (oldest evicted first).
CACHE_SIZE: Final = 1024
#: Presented keys longer than this are refused unhashed (ours are 46 characters).
_MAX_KEY_LENGTH: Final = 512

#: Token-bucket slack for float rounding (tokens are refilled in fractions of a second).
_EPSILON: Final = 1e-9
_ALGORITHM: Final = "sha256"
_SALT_BYTES: Final = 16
_HASH_RE: Final = re.compile(r"^sha256\$([0-9a-f]{32})\$([0-9a-f]{64})$")
_HASH_RULE: Final = (
    "must be sha256$<salt: 32 hex digits>$<digest: 64 hex digits> "
    "(make one with: mt5gate serve --new-key NAME)"
)
_REALM: Final = 'Bearer realm="mt5gate"'


# ---------------------------------------------------------------------------------------------
# Keys and hashes


def new_api_key() -> str:
    """A new random API key: ``mg_`` and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str, *, salt: bytes | None = None) -> str:
    """The configuration form of ``key``: ``sha256$<salt hex>$<sha256(salt + key) hex>``.

    ``salt`` (16 bytes) is random unless given (tests pass one to get a fixed hash).
    """
    if not key:
        raise ValueError("an API key must not be empty")
    if salt is None:
        salt = secrets.token_bytes(_SALT_BYTES)
    if len(salt) != _SALT_BYTES:
        raise ValueError(f"the salt must be {_SALT_BYTES} bytes, got {len(salt)}")
    return f"{_ALGORITHM}${salt.hex()}${_digest(salt, key)}"


def _digest(salt: bytes, key: str) -> str:
    return hashlib.sha256(salt + key.encode("utf-8")).hexdigest()


def check_hash(stored: str) -> str:
    """``stored`` if it is a well-formed key hash (hex in lower case), else ``ValueError``
    naming the rule; the value itself is never in the message."""
    if not isinstance(stored, str):
        raise ValueError(_HASH_RULE)
    normal = stored.strip().lower()
    if _HASH_RE.match(normal) is None:
        raise ValueError(_HASH_RULE)
    return normal


def verify(key: str, stored: str) -> bool:
    """Whether ``key`` hashes to ``stored``; compares in constant time. A malformed ``stored``
    (which configuration validation refuses earlier) is ``False``, never an exception."""
    found = _HASH_RE.match(stored) if isinstance(stored, str) else None
    if found is None or not isinstance(key, str):
        return False
    salt, expected = found.groups()
    return hmac.compare_digest(_digest(bytes.fromhex(salt), key), expected)


def default_burst(rate_per_minute: int) -> int:
    """The burst of a key that does not set one: ten seconds' worth of its rate, at least 1."""
    return max(1, rate_per_minute // 6)


def _ordered_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = set(scopes)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; scopes are read, trade, admin")
    if not wanted:
        raise ValueError("an API key needs at least one scope: read, trade or admin")
    return [scope for scope in SCOPES if scope in wanted]


def key_config_snippet(name: str, scopes: Iterable[str]) -> tuple[str, str]:
    """A new key and the TOML ``[[api_keys]]`` entry that accepts it (only its hash).

    The key is shown once to whoever asked; the entry goes into the service's configuration.
    """
    if not isinstance(name, str) or re.match(KEY_NAME_PATTERN, name) is None:
        raise ValueError(
            f"an API key name is 1 to 32 lower-case letters, digits, '_' or '-', got {name!r}"
        )
    ordered = _ordered_scopes(scopes)
    key = new_api_key()
    listed = ", ".join(f'"{scope}"' for scope in ordered)
    snippet = (
        f'[[api_keys]]\nname = "{name}"\nhash = "{hash_api_key(key)}"\n'
        f"scopes = [{listed}]\nrate_per_minute = 600\n"
    )
    return key, snippet


# ---------------------------------------------------------------------------------------------
# Who is calling, and what went wrong


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller whose key was recognised: the key's configured name and scopes."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether this caller holds ``scope``: ``admin`` implies ``trade`` implies ``read``."""
        needed = _LEVEL.get(scope)
        if needed is None:
            return False
        return max((_LEVEL.get(held, 0) for held in self.scopes), default=0) >= needed


class AuthError(Exception):
    """A request refused before it reached an account: 401, 403 or 429.

    ``title`` and ``detail`` are for the problem JSON, ``headers`` for the response
    (``WWW-Authenticate`` on 401, ``Retry-After`` in whole seconds rounded up on 429). None of
    them ever holds the key that was presented.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        retry_after_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.title!r}, {self.detail!r})"


class UnauthenticatedError(AuthError):
    """401: no API key, or one that is not configured."""

    def __init__(self, detail: str, *, invalid: bool) -> None:
        challenge = f'{_REALM}, error="invalid_token"' if invalid else _REALM
        super().__init__(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


class ForbiddenError(AuthError):
    """403: the key is valid but lacks the scope the route needs."""

    def __init__(self, principal: Principal, scope: str) -> None:
        held = ", ".join(s for s in SCOPES if s in principal.scopes) or "none"
        super().__init__(
            403, "Forbidden",
            f"API key {principal.name!r} lacks the {scope!r} scope this needs (it has: {held}).",
        )  # fmt: skip
        self.scope = scope


class RateLimitedError(AuthError):
    """429: the key has used up its rate; ``Retry-After`` says when the next request fits."""

    def __init__(self, principal: Principal, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(
            429, "Too Many Requests",
            f"API key {principal.name!r} is over its rate limit; retry in {seconds} s.",
            retry_after_s=retry_after_s, headers={"Retry-After": str(seconds)},
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The authenticator


@dataclass(slots=True)
class _Bucket:
    """A token bucket: ``capacity`` tokens, refilled at ``per_second``."""

    capacity: float
    per_second: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token; 0.0 when granted, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.updated = now
        if self.tokens >= 1.0 - _EPSILON:  # a caller who waited retry_after_s exactly gets in
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / self.per_second


class Authenticator:
    """Checks presented API keys against the configured hashes, scopes and rates.

    Verdicts (which key, or none) are cached in a dict of at most ``cache_size`` entries keyed
    by ``sha256(presented)``, never the key itself, so a key is hashed against the N configured
    hashes once and each later request costs one sha256. ``clock`` is a monotonic clock in
    seconds (tests pass a fake one). A lock makes each call atomic.
    """

    def __init__(
        self,
        keys: Sequence[ApiKeySettings],
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        names = [key.name for key in keys]
        if len(set(names)) != len(names):
            raise ValueError(f"API key names must be unique, got {sorted(names)}")
        self._keys = tuple(keys)
        self._principals = {key.name: Principal(key.name, frozenset(key.scopes)) for key in keys}
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, str | None] = OrderedDict()
        self._cache_size = cache_size
        now = clock()
        self._buckets = {key.name: _bucket(key, now) for key in keys}

    def __repr__(self) -> str:
        return f"<Authenticator keys={sorted(self._principals)}>"

    @property
    def cached(self) -> int:
        """How many verdicts are cached now (at most ``cache_size``)."""
        return len(self._cache)

    def authenticate(self, presented: str | None) -> Principal:
        """The principal of the presented key; ``AuthError`` 401 when it is missing or unknown."""
        if not presented:
            raise UnauthenticatedError(
                "This needs an API key: send it as 'X-API-Key: <key>' or "
                "'Authorization: Bearer <key>'.",
                invalid=False,
            )
        name = self._lookup(presented) if len(presented) <= _MAX_KEY_LENGTH else None
        if name is None:
            raise UnauthenticatedError("The API key is not valid for this service.", invalid=True)
        return self._principals[name]

    def _lookup(self, presented: str) -> str | None:
        fingerprint = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            if fingerprint in self._cache:
                self._cache.move_to_end(fingerprint)
                return self._cache[fingerprint]
        name = next((key.name for key in self._keys if verify(presented, key.hash)), None)
        with self._lock:
            self._cache[fingerprint] = name
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return name

    def authorize(self, principal: Principal, scope: Scope) -> None:
        """Nothing when ``principal`` holds ``scope`` (or a stronger one), else ``AuthError`` 403
        naming the scope needed."""
        if not principal.allows(scope):
            raise ForbiddenError(principal, scope)

    def admit(self, principal: Principal) -> None:
        """Count one request of ``principal``; ``AuthError`` 429 when over its rate, with
        ``retry_after_s`` the time until the next request fits."""
        bucket = self._buckets.get(principal.name)
        if bucket is None:
            raise UnauthenticatedError("The API key is not valid for this service.", invalid=True)
        with self._lock:
            wait = bucket.take(self._clock())
        if wait > 0.0:
            raise RateLimitedError(principal, wait)


def _bucket(key: ApiKeySettings, now: float) -> _Bucket:
    burst = key.burst if key.burst is not None else default_burst(key.rate_per_minute)
    return _Bucket(float(burst), key.rate_per_minute / 60.0, float(burst), now)
