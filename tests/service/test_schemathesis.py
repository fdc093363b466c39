"""schemathesis against the running service: every operation of the OpenAPI document, with
generated valid and invalid input, finds no server error and no response that breaks the
schema (issue 6, item 8).

It runs schemathesis' own CLI (its examples, coverage, fuzzing and stateful phases) against a
real ``mt5gate serve`` process on loopback, with a fixed seed and a bounded number of examples
per operation, and an API key with every scope and a rate limit it never reaches (so a 429
never hides an answer). The stateful phase follows the links schemathesis infers, so it halts
and resumes trading and places, modifies, closes and cancels orders on the simulated account.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mt5gate.service.auth import hash_api_key, new_api_key
from tests.service.conftest import start_service

pytestmark = pytest.mark.slow

CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance,response_headers_conformance"
)


def _schemathesis(base: str, key: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """schemathesis' CLI, run in ``folder`` (where it keeps its cache of crashes)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", base + "/openapi.json",
        "--checks", CHECKS, "--max-examples", "10", "--seed", "1", "--request-timeout", "20",
        "--no-color", "-H", f"X-API-Key: {key}",
    ]  # fmt: skip
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=600, check=False, cwd=folder)  # fmt: skip


def test_schemathesis_finds_no_server_error_and_no_schema_break(tmp_path: Path) -> None:
    key = new_api_key()
    entry = {"name": "fuzz", "hash": hash_api_key(key), "scopes": ["read", "trade", "admin"],
             "rate_per_minute": 10_000_000}  # fmt: skip
    served = start_service(tmp_path / "data", env={"MT5GATE_API_KEYS": json.dumps([entry])})
    try:
        run = _schemathesis(served.base, key, tmp_path)
    finally:
        code, output = served.stop()
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counted is not None, report[-3000:]
    assert int(counted.group(1)) == int(counted.group(2)) >= 500, report[-3000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected is not None, report[-3000:]
    assert tested is not None, report[-3000:]
    assert selected.group(1) == selected.group(2) == tested.group(1)  # every operation ran
    assert "unexpected error" not in output
    assert code in (0, -15), output[-3000:]
