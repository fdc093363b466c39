"""What ``pyproject.toml`` installs, as importable modules: the core's dependencies and each
extra's, with everything they pull in (read from the installed distributions' metadata)."""

from __future__ import annotations

import functools
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SELF = "mt5gate"


@functools.cache
def project() -> dict[str, Any]:
    """The ``[project]`` table of ``pyproject.toml``."""
    table: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return table


def requirements(extra: str | None) -> list[Requirement]:
    """The core's requirements (``None``) or one extra's, as written in ``pyproject.toml``."""
    table = project()
    lines = table["dependencies"] if extra is None else table["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def closure(extra: str | None) -> frozenset[str]:
    """The distributions the core (``None``) or ``extra`` installs, transitively, as canonical
    names; ``mt5gate[x]`` inside an extra expands to the core and extra ``x``."""
    seen: set[str] = set()
    todo = list(requirements(extra))
    if extra is not None:
        todo += requirements(None)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name == SELF:
            for inner in requirement.extras:
                todo += requirements(inner)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # another platform's, or an extra we do not install
        if name in seen:
            continue
        seen.add(name)
        todo += _requires(name, requirement.extras)
    return frozenset(seen)


def _requires(name: str, extras: set[str]) -> list[Requirement]:
    """The installed distribution's own requirements, with the extras asked of it."""
    found = []
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras)):
            requirement.marker = None
            found.append(requirement)
    return found


def modules_of(distributions: frozenset[str]) -> frozenset[str]:
    """The top-level modules those distributions provide (as installed here)."""
    return frozenset(
        module
        for module, names in metadata.packages_distributions().items()
        if any(canonicalize_name(name) in distributions for name in names)
    )
