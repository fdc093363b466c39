"""``journal``, ``serve``, ``bot``, ``fleet``, ``bridge`` and ``demo``: typer commands built
from each front end's own option table, its argparse parser.

Each front end keeps one table of its options, its ``build_parser()``: ``python -m
mt5gate.bridge.cli`` (the bridge runs next to a Windows terminal with the core alone, without
typer), ``python -m mt5gate.service.cli`` (the container's entry point), ``python -m
mt5gate.orders.cli`` and ``python -m mt5gate.demo`` parse with it, and the recipes' tests read
its help. :func:`command` turns that table into a typer command (a typer sub-app of commands for
a parser with sub-commands, as ``fleet`` and ``journal``), so ``mt5gate serve --help`` is in the
style of every other command, an unknown option is refused by name (exit 2), and shell
completion knows every option. The options are written once, in the front end; the work is the
front end's ``run(args)``, on the same ``argparse.Namespace`` either way.

What argparse has and click has not is kept: an option of several values (``nargs="+"``, as
the journal's ``--state A B``) is a click option given once per value, and
:class:`FrontEndCommand` reads ``--state A B`` as ``--state A --state B``, so both forms work;
a mutually exclusive group is checked before ``run``, refused in argparse's words (exit 2);
an argument group's title is the option's help panel, and a raw epilog stays as written. A
front end whose usage errors scripts read (the journal, :attr:`FrontEnd.one_line_errors`) says
each on one line, ``mt5gate journal: <reason> (see mt5gate journal list --help)``, as its
argparse parser did, instead of click's usage block.

:class:`FrontEndGroup` builds a front end's command only when it is asked for (run, its help,
completion): ``mt5gate --help`` lists them by :data:`FRONT_ENDS`' summaries without importing
the service, the bridge, the journal or the simulator (``tests/cli/test_imports.py``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from mt5gate.cli.helptext import NEGATIVE, PanelCommand, PlainGroup

if TYPE_CHECKING:  # argparse is imported when a front end's command is built, not for --help
    import argparse

    #: What ``run`` gets: the parsed options, as argparse would have made them.
    Run = Callable[[argparse.Namespace], int]

__all__ = [
    "FRONT_ENDS", "FrontEnd", "FrontEndCommand", "FrontEndGroup", "LineCommand", "LineGroup",
    "command",
]  # fmt: skip


@dataclass(frozen=True)
class FrontEnd:
    """A front end: its module (with ``build_parser()`` and ``run(args)``), the line
    ``mt5gate --help`` shows for it, and whether its usage errors are one line each."""

    module: str
    summary: str
    one_line_errors: bool = False


FRONT_ENDS: Final[Mapping[str, FrontEnd]] = MappingProxyType({
    "journal": FrontEnd("mt5gate.cli.journal",
                        "Read the order journal (the account's by default); lift a block.",
                        one_line_errors=True),
    "serve": FrontEnd("mt5gate.service.cli",
                      "The HTTP gateway (REST, WebSocket, health, metrics)."),
    "bot": FrontEnd("mt5gate.service.bot_cli", "The Telegram bot on the configured accounts."),
    "bridge": FrontEnd("mt5gate.bridge.cli", "Serve a terminal over TCP to a gateway elsewhere."),
    "demo": FrontEnd("mt5gate.demo", "A short tour of the simulator."),
    "fleet": FrontEnd("mt5gate.service.fleet_cli", "See and steer a fleet of serve replicas."),
})  # fmt: skip

#: The context parameter of a command's function (a name no option can have: argparse
#: dests are identifiers made from option names, which never start with two underscores).
_CTX: Final = "__ctx"


def load(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """The command of front end ``name``, built from its module's parser."""
    front_end = FRONT_ENDS[name]
    module = importlib.import_module(front_end.module)
    return command(name, module.build_parser(), module.run,
                   one_line_errors=front_end.one_line_errors)  # fmt: skip


