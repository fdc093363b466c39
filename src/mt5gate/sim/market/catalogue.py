"""The simulated broker's instruments, read from ``mt5gate/sim/data/catalogue.toml``.

The catalogue is data: about 60 symbols in MetaQuotes-Demo-like Market Watch folders (forex
majors, crosses and exotics, metals, energies, index CFDs, stock CFDs, exchange stocks, crypto),
each group with its sessions, contract, calc mode, volumes, filling, expiration and swap
settings. The file says where its values come from (its ``[sources]`` table) and which are
estimates. This module only turns the file into :class:`SymbolSpec` objects and refuses
anything it does not understand, so a typo in the data fails loudly instead of silently
falling back to a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from enum import Enum, IntFlag
from functools import cache
from importlib import resources
from typing import Any

from mt5gate.constants import (
    SymbolCalcMode,
    SymbolChartMode,
    SymbolExpiration,
    SymbolFilling,
    SymbolOrderMode,
    SymbolSwapMode,
    SymbolTradeExecution,
    SymbolTradeMode,
)
from mt5gate.sim.symbols import SessionWindow, SymbolSpec

__all__ = ["catalogue_sources", "default_catalogue", "parse_catalogue", "parse_schedule"]

_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_WINDOW = re.compile(r"^(\w{3})(?:-(\w{3}))? (\d\d):(\d\d)-(\d\d):(\d\d)$")

#: Spec fields written by enumeration member name in the file.
_ENUMS: Mapping[str, type[Enum]] = {
    "trade_calc_mode": SymbolCalcMode,
    "trade_mode": SymbolTradeMode,
    "trade_exemode": SymbolTradeExecution,
    "swap_mode": SymbolSwapMode,
    "chart_mode": SymbolChartMode,
}
#: Spec fields written as a list of flag names, or "ALL".
_FLAGS: Mapping[str, type[IntFlag]] = {
    "filling_mode": SymbolFilling,
    "expiration_mode": SymbolExpiration,
    "order_mode": SymbolOrderMode,
}
#: Keys of the file that are not spec fields.
_META = frozenset({"group", "sessions", "currencies"})
_SPEC_FIELDS = frozenset(f.name for f in fields(SymbolSpec))


def parse_schedule(entries: list[str]) -> tuple[SessionWindow, ...]:
    """``["Mon-Fri 01:05-23:55", ...]`` as session windows sorted by day and start.

    A day range runs forwards (``Sun-Sat`` is the whole week); ``24:00`` is midnight.
    """
    windows = []
    for entry in entries:
        match = _WINDOW.match(entry)
        if match is None:
            raise ValueError(f"session {entry!r} is not like 'Mon-Fri 01:05-23:55'")
        first, last, h1, m1, h2, m2 = match.groups()
        days = range(_day(first), _day(last or first) + 1)
        if not days:
            raise ValueError(f"session {entry!r}: the day range runs backwards")
        start, end = int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)
        windows += [SessionWindow(day, start, end) for day in days]
    return tuple(sorted(windows, key=lambda w: (w.day, w.start_min)))


def _day(name: str) -> int:
    """MT5's day number (Sunday 0) of a three-letter English day name."""
    if name not in _DAYS:
        raise ValueError(f"unknown day {name!r}; use one of {', '.join(_DAYS)}")
    return _DAYS.index(name)


def _flags(name: str, value: object) -> int:
    """A flag set from ``"ALL"`` or a list of member names."""
    kind = _FLAGS[name]
    if value == "ALL":
        return sum(int(m) for m in kind)
    if not isinstance(value, list):
        raise ValueError(f"{name} must be 'ALL' or a list of {kind.__name__} names")
    return sum(int(kind[str(member)]) for member in set(value))


def _field(name: str, value: Any) -> Any:
    """One file value as the spec field ``name`` holds it (enumerations by name)."""
    if name in _ENUMS:
        return _ENUMS[name][value]
    if name in _FLAGS:
        return _flags(name, value)
    return value


def _symbol(
    name: str,
    entry: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]],
    sessions: Mapping[str, list[str]],
) -> SymbolSpec:
    """The spec of symbol ``name``: its group's defaults, overridden by its own entry."""
    group = groups.get(entry.get("group", ""))
    if group is None:
        raise ValueError(f"symbol {name}: unknown group {entry.get('group')!r}")
    merged = {**group, **entry}
    unknown = set(merged) - _SPEC_FIELDS - _META - {"path"}
    if unknown:
        raise ValueError(f"symbol {name}: unknown keys {sorted(unknown)}")
    spec: dict[str, Any] = {k: _field(k, v) for k, v in merged.items() if k in _SPEC_FIELDS}
    spec["name"] = name
    spec["path"] = f"{group['path']}\\{name}"
    spec["sessions"] = parse_schedule(sessions[merged["sessions"]])
    if merged.get("currencies") == "pair":
        spec.update(currency_base=name[:3], currency_profit=name[3:], currency_margin=name[:3])
    return SymbolSpec(**spec)


def parse_catalogue(data: Mapping[str, Any]) -> tuple[SymbolSpec, ...]:
    """The symbols of a parsed catalogue file, in its order (Market Watch order)."""
    groups, sessions = data["groups"], data["sessions"]
    return tuple(_symbol(n, e, groups, sessions) for n, e in data["symbols"].items())


@cache
def _load() -> dict[str, Any]:
    """The packaged catalogue file, parsed once per process."""
    text = resources.files("mt5gate.sim").joinpath("data/catalogue.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def default_catalogue() -> tuple[SymbolSpec, ...]:
    """The simulated broker's symbols, in Market Watch order (specs are immutable, so the
    tuple is built once and shared)."""
    return parse_catalogue(_load())


def catalogue_sources() -> dict[str, str]:
    """Where the catalogue's values come from, by class of value (the file's ``[sources]``)."""
    return dict(_load()["sources"])
