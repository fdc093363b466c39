"""What the recipes ask of mt5gate exists: every ``--option`` they pass to ``mt5gate serve`` or
``mt5gate bridge`` is in that command's ``--help``, every ``-m`` module runs as a program,
every ``MT5GATE_*`` variable is one mt5gate reads (or one a unit defines for its own command
line), and every PowerShell parameter a recipe or the docs pass is declared by the script.
The Windows scripts cannot run here (no PowerShell, no Windows): these checks are what this
machine can do for them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mt5gate.bridge.cli import build_parser as bridge_parser
from mt5gate.service.cli import build_parser as serve_parser

from .files import CONTAINER, DEPLOY, ROOT, SYSTEMD, WINDOWS, read_dockerfile, read_unit

DOCS = ROOT / "docs" / "deploy.md"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: Where each recipe runs mt5gate, and which command that is.
BRIDGE_RECIPES = (SYSTEMD / "mt5gate-bridge.service", SYSTEMD / "bridge.env",
                  WINDOWS / "install-bridge.ps1", WINDOWS / "run-bridge.ps1")  # fmt: skip
SERVE_RECIPES = (SYSTEMD / "mt5gate-serve.service", SYSTEMD / "serve.env")
#: powershell.exe's own switches, which install-bridge.ps1 passes before run-bridge.ps1's.
POWERSHELL_SWITCHES = {"NoProfile", "NonInteractive", "ExecutionPolicy", "WindowStyle", "File"}


def help_options(text: str) -> set[str]:
    return set(OPTION.findall(text))


BRIDGE_OPTIONS = help_options(bridge_parser().format_help())
SERVE_OPTIONS = help_options(serve_parser().format_help())


def test_the_help_texts_are_read() -> None:
    assert {"--terminal", "--token-file", "--sim-start", "--tls-key"} <= BRIDGE_OPTIONS
    assert {"--config", "--port", "--new-key", "--bot"} <= SERVE_OPTIONS


def passed(path: Path) -> str:
    """What ``path`` passes to mt5gate: a unit's ExecStart= (its comments name systemctl's
    options too), the whole of an environment file or a script."""
    if path.suffix == ".service":
        return read_unit(path).value("Service", "ExecStart")
    return path.read_text(encoding="utf-8")


def test_every_option_the_recipes_pass_exists() -> None:
    for path in BRIDGE_RECIPES:
        used = help_options(passed(path))
        assert used, path
        assert used <= BRIDGE_OPTIONS, (path.name, used - BRIDGE_OPTIONS)
    for path in SERVE_RECIPES:
        used = help_options(passed(path))
        assert used <= SERVE_OPTIONS, (path.name, used - SERVE_OPTIONS)
    dockerfile = read_dockerfile(CONTAINER / "Dockerfile")
    entry = [word for item in dockerfile if item.keyword in ("ENTRYPOINT", "CMD")
             for word in item.exec_form()]  # fmt: skip
    assert entry[:3] == ["python", "-m", "mt5gate.service.cli"]
    assert help_options(" ".join(entry)) <= SERVE_OPTIONS


def logical_lines(path: Path) -> list[str]:
    """``path``'s lines, a line continued with a backslash (sh) or a backtick (PowerShell)
    joined to the next."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"[\\`]\n\s*", " ", text).splitlines()


def test_every_option_the_deployment_docs_pass_exists() -> None:
    serve = dict.fromkeys(("mt5gate serve", "mt5gate.service.cli", "MT5GATE_SERVE_ARGS"),
                          SERVE_OPTIONS)  # fmt: skip
    bridge = dict.fromkeys(("mt5gate bridge", "mt5gate.bridge.cli", "MT5GATE_BRIDGE_ARGS"),
                           BRIDGE_OPTIONS)  # fmt: skip
    commands = {**serve, **bridge}
    checked = 0
    for line in logical_lines(DOCS):
        for command, options in commands.items():
            if command in line:
                used = help_options(line.split(command, 1)[1])
                assert used <= options, (line, used - options)
                checked += 1
    assert checked >= 4


def test_the_terminal_each_bridge_recipe_serves_is_a_choice_of_the_bridge() -> None:
    (terminal,) = [action for action in bridge_parser()._actions if "--terminal" in
                   action.option_strings]  # fmt: skip
    assert terminal.choices is not None
    for path in BRIDGE_RECIPES:
        for value in re.findall(r"--terminal['\",\s]+(\w+)", passed(path)):
            assert value in terminal.choices, (path.name, value)


def test_every_module_the_recipes_run_is_a_program() -> None:
    modules = set()
    for path in [*BRIDGE_RECIPES, CONTAINER / "Dockerfile", DOCS]:
        text = path.read_text(encoding="utf-8")
        modules |= set(re.findall(r"-m['\",\s]+(mt5gate[\w.]*)", text))
    assert modules == {"mt5gate.bridge.cli", "mt5gate.service.cli"}
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None, module
        assert spec.origin is not None, module
        assert 'if __name__ == "__main__":' in Path(spec.origin).read_text(encoding="utf-8")


def test_every_mt5gate_variable_the_recipes_set_is_read_by_mt5gate_or_its_unit() -> None:
    source = "\n".join(path.read_text(encoding="utf-8")
                       for path in (ROOT / "src" / "mt5gate").rglob("*.py"))  # fmt: skip
    own = set()
    for unit in SYSTEMD.glob("*.service"):
        command = read_unit(unit).value("Service", "ExecStart")
        own |= set(re.findall(r"\$\{?(MT5GATE_\w+)", command))
    recipes = [path for path in DEPLOY.rglob("*") if path.is_file()] + [DOCS]
    used = set()
    for path in recipes:
        used |= set(re.findall(r"\b(MT5GATE_[A-Z_]+)\b", path.read_text(encoding="utf-8")))
    assert {"MT5GATE_DATA_DIR", "MT5GATE_PORT", "MT5GATE_BRIDGE_ARGS"} <= used
    unknown = {name for name in used - own if f'"{name}"' not in source}
    assert unknown == set()


def parameters(script: Path) -> set[str]:
    """The names a PowerShell script's param() block declares."""
    text = script.read_text(encoding="utf-8")
    block = text[text.index("param(") : text.index("\n)\n", text.index("param("))]
    return set(re.findall(r"\]\s*\$([A-Za-z]\w*)", block))


def test_the_powershell_parameters_passed_are_declared() -> None:
    install = parameters(WINDOWS / "install-bridge.ps1")
    run = parameters(WINDOWS / "run-bridge.ps1")
    assert {"Python", "ListenHost", "Port", "TokenFile", "Mode", "Uninstall"} <= install
    # install-bridge.ps1 passes these to run-bridge.ps1 in the task it registers
    text = (WINDOWS / "install-bridge.ps1").read_text(encoding="utf-8")
    runner = text[text.index("$runnerArgs = @(") : text.index("$argumentLine", text.index(
        "$runnerArgs = @("))]  # fmt: skip
    passed = set(re.findall(r"'-([A-Z]\w*)'", runner)) - POWERSHELL_SWITCHES
    assert {"Python", "TokenFile"} <= passed <= run
    # and the docs and the script's own examples pass these to install-bridge.ps1
    invocations = [line.split("install-bridge.ps1", 1)[1]
                   for path in (DOCS, WINDOWS / "install-bridge.ps1")
                   for line in logical_lines(path) if "install-bridge.ps1 -" in line]  # fmt: skip
    assert len(invocations) >= 5
    for line in invocations:
        given = set(re.findall(r"(?<![\w-])-([A-Z]\w*)", line))
        assert given <= install, (line, given - install)
    windows = DOCS.read_text(encoding="utf-8").split("## Windows")[1].split("## Container")[0]
    mentioned = set(re.findall(r"`-([A-Z]\w*)[^`]*`", windows))
    assert {"Mode", "ServiceCredential", "TlsCert"} <= mentioned <= install
