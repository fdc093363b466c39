"""API keys: making and hashing them, constant-time verification, scopes, 401/403/429 errors,
the per-key token bucket on a fake clock, the bounded verdict cache, and that a presented key
never shows up in an error."""

from __future__ import annotations

import hmac
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mt5gate.service.auth import (
    CACHE_SIZE,
    KEY_PREFIX,
    SCOPES,
    Authenticator,
    AuthError,
    ForbiddenError,
    Principal,
    RateLimitedError,
    Scope,
    UnauthenticatedError,
    check_hash,
    default_burst,
    hash_api_key,
    key_config_snippet,
    new_api_key,
    verify,
)
from mt5gate.service.config import ApiKeySettings, load_settings

SALT = bytes(range(16))
READER_KEY = "mg_reader-0123456789abcdefghijklmnopqrstuvwxyzAB"
TRADER_KEY = "mg_trader-0123456789abcdefghijklmnopqrstuvwxyzAB"
ADMIN_KEY = "mg_admin-0123456789abcdefghijklmnopqrstuvwxyzABC"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def key(name: str, secret: str, scopes: set[Scope], **options: Any) -> ApiKeySettings:
    return ApiKeySettings(name=name, hash=hash_api_key(secret), scopes=frozenset(scopes), **options)


def authenticator(clock: FakeClock | None = None, **options: Any) -> Authenticator:
    keys = [
        key("reader", READER_KEY, {"read"}),
        key("trader", TRADER_KEY, {"trade"}, rate_per_minute=60, burst=2),
        key("admin", ADMIN_KEY, {"admin"}, rate_per_minute=7, burst=1),
    ]
    return Authenticator(keys, clock=clock or FakeClock(), **options)


def refused(call: Any, *args: Any) -> AuthError:
    with pytest.raises(AuthError) as caught:
        call(*args)
    return caught.value


def leaks(error: AuthError, secret: str) -> bool:
    texts = [str(error), repr(error), error.title, error.detail, *error.headers.values()]
    return any(secret in text for text in texts)


# ---------------------------------------------------------------------------------------------
# Keys and hashes


def test_new_keys_are_prefixed_random_and_url_safe() -> None:
    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    for made in keys:
        assert made.startswith(KEY_PREFIX)
        assert re.fullmatch(r"mg_[A-Za-z0-9_-]{43}", made)


def test_hash_format_and_determinism_with_a_given_salt() -> None:
    stored = hash_api_key("mg_key", salt=SALT)
    algorithm, salt, digest = stored.split("$")
    assert (algorithm, salt) == ("sha256", SALT.hex())
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hash_api_key("mg_key", salt=SALT) == stored
    assert hash_api_key("mg_other", salt=SALT) != stored
    assert "mg_key" not in stored


def test_random_salts_make_different_hashes_that_all_verify() -> None:
    first, second = hash_api_key("mg_key"), hash_api_key("mg_key")
    assert first != second
    assert verify("mg_key", first)
    assert verify("mg_key", second)
    assert check_hash(first) == first


@pytest.mark.parametrize(("secret", "salt"), [("", None), ("mg_key", b"short"), ("k", bytes(17))])
def test_hash_refuses_an_empty_key_or_a_wrong_salt(secret: str, salt: bytes | None) -> None:
    with pytest.raises(ValueError, match=r"empty|salt must be 16 bytes"):
        hash_api_key(secret, salt=salt)


def test_verify_accepts_the_key_and_nothing_else() -> None:
    stored = hash_api_key("mg_right", salt=SALT)
    assert verify("mg_right", stored)
    for wrong in ("mg_wrong", "mg_right ", "", "MG_RIGHT", "mg_righ"):
        assert not verify(wrong, stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "mg_right",
        "md5$" + "0" * 32 + "$" + "0" * 64,
        "sha256$" + "0" * 31 + "$" + "0" * 64,
        "sha256$" + "0" * 32 + "$" + "0" * 63,
        "sha256$" + "g" * 32 + "$" + "0" * 64,
        "sha256$" + "0" * 32 + "$" + "0" * 64 + "$extra",
        None,
        42,
    ],
)
def test_a_malformed_stored_hash_never_verifies_and_never_raises(stored: Any) -> None:
    assert verify("mg_right", stored) is False
    with pytest.raises(ValueError, match=r"must be sha256\$") as caught:
        check_hash(stored)
    if isinstance(stored, str) and stored:
        assert stored not in str(caught.value)


