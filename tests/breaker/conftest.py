"""Fixtures for the circuit-breaker tests."""

from __future__ import annotations

import pytest

from .helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A clock at t = 1000 s that moves only when the test advances it."""
    return FakeClock()
