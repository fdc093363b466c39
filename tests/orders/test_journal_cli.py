"""``mt5gate journal``: list and show orders of a real journal file, in-process and as a
subprocess; exit statuses, JSON, the environment, and refusing to create a journal."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mt5gate.cli import main
from mt5gate.orders import cli as journal_cli
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.journal import EventKind, SqliteJournal

REQUEST: dict[str, Any] = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}
T0 = 1_500_000_000_000  # 2017-07-14T02:40:00Z: before 2020, client ids count from 1
ROOT = Path(__file__).resolve().parents[2]


def _fill(path: Path, namespace: int = 0x6D67) -> None:
    """5001/1 "k-1" acknowledged, 5001/2 "k-2" unknown, 5001/3 unexpected, 5002/1 "k-1" intent."""
    ticks = itertools.count(T0, 1000)
    with SqliteJournal(path, namespace=namespace, clock_ms=lambda: next(ticks)) as journal:
        done = journal.record_intent(5001, REQUEST, "k-1")
        journal.record(EventKind.SENT, done, 5001)
        journal.record(
            EventKind.ACKNOWLEDGED, done, 5001,
            result={"retcode": 10009, "order": 111, "deal": 222}, retcode=10009,
        )  # fmt: skip
        lost = journal.record_intent(5001, {**REQUEST, "volume": 0.2}, "k-2")
        journal.record(EventKind.SENT, lost, 5001)
        journal.record(EventKind.UNKNOWN, lost, 5001, note="deadline\nexpired")
        stranger = journal.next_id(5001)
        journal.record(
            EventKind.UNEXPECTED, stranger, 5001, result={"time_setup": 1, "ticket": 333}
        )
        journal.record_intent(5002, REQUEST, "k-1")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    filled = tmp_path / "journal.sqlite"
    _fill(filled)
    return filled


@pytest.fixture(autouse=True)
def _no_env_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(journal_cli.ENV_JOURNAL, raising=False)
    monkeypatch.delenv(journal_cli.ENV_STORE, raising=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    status = main(["journal", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def _table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


# -- list ------------------------------------------------------------------------------------


def test_list_prints_an_aligned_table(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(capsys, "list", "--journal", path)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "LOGIN", "ID", "TAG", "STATE", "KEY", "RETCODE", "ORDER", "DEAL", "UPDATED", "(UTC)"
    ]  # fmt: skip
    assert _table(out)[1:] == [
        ["5001", "1", "mg:1", "ACKNOWLEDGED", "k-1", "10009", "111", "222", "2017-07-14T02:40:02Z"],
        ["5001", "2", "mg:2", "UNKNOWN", "k-2", "-", "-", "-", "2017-07-14T02:40:05Z"],
        ["5001", "3", "mg:3", "UNEXPECTED", "-", "-", "333", "-", "2017-07-14T02:40:07Z"],
        ["5002", "1", "mg:1", "INTENT", "k-1", "-", "-", "-", "2017-07-14T02:40:08Z"],
    ]  # fmt: skip
    assert len({line.index("mg:") for line in lines[1:]}) == 1  # aligned columns
    assert len({len(line) for line in lines[1:]}) == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--login", "5002"], [("5002", "1")]),
        (["--state", "unexpected"], [("5001", "3")]),
        (["--state", "INTENT", "UNKNOWN"], [("5001", "2"), ("5002", "1")]),
        (["--state", "INTENT", "--state", "ACKNOWLEDGED"], [("5001", "1"), ("5002", "1")]),
        (["--key", "k-1"], [("5001", "1"), ("5002", "1")]),
        (["--key", "k-1", "--login", "5001"], [("5001", "1")]),
        (["--ticket", "222"], [("5001", "1")]),
        (["--ticket", "333"], [("5001", "3")]),
        (["--limit", "2"], [("5001", "1"), ("5001", "2")]),
    ],
)
def test_list_filters(
    path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    expected: list[tuple[str, str]],
) -> None:
    status, out, _ = _run(capsys, "list", "--journal", path, *options)
    assert status == 0
    assert [(row[0], row[1]) for row in _table(out)[1:]] == expected


def test_list_nothing(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "list", "--journal", path, "--login", "9") == (0, "no orders match\n", "")
    status, out, _ = _run(capsys, "list", "--journal", path, "--login", "9", "--json")
    assert (status, json.loads(out)) == (0, [])


def test_unresolved_exits_1_when_there_are_any(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(capsys, "list", "--journal", path, "--unresolved")
    assert status == 1
    assert [(row[0], row[1], row[3]) for row in _table(out)[1:]] == [
        ("5001", "2", "UNKNOWN"),
        ("5002", "1", "INTENT"),
    ]
    status, out, _ = _run(capsys, "list", "--journal", path, "--unresolved", "--state", "INTENT")
    assert (status, [row[1] for row in _table(out)[1:]]) == (1, ["1"])  # both must hold
    status, out, _ = _run(capsys, "list", "--journal", path, "--unresolved", "--login", "5001",
                          "--state", "ACKNOWLEDGED")  # fmt: skip
    assert (status, out) == (0, "no orders match\n")
    status, out, _ = _run(capsys, "list", "--journal", path, "--unresolved", "--json")
    assert (status, len(json.loads(out))) == (1, 2)
    status, _, _ = _run(capsys, "list", "--journal", path, "--state", "UNKNOWN")
    assert status == 0  # only --unresolved alerts


def test_list_json(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "list", "--journal", path, "--json")
    assert status == 0
    data = json.loads(out)
    assert len(data) == 4
    assert data[0] == {
        "client_id": {
            "login": 5001,
            "sequence": 1,
            "magic": ClientOrderId(5001, 1).magic,
            "tag": "mg:1",
        },
        "idempotency_key": "k-1",
        "state": "ACKNOWLEDGED",
        "unresolved": False,
        "events": 3,
        "created_utc_ms": T0,
        "updated_utc_ms": T0 + 2000,
        "request": REQUEST,
        "retcode": 10009,
        "order_ticket": 111,
        "deal_ticket": 222,
    }
    assert data[2]["request"] is None
    assert data[2]["state"] == "UNEXPECTED"
    assert [item["unresolved"] for item in data] == [False, True, False, True]


# -- show ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client_id",
    ["2", "mg:2", "my order mg:2 x", str(ClientOrderId(5001, 2).magic), "0x6D67000000000002"],
)
def test_show_by_client_id(path: Path, capsys: pytest.CaptureFixture[str], client_id: str) -> None:
    status, out, err = _run(capsys, "show", "--journal", path, "--client-id", client_id)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"order mg:2  login 5001  id 2  magic {ClientOrderId(5001, 2).magic}"
    assert "  state        UNKNOWN (unresolved)" in lines
    assert "  key          k-2" in lines
    assert "  created      2017-07-14T02:40:03.000Z" in lines
    assert '  request      {"action":1,"symbol":"EURUSD","type":0,"volume":0.2}' in lines
    assert lines.index("events:") == 10
    events = [line for line in lines[11:] if line.startswith("  #")]
    assert [line.split()[2] for line in events] == ["INTENT", "SENT", "UNKNOWN"]
    assert events[-1].endswith('note "deadline\\nexpired"')  # control characters quoted
    assert '      request {"action":1,"symbol":"EURUSD","type":0,"volume":0.2}' in lines


def test_show_every_account_unless_login(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "show", "--journal", path, "--client-id", "1")
    assert status == 0
    headers = [line for line in out.splitlines() if line.startswith("order ")]
    assert [h.split()[3] for h in headers] == ["5001", "5002"]
    status, out, _ = _run(capsys, "show", "--journal", path, "--client-id", "1", "--login", "5002")
    assert status == 0
    assert [line for line in out.splitlines() if line.startswith("order ")] == [headers[1]]
    assert "      result  " not in out
    status, out, _ = _run(capsys, "show", "--journal", path, "--client-id", "mg:1",
                          "--login", "5001")  # fmt: skip
    assert '      result  {"deal":222,"order":111,"retcode":10009}' in out.splitlines()


def test_show_by_key_and_ticket(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "show", "--journal", path, "--key", "k-1", "--login", "5002")
    assert (status, out.splitlines()[0].split()[1:4]) == (0, ["mg:1", "login", "5002"])
    status, out, _ = _run(capsys, "show", "--journal", path, "--ticket", "333")
    assert status == 0
    assert "  state        UNEXPECTED" in out.splitlines()
    assert "  request      -" in out.splitlines()
    status, out, err = _run(capsys, "show", "--journal", path, "--key", "k-1")
    assert (status, out) == (2, "")
    assert "--key needs --login" in err


def test_show_json(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "show", "--journal", path, "--client-id", "1", "--json")
    assert status == 0
    data = json.loads(out)
    assert [item["summary"]["client_id"]["login"] for item in data] == [5001, 5002]
    first = data[0]
    assert set(first) == {"summary", "events"}
    assert first["summary"]["events"] == len(first["events"]) == 3
    assert [event["kind"] for event in first["events"]] == ["INTENT", "SENT", "ACKNOWLEDGED"]
    assert set(first["events"][0]) == {
        "seq", "kind", "utc_ms", "monotonic_ns", "client_id", "idempotency_key", "request",
        "result", "retcode", "note", "order_ticket", "deal_ticket",
    }  # fmt: skip
    assert first["events"][0]["client_id"]["tag"] == "mg:1"
    assert first["events"][2]["result"] == {"deal": 222, "order": 111, "retcode": 10009}


@pytest.mark.parametrize(
    "options",
    [
        ["--client-id", "9"],
        ["--client-id", "2", "--login", "5002"],
        ["--key", "nope", "--login", "5001"],
        ["--ticket", "999"],
        ["--json", "--client-id", "9"],
    ],
)
def test_show_not_found_exits_1(
    path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    status, out, err = _run(capsys, "show", "--journal", path, *options)
    assert (status, out) == (1, "")
    assert err == f"mt5gate journal: no order matches in {path}\n"


def test_custom_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ns.sqlite"
    _fill(path, namespace=7)
    magic = ClientOrderId(5001, 2, namespace=7).magic
    status, out, _ = _run(capsys, "show", "--journal", path, "--namespace", "7",
                          "--client-id", magic, "--json")  # fmt: skip
    assert status == 0
    assert json.loads(out)[0]["summary"]["client_id"]["magic"] == magic
    status, _, err = _run(capsys, "show", "--journal", path, "--client-id", magic)
    assert status == 2
    assert "namespace 0x6d67" in err


def test_blocks_and_acknowledge_as_the_runbook_runs_them(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands of the lost-journal runbook (and the chaos harness's operator), word for
    word: ``blocks --journal FILE --json``, then ``acknowledge --journal FILE --login N --note
    TEXT``, which lifts the block once."""
    with SqliteJournal(path) as journal:
        assert journal.block(None, 5001, "the journal is behind the broker", [77, 78])
    status, out, _ = _run(capsys, "blocks", "--journal", path, "--json")
    assert status == 1
    [block] = json.loads(out)
    assert (block["login"], block["sequences"]) == (5001, [77, 78])
    status, out, err = _run(capsys, "acknowledge", "--journal", path, "--login", "5001",
                            "--note", "ann: checked")  # fmt: skip
    assert (status, err) == (0, "")
    assert "account 5001: block lifted (2 orders acknowledged)" in out
    assert _run(capsys, "blocks", "--journal", path) == (0, "no account is blocked\n", "")
    status, _, err = _run(capsys, "acknowledge", "--journal", path, "--login", "5001",
                          "--note", "again")  # fmt: skip
    assert (status, err) == (1, "mt5gate journal: account 5001 is not blocked; nothing to "
                                "acknowledge\n")  # fmt: skip