def command(
    name: str, parser: argparse.ArgumentParser, run: Run, *, one_line_errors: bool = False
) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """``parser``'s options as the typer command ``name`` (a group when it has sub-commands)
    that calls ``run`` with them; ``run``'s non-zero status is the exit status. With
    ``one_line_errors``, a usage error is one line (see the module docstring)."""
    import argparse

    kinds = _Kinds(LineGroup, LineCommand) if one_line_errors else _Kinds()
    subparsers = _subparsers(parser)
    if subparsers is None:
        built = typer.Typer(rich_markup_mode=None, add_completion=False)
        built.command(name, cls=kinds.command, help=_described(parser), epilog=_epilog(parser))(
            _function(parser, lambda values, ctx: run(argparse.Namespace(**values)))
        )  # fmt: skip
    else:
        built = _group(name, parser, subparsers, run, kinds)
    made = typer.main.get_command(built)
    made.name = name
    assert isinstance(made, typer.core.TyperCommand | typer.core.TyperGroup)
    return made


class FrontEndCommand(PanelCommand):
    """A front end's command: an option of several values (:func:`_several`) reads the words
    after it as argparse did, ``--state A B`` as ``--state A --state B``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse ``args`` with each option of several values given once per value."""
        several = frozenset(
            opt for param in self.params
            if param.param_type_name == "option" and getattr(param, "multiple", False)
            for opt in param.opts
        )  # fmt: skip
        return super().parse_args(ctx, _spread(args, several) if several else args)


def _spread(args: Sequence[str], several: frozenset[str]) -> list[str]:
    """``args`` with the words after an option of ``several`` (up to the next word that starts
    with a dash but is no negative number, or ``--``) each given with that option, as
    argparse's ``nargs="+"`` reads them."""
    spread: list[str] = []
    repeat: str | None = None  # the option whose values the words are
    first = False  # the word after the option itself: its first value, already placed
    for index, arg in enumerate(args):
        if arg == "--":
            return spread + list(args[index:])
        if arg in several:
            repeat, first = arg, True
        elif arg.startswith("-") and not NEGATIVE.fullmatch(arg):
            repeat = None
        elif repeat is not None and not first:
            spread.append(repeat)
        else:
            first = False
        spread.append(arg)
    return spread


#: The class of click's usage errors (an unknown option, a missing command, a bad value), of
#: which typer names only :class:`typer.BadParameter` (recent typers carry their own click).
_USAGE_ERROR: Final[Any] = typer.BadParameter.__mro__[1]


class _LineError(typer.BadParameter):
    """A usage error said on one line (:attr:`FrontEnd.one_line_errors`)."""

    def format_message(self) -> str:
        """The reason alone."""
        return str(self.message)

    def show(self, file: Any = None) -> None:
        """``mt5gate journal: <reason> (see mt5gate journal list --help)`` on stderr."""
        typer.echo(_line(self.message, self.ctx), file=file, err=True)


def _line(reason: str, ctx: Any) -> str:
    """The one line: the front end's name, the reason, and whose help tells more."""
    if ctx is None:
        return reason
    top = ctx
    while top.parent is not None and isinstance(top.parent.command, LineGroup):
        top = top.parent
    return f"{top.command_path}: {reason.rstrip('.')} (see {ctx.command_path} --help)"


@contextmanager
def _one_line(ctx: Any) -> Iterator[None]:
    """A usage error raised in the block, as a :class:`_LineError` (of ``ctx`` when the error
    names no context, as the parser's own errors)."""
    try:
        yield
    except _LineError:
        raise
    except _USAGE_ERROR as error:
        raise _LineError(error.format_message(), error.ctx or ctx) from None


class LineCommand(FrontEndCommand):
    """A front end's command whose usage errors are one line each."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse: a usage error is one line."""
        with _one_line(ctx):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        """Run: a usage error (a mutually exclusive group) is one line."""
        with _one_line(ctx):
            return super().invoke(ctx)


class LineGroup(PlainGroup):
    """A front end's group whose usage errors (its commands' too) are one line each."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse the group's own options: a usage error is one line."""
        with _one_line(ctx):
            return list(super().parse_args(ctx, args))

    def invoke(self, ctx: Any) -> Any:
        """Run a command: a missing or unknown command is one line."""
        with _one_line(ctx):
            return super().invoke(ctx)


