"""Run the shell steps of the documentation as written, in order, from a fresh copy of the tree.

What runs. The fenced blocks of a page (README.md, the guides, the step-by-step pages) whose
info string is a shell (``sh``, ``bash``, ``shell``, ``console``), and the literal blocks
after ``::`` in an example's module docstring (``examples/*.py``: the "Run it::" commands).
A ``console`` block's commands are its ``$ `` lines (the rest is output). Windows shells
(``bat``, ``cmd``, ``powershell``, ``ps1``) never run here, so they always carry a reason.

The convention, in the Markdown itself, on the line right before the block's opening fence:

* ``<!-- not-run: REASON -->``: the block does not run in the tests, for the reason given
  (it needs a Windows MT5 terminal, Wine, sudo, PyPI, PostgreSQL...). Shown to anyone reading
  the source of the page. In a docstring the same is ``.. not-run: REASON`` before the ``::``
  paragraph.
* ``<!-- file: NAME -->``: the block (of any language, e.g. ``toml``) is a file the reader
  saves as NAME (in the shell's current directory) before the next steps; the harness writes it.

Every shell block must run or have a reason: :func:`unaccounted` lists those that do neither,
and a test fails on any. A command's expected exit status other than 0 is written as a trailing
``# exit N`` comment (as in the quick reference). A ``curl`` answer with an HTTP status of 400
or more fails the step, unless the line's trailing comment names the statuses it may answer
(``# 422 "Risk limit"``, ``# 201, or 409 at weekends``): then it must be one of them.

How it runs (:func:`run_page`). All of a page's blocks run in one temporary copy of the tree
(``git ls-files``: tracked and new files, as a fresh clone has them, with the working tree's
contents), one after another, each block as one ``bash`` script with ``set -eo pipefail``; the
shell's current directory and exported variables carry over from block to block, as in the
reader's terminal. The environment is an allow-list: ``HOME`` is a fresh directory, the venv's
``bin`` is first on ``PATH``, and the copy's ``.venv`` is a shim of the already-built venv (its
``bin`` and ``lib``, with fresh stamps), so ``make serve`` and ``.venv/bin/...`` run as written
and nothing is downloaded. Answers to questions are "y" (stdin is a stream of "y" lines, as the
reader confirming an order). Each block has a timeout of ``COMMAND_TIMEOUT_S`` per command.

Long-running commands (``mt5gate serve``, ``make serve``, ``mt5gate bridge``, the examples that
serve HTTP) are started in the background, and the script waits until they are ready (serve:
``/readyz`` answers 200, its accounts connected; the others: their port accepts a connection),
or fails if they exit first; the following commands and blocks use them; they are
stopped (SIGTERM to their process group) when the page is done. Only loopback, never a fixed
port: every port a page names (``127.0.0.1:N``, ``--port N``, ``port = N``, and the defaults
8000 of serve and 18812 of the bridge) is replaced throughout the page by a free one;
``mt5gate serve`` without ``--port`` gets it from ``MT5GATE_PORT``, ``mt5gate bridge`` without
one gets ``--port``: the only changes made to a command.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.service.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
#: The pages whose shell steps run.
PAGES = (
    "README.md",
    "docs/install.md",
    "docs/quickref.md",
    "docs/simulator.md",
    "docs/service.md",
    "docs/bridge.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "guides").glob("*.md")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.py")),
)
SHELLS = frozenset({"sh", "bash", "shell", "console"})
WINDOWS_SHELLS = frozenset({"bat", "cmd", "powershell", "ps1"})
COMMAND_TIMEOUT_S = 60.0
SERVE_PORT, BRIDGE_PORT = 8000, 18812

_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*(?:<!--|\.\.)\s*(not-run|file):\s*(.*?)\s*(?:-->)?\s*$")
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
_PORT = re.compile(r"(?:127\.0\.0\.1:|localhost:|--port[ =]|\bport\s*=\s*)(\d{4,5})\b")
_SERVE = re.compile(r"(?:mt5gate serve|make serve)\b")
_BRIDGE = re.compile(r"mt5gate bridge\b")
_SERVING_EXAMPLE = re.compile(r"examples/(?:fastapi_app|metrics_exporter)\.py\b")


@dataclass(frozen=True)
class Block:
    """One fenced (or literal) block of a page, with its marker, if any."""

    page: str
    line: int
    lang: str
    body: str
    not_run: str | None = None
    file: str | None = None

    @property
    def is_shell(self) -> bool:
        if self.file is not None:
            return False
        return self.lang in SHELLS or self.lang in WINDOWS_SHELLS

    @property
    def runs(self) -> bool:
        if self.not_run is not None or self.lang in WINDOWS_SHELLS:
            return False
        if self.file is not None:
            return True
        return self.is_shell

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang})"


def _markdown_blocks(page: str, text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if opened is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        marker = _MARKER.match(lines[index - 1]) if index > 0 else None
        kind, value = (marker.group(1), marker.group(2)) if marker else (None, None)
        blocks.append(
            Block(
                page,
                index + 1,
                opened.group(1),
                "\n".join(lines[index + 1 : end]) + "\n",
                not_run=value if kind == "not-run" else None,
                file=value if kind == "file" else None,
            )
        )
        index = end + 1
    return blocks


def _docstring_blocks(page: str, text: str) -> list[Block]:
    """The literal blocks after ``::`` in a module docstring, as ``sh`` blocks."""
    docstring = ast.get_docstring(ast.parse(text), clean=False) or ""
    offset = text.index(docstring.splitlines()[0]) if docstring else 0
    first_line = text[:offset].count("\n") + 1
    lines = docstring.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body, end = [], index + 1
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith("    ")):
            body.append(lines[end][4:])
            end += 1
        start = index  # the paragraph that ends in "::"; the marker is the line before it
        while start > 0 and lines[start - 1].strip():
            start -= 1
        while start > 0 and not lines[start - 1].strip():
            start -= 1
        found = _MARKER.match(lines[start - 1]) if start > 0 else None
        reason = found.group(2) if found is not None and found.group(1) == "not-run" else None
        code = "\n".join(body).strip() + "\n"
        blocks.append(Block(page, first_line + index, "sh", code, not_run=reason))
    return blocks


def blocks(page: str) -> list[Block]:
    """Every block of ``page`` (a path relative to the root)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    if page.endswith(".py"):
        return _docstring_blocks(page, text)
    return _markdown_blocks(page, text)


