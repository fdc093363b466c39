"""Secrets never reach a log handler, an error message, health output or the journal."""

from __future__ import annotations

import io
import logging
import re
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretBytes, SecretStr

from mt5gate.errors import MT5AuthError, MT5Error
from mt5gate.redaction import (
    DEFAULT_SECRET_KEYS,
    MASK,
    RedactingFilter,
    Redactor,
    redact_text,
)

PASSWORD = "Tr0ub4dor&3"


@dataclass(frozen=True)
class Credentials:
    login: int
    password: str
    server: str
    otp: str = field(default="123456", repr=False)


class Settings(BaseModel):
    login: int
    password: SecretStr
    server: str


class Side(IntEnum):
    BUY = 0


Account = namedtuple("Account", ["login", "token"])


def test_mapping_values_under_secret_keys_are_masked() -> None:
    redacted = Redactor().redact(
        {"login": 5001, "password": PASSWORD, "Api-Key": "k", "server": "MetaQuotes-Demo"}
    )
    assert redacted == {
        "login": 5001,
        "password": MASK,
        "Api-Key": MASK,
        "server": "MetaQuotes-Demo",
    }


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_passwd",
        "pwd",
        "client_secret",
        "access_token",
        "api_key",
        "x-api-key",
        "apikey",
        "Authorization",
        "auth",
        "credentials",
        "private_key",
        "private-key",
        "cookie",
        "session",
    ],
)
def test_secret_key_patterns(key: str) -> None:
    assert Redactor().is_secret_key(key)
    assert Redactor().redact({key: "value"}) == {key: MASK}


@pytest.mark.parametrize("key", ["login", "server", "symbol", "comment", "volume", 7, None])
def test_ordinary_keys_are_kept(key: object) -> None:
    assert not Redactor().is_secret_key(key)
    assert Redactor().redact({key: "value"}) == {key: "value"}


def test_nested_structures() -> None:
    redactor = Redactor([PASSWORD])
    value = {
        "accounts": [
            {"login": 1, "password": "first-pass"},
            ("text with " + PASSWORD, 2.5, None, True, Side.BUY),
        ],
        "tags": {"a", f"x{PASSWORD}y"},
        "frozen": frozenset({"plain"}),
        "credentials": {"anything": "inside"},
    }
    assert redactor.redact(value) == {
        "accounts": [
            {"login": 1, "password": MASK},
            (f"text with {MASK}", 2.5, None, True, Side.BUY),
        ],
        "tags": {"a", f"x{MASK}y"},
        "frozen": frozenset({"plain"}),
        "credentials": MASK,
    }


def test_dataclasses_become_dicts_and_hidden_fields_stay_hidden() -> None:
    redacted = Redactor().redact(Credentials(5001, PASSWORD, "MetaQuotes-Demo"))
    assert redacted == {"login": 5001, "password": MASK, "server": "MetaQuotes-Demo", "otp": MASK}


def test_named_tuples_become_dicts() -> None:
    assert Redactor().redact(Account(5001, "t0k3n")) == {"login": 5001, "token": MASK}


def test_secret_str_is_always_masked() -> None:
    redactor = Redactor()
    assert redactor.redact(SecretStr(PASSWORD)) == MASK
    assert redactor.redact(SecretBytes(b"raw")) == MASK
    assert redactor.redact({"comment": SecretStr("anything")}) == {"comment": MASK}


def test_pydantic_models_become_dicts() -> None:
    settings = Settings(login=5001, password=SecretStr(PASSWORD), server="S")
    assert Redactor().redact(settings) == {"login": 5001, "password": MASK, "server": "S"}
    assert PASSWORD not in repr(settings)


def test_secret_str_can_be_a_known_secret() -> None:
    redactor = Redactor([SecretStr(PASSWORD)])
    assert redactor.redact_text(f"login with {PASSWORD} failed") == f"login with {MASK} failed"


def test_known_secret_inside_a_longer_string() -> None:
    redactor = Redactor([PASSWORD])
    assert redactor.redact(f"url=https://u:{PASSWORD}@host/x") == f"url=https://u:{MASK}@host/x"
    assert redactor.redact(f"{PASSWORD}{PASSWORD}") == MASK + MASK


def test_longest_secret_first() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.redact_text("xxabcdefghxx abcd") == f"xx{MASK}xx {MASK}"


