"""Pre-trade risk limits: refuse a new order before anything reaches the terminal.

:class:`RiskLimits` is the policy as data (``None`` = no limit); :class:`RiskGate` holds the
limits in force for one session, the trading halt switch and the order-rate window;
:class:`SymbolBook` is what is open on one symbol when an order is checked. A breach raises
:class:`~mt5gate.errors.MT5RiskLimitError` (:class:`~mt5gate.errors.MT5TradingHalted` for the
halt switch) naming the limit, the value the order would have reached and the bound; nothing
is sent.

The pipeline uses the gate in three steps for every NEW order, market or pending::

    if gate.needs_book():                       # only the per-symbol limits need the book
        book = SymbolBook.of(symbol, positions, orders)
    gate.check(symbol, volume, book)            # raises on the first breach; counts nothing
    gate.admit()                                # right before order_send: counts the order

Risk limits gate only new orders. Closing a position, cancelling a pending order or modifying
SL/TP never goes through the gate, so a user can always get flat, even while halted or over a
limit: the limits stop risk from growing, never from shrinking.

Checks run in a fixed order and stop at the first breach: halt switch, symbol allow-list,
volume per order, orders per minute, positions per symbol, exposure per symbol. Volumes
compare with a tolerance of :data:`VOLUME_TOLERANCE` lots (0.1 + 0.2 lots is not refused at
a 0.3 limit), and every comparison is written so that a NaN volume is refused, not passed.

``check`` and ``admit`` are separate so an order refused later in the pipeline (validation,
idempotency) does not use up a rate slot. Two orders checked concurrently may both pass
before either is admitted; the pipeline serialises new orders if the rate limit must be exact.
Time comes from an injected monotonic clock, so tests slide the window without sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

from mt5gate.errors import MT5RiskLimitError, MT5TradingHalted
from mt5gate.models import Order, Position

__all__ = [
    "RATE_WINDOW_S",
    "VOLUME_TOLERANCE",
    "RiskGate",
    "RiskLimits",
    "SymbolBook",
]

#: Lots by which a volume may exceed a bound and still pass (float sums: 0.1 + 0.2 > 0.3).
VOLUME_TOLERANCE: Final = 1e-9
#: The sliding window of ``max_orders_per_minute``, in seconds.
RATE_WINDOW_S: Final = 60.0
#: How many allowed symbols a refusal message lists before it says "and N more".
_LISTED_SYMBOLS: Final = 10
_NOTHING_SENT: Final = "nothing was sent"


# ---------------------------------------------------------------------------------------------
# Policy


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Policy as data; None = no limit.

    Invalid values raise ``ValueError`` naming the field and the rule it breaks. Volumes are
    stored as ``float``; ``allowed_symbols`` accepts any iterable of symbol names (not a bare
    string) and is stored as a ``frozenset``. An empty allow-list refuses every new order.
    """

    max_volume_per_order: float | None = None  # lots, per new order
    max_positions_per_symbol: int | None = None  # positions + pending orders, counting the new one
    max_exposure_per_symbol: float | None = None  # gross lots: positions + pending + the new order
    max_orders_per_minute: int | None = None  # new orders admitted in any sliding 60 s window
    allowed_symbols: frozenset[str] | None = None  # None = every symbol
    halted: bool = False  # start with the halt switch on

    def __post_init__(self) -> None:
        for name in ("max_volume_per_order", "max_exposure_per_symbol"):
            _set(self, name, _lots(name, getattr(self, name)))
        for name in ("max_positions_per_symbol", "max_orders_per_minute"):
            _count(name, getattr(self, name))
        _set(self, "allowed_symbols", _symbols(self.allowed_symbols))
        if not isinstance(self.halted, bool):
            _invalid("halted", "must be a bool", self.halted)


def _invalid(field: str, rule: str, value: object) -> NoReturn:
    raise ValueError(f"RiskLimits.{field} {rule}, got {value!r}")


def _set(limits: RiskLimits, field: str, value: object) -> None:
    object.__setattr__(limits, field, value)  # frozen: normalise in __post_init__ only


