"""Fault plan files: a simulator's faults written as TOML, for chaos tests without Python.

``mt5gate bridge --terminal sim --faults chaos.toml`` reads one of these. The file only
describes rules; they run on the simulator's own :class:`~mt5gate.sim.faults.FaultPlan`
(each entry becomes one :class:`~mt5gate.sim.faults.Fault`), and late history is the broker's
``BrokerOptions.history_delay_ms``::

    seed = 7                      # seeds the probability draws (default 0)

    [history]
    delay_ms = 3000               # deals and orders reach history 3 s after they happen

    [[fault]]
    kind = "reply_lost"           # the order executes, its reply is lost (None, -10002)
    functions = ["order_send"]
    probability = 0.05            # 5 % of the calls ...
    times = 3                     # ... at most 3 times

    [[fault]]
    kind = "hang"
    when = "after"                # executes, then hangs 20 s and the reply is lost (-10005)
    seconds = 20
    functions = ["order_send"]
    times = 1

    [[fault]]
    kind = "disconnect"           # the trade-server link drops ...
    restore_after = 5             # ... and is back 5 s later (omit: stays down)
    functions = ["order_send"]
    probability = 0.02

Every ``[[fault]]`` has ``kind``, ``functions`` (terminal function names, or ``["*"]`` for all)
and at least one of ``probability`` (0..1: the chance per matching call; omitted: 1) and
``times`` (how often it fires; omitted: every time its probability lets it); ``after`` lets
that many matching calls through first. The kinds and their own keys:

=================  ==============================================  ========================
kind               what happens                                    own keys (default)
=================  ==============================================  ========================
reply_lost         the call executes, its reply is lost            code (-10002)
hang               the call blocks ``seconds``, then fails;        when ("before"),
                   ``when = "after"``: it executes first and its   seconds (30), code
                   reply is lost                                   (-10005)
ipc_error          the call fails before reaching the terminal     code (-10001)
disconnect         the trade-server link drops, then the call runs restore_after (none)
latency            the call runs ``seconds`` late                  seconds (required)
autotrading_off    Algo Trading is switched off, then the call     (none)
                   runs
restart            the terminal restarts: -10004 until             (none)
                   ``initialize()``
=================  ==============================================  ========================

``code`` is an IPC error code, -10000 to -10005. Validation is strict: an unknown key, kind or
function, a wrong type or a value out of range is a :class:`PlanError` whose one-line message
names the entry and the key, so a typo never silently disables a fault.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mt5gate.sim.faults import Fault, FaultKind, FaultPlan
from mt5gate.terminal.base import TERMINAL_FUNCTIONS

__all__ = ["ALL_FUNCTIONS", "FAULT_FUNCTIONS", "ChaosPlan", "PlanError", "load_plan", "parse_plan"]

#: What ``functions = ["*"]`` stands for.
ALL_FUNCTIONS: Final = "*"
#: The functions a fault may name: ``last_error`` and ``shutdown`` never reach a bridged
#: terminal (the client answers them itself), so a fault on them could never fire.
FAULT_FUNCTIONS: Final = frozenset(TERMINAL_FUNCTIONS) - {"last_error", "shutdown"}

_IPC_CODES: Final = range(-10005, -9999)
_TOP_KEYS: Final = ("seed", "history", "fault")
_HISTORY_KEYS: Final = ("delay_ms",)
_COMMON_KEYS: Final = ("kind", "functions", "probability", "times", "after")
#: The keys each kind takes beyond the common ones.
_KIND_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "reply_lost": ("code",),
    "hang": ("when", "seconds", "code"),
    "ipc_error": ("code",),
    "disconnect": ("restore_after",),
    "latency": ("seconds",),
    "autotrading_off": (),
    "restart": (),
}


class PlanError(ValueError):
    """A fault plan file that cannot be used; the message is one line naming entry and key."""


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """A parsed fault plan: the rules, their seed, and the broker's history delay."""

    faults: tuple[Fault, ...] = ()
    seed: int = 0
    history_delay_ms: int = 0

    def fault_plan(self) -> FaultPlan:
        """A fresh FaultPlan holding these rules, in file order."""
        plan = FaultPlan(seed=self.seed)
        for fault in self.faults:
            plan.add(fault)
        return plan