def test_escaped_spellings_of_a_known_secret() -> None:
    secret = 'p"a\\ss/wd'
    redactor = Redactor([secret])
    json_text = '{"pw": "p\\"a\\\\ss/wd"}'
    assert "ss/wd" not in redactor.redact_text(json_text)
    assert "ss/wd" not in redactor.redact_text(repr(secret))
    assert "ss%2Fwd" not in redactor.redact_text("q=p%22a%5Css%2Fwd")


def test_short_secrets_are_ignored() -> None:
    redactor = Redactor(["1", "ab", "xyz", ""])
    text = "a1 ab xyz, 1 + 1"
    assert redactor.redact_text(text) == text
    assert Redactor(["abcd"]).redact_text("abcd") == MASK


def test_exceptions_become_redacted_text() -> None:
    error = ValueError(f"cannot log in with {PASSWORD}")
    assert Redactor([PASSWORD]).redact(error) == f"ValueError: cannot log in with {MASK}"
    assert Redactor().redact(KeyError("password=hunter22")) == f"KeyError: 'password={MASK}'"


def test_plain_values_keep_their_type() -> None:
    now = datetime(2026, 1, 6, tzinfo=UTC)
    redactor = Redactor()
    for value in (None, True, 3, 2.5, Side.BUY, now):
        assert redactor.redact(value) is value


def test_other_objects_become_their_redacted_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return f"Opaque(password={PASSWORD})"

    assert Redactor().redact(Opaque()) == f"Opaque(password={MASK})"
    assert Redactor([PASSWORD]).redact(PASSWORD.encode()) == MASK


def test_cycles_end() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert Redactor().redact(loop) == [1, "<cycle>"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter22 next", f"password={MASK} next"),
        (
            "login(5001, password='hunter22', server='S')",
            f"login(5001, password='{MASK}', server='S')",
        ),
        ('{"password": "hun\\"ter", "login": 1}', f'{{"password": "{MASK}", "login": 1}}'),
        ("{'api_key': 'k-123', 'x': 1}", f"{{'api_key': '{MASK}', 'x': 1}}"),
        ("Authorization: Bearer abc.def.ghi rest", f"Authorization: {MASK} rest"),
        ("DB_PASSWORD = s3cr3t;", f"DB_PASSWORD = {MASK};"),
        ("token=abc&user=bob", f"token={MASK}"),
        ("f(password=pa,ss)", f"f(password={MASK})"),
        ("initialize() failed: (-6, 'Terminal: Authorization failed')", None),
        ('Invalid "password" argument', None),
    ],
)
def test_redact_text_masks_key_value_patterns_without_known_secrets(
    text: str, expected: str | None
) -> None:
    assert redact_text(text) == (text if expected is None else expected)


def test_redact_text_with_known_secrets() -> None:
    assert redact_text(f"x {PASSWORD} y", [PASSWORD]) == f"x {MASK} y"


def test_custom_key_pattern() -> None:
    redactor = Redactor(keys=re.compile(r"pin"))
    assert redactor.redact({"pin": "1234", "password": "p"}) == {"pin": MASK, "password": "p"}
    assert redactor.redact_text("pin=1234 password=p") == f"pin={MASK} password=p"


def test_redactor_repr_and_extension_do_not_leak() -> None:
    redactor = Redactor([PASSWORD])
    assert PASSWORD not in repr(redactor)
    assert repr(redactor).startswith("Redactor(secrets=1, keys=")
    wider = redactor.with_secrets("other-secret")
    assert wider.redact_text(f"{PASSWORD} other-secret") == f"{MASK} {MASK}"
    assert redactor.redact_text("other-secret") == "other-secret"
    assert DEFAULT_SECRET_KEYS.search("PassWord")


# --- errors ----------------------------------------------------------------------------------


def test_error_with_a_known_secret_never_shows_it() -> None:
    error = MT5AuthError(
        f"login(5001, {PASSWORD!r}) failed",
        hint=f"Check {PASSWORD}",
        secrets=[PASSWORD],
        expected_login=5001,
    )
    for text in (str(error), repr(error), error.message, error.hint, repr(error.args)):
        assert PASSWORD not in text
    assert MASK in str(error)


def test_error_masks_password_patterns_on_its_own() -> None:
    error = MT5Error("initialize(login=5001, password='hunter22', server='S') failed")
    assert "hunter22" not in str(error)
    assert "hunter22" not in repr(error)