def test_verify_rejects_a_non_string_key() -> None:
    assert verify(None, hash_api_key("mg_right")) is False  # type: ignore[arg-type]


def test_check_hash_normalises_case_and_spaces() -> None:
    stored = hash_api_key("mg_key", salt=SALT)
    assert check_hash(f"  {stored.upper().replace('SHA256', 'sha256')} ") == stored
    assert verify("mg_key", check_hash(stored.upper()))


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    stored = hash_api_key("mg_right", salt=SALT)
    assert verify("mg_right", stored)
    assert not verify("mg_wrong", stored)
    assert len(calls) == 2
    assert all(expected == stored.split("$")[2] for _, expected in calls)


def test_default_burst_is_ten_seconds_of_rate_and_at_least_one() -> None:
    assert [default_burst(r) for r in (600, 60, 6, 5, 1)] == [100, 10, 1, 1, 1]


# ---------------------------------------------------------------------------------------------
# Principals and scopes


@pytest.mark.parametrize(
    ("held", "allowed"),
    [
        ({"read"}, {"read"}),
        ({"trade"}, {"read", "trade"}),
        ({"admin"}, {"read", "trade", "admin"}),
        ({"read", "admin"}, {"read", "trade", "admin"}),
        (set(), set()),
        ({"bogus"}, set()),
    ],
)
def test_admin_implies_trade_implies_read(held: set[str], allowed: set[str]) -> None:
    principal = Principal("k", frozenset(held))
    assert {scope for scope in SCOPES if principal.allows(scope)} == allowed
    assert not principal.allows("root")


def test_scopes_are_ordered_weakest_first() -> None:
    assert SCOPES == ("read", "trade", "admin")


# ---------------------------------------------------------------------------------------------
# 401 and 403


def test_a_missing_key_is_401_with_a_challenge() -> None:
    auth = authenticator()
    for presented in (None, ""):
        error = refused(auth.authenticate, presented)
        assert isinstance(error, UnauthenticatedError)
        assert (error.status, error.title) == (401, "Unauthorized")
        assert "needs an API key" in error.detail
        assert error.headers == {"WWW-Authenticate": 'Bearer realm="mt5gate"'}
        assert error.retry_after_s is None


def test_an_unknown_key_is_401_and_never_echoed() -> None:
    auth = authenticator()
    presented = "mg_distinctive-WRONG-key-7f3a9c"
    error = refused(auth.authenticate, presented)
    assert isinstance(error, UnauthenticatedError)
    assert error.status == 401
    assert error.detail == "The API key is not valid for this service."
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="mt5gate", error="invalid_token"'
    assert not leaks(error, presented)
    assert not leaks(error, "7f3a9c")


def test_an_overlong_key_is_refused_without_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator()
    monkeypatch.setattr("mt5gate.service.auth.verify", pytest.fail)
    error = refused(auth.authenticate, "x" * 100_000)
    assert error.status == 401
    assert auth.cached == 0


def test_a_valid_key_is_its_principal() -> None:
    auth = authenticator()
    assert auth.authenticate(READER_KEY) == Principal("reader", frozenset({"read"}))
    assert auth.authenticate(ADMIN_KEY) == Principal("admin", frozenset({"admin"}))
    assert "reader" in repr(auth)
    assert "sha256" not in repr(auth)


def test_a_valid_key_of_another_service_is_refused() -> None:
    auth = Authenticator([key("reader", READER_KEY, {"read"})])
    assert refused(auth.authenticate, TRADER_KEY).status == 401


