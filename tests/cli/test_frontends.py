"""``journal``, ``serve``, ``bot``, ``fleet``, ``bridge`` and ``demo`` are typer commands of
``mt5gate`` built from each front end's one option table, its argparse parser (issue 21, item 7).

The parser stays what ``python -m mt5gate.bridge.cli`` (core only, no typer), ``python -m
mt5gate.service.cli``, ``python -m mt5gate.orders.cli`` and ``python -m mt5gate.demo`` parse
with; these tests check that the
typer command made from it has every option, hands the front end's ``run`` what argparse would
have handed it, refuses what argparse refused (exit 2, with the table's own reason), and is
listed, helped and completed like every other command.
"""

from __future__ import annotations

import argparse
import importlib
import re
import socket
from pathlib import Path
from typing import Any, Final

import pytest
import typer

from mt5gate.cli import main
from mt5gate.cli.app import app
from mt5gate.cli.frontends import FRONT_ENDS, command

#: An option's name in a help text.
OPTION: Final = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: One command line per front end, with every kind of option its table has.
SAMPLES: Final[dict[str, list[str]]] = {
    "serve": ["--host", "127.0.0.2", "--port", "9001", "--config", "a.toml", "--bot"],
    "bot": ["--config", "b.toml"],
    "bridge": ["--terminal", "sim", "--token-file", "t.txt", "--port", "0",
               "--sim-start", "2026-01-06T10:00", "--max-connections", "3",
               "--handshake-timeout", "0.5", "--faults", "f.toml"],
    "demo": ["--virtual-time"],
    "fleet": ["--config", "c.toml", "move", "live", "replica-b"],
    "journal": ["list", "--journal", "j.db", "--state", "INTENT", "unknown", "--login", "5001",
                "--state", "SENT", "--unresolved", "--limit", "3", "--namespace", "0x10",
                "-c", "a.toml", "--account", "live"],
}  # fmt: skip


