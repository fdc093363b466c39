"""The container recipe, ``deploy/container/Dockerfile`` and ``.dockerignore``, checked without a
container engine (this machine has the docker CLI but no daemon, and reaches no image
registry, so no image is built here): what it copies exists and is in the build context, its
runtime stage agrees with itself, and its exact entry command and health check run against a
temporary volume, outside a container, with the stage's environment."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .files import (
    CONTAINER,
    ROOT,
    Instruction,
    clean_environment,
    dockerignore,
    environment_of,
    free_port,
    ignored,
    installed,
    read_dockerfile,
)

DOCKERFILE = CONTAINER / "Dockerfile"
#: The image's volume, which the tests put in a temporary folder.
VOLUME = "/var/lib/mt5gate"


def instructions() -> list[Instruction]:
    return read_dockerfile(DOCKERFILE)


def runtime(keyword: str) -> list[Instruction]:
    """The ``keyword`` instructions of the last (runtime) stage."""
    found = instructions()
    last = found[-1].stage
    return [item for item in found if item.keyword == keyword and item.stage == last]


def test_what_the_build_copies_exists_and_is_in_the_build_context() -> None:
    patterns = dockerignore()
    copies = [item for item in instructions() if item.keyword == "COPY"]
    sources = [
        source
        for item in copies if not item.arguments.startswith("--from=")
        for source in item.arguments.split()[:-1]
    ]  # fmt: skip
    assert sources == ["pyproject.toml", "README.md", "LICENSE", "src/"]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source.rstrip("/"), patterns), source
    tracked = subprocess.run(["git", "ls-files", "src"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    assert len(tracked) > 100
    assert [path for path in tracked if ignored(path, patterns)] == []
    # the wheel the build stage installs is named after the project
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    build = " ".join(item.arguments for item in instructions() if item.keyword == "RUN")
    assert f"/dist/{name}-*.whl" in build


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    patterns = dockerignore()
    for path in (".git/config", ".venv/bin/python", ".mt5gate/api-key",
                 ".mt5gate/demo-orders.db", "tests/conftest.py", "artifacts/console/a.png",
                 "src/mt5gate/__pycache__/errors.cpython-312.pyc", "src/mt5gate.egg-info/PKG-INFO",
                 "deploy/systemd/serve.toml"):  # fmt: skip
        assert ignored(path, patterns), path
    assert not ignored("src/mt5gate/service/console/static/htmx.min.js", patterns)


def test_the_runtime_stage_is_non_root_and_keeps_its_state_in_the_volume() -> None:
    environment = environment_of(instructions(), instructions()[-1].stage)
    (user,) = runtime("USER")
    uid, _, gid = user.arguments.partition(":")
    assert int(uid) > 0
    assert int(gid) > 0
    (volume,) = runtime("VOLUME")
    assert volume.exec_form() == [VOLUME] == [environment["MT5GATE_DATA_DIR"]]
    assert [item.arguments for item in runtime("WORKDIR")] == [VOLUME]
    assert [item.arguments for item in runtime("EXPOSE")] == [environment["MT5GATE_PORT"]]
    assert [item.arguments for item in runtime("STOPSIGNAL")] == ["SIGTERM"]
    assert environment["PATH"].startswith("/opt/mt5gate/bin:")


class Container:
    """The runtime stage's ENTRYPOINT + CMD run as a process: its ENV, with the install prefix
    mapped to this Python's environment, the volume to a temporary folder, and the port to a
    free one on loopback (the image listens on 0.0.0.0; tests stay on loopback)."""

    def __init__(self, volume: Path, *extra: str) -> None:
        (entrypoint,), (cmd,) = runtime("ENTRYPOINT"), runtime("CMD")
        self.argv = [*entrypoint.exec_form(), *cmd.exec_form(), *extra]
        self.port = free_port()
        stage = environment_of(instructions(), instructions()[-1].stage)
        self.environment = clean_environment(**{
            key: installed(value).replace(VOLUME, str(volume)) for key, value in stage.items()
        })  # fmt: skip
        self.environment.update(MT5GATE_HOST="127.0.0.1", MT5GATE_PORT=str(self.port))
        volume.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.volume = volume
        self.log = volume.parent / "container.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                self.argv, env=self.environment, cwd=volume, stdin=subprocess.DEVNULL,
                stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def health_check(self) -> int:
        """The image's HEALTHCHECK command, run as Docker would, inside the container."""
        (check,) = runtime("HEALTHCHECK")
        return subprocess.run(check.exec_form(), env=self.environment, cwd=self.volume,
                              capture_output=True, timeout=30, check=False).returncode  # fmt: skip

    def stop(self, timeout_s: float) -> int:
        (stop,) = runtime("STOPSIGNAL")
        self.process.send_signal(signal.Signals[stop.arguments])
        return self.process.wait(timeout=timeout_s)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    running = Container(tmp_path / "var" / "lib" / "mt5gate")
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=10)


def test_the_entry_command_serves_the_simulator_loudly_and_stops_within_the_stop_timeout(
    container: Container,
) -> None:
    base = f"http://127.0.0.1:{container.port}"
    deadline = time.monotonic() + 60
    health = None
    while health is None:
        assert container.process.poll() is None, container.output()
        assert time.monotonic() < deadline, container.output()
        try:
            health = httpx.get(base + "/v1/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    assert health.headers["content-type"].startswith("application/health+json")
    assert health.status_code in (200, 503)  # answers; 503 only while the account connects
    assert "SIMULATED terminal (mt5gate.sim)" in container.output()
    assert "SIMULATED" in httpx.get(base + "/v1/health", timeout=5).text
    assert container.health_check() == 0
    assert (container.volume / "api-key").stat().st_mode & 0o777 == 0o600
    assert (container.volume / "demo-orders.db").is_file()
    # the stop timeout the recipe tells users to give (docker stop -t / --stop-timeout)
    timeout_s = int(re.findall(r"--stop-timeout (\d+)", DOCKERFILE.read_text())[0])
    assert timeout_s > 20  # the service drains requests for up to 20 s
    code = container.stop(timeout_s)
    assert code in (0, -signal.SIGTERM), container.output()  # see test_systemd: uvicorn
    assert "Application shutdown complete" in container.output()
    assert container.health_check() != 0  # the check can fail: nothing answers now


def test_arguments_after_the_image_go_to_mt5gate_serve(tmp_path: Path) -> None:
    """``docker run --rm mt5gate --new-key ops --scopes read`` prints a key and exits."""
    made = Container(tmp_path / "volume", "--new-key", "ops", "--scopes", "read")
    try:
        assert made.process.wait(timeout=60) == 0, made.output()
    finally:
        made.process.kill()  # no-op once it has exited
        made.process.wait(timeout=10)
    assert "API key (shown once, keep it secret):" in made.output()
    assert 'scopes = ["read"]' in made.output()
