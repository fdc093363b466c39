"""RPyC's own classic server in a real subprocess, hosting the simulator as ``MetaTrader5``.

This is what mt5linux users run (``rpyc_classic``: a ``ThreadedServer`` of ``SlaveService``),
with the simulator's drop-in module installed in place of the official package, on a virtual
clock. ``python -m tests.rpyc.classic_server [start_ms [port [service]]]`` prints the port it
listens on (port 0: the OS picks it) and serves until killed; :class:`ClassicServer` starts and
stops one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[2]

#: Tuesday 2026-01-06 10:00 server time: the forex session is open.
WEEKDAY_MS = 1_767_693_600_000


def serve(start_ms: int, port: int = 0, service: str = "SlaveService") -> None:
    """Install the simulator as ``MetaTrader5`` and serve RPyC on loopback forever.

    ``service`` is a class of ``rpyc.core.service``: ``SlaveService`` is the classic server
    (what ``rpyc_classic`` and mt5linux run); ``VoidService`` is an RPyC server that is not one.
    """
    from rpyc.core import service as services
    from rpyc.utils.server import ThreadedServer

    import mt5gate.sim
    from mt5gate.sim import SimTerminal, VirtualClock

    mt5gate.sim.install(SimTerminal(clock=VirtualClock(start_ms)))
    config = {"allow_pickle": True, "sync_request_timeout": 120}
    chosen = getattr(services, service)
    server = ThreadedServer(chosen, hostname="127.0.0.1", port=port, protocol_config=config)
    server._listen()  # listening before the port is announced, so no client is refused
    print(server.port, flush=True)
    server.start()


class ClassicServer:
    """A classic server subprocess; ``with ClassicServer() as server: server.port``."""

    def __init__(
        self, start_ms: int = WEEKDAY_MS, port: int = 0, service: str = "SlaveService"
    ) -> None:
        self.start_ms = start_ms
        self.service = service
        self.host = "127.0.0.1"
        self.port = port
        self._process: subprocess.Popen[str] | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()

    @property
    def url(self) -> str:
        return f"rpyc://{self.host}:{self.port}"

    def start(self) -> Self:
        """Launch the subprocess and wait for the port it prints."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        command = [
            sys.executable,
            "-m",
            "tests.rpyc.classic_server",
            str(self.start_ms),
            str(self.port),
            self.service,
        ]
        self._process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"classic server did not start: {line!r}")
        self.port = int(line)
        return self

    def connect(self) -> Any:
        """A classic connection (the mt5linux way): the caller controls the server fully."""
        import rpyc

        return rpyc.classic.connect(self.host, self.port)

    def stop(self) -> None:
        """Kill the subprocess (as a crash would) and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    given = sys.argv[1:]
    serve(
        int(given[0]) if given else WEEKDAY_MS,
        int(given[1]) if len(given) > 1 else 0,
        given[2] if len(given) > 2 else "SlaveService",
    )
