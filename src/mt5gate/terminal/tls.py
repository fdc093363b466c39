"""TLS to a bridge, client side: the name its certificate must match, and why a handshake failed.

A bridge's certificate is always verified, and against a name: the URL's host unless a TLS
server name is given (the bridge reached at an IP address, or by another name than the one
its certificate is issued for). That name is sent in the handshake (SNI) and checked against
the certificate. :func:`checked_server_name` is the rule such a name obeys (the ``mt5gate
serve`` setting ``tls_server_name`` and ``BridgeTerminal(server_hostname=...)`` share it).

:func:`describe_tls_failure` turns the ``ssl`` module's exception into the sentence a user
reads in ``last_error()``, the service's health and its 503 answers: what failed, the OpenSSL
reason, the bridge's address, and what to check. No secret can be in it (the handshake
carries none: the token goes only after it).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import Final

__all__ = ["SERVER_NAME_RULE", "checked_server_name", "describe_tls_failure"]

SERVER_NAME_RULE: Final = (
    "must be the host name the bridge's certificate is issued for (letters, digits, '-' and "
    "'.', such as bridge.example.com; no scheme, port or wildcard) or an IP address"
)
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
#: how OpenSSL's text ends in CPython's messages (where in _ssl.c it was raised): noise
_SOURCE: Final = re.compile(r"\s*\(_ssl\.c:\d+\)$")
#: the leading "[SSL: REASON] " of CPython's messages: the reason goes last, in brackets
_REASON: Final = re.compile(r"^\[[A-Z0-9_]+: [A-Z0-9_]+\]\s*")


def checked_server_name(value: str) -> str:
    """``value`` if it is a DNS host name or an IP address (ValueError with the rule if not);
    a DNS name is returned lower-cased, as certificates compare it."""
    name = value.strip()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{SERVER_NAME_RULE}, got {value!r}")
    if labels[-1].isdigit():  # 1.2.3 or 999.1.1.1: no host name, and no IP address
        raise ValueError(f"{SERVER_NAME_RULE}, got {value!r}")
    return name.lower()


def describe_tls_failure(error: OSError, where: str, server_name: str) -> str:
    """Why the TLS handshake with the bridge at ``where`` (``bridge host:port``) failed, its
    certificate checked against ``server_name``: one line, for ``last_error()``."""
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = str(error.verify_message or _text(error)).rstrip(".")
        hint = ""
        if error.verify_code in _MISMATCH:
            hint = (f"; the certificate is not issued for {server_name!r}: give the name it "
                    "is issued for as the TLS server name (tls_server_name, or "
                    "server_hostname=)")  # fmt: skip
        elif error.verify_code in _UNTRUSTED:
            hint = ("; trust the CA that issued the bridge's certificate (tls_ca_file), or "
                    "give the bridge a certificate the system trusts")  # fmt: skip
        code = f" [{error.reason}]" if error.reason else ""
        return f"TLS: certificate verify failed: {reason}{code} ({where}{hint})"
    if isinstance(error, TimeoutError):
        return f"TLS: no handshake before the connect timeout ({where}; is it an mt5gate bridge?)"
    code = f" [{error.reason}]" if isinstance(error, ssl.SSLError) and error.reason else ""
    return (f"TLS: the handshake failed: {_text(error)}{code} ({where}; is the bridge serving "
            "TLS? start it with mt5gate bridge --tls-cert ... --tls-key ...)")  # fmt: skip


#: X509_V_ERR_* codes meaning the issuer is not trusted (no CA given for it, or self-signed)
_UNTRUSTED: Final = frozenset({2, 18, 19, 20, 21})
#: X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH
_MISMATCH: Final = frozenset({62, 63, 64})


def _text(error: OSError) -> str:
    """The exception's message without CPython's ``[SSL: X]`` prefix and ``(_ssl.c:N)`` tail."""
    text = error.strerror if isinstance(error.strerror, str) else str(error)
    return _REASON.sub("", _SOURCE.sub("", text)) or type(error).__name__
