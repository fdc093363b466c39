"""mt5gate's constants, records, seam and drop-in module carry exactly the official package's
surface, as recorded in ``tests/data/surface.json`` (MetaTrader5 5.0.6231)."""

from __future__ import annotations

import inspect
import re
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from mt5gate import constants, records
from mt5gate.records import RECORD_TYPES
from mt5gate.terminal import TERMINAL_FUNCTIONS, Terminal

PY_TYPES = {"int": int, "float": float, "bool": bool, "str": str}

#: Public names the drop-in module may carry beyond the official surface: only imports used by
#: its implementation that cannot be mistaken for MT5 names (no ALL_CAPS, no function names).
ALLOWED_DROPIN_EXTRAS: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def mt5() -> ModuleType:
    from mt5gate.sim import metatrader5

    return metatrader5


def _public(module: ModuleType) -> set[str]:
    return {
        n
        for n in vars(module)
        if not n.startswith("_") and not isinstance(getattr(module, n), ModuleType)
    }


def _official(surface: dict[str, Any]) -> set[str]:
    """Official public names (``__version__`` / ``__author__`` are checked on their own).

    The record types count too: the real ``_core`` adds each of the 11 to the module
    (``PyModule_AddObject``) and ``__init__.py`` re-exports them with ``from ._core import *``
    (read from the 5.0.6231 Windows wheel), so ``from MetaTrader5 import Tick`` works.
    """
    names = set(surface["functions"]) | set(surface["constants"]) | set(surface["namedtuples"])
    return names | set(surface["python_helpers"])


# ------------------------------------------------------------------ constants


def test_mt5_constants_are_exactly_the_official_ones_in_order(surface: dict[str, Any]) -> None:
    """constants.py: MT5_CONSTANTS holds every exported constant, in the module's order."""
    assert list(constants.MT5_CONSTANTS.items()) == list(surface["constants"].items())


def test_every_constant_on_the_dropin_with_real_value(
    surface: dict[str, Any], mt5: ModuleType
) -> None:
    """surface.json constants: the drop-in exports each one as a plain int with the real value."""
    wrong = {
        name: getattr(mt5, name, "<missing>")
        for name, value in surface["constants"].items()
        if getattr(mt5, name, None) != value or type(getattr(mt5, name, None)) is not int
    }
    assert wrong == {}


def test_hidden_constants(surface: dict[str, Any], mt5: ModuleType) -> None:
    """constants_not_exported_but_needed: in MT5_HIDDEN_CONSTANTS, NOT on the drop-in module."""
    hidden = {k: v for k, v in surface["constants_not_exported_but_needed"].items() if k != "note"}
    assert dict(constants.MT5_HIDDEN_CONSTANTS) == hidden
    assert [name for name in hidden if hasattr(mt5, name)] == []


def test_filling_flags_differ_from_order_filling(surface: dict[str, Any]) -> None:
    """Pitfall C2: SYMBOL_FILLING_* bit flags are not the ORDER_FILLING_* enum values."""
    assert constants.MT5_HIDDEN_CONSTANTS["SYMBOL_FILLING_FOK"] == 1
    assert constants.MT5_CONSTANTS["ORDER_FILLING_FOK"] == 0
    assert (
        surface["constants_not_exported_but_needed"]["SYMBOL_FILLING_IOC"]
        == constants.SymbolFilling.IOC
    )


# ------------------------------------------------------------------ functions


def test_terminal_functions_in_official_order(surface: dict[str, Any]) -> None:
    """terminal/base.py: TERMINAL_FUNCTIONS lists the 32 functions in the module's order."""
    assert list(TERMINAL_FUNCTIONS) == list(surface["functions"])
    assert len(TERMINAL_FUNCTIONS) == 32


def test_every_function_on_dropin_simterminal_and_protocol(
    surface: dict[str, Any], mt5: ModuleType
) -> None:
    """Every official function exists on the drop-in, on SimTerminal and on the Protocol."""
    from mt5gate.sim import SimTerminal

    for name in surface["functions"]:
        assert callable(getattr(mt5, name, None)), f"drop-in lacks {name}"
        assert callable(getattr(SimTerminal, name, None)), f"SimTerminal lacks {name}"
        assert callable(getattr(Terminal, name, None)), f"Terminal lacks {name}"


