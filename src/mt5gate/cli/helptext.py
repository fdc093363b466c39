"""``mt5gate``'s help as plain text: typer's plain formatter, with each command's summary in
full and the options under their panels (Account, Output), and no rich.

typer formats help with rich when rich is installed, and importing rich and markdown-it for it
cost more than the rest of ``mt5gate --help`` (issue 18). Its plain formatter (click's) cuts
each command's summary at the first full stop or about 60 characters, and lists every option
in one list; :class:`PlainGroup` and :class:`PanelCommand` keep what the rich help showed: the
first paragraph of each command's help, wrapped, and the options grouped by ``rich_help_panel``
(the panel names stay in the declarations, so the text is the same either way).

:class:`PanelCommand` also reads a negative number (``mt5gate order buy EURUSD -1``) as the
value it is, so the argument's own check can say what is wrong with it ("must be > 0"), where
click would call it an unknown option ("No such option: -1").
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Final

from typer.core import TyperCommand, TyperGroup

__all__ = ["NEGATIVE", "PanelCommand", "PlainGroup", "summary"]

#: Where click puts options without a panel, and the heading of the positional arguments.
_OPTIONS = "Options"
_ARGUMENTS = "Arguments"
#: A negative number on the command line: a value, never an option's name.
NEGATIVE: Final = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def summary(help_text: str | None) -> str:
    """The first paragraph of ``help_text`` on one line (what the command list shows): the
    part before a form feed, as click cuts it, without its line breaks."""
    text = inspect.cleandoc(help_text or "").partition("\f")[0]
    return " ".join(text.split("\n\n", 1)[0].split())


class PlainGroup(TyperGroup):
    """A group whose command list shows each command's first paragraph in full (wrapped)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """``Commands`` with one entry per visible command, in declaration order."""
        rows = []
        for name in self.list_commands(ctx):
            line = self.summary_of(ctx, name)
            if line is not None:
                rows.append((name, line))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def summary_of(self, ctx: Any, name: str) -> str | None:
        """The line ``name`` has in the command list (``None``: not listed, as a hidden
        command)."""
        command = self.get_command(ctx, name)
        if command is None or command.hidden:
            return None
        return str(command.short_help or summary(command.help))


class PanelCommand(TyperCommand):
    """A command whose options are listed under their ``rich_help_panel`` headings, and which
    reads negative numbers as values (see the module docstring)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse ``args``; with a negative number among them, click leaves the dash-led words
        it does not know as arguments instead of refusing them as unknown options."""
        if any(NEGATIVE.fullmatch(arg) for arg in args):
            ctx.ignore_unknown_options = True
        return list(super().parse_args(ctx, args))

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """``Arguments``, then ``Options`` (no panel), then each panel in order of use."""
        sections: dict[str, list[tuple[str, str]]] = {_ARGUMENTS: [], _OPTIONS: []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                sections[_ARGUMENTS].append(record)
            else:
                panel = getattr(param, "rich_help_panel", None) or _OPTIONS
                sections.setdefault(panel, []).append(record)
        for heading, rows in sections.items():
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)
