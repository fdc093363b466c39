"""mt5gate's bridge: one terminal served over TCP to ``BridgeTerminal`` clients.

``mt5gate.terminal.wire`` is the wire format, ``mt5gate.bridge.server`` the server
(:class:`~mt5gate.bridge.server.BridgeServer`: a thread per connection, ``listener`` accepting,
``link`` framing, ``gate`` letting one thread at a time into the terminal, ``calls`` answering),
``mt5gate.bridge.cli`` the ``mt5gate bridge`` command; the client is
:class:`mt5gate.terminal.bridge.BridgeTerminal`. See ``docs/bridge.md``.

The submodules are imported on use, so the client does not load the server.
"""
