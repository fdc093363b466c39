"""The documentation's steps run as written (README.md, the guides, install.md, simulator.md,
the quick reference's console, the examples' "Run it" commands): see :mod:`tests.docs.steps`
for what runs, how, and the ``not-run`` / ``file`` markers a page uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.docs.steps import PAGES, Block, PageRun, blocks, run_page, unaccounted

RUNNABLE = [page for page in PAGES if any(block.runs for block in blocks(page))]


@pytest.mark.parametrize("page", PAGES)
def test_every_shell_block_runs_or_says_why_not(page: str) -> None:
    missing = unaccounted(page)
    assert not missing, f"shell blocks with neither a run nor a <!-- not-run: reason -->: {missing}"


def test_the_pages_have_steps_that_run() -> None:
    assert {"README.md", "docs/quickref.md", "docs/guides/fastapi.md"} <= set(RUNNABLE)
    assert all(f"examples/{n}.py" in RUNNABLE for n in ("quickstart", "fastapi_app"))


@pytest.mark.parametrize("page", PAGES)
def test_examples_run_with_the_venvs_python(page: str) -> None:
    """The system's python3 has neither mt5gate nor its dependencies: a documented example
    command names the venv's (``make`` builds it)."""
    for block in blocks(page):
        for found in re.finditer(r"(\S*)python3? examples/", block.body):
            assert found.group(1) == ".venv/bin/", f"{block}: {found.group(0)}"


def _check_readme(run: PageRun) -> None:
    token = (run.repo / "token.txt").read_text().strip()
    assert (run.repo / "token.txt").stat().st_mode & 0o077 == 0
    assert len(token) >= 32
    assert token not in run.background_output()
    assert token not in "".join(run.outputs)
    assert "*** SIMULATED terminal" in "".join(run.outputs)  # examples/quickstart.py ran
    # two BTCUSD positions: `mt5gate order` (answered "y"), then the curl through `make serve`
    key = (run.repo / ".mt5gate" / "api-key").read_text().strip()
    url = f"http://127.0.0.1:{run.port(8000)}/v1/accounts/demo/positions"
    positions = httpx.get(url, headers={"X-API-Key": key}, timeout=10).json()
    assert [p["symbol"] for p in positions] == ["BTCUSD", "BTCUSD"], positions


def _check_quickref(run: PageRun) -> None:
    assert "SIMULATED" in run.outputs[0]
    journal = subprocess.run(
        ["mt5gate", "journal", "list", "--json"],
        cwd=run.cwd,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert journal.stdout.count('"first-order"') == 1, journal.stdout


def _check_accounts(run: PageRun) -> None:
    output = "".join(run.outputs)
    assert "'hedge', 5001" in output
    assert "'net', 5002" in output
    assert "Risk limit" in output  # the order over max_volume_per_order was refused
    ready = httpx.get(f"http://127.0.0.1:{run.port(18933)}/readyz", timeout=10).json()
    assert ready == {"status": "pass", "accounts": {"hedge": True, "net": True}}


def _check_metrics(run: PageRun) -> None:
    assert "mt5gate_session_state" in run.outputs[0]


def _check_fastapi(run: PageRun) -> None:
    output = run.outputs[0]
    assert '"bid"' in output
    assert '"client_id"' in output


CHECKS = {
    "README.md": _check_readme,
    "docs/quickref.md": _check_quickref,
    "docs/guides/accounts.md": _check_accounts,
    "docs/guides/metrics.md": _check_metrics,
    "docs/guides/fastapi.md": _check_fastapi,
}


@pytest.mark.timeout(600)  # a page is many processes; each block has its own timeout
@pytest.mark.parametrize("page", RUNNABLE)
def test_the_steps_run_as_written(page: str, tmp_path: Path) -> None:
    with run_page(page, tmp_path) as run:
        if page in CHECKS:
            CHECKS[page](run)
    assert "Traceback" not in run.background_output(), run.background_output()


def test_the_quick_reference_has_commands_for_every_section() -> None:
    console = [b for b in blocks("docs/quickref.md") if b.lang == "console"]
    verbs = set(re.findall(r"^\$ mt5gate (\w+)", "".join(b.body for b in console), re.M))
    assert {"price", "account", "positions", "history", "watch", "order", "close"} <= verbs
    assert {"errors", "health", "journal"} <= verbs


_QUICKREF_PYTHON = [b for b in blocks("docs/quickref.md") if b.lang == "python"]


@pytest.mark.parametrize("block", _QUICKREF_PYTHON, ids=str)
def test_the_quick_references_python_blocks_run(tmp_path: Path, block: Block) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(block.body)
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "pass" in done.stdout