def test_wrong_scope_is_403_naming_the_scope_needed() -> None:
    auth = authenticator()
    reader = auth.authenticate(READER_KEY)
    auth.authorize(reader, "read")
    error = refused(auth.authorize, reader, "trade")
    assert isinstance(error, ForbiddenError)
    assert (error.status, error.title, error.scope) == (403, "Forbidden", "trade")
    assert "'trade'" in error.detail
    assert "'reader'" in error.detail
    assert "has: read" in error.detail
    assert error.headers == {}
    assert not leaks(error, READER_KEY)
    nothing = Principal("nothing", frozenset())
    assert "has: none" in refused(auth.authorize, nothing, "read").detail


def test_scope_implication_in_authorize() -> None:
    auth = authenticator()
    trader, admin = auth.authenticate(TRADER_KEY), auth.authenticate(ADMIN_KEY)
    auth.authorize(trader, "read")
    auth.authorize(trader, "trade")
    assert refused(auth.authorize, trader, "admin").status == 403
    for scope in SCOPES:
        auth.authorize(admin, scope)


def test_errors_never_hold_any_presented_key() -> None:
    auth = authenticator()
    for presented in (READER_KEY, TRADER_KEY, "mg_nope-abcdef0123456789"):
        with pytest.raises(AuthError) as caught:
            auth.authorize(auth.authenticate(presented), "admin")
        assert not leaks(caught.value, presented)
        assert presented not in str(caught.value.args)


# ---------------------------------------------------------------------------------------------
# 429: the token bucket


def test_burst_then_429_with_retry_after_rounded_up_then_recovery() -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    trader = auth.authenticate(TRADER_KEY)  # 60 per minute = 1 per second, burst 2
    auth.admit(trader)
    auth.admit(trader)
    error = refused(auth.admit, trader)
    assert isinstance(error, RateLimitedError)
    assert (error.status, error.title) == (429, "Too Many Requests")
    assert error.retry_after_s == pytest.approx(1.0)
    assert error.headers == {"Retry-After": "1"}
    assert "'trader'" in error.detail
    assert "retry in 1 s" in error.detail
    clock.advance(0.4)
    again = refused(auth.admit, trader)
    assert again.retry_after_s == pytest.approx(0.6)
    assert again.headers == {"Retry-After": "1"}  # rounded up, never 0
    clock.advance(0.6)
    auth.admit(trader)
    assert refused(auth.admit, trader).status == 429


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    admin = auth.authenticate(ADMIN_KEY)  # 7 per minute: a token every 8.57 s, burst 1
    auth.admit(admin)
    error = refused(auth.admit, admin)
    assert error.retry_after_s == pytest.approx(60 / 7)
    assert error.headers["Retry-After"] == "9"
    clock.advance(60 / 7)
    auth.admit(admin)


def test_an_idle_bucket_refills_only_up_to_its_burst() -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    trader = auth.authenticate(TRADER_KEY)
    clock.advance(3600)
    auth.admit(trader)
    auth.admit(trader)
    assert refused(auth.admit, trader).status == 429


def test_a_clock_going_backwards_refills_nothing() -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    trader = auth.authenticate(TRADER_KEY)
    auth.admit(trader)
    auth.admit(trader)
    clock.advance(-100)
    assert refused(auth.admit, trader).status == 429


def test_each_key_has_its_own_bucket_and_default_burst() -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    trader, reader = auth.authenticate(TRADER_KEY), auth.authenticate(READER_KEY)
    auth.admit(trader)
    auth.admit(trader)
    for _ in range(100):  # rate 600, default burst 600 // 6
        auth.admit(reader)
    assert refused(auth.admit, reader).retry_after_s == pytest.approx(0.1)
    assert refused(auth.admit, trader).status == 429


