"""Reading the deployment recipes of ``deploy/`` the way their runners read them.

``systemd`` units: sections of ``Key=Value`` lines, specifiers (``%d``, ``%S``), environment from
``Environment=`` and an ``EnvironmentFile=``, and ``ExecStart=`` split into words first, then
``${NAME}`` replaced inside a word and a ``$NAME`` word split at whitespace (systemd.service(5),
"Command lines"). A :class:`Sandbox` stands for what systemd gives a started unit: its
credentials directory, its state directory and a clean environment.

A ``Dockerfile``: its instructions (continuation lines joined, comments dropped) and the exec
form of ``ENTRYPOINT``/``CMD``/``HEALTHCHECK``; ``.dockerignore`` patterns matched as Docker
matches them (a path is excluded when the last pattern matching it or one of its parent
folders is not a ``!`` exception).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
CONTAINER = DEPLOY / "container"
WINDOWS = DEPLOY / "windows"

#: Where the recipes expect mt5gate to be installed (a venv); the tests put this Python's
#: environment there instead, the one that runs them.
INSTALL_PREFIX = "/opt/mt5gate"
PREFIX = Path(sys.prefix)

#: The PATH systemd gives a service.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: Variables of the test run its services keep: the source tree under test stays the one
#: imported, and a clock shifted by ``at-time`` (``AT_TIME_SHIFT_S``) stays shifted.
PASSED_THROUGH = ("PYTHONPATH", "AT_TIME_SHIFT_S")


def clean_environment(**extra: str) -> dict[str, str]:
    """What a service starts with: a fixed PATH and locale, and no ``MT5GATE_*`` of the test
    run (plus :data:`PASSED_THROUGH`)."""
    environment = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"}
    for name in PASSED_THROUGH:
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return {**environment, **extra}


def installed(text: str) -> str:
    """``text`` with the recipes' install prefix replaced by this Python's environment."""
    return text.replace(INSTALL_PREFIX, str(PREFIX))


# ------------------------------------------------------------------------- systemd units


@dataclass(frozen=True)
class Unit:
    """A unit file: its name and, per section, its ``(key, value)`` lines in order."""

    name: str
    text: str
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        """Every value of ``key`` in ``section``, in order."""
        return [value for name, value in self.sections.get(section, []) if name == key]

    def value(self, section: str, key: str) -> str:
        """The last value of ``key`` (the one that counts for a single-valued setting)."""
        found = self.values(section, key)
        assert found, f"{self.name}: no {key}= in [{section}]"
        return found[-1]

    def credentials(self) -> dict[str, str]:
        """``LoadCredential=ID:PATH`` as ``{ID: PATH}``."""
        lines = self.values("Service", "LoadCredential")
        return dict(line.split(":", 1) for line in lines)


def read_unit(path: Path, text: str | None = None) -> Unit:
    """Parse a unit file (comments, sections, continuation lines ending in a backslash)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, separator, value = line.partition("=")
        assert current is not None, f"{path.name}: {line!r} is before any [section]"
        assert separator, f"{path.name}: not Key=Value: {line!r}"
        current.append((key.strip(), value.strip()))
    return Unit(path.name, text, sections)


def seconds(value: str) -> float:
    """A systemd time span such as ``45s``, ``2min`` or ``1min 30s``."""
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@dataclass
class Sandbox:
    """What systemd provides a started unit: a credentials directory holding copies of its
    ``LoadCredential=`` files (mode 0400, in a 0500 directory) and a state directory root
    (``%S``) with the unit's ``StateDirectory=`` made at its mode."""

    root: Path
    credentials: Path = field(init=False)
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.credentials = self.root / "credentials"
        self.state = self.root / "state"
        self.state.mkdir(parents=True)

    def load(self, unit: Unit, contents: Mapping[str, str]) -> None:
        """Copy the unit's credentials, given here by ID (their sources are on the host)."""
        assert set(contents) == set(unit.credentials()), (set(contents), unit.credentials())
        self.credentials.mkdir(mode=0o700)
        for name, text in contents.items():
            path = self.credentials / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o400)
        self.credentials.chmod(0o500)
        for name in unit.values("Service", "StateDirectory"):
            mode = int(unit.value("Service", "StateDirectoryMode"), 8)
            (self.state / name).mkdir(mode=mode)

    def specifiers(self, unit: Unit, text: str) -> str:
        """``text`` with the specifiers the recipes use resolved."""
        table = {"d": str(self.credentials), "S": str(self.state), "n": unit.name, "%": "%"}
        return re.sub(r"%(.)", lambda match: table[match.group(1)], text)


