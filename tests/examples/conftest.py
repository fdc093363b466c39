"""Fixtures for the examples' tests (see :mod:`tests.examples.helpers`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.examples.helpers import Running, start_example


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """``started(name, *args, env=...)``: a running example, stopped after the test."""
    children: list[Running] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Running:
        running = start_example(name, *args, cwd=tmp_path, env=env)
        children.append(running)
        return running

    yield start
    for child in children:
        if child.process.poll() is None:
            child.stop()