# --- logging ---------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A real logger whose one handler writes formatted records to a buffer, redacted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(user)s"))
    handler.addFilter(RedactingFilter(Redactor([PASSWORD])))
    logger = logging.getLogger("tests.errors.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _log_extra(secret: str = "none") -> dict[str, object]:
    return {"user": secret}


def test_password_as_a_message_argument(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("connecting with %s to %s", PASSWORD, "MetaQuotes-Demo", extra=_log_extra())
    output = stream.getvalue()
    assert PASSWORD not in output
    assert f"connecting with {MASK} to MetaQuotes-Demo" in output


def test_password_in_a_dict_argument(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("config %s", {"login": 1, "password": "other-pass"}, extra=_log_extra())
    logger.info(
        "login %(login)s %(password)s", {"login": 1, "password": "dict-pass"}, extra=_log_extra()
    )
    output = stream.getvalue()
    assert "other-pass" not in output
    assert "dict-pass" not in output
    assert f"'password': '{MASK}'" in output


def test_password_after_a_key_in_an_unknown_value(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("retrying login password=%s", "never-registered", extra=_log_extra())
    assert "never-registered" not in stream.getvalue()


def test_password_in_an_exception(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError(f"terminal refused {PASSWORD}")
    except RuntimeError:
        logger.exception("login failed", extra=_log_extra())
    logger.error("failed: %s", ValueError(f"bad {PASSWORD}"), extra=_log_extra())
    output = stream.getvalue()
    assert PASSWORD not in output
    assert "Traceback" in output
    assert f"RuntimeError: terminal refused {MASK}" in output


def test_password_in_extra_and_stack(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("hello", extra={"user": f"bob:{PASSWORD}"}, stack_info=True)
    output = stream.getvalue()
    assert PASSWORD not in output
    assert f"bob:{MASK}" in output


def test_password_as_the_message_itself(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info(PASSWORD, extra=_log_extra())
    logger.info({"password": "in-msg-dict"}, extra=_log_extra())
    output = stream.getvalue()
    assert PASSWORD not in output
    assert "in-msg-dict" not in output


def test_a_malformed_record_is_still_logged_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("two %s %s", PASSWORD, extra=_log_extra())
    output = stream.getvalue()
    assert PASSWORD not in output
    assert "two %s %s" in output


def test_filter_without_a_redactor_masks_key_values() -> None:
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "pw: password=%s", ("abc123",), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"pw: password={MASK}"


# ---------------------------------------------------------------- key=value search, linear


def _quadratic_key_value() -> re.Pattern[str]:
    """The key=value pattern as it was before keys were anchored at the start of a run (it
    tried every position of a run again): the reference the anchored one must agree with."""
    value = (
        r"(?:Bearer|Basic|Token)\s+[^\s'\"]*[^\s'\",;)}\]]"
        r'|"(?:[^"\\]|\\.)*"'
        r"|'(?:[^'\\]|\\.)*'"
        r"|[^\s'\"]*[^\s'\",;)}\]]"
    )
    key = rf"[\w.-]*(?:{DEFAULT_SECRET_KEYS.pattern})[\w.-]*"
    return re.compile(
        rf"(?P<key>[\"']?{key}[\"']?\s*[:=]\s*)(?P<value>{value})",
        DEFAULT_SECRET_KEYS.flags | re.IGNORECASE,
    )


_PIECES = st.sampled_from(
    ["password", "api_key", "Token", "auth", "x", "my.", "-", "_", "=", ":", " ", '"', "'",
     ",", ";", ")", "]", "Bearer ", "abc", "9", "é", "\\", "\n"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_key_values_are_masked_as_before_they_were_anchored(text: str) -> None:
    from mt5gate.redaction import _DEFAULT_KEY_VALUE, _mask_value

    assert _DEFAULT_KEY_VALUE.sub(_mask_value, text) == _quadratic_key_value().sub(
        _mask_value, text
    )


def test_a_long_run_without_spaces_is_still_masked() -> None:
    blob = "x" * 20_000  # compact JSON or base64: before the anchor, minutes of regex work
    text = f'{{"data":"{blob}","password":"{PASSWORD}","tail":"{blob}"}}'
    masked = Redactor([]).redact_text(text)
    assert PASSWORD not in masked
    assert f'"password":"{MASK}"' in masked
    assert masked.count(blob) == 2