@dataclass(frozen=True)
class _Kinds:
    """The click classes of a front end's group and commands."""

    group: type[PlainGroup] = PlainGroup
    command: type[PanelCommand] = FrontEndCommand


def _group(
    name: str, parser: argparse.ArgumentParser, subparsers: argparse._SubParsersAction[Any],
    run: Run, kinds: _Kinds,
) -> typer.Typer:  # fmt: skip
    """A sub-app: the parser's own options on its callback, one command per sub-parser, each
    calling ``run`` with the group's options, the sub-command's and its name in ``dest``."""
    import argparse

    group = typer.Typer(name=name, help=parser.description, cls=kinds.group,
                        epilog=_epilog(parser), rich_markup_mode=None,
                        add_completion=False)  # fmt: skip
    group.callback()(_function(parser, lambda values, ctx: 0))
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    for action_name, subparser in subparsers.choices.items():

        def act(values: dict[str, Any], ctx: Any, action_name: str = action_name) -> int:
            options = {**ctx.parent.params, subparsers.dest: action_name, **values}
            return run(argparse.Namespace(**options))

        summary = helps.get(action_name)
        group.command(action_name, cls=kinds.command, help=_described(subparser, summary),
                      short_help=summary, epilog=_epilog(subparser))(
            _function(subparser, act))  # fmt: skip
    return group


def _described(parser: argparse.ArgumentParser, fallback: str | None = None) -> str | None:
    """The parser's description (else ``fallback``), then the rule of each of its mutually
    exclusive groups, which argparse's usage line showed (``(--client-id ID | --key KEY)``)."""
    rules = [f"Give {'exactly' if group.required else 'at most'} one of "
             f"{', '.join(map(_named, group._group_actions))}."
             for group in parser._mutually_exclusive_groups]  # fmt: skip
    return "\n\n".join(t for t in (parser.description or fallback, *rules) if t) or None


def _epilog(parser: argparse.ArgumentParser) -> str | None:
    """The parser's epilog; one its formatter keeps as written (``RawDescriptionHelpFormatter``)
    is marked for click not to re-wrap it (``\\b``)."""
    import argparse

    if not parser.epilog:
        return None
    kind = parser.formatter_class
    raw = isinstance(kind, type) and issubclass(kind, argparse.RawDescriptionHelpFormatter)
    return f"\b\n{parser.epilog}" if raw else parser.epilog


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    import argparse

    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else None


def _function(
    parser: argparse.ArgumentParser, work: Callable[[dict[str, Any], Any], int]
) -> Callable[..., None]:
    """A function whose signature typer reads as ``parser``'s options and the click context,
    calling ``work`` with their values by dest, and the context, once the parser's mutually
    exclusive groups hold."""
    panels = _panels(parser)
    params = [p for a in parser._actions if (p := _parameter(a, panels.get(id(a)))) is not None]
    params.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY,
                                    annotation=typer.Context))  # fmt: skip
    exclusive = list(parser._mutually_exclusive_groups)

    def function(**values: Any) -> None:
        ctx = values.pop(_CTX)
        _check_exclusive(exclusive, values, ctx)
        code = work(values, ctx)
        if code:
            raise typer.Exit(code)

    function.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return function


def _panels(parser: argparse.ArgumentParser) -> dict[int, str]:
    """The title of each action's argument group (by ``id``), but argparse's own two."""
    own = (parser._positionals, parser._optionals)
    return {id(action): group.title for group in parser._action_groups
            if group not in own and group.title for action in group._group_actions}  # fmt: skip


def _check_exclusive(
    groups: Sequence[argparse._MutuallyExclusiveGroup], values: Mapping[str, Any], ctx: Any
) -> None:
    """argparse's rules for its mutually exclusive groups, in its words (exit 2): at most one
    option of each group given (a value that is not the default, as argparse counts), and one
    of a required group."""
    for group in groups:
        given = [a for a in group._group_actions if values.get(a.dest) is not a.default]
        if len(given) > 1:
            ctx.fail(f"argument {_named(given[1])}: not allowed with argument {_named(given[0])}")
        if group.required and not given:
            ctx.fail(f"one of the arguments {' '.join(map(_named, group._group_actions))} is "
                     "required")  # fmt: skip