@pytest.mark.parametrize("owner", ["Terminal", "SimTerminal"])
def test_parameter_names_match_the_official_ones(surface: dict[str, Any], owner: str) -> None:
    """surface.json functions[*].params: the seam uses the real parameter names, in order."""
    from mt5gate.sim import SimTerminal

    cls = {"Terminal": Terminal, "SimTerminal": SimTerminal}[owner]
    for name, spec in surface["functions"].items():
        expected = [p[0] for p in spec["params"]]
        signature = inspect.signature(getattr(cls, name))
        actual = [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL
        ]
        assert actual == expected, name


def test_positional_only_functions_are_positional_only_on_the_protocol(
    surface: dict[str, Any],
) -> None:
    """semantics 3: METH_VARARGS functions take no keywords; the Protocol says so."""
    for name, spec in surface["functions"].items():
        if not spec["call_convention"].startswith("METH_VARARGS ("):
            continue
        params = list(inspect.signature(getattr(Terminal, name)).parameters.values())[1:]
        assert all(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in params), name


def test_selector_functions_are_keyword_only_on_the_protocol() -> None:
    """semantics 3: positions_get / orders_get take the keywords symbol, group, ticket only."""
    for name in ("positions_get", "orders_get"):
        params = list(inspect.signature(getattr(Terminal, name)).parameters.values())[1:]
        assert [p.kind for p in params] == [inspect.Parameter.KEYWORD_ONLY] * 3


# ------------------------------------------------------------------ module attributes, helpers


def test_module_attributes(surface: dict[str, Any], mt5: ModuleType) -> None:
    """surface.json module_attributes: __version__ and __author__ as the real package has them."""
    for name, value in surface["module_attributes"].items():
        assert getattr(mt5, name) == value


def _parse_signature(text: str) -> list[tuple[str, str, Any]]:
    """('name', kind, default) of a signature string such as ``Buy(a, b=None, *, c=None)``."""
    body = re.fullmatch(r"\w+\((.*)\)", text)
    assert body is not None
    out: list[tuple[str, str, Any]] = []
    keyword_only = False
    for part in (p.strip() for p in body.group(1).split(",")):
        if part == "*":
            keyword_only = True
            continue
        name, _, default = part.partition("=")
        kind = "KEYWORD_ONLY" if keyword_only else "POSITIONAL_OR_KEYWORD"
        out.append((name, kind, None if default == "None" else inspect.Parameter.empty))
    return out


@pytest.mark.parametrize("helper", ["Buy", "Sell", "Close"])
def test_helpers_exist_with_the_real_signature(
    surface: dict[str, Any], mt5: ModuleType, helper: str
) -> None:
    """surface.json python_helpers: Buy/Sell/Close with the real parameters and defaults."""
    expected = _parse_signature(surface["python_helpers"][helper]["signature"])
    params = inspect.signature(getattr(mt5, helper)).parameters.values()
    assert [(p.name, p.kind.name, p.default) for p in params] == expected


# ------------------------------------------------------------------ no extra public names


def test_dropin_has_no_public_names_beyond_the_official_surface(
    surface: dict[str, Any], mt5: ModuleType
) -> None:
    """metatrader5.py docstring: 'exactly the official module's surface'. Extras are limited
    to the implementation imports in ALLOWED_DROPIN_EXTRAS."""
    extras = _public(mt5) - _official(surface)
    assert extras - ALLOWED_DROPIN_EXTRAS == set()


def test_record_types_are_module_attributes(surface: dict[str, Any], mt5: ModuleType) -> None:
    """``from MetaTrader5 import Tick`` works on the real module (pymt5adapter relies on it)."""
    for name in surface["namedtuples"]:
        assert getattr(mt5, name) is RECORD_TYPES[name]


