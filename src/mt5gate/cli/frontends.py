"""``serve``, ``bot``, ``fleet``, ``bridge`` and ``demo``: typer commands built from each front
end's own option table, its argparse parser.

Each front end keeps one table of its options, its ``build_parser()``: ``python -m
mt5gate.bridge.cli`` (the bridge runs next to a Windows terminal with the core alone, without
typer), ``python -m mt5gate.service.cli`` (the container's entry point) and ``python -m
mt5gate.demo`` parse with it, and the recipes' tests read its help. :func:`command` turns that
table into a typer command (a typer sub-app of commands for a parser with sub-commands, as
``fleet``), so ``mt5gate serve --help`` is in the style of every other command, an unknown
option is refused by name (exit 2), and shell completion knows every option. The options are
written once, in the front end; the work is the front end's ``run(args)``, on the same
``argparse.Namespace`` either way.

:class:`FrontEndGroup` builds a front end's command only when it is asked for (run, its help,
completion): ``mt5gate --help`` lists them by :data:`FRONT_ENDS`' summaries without importing
the service, the bridge or the simulator (``tests/cli/test_imports.py``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from mt5gate.cli.helptext import PanelCommand, PlainGroup

if TYPE_CHECKING:  # argparse is imported when a front end's command is built, not for --help
    import argparse

    #: What ``run`` gets: the parsed options, as argparse would have made them.
    Run = Callable[[argparse.Namespace], int]

__all__ = ["FRONT_ENDS", "FrontEnd", "FrontEndGroup", "command"]


@dataclass(frozen=True)
class FrontEnd:
    """A front end: its module (with ``build_parser()`` and ``run(args)``) and the line
    ``mt5gate --help`` shows for it."""

    module: str
    summary: str


FRONT_ENDS: Final[Mapping[str, FrontEnd]] = MappingProxyType({
    "serve": FrontEnd("mt5gate.service.cli",
                      "The HTTP gateway (REST, WebSocket, health, metrics)."),
    "bot": FrontEnd("mt5gate.service.bot_cli", "The Telegram bot on the configured accounts."),
    "bridge": FrontEnd("mt5gate.bridge.cli", "Serve a terminal over TCP to a gateway elsewhere."),
    "demo": FrontEnd("mt5gate.demo", "A short tour of the simulator."),
    "fleet": FrontEnd("mt5gate.service.fleet_cli", "See and steer a fleet of serve replicas."),
})  # fmt: skip

#: The context parameter of a sub-command's function (a name no option can have: argparse
#: dests are identifiers made from option names, which never start with two underscores).
_CTX: Final = "__ctx"


def load(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """The command of front end ``name``, built from its module's parser."""
    module = importlib.import_module(FRONT_ENDS[name].module)
    return command(name, module.build_parser(), module.run)


def command(
    name: str, parser: argparse.ArgumentParser, run: Run
) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """``parser``'s options as the typer command ``name`` (a group when it has sub-commands)
    that calls ``run`` with them; ``run``'s non-zero status is the exit status."""
    import argparse

    subparsers = _subparsers(parser)
    if subparsers is None:
        built = typer.Typer(rich_markup_mode=None, add_completion=False)
        built.command(name, cls=PanelCommand, help=parser.description)(
            _function(parser, lambda values: run(argparse.Namespace(**values)))
        )  # fmt: skip
    else:
        built = _group(name, parser, subparsers, run)
    made = typer.main.get_command(built)
    made.name = name
    assert isinstance(made, typer.core.TyperCommand | typer.core.TyperGroup)
    return made


def _group(
    name: str, parser: argparse.ArgumentParser, subparsers: argparse._SubParsersAction[Any],
    run: Run,
) -> typer.Typer:  # fmt: skip
    """A sub-app: the parser's own options on its callback, one command per sub-parser, each
    calling ``run`` with the group's options, the sub-command's and its name in ``dest``."""
    import argparse

    group = typer.Typer(name=name, help=parser.description, cls=PlainGroup,
                        rich_markup_mode=None, add_completion=False)  # fmt: skip
    group.callback()(_function(parser, lambda values: 0))
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    for action_name, subparser in subparsers.choices.items():

        def act(values: dict[str, Any], action_name: str = action_name) -> int:
            ctx = values.pop(_CTX)
            options = {**ctx.parent.params, subparsers.dest: action_name, **values}
            return run(argparse.Namespace(**options))

        summary = helps.get(action_name)
        group.command(action_name, cls=PanelCommand, help=subparser.description or summary,
                      short_help=summary)(_function(subparser, act, context=True))  # fmt: skip
    return group


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    import argparse

    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else None


def _function(
    parser: argparse.ArgumentParser, work: Callable[[dict[str, Any]], int], *,
    context: bool = False,
) -> Callable[..., None]:  # fmt: skip
    """A function whose signature typer reads as ``parser``'s options (and, with ``context``,
    the click context), calling ``work`` with their values by dest."""
    params = [p for a in parser._actions if (p := _parameter(a)) is not None]
    if context:
        params.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=typer.Context))  # fmt: skip

    def function(**values: Any) -> None:
        code = work(values)
        if code:
            raise typer.Exit(code)

    function.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return function


def _parameter(action: argparse.Action) -> inspect.Parameter | None:
    """One argparse action as a typer parameter: a flag (``store_true``), an option or an
    argument with a value; help and sub-parsers are typer's own. Another kind of action is a
    front end this module does not know how to convert: :class:`TypeError`, which the tests
    would show."""
    import argparse

    if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
        return None
    if isinstance(action, argparse._StoreTrueAction):
        info: Any = typer.Option(*action.option_strings, help=action.help)
        return _keyword(action.dest, False, Annotated[bool, info])
    if type(action) is not argparse._StoreAction or action.nargs is not None:
        raise TypeError(f"cannot convert the argparse action {action!r}")
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if metavar is None and action.choices is not None:
        metavar = "[" + "|".join(str(c) for c in action.choices) + "]"
    parse = _parser(action)
    if action.option_strings:
        info = typer.Option(*action.option_strings, parser=parse,
                            metavar=metavar or action.dest.upper(),
                            help=action.help, show_default=False)  # fmt: skip
    else:
        info = typer.Argument(parser=parse, metavar=metavar or action.dest.upper(),
                              help=action.help,
                              show_default=False)  # fmt: skip
    default = inspect.Parameter.empty if action.required else action.default
    return _keyword(action.dest, default, Annotated[Any, info])


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
