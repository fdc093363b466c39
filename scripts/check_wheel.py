"""Check the built distributions as a user gets them: ``python scripts/check_wheel.py dist``.

``make release`` builds ``dist/`` (``python -m build``: the sdist, then the wheel from the
sdist) and runs this. It checks that

1. the wheel and the sdist carry every file of ``src/mt5gate`` (the console's templates and
   static files, the chart library, the simulator's catalogue, the SQL migrations) and the
   wheel nothing else;
2. the wheel alone (the core library) installs into a new virtual environment, and there, run
   from a directory outside the source tree with ``PYTHONPATH`` unset: ``import mt5gate``
   comes from that environment, the simulator runs (``mt5gate-demo``), ``mt5gate --version``
   answers, the bridge's command line answers, and ``mt5gate price`` says which extra it needs;
3. ``pip install 'mt5gate[all]'``, as that message says (pip keeps the installed wheel and
   adds the extras' packages), and then ``mt5gate --version``, ``mt5gate price EURUSD`` and
   ``mt5gate serve`` work: serve starts on a free loopback port, answers its health endpoint,
   serves the console's page and assets and the OpenAPI page, and stops on SIGTERM.

Standard library only; any failure prints what ran and what it said, and exits 1.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mt5gate"
#: What the console and the OpenAPI page load from the installed package's static files.
ASSETS = (
    "/",
    "/static/console.js",
    "/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js",
    "/static/vendor/htmx.org/htmx.min.js",
    "/docs",
    "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js",
)


class CheckFailedError(Exception):
    """A check failed: the message says which, and what the command printed."""


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/check_wheel.py DIST_DIR", file=sys.stderr)
        return 2
    dist = Path(argv[0]).resolve()
    try:
        version = package_version()
        wheel = dist / f"mt5gate-{version}-py3-none-any.whl"
        sdist = dist / f"mt5gate-{version}.tar.gz"
        check_contents(wheel, sdist)
        with tempfile.TemporaryDirectory(prefix="mt5gate-wheel-") as scratch:
            check_installed(Path(scratch), wheel, version)
    except CheckFailedError as failure:
        print(f"check_wheel: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"check_wheel: {wheel.name} and {sdist.name} are complete and work when installed")
    return 0


def package_version() -> str:
    """``__version__`` as written in the source (pyproject.toml takes it from there)."""
    found = re.search(r'^__version__ = "([^"]+)"$', (PACKAGE / "__init__.py").read_text(), re.M)
    if found is None:
        raise CheckFailedError("src/mt5gate/__init__.py has no __version__ line")
    return found.group(1)


# ---------------------------------------------------------------------------- contents


def source_files() -> set[str]:
    """Every file of the package in the source tree, as ``mt5gate/...`` (no byte code)."""
    return {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def check_contents(wheel: Path, sdist: Path) -> None:
    for path in (wheel, sdist):
        if not path.is_file():
            raise CheckFailedError(f"{path} was not built (is __version__ what the build used?)")
    expected = source_files()
    with zipfile.ZipFile(wheel) as archive:
        inside = {name for name in archive.namelist() if ".dist-info/" not in name}
    if inside != expected:
        raise CheckFailedError(f"the wheel lacks {sorted(expected - inside)} and has extra "
                     f"{sorted(inside - expected)}")  # fmt: skip
    with tarfile.open(sdist) as archive:
        top = sdist.name.removesuffix(".tar.gz")
        names = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    lacking = {f"src/{name}" for name in expected} - names
    lacking |= {"pyproject.toml", "README.md", "LICENSE"} - names
    if lacking:
        raise CheckFailedError(f"the sdist lacks {sorted(lacking)}")
    print(f"check_wheel: {wheel.name} has the {len(expected)} files of src/mt5gate")


# --------------------------------------------------------------------------- installed


def check_installed(scratch: Path, wheel: Path, version: str) -> None:
    venv, home = scratch / "venv", scratch / "home"
    home.mkdir()
    run([sys.executable, "-m", "venv", str(venv)], cwd=home)
    bin_dir = venv / "bin"
    python, mt5gate = str(bin_dir / "python"), str(bin_dir / "mt5gate")
    env = clean_environment(home, bin_dir)

    run([python, "-m", "pip", "install", "--quiet", str(wheel)], cwd=home, env=env)
    check_location(python, home, env, venv)
    expect(run([mt5gate, "--version"], cwd=home, env=env), f"mt5gate {version}")
    expect(run([str(bin_dir / "mt5gate-demo")], cwd=home, env=env), "SIMULATED")
    bridge = [python, "-m", "mt5gate.bridge.cli", "--help"]
    expect(run(bridge, cwd=home, env=env), "--terminal")
    hint = run([mt5gate, "price", "EURUSD"], cwd=home, env=env, status=2)
    expect(hint, "pip install 'mt5gate[cli]'")
    print("check_wheel: the core alone installs and runs; mt5gate names the [cli] extra")

    run([python, "-m", "pip", "install", "--quiet", "mt5gate[all]"], cwd=home, env=env)
    check_location(python, home, env, venv)
    expect(run([mt5gate, "--version"], cwd=home, env=env), f"mt5gate {version}")
    expect(run([mt5gate, "price", "EURUSD"], cwd=home, env=env), "EURUSD")
    check_serve(mt5gate, home, env)
    print("check_wheel: with [all], mt5gate --version, price and serve work")


def check_location(python: str, home: Path, env: dict[str, str], venv: Path) -> None:
    """``import mt5gate`` finds the installed wheel, not the source tree."""
    where = run([python, "-c", "import mt5gate; print(mt5gate.__file__)"], cwd=home, env=env)
    if not Path(where.strip()).is_relative_to(venv):
        raise CheckFailedError(f"import mt5gate found {where.strip()}, not the wheel in {venv}")


def clean_environment(home: Path, bin_dir: Path) -> dict[str, str]:
    """This environment without anything that could reach the source tree or configure
    mt5gate; the new environment's scripts first on PATH, data under ``home``."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "COLUMNS")
    env = {k: v for k, v in os.environ.items()
           if k not in dropped and not k.startswith("MT5GATE_")}  # fmt: skip
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    return env


