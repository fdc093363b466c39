"""The core library runs without the front ends, and each front end names the extra it needs.

``pyproject.toml`` installs the core (session, simulator, terminals, bridge, orders, health,
metrics) with numpy, pydantic, msgspec and prometheus-client; the ``mt5gate`` command, the
service and the bot are the extras ``cli``, ``service`` and ``bot``. These tests run real
processes in which the packages only an extra installs are absent: a meta path finder makes
their import fail exactly as it does when they are not installed.
"""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pytest

from mt5gate.extras import EXTRAS, needed_for
from tests.release.dists import ROOT, closure, modules_of

SOURCE: Final = ROOT / "src" / "mt5gate"
FRONT_ENDS: Final = ("service", "bot", "cli")
ALL: Final = FRONT_ENDS  # the core alone: [service] and [bot] include [cli]

#: The first lines of every child: packages named in argv[1] cannot be imported; every attempt
#: is recorded in TRIED.
ABSENT: Final = textwrap.dedent(
    """
    import sys
    BLOCKED = frozenset(filter(None, sys.argv.pop(1).split(",")))
    TRIED = []
    assert not BLOCKED & {name.partition(".")[0] for name in sys.modules}, "already imported"

    class Absent:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                TRIED.append(name)
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    """
)

#: Runs ``mt5gate`` (what the console script runs) with the rest of argv.
MT5GATE: Final = ABSENT + "from mt5gate.cli import main\nsys.exit(main())\n"


def front_end_only() -> frozenset[str]:
    """Every module that only an extra of a front end installs (fastapi, typer, telegram, their
    own dependencies: anyio, click, starlette, ...), as installed here."""
    return modules_of(closure("all")) - modules_of(closure(None))


def absent_without(*extras: str) -> frozenset[str]:
    """The modules that are absent when the front ends' ``extras`` are not installed and the
    others are (what only those extras install: without [bot] httpx stays, [cli] needs it)."""
    kept = modules_of(frozenset().union(*(closure(e) for e in FRONT_ENDS if e not in extras)))
    gone = modules_of(frozenset().union(*(closure(e) for e in extras)))
    return gone - kept - modules_of(closure(None))