def environment_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an ``EnvironmentFile=`` (comments and blank lines skipped)."""
    found = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and line[0] not in "#;":
            key, separator, value = line.partition("=")
            assert separator, f"{path.name}: not KEY=VALUE: {line!r}"
            found[key.strip()] = value.strip()
    return found


def unit_environment(
    unit: Unit, sandbox: Sandbox, env_file: Path, overrides: Mapping[str, str]
) -> dict[str, str]:
    """The unit's environment: ``Environment=`` assignments, then the environment file (which
    systemd applies after them), then ``overrides`` (what an operator's file would set)."""
    environment = clean_environment(CREDENTIALS_DIRECTORY=str(sandbox.credentials))
    for line in unit.values("Service", "Environment"):
        for assignment in shlex.split(sandbox.specifiers(unit, line)):
            key, _, value = assignment.partition("=")
            environment[key] = value
    return {**environment, **environment_file(env_file), **overrides}


def exec_start(unit: Unit, sandbox: Sandbox, environment: Mapping[str, str]) -> list[str]:
    """``ExecStart=`` as the process's argv: specifiers first, then split into words, then
    ``${NAME}`` replaced inside a word and a lone ``$NAME`` split at whitespace."""
    words = shlex.split(sandbox.specifiers(unit, unit.value("Service", "ExecStart")))
    argv: list[str] = []
    for word in words:
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            argv += environment.get(alone.group(1), "").split()
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                           lambda match: environment.get(match.group(1), ""), word))  # fmt: skip
    return argv


@dataclass
class Started:
    """A unit's main process, run as systemd would run it, with its output in a file."""

    unit: Unit
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
        """Wait until ``check()``; kill the process and fail with its output if it exits or
        the time runs out (a process that is not running is not left behind)."""
        deadline = time.monotonic() + timeout_s
        while not check():
            exited = self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                problem = f"exited {self.process.returncode}" if exited else f"not in {timeout_s} s"
                self.kill()
                raise AssertionError(f"{what}: {problem}\n{self.output()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> tuple[int, float]:
        """``KillSignal=`` to the main process (``KillMode=mixed``); its exit code and how
        long it took. Killed, and failed, after ``TimeoutStopSec=``."""
        assert self.unit.value("Service", "KillMode") == "mixed"
        stop_signal = signal.Signals[self.unit.value("Service", "KillSignal")]
        timeout_s = seconds(self.unit.value("Service", "TimeoutStopSec"))
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.unit.name} did not stop within {timeout_s} s") from None
        return code, time.monotonic() - started


def start_unit(unit: Unit, argv: list[str], environment: Mapping[str, str],
               sandbox: Sandbox) -> Started:  # fmt: skip
    """Run ``argv`` in the unit's ``WorkingDirectory=`` with its ``UMask=``."""
    assert Path(argv[0]).is_file(), f"{argv[0]} does not exist: is mt5gate installed here?"
    cwd = sandbox.specifiers(unit, unit.value("Service", "WorkingDirectory"))
    log = sandbox.root / f"{unit.name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=dict(environment), cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink,
            stderr=subprocess.STDOUT, umask=int(unit.value("Service", "UMask"), 8),
        )  # fmt: skip
    return Started(unit, process, log)


# ------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword, its arguments' text, and the stage it is in."""

    keyword: str
    arguments: str
    stage: int

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (``CMD ["a", "b"]``)."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + len("CMD") :]
        value = json.loads(text)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.arguments}"
        return [str(item) for item in value]


def read_dockerfile(path: Path) -> list[Instruction]:
    """The instructions of ``path``, numbered by stage (0 for anything before a FROM)."""
    instructions: list[Instruction] = []
    stage, pending = 0, ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line, pending = pending + stripped, ""
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split()), stage))
    return instructions


def environment_of(instructions: list[Instruction], stage: int) -> dict[str, str]:
    """The ``ENV`` of ``stage`` (``KEY=VALUE`` pairs, ``$NAME`` expanded from earlier ones and
    from this process's PATH for ``$PATH``, which the base image sets)."""
    found: dict[str, str] = {"PATH": SYSTEMD_PATH}
    for instruction in instructions:
        if instruction.keyword == "ENV" and instruction.stage == stage:
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                found[key] = re.sub(r"\$\{?([A-Za-z_]\w*)\}?",
                                    lambda match: found.get(match.group(1), ""), value)  # fmt: skip
    return found


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` ``patterns`` leave ``path`` (relative, ``/``-separated) out."""
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in patterns:
        exception = pattern.startswith("!")
        regex = _pattern(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not exception
    return excluded


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore glob as a regex: ``**`` any folders, ``*`` within one name."""
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", glob):
        if token == "**/":
            out += "(?:.*/)?"
        elif token == "**":
            out += ".*"
        elif token == "*":
            out += "[^/]*"
        elif token == "?":
            out += "[^/]"
        elif token.startswith("["):
            out += token
        else:
            out += re.escape(token)
    return re.compile(out)


def dockerignore() -> list[str]:
    """The patterns of the repository's ``.dockerignore``."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
