"""An unknown symbol, told apart from any other failure of a call that names one.

The terminal says "unknown symbol" differently per function: ``symbol_info`` answers
``(-4, 'Terminal: Not found')``, ``copy_*`` and ``symbol_select`` ``(-1, 'Terminal: Call
failed')``, which also means "not selected" or "no such history" (semantics §2.5, §5). So when a
call naming a symbol fails with either, the session asks ``symbol_info`` (which works for every
existing symbol, selected or not): only its -4 proves the name unknown, and then every call
raises the same :class:`~mt5gate.errors.MT5NotFoundError` (code -4) naming the symbol, with
"did you mean" suggestions from the terminal's own symbol names.

The names are read once (``symbols_get``) and kept for :data:`NAMES_TTL_S`: a client that keeps
asking for a wrong name costs one ``symbol_info`` per call, not a listing of every symbol.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from mt5gate.constants import ResultCode
from mt5gate.errors import MT5DataError, MT5Error, MT5NotFoundError

__all__ = ["NAMES_TTL_S", "SymbolNames", "similar_names"]

#: How long the terminal's symbol names are kept for suggestions (a broker adds symbols rarely).
NAMES_TTL_S: Final = 300.0
#: At most this many suggestions; how alike a name must be to be one (difflib's ratio), and
#: how much less alike than the likest one it may be.
_MOST: Final = 3
_CUTOFF: Final = 0.75
_MARGIN: Final = 0.05
#: The codes with which a call naming an unknown symbol fails (semantics §2.5).
_MAYBE_UNKNOWN: Final = frozenset({int(ResultCode.E_FAIL), int(ResultCode.E_NOT_FOUND)})

Read = Callable[..., Awaitable[Any]]


def similar_names(name: str, names: Iterable[str]) -> tuple[str, ...]:
    """The names most like ``name``: the same name in another case or with another broker
    suffix (``EURUSD`` for ``eurusd`` or ``EURUSD.m``, ``EURUSD.m`` for ``EURUSD``) when there
    are such, else close spellings (``EURUSD`` for ``EURSUD``); at most three."""
    known = sorted(set(names) - {name})
    wanted = name.strip().upper()
    stem = _stem(wanted)
    same = [n for n in known if n.upper() == wanted or _stem(n.upper()) == stem]
    if same:
        return tuple(same[:_MOST])
    scored = sorted(((_likeness(wanted, n.upper()), n) for n in known), reverse=True)
    best = scored[0][0] if scored else 0.0
    close = [n for score, n in scored if score >= max(_CUTOFF, best - _MARGIN)]
    return tuple(close[:_MOST])


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _stem(name: str) -> str:
    """A name without a broker's suffix: ``EURUSD`` of ``EURUSD.M``, ``EURUSD_I``, ``EURUSD#``."""
    for mark in ".#_-":
        name = name.split(mark, 1)[0]
    return name


class SymbolNames:
    """Tells an unknown symbol from other failures (see the module docstring); ``read`` is the
    session's read path, ``monotonic`` its clock."""

    def __init__(self, read: Read, monotonic: Callable[[], float]) -> None:
        self._read = read
        self._monotonic = monotonic
        self._names: tuple[str, ...] = ()
        self._read_at: float | None = None

    async def explain(self, symbol: str, error: MT5Error, *, asked_info: bool = False) -> MT5Error:
        """``error`` of a call naming ``symbol``, or :class:`MT5NotFoundError` when the symbol
        does not exist (``asked_info``: ``error`` is already ``symbol_info``'s own answer)."""
        if isinstance(error, MT5NotFoundError) or not _maybe_unknown(error):
            return error
        if not asked_info and not await self._unknown(symbol):
            return error  # it exists (or cannot be told): the failure was something else
        return MT5NotFoundError("symbol", symbol, suggestions=await self._suggest(symbol))

    async def _unknown(self, symbol: str) -> bool:
        """Whether ``symbol_info`` says the terminal has no such symbol (-4)."""
        try:
            await self._read("symbol_info", symbol, shared=True)
        except MT5DataError as checked:
            return checked.code == ResultCode.E_NOT_FOUND
        except MT5Error:
            return False
        return False

    async def _suggest(self, symbol: str) -> tuple[str, ...]:
        try:
            names = await self._known()
        except MT5Error:  # a suggestion is a courtesy: the error stands without one
            return ()
        return similar_names(symbol, names)

    async def _known(self) -> Sequence[str]:
        now = self._monotonic()
        if self._read_at is None or now - self._read_at >= NAMES_TTL_S:
            records = await self._read("symbols_get", shared=True)
            self._names = tuple(str(r.name) for r in records or ())
            self._read_at = now
        return self._names


def _maybe_unknown(error: MT5Error) -> bool:
    return isinstance(error, MT5DataError) and error.code in _MAYBE_UNKNOWN