def check_serve(mt5gate: str, home: Path, env: dict[str, str]) -> None:
    """``mt5gate serve`` on a free port: health, the console's assets, a clean stop."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = home / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [mt5gate, "serve", "--port", str(port)], cwd=home, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_healthy(base, process, log)
        for path in ASSETS:
            status, size = get(base + path)
            if status != 200 or size == 0:
                raise CheckFailedError(
                    f"GET {path} answered {status} ({size} bytes)\n{log.read_text()}"
                )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise CheckFailedError(
                f"mt5gate serve did not stop within 60 s\n{log.read_text()}"
            ) from None
    output = log.read_text()
    # uvicorn shuts down, then dies of the SIGTERM it caught: -15, or 0.
    if process.returncode not in (0, -signal.SIGTERM) or "Traceback" in output:
        raise CheckFailedError(f"mt5gate serve ended with {process.returncode}\n{output}")
    if "Application shutdown complete" not in output:
        raise CheckFailedError(f"mt5gate serve did not shut down cleanly\n{output}")


def wait_until_healthy(base: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailedError(f"mt5gate serve exited {process.returncode}\n{log.read_text()}")
        status, _ = get(base + "/v1/health")
        if status == 200:
            return
        time.sleep(0.2)
    raise CheckFailedError(
        f"mt5gate serve's /v1/health did not answer 200 within 60 s\n{log.read_text()}"
    )


def get(url: str) -> tuple[int, int]:
    """The status and body size of ``GET url`` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, len(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, 0
    except OSError:
        return 0, 0


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
        status: int = 0) -> str:  # fmt: skip
    """Run ``command``; its stdout and stderr together, or :class:`CheckFailedError` unless it exits
    with ``status``."""
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    output = done.stdout + done.stderr
    if done.returncode != status:
        raise CheckFailedError(
            f"{' '.join(command)} exited {done.returncode}, not {status}:\n{output}"
        )
    return output


def expect(output: str, text: str) -> None:
    if text not in output:
        raise CheckFailedError(f"expected {text!r} in:\n{output}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