def _named(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or str(action.metavar or action.dest)


def _parameter(action: argparse.Action, panel: str | None = None) -> inspect.Parameter | None:
    """One argparse action as a typer parameter: a flag (``store_true``), an option or an
    argument with a value, an option of several values (``extend`` with ``nargs="+"``, see
    :class:`FrontEndCommand`), under ``panel`` in the help; help and sub-parsers are typer's
    own. Another kind of action is a front end this module does not know how to convert:
    :class:`TypeError`, which the tests would show."""
    import argparse

    if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
        return None
    if isinstance(action, argparse._StoreTrueAction):
        info: Any = typer.Option(*action.option_strings, help=action.help,
                                 rich_help_panel=panel)  # fmt: skip
        return _keyword(action.dest, False, Annotated[bool, info])
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if metavar is None and action.choices is not None:
        metavar = "[" + "|".join(str(c) for c in action.choices) + "]"
    metavar = metavar or action.dest.upper()
    if _several(action):
        info = typer.Option(*action.option_strings, parser=_parser(action),
                            metavar=f"{metavar} [{metavar} ...]", help=action.help,
                            show_default=False, rich_help_panel=panel)  # fmt: skip
        return _keyword(action.dest, action.default, Annotated[list[Any] | None, info])
    if type(action) is not argparse._StoreAction or action.nargs is not None:
        raise TypeError(f"cannot convert the argparse action {action!r}")
    parse = _parser(action)
    if action.option_strings:
        info = typer.Option(*action.option_strings, parser=parse, metavar=metavar,
                            help=action.help, show_default=False,
                            rich_help_panel=panel)  # fmt: skip
    else:
        info = typer.Argument(parser=parse, metavar=metavar, help=action.help,
                              show_default=False)  # fmt: skip
    default = inspect.Parameter.empty if action.required else action.default
    return _keyword(action.dest, default, Annotated[Any, info])


def _several(action: argparse.Action) -> bool:
    """An option of several values: ``--state A B``, and again (``action="extend"``)."""
    import argparse

    return (isinstance(action, argparse._ExtendAction) and action.nargs == "+"
            and bool(action.option_strings))  # fmt: skip


def _keyword(name: str, default: object, annotation: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


def _parser(action: argparse.Action) -> Callable[[Any], Any]:
    """The action's ``type`` and ``choices`` as a typer parser: the value, or
    :class:`typer.BadParameter` with argparse's reason (a type's ``ArgumentTypeError`` message,
    ``invalid int value: 'x'``, the choices). A default that is not text is the value itself,
    as argparse converts only text defaults."""
    import argparse

    kind = action.type
    choices = action.choices

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed = value if kind is None else kind(value)  # type: ignore[operator]
        except argparse.ArgumentTypeError as error:
            raise typer.BadParameter(str(error)) from None
        except (TypeError, ValueError):
            what = getattr(kind, "__name__", repr(kind))
            raise typer.BadParameter(f"invalid {what} value: {value!r}") from None
        if choices is not None and parsed not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise typer.BadParameter(f"invalid choice: {value!r} (choose from {listed})")
        return parsed

    return parse


class FrontEndGroup(PlainGroup):
    """``mt5gate``'s group: its declared commands, then the front ends of
    :data:`FRONT_ENDS`, each built when it is asked for (see the module docstring)."""

    def list_commands(self, ctx: Any) -> list[str]:
        """The declared commands, then the front ends."""
        declared = list(super().list_commands(ctx))
        return declared + [name for name in FRONT_ENDS if name not in declared]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """A declared command, or a front end's, built (once) now."""
        if cmd_name in FRONT_ENDS and cmd_name not in self.commands:
            self.add_command(load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def summary_of(self, ctx: Any, name: str) -> str | None:
        """A front end's line from :data:`FRONT_ENDS` (without building it)."""
        if name in FRONT_ENDS and name not in self.commands:
            return FRONT_ENDS[name].summary
        return super().summary_of(ctx, name)
