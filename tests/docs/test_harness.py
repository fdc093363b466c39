"""The docs harness (:mod:`tests.docs.steps`) itself: it fails on a failing step, holds a page to
the exit status it states, carries the shell's state from block to block, writes ``file:``
blocks, and counts a shell block with neither a run nor a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.steps import _http_statuses, blocks, run_page, unaccounted

FENCE = "```"


def _page(tmp_path: Path, text: str) -> str:
    page = tmp_path / "page.md"
    page.write_text(text.replace("~~~", FENCE))
    return str(page)  # absolute: the harness reads ROOT / page, which is then this file


def test_a_failing_step_fails_the_page_and_names_the_command(tmp_path: Path) -> None:
    page = _page(tmp_path, "~~~sh\ntrue\nfalse\necho never\n~~~\n")
    work = tmp_path / "run"
    work.mkdir()
    with (
        pytest.raises(AssertionError, match=r"docs: failed: false") as failed,
        run_page(page, work),
    ):
        pass
    assert "never" not in str(failed.value).split("--- output ---")[1].split("---")[0]


@pytest.mark.parametrize(("command", "passes"), [("(exit 3)  # exit 3", True),
                                                 ("true  # exit 1", False),
                                                 ("(exit 2)  # exit 3", False)])  # fmt: skip
def test_a_stated_exit_status_is_checked(tmp_path: Path, command: str, passes: bool) -> None:
    page = _page(tmp_path, f"~~~console\n$ {command}\nsome output\n~~~\n")
    work = tmp_path / "run"
    work.mkdir()
    if passes:
        with run_page(page, work):
            return
    with pytest.raises(AssertionError, match="expected exit"), run_page(page, work):
        pass


def test_directory_exports_and_files_carry_over(tmp_path: Path) -> None:
    text = (
        "~~~sh\nmkdir -p ~/trial && cd ~/trial\nexport GREETING=hello\n~~~\n\n"
        "<!-- file: greeting.toml -->\n~~~toml\nport = 8000\n~~~\n\n"
        "~~~sh\ntest \"$GREETING\" = hello\ngrep -q 'port = ' greeting.toml\n~~~\n"
    )
    page = _page(tmp_path, text)
    work = tmp_path / "run"
    work.mkdir()
    with run_page(page, work) as run:
        assert run.cwd == work / "home" / "trial"
        written = (run.cwd / "greeting.toml").read_text()
    assert written == f"port = {run.port(8000)}\n"  # a documented port becomes a free one


def test_a_block_with_neither_a_run_nor_a_reason_is_counted(tmp_path: Path) -> None:
    text = (
        "<!-- not-run: needs a Windows MT5 terminal -->\n~~~bat\npy -m mt5gate\n~~~\n\n"
        "~~~powershell\nmt5gate.exe\n~~~\n\n~~~sh\ntrue\n~~~\n\n~~~python\nprint()\n~~~\n"
    )
    page = _page(tmp_path, text)
    found = blocks(page)
    assert [b.not_run for b in found] == ["needs a Windows MT5 terminal", None, None, None]
    assert [b.runs for b in found] == [False, False, True, False]
    assert [b.lang for b in unaccounted(page)] == ["powershell"]


def test_a_docstring_marker_is_read(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(
        '"""Doc.\n\n.. not-run: needs a bot token\n\nRun it::\n\n    python x.py\n\n'
        'Or::\n\n    .venv/bin/python x.py --flag\n"""\n'
    )
    found = blocks(str(script))
    assert [(b.not_run, b.body) for b in found] == [
        ("needs a bot token", "python x.py\n"),
        (None, ".venv/bin/python x.py --flag\n"),
    ]


@pytest.mark.parametrize(
    ("line", "statuses"),
    [
        ('curl -H "$H" $U/v1/accounts/other        # 404: no account named', "404"),
        ("curl -X POST $U/orders -d '{}' \\\n     # 201, or 409 at weekends", "201 409"),
        ('curl -H "$H" $U/v1/accounts/hedge        # login 5001, margin_mode 2', ""),
        ("curl http://127.0.0.1:8080/price/EURUSD", ""),
        ("mt5gate health   # 200 is not for a command", ""),
    ],
)
def test_the_http_statuses_a_curl_line_names(line: str, statuses: str) -> None:
    assert _http_statuses(line) == statuses