def run(code: str, absent: Iterable[str], *args: str, cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``python -c code`` with ``absent`` not importable, in ``cwd`` (its data there too)."""
    return subprocess.run(
        [sys.executable, "-c", code, ",".join(sorted(absent)), *args],
        cwd=cwd, env=environment(cwd), capture_output=True, text=True, timeout=timeout,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT5GATE_")}
    env["MT5GATE_DATA_DIR"] = str(home / "data")
    return env


def show(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


# ------------------------------------------------------------------------------ the core

CORE: Final = ABSENT + textwrap.dedent(
    """
    import asyncio, importlib, pkgutil
    import mt5gate

    FRONT_ENDS = {"mt5gate.service", "mt5gate.bot", "mt5gate.cli"}
    imported = []

    def walk(path, prefix):
        for info in pkgutil.iter_modules(path, prefix):
            if info.name in FRONT_ENDS:
                continue
            module = importlib.import_module(info.name)
            imported.append(info.name)
            if info.ispkg:
                walk(module.__path__, info.name + ".")

    for name in mt5gate.__all__:
        getattr(mt5gate, name)  # the lazily imported public API
    walk(mt5gate.__path__, "mt5gate.")

    from mt5gate import MT5SessionManager, probe
    from mt5gate.sim import SimTerminal

    async def session():
        async with MT5SessionManager(terminal=SimTerminal(), login=5001,
                                     password="sim-pass-5001", server="MetaQuotes-Demo") as m:
            await m.get_account_info()
            await m.get_price("BTCUSD")  # BTCUSD trades every day
            return (await probe(m)).status

    status = asyncio.run(session())
    assert not TRIED, TRIED
    print(len(imported), "modules;", "health", status)
    """
)


def test_the_core_imports_and_runs_without_any_front_end(tmp_path: Path) -> None:
    """Every module outside service/, bot/ and cli/ imports, and a session on the simulator
    runs, while fastapi, typer, telegram and everything only their extras install are absent."""
    absent = front_end_only()
    assert {"fastapi", "starlette", "uvicorn", "typer", "rich", "telegram", "httpx"} <= absent
    done = run(CORE, absent, cwd=tmp_path)
    assert done.returncode == 0, show(done)
    count = int(done.stdout.split()[0])
    assert count > 100, show(done)  # the walk really reached the sub-packages
    assert done.stdout.rstrip().endswith("health pass"), show(done)


def test_the_absent_packages_really_cannot_be_imported(tmp_path: Path) -> None:
    """The finder the tests above rely on does block an import (and records it)."""
    done = run(ABSENT + "import fastapi\n", {"fastapi"}, cwd=tmp_path)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'fastapi'" in done.stderr


# --------------------------------------------------------------- each front end's extra


@pytest.mark.parametrize(
    ("missing", "argv", "line"),
    [
        (ALL, ["price", "EURUSD"], "the mt5gate command needs: pip install 'mt5gate[cli]'"),
        (ALL, ["serve"], "the mt5gate command needs: pip install 'mt5gate[cli]'"),
        (ALL, ["bot"], "the mt5gate command needs: pip install 'mt5gate[cli]'"),
        (
            ("service",),
            ["serve", "--port", "1"],
            "the service needs: pip install 'mt5gate[service]'",
        ),
        (("bot",), ["bot"], "the bot needs: pip install 'mt5gate[bot]'"),
        (("bot",), ["serve", "--bot"], "the bot needs: pip install 'mt5gate[bot]'"),
        (("bot",), ["serve", "--bo"], "the bot needs: pip install 'mt5gate[bot]'"),
    ],
)
def test_a_missing_extra_is_named_in_one_line_with_exit_2(
    tmp_path: Path, missing: tuple[str, ...], argv: list[str], line: str
) -> None:
    absent = absent_without(*missing)
    assert absent
    done = run(MT5GATE, absent, *argv, cwd=tmp_path)
    assert done.returncode == 2, show(done)
    assert done.stdout == ""
    assert done.stderr.startswith(f"mt5gate: {line} (not installed: "), show(done)
    assert len(done.stderr.splitlines()) == 1, show(done)


def test_version_needs_no_extra(tmp_path: Path) -> None:
    done = run(MT5GATE, front_end_only(), "--version", cwd=tmp_path)
    assert done.returncode == 0, show(done)
    assert done.stdout.startswith("mt5gate ")


def test_the_commands_run_with_the_cli_extra_alone(tmp_path: Path) -> None:
    """``pip install 'mt5gate[cli]'``: reads run on the simulator without FastAPI or the bot,
    and ``mt5gate demo`` (the core) runs too."""
    absent = absent_without("service", "bot")
    assert {"fastapi", "starlette", "uvicorn", "jinja2", "telegram"} <= absent
    price = run(MT5GATE, absent, "price", "BTCUSD", "--json", cwd=tmp_path)
    assert price.returncode == 0, show(price)
    assert '"symbol": "BTCUSD"' in price.stdout
    demo = run(MT5GATE, absent, "demo", cwd=tmp_path)
    assert demo.returncode == 0, show(demo)


#: ``python -m mt5gate.bridge.cli ARGS`` (the Windows bridge's entry point) in the child.
BRIDGE_MODULE: Final = ABSENT + (
    "import runpy\n"
    "try:\n    runpy.run_module('mt5gate.bridge.cli', run_name='__main__', alter_sys=True)\n"
    "finally:\n    assert not TRIED, TRIED\n"
)


def test_the_bridge_module_runs_on_the_core_alone(tmp_path: Path) -> None:
    """``python -m mt5gate.bridge.cli`` next to a Windows terminal has the core only: it
    parses the option table ``mt5gate bridge`` is built from (tests/cli/test_frontends.py)
    with argparse, never trying typer or click, refuses what the table refuses, and reaches
    the work (here: the token file's check)."""
    absent = front_end_only()
    assert {"typer", "click", "rich"} <= absent
    helped = run(BRIDGE_MODULE, absent, "--help", cwd=tmp_path)
    assert helped.returncode == 0, show(helped)
    assert {"--terminal", "--token-file", "--max-handshakes", "--sim-start"} <= set(
        helped.stdout.replace(",", " ").split()
    ), show(helped)
    bad = run(BRIDGE_MODULE, absent, "--terminal", "sim", "--token-file", "t",
              "--max-connections", "0", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2, show(bad)
    assert "must be above 0, got 0" in bad.stderr, show(bad)
    missing = run(BRIDGE_MODULE, absent, "--terminal", "sim", "--token-file", "none.txt",
                  cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2, show(missing)
    assert "mt5gate bridge: cannot read the token file none.txt" in missing.stderr, show(missing)


def test_the_bot_imports_without_the_service_extra(tmp_path: Path) -> None:
    code = ABSENT + "import mt5gate.service.bot_cli, mt5gate.bot.app\n"
    done = run(code, absent_without("service"), cwd=tmp_path)
    assert done.returncode == 0, show(done)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_runs_without_the_bot_extra(tmp_path: Path) -> None:
    """``pip install 'mt5gate[cli,service]'``: the service starts, answers its health
    endpoint and shuts down on SIGTERM, python-telegram-bot never imported."""
    port = free_port()
    log = tmp_path / "serve.log"
    code = MT5GATE.replace("sys.exit(main())", "code = main()\nassert not TRIED, TRIED\n"
                           "sys.exit(code)")  # fmt: skip
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", code, ",".join(absent_without("bot")), "serve", "--port",
             str(port)],
            cwd=tmp_path, env=environment(tmp_path), stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
    try:
        status = _wait_for_health(f"http://127.0.0.1:{port}/v1/health", process, log)
        assert status == 200, log.read_text()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    # uvicorn shuts down, then dies of the SIGTERM it caught (exit -15), as a server should.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
    assert "Traceback" not in log.read_text()


def _wait_for_health(url: str, process: subprocess.Popen[str], log: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited {process.returncode}: {log.read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                code: int = answer.status
                return code
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url} within 60 s: {log.read_text()}")


# ------------------------------------------------------------------- the declared lists


def third_party_imports(part: Path) -> set[str]:
    """The top-level names of the non-standard-library modules that ``part`` (a package folder
    or one module) imports anywhere: at the top, in a function, under ``TYPE_CHECKING``."""
    found: set[str] = set()
    for path in part.rglob("*.py") if part.is_dir() else [part]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"mt5gate"}


def test_every_import_is_installed_by_the_core_or_its_front_ends_extra() -> None:
    """What the code imports, ``EXTRAS`` and ``pyproject.toml`` agree: a new import in a front
    end that its extra does not install fails here, not on a user's machine."""
    core = modules_of(closure(None))
    optional = modules_of(closure("fleet") | closure("rpyc"))  # imported where they are used
    allowed = {
        "service": core | optional | set(EXTRAS["service"]) | set(EXTRAS["bot"]),  # serve --bot
        "bot": core | set(EXTRAS["bot"]),
        "cli": core | set(EXTRAS["cli"]),
    }
    for part in [*sorted(SOURCE.glob("[!_]*")), SOURCE / "__init__.py"]:
        if part.is_dir() or part.suffix == ".py":
            unexpected = third_party_imports(part) - allowed.get(part.name, core | optional)
            assert not unexpected, f"{part.name} imports {sorted(unexpected)}, not in its extra"
    for extra, modules in EXTRAS.items():
        installed = modules_of(closure(extra))
        assert set(modules) <= installed, f"[{extra}] does not install {set(modules) - installed}"


def test_all_is_the_three_front_ends_and_each_runs_through_the_command() -> None:
    """``mt5gate serve`` and ``mt5gate bot`` start their front ends: [service] and [bot]
    install the command's [cli] too."""
    assert closure("all") == closure("cli") | closure("service") | closure("bot")
    assert closure("cli") <= closure("service")
    assert closure("cli") <= closure("bot")


@pytest.mark.parametrize(
    ("argv", "extras"),
    [
        ([], ("cli",)),
        (["--help"], ("cli",)),
        (["price", "EURUSD", "--account", "serve"], ("cli",)),
        (["serve"], ("cli", "service")),
        (["serve", "--port", "8001"], ("cli", "service")),
        (["serve", "--bot"], ("cli", "service", "bot")),
        (["serve", "--b"], ("cli", "service", "bot")),
        (["serve", "--"], ("cli", "service")),
        (["bot", "--config", "x.toml"], ("cli", "bot")),
        (["bridge", "--terminal", "sim"], ("cli",)),
        (["journal", "list"], ("cli",)),
    ],
)
def test_needed_for(argv: list[str], extras: tuple[str, ...]) -> None:
    assert needed_for(argv) == extras