# -- where the journal comes from ------------------------------------------------------------


def test_journal_from_the_environment(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT5GATE_JOURNAL", str(path))
    status, out, _ = _run(capsys, "list", "--login", "5002")
    assert (status, _table(out)[1][:2]) == (0, ["5002", "1"])
    other = path.with_name("other.sqlite")
    status, _, err = _run(capsys, "list", "--journal", other)  # the flag wins
    assert (status, err) == (2, f"mt5gate journal: no order journal at {other}\n")


def test_no_journal_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without --journal or $MT5GATE_JOURNAL, `mt5gate journal` reads the (demo) account's
    journal, never creating it; the journal CLI alone still asks for one."""
    monkeypatch.chdir(tmp_path)
    for name in ("MT5GATE_CONFIG", "MT5GATE_DATA_DIR", "MT5GATE_JOURNAL", "MT5GATE_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    status, _, err = _run(capsys, "list")
    assert (status, err) == (2, "mt5gate journal: no order journal at .mt5gate/demo-orders.db\n")
    monkeypatch.setenv("MT5GATE_JOURNAL", "")
    assert _run(capsys, "list")[0] == 2
    assert not (tmp_path / ".mt5gate" / "demo-orders.db").exists()
    assert journal_cli.main(["list"]) == 2
    assert "no journal given: pass --journal FILE or --store URL" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["list"], ["show", "--client-id", "1"]])
def test_missing_journal_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    missing = tmp_path / "nope" / "journal.sqlite"
    status, out, err = _run(capsys, *action, "--journal", missing)
    assert (status, out, err) == (2, "", f"mt5gate journal: no order journal at {missing}\n")
    assert not missing.exists()
    assert not missing.parent.exists()


def test_empty_file_stays_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    status, _, err = _run(capsys, "list", "--journal", empty)
    assert status == 2
    assert "is empty" in err
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]


def test_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "list", "--journal", tmp_path)
    assert (status, err) == (2, f"mt5gate journal: {tmp_path} is not a file, so not an order "
                                "journal\n")  # fmt: skip


def test_garbage_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(64) + b"not a database" * 500)
    status, out, err = _run(capsys, "list", "--journal", garbage)
    assert (status, out) == (2, "")
    assert err.startswith(f"mt5gate journal: order journal {garbage} is not a readable SQLite")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_unreadable_rows_are_one_line(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO events (kind, utc_ms, monotonic_ns, login, client_id)"
        " VALUES ('TELEPORTED', 1, 1, 5003, 1)"
    )
    conn.commit()
    conn.close()
    status, _, err = _run(capsys, "list", "--journal", path)
    assert status == 2
    assert err.startswith("mt5gate journal: the journal holds data this mt5gate cannot read:")
    assert "TELEPORTED" in err
    assert err.count("\n") == 1


def test_os_errors_are_one_line(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(journal_cli, "SqliteJournal", refuse)
    assert _run(capsys, "list", "--journal", path) == (
        2, "", "mt5gate journal: [Errno 13] Permission denied\n"
    )  # fmt: skip


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "Missing command"),
        (["remove"], "No such command 'remove'"),
        (["list", "--limit", "0"], "must be positive, got 0"),
        (["list", "--login", "x"], "not a whole number: 'x'"),
        (["list", "--state", "SENDING"], "unknown state 'SENDING' (one of INTENT, SENT"),
        (["list", "--namespace", "0x10000"], "must be 0..0xffff, got 0x10000"),
        (["list", "--namespace", "ns"], "not a number: 'ns'"),
        (["list", "--frobnicate"], "No such option: --frobnicate"),
        (["list", "--state", "--unresolved"], "unknown state '--unresolved'"),  # click: a value
        (["list", "--state=INTENT", "UNKNOWN"], "unexpected extra argument(s) (UNKNOWN)"),
        (["show"], "one of the arguments --client-id --key --ticket is required"),
        (["show", "--client-id", "1", "--ticket", "2"], "not allowed with argument"),
        (["show", "--client-id", "zz"], "--client-id 'zz' is not a sequence number, tag or magic"),
        (["show", "--client-id", "0xzz"], "--client-id '0xzz' is not a sequence number"),
        (["show", "--client-id", "0"], "--client-id 0 is not a sequence or a magic"),
        (["show", "--client-id", str(1 << 64)], "is not a sequence or a magic"),
    ],
)
def test_bad_arguments_are_one_line(
    path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    journal = ["--journal", path] if argv[:1] in (["list"], ["show"]) else []
    status, out, err = _run(capsys, *argv, *journal)
    assert (status, out) == (2, "")
    assert err.startswith("mt5gate journal")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["show"], "one of the arguments --client-id --key --ticket is required (see mt5gate "
                   "journal show --help)"),
        (["show", "--ticket", "2", "--client-id", "1"], "argument --ticket: not allowed with "
                                                        "argument --client-id (see mt5gate "
                                                        "journal show --help)"),
        (["show", "--key", "k-1", "--frobnicate"], "No such option: --frobnicate (see mt5gate "
                                                   "journal show --help)"),
        (["--frobnicate", "list"], "No such option: --frobnicate (see mt5gate journal --help)"),
        (["acknowledge", "--login", "5001"], "Missing option '--note' (see mt5gate journal "
                                             "acknowledge --help)"),
    ],
)  # fmt: skip
def test_usage_errors_name_the_options_on_one_line(
    path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    """The typer sub-app refuses what the journal's argparse parser refused, before reading
    anything (exit 2): one line naming the options, and which help to read."""
    status, out, err = _run(capsys, *argv, "--journal", path)
    assert (status, out, err) == (2, "", f"mt5gate journal: {line}\n")


def test_state_takes_several_kinds_in_either_form(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--state A B`` (argparse's form, in the runbooks) and ``--state A --state B`` (click's)
    are the same filter, and may be mixed with other options between them."""
    forms = [
        ["--state", "intent", "UNKNOWN", "ACKNOWLEDGED"],
        ["--state", "INTENT", "--state", "unknown", "--state", "ACKNOWLEDGED"],
        ["--state", "INTENT", "UNKNOWN", "--json", "--state", "ACKNOWLEDGED"],
    ]
    found = []
    for form in forms:
        status, out, err = _run(capsys, "list", "--journal", path, "--json", *form)
        assert (status, err) == (0, "")
        found.append(sorted((o["client_id"]["login"], o["state"]) for o in json.loads(out)))
    assert found[0] == [(5001, "ACKNOWLEDGED"), (5001, "UNKNOWN"), (5002, "INTENT")]
    assert found[1] == found[0]
    assert found[2] == found[0]


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "list", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--unresolved" in out
    assert "1 when 'list --unresolved' or 'blocks' finds any" in out
    assert "MT5GATE_JOURNAL" in out
    main(["--help"])
    assert "journal" in capsys.readouterr().out


def test_a_real_subprocess(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MT5GATE_JOURNAL": str(path)}
    run = subprocess.run(
        [sys.executable, "-m", "mt5gate.cli", "journal", "list", "--unresolved"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert (run.returncode, run.stderr) == (1, "")
    assert [line.split()[:4] for line in run.stdout.splitlines()] == [
        ["LOGIN", "ID", "TAG", "STATE"],
        ["5001", "2", "mg:2", "UNKNOWN"],
        ["5002", "1", "mg:1", "INTENT"],
    ]
    missing = tmp_path / "missing.sqlite"
    run = subprocess.run(
        [sys.executable, "-m", "mt5gate.cli", "journal", "list", "--journal", str(missing)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == f"mt5gate journal: no order journal at {missing}\n"
    assert not missing.exists()
    run = subprocess.run(  # the module runs on its own too
        [sys.executable, "-m", "mt5gate.orders.cli", "show", "--client-id", "mg:3", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0
    assert json.loads(run.stdout)[0]["summary"]["state"] == "UNEXPECTED"