def parser_of(name: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = importlib.import_module(
        FRONT_ENDS[name].module
    ).build_parser()
    return parser


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--option`` of ``parser`` and of its sub-parsers."""
    found = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options_of(sub)
    return found


def helped(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", list(FRONT_ENDS))
def test_each_front_ends_help_lists_every_option_of_its_table(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = parser_of(name)
    text = helped(capsys, name)
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for sub in subcommands:
        for action in sub.choices:
            assert re.search(rf"^  {action}\s", text, re.M), (name, action)
            text += helped(capsys, name, action)
    assert text.startswith(f"Usage: mt5gate {name} [OPTIONS]")
    assert options_of(parser) <= set(OPTION.findall(text))
    assert "-h, --help" in text


def test_serve_help_is_in_the_style_of_the_other_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same layout as ``mt5gate price --help``: click's usage line, the description, then
    ``Options:`` with ``-h, --help`` (argparse said ``usage:`` and ``options:``)."""
    serve = helped(capsys, "serve")
    price = helped(capsys, "price")
    for text, usage in ((serve, "Usage: mt5gate serve [OPTIONS]"),
                        (price, "Usage: mt5gate price [OPTIONS]")):  # fmt: skip
        assert text.startswith(usage)
        assert "\n\n  " in text.split("Options:")[0]
        assert "\nOptions:\n" in text
        assert "-h, --help" in text
        assert "usage:" not in text
    assert re.search(r"^  --port PORT\s+TCP port \(default 8000\)$", serve, re.M)
    assert re.search(r"^  --config FILE\s+TOML file of accounts", serve, re.M)
    assert "SIMULATED demo account" in serve


def test_the_command_list_names_the_front_ends_with_their_summaries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = helped(capsys)
    for name, front_end in FRONT_ENDS.items():
        assert re.search(rf"^  {name}\s+{re.escape(front_end.summary)}$", text, re.M), name


@pytest.mark.parametrize("name", ["serve", "bot", "bridge", "demo", "fleet"])
def test_an_unknown_option_exits_2_naming_it(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --frobnicate" in err
    assert f"Usage: mt5gate {name}" in err


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["serve", "--port", "abc"], "Invalid value for '--port': invalid int value: 'abc'"),
        (["bridge", "--terminal", "mt4", "--token-file", "t"],
         "Invalid value for '--terminal': invalid choice: 'mt4' (choose from 'official', 'sim')"),
        (["bridge", "--terminal", "sim", "--token-file", "t", "--max-handshakes", "0"],
         "Invalid value for '--max-handshakes': must be above 0, got 0"),
        (["bridge", "--terminal", "sim", "--token-file", "t", "--sim-start", "monday"],
         "'monday' is not an ISO 8601 time such as 2026-01-06T10:00"),
        (["bridge", "--terminal", "sim", "--token-file", "t", "--log-level", "nope"],
         "Invalid value for '--log-level': invalid choice: 'nope'"),
        (["bridge", "--token-file", "t"], "Missing option '--terminal'"),
        (["fleet"], "Missing command"),
        (["fleet", "launch"], "No such command 'launch'"),
        (["fleet", "move", "live"], "Missing argument 'REPLICA'"),
    ],
)  # fmt: skip
def test_the_tables_rules_are_usage_errors(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each is refused by the command line (exit 2) with its table's reason, before the front
    end runs (no token file is read: ``t`` does not exist)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert reason in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", list(SAMPLES))
def test_run_gets_what_argparse_would_give_it(name: str) -> None:
    """The same ``argparse.Namespace``, defaults and converted values included (a ``Path``,
    a ``datetime``, a positive ``int``, a ``float``), from the typer command and from the
    parser itself."""
    parser = parser_of(name)
    got: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        got.append(args)
        return 0

    command(name, parser, record).main(SAMPLES[name], prog_name=f"mt5gate {name}",
                                       standalone_mode=False)  # fmt: skip
    assert got == [parser.parse_args(SAMPLES[name])]
    required = {"bridge": ["--terminal", "sim", "--token-file", "t.txt"], "fleet": ["status"],
                "journal": ["show", "--ticket", "7"]}  # fmt: skip
    fewest = required.get(name, [])
    command(name, parser, record).main(fewest, prog_name=f"mt5gate {name}",
                                       standalone_mode=False)  # fmt: skip
    assert got[1] == parser.parse_args(fewest)


def test_the_front_ends_exit_status_is_the_commands(tmp_path: Path) -> None:
    """``run``'s status goes out unchanged: 2 for the fleet without a [store]."""
    config = tmp_path / "fleet.toml"
    config.write_text('[[accounts]]\nname = "a"\nterminal = "sim"\n', encoding="utf-8")
    assert main(["fleet", "--config", str(config), "status"]) == 2


def test_serve_on_a_busy_port_exits_2_before_touching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT5GATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MT5GATE_CONFIG", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"mt5gate serve: port {port} on 127.0.0.1 is already in use" in err
    assert not (tmp_path / "data").exists()


def test_completion_knows_the_front_ends_options() -> None:
    """Completion (click's ``shell_complete`` of each command, as a shell's completion
    script asks it) offers a front end's options and sub-commands, which it builds as a run
    does (the argparse pass-through offered none)."""
    group = typer.main.get_command(app)
    root = group.make_context("mt5gate", [], resilient_parsing=True)

    def offered(name: str, incomplete: str) -> set[str]:
        found = group.get_command(root, name)
        assert found is not None
        ctx = found.make_context(name, [], parent=root, resilient_parsing=True)
        return {item.value for item in found.shell_complete(ctx, incomplete)}

    assert {"--port", "--new-key"} <= offered("serve", "--")
    assert {"--max-connections", "--max-handshakes"} <= offered("bridge", "--max")
    assert {"drain", "undrain"} <= offered("fleet", "")
    assert {"serve", "fleet"} <= {item.value for item in group.shell_complete(root, "")}


def test_a_mutually_exclusive_group_is_argparses(capsys: pytest.CaptureFixture[str]) -> None:
    """A required mutually exclusive group: one option of it is needed, two are refused (exit
    2, in argparse's words, naming the options), and the help says so; ``run`` sees what
    argparse would hand it."""
    parser = argparse.ArgumentParser(prog="x")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--client-id")
    which.add_argument("--ticket", type=int)
    got: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        got.append(args)
        return 0

    made = command("x", parser, record)
    made.main(["--ticket", "7"], prog_name="x", standalone_mode=False)
    assert got == [parser.parse_args(["--ticket", "7"])]
    for argv, reason in (([], "one of the arguments --client-id --ticket is required"),
                         (["--client-id", "a", "--ticket", "1"],
                          "argument --ticket: not allowed with argument --client-id")):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            made.main(argv, prog_name="x")
        assert done.value.code == 2
        assert reason in capsys.readouterr().err
    with pytest.raises(SystemExit):
        made.main(["--help"], prog_name="x")
    assert "Give exactly one of --client-id, --ticket." in capsys.readouterr().out


def test_an_option_of_several_values_reads_them_as_argparse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``nargs="+"`` with ``extend``: the words after the option up to the next option, again
    when repeated; ``--kind=A B`` leaves ``B`` over, as argparse does."""
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--kind", nargs="+", action="extend", type=str.upper)
    parser.add_argument("--flag", action="store_true")
    got: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        got.append(args)
        return 0

    for argv in (["--kind", "a", "b", "--flag", "--kind", "c"], ["--kind", "a", "--flag"], [],
                 ["--kind=a"]):  # fmt: skip
        command("x", parser, record).main(argv, prog_name="x", standalone_mode=False)
        assert got.pop() == parser.parse_args(argv), argv
    with pytest.raises(SystemExit) as done:
        command("x", parser, record).main(["--kind=a", "b", "c"], prog_name="x")
    assert done.value.code == 2
    assert "unexpected extra argument" in capsys.readouterr().err


def test_the_journals_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The journal says each usage error on one line, as its argparse parser did (its
    runbooks' scripts read stderr), where the other front ends print click's usage block."""
    assert main(["journal", "list", "--frobnicate"]) == 2
    assert capsys.readouterr().err == (
        "mt5gate journal: No such option: --frobnicate (see mt5gate journal list --help)\n"
    )
    assert main(["journal", "launch"]) == 2
    assert capsys.readouterr().err == (
        "mt5gate journal: No such command 'launch' (see mt5gate journal --help)\n"
    )
    assert main(["fleet", "launch"]) == 2
    assert capsys.readouterr().err.startswith("Usage: mt5gate fleet")


def test_an_action_the_converter_does_not_know_is_refused() -> None:
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--symbol", action="append")

    def never(_: Any) -> int:
        raise AssertionError

    with pytest.raises(TypeError, match="cannot convert the argparse action"):
        command("x", parser, never)
