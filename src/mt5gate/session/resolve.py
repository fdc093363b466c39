"""Turn the session's ``terminal=`` argument into a Terminal, never silently a simulator.

A Terminal object is used as it is. Names: ``"official"`` imports the official ``MetaTrader5``
package (Windows only; a clear error elsewhere); with ``isolate`` it is imported in a child
process of its own instead (a :class:`~mt5gate.terminal.process.ProcessTerminal`: the package
keeps one connection per process, so two official terminals in one process cross-wire, and a
hung call in a child can be killed). ``"sim"`` builds a real-time simulated terminal
and logs a warning that it is simulated. URLs: ``bridge://host:port`` is mt5gate's bridge (the
token is passed separately, never in the URL; with ``ssl_context`` it is reached over TLS, the
context verifying the bridge's certificate, against ``server_hostname`` when given, else the
URL's host), ``rpyc://host:port`` an RPyC classic server such as mt5linux's.
"""

from __future__ import annotations

import logging
import ssl

from pydantic import SecretStr

from mt5gate.errors import MT5InitError
from mt5gate.terminal.base import Terminal
from mt5gate.terminal.tls import checked_server_name

__all__ = ["resolve_terminal"]

log = logging.getLogger("mt5gate.session")


def resolve_terminal(
    spec: Terminal | str,
    *,
    token: SecretStr | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    isolate: bool = False,
    process_name: str = "mt5gate-official",
) -> Terminal:
    """The Terminal that ``spec`` names (see the module docstring). ``ssl_context`` is for a
    ``bridge://`` URL only (TLS to the bridge); with anything else it is refused, and so is
    ``server_hostname`` (the name the bridge's certificate is issued for) without it.
    ``isolate`` only with ``"official"``, whose child process is then called ``process_name``."""
    server_hostname = _server_name(server_hostname, ssl_context)
    if not isinstance(spec, str):
        if ssl_context is not None:
            raise MT5InitError("ssl_context is for a bridge://host:port terminal only; give "
                               "a Terminal object its own TLS")  # fmt: skip
        _no_isolation(isolate, "a Terminal object (wrap it in a ProcessTerminal yourself)")
        return spec
    name = spec.strip().lower()
    if ssl_context is not None and not name.startswith("bridge://"):
        raise MT5InitError("TLS (ssl_context) is for bridge://host:port terminals only")
    if name == "official":
        return _official_process(process_name) if isolate else _official()
    _no_isolation(isolate, f"terminal {name.split(':', 1)[0]!r}")  # a URL may hold a password
    if name in ("sim", "sim://", "simulator"):
        return _simulator()
    if name.startswith("bridge://"):
        return _bridge(spec.strip(), token, ssl_context, server_hostname)
    if name.startswith("rpyc://"):
        return _rpyc(spec.strip())
    raise MT5InitError(
        f"unknown terminal {spec!r}. Pass a Terminal object, 'official' (the MetaTrader5 "
        "package, Windows), 'sim' (the simulator), 'bridge://host:port' or 'rpyc://host:port'."
    )


def _server_name(name: str | None, ssl_context: ssl.SSLContext | None) -> str | None:
    """``name`` checked: a host name or IP address, and only with TLS (``MT5InitError``)."""
    if name is None:
        return None
    if ssl_context is None:
        raise MT5InitError("server_hostname is the name the bridge's TLS certificate must "
                           "match: give ssl_context too")  # fmt: skip
    try:
        return checked_server_name(name)
    except ValueError as wrong:
        raise MT5InitError(f"server_hostname {wrong}") from None


def _bridge(
    url: str,
    token: SecretStr | None,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> Terminal:
    from mt5gate.terminal.bridge import BridgeTerminal

    if token is None:
        raise MT5InitError(
            "a bridge:// terminal needs the bridge token: MT5SessionManager(..., "
            "terminal_token=...), read from the same token file the bridge uses"
        )
    try:
        return BridgeTerminal.from_url(url, token=token.get_secret_value(),
                                       ssl_context=ssl_context,
                                       server_hostname=server_hostname)  # fmt: skip
    except ValueError as wrong:
        raise MT5InitError(f"bad bridge URL: {wrong}") from None


def _rpyc(url: str) -> Terminal:
    from mt5gate.terminal.rpyc_client import RPyCTerminal

    try:
        return RPyCTerminal.from_url(url)
    except ValueError as wrong:
        raise MT5InitError(f"bad rpyc URL: {wrong}") from None


def _no_isolation(isolate: bool, what: str) -> None:
    if isolate:
        raise MT5InitError(f"isolate=True is for terminal='official' only, not {what}")


def _official_process(name: str) -> Terminal:
    """The official package in a child process of its own, built there by the adapter (the
    child calls ``initialize()`` itself: one connection per process, semantics §1)."""
    from mt5gate.terminal.official import official_terminal
    from mt5gate.terminal.process import ProcessTerminal

    return ProcessTerminal(official_terminal, name=name)


def _official() -> Terminal:
    from mt5gate.terminal.official import official_terminal

    return official_terminal()


def _simulator() -> Terminal:
    from mt5gate.sim.clock import RealClock
    from mt5gate.sim.terminal import SimTerminal

    log.warning("mt5gate session uses the SIMULATED terminal (mt5gate.sim), not a real MT5")
    return SimTerminal(clock=RealClock())