def load_plan(path: Path) -> ChaosPlan:
    """Read and validate a fault plan file; PlanError (one line) when it cannot be used."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PlanError(f"{path}: cannot read it: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PlanError(f"{path}: not valid TOML: {error}") from None
    try:
        return parse_plan(data)
    except PlanError as error:
        raise PlanError(f"{path}: {error}") from None


def parse_plan(data: Mapping[str, Any]) -> ChaosPlan:
    """Validate the parsed TOML of a fault plan (see the module docstring)."""
    _only(data, _TOP_KEYS, "the plan")
    seed = _integer(data.get("seed", 0), "the plan", "seed", low=None)
    history = data.get("history", {})
    if not isinstance(history, dict):
        raise PlanError("[history] must be a table")
    _only(history, _HISTORY_KEYS, "[history]")
    delay = _integer(history.get("delay_ms", 0), "[history]", "delay_ms", low=0)
    entries = data.get("fault", [])
    if not isinstance(entries, list):
        raise PlanError("fault must be an array of tables: write [[fault]]")
    faults = tuple(_fault(entry, f"fault {n}") for n, entry in enumerate(entries, 1))
    return ChaosPlan(faults, seed, delay)


def _fault(entry: object, where: str) -> Fault:
    """One ``[[fault]]`` table as a Fault."""
    if not isinstance(entry, dict):
        raise PlanError(f"{where}: must be a table")
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in _KIND_KEYS:
        known = ", ".join(_KIND_KEYS)
        raise PlanError(f"{where}: kind: {kind!r} is not a fault kind (one of {known})")
    where = f"{where} ({kind})"
    _only(entry, _COMMON_KEYS + _KIND_KEYS[kind], where)
    if "probability" not in entry and "times" not in entry:
        raise PlanError(f"{where}: give probability, times or both")
    common: dict[str, Any] = {
        "functions": _functions(entry.get("functions"), where),
        "probability": _probability(entry.get("probability", 1.0), where),
        "times": None if "times" not in entry else _integer(entry["times"], where, "times", low=1),
        "after": _integer(entry.get("after", 0), where, "after", low=0),
    }
    return _BUILDERS[kind](entry, where, common)


def _reply_lost(entry: Mapping[str, Any], where: str, common: dict[str, Any]) -> Fault:
    code = _code(entry.get("code", -10002), where)
    return Fault(FaultKind.REPLY_LOST, code=code, **common)


def _hang(entry: Mapping[str, Any], where: str, common: dict[str, Any]) -> Fault:
    when = entry.get("when", "before")
    if when not in ("before", "after"):
        raise PlanError(f'{where}: when: must be "before" or "after", got {when!r}')
    seconds = _seconds(entry.get("seconds", 30.0), where, "seconds")
    code = _code(entry.get("code", -10005), where)
    if when == "after":  # executes, then the reply is lost behind a hang
        return Fault(FaultKind.REPLY_LOST, code=code, delay_s=seconds, hang=True, **common)
    return Fault(FaultKind.HANG, code=code, delay_s=seconds, **common)


def _ipc_error(entry: Mapping[str, Any], where: str, common: dict[str, Any]) -> Fault:
    return Fault(FaultKind.IPC_ERROR, code=_code(entry.get("code", -10001), where), **common)


def _disconnect(entry: Mapping[str, Any], where: str, common: dict[str, Any]) -> Fault:
    back = entry.get("restore_after")
    downtime = 0.0 if back is None else _seconds(back, where, "restore_after")
    return Fault(FaultKind.DISCONNECT, delay_s=downtime, **common)


def _latency(entry: Mapping[str, Any], where: str, common: dict[str, Any]) -> Fault:
    if "seconds" not in entry:
        raise PlanError(f"{where}: seconds: required")
    return Fault(FaultKind.LATENCY, delay_s=_seconds(entry["seconds"], where, "seconds"), **common)


def _switch(kind: FaultKind) -> Callable[[Mapping[str, Any], str, dict[str, Any]], Fault]:
    def build(entry: Mapping[str, Any], where: str, common: dict[str, Any]) -> Fault:
        return Fault(kind, **common)

    return build


_BUILDERS: Final[Mapping[str, Callable[[Mapping[str, Any], str, dict[str, Any]], Fault]]] = {
    "reply_lost": _reply_lost,
    "hang": _hang,
    "ipc_error": _ipc_error,
    "disconnect": _disconnect,
    "latency": _latency,
    "autotrading_off": _switch(FaultKind.AUTOTRADING_OFF),
    "restart": _switch(FaultKind.RESTART),
}


# ------------------------------------------------------------------------------ values


def _only(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise PlanError(f"{where}: unknown key {key!r} (expected {', '.join(allowed)})")


def _functions(value: object, where: str) -> frozenset[str] | None:
    if value is None:
        raise PlanError(f'{where}: functions: required (a list of function names, or ["*"])')
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PlanError(f"{where}: functions: must be a non-empty list of function names")
    if value == [ALL_FUNCTIONS]:
        return None
    for name in value:
        if name not in FAULT_FUNCTIONS:
            raise PlanError(f"{where}: functions: {name!r} is not a terminal function a fault "
                            "can hit (see mt5gate.terminal.TERMINAL_FUNCTIONS)")  # fmt: skip
    return frozenset(value)


def _number(value: object, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanError(f"{where}: {key}: must be a number, got {value!r}")
    return float(value)


def _probability(value: object, where: str) -> float:
    probability = _number(value, where, "probability")
    if not 0.0 <= probability <= 1.0:
        raise PlanError(f"{where}: probability: must be within 0..1, got {value!r}")
    return probability


def _seconds(value: object, where: str, key: str) -> float:
    seconds = _number(value, where, key)
    if not 0.0 < seconds <= 86_400.0:
        raise PlanError(f"{where}: {key}: must be seconds above 0 (at most a day), got {value!r}")
    return seconds


def _integer(value: object, where: str, key: str, *, low: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(f"{where}: {key}: must be an integer, got {value!r}")
    if low is not None and value < low:
        raise PlanError(f"{where}: {key}: must be at least {low}, got {value}")
    return value


def _code(value: object, where: str) -> int:
    code = _integer(value, where, "code", low=None)
    if code not in _IPC_CODES:
        raise PlanError(f"{where}: code: must be an IPC error code, -10005 to -10000, got {code}")
    return code
