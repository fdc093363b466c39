"""What the pages and messages tell a user to install is what exists: mt5gate is not on PyPI,
so no instruction installs a bare ``mt5gate`` from an index, and every wheel they name is the
one ``make release`` builds now."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import mt5gate
from tests.release.dists import ROOT, project

#: Where install instructions are written: the pages, the deployment recipes, the sources
#: (error messages), the Makefile and the scripts.
PLACES: Final = ("README.md", "docs", "deploy", "src", "Makefile", "scripts", "examples")
_SUFFIXES: Final = {".md", ".py", ".ps1", ".service", ".toml", ".env", ""}
_WHEEL: Final = re.compile(r"\bmt5gate-(\d+\.\d+\.\d+[\w.]*?)(?:-py3-none-any\.whl|\.tar\.gz)")
_PIP_INSTALL: Final = re.compile(r"pip install ([^`\n)]*)")


def texts() -> Iterator[tuple[Path, str]]:
    for place in PLACES:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if file.suffix in _SUFFIXES and "__pycache__" not in file.parts:
                yield file.relative_to(ROOT), file.read_text(encoding="utf-8", errors="replace")


def test_every_wheel_named_is_this_version() -> None:
    named = {
        (str(path), found.group(0))
        for path, text in texts()
        for found in _WHEEL.finditer(text)
        if found.group(1) != mt5gate.__version__
    }
    assert not named, f"wheels of another version than {mt5gate.__version__}: {sorted(named)}"


def test_no_instruction_installs_mt5gate_from_an_index() -> None:
    """``pip install mt5gate`` finds nothing (or someone else's package). ``mt5gate[extra]``
    is fine: with mt5gate installed, pip only adds the extra's packages."""
    bare = []
    for path, text in texts():
        for found in _PIP_INSTALL.finditer(text):
            command = found.group(1).split(" #")[0]  # not a shell comment after it
            try:
                words = shlex.split(command.replace("\\", "/"))
            except ValueError:
                words = command.split()
            if "mt5gate" in (word.strip("\"'") for word in words):
                bare.append(f"{path}: pip install {found.group(1)}")
    assert not bare, "\n".join(bare)


def test_the_version_is_written_once() -> None:
    """``pyproject.toml`` takes the version from ``mt5gate.__version__``."""
    assert "version" not in project()
    assert "version" in project()["dynamic"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'version = { attr = "mt5gate.__version__" }' in pyproject