def _finite(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _lots(field: str, value: object) -> float | None:
    """``None``, or a finite number of lots > 0 as a float."""
    if value is None:
        return None
    lots = _finite(value)
    if lots is None or lots <= 0:
        _invalid(field, "must be a finite number > 0", value)
    return lots


def _count(field: str, value: object) -> None:
    """``None``, or an int >= 1 (a bool is not a count)."""
    if value is not None and not (
        isinstance(value, int) and not isinstance(value, bool) and value >= 1
    ):
        _invalid(field, "must be an int >= 1", value)


def _symbols(value: object) -> frozenset[str] | None:
    """``None``, or the symbol names as a frozenset; a bare string would be split into letters."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        _invalid("allowed_symbols", "must be an iterable of symbol names, not a string", value)
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip():
            _invalid("allowed_symbols", "must hold non-empty names without spaces around", name)
    return frozenset(names)


# ---------------------------------------------------------------------------------------------
# What is open on a symbol


@dataclass(frozen=True, slots=True)
class SymbolBook:
    """What is open on one symbol now.

    ``positions`` open positions, ``pending`` pending orders, ``gross_volume`` the sum of
    their volumes in lots regardless of direction (a hedge adds exposure to the book; it is
    not netted). Counts must be ints >= 0 and the volume a finite number >= 0.
    """

    positions: int = 0
    pending: int = 0
    gross_volume: float = 0.0

    def __post_init__(self) -> None:
        for name in ("positions", "pending"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"SymbolBook.{name} must be an int >= 0, got {value!r}")
        volume = _finite(self.gross_volume)
        if volume is None or volume < 0:
            raise ValueError(
                f"SymbolBook.gross_volume must be a finite number >= 0, got {self.gross_volume!r}"
            )

    @classmethod
    def of(cls, symbol: str, positions: Iterable[Position], orders: Iterable[Order]) -> SymbolBook:
        """The book of ``symbol`` from the account's open positions and active orders.

        Only those whose ``symbol`` is exactly ``symbol`` count; an order's remaining volume
        (``volume_current``) is what it can still add.
        """
        held = [abs(p.volume) for p in positions if p.symbol == symbol]
        pending = [abs(o.volume_current) for o in orders if o.symbol == symbol]
        return cls(len(held), len(pending), math.fsum(held) + math.fsum(pending))


# ---------------------------------------------------------------------------------------------
# The gate


class RiskGate:
    """The limits in force for one session, plus the halt switch and the order-rate window.

    ``limits.halted`` only sets the switch's initial position; :meth:`halt` and :meth:`resume`
    move it afterwards. Admission times are kept in a deque bounded by
    ``max_orders_per_minute`` (nothing is kept without that limit). A lock makes each call
    atomic, so threads and asyncio tasks may share one gate.
    """

    __slots__ = ("_admitted", "_clock", "_halt_reason", "_halted", "_limits", "_lock")

    def __init__(
        self, limits: RiskLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = limits if limits is not None else RiskLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._halted = self._limits.halted
        self._halt_reason = "RiskLimits.halted is set" if self._halted else ""
        rate = self._limits.max_orders_per_minute
        self._admitted: deque[float] = deque(maxlen=rate if rate is not None else 0)

    # -- the switch ------------------------------------------------------------------------

    @property
    def limits(self) -> RiskLimits:
        """The limits this gate enforces (as given: ``halted`` is only the starting point)."""
        return self._limits

    @property
    def halted(self) -> bool:
        """Whether the halt switch is on: every new order is refused."""
        return self._halted

    @property
    def halt_reason(self) -> str:
        """Why trading was halted, as given to :meth:`halt`; ``""`` when not halted."""
        return self._halt_reason

    def halt(self, reason: str = "") -> None:
        """Turn the halt switch on: refuse every new order until :meth:`resume`.

        Halting again replaces the reason. Closing and cancelling are unaffected.
        """
        with self._lock:
            self._halted, self._halt_reason = True, reason

    def resume(self) -> None:
        """Turn the halt switch off. The other limits and the rate window are unchanged."""
        with self._lock:
            self._halted, self._halt_reason = False, ""

    def needs_book(self) -> bool:
        """Whether :meth:`check` needs a :class:`SymbolBook` (a per-symbol limit is set)."""
        limits = self._limits
        return limits.max_positions_per_symbol is not None or (
            limits.max_exposure_per_symbol is not None
        )

    # -- checking and counting -------------------------------------------------------------

    def check(self, symbol: str, volume: float, book: SymbolBook | None = None) -> None:
        """Refuse a new order of ``volume`` lots on ``symbol`` that would breach a limit.

        Raises :class:`MT5TradingHalted` or :class:`MT5RiskLimitError` for the first breach
        (in the module's order); returns ``None`` when the order may go. Counts nothing:
        call :meth:`admit` right before sending. ``book`` is required when
        :meth:`needs_book`; leaving it out then is the caller's bug (``ValueError``).
        """
        if book is None and self.needs_book():
            raise ValueError(
                "RiskGate.check needs a SymbolBook when max_positions_per_symbol or "
                "max_exposure_per_symbol is set (see needs_book())"
            )
        with self._lock:
            self._check_halt()
            self._check_symbol(symbol)
            self._check_volume(abs(volume))
            self._check_rate()
        if book is not None:
            self._check_positions(symbol, book)
            self._check_exposure(symbol, abs(volume), book)

    def admit(self) -> None:
        """Count one order toward ``max_orders_per_minute``; call it right before sending.

        Old admissions are pruned here and in :meth:`check`; the deque never holds more than
        the limit, so memory is bounded however many orders go through.
        """
        if self._limits.max_orders_per_minute is None:
            return
        with self._lock:
            now = self._clock()
            self._prune(now)
            self._admitted.append(now)

    def __repr__(self) -> str:
        return f"<RiskGate halted={self._halted} limits={self._limits!r}>"

    # -- the checks, in order (lock held for the first four) -------------------------------

    def _check_halt(self) -> None:
        if self._halted:
            why = f" ({self._halt_reason})" if self._halt_reason else ""
            raise MT5TradingHalted(f"trading is halted{why}; {_NOTHING_SENT}", limit="halted")

    def _check_symbol(self, symbol: str) -> None:
        allowed = self._limits.allowed_symbols
        if allowed is not None and symbol not in allowed:
            raise MT5RiskLimitError(
                f"symbol {symbol!r} is not in allowed_symbols ({_list_symbols(allowed)}); "
                f"{_NOTHING_SENT}",
                limit="allowed_symbols",
                value=symbol,
                allowed=allowed,
            )

    def _check_volume(self, volume: float) -> None:
        bound = self._limits.max_volume_per_order
        if bound is not None and not _within(volume, bound):
            raise MT5RiskLimitError(
                f"order volume {volume:g} lots exceeds max_volume_per_order ({bound:g} lots); "
                f"{_NOTHING_SENT}",
                limit="max_volume_per_order",
                value=volume,
                allowed=bound,
            )

    def _check_rate(self) -> None:
        bound = self._limits.max_orders_per_minute
        if bound is None:
            return
        now = self._clock()
        self._prune(now)
        if len(self._admitted) >= bound:
            wait_s = _round_up(self._admitted[0] + RATE_WINDOW_S - now)
            raise MT5RiskLimitError(
                f"{len(self._admitted)} orders were sent in the last {RATE_WINDOW_S:g} s, "
                f"the max_orders_per_minute limit ({bound}); a slot frees in {wait_s:.1f} s; "
                f"{_NOTHING_SENT}",
                limit="max_orders_per_minute",
                value=len(self._admitted) + 1,
                allowed=bound,
                hint=f"Wait {wait_s:.1f} s, or change the session's RiskLimits.",
            )

    def _check_positions(self, symbol: str, book: SymbolBook) -> None:
        bound = self._limits.max_positions_per_symbol
        would_be = book.positions + book.pending + 1
        if bound is not None and would_be > bound:
            raise MT5RiskLimitError(
                f"{symbol} would have {would_be} open positions and pending orders with this "
                f"order ({book.positions} + {book.pending} + 1), over max_positions_per_symbol "
                f"({bound}); {_NOTHING_SENT}",
                limit="max_positions_per_symbol",
                value=would_be,
                allowed=bound,
            )

    def _check_exposure(self, symbol: str, volume: float, book: SymbolBook) -> None:
        bound = self._limits.max_exposure_per_symbol
        would_be = book.gross_volume + volume
        if bound is not None and not _within(would_be, bound):
            raise MT5RiskLimitError(
                f"{symbol} gross exposure would be {would_be:g} lots with this order "
                f"({book.gross_volume:g} open + {volume:g} new), over max_exposure_per_symbol "
                f"({bound:g} lots); {_NOTHING_SENT}",
                limit="max_exposure_per_symbol",
                value=would_be,
                allowed=bound,
            )

    def _prune(self, now: float) -> None:
        """Drop admissions that have slid out of the window (lock held)."""
        admitted = self._admitted
        while admitted and now - admitted[0] >= RATE_WINDOW_S:
            admitted.popleft()


def _within(lots: float, bound: float) -> bool:
    """Whether ``lots`` is at most ``bound``, give or take the tolerance; NaN is not."""
    return lots <= bound + VOLUME_TOLERANCE


def _round_up(seconds: float) -> float:
    """Seconds rounded up to a tenth, never below 0.1: "frees in 0.0 s" would be a lie."""
    return max(math.ceil(seconds * 10 - 1e-9) / 10, 0.1)


def _list_symbols(symbols: frozenset[str]) -> str:
    """The allowed symbols, sorted, the first few of them: a refusal message stays short."""
    if not symbols:
        return "empty: every symbol is refused"
    names = sorted(symbols)
    listed = ", ".join(names[:_LISTED_SYMBOLS])
    more = len(names) - _LISTED_SYMBOLS
    return f"{listed} and {more} more" if more > 0 else listed