def test_functions_do_not_bind_as_methods(mt5: ModuleType) -> None:
    """Real functions are C builtins: stored on a class they are not bound (aiomql does this)."""

    class Holder:
        version = mt5.version

    assert Holder().version() == mt5.version()
    assert repr(mt5.version) == "<built-in function version>"


def test_every_upper_case_name_on_dropin_is_an_int_constant(
    surface: dict[str, Any], mt5: ModuleType
) -> None:
    """Code scans ``dir(mt5)`` for upper-case names to build constant tables (e.g. retcode
    names); on the real module every such name is an int constant of surface.json."""
    stray = {
        n: type(getattr(mt5, n)).__name__
        for n in _public(mt5)
        if n.isupper() and n not in surface["constants"]
    }
    assert stray == {}


def test_official_names_all_present(surface: dict[str, Any], mt5: ModuleType) -> None:
    """Nothing of the official surface is missing from the drop-in."""
    assert _official(surface) - _public(mt5) == set()


# ------------------------------------------------------------------ records


@pytest.mark.parametrize(
    "name",
    [
        "AccountInfo",
        "TerminalInfo",
        "SymbolInfo",
        "Tick",
        "TradeOrder",
        "TradePosition",
        "TradeDeal",
        "OrderSendResult",
        "OrderCheckResult",
        "BookInfo",
        "TradeRequest",
    ],
)
def test_record_fields_exactly_in_order(surface: dict[str, Any], name: str) -> None:
    """surface.json namedtuple_field_types: each record's fields, their order and types."""
    cls = getattr(records, name)
    types = surface["namedtuple_field_types"][name]
    assert list(cls.__match_args__) == list(types) == surface["namedtuples"][name]
    assert cls.n_fields == len(types)
    annotations = inspect.get_annotations(cls, eval_str=True)
    declared = {f: annotations[f] for f in types}
    expected = {f: PY_TYPES.get(t, getattr(records, t, None)) for f, t in types.items()}
    assert declared == expected


def test_record_field_counts(surface: dict[str, Any]) -> None:
    """surface.json meta: Tick 8, SymbolInfo 96, AccountInfo 28, TerminalInfo 22, ..."""
    counts = {n: len(f) for n, f in surface["namedtuples"].items()}
    assert counts["SymbolInfo"] == 96
    for name, count in counts.items():
        assert records.RECORD_TYPES[name].n_fields == count


# ------------------------------------------------------------------ numpy dtypes


def _dtype(spec: list[list[str]]) -> np.dtype[Any]:
    return np.dtype([(n, t) for n, t in spec])


def test_numpy_dtypes_of_copy_results(surface: dict[str, Any]) -> None:
    """surface.json numpy_dtypes: copy_rates_* give RATES_DTYPE, copy_ticks_* TICKS_DTYPE."""
    from mt5gate.sim import SimTerminal, VirtualClock, server_ms

    rates = _dtype(surface["numpy_dtypes"]["RATES_DTYPE"])
    ticks = _dtype(surface["numpy_dtypes"]["TICKS_DTYPE"])
    now = server_ms(2026, 1, 6, 10)
    term = SimTerminal(clock=VirtualClock(now))
    assert term.initialize()
    start, end = now // 1000 - 3600, now // 1000
    results = {
        "copy_rates_from": (term.copy_rates_from("EURUSD", 16385, end, 10), rates),
        "copy_rates_from_pos": (term.copy_rates_from_pos("EURUSD", 1, 0, 10), rates),
        "copy_rates_range": (term.copy_rates_range("EURUSD", 1, start, end), rates),
        "copy_ticks_from": (term.copy_ticks_from("EURUSD", start, 10, -1), ticks),
        "copy_ticks_range": (term.copy_ticks_range("EURUSD", start, end, -1), ticks),
    }
    for name, (array, dtype) in results.items():
        assert array is not None, (name, term.last_error())
        assert len(array) > 0, name
        assert array.dtype == dtype, name
        assert array.dtype.itemsize == 60, name  # packed MqlRates / MqlTick