def unaccounted(page: str) -> list[Block]:
    """The shell blocks of ``page`` that neither run nor say why not."""
    return [b for b in blocks(page) if b.is_shell and not b.runs and b.not_run is None]


def _logical_lines(block: Block) -> list[str]:
    """The block's commands: ``$`` lines of a console block; else its lines, with backslash
    continuations joined to the line they continue (comment-only and blank lines dropped)."""
    raw = block.body.splitlines()
    if block.lang == "console":
        return [line[2:] for line in raw if line.startswith("$ ")]
    commands: list[str] = []
    pending = ""
    for line in raw:
        pending = f"{pending}\n{line}" if pending else line
        if line.endswith("\\"):
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            commands.append(pending)
        pending = ""
    return commands


@dataclass
class PageRun:
    """A page being run: where, with what environment, and what it started."""

    page: str
    repo: Path
    env: dict[str, str]
    ports: dict[int, int]
    state: Path
    outputs: list[str] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)

    @property
    def cwd(self) -> Path:
        """The shell's current directory after the last block."""
        saved = self.state / "cwd"
        return Path(saved.read_text().strip()) if saved.exists() else self.repo

    def port(self, documented: int) -> int:
        """The free port standing for ``documented`` on this page."""
        return self.ports[documented]

    def _localise(self, text: str) -> str:
        for documented, actual in self.ports.items():
            text = re.sub(rf"(?<![\d.]){documented}(?!\d)", str(actual), text)
        return text

    def _command(self, command: str) -> str:
        expected = _EXIT.search(command)
        serves = (
            _SERVE.search(command) or _BRIDGE.search(command) or _SERVING_EXAMPLE.search(command)
        )
        if serves and not command.rstrip().endswith("&"):
            return self._background(command)
        statuses = _http_statuses(command)
        if statuses:
            return f'_http_expected="{statuses}"\n{command}\n_http_expected='
        if expected is not None:
            status = expected.group(1)
            return (
                f"{{ {command[: expected.start()]}\n}} && _rc=0 || _rc=$?\n"
                f'[ "$_rc" -eq {status} ] || {{ echo "expected exit {status}, got $_rc" >&2;'
                " exit 1; }"
            )
        return command

    def _background(self, command: str) -> str:
        command = re.sub(r"\s+#.*$", "", command, flags=re.MULTILINE)  # a comment runs nothing
        found = re.search(r"--port[ =](\d+)", command)
        if found is not None:
            port = int(found.group(1))
        elif _BRIDGE.search(command):
            port = self.ports[BRIDGE_PORT]
            command = _BRIDGE.sub(f"mt5gate bridge --port {port}", command, count=1)
        elif _SERVE.search(command):
            port = self._config_port(command) or self.ports[SERVE_PORT]
        else:
            raise AssertionError(f"{self.page}: a server without --port: {command}")
        ready = "/readyz" if _SERVE.search(command) else ""
        return f"_bg {port} {shlex.quote(command)} {ready}"

    def _config_port(self, command: str) -> int | None:
        config = re.search(r"--config\s+(\S+)", command)
        if config is None:
            return None
        path = Path(config.group(1)).expanduser()
        text = (path if path.is_absolute() else self.cwd / path).read_text()
        found = re.search(r"^port\s*=\s*(\d+)", text, re.MULTILINE)
        return int(found.group(1)) if found else None

    def script(self, block: Block) -> str:
        """The bash script that runs ``block`` in this page's shell state."""
        commands = "\n".join(self._command(self._localise(c)) for c in _logical_lines(block))
        state = shlex.quote(str(self.state))
        return f"""\
_state={state}
cd "$(cat "$_state/cwd" 2>/dev/null || pwd)"
[ -f "$_state/env" ] && . "$_state/env"
_save() {{ pwd > "$_state/cwd"; export -p > "$_state/env"; }}
_ready() {{  # port, pid, readiness path: the port accepts, or the path answers 200
  for _ in $(seq 600); do
    if [ -n "$3" ]; then
      command curl -sf -o /dev/null "http://127.0.0.1:$1$3" && return 0
    else
      (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    fi
    kill -0 "$2" 2>/dev/null || {{ echo "docs: the background command exited" >&2; return 1; }}
    sleep 0.1
  done
  echo "docs: port $1 not ready ($3) in 60 s" >&2; return 1
}}
_bg() {{
  setsid bash -c "$2" >>"$_state/background.log" 2>&1 </dev/null &
  echo $! >> "$_state/pids"; _ready "$1" $! "${{3:-}}"
}}
_http_expected=
curl() {{  # as curl, and an HTTP status >= 400 fails unless the line's comment names it
  local out code
  out=$(command curl -sS -w '\n%{{http_code}}' "$@") || return
  code=${{out##*$'\n'}}
  printf '%s\n' "${{out%$'\n'*}}"
  if [ -n "$_http_expected" ]; then
    [[ " $_http_expected " == *" $code "* ]] && return 0
  elif [ "$code" -lt 400 ]; then
    return 0
  fi
  echo "docs: HTTP $code from curl (expected ${{_http_expected:-< 400}})" >&2; return 22
}}
trap 'echo "docs: failed: $BASH_COMMAND" >&2' ERR
trap _save EXIT
set -eo pipefail
{commands}
"""

    def write_file(self, block: Block) -> None:
        assert block.file is not None
        target = self.cwd / block.file
        target.write_text(self._localise(block.body), encoding="utf-8")

    def run(self, block: Block) -> None:
        """Run one block; fail with its output if a command fails."""
        if block.file is not None:
            self.write_file(block)
            return
        log = self.state / f"block-{block.line}.log"
        count = max(1, len(_logical_lines(block)))
        with log.open("w") as out, (self.state / "answers").open() as answers:
            shell = subprocess.Popen(
                ["bash", "-c", self.script(block)],
                cwd=self.repo,
                env=self.env,
                stdin=answers,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(shell.pid)
        try:
            status = shell.wait(timeout=COMMAND_TIMEOUT_S * count)
        except subprocess.TimeoutExpired:
            status = -1
        output = log.read_text(errors="replace")
        self.outputs.append(output)
        shown = f"{block}: exit {status}\n{block.body}\n--- output ---\n{output}"
        shown += f"\n--- background ---\n{self.background_output()}"
        assert status == 0, shown
        assert "Traceback" not in output, shown

    def background_output(self) -> str:
        log = self.state / "background.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        """SIGTERM every process group the page started; SIGKILL what is left after 15 s."""
        pids = self.state / "pids"
        groups = [*self.groups]
        if pids.exists():
            groups += [int(p) for p in pids.read_text().split()]
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for group in groups:
            while time.monotonic() < deadline and _alive(group):
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


def _http_statuses(command: str) -> str:
    """The HTTP statuses a ``curl`` line's trailing comment names (``# 201``, ``# 404: ...``,
    ``# 201, or 409 at weekends``), space-separated; "" when it names none."""
    if "curl " not in command or "#" not in command:
        return ""
    comment = command.rsplit("#", 1)[1]
    return " ".join(re.findall(r"(?<![\d.])([1-5]\d\d)(?![\d.])", comment))


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def copy_tree(target: Path) -> Path:
    """The tree's files (tracked and new, not ignored) copied to ``target``, with a ``.venv``
    that is a shim of the running venv (fresh stamps: ``make`` sees it built)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    venv, real = target / ".venv", Path(sys.prefix)
    venv.mkdir()
    for name in ("bin", "lib", "lib64", "include", "pyvenv.cfg"):
        if (real / name).exists():
            (venv / name).symlink_to(real / name)
    for stamp in (".runtime-stamp", ".dev-stamp"):
        (venv / stamp).touch()
    return target


def _tools() -> None:
    for tool in ("bash", "setsid", "make", "curl", "git"):
        assert shutil.which(tool), (
            f"the docs' steps need {tool} on PATH (e.g. apt-get install {tool})"
        )


def _environment(home: Path, port: int) -> dict[str, str]:
    # AT_TIME_SHIFT_S: the test clock of /work/shared/tools/at-time, which children inherit
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "PYTHONPATH", "AT_TIME_SHIFT_S")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(HOME=str(home), COLUMNS="160", PYTHONUNBUFFERED="1", MT5GATE_PORT=str(port))
    return env


def _documented_ports(page_blocks: list[Block]) -> set[int]:
    found = {SERVE_PORT, BRIDGE_PORT}
    for block in page_blocks:
        if block.runs:
            found |= {int(p) for p in _PORT.findall(block.body)}
    return found


@contextlib.contextmanager
def run_page(page: str, tmp: Path) -> Iterator[PageRun]:
    """Run every runnable block of ``page``, in order, in a fresh copy of the tree under ``tmp``;
    yield the run (its servers still up, for more checks), then stop what it started."""
    _tools()
    page_blocks = blocks(page)
    ports = {documented: free_port() for documented in sorted(_documented_ports(page_blocks))}
    state, home = tmp / "state", tmp / "home"
    state.mkdir()
    home.mkdir()
    (state / "answers").write_text("y\n" * 100)
    run = PageRun(
        page,
        copy_tree(tmp / "repo"),
        _environment(home, ports[SERVE_PORT]),
        ports,
        state,
    )
    try:
        for block in page_blocks:
            if block.runs:
                run.run(block)
        yield run
    finally:
        run.stop()