def test_a_key_without_burst_after_construction_uses_the_default() -> None:
    settings = ApiKeySettings.model_construct(
        name="raw", hash=hash_api_key("mg_raw"), scopes=frozenset({"read"}), rate_per_minute=6,
        burst=None,
    )  # fmt: skip
    auth = Authenticator([settings], clock=FakeClock())
    raw = auth.authenticate("mg_raw")
    auth.admit(raw)
    assert refused(auth.admit, raw).retry_after_s == pytest.approx(10.0)


def test_admitting_a_principal_of_no_configured_key_is_401() -> None:
    auth = authenticator()
    error = refused(auth.admit, Principal("stranger", frozenset({"admin"})))
    assert error.status == 401


# ---------------------------------------------------------------------------------------------
# The verdict cache


def test_a_key_is_verified_once_then_served_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    auth = authenticator()
    for _ in range(5):
        auth.authenticate(ADMIN_KEY)
    assert len(calls) == 3  # checked against the three stored hashes, once
    for _ in range(5):
        refused(auth.authenticate, "mg_unknown")
    assert len(calls) == 6  # a refused key is cached too
    assert auth.cached == 2


def test_the_cache_is_bounded_and_keeps_the_recent_verdicts() -> None:
    auth = authenticator(cache_size=3)
    auth.authenticate(READER_KEY)
    for number in range(10):
        refused(auth.authenticate, f"mg_unknown-{number}")
        auth.authenticate(READER_KEY)  # used again: stays cached
    assert auth.cached == 3
    cached = list(auth._cache)
    assert all(len(entry) == 32 for entry in cached)  # sha256 digests, not keys
    assert all(READER_KEY.encode() not in entry for entry in cached)
    assert READER_KEY not in repr(auth._cache)
    assert "reader" in auth._cache.values()


def test_the_default_cache_size() -> None:
    auth = authenticator()
    for number in range(CACHE_SIZE + 50):
        refused(auth.authenticate, f"mg_unknown-{number}")
    assert auth.cached == CACHE_SIZE


def test_construction_refuses_duplicate_names_and_an_empty_cache() -> None:
    one = key("same", READER_KEY, {"read"})
    with pytest.raises(ValueError, match="unique"):
        Authenticator([one, key("same", TRADER_KEY, {"trade"})])
    with pytest.raises(ValueError, match="cache_size"):
        Authenticator([one], cache_size=0)


def test_no_keys_refuses_everyone() -> None:
    auth = Authenticator([])
    assert refused(auth.authenticate, READER_KEY).status == 401


# ---------------------------------------------------------------------------------------------
# The CLI's snippet


def test_key_config_snippet_loads_and_accepts_its_key(tmp_path: Path) -> None:
    made, snippet = key_config_snippet("ci-bot", ["trade", "read", "read"])
    assert made.startswith(KEY_PREFIX)
    assert made not in snippet
    entry = tomllib.loads(snippet)["api_keys"][0]
    assert entry["name"] == "ci-bot"
    assert entry["scopes"] == ["read", "trade"]
    assert entry["rate_per_minute"] == 600
    assert verify(made, entry["hash"])
    config = tmp_path / "mt5gate.toml"
    config.write_text('[[accounts]]\nname = "main"\n\n' + snippet)
    settings = load_settings(config, {})
    auth = Authenticator(settings.api_keys)
    principal = auth.authenticate(made)
    assert principal == Principal("ci-bot", frozenset({"read", "trade"}))


@pytest.mark.parametrize(
    ("name", "scopes", "match"),
    [
        ("CI", ["read"], "API key name"),
        ('a"b', ["read"], "API key name"),
        ("", ["read"], "API key name"),
        ("x" * 33, ["read"], "API key name"),
        ("ci", [], "at least one scope"),
        ("ci", ["read", "root"], r"unknown scope\(s\) \['root'\]"),
    ],
)
def test_key_config_snippet_refuses_bad_names_and_scopes(
    name: str, scopes: list[str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        key_config_snippet(name, scopes)
