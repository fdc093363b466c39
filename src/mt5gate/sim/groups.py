"""MT5's ``group`` filter: ``"*,!*USD*,!*EUR*"`` (semantics §5.1).

Conditions are read left to right from an empty set; a plain mask adds the names it matches, a
``!mask`` removes them. ``*`` matches any run of characters anywhere in a mask; a mask without
``*`` must match the whole name. Spaces around conditions are trimmed; matching is
case-sensitive (both UNSURE in the real terminal, see ``GroupFilter`` options).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["matches_group", "select_group"]


@lru_cache(maxsize=256)
def _compile(group: str, case_sensitive: bool) -> tuple[tuple[bool, re.Pattern[str]], ...]:
    rules = []
    for raw in group.split(","):
        cond = raw.strip()
        if not cond:
            continue
        exclude = cond.startswith("!")
        mask = cond[1:].strip() if exclude else cond
        pattern = ".*".join(re.escape(part) for part in mask.split("*"))
        flags = 0 if case_sensitive else re.IGNORECASE
        rules.append((exclude, re.compile(f"^{pattern}$", flags | re.DOTALL)))
    return tuple(rules)


def matches_group(name: str, group: str, *, case_sensitive: bool = True) -> bool:
    """Whether ``name`` survives the filter ``group``."""
    selected = False
    for exclude, pattern in _compile(group, case_sensitive):
        if pattern.match(name):
            selected = not exclude
    return selected


def select_group(names: Iterable[str], group: str, *, case_sensitive: bool = True) -> list[str]:
    """The names that survive ``group``, in their original order."""
    return [n for n in names if matches_group(n, group, case_sensitive=case_sensitive)]
